"""The world's up axis: known for NeRF-synthetic, estimated from the cameras elsewhere; the rotations the
exports derive from it."""

from __future__ import annotations

import math

import torch

from data.cameras import Camera
from data.colmap import write_colmap
from data.dataset import MultiViewDataset, load_scene
from data.nerf_synthetic import write_nerf_synthetic
from data.orientation import estimate_up, rotation_to_z_up, world_to_gltf
from tests.data.scenes import known_points, noise_images, ring_cameras


def _rotation(axis, angle: float) -> torch.Tensor:
    k = torch.nn.functional.normalize(torch.tensor(axis, dtype=torch.float64), dim=0)
    skew = torch.tensor([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]], dtype=torch.float64)
    return torch.eye(3, dtype=torch.float64) + math.sin(angle) * skew + (1 - math.cos(angle)) * skew @ skew


def test_rotation_to_z_up_is_a_proper_rotation_taking_up_to_z():
    for up in ((0, 0, 1), (0, 0, -1), (1, 0, 0), (0.3, -0.5, 0.8), (1e-9, 0, -1)):
        r = rotation_to_z_up(up)
        a = torch.nn.functional.normalize(torch.tensor(up, dtype=torch.float64), dim=0)
        assert torch.allclose(r @ a, torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64), atol=1e-9)
        assert torch.allclose(r @ r.T, torch.eye(3, dtype=torch.float64), atol=1e-12)
        assert abs(float(torch.linalg.det(r)) - 1) < 1e-12
    assert torch.equal(rotation_to_z_up((0, 0, 1)), torch.eye(3, dtype=torch.float64))
    # glTF: a Z-up world's (x, y, z) -> (x, z, -y).
    point = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    assert torch.allclose(
        world_to_gltf((0, 0, 1)) @ point, torch.tensor([1.0, 3.0, -2.0], dtype=torch.float64)
    )


def test_estimated_up_follows_a_rotated_capture():
    cameras = ring_cameras(10)
    up = torch.tensor(estimate_up(cameras))
    assert float(up @ torch.tensor([0.0, 0.0, 1.0])) > math.cos(
        math.radians(25)
    )  # the ring looks slightly down
    turn = _rotation((1.0, 0.4, 0.0), 1.1).float()
    c2w = cameras.c2w.clone()
    c2w[:, :3, :3] = turn @ c2w[:, :3, :3]
    c2w[:, :3, 3] = c2w[:, :3, 3] @ turn.T
    rotated = Camera(c2w, cameras.fx, cameras.fy, cameras.cx, cameras.cy, cameras.width, cameras.height)
    assert torch.allclose(torch.tensor(estimate_up(rotated)).float(), turn @ up.float(), atol=1e-5)


def test_datasets_record_where_their_up_comes_from(tmp_path):
    cameras, images = ring_cameras(6), noise_images(6)
    write_nerf_synthetic(tmp_path / "blender", cameras, images, {"train": [0, 1, 2, 3], "test": [4, 5]})
    known = MultiViewDataset(load_scene(tmp_path / "blender"), "train")
    assert known.transform.up == (0.0, 0.0, 1.0) and "convention" in known.transform.up_source
    write_colmap(tmp_path / "colmap", cameras, images, known_points().numpy())
    estimated = MultiViewDataset(load_scene(tmp_path / "colmap"), "train")
    assert "estimated" in estimated.transform.up_source
    expected = torch.tensor(estimate_up(cameras[estimated.views]))  # from the training views
    assert torch.allclose(torch.tensor(estimated.transform.up), expected, atol=1e-4)
