"""Weighted gathers and their scatter with fast CPU backward passes: the core of texture filtering, the
cube-map prefilter and (the scatter) the hash-grid encoding's backward. It sits in geometry, the lowest
layer, so that render and geometry share it without importing each other upwards (docs/design.md,
"Layering")."""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable


class _WeightedGather(torch.autograd.Function):
    @staticmethod
    def forward(ctx, source, index, weights):
        taps = source.index_select(0, index.reshape(-1)).view(*index.shape, source.shape[-1])
        ctx.save_for_backward(index, weights, taps)
        ctx.rows = source.shape[0]
        return torch.bmm(weights[:, None, :], taps)[:, 0]

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        index, weights, taps = ctx.saved_tensors
        grad_source = grad_weights = None
        if ctx.needs_input_grad[0]:
            grad_source = weighted_scatter(grad_out, index, weights, ctx.rows)
        if ctx.needs_input_grad[2]:
            grad_weights = torch.bmm(taps, grad_out[:, :, None])[..., 0]
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
        [rows, C]. Channel-major: index_add along the last dimension of [C, rows] is several times faster
        on CPU than along the rows of [rows, C] (which is what index_select's own backward does).
    """
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
