"""Weighted gathers (geometry.gather) against the brute-force weighted sum of rows, and their gradients, for
both implementations: the compiled loops (numba) and the torch twin."""

from __future__ import annotations

import pytest
import torch

import geometry.gather as gather
from geometry.gather import weighted_gather, weighted_scatter
from geometry.jit import compiled_module

needs_numba = pytest.mark.skipif(compiled_module("geometry.gather_kernels") is None, reason="needs numba")


@pytest.fixture(params=["torch", pytest.param("numba", marks=needs_numba)])
def backend(request, monkeypatch):
    """Runs a test on the torch twin and on the compiled loops."""
    if request.param == "torch":
        monkeypatch.setattr(gather, "_kernels", lambda *tensors: None)
    return request.param


def _inputs(rows: int, channels: int, points: int, taps: int, dtype=torch.float32, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    source = torch.rand(rows, channels, generator=generator, dtype=dtype)
    index = torch.randint(rows, (points, taps), generator=generator)
    weights = torch.rand(points, taps, generator=generator, dtype=dtype)
    return source, index, weights


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize("rows", [50, 5000])  # more lookups than rows, and fewer
def test_weighted_gather_is_the_weighted_sum_of_rows(channels, rows, backend):
    source, index, weights = _inputs(rows, channels, points=300, taps=8)
    expected = (weights[..., None] * source[index]).sum(1)
    torch.testing.assert_close(weighted_gather(source, index, weights), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("channels", [2, 3])
@pytest.mark.parametrize("rows", [6, 400])  # 40 lookups: repeated rows, and mostly distinct ones
def test_weighted_gather_gradients(channels, rows, backend):
    source, index, weights = _inputs(rows, channels, points=10, taps=4, dtype=torch.float64, seed=1)
    source.requires_grad_(True)
    weights.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda s, w: weighted_gather(s, index, w), (source, weights))


@needs_numba
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_compiled_loops_match_the_torch_twin(dtype, monkeypatch):
    """Outputs and both gradients of the compiled loops against the torch twin, with repeated rows."""
    source, index, weights = _inputs(rows=200, channels=5, points=2000, taps=8, dtype=dtype, seed=2)
    grad_out = torch.rand(2000, 5, generator=torch.Generator().manual_seed(3), dtype=dtype)

    def run():
        s, w = source.clone().requires_grad_(True), weights.clone().requires_grad_(True)
        out = weighted_gather(s, index, w)
        out.backward(grad_out)
        return out.detach(), s.grad, w.grad, weighted_scatter(grad_out, index, weights, 200)

    compiled = run()
    monkeypatch.setattr(gather, "_kernels", lambda *tensors: None)
    twin = run()
    tolerance = {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 1e-12, "atol": 1e-12}
    for mine, theirs in zip(compiled, twin, strict=True):
        torch.testing.assert_close(mine, theirs, **tolerance)


def test_weighted_scatter_keeps_a_graph_when_one_is_wanted():
    """Called directly on tensors with gradients, the scatter is differentiable (the torch twin runs)."""
    _, index, weights = _inputs(rows=30, channels=3, points=20, taps=4, dtype=torch.float64, seed=4)
    values = torch.rand(20, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    values.requires_grad_(True)
    weights.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v, w: weighted_scatter(v, index, w, 30), (values, weights))
