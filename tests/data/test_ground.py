"""The ground plane of sparse points, the object's region above it, and the SfM frame's alignment."""

from __future__ import annotations

import math

import pytest
import torch

from data.cameras import Camera, pose_errors, similarity_from_centres
from data.ground import Region, fit_ground_plane, object_region, plane_basis, region_transform
from data.sfm import alignment
from render.camera import look_at


def _tilted() -> tuple[torch.Tensor, torch.Tensor]:
    """A rotation taking +Z to a tilted normal, and that normal."""
    normal = torch.nn.functional.normalize(torch.tensor([0.3, -0.2, 1.0]), dim=0)
    return plane_basis(normal).T, normal  # columns: u, v, normal


def _capture(generator: torch.Generator, outliers: int = 100):
    """Table points (z = 0 in a tilted frame), a box of object points on it, cameras above, all rotated
    and shifted: what SfM gives of an object on a table."""
    table = torch.rand(600, 2, generator=generator) * 8 - 4
    table = torch.cat((table, 0.005 * torch.randn(600, 1, generator=generator)), 1)
    box = torch.rand(200, 3, generator=generator) * torch.tensor([1.0, 0.8, 1.2]) - torch.tensor(
        [0.5, 0.4, 0]
    )
    clutter = torch.rand(outliers, 3, generator=generator) * 8 - 4
    c2w = []
    for i in range(12):
        angle = 2 * math.pi * i / 12
        eye = (4.0 * math.cos(angle), 4.0 * math.sin(angle), 2.5 + 0.3 * math.sin(2 * angle))
        c2w.append(torch.linalg.inv(look_at(eye, (0.0, 0.0, 0.6), (0, 0, 1))))
    rotation, normal = _tilted()
    shift = torch.tensor([1.0, 2.0, -0.5])
    points = torch.cat((table, box, clutter)) @ rotation.T + shift
    c2w = torch.stack(c2w)
    c2w[:, :3, :3] = rotation @ c2w[:, :3, :3]
    c2w[:, :3, 3] = c2w[:, :3, 3] @ rotation.T + shift
    cameras = Camera(c2w, 60.0, 60.0, 32.0, 24.0, 64, 48)
    return points, cameras, rotation, normal, shift


def test_ground_plane_is_found_through_outliers_with_its_normal_towards_the_cameras():
    points, cameras, _, normal, shift = _capture(torch.Generator().manual_seed(0))
    plane = fit_ground_plane(points, cameras)
    assert plane is not None
    assert math.degrees(math.acos(min(1.0, float(plane.normal @ normal)))) < 0.5
    assert abs(float((plane.point - shift) @ normal)) < 0.01  # on the plane
    assert plane.inliers == pytest.approx(600 / 900, abs=0.03)
    assert plane.radius > 3


def test_no_ground_plane_in_a_cloud_without_one():
    generator = torch.Generator().manual_seed(1)
    _, cameras, _, _, _ = _capture(generator)
    assert fit_ground_plane(torch.randn(500, 3, generator=generator), cameras) is None


def test_object_region_stands_on_the_plane_and_holds_the_object():
    points, cameras, rotation, normal, shift = _capture(torch.Generator().manual_seed(2))
    plane = fit_ground_plane(points, cameras)
    region = object_region(points, cameras, plane)
    corners = torch.tensor([[x, y, z] for x in (-0.5, 0.5) for y in (-0.4, 0.4) for z in (0.05, 1.2)])
    assert bool(region.contains(corners @ rotation.T + shift).all())
    heights = plane.height(region.corners())
    assert float(heights.min()) > 0 and float(heights.min()) < 0.1  # lifted just off the table
    table_point = torch.tensor([0.3, 0.2, 0.0]) @ rotation.T + shift
    assert not bool(region.contains(table_point[None]).any())
    transform = region_transform(region)
    assert float(transform.to_normalized(region.corners()).norm(dim=-1).max()) == pytest.approx(0.9, abs=1e-4)


def test_region_sdf_is_the_box_distance():
    region = Region.from_bounds((-1.0, -2.0, 0.0, 1.0, 2.0, 1.0))
    points = torch.tensor([[0.0, 0.0, 0.5], [2.0, 0.0, 0.5], [2.0, 3.0, 0.5], [0.0, 0.0, -0.25]])
    expected = torch.tensor([-0.5, 1.0, math.sqrt(2.0), 0.25])
    assert torch.allclose(region.sdf(points), expected, atol=1e-6)
    assert region.contains(points).tolist() == [True, False, False, False]


def test_alignment_makes_the_ground_z_zero_and_up_plus_z():
    points, cameras, _, _, _ = _capture(torch.Generator().manual_seed(3))
    rotation, translation, source = alignment(points, cameras)
    aligned = points.double() @ torch.from_numpy(rotation).T + torch.from_numpy(translation)
    assert "ground plane" in source
    assert float(aligned[:600, 2].abs().median()) < 0.01  # the table at z = 0
    centres = cameras.centers.double() @ torch.from_numpy(rotation).T + torch.from_numpy(translation)
    assert bool((centres[:, 2] > 1).all())  # cameras above it


def test_pose_errors_are_zero_for_a_similar_copy_and_see_a_rotated_camera():
    _, cameras, _, _, _ = _capture(torch.Generator().manual_seed(4))
    rotation, _ = _tilted()
    copy = cameras.transformed(0.5, torch.tensor([0.3, 0.1, 0.0]))
    copy.c2w[:, :3, :3] = rotation @ copy.c2w[:, :3, :3]
    copy.c2w[:, :3, 3] = copy.c2w[:, :3, 3] @ rotation.T
    scale, _, _ = similarity_from_centres(copy.centers, cameras.centers)
    assert scale == pytest.approx(2.0, rel=1e-5)
    errors = pose_errors(copy, cameras)
    assert errors["rotation_error_deg"] < 0.01 and errors["centre_error"] < 1e-5  # float32 poses
    turn = torch.linalg.inv(look_at((0, 0, 0), (0.02, 0, -1), (0, 1, 0)))[:3, :3]  # ~1.15 degrees
    copy.c2w[0, :3, :3] = copy.c2w[0, :3, :3] @ turn
    errors = pose_errors(copy, cameras)
    assert errors["max_rotation_error_deg"] == pytest.approx(math.degrees(math.atan(0.02)), abs=0.01)
