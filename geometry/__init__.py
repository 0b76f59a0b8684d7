"""Shape representations: hash-grid SDF network, narrow-band grid sampling, differentiable marching
cubes, mesh utilities (normals, cleanup, UV unwrapping), distances and regularizers (docs/design.md)."""
