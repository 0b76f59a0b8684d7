"""The hash-grid encoding as compiled CPU loops (numba): the fast path of :mod:`geometry.encoding` on the
CPU, with the torch implementation there as its twin (same layout, same float32 arithmetic, tested
against each other in tests/geometry/test_hashgrid_cpu.py).

The torch twin spends most of its time in elementwise passes over [8, L, N] corner tensors and in a
single-threaded ``index_add_`` for the table's gradient. Here one loop visits each point once per level:
the corner rows, weights and features are formed in registers, the forward output and the position
gradient are parallel over points, and the table gradient is parallel over levels (each level owns a
disjoint block of table rows, so the threads never write the same entry). The first call compiles the
loops (about 10 s) unless numba's cache has them.

numba is optional (:mod:`geometry.jit`): :func:`available` says whether it imports, and the encoding
falls back to torch.
"""

from __future__ import annotations

from functools import lru_cache
from types import SimpleNamespace

import numpy as np
import torch
from torch.autograd.function import once_differentiable

from geometry.jit import numba_module, use_torch_threads

__all__ = ["available", "hash_grid_cpu"]


@lru_cache(maxsize=1)
def _kernels():
    """The compiled kernels (a namespace), or None when numba does not import."""
    numba = numba_module()
    if numba is None:
        return None
    njit, prange = numba.njit, numba.prange

    @njit(inline="always")
    def corner_row(ix, iy, iz, c, resolution, size, offset, hashed):
        """Global table row (int64) of corner c = 4 a + 2 b + d of the cell at (ix, iy, iz)."""
        i, j, k = ix + ((c >> 2) & 1), iy + ((c >> 1) & 1), iz + (c & 1)
        if hashed:
            h = np.uint32(i) ^ (np.uint32(j) * np.uint32(2654435761)) ^ (np.uint32(k) * np.uint32(805459861))
            return offset + np.int64(h & np.uint32(size - 1))
        index = i + j * resolution + k * (resolution * resolution)
        if index >= size:  # past the top of a dense level: wraps, as tinycudann
            index -= size
        return offset + index

    @njit(inline="always")
    def cell(x, n, scale, half):
        """Lower corner (int64 x3) and fractions (x3) of point n at a level of ``scale``."""
        fx = x[n, 0] * scale + half
        fy = x[n, 1] * scale + half
        fz = x[n, 2] * scale + half
        cx, cy, cz = np.floor(fx), np.floor(fy), np.floor(fz)
        return np.int64(cx), np.int64(cy), np.int64(cz), fx - cx, fy - cy, fz - cz

    @njit(inline="always")
    def corner_weights(c, tx, ty, tz, one):
        """The trilinear weight factors (x, y, z) of corner c."""
        wx = tx if c & 4 else one - tx
        wy = ty if c & 2 else one - ty
        wz = tz if c & 1 else one - tz
        return wx, wy, wz

    @njit(parallel=True, cache=True)
    def forward(x, table, scales, resolutions, sizes, offsets, hashed, one, half, out):
        n_points, levels, features = x.shape[0], scales.shape[0], table.shape[1]
        zero = one - one
        for n in prange(n_points):
            for level in range(levels):
                ix, iy, iz, tx, ty, tz = cell(x, n, scales[level], half)
                res, size, offset, is_hashed = resolutions[level], sizes[level], offsets[level], hashed[level]
                for f in range(features):
                    out[n, level * features + f] = zero
                for c in range(8):
                    row = corner_row(ix, iy, iz, c, res, size, offset, is_hashed)
                    wx, wy, wz = corner_weights(c, tx, ty, tz, one)
                    weight = (wx * wy) * wz
                    for f in range(features):
                        out[n, level * features + f] += table[row, f] * weight

    @njit(parallel=True, cache=True)
    def grad_positions(x, table, scales, resolutions, sizes, offsets, hashed, one, half, grad_out, grad_x):
        n_points, levels, features = x.shape[0], scales.shape[0], table.shape[1]
        zero = one - one
        for n in prange(n_points):
            gx, gy, gz = zero, zero, zero
            for level in range(levels):
                ix, iy, iz, tx, ty, tz = cell(x, n, scales[level], half)
                res, size, offset, is_hashed = resolutions[level], sizes[level], offsets[level], hashed[level]
                dx, dy, dz = zero, zero, zero
                for c in range(8):
                    row = corner_row(ix, iy, iz, c, res, size, offset, is_hashed)
                    value = zero  # dL / d weight of this corner
                    for f in range(features):
                        value += table[row, f] * grad_out[n, level * features + f]
                    wx, wy, wz = corner_weights(c, tx, ty, tz, one)
                    # d wx / d tx = -1 for the lower corner, +1 for the upper one (likewise y, z).
                    dx += (value if c & 4 else -value) * (wy * wz)
                    dy += (value if c & 2 else -value) * (wx * wz)
                    dz += (value if c & 1 else -value) * (wx * wy)
                scale = scales[level]
                gx += dx * scale
                gy += dy * scale
                gz += dz * scale
            grad_x[n, 0] = gx
            grad_x[n, 1] = gy
            grad_x[n, 2] = gz

    @njit(parallel=True, cache=True)
    def grad_table(x, scales, resolutions, sizes, offsets, hashed, one, half, grad_out, grad_params):
        # Parallel over levels: each level owns rows [offset, offset + size), so no two threads write
        # the same entry, and each entry's sum runs over the points in order (deterministic).
        n_points, levels, features = x.shape[0], scales.shape[0], grad_params.shape[1]
        for level in prange(levels):
            res, size, offset, is_hashed = resolutions[level], sizes[level], offsets[level], hashed[level]
            for n in range(n_points):
                ix, iy, iz, tx, ty, tz = cell(x, n, scales[level], half)
                for c in range(8):
                    row = corner_row(ix, iy, iz, c, res, size, offset, is_hashed)
                    wx, wy, wz = corner_weights(c, tx, ty, tz, one)
                    weight = (wx * wy) * wz
                    for f in range(features):
                        grad_params[row, f] += grad_out[n, level * features + f] * weight

    return SimpleNamespace(forward=forward, grad_positions=grad_positions, grad_table=grad_table)


def available() -> bool:
    """Whether the compiled CPU path can run (numba imports)."""
    return _kernels() is not None


def _layout_arrays(layout, dtype: torch.dtype) -> tuple:
    """The kernels' layout arguments for inputs of ``dtype``: scales, resolutions, sizes, offsets,
    hashed flags, then the constants 1 and 0.5 in that dtype (so all arithmetic stays in it)."""
    real = np.float32 if dtype == torch.float32 else np.float64
    return (
        np.asarray(layout.scale, dtype=real),
        np.asarray(layout.resolution, np.int64),
        np.asarray(layout.size, np.int64),
        np.asarray(layout.offset, np.int64),
        np.asarray(layout.hashed, np.bool_),
        real(1),
        real(0.5),
    )


class _HashGridCPU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, params, layout, features: int):
        kernels = _kernels()
        x = x.contiguous()
        table = params.detach().view(-1, features)
        arrays = _layout_arrays(layout, x.dtype)
        with torch.no_grad():
            use_torch_threads()
            out = x.new_empty(x.shape[0], len(layout.scale) * features)
            kernels.forward(x.detach().numpy(), table.numpy(), *arrays, out.numpy())
        ctx.save_for_backward(x, params)
        ctx.arrays, ctx.features = arrays, features
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        kernels = _kernels()
        x, params = (tensor.detach() for tensor in ctx.saved_tensors)
        grad_out = grad_out.contiguous().to(x.dtype)
        grad_x = grad_params = None
        use_torch_threads()
        if ctx.needs_input_grad[1]:
            grad_table = params.new_zeros(params.numel() // ctx.features, ctx.features)
            scales, *rest = ctx.arrays
            kernels.grad_table(x.numpy(), scales, *rest, grad_out.numpy(), grad_table.numpy())
            grad_params = grad_table.view(-1)
        if ctx.needs_input_grad[0]:
            grad_x = torch.empty_like(x)
            table = params.view(-1, ctx.features).numpy()
            kernels.grad_positions(x.numpy(), table, *ctx.arrays, grad_out.numpy(), grad_x.numpy())
        return grad_x, grad_params, None, None


def hash_grid_cpu(x: torch.Tensor, params: torch.Tensor, layout, features: int) -> torch.Tensor:
    """:func:`geometry.encoding.hash_grid_torch` as compiled loops: x [N, 3] CPU float32 or float64
    (clamped to [0, 1]), params [n_entries * features] of the same dtype; returns [N, L * features],
    differentiable (first order) in ``params`` and ``x``. Needs numba (:func:`available`)."""
    if not available():
        raise RuntimeError("hash_grid_cpu needs numba (pip install numba)")
    return _HashGridCPU.apply(x.clamp(0.0, 1.0), params, layout, features)
