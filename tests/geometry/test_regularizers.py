"""Eikonal (finite differences), normal consistency, Laplacian and the SDF sign regularizer."""

from __future__ import annotations

import pytest
import torch

from geometry.extraction import GridConfig, sample_sdf_grid
from geometry.regularizers import (
    eikonal_loss,
    eikonal_points,
    finite_difference_gradient,
    free_space_loss,
    laplacian_loss,
    normal_consistency,
    ray_box_points,
    sdf_sign_loss,
)
from tests.geometry.analytic import box, sphere, torus
from tests.helpers import sphere_mesh

LOWER, UPPER = torch.full((3,), -1.0), torch.full((3,), 1.0)


def test_finite_difference_gradient_matches_autograd():
    points = torch.rand(300, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    ring = torch.stack((points[:, :2].norm(dim=-1) - 0.6, points[:, 2]), -1).norm(dim=-1)
    points = points[(points[:, :2].norm(dim=-1) > 0.01) & (ring > 0.01)].requires_grad_()  # off the kinks
    values = torus(points)
    (exact,) = torch.autograd.grad(values.sum(), points)
    numeric = finite_difference_gradient(torus, points.detach(), 1e-4)
    torch.testing.assert_close(numeric, exact, atol=1e-5, rtol=0)


@pytest.mark.parametrize("fn", [sphere, torus, box], ids=["sphere", "torus", "box"])
def test_eikonal_zero_for_exact_sdf_positive_for_scaled(fn, report):
    points = eikonal_points(2000, LOWER.double(), UPPER.double(), generator=torch.Generator().manual_seed(0))
    exact = float(eikonal_loss(fn, points, 1e-4))
    scaled = float(eikonal_loss(lambda p: 2.0 * fn(p), points, 1e-4))
    assert exact < 1e-4  # only where central differences straddle a kink (medial axis)
    assert scaled == pytest.approx(1.0, abs=0.01)  # (|2 grad| - 1)^2 = 1
    report(f"Eikonal loss, {fn.__name__}: exact SDF {exact:.1e}, 2x scaled {scaled:.3f}")


def test_eikonal_points_near_surface():
    surface = torch.tensor([[0.5, 0.0, 0.0]])
    points = eikonal_points(1000, LOWER, UPPER, surface, 0.01, torch.Generator().manual_seed(0))
    assert points.shape == (1000, 3)
    near = (points - surface).norm(dim=-1) < 0.05
    assert int(near.sum()) >= 500 and bool(((points >= -1) & (points <= 1))[:500].all())


def test_eikonal_gradient_flows_to_parameters():
    radius = torch.tensor(0.5, requires_grad=True)
    scale = torch.tensor(1.5, requires_grad=True)
    loss = eikonal_loss(lambda p: scale * (p.norm(dim=-1) - radius), torch.rand(100, 3) + 0.5, 1e-3)
    loss.backward()
    assert float(scale.grad) == pytest.approx(2 * (1.5 - 1), rel=1e-3) and abs(float(radius.grad)) < 1e-4


def test_normal_consistency():
    flat = torch.tensor([[0.0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]])
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    assert float(normal_consistency(flat, faces)) == pytest.approx(0.0, abs=1e-7)
    folded = flat.clone()
    folded[3, 2] = 1.0  # fold the second triangle up by 45 degrees about the diagonal
    value = float(normal_consistency(folded, faces))
    n2 = torch.nn.functional.normalize(
        torch.cross(folded[2] - folded[0], folded[3] - folded[0], dim=0), dim=0
    )
    assert value == pytest.approx(1 - float(n2[2]), abs=1e-6)
    fine, coarse = sphere_mesh(32, 64), sphere_mesh(8, 16)
    assert float(normal_consistency(*fine)) < float(normal_consistency(*coarse))


def test_laplacian_loss():
    # Tetrahedron: each vertex's neighbours are the other three.
    vertices = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], requires_grad=True)
    faces = torch.tensor([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    others = torch.stack([vertices[[j for j in range(4) if j != i]].mean(0) for i in range(4)])
    expected = (vertices - others).square().sum(-1).mean()
    loss = laplacian_loss(vertices, faces)
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert vertices.grad is not None
    assert float(laplacian_loss(vertices.detach(), torch.zeros(0, 3, dtype=torch.long))) == 0.0


def test_sdf_sign_loss():
    grid = sample_sdf_grid(sphere, LOWER, UPPER, GridConfig(16, narrow_band=False))
    values = grid.values.reshape(-1)
    from geometry.extraction import crossing_edges

    edges = crossing_edges(grid.values)
    logits = values[edges] / float(grid.spacing.min())
    bce = torch.nn.functional.softplus  # BCE(x, 1) = softplus(-x), BCE(x, 0) = softplus(x)
    expected = 0.5 * (
        torch.where(logits[:, 1] > 0, bce(-logits[:, 0]), bce(logits[:, 0])).mean()
        + torch.where(logits[:, 0] > 0, bce(-logits[:, 1]), bce(logits[:, 1])).mean()
    )
    torch.testing.assert_close(sdf_sign_loss(grid), expected)
    radius = torch.tensor(0.7, requires_grad=True)
    grid = sample_sdf_grid(lambda p: p.norm(dim=-1) - radius, LOWER, UPPER, GridConfig(16, narrow_band=False))
    sdf_sign_loss(grid).backward()
    assert radius.grad is not None and float(radius.grad) != 0.0


def test_normal_consistency_weighs_pairs_by_area_and_bounds_sliver_gradients():
    # A unit square folded along its diagonal (areas 0.5 and 0.5*sqrt(3)) plus a sliver of area ~1e-9
    # glued to edge (1, 2) at 90 degrees: weights are the smaller area of each pair.
    vertices = torch.tensor(
        [[0.0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 1], [1, 0.5, 2e-9]],
        dtype=torch.float64,
        requires_grad=True,
    )
    faces = torch.tensor([[0, 1, 2], [0, 2, 3], [1, 4, 2]])
    value = normal_consistency(vertices, faces)
    normals = torch.nn.functional.normalize(
        torch.cross(
            vertices[faces[:, 1]] - vertices[faces[:, 0]],
            vertices[faces[:, 2]] - vertices[faces[:, 0]],
            dim=-1,
        ),
        dim=-1,
    ).detach()
    area = (
        0.5
        * torch.cross(
            vertices[faces[:, 1]] - vertices[faces[:, 0]],
            vertices[faces[:, 2]] - vertices[faces[:, 0]],
            dim=-1,
        )
        .norm(dim=-1)
        .detach()
    )
    pairs = [(0, 1), (0, 2)]
    weights = torch.stack([torch.minimum(area[i], area[j]) for i, j in pairs])
    ones = torch.stack([1 - normals[i] @ normals[j] for i, j in pairs])
    assert float(value.detach()) == pytest.approx(float((weights * ones).sum() / weights.sum()), rel=1e-9)
    value.backward()
    # Unweighted, the sliver's unit normal would pull vertex 4 with a gradient ~ 1 / 1e-9.
    assert float(vertices.grad.abs().max()) < 10
    check = vertices.detach()[:4].clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda v: normal_consistency(v, faces[:2]), (check,))


def test_ray_box_points_are_stratified_on_the_segment_inside_the_box():
    origins = torch.tensor([[0.0, 0.0, -3.0], [0.0, 0.0, -3.0], [5.0, 5.0, -3.0]])
    directions = torch.tensor([[0.0, 0.0, 2.0], [0.0, 0.0, -1.0], [0.0, 0.0, 1.0]])  # hits, behind, misses
    points = ray_box_points(
        origins, directions, LOWER, UPPER, samples=8, generator=torch.Generator().manual_seed(0)
    )
    assert points.shape == (8, 3)  # only the first ray crosses the box in front of its origin
    assert float(points[:, :2].abs().max()) == 0.0
    z = points[:, 2]
    parts = ((z + 1) / 2 * 8).floor()  # the segment z in [-1, 1] cut into 8 equal parts: one point in each
    assert parts.tolist() == list(range(8))


def test_free_space_loss_pushes_only_inside_points_out():
    points = torch.tensor([[0.0, 0.0, 0.0], [0.5, 0.0, 0.0], [0.9, 0.0, 0.0]], requires_grad=True)
    loss = free_space_loss(sphere, points)  # sphere of radius 0.7: the first two are inside
    assert float(loss) == pytest.approx((0.7 + 0.2) / 3)
    (gradient,) = torch.autograd.grad(loss, points)
    assert float(gradient[0].abs().sum()) == 0.0  # the centre: |grad| of the distance is undefined there
    assert float(gradient[1, 0]) < 0 and float(gradient[2].abs().sum()) == 0.0  # descent moves it outward
    assert float(free_space_loss(sphere, torch.zeros(0, 3))) == 0.0
