"""The optimization: the stage-1 model (``model``: SDF -> marching cubes -> mesh, ``material``, the
light), its losses (``losses``), the training loop both stages share (``loop``, ``checkpoint``), stage 1
(``trainer``), the volumetric warm-up (``volume``) and stage 2 on a fixed mesh (``stage2``)."""
