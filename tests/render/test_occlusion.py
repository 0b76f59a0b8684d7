"""Ambient occlusion by many-view depth maps against analytic values and brute-force ray casting."""

from __future__ import annotations

import math

import pytest
import torch

from geometry.extraction import GridConfig, extract_mesh
from geometry.mesh import vertex_normals
from recon.scenes.procedural import concave_sdf, procedural_sdf
from render.occlusion import sphere_directions, vertex_occlusion


def _mesh(sdf, resolution: int):
    bound = torch.full((3,), 1.0)
    vertices, faces, _ = extract_mesh(sdf, -bound, bound, GridConfig(resolution, narrow_band=False))
    return vertices.detach(), faces


def _ray_cast_occlusion(vertices, faces, points, normals, directions) -> torch.Tensor:
    """Brute force: for each point, every direction's ray tested against every triangle (Moller-Trumbore)."""
    a, b, c = (vertices[faces[:, i]].double() for i in range(3))
    e1, e2 = b - a, c - a
    result = []
    for p, n in zip(points.double(), normals.double(), strict=True):
        origin = p + 1e-4 * n
        d = directions.double()  # [K, 3]
        pvec = torch.linalg.cross(d[:, None], e2[None].expand(len(d), -1, -1))  # [K, F, 3]
        det = (e1[None] * pvec).sum(-1)
        inv = 1 / torch.where(det.abs() < 1e-12, torch.full_like(det, 1e-12), det)
        tvec = origin - a  # [F, 3]
        u = (tvec[None] * pvec).sum(-1) * inv
        qvec = torch.linalg.cross(tvec, e1)  # [F, 3]
        v = (d @ qvec.T) * inv
        t = (qvec * e2).sum(-1)[None] * inv
        hit = ((u >= 0) & (v >= 0) & (u + v <= 1) & (t > 1e-6) & (det.abs() > 1e-12)).any(-1)  # [K]
        weight = (d @ n).clamp(min=0)
        result.append((weight * (~hit)).sum() / weight.sum())
    return torch.stack(result).float()


def test_a_convex_object_is_unoccluded():
    vertices, faces = _mesh(lambda p: p.norm(dim=-1) - 0.7, 48)
    ao = vertex_occlusion(vertices, faces, directions=64, resolution=128)
    assert ao.min().item() > 0.97


def test_bottom_of_a_pocket_sees_the_cone_of_its_opening():
    # concave_sdf's pocket: radius 0.17, 0.35 deep. From the centre of its floor the open sky is a cone of
    # half-angle atan(0.17 / 0.35); the cosine-weighted fraction of a hemisphere inside it is sin^2.
    vertices, faces = _mesh(concave_sdf, 128)
    ao = vertex_occlusion(vertices, faces, directions=256, resolution=256)
    floor = (vertices - torch.tensor([0.28, 0.0, 0.0])).norm(dim=-1).argmin()
    expected = 0.17**2 / (0.17**2 + 0.35**2)
    assert ao[floor].item() == pytest.approx(expected, abs=0.03)
    top = (vertices[:, 2] > 0.349) & ((vertices[:, :2] - torch.tensor([-0.4, 0.0])).norm(dim=-1) < 0.05)
    assert ao[top].mean().item() > 0.98  # the flat top beside the tunnel sees the whole hemisphere


def test_matches_brute_force_ray_casting():
    vertices, faces = _mesh(procedural_sdf, 40)
    normals = torch.nn.functional.normalize(vertex_normals(vertices, faces), dim=-1)
    directions = sphere_directions(96)
    ao = vertex_occlusion(vertices, faces, directions=96, resolution=384)
    pick = torch.randperm(len(vertices), generator=torch.Generator().manual_seed(0))[:150]
    reference = _ray_cast_occlusion(vertices, faces, vertices[pick], normals[pick], directions)
    assert (reference < 0.9).sum() > 15  # the sample holds occluded points (the bowl, inside the handle)
    assert (ao[pick] - reference).abs().mean().item() < 0.03
    assert (ao[pick] - reference).abs().max().item() < 0.2


def test_directions_are_unit_and_balanced():
    d = sphere_directions(200)
    assert torch.allclose(d.norm(dim=-1), torch.ones(200), atol=1e-6)
    assert d.mean(0).norm().item() < 0.01
    assert math.isclose((d[:, 2] > 0).float().mean().item(), 0.5, abs_tol=0.01)
