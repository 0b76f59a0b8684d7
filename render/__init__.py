"""Everything that turns a mesh, materials and light into pixels.

``render.raster`` holds the differentiable rasterization primitives. Shading (``brdf``, ``light``),
cameras and the composed renderer arrive with later work (see DESIGN.md §2).
"""
