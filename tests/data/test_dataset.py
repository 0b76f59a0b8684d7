"""Dataset: caching, compositing, downscale, batches, workers, undistortion; the shared scenes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from data.dataset import MultiViewDataset, load_scene
from data.distortion import Distortion, undistort
from data.images import linear_to_srgb, srgb_to_linear
from data.nerf_synthetic import write_nerf_synthetic
from geometry.obj import read_obj
from tests.data.scenes import noise_images, ring_cameras
from tests.helpers import SHARED


@pytest.fixture
def dataset(tmp_path):
    write_nerf_synthetic(tmp_path, ring_cameras(6), noise_images(6), {"train": [0, 1, 2, 3], "test": [4, 5]})
    return MultiViewDataset(load_scene(tmp_path), "train", background="white")


def test_batches_composite_in_linear_space(dataset):
    assert dataset.rgba.dtype == torch.uint8 and dataset.rgba.shape == (4, 30, 40, 4)
    batch = dataset.batch([2, 0])
    rgba = dataset.rgba[[2, 0]].float() / 255
    expected = srgb_to_linear(rgba[..., :3]) * rgba[..., 3:] + (1 - rgba[..., 3:])
    torch.testing.assert_close(batch.images, expected)
    torch.testing.assert_close(batch.masks, rgba[..., 3:])
    assert len(batch.cameras) == 2 and torch.equal(batch.cameras.c2w[1], dataset.cameras.c2w[0])
    sample = dataset.sample(6, torch.Generator().manual_seed(0))
    assert sample.images.shape == (6, 30, 40, 3) and set(sample.views[:4].tolist()) == {0, 1, 2, 3}


def test_cropped_batches_keep_pixels_and_cameras_together(dataset):
    batch = dataset.batch([0, 1, 2, 3])
    window = batch.cropped(16, torch.Generator().manual_seed(3))
    assert window.images.shape == (4, 16, 16, 3) and window.masks.shape == (4, 16, 16, 1)
    full_directions = batch.cameras.rays()[1]
    directions = window.cameras.rays()[1]
    for b in range(4):  # find each window in its image by its top-left ray, then compare the pixels
        top, left = (
            int(batch.cameras.cy[b] - window.cameras.cy[b]),
            int(batch.cameras.cx[b] - window.cameras.cx[b]),
        )
        torch.testing.assert_close(directions[b, 0, 0], full_directions[b, top, left], atol=1e-5, rtol=0)
        torch.testing.assert_close(window.images[b], batch.images[b, top : top + 16, left : left + 16])
        torch.testing.assert_close(window.masks[b], batch.masks[b, top : top + 16, left : left + 16])
    corners = {
        (int(batch.cameras.cy[b] - window.cameras.cy[b]), int(batch.cameras.cx[b] - window.cameras.cx[b]))
        for b in range(4)
    }
    assert len(corners) > 1  # one window per view, drawn at random
    tall = batch.cropped(100, torch.Generator().manual_seed(0))  # larger than the image: whole views
    assert tall is batch
    narrow = batch.cropped(35, torch.Generator().manual_seed(0))  # 35 x 35 of 40 x 30: clamped to 35 x 30
    assert narrow.images.shape == (4, 30, 35, 3) and narrow.cameras.width == 35


def test_random_background_differs_per_view(tmp_path):
    write_nerf_synthetic(tmp_path, ring_cameras(4), noise_images(4), {"train": [0, 1, 2, 3]})
    dataset = MultiViewDataset(load_scene(tmp_path), "train", background="random")
    batch = dataset.sample(4, torch.Generator().manual_seed(0))
    assert batch.background.shape == (4, 1, 1, 3) and float(batch.background.std(0).mean()) > 0.05


def test_downscale_keeps_cameras_consistent(tmp_path):
    write_nerf_synthetic(tmp_path, ring_cameras(4), noise_images(4), {"train": [0, 1, 2, 3]})
    scene = load_scene(tmp_path)
    full = MultiViewDataset(scene, "train")
    half = MultiViewDataset(scene, "train", downscale=2, transform=full.transform)
    assert half.rgba.shape == (4, 15, 20, 4)
    points = torch.randn(20, 3) * 0.2
    torch.testing.assert_close(
        half.cameras.project(points)[0], full.cameras.project(points)[0] / 2, atol=1e-4, rtol=0
    )
    # Area downscale in linear light: each output pixel is the mean of its 2x2 block (alpha-weighted).
    block = full.rgba[0, :2, :2].float() / 255
    alpha = block[..., 3:]
    rgb = (srgb_to_linear(block[..., :3]) * alpha).sum((0, 1)) / alpha.sum()
    expected = linear_to_srgb(rgb) * 255
    assert float((half.rgba[0, 0, 0, :3].float() - expected).abs().max()) <= 1.0


def test_split_iteration_and_dataloader(dataset):
    assert [b.views.item() for b in dataset] == [0, 1, 2, 3]
    loader = torch.utils.data.DataLoader(dataset, batch_size=2, num_workers=1)
    items = list(loader)
    assert items[0]["image"].shape == (2, 30, 40, 3) and items[1]["view"].tolist() == [2, 3]


def test_undistortion_recovers_the_pinhole_image():
    """Render a smooth pattern through the OPENCV model (inverse mapping by fixed-point iteration),
    undistort it, compare with the pattern rendered through the ideal pinhole."""
    width, height, f, cx, cy = 160, 120, 140.0, 82.0, 58.0
    distortion = Distortion(k1=-0.12, k2=0.03, p1=0.002, p2=-0.001)

    def pattern(x, y):  # normalized camera coordinates -> [0, 255]
        return 127.5 + 100 * torch.sin(6 * x) * torch.cos(5 * y)

    v, u = torch.meshgrid(torch.arange(height) + 0.5, torch.arange(width) + 0.5, indexing="ij")
    xd, yd = ((u - cx) / f).double(), ((v - cy) / f).double()
    x, y = xd.clone(), yd.clone()
    for _ in range(50):  # solve distort(x, y) = (xd, yd)
        fx_, fy_ = distortion.apply(x, y)
        x, y = x - (fx_ - xd), y - (fy_ - yd)
    distorted = pattern(x, y).round().clamp(0, 255).to(torch.uint8)
    image = np.repeat(distorted.numpy()[..., None], 4, axis=2)
    restored = undistort(image, distortion, f, f, cx, cy)[..., 0].astype(np.float64)
    ideal = pattern((u - cx) / f, (v - cy) / f).numpy()
    interior = np.s_[10:-10, 10:-10]  # corners map outside the distorted image
    error = np.abs(restored - ideal)[interior]
    assert error.mean() < 1.0 and error.max() < 6.0


@pytest.mark.skipif(not (SHARED / "nerf_synthetic" / "lego").is_dir(), reason="shared data not present")
def test_lego_loads():
    scene = load_scene(SHARED / "nerf_synthetic" / "lego")
    assert len(scene.splits["train"]) == 90 and len(scene.splits["test"]) == 10
    assert (scene.cameras.width, scene.cameras.height) == (800, 800)
    assert float(scene.cameras.fx[0]) == pytest.approx(1111.11, abs=0.1)


@pytest.mark.skipif(not (SHARED / "spot_mitsuba").is_dir(), reason="shared data not present")
def test_spot_mitsuba_mesh_projects_inside_alpha(report):
    root = SHARED / "spot_mitsuba"
    scene = load_scene(root)
    assert {k: len(v) for k, v in scene.splits.items()} == {"train": 100, "val": 8, "test": 20}
    dataset = MultiViewDataset(scene, "test", background="black")
    vertices = read_obj(root / "gt_mesh.obj").vertices
    # Raw (un-normalized) cameras: the mesh is in the dataset's world units.
    cameras = scene.cameras[dataset.views]
    xy, depth = cameras.project(vertices)
    x = xy[..., 0].floor().long().clamp(0, cameras.width - 1)
    y = xy[..., 1].floor().long().clamp(0, cameras.height - 1)
    alpha = torch.stack([dataset.rgba[i, y[i], x[i], 3] for i in range(len(cameras))])
    inside = ((alpha > 0) & (depth > 0)).float().mean()
    report(f"spot_mitsuba: {100 * float(inside):.2f}% of gt_mesh vertices inside the alpha (20 test views)")
    assert float(inside) >= 0.99
    # The visual-hull normalization contains the mesh.
    assert float(dataset.transform.to_normalized(vertices).norm(dim=-1).max()) < 1.0
