"""Shape representations: hash-grid SDF, differentiable marching cubes, mesh utilities, regularizers.

Only ``geometry.primitives`` (procedural test meshes) exists so far; the SDF pipeline is the
subject of a later issue (see DESIGN.md §2).
"""
