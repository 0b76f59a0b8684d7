"""Narrow-band sampling equals full evaluation; gradients reach the SDF's parameters."""

from __future__ import annotations

import pytest
import torch

from data.errors import ConfigError
from geometry.extraction import GridConfig, crossing_edges, extract_mesh, sample_sdf_grid
from tests.geometry.analytic import box, sphere, torus

LOWER, UPPER = torch.full((3,), -1.0), torch.full((3,), 1.0)


@pytest.mark.parametrize("fn", [sphere, torus, box], ids=["sphere", "torus", "box"])
def test_narrow_band_equals_full_evaluation(fn, report):
    full_v, full_f, full = extract_mesh(fn, LOWER, UPPER, GridConfig(128, narrow_band=False))
    band_v, band_f, band = extract_mesh(fn, LOWER, UPPER, GridConfig(128))
    assert torch.equal(full_f, band_f) and torch.equal(full_v, band_v)
    assert band.evaluated < 0.1 * full.evaluated
    report(
        f"narrow band 128^3 {fn.__name__}: {band.evaluated} of {full.evaluated} points evaluated, "
        f"{band.evaluated_with_grad} with grad, {len(band_v)} vertices, same mesh as full"
    )


def test_repair_pass_recovers_missed_crossings():
    """With a band too thin to hold every crossing edge, the repair pass completes the surface."""
    full_v, full_f, _ = extract_mesh(torus, LOWER, UPPER, GridConfig(128, narrow_band=False))
    band_v, band_f, band = extract_mesh(torus, LOWER, UPPER, GridConfig(128, band=0.3))
    assert band.repaired > 0
    assert torch.equal(full_f, band_f) and torch.equal(full_v, band_v)


def test_crossing_edges_brute_force():
    values = torch.randn(5, 6, 7)
    edges = crossing_edges(values)
    expected = set()
    shape = values.shape
    for i in range(5):
        for j in range(6):
            for k in range(7):
                for di, dj, dk in ((1, 0, 0), (0, 1, 0), (0, 0, 1)):
                    a, b, c = i + di, j + dj, k + dk
                    if a < shape[0] and b < shape[1] and c < shape[2]:
                        if (values[i, j, k] < 0) != (values[a, b, c] < 0):
                            expected.add(((i * 6 + j) * 7 + k, (a * 6 + b) * 7 + c))
    assert {tuple(e) for e in edges.tolist()} == expected


def test_gradient_reaches_parameters():
    """d(mean vertex radius)/d(radius) = 1 for the sphere |p| - r."""
    radius = torch.tensor(0.55, requires_grad=True)
    vertices, _, grid = extract_mesh(lambda p: p.norm(dim=-1) - radius, LOWER, UPPER, GridConfig(64))
    assert grid.evaluated_with_grad > 0 and grid.values.requires_grad
    vertices.norm(dim=-1).mean().backward()
    assert float(radius.grad) == pytest.approx(1.0, abs=0.01)


def test_empty_and_full_fields():
    for fn in (lambda p: p.norm(dim=-1) + 1.0, lambda p: p.norm(dim=-1) - 5.0):
        vertices, faces, grid = extract_mesh(fn, LOWER, UPPER, GridConfig(32, coarse_resolution=8))
        assert vertices.shape == (0, 3) and faces.shape == (0, 3) and grid.evaluated_with_grad == 0


def test_config_errors():
    with pytest.raises(ConfigError, match=r"^resolution=96: expected coarse_resolution \(32\) times a power"):
        sample_sdf_grid(sphere, LOWER, UPPER, GridConfig(96, coarse_resolution=32))
    with pytest.raises(ConfigError, match="^resolution=1: expected an integer >= 2"):
        GridConfig(1).validate()


def test_grids_coarser_than_the_band_start_are_evaluated_fully():
    vertices, _, grid = extract_mesh(sphere, LOWER, UPPER, GridConfig(8))  # coarse_resolution 16 > 8
    assert grid.evaluated == 9**3 and len(vertices) > 0
