"""The compiled loops of :mod:`geometry.hashgrid_cpu` (imported only when numba is, never directly).

Module-level functions, so that numba's on-disk cache finds them again in every process (a kernel
defined inside a function would be compiled anew by each one).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


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


# Two features per level (every preset's setting): each point's sums in registers rather than read and
# written back through the output; the forward and the table gradient do the same arithmetic in the same
# order as the loops above.


@njit(parallel=True, cache=True)
def forward_pairs(x, table, scales, resolutions, sizes, offsets, hashed, one, half, out):
    n_points, levels = x.shape[0], scales.shape[0]
    zero = one - one
    for n in prange(n_points):
        for level in range(levels):
            ix, iy, iz, tx, ty, tz = cell(x, n, scales[level], half)
            res, size, offset, is_hashed = resolutions[level], sizes[level], offsets[level], hashed[level]
            sum0, sum1 = zero, zero
            for c in range(8):
                row = corner_row(ix, iy, iz, c, res, size, offset, is_hashed)
                wx, wy, wz = corner_weights(c, tx, ty, tz, one)
                weight = (wx * wy) * wz
                sum0 += table[row, 0] * weight
                sum1 += table[row, 1] * weight
            out[n, 2 * level] = sum0
            out[n, 2 * level + 1] = sum1


@njit(inline="always")
def corner_value(ix, iy, iz, c, resolution, size, offset, hashed, table, g0, g1):
    """dL / d weight of corner c: its two features dotted with their output gradients g0, g1."""
    row = corner_row(ix, iy, iz, c, resolution, size, offset, hashed)
    return table[row, 0] * g0 + table[row, 1] * g1


@njit(parallel=True, cache=True)
def grad_positions_pairs(x, table, scales, resolutions, sizes, offsets, hashed, one, half, grad_out, grad_x):
    # Factored, unlike grad_positions: d/dtx of sum_c w_c v_c is sum over (y, z) corners of
    # (v_upper - v_lower) * wy * wz (likewise y, z); the same derivative, summed in another order.
    n_points, levels = x.shape[0], scales.shape[0]
    zero = one - one
    for n in prange(n_points):
        gx, gy, gz = zero, zero, zero
        for level in range(levels):
            ix, iy, iz, tx, ty, tz = cell(x, n, scales[level], half)
            res, size, offset, h = resolutions[level], sizes[level], offsets[level], hashed[level]
            g0, g1 = grad_out[n, 2 * level], grad_out[n, 2 * level + 1]
            v0 = corner_value(ix, iy, iz, 0, res, size, offset, h, table, g0, g1)
            v1 = corner_value(ix, iy, iz, 1, res, size, offset, h, table, g0, g1)
            v2 = corner_value(ix, iy, iz, 2, res, size, offset, h, table, g0, g1)
            v3 = corner_value(ix, iy, iz, 3, res, size, offset, h, table, g0, g1)
            v4 = corner_value(ix, iy, iz, 4, res, size, offset, h, table, g0, g1)
            v5 = corner_value(ix, iy, iz, 5, res, size, offset, h, table, g0, g1)
            v6 = corner_value(ix, iy, iz, 6, res, size, offset, h, table, g0, g1)
            v7 = corner_value(ix, iy, iz, 7, res, size, offset, h, table, g0, g1)
            sx, sy, sz = one - tx, one - ty, one - tz  # corner c = 4a + 2b + d: a along x, b y, d z
            dx = ((v4 - v0) * sz + (v5 - v1) * tz) * sy + ((v6 - v2) * sz + (v7 - v3) * tz) * ty
            dy = ((v2 - v0) * sz + (v3 - v1) * tz) * sx + ((v6 - v4) * sz + (v7 - v5) * tz) * tx
            dz = ((v1 - v0) * sy + (v3 - v2) * ty) * sx + ((v5 - v4) * sy + (v7 - v6) * ty) * tx
            scale = scales[level]
            gx += dx * scale
            gy += dy * scale
            gz += dz * scale
        grad_x[n, 0] = gx
        grad_x[n, 1] = gy
        grad_x[n, 2] = gz


@njit(parallel=True, cache=True)
def grad_table_pairs(x, scales, resolutions, sizes, offsets, hashed, one, half, grad_out, grad_params):
    n_points, levels = x.shape[0], scales.shape[0]
    for level in prange(levels):
        res, size, offset, is_hashed = resolutions[level], sizes[level], offsets[level], hashed[level]
        for n in range(n_points):
            ix, iy, iz, tx, ty, tz = cell(x, n, scales[level], half)
            g0, g1 = grad_out[n, 2 * level], grad_out[n, 2 * level + 1]
            for c in range(8):
                row = corner_row(ix, iy, iz, c, res, size, offset, is_hashed)
                wx, wy, wz = corner_weights(c, tx, ty, tz, one)
                weight = (wx * wy) * wz
                grad_params[row, 0] += g0 * weight
                grad_params[row, 1] += g1 * weight
