"""The compiled loops of :mod:`geometry.gather` (imported only when numba is, never directly).

Module-level functions, so that numba's on-disk cache finds them again in every process. Each loop reads
its taps straight from the source rows: no [P, K, C] tensor of taps is built, in the forward or in the
backward (which reads them again rather than keeping them).
"""

from __future__ import annotations

from numba import njit, prange


@njit(parallel=True, cache=True)
def weighted_gather(source, index, weights, out):
    """out[p] = sum_k weights[p, k] * source[index[p, k]]; the taps summed in order k = 0, 1, ..."""
    points, taps = index.shape
    channels = source.shape[1]
    for p in prange(points):
        for c in range(channels):
            out[p, c] = 0
        for k in range(taps):
            weight, row = weights[p, k], index[p, k]
            for c in range(channels):
                out[p, c] += weight * source[row, c]


@njit(cache=True)
def weighted_scatter(values, index, weights, out):
    """out[index[p, k]] += weights[p, k] * values[p], over p then k in order (one thread: taps of
    different points share rows, and a fixed order keeps the sums deterministic)."""
    points, taps = index.shape
    channels = values.shape[1]
    for p in range(points):
        for k in range(taps):
            weight, row = weights[p, k], index[p, k]
            for c in range(channels):
                out[row, c] += weight * values[p, c]


@njit(parallel=True, cache=True)
def tap_products(source, index, grad_out, out):
    """out[p, k] = <source[index[p, k]], grad_out[p]> (the gradient of the weights)."""
    points, taps = index.shape
    channels = source.shape[1]
    for p in prange(points):
        for k in range(taps):
            row = index[p, k]
            total = source[row, 0] * grad_out[p, 0]
            for c in range(1, channels):
                total += source[row, c] * grad_out[p, c]
            out[p, k] = total
