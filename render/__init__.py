"""Everything that turns a mesh, materials and light into pixels.

``render.raster`` holds the differentiable rasterization primitives (torch and nvdiffrast backends),
``brdf`` / ``dfg`` / ``sh`` / ``prefilter`` / ``light`` the split-sum shading under an environment light,
``envmap`` / ``hdr`` the cube-map and equirectangular conventions and files, ``camera`` the projection
matrices and ``renderer`` the composed mesh renderer (docs/design.md).
"""
