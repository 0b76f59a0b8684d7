"""Multi-view datasets (NeRF-synthetic, COLMAP, LLFF, nerfstudio) and synthetic scenes.

Not implemented yet (see DESIGN.md §2).
"""
