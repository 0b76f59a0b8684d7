"""data.fingerprint: the same data gives the same fingerprint wherever it lies; other views, bytes or
cameras are named."""

from __future__ import annotations

import json
import shutil

from data.dataset import load_scene
from data.fingerprint import fingerprint_difference, scene_fingerprint
from data.images import write_image
from data.nerf_synthetic import write_nerf_synthetic
from tests.data.scenes import noise_images, ring_cameras


def fingerprint(root):
    return scene_fingerprint(load_scene(root), root)


def test_the_same_data_anywhere(tmp_path):
    write_nerf_synthetic(
        tmp_path / "a", ring_cameras(5), noise_images(5), {"train": [0, 1, 2], "test": [3, 4]}
    )
    stored = fingerprint(tmp_path / "a")
    assert stored["splits"]["test"] == ["test/r_3.png", "test/r_4.png"] and stored["size"] == [40, 30]
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    assert fingerprint_difference(stored, fingerprint(tmp_path / "b")) is None
    assert json.loads(json.dumps(stored)) == stored  # what run.json keeps


def test_what_differs_is_named(tmp_path):
    root = tmp_path / "a"
    write_nerf_synthetic(root, ring_cameras(5), noise_images(5), {"train": [0, 1, 2], "test": [3, 4]})
    stored = fingerprint(root)
    write_image(root / "train" / "r_1.png", noise_images(1, seed=9)[0])
    assert fingerprint_difference(stored, fingerprint(root)) == "1 files changed (train/r_1.png)"
    write_nerf_synthetic(root, ring_cameras(6), noise_images(6), {"train": [0, 1, 2, 5], "test": [3, 4]})
    assert fingerprint_difference(stored, fingerprint(root)) == "split 'train': views 1 added (train/r_5.png)"
    write_nerf_synthetic(
        root, ring_cameras(5, radius=4.0), noise_images(5), {"train": [0, 1, 2], "test": [3, 4]}
    )
    assert fingerprint_difference(stored, fingerprint(root)) == "the cameras (poses or intrinsics) changed"
    (root / "transforms_test.json").unlink()
    assert fingerprint_difference(stored, fingerprint(root)) == (
        "split 'test': views 2 removed (test/r_3.png, test/r_4.png)"
    )
