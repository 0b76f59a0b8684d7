"""Point-to-mesh distance, winding numbers, signed distance and Chamfer distances."""

from __future__ import annotations

import pytest
import torch

from geometry.distance import (
    chamfer_distance,
    mesh_chamfer_distance,
    point_mesh_distance,
    point_triangle_distance,
    sample_surface,
    signed_distance,
    winding_number,
)
from tests.helpers import sphere_mesh


def test_point_triangle_distance_regions():
    a, b, c = (torch.tensor(v, dtype=torch.float64)[None, None] for v in ([0, 0, 0], [1, 0, 0], [0, 1, 0]))
    points = torch.tensor(
        [[0.2, 0.2, 0.5], [0.5, -1.0, 0.0], [-1.0, -1.0, 2.0], [1.0, 1.0, 0.0], [0.1, 0.1, 0.0]],
        dtype=torch.float64,
    )[:, None]
    expected = [0.5, 1.0, 6**0.5, 0.5**0.5, 0.0]  # face, edge, vertex, hypotenuse, on the triangle
    torch.testing.assert_close(
        point_triangle_distance(points, a, b, c)[:, 0], torch.tensor(expected).double()
    )


def test_point_mesh_distance_and_sign_on_a_sphere():
    vertices, faces = sphere_mesh(32, 64)
    points = torch.randn(500, 3) * 0.8
    brute = point_mesh_distance(points, vertices, faces, candidates=None)
    torch.testing.assert_close(point_mesh_distance(points, vertices, faces), brute)
    # The polygonal sphere is within 0.5% of the radius of the analytic one.
    assert float((brute - (points.norm(dim=-1) - 1).abs()).abs().max()) < 0.006
    winding = winding_number(points, vertices, faces)
    inside = points.norm(dim=-1) < 1
    far = (points.norm(dim=-1) - 1).abs() > 0.01
    assert bool(((winding > 0.99) == inside)[far].all()) and bool((winding[~inside & far].abs() < 0.01).all())
    signed = signed_distance(points, vertices, faces)
    assert float((signed - (points.norm(dim=-1) - 1)).abs().max()) < 0.006


def test_sample_surface_is_area_uniform():
    vertices = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [3, 0, 1], [0, 3, 1]])
    faces = torch.tensor([[0, 1, 2], [3, 4, 5]])  # areas 0.5 and 4.5
    points, face = sample_surface(vertices, faces, 20000, torch.Generator().manual_seed(0))
    assert float((face == 1).float().mean()) == pytest.approx(0.9, abs=0.01)
    assert bool((points[face == 0, 2] == 0).all()) and bool((points[face == 0, :2].sum(-1) <= 1 + 1e-6).all())


def test_chamfer_distances():
    generator = torch.Generator().manual_seed(0)
    a_v, a_f = sphere_mesh(32, 64, radius=1.0)
    b_v, b_f = sphere_mesh(32, 64, radius=1.1)
    assert float(mesh_chamfer_distance(a_v, a_f, a_v, a_f, 4000, generator)) < 1e-6
    assert float(mesh_chamfer_distance(a_v, a_f, b_v, b_f, 4000, generator)) == pytest.approx(0.1, abs=0.005)
    points = torch.rand(100, 3)
    assert float(chamfer_distance(points, points)) == 0.0
    assert float(chamfer_distance(points, points + torch.tensor([0.0, 0.0, 5.0]))) > 4.0
