"""Weighted gathers and their scatter with fast CPU backward passes: the core of texture filtering, the
cube-map prefilter and (the scatter) the hash-grid encoding's backward. It sits in geometry, the lowest
layer, so that render and geometry share it without importing each other upwards (docs/design.md,
"Layering")."""

from __future__ import annotations

from types import ModuleType

import torch
from torch.autograd.function import once_differentiable

from geometry.jit import compiled_module, use_torch_threads


def _kernels(*tensors: torch.Tensor) -> ModuleType | None:
    """The compiled loops (geometry.gather_kernels) when they apply to ``tensors`` (CPU; values of one
    dtype, float32 or float64; int64 indices; no graph wanted through them, which the loops do not
    record), else None: the torch twin runs."""
    if any(t.device.type != "cpu" for t in tensors):
        return None
    if any(t.dtype not in (torch.float32, torch.float64, torch.int64) for t in tensors):
        return None
    if len({t.dtype for t in tensors if t.is_floating_point()}) > 1:
        return None
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        return None  # e.g. weighted_scatter called directly on tensors with gradients
    return compiled_module("geometry.gather_kernels")


class _WeightedGather(torch.autograd.Function):
    """out[p] = sum_k weights[p, k] * source[index[p, k]]: the compiled loops on the CPU when numba imports
    (:mod:`geometry.gather_kernels`), else the torch twin (index_select + bmm), the same sums up to
    rounding (tests/geometry/test_gather.py)."""

    @staticmethod
    def forward(ctx, source, index, weights):
        ctx.rows = source.shape[0]
        kernels = _kernels(source, index, weights)
        ctx.compiled = kernels is not None
        if kernels is not None:
            source, index, weights = source.contiguous(), index.contiguous(), weights.contiguous()
            out = source.new_empty(index.shape[0], source.shape[1])
            use_torch_threads()
            kernels.weighted_gather(source.numpy(), index.numpy(), weights.numpy(), out.numpy())
            ctx.save_for_backward(index, weights, source)  # the taps are read again in the backward
            return out
        taps = source.index_select(0, index.reshape(-1)).view(*index.shape, source.shape[-1])
        ctx.save_for_backward(index, weights, taps)
        return torch.bmm(weights[:, None, :], taps)[:, 0]

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        index, weights, saved = ctx.saved_tensors
        grad_source = grad_weights = None
        if ctx.needs_input_grad[0]:
            grad_source = weighted_scatter(grad_out, index, weights, ctx.rows)
        if ctx.needs_input_grad[2]:
            if ctx.compiled:  # saved: the source
                grad_weights = weights.new_empty(index.shape)
                grad_out = grad_out.contiguous().to(saved.dtype)
                compiled_module("geometry.gather_kernels").tap_products(
                    saved.numpy(), index.numpy(), grad_out.numpy(), grad_weights.numpy()
                )
            else:  # saved: the taps
                grad_weights = torch.bmm(saved, grad_out[:, :, None])[..., 0]
        return grad_source, None, grad_weights


class _GatherRows(torch.autograd.Function):
    @staticmethod
    def forward(ctx, source, index):
        ctx.save_for_backward(index)
        ctx.rows = source.shape[0]
        return source.index_select(0, index)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        (index,) = ctx.saved_tensors
        grad_cm = grad_out.new_zeros(grad_out.shape[1], ctx.rows)
        return grad_cm.index_add_(1, index, grad_out.t()).t(), None


_ROW_AS_INTEGER = {4: torch.int32, 8: torch.int64}


def gather_table_rows(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``table.index_select(0, index)`` for table [E, F] and index [M]: [M, F], bit for bit. Rows of 4 or
    8 bytes (e.g. float32 pairs, the hash grid's features) are gathered as one integer each: a 1-D
    index_select, 5-6x faster on the CPU than gathering rows of F elements. No gradient."""
    as_integer = _ROW_AS_INTEGER.get(table.shape[1] * table.element_size())
    if as_integer is None or not table.is_contiguous():
        return table.index_select(0, index)
    rows = table.view(as_integer).reshape(-1).index_select(0, index)
    return rows.view(table.dtype).view(-1, table.shape[1])


def weighted_scatter(
    values: torch.Tensor, index: torch.Tensor, weights: torch.Tensor, rows: int
) -> torch.Tensor:
    """The adjoint of :func:`weighted_gather`: out[index[p, k]] += weights[p, k] * values[p].

    Args:
        values: [P, C]; index: [P, K] integer rows of the output; weights: [P, K]; rows: output rows.
    Returns:
        [rows, C]. The compiled loop when numba imports (one pass, no [C, P, K] products; 2x faster);
        else channel-major: index_add along the last dimension of [C, rows] is several times faster on
        CPU than along the rows of [rows, C] (which is what index_select's own backward does).
    """
    kernels = _kernels(values, index, weights)
    if kernels is not None:
        out = values.new_zeros(rows, values.shape[1])
        kernels.weighted_scatter(
            values.contiguous().numpy(), index.contiguous().numpy(), weights.contiguous().numpy(), out.numpy()
        )
        return out
    spread = values.t()[:, :, None] * weights[None]  # [C, P, K]
    out = values.new_zeros(values.shape[1], rows)
    return out.index_add_(1, index.reshape(-1), spread.reshape(values.shape[1], -1)).t()


def gather_rows(source: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``source[index]`` for source [N, C] and index [M]: [M, C], with a channel-major backward."""
    return _GatherRows.apply(source, index)


def weighted_gather(source: torch.Tensor, index: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """out[p] = sum_k weights[p, k] * source[index[p, k]].

    Args:
        source: [N, C]; index: [P, K] integer rows of ``source``; weights: [P, K] (same dtype as source).
    Returns:
        [P, C], differentiable in ``source`` and ``weights`` (first order).
    """
    return _WeightedGather.apply(source, index, weights.to(source.dtype))
