"""Camera model: projection matrix = pixel projection, rays, resizing, normalization estimates."""

from __future__ import annotations

import pytest
import torch

from data.cameras import Camera
from data.normalization import from_cameras, from_masks, from_points, look_at_point
from render.camera import to_clip
from tests.data.scenes import HEIGHT, WIDTH, known_points, ring_cameras


def off_centre() -> Camera:
    cameras = ring_cameras(6)
    cameras.fy = cameras.fy * 1.1
    cameras.cx = cameras.cx + 3.0
    cameras.cy = cameras.cy - 2.0
    return cameras


def test_mvp_agrees_with_pixel_projection():
    cameras, points = off_centre(), known_points()
    clip = to_clip(points, cameras.mvp())  # [B, P, 4]
    ndc = clip[..., :3] / clip[..., 3:]
    # NDC y is up; image rows go down (docs/design.md).
    pixels = torch.stack(((ndc[..., 0] + 1) * WIDTH / 2, (1 - ndc[..., 1]) * HEIGHT / 2), -1)
    expected, depth = cameras.project(points)
    torch.testing.assert_close(pixels, expected, atol=1e-3, rtol=0)
    torch.testing.assert_close(clip[..., 3], depth, atol=1e-4, rtol=1e-5)
    assert bool(((ndc[..., 2] > -1) & (ndc[..., 2] < 1)).all())


def test_rays_pass_through_projected_pixels():
    cameras = off_centre()
    origins, directions = cameras.rays()
    assert directions.shape == (6, HEIGHT, WIDTH, 3)
    points = origins + 2.5 * directions  # a point along every pixel's ray
    xy, _ = cameras[2].project(points[2].reshape(-1, 3))
    j, i = torch.meshgrid(torch.arange(HEIGHT) + 0.5, torch.arange(WIDTH) + 0.5, indexing="ij")
    torch.testing.assert_close(xy[0], torch.stack((i, j), -1).reshape(-1, 2), atol=1e-3, rtol=0)


def test_pixel_rays_are_those_of_every_pixel():
    cameras = off_centre()
    origins, directions = cameras.rays()
    corners = torch.tensor([0, WIDTH - 1, HEIGHT * WIDTH, 6 * HEIGHT * WIDTH - 1])
    pixels = torch.cat((corners, torch.randint(6 * HEIGHT * WIDTH, (200,), generator=torch.Generator())))
    some_origins, some_directions = cameras.pixel_rays(pixels)
    torch.testing.assert_close(some_origins, origins.reshape(-1, 3)[pixels])
    torch.testing.assert_close(some_directions, directions.reshape(-1, 3)[pixels], atol=1e-6, rtol=0)


def test_scaled_keeps_projections_consistent():
    cameras, points = off_centre(), known_points()
    half = cameras.scaled(0.5)
    assert (half.width, half.height) == (20, 15)
    full, _ = cameras.project(points)
    small, _ = half.project(points)
    torch.testing.assert_close(small, full * 0.5, atol=1e-4, rtol=0)


def test_cropped_cameras_see_the_window():
    cameras, points = off_centre(), known_points()
    left, top = torch.tensor([0, 5, 11, 3, 20, 7]), torch.tensor([2, 0, 9, 14, 1, 4])
    window = cameras.cropped(left, top, 17, 12)
    assert (window.width, window.height) == (17, 12)
    full, _ = cameras.project(points)
    moved, _ = window.project(points)
    offset = torch.stack((left, top), -1).float()[:, None]
    torch.testing.assert_close(moved, full - offset, atol=1e-4, rtol=0)
    full_origins, full_directions = cameras.rays()
    origins, directions = window.rays()
    for b in range(len(cameras)):  # the window's rays are the full image's rays of those pixels
        rows, cols = slice(int(top[b]), int(top[b]) + 12), slice(int(left[b]), int(left[b]) + 17)
        torch.testing.assert_close(directions[b], full_directions[b, rows, cols], atol=1e-5, rtol=0)
        torch.testing.assert_close(origins[b], full_origins[b, rows, cols])


def test_subsets_and_concatenation():
    cameras = off_centre()
    part = cameras[[1, 3]]
    assert len(part) == 2 and torch.equal(part.c2w[1], cameras.c2w[3])
    assert len(Camera.cat([part, cameras[0]])) == 3
    with pytest.raises(ValueError, match="different image sizes"):
        Camera.cat([part, cameras.scaled(0.5)])


def test_look_at_point_and_camera_normalization():
    cameras = ring_cameras(8, centre=(0.2, -0.1, 0.3))
    torch.testing.assert_close(look_at_point(cameras), torch.tensor([0.2, -0.1, 0.3]), atol=1e-4, rtol=0)
    transform = from_cameras(cameras)
    moved = transform.cameras(cameras)
    torch.testing.assert_close(look_at_point(moved), torch.zeros(3), atol=1e-4, rtol=0)
    p = known_points()
    torch.testing.assert_close(transform.to_world(transform.to_normalized(p)), p)
    # Projections are invariant under the similarity.
    torch.testing.assert_close(
        moved.project(transform.to_normalized(p))[0], cameras.project(p)[0], atol=1e-3, rtol=0
    )


def test_points_normalization_ignores_outliers():
    generator = torch.Generator().manual_seed(0)
    points = torch.randn(2000, 3, generator=generator) * 0.1 + torch.tensor([5.0, 0.0, 0.0])
    points[:10] = 1000.0
    transform = from_points(points, target_radius=0.8)
    normalized = transform.to_normalized(points[10:])
    assert (
        float(normalized.mean(0).norm()) < 0.05 and 0.6 < float(normalized.norm(dim=-1).quantile(0.98)) < 1.0
    )


def test_visual_hull_of_a_sphere():
    """Masks of a sphere (radius 0.5 at c) carve a hull whose bounding sphere is close to it."""
    cameras = ring_cameras(12, radius=3.0, centre=(0.2, -0.1, 0.3), focal=30.0)
    centre = torch.tensor([0.2, -0.1, 0.3])
    origins, directions = cameras.rays()
    oc = origins - centre
    b = (oc * directions).sum(-1)
    hit = b * b - (oc * oc).sum(-1) + 0.25 >= 0
    transform = from_masks(cameras, hit, target_radius=1.0, resolution=48)
    assert transform is not None and transform.method == "mask visual hull"
    assert float((transform.offset - centre).norm()) < 0.05
    radius = 1.0 / transform.scale
    assert 0.5 <= radius < 0.75  # the hull is larger than the sphere (finite views), never smaller
    assert from_masks(cameras, torch.zeros_like(hit)) is None
