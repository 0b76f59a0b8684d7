"""Round trip through every format: the same pixels for known 3D points, the same images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from data.colmap import load_colmap, write_colmap
from data.dataset import MultiViewDataset, load_scene
from data.images import read_rgba
from data.llff import load_llff, write_llff
from data.nerf_synthetic import load_nerf_synthetic, write_nerf_synthetic
from data.nerfstudio import load_nerfstudio, write_nerfstudio
from recon.scenes.synthetic import SyntheticConfig, make_synthetic_scene
from tests.data.scenes import known_points, noise_images, ring_cameras

N = 10


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """A small scene from the synthetic generator: its cameras, decoded views and mesh vertices."""
    config = SyntheticConfig(
        n_train=8, n_val=1, n_test=1, resolution=48, mesh_resolution=48, light_resolution=16
    )
    synthetic = make_synthetic_scene(tmp_path_factory.mktemp("synthetic"), config)
    images = [read_rgba(path) for path in synthetic.scene.image_paths]
    return synthetic.scene.cameras, images, synthetic.mesh.vertices[::37]


def write(fmt: str, root, cameras, images):
    if fmt == "nerf_synthetic":
        write_nerf_synthetic(root, cameras, images, {"train": list(range(len(images)))})
    elif fmt == "nerfstudio":
        write_nerfstudio(root, cameras, images)
    elif fmt in ("colmap_text", "colmap_binary"):
        write_colmap(root, cameras, images, known_points().numpy(), binary=fmt == "colmap_binary")
    else:
        write_llff(root, cameras, images, near=1.0, far=5.0)


@pytest.mark.parametrize("fmt", ["nerf_synthetic", "nerfstudio", "colmap_text", "colmap_binary", "llff"])
def test_round_trip(tmp_path, fmt, rendered, report):
    cameras, images, points = rendered
    write(fmt, tmp_path, cameras, images)
    scene = load_scene(tmp_path, test_every=0)
    assert scene.source.lower().startswith(fmt.split("_")[0])
    assert len(scene.image_paths) == len(images)
    expected, expected_depth = cameras.project(points)
    loaded, depth = scene.cameras.project(points)
    error = float((loaded - expected).abs().max())
    assert error < 0.1 and bool((depth > 0).all())
    torch.testing.assert_close(depth, expected_depth, rtol=1e-4, atol=1e-4)
    dataset = MultiViewDataset(scene, "train", background="black", transform=None)
    assert torch.equal(dataset.rgba, torch.from_numpy(np.stack(images)))
    if fmt.startswith("colmap"):
        torch.testing.assert_close(scene.points, known_points(), atol=1e-6, rtol=0)
    report(f"round trip {fmt}: max pixel error {error:.1e} px")


def test_loaders_by_name(tmp_path):
    cameras, images = ring_cameras(N), noise_images(N)
    for fmt, loader in (
        ("nerf_synthetic", load_nerf_synthetic),
        ("nerfstudio", load_nerfstudio),
        ("colmap_text", load_colmap),
        ("llff", load_llff),
    ):
        root = tmp_path / fmt
        write(fmt, root, cameras, images)
        assert len(loader(root).image_paths) == N


def test_holdout_split(tmp_path):
    write("llff", tmp_path, ring_cameras(N), noise_images(N))
    scene = load_scene(tmp_path, test_every=4)
    assert scene.splits["test"] == [0, 4, 8] and scene.splits["train"] == [1, 2, 3, 5, 6, 7, 9]
