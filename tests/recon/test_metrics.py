"""Metrics against hand-checkable cases."""

from __future__ import annotations

import math

import pytest
import torch

from data.cameras import Camera
from geometry.distance import sample_surface
from geometry.mesh import face_normals
from geometry.primitives import uv_sphere
from recon.evaluation.metrics import image_psnr, image_ssim, surface_metrics, views_seeing
from render.camera import look_at


def sphere(radius: float):
    vertices, _, faces = uv_sphere(32, 64, radius)
    return vertices.float(), faces.long()


def test_image_metrics():
    image = torch.rand(32, 32, 3, generator=torch.Generator().manual_seed(0))
    assert image_ssim(image, image) == pytest.approx(1.0)
    assert image_psnr((image + 0.1).clamp(0, 1), image) < image_psnr((image + 0.01).clamp(0, 1), image)
    other = torch.rand(32, 32, 3, generator=torch.Generator().manual_seed(1))
    assert image_ssim(other, image) < 0.2


def test_surface_metrics():
    a, b = sphere(1.0), sphere(1.05)
    same = surface_metrics(*a, *a, threshold=0.01, samples=4000)
    assert same["chamfer_l1"] < 1e-6 and same["f_score"] == 1.0
    apart = surface_metrics(*a, *b, threshold=0.01, samples=4000)
    assert apart["chamfer_l1"] == pytest.approx(0.05, abs=0.003) and apart["f_score"] == 0.0
    loose = surface_metrics(*a, *b, threshold=0.1, samples=4000)
    assert loose["f_score"] == 1.0 and loose["precision"] == loose["recall"] == 1.0


def cameras_at(eyes: list[tuple[float, float, float]], resolution: int = 96) -> Camera:
    """Pinhole cameras (40 degrees) at ``eyes``, each looking at the origin."""
    c2w = torch.stack([torch.linalg.inv(look_at(torch.tensor(e), torch.zeros(3), (0, 0, 1))) for e in eyes])
    focal = 0.5 * resolution / math.tan(math.radians(20))
    return Camera(c2w, focal, focal, resolution / 2, resolution / 2, resolution, resolution)


def test_views_seeing_a_sphere_matches_its_horizon():
    """A point of a sphere is seen from an eye outside it exactly when it lies in front of its tangent
    plane (the horizon, analytically); 40 degrees from 4 units frames the whole sphere."""
    vertices, faces = sphere(1.0)
    points, face = sample_surface(vertices, faces, 4000, torch.Generator().manual_seed(0))
    eye = torch.tensor([0.0, -4.0, 1.0])
    counts = views_seeing(
        points, face_normals(vertices, faces)[face], vertices, faces, cameras_at([eye.tolist()])
    )
    truth = ((eye - points) * points).sum(-1) > 0
    assert counts.max() <= 1
    assert float((counts.bool() == truth).float().mean()) > 0.98  # only points at the horizon may differ


def test_views_seeing_counts_occlusion_by_another_surface():
    """Two spheres, the far one half hidden behind the near one: its points behind it are not seen
    (ray-sphere intersection as the reference), and a second view from the far side sees them."""
    a, _, fa = uv_sphere(24, 48, 0.5)
    vertices = torch.cat(
        (a.float() + torch.tensor([0.0, -0.7, 0.0]), a.float() + torch.tensor([0.9, 0.7, 0.0]))
    )
    faces = torch.cat((fa.long(), fa.long() + len(a)))
    points, face = sample_surface(vertices, faces, 4000, torch.Generator().manual_seed(1))
    normals = face_normals(vertices, faces)[face]
    eye = torch.tensor([0.0, -4.0, 0.0])
    counts = views_seeing(points, normals, vertices, faces, cameras_at([eye.tolist()], 128))
    # Reference: facing the eye, and the segment eye -> point does not cross the other sphere first.
    ray = points - eye
    centre = torch.tensor([0.0, -0.7, 0.0])
    b = (ray * (eye - centre)).sum(-1)
    c = (eye - centre).square().sum() - 0.25
    a2 = ray.square().sum(-1)
    disc = b * b - a2 * c
    t = (-b - disc.clamp(min=0).sqrt()) / a2
    blocked = (disc > 0) & (t < 0.98) & (points[:, 1] > 0)
    truth = ((eye - points) * normals).sum(-1) > 0
    truth &= ~blocked
    far = points[:, 1] > 0
    assert (
        int((truth & far).sum()) > 50
        and int((~truth & far & (((eye - points) * normals).sum(-1) > 0)).sum()) > 50
    )
    assert float((counts.bool() == truth).float().mean()) > 0.97
    both = views_seeing(points, normals, vertices, faces, cameras_at([eye.tolist(), [0.0, 4.0, 0.0]], 128))
    assert bool((both >= counts).all()) and float((both[far] >= 1).float().mean()) > 0.45


def test_recall_over_the_seen_surface():
    """A reconstruction of only the upper half of a sphere, against the whole sphere, seen only from
    above: recall is about a half, the recall over what the views see is 1."""
    reference = sphere(1.0)
    vertices, faces = reference
    upper = faces[(vertices[faces].mean(1)[:, 2] > -0.05)]
    eyes = [(math.cos(k * math.pi / 2), math.sin(k * math.pi / 2), 5.0) for k in range(4)]  # see z > 0 only
    metrics = surface_metrics(
        vertices, upper, *reference, threshold=0.01, samples=4000, cameras=cameras_at(eyes)
    )
    assert metrics["recall"] == pytest.approx(0.5, abs=0.05)
    assert 0.2 < metrics["seen_fraction"] < 0.6
    assert metrics["recall_seen"] > 0.99
    assert "recall_seen" not in surface_metrics(vertices, upper, *reference, threshold=0.01, samples=500)
