"""Weighted gathers (geometry.gather) against the brute-force weighted sum of rows, and their gradients."""

from __future__ import annotations

import pytest
import torch

from geometry.gather import weighted_gather


def _inputs(rows: int, channels: int, points: int, taps: int, dtype=torch.float32, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    source = torch.rand(rows, channels, generator=generator, dtype=dtype)
    index = torch.randint(rows, (points, taps), generator=generator)
    weights = torch.rand(points, taps, generator=generator, dtype=dtype)
    return source, index, weights


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize("rows", [50, 5000])  # more lookups than rows, and fewer
def test_weighted_gather_is_the_weighted_sum_of_rows(channels, rows):
    source, index, weights = _inputs(rows, channels, points=300, taps=8)
    expected = (weights[..., None] * source[index]).sum(1)
    torch.testing.assert_close(weighted_gather(source, index, weights), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("channels", [2, 3])
@pytest.mark.parametrize("rows", [6, 400])  # 40 lookups: repeated rows, and mostly distinct ones
def test_weighted_gather_gradients(channels, rows):
    source, index, weights = _inputs(rows, channels, points=10, taps=4, dtype=torch.float64, seed=1)
    source.requires_grad_(True)
    weights.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda s, w: weighted_gather(s, index, w), (source, weights))
