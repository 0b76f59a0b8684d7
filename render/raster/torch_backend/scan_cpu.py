"""The rasterizer's visibility scan as compiled CPU loops (numba): the fast path of
:func:`render.raster.torch_backend.rasterize._setup_triangles` and ``_scan_tiles``, its torch twin, with
the same results bit for bit (tests/render/raster/test_scan_cpu.py).

The torch twin sets the triangles up as [N, ...] tensors, cuts their bounding boxes into tiles, bins the
tiles by size and evaluates each bin as one broadcast: a few hundred small operations per batch of
views, which on a CPU cost more than the arithmetic. Here each triangle is set up in registers (the
same float32 operations in the same order: edge and depth planes, the near-plane-clipped bounding box)
and its box walked pixel by pixel, keeping the nearest (depth, triangle id) key per pixel.
Views run in parallel (each thread owns its views' pixels, so nothing is shared); within a view the
triangles go in order, and the minimum of the packed keys does not depend on the order anyway.
"""

from __future__ import annotations

import numpy as np
import torch

from geometry.jit import compiled_module, use_torch_threads

__all__ = ["available", "setup_and_scan"]


def _kernels():
    """The compiled kernels (render.raster.torch_backend.scan_kernels), or None when numba does not import."""
    return compiled_module("render.raster.torch_backend.scan_kernels")


def available() -> bool:
    """Whether the compiled scan can run (numba imports)."""
    return _kernels() is not None


def setup_and_scan(
    verts: torch.Tensor, tri_ids: torch.Tensor, views: torch.Tensor, keys: torch.Tensor, height: int,
    width: int, box_eps: float,
) -> None:  # fmt: skip
    """Set up every triangle and fold the (depth, triangle id) keys of the pixels it covers into ``keys``
    with min, in place: rasterize._setup_triangles and _scan_tiles in one pass, bit for bit.

    Args:
        verts: [N, 3, 4] clip-space vertices of each triangle; tri_ids: [N] int64 triangle ids;
        views: [N] int64 view of each triangle; keys: [B * H * W] int64 CPU (rasterize._pack_key).
        box_eps: the bounding boxes' tolerance in pixels (rasterize._BOX_EPS).
    """
    order = torch.argsort(views, stable=True)
    sorted_views = views[order]
    batch = keys.numel() // (height * width)
    view_start = torch.searchsorted(sorted_views, torch.arange(batch + 1, dtype=sorted_views.dtype))
    use_torch_threads()
    _kernels().setup_scan(
        verts[order].float().contiguous().numpy(),
        tri_ids[order].contiguous().numpy(),
        view_start.numpy(),
        keys.numpy(),
        height,
        width,
        np.float32(box_eps),
    )
