"""The hash-grid encoding as compiled CPU loops (numba): the fast path of :mod:`geometry.encoding` on the
CPU, with the torch implementation there as its twin (same layout, same float32 arithmetic, tested
against each other in tests/geometry/test_encoding.py).

The torch twin spends most of its time in elementwise passes over [8, L, N] corner tensors and in a
single-threaded ``index_add_`` for the table's gradient. Here one loop visits each point once per level:
the corner rows, weights and features are formed in registers, the forward output and the position
gradient are parallel over points, and the table gradient is parallel over levels (each level owns a
disjoint block of table rows, so the threads never write the same entry). Two features per level, the
usual setting, has its own loops that keep each point's sums in registers (forward and table gradient:
the same arithmetic, 1.7-2.5x faster; position gradient: factored, 1.7x faster, equal to rounding). The
first call compiles the loops (about 10 s) unless numba's cache has them.

numba is optional (:mod:`geometry.jit`): :func:`available` says whether it imports, and the encoding
falls back to torch.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from torch.autograd.function import once_differentiable

from geometry.jit import compiled_module, use_torch_threads

__all__ = ["available", "hash_grid_cpu"]


def _kernels():
    """The compiled kernels (geometry.hashgrid_kernels), or None when numba does not import."""
    return compiled_module("geometry.hashgrid_kernels")


def available() -> bool:
    """Whether the compiled CPU path can run (numba imports)."""
    return _kernels() is not None


@lru_cache(maxsize=16)
def _layout_arrays(layout, dtype: torch.dtype) -> tuple:
    """The kernels' layout arguments for inputs of ``dtype``: scales, resolutions, sizes, offsets,
    hashed flags, then the constants 1 and 0.5 in that dtype (so all arithmetic stays in it); made once per
    layout and dtype (the kernels only read them)."""
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
            forward = kernels.forward_pairs if features == 2 else kernels.forward
            forward(x.detach().numpy(), table.numpy(), *arrays, out.numpy())
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
            kernel = kernels.grad_table_pairs if ctx.features == 2 else kernels.grad_table
            kernel(x.numpy(), scales, *rest, grad_out.numpy(), grad_table.numpy())
            grad_params = grad_table.view(-1)
        if ctx.needs_input_grad[0]:
            grad_x = torch.empty_like(x)
            table = params.view(-1, ctx.features).numpy()
            kernel = kernels.grad_positions_pairs if ctx.features == 2 else kernels.grad_positions
            kernel(x.numpy(), table, *ctx.arrays, grad_out.numpy(), grad_x.numpy())
        return grad_x, grad_params, None, None


def hash_grid_cpu(x: torch.Tensor, params: torch.Tensor, layout, features: int) -> torch.Tensor:
    """:func:`geometry.encoding.hash_grid_torch` as compiled loops: x [N, 3] CPU float32 or float64
    (clamped to [0, 1]), params [n_entries * features] of the same dtype; returns [N, L * features],
    differentiable (first order) in ``params`` and ``x``. Needs numba (:func:`available`)."""
    if not available():
        raise RuntimeError("hash_grid_cpu needs numba (pip install numba)")
    return _HashGridCPU.apply(x.clamp(0.0, 1.0), params, layout, features)
