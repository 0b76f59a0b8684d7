"""The exported asset: textures baked from a material (``bake``), texture materials (``texture_material``),
the export contract's writer (``export``: OBJ + MTL + PNG, glTF, probe.hdr), its reader (``load``) and the
ground plane written beside it (``backdrop``). Nothing here knows how the asset was trained."""
