"""Bad input: each case is a one-line DatasetError naming the file and the problem."""

from __future__ import annotations

import json

import numpy as np
import pytest

from data.colmap import write_colmap
from data.dataset import MultiViewDataset, load_scene
from data.errors import DatasetError
from data.images import write_image
from data.llff import write_llff
from data.nerf_synthetic import write_nerf_synthetic
from data.nerfstudio import write_nerfstudio
from tests.data.scenes import known_points, noise_images, ring_cameras


def nerf_synthetic(root, n=4, alpha=True):
    write_nerf_synthetic(root, ring_cameras(n), noise_images(n, alpha=alpha), {"train": list(range(n))})
    return root / "transforms_train.json"


def edit_json(path, change):
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def expect(message: str, path_part: str, fn, *args, **kwargs):
    with pytest.raises(DatasetError, match=message) as error:
        fn(*args, **kwargs)
    text = str(error.value)
    assert path_part in text and "\n" not in text
    return text


def test_missing_image(tmp_path):
    nerf_synthetic(tmp_path)
    (tmp_path / "train" / "r_2.png").unlink()
    expect("image not found", "r_2", load_scene, tmp_path)


def test_unreadable_image(tmp_path):
    nerf_synthetic(tmp_path)
    (tmp_path / "train" / "r_1.png").write_bytes(b"not a png at all")
    # Parsing only probes the first image's size; decoding the split finds the bad file.
    with pytest.raises(DatasetError, match="r_1.png: cannot (decode|read) image"):
        MultiViewDataset(load_scene(tmp_path), "train")


def test_malformed_json(tmp_path):
    path = nerf_synthetic(tmp_path)
    path.write_text('{"frames": [}')
    expect("malformed JSON", "transforms_train.json", load_scene, tmp_path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("frames"), "missing 'frames'"),
        (lambda d: d["frames"][1].pop("transform_matrix"), "frame 1: missing 'transform_matrix'"),
        (
            lambda d: [d.pop(k) for k in ("camera_angle_x", "fl_x")] and [f.pop("fx") for f in d["frames"]],
            "camera_angle_x",
        ),
        (
            lambda d: d["frames"][2].update(transform_matrix=[[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1]]),
            "transform",
        ),
    ],
)
def test_incomplete_json(tmp_path, change, message):
    path = nerf_synthetic(tmp_path)
    edit_json(path, change)
    expect(message, "transforms_train.json", load_scene, tmp_path)


def test_non_finite_matrix(tmp_path):
    path = nerf_synthetic(tmp_path)
    edit_json(path, lambda d: d["frames"][0]["transform_matrix"][0].__setitem__(3, float("nan")))
    expect("non-finite", "frame 0", load_scene, tmp_path)


def test_unknown_camera_model(tmp_path):
    write_nerfstudio(tmp_path / "ns", ring_cameras(3), noise_images(3))
    edit_json(tmp_path / "ns" / "transforms.json", lambda d: d.update(camera_model="EQUIRECTANGULAR"))
    expect("unsupported camera_model 'EQUIRECTANGULAR'", "transforms.json", load_scene, tmp_path / "ns")
    write_colmap(tmp_path / "cm", ring_cameras(3), noise_images(3), known_points().numpy())
    cameras_txt = tmp_path / "cm" / "sparse" / "0" / "cameras.txt"
    cameras_txt.write_text(cameras_txt.read_text().replace("PINHOLE", "OPENCV_FISHEYE"))
    expect("unsupported camera model OPENCV_FISHEYE", "sparse", load_scene, tmp_path / "cm")


def test_images_of_different_sizes(tmp_path):
    nerf_synthetic(tmp_path)
    write_image(tmp_path / "train" / "r_3.png", np.zeros((10, 12, 4), dtype=np.uint8))
    expect("is 12x10, expected 40x30", "r_3.png", load_scene, tmp_path)  # found when parsing: any split


def test_masks_missing_for_some_views(tmp_path):
    cameras, images = ring_cameras(4), noise_images(4)
    masks = [image[..., 3] for image in images]
    write_nerfstudio(tmp_path / "ns", cameras, images, masks=masks)
    edit_json(tmp_path / "ns" / "transforms.json", lambda d: d["frames"][2].pop("mask_path"))
    expect("frame 2: 'mask_path' missing", "transforms.json", load_scene, tmp_path / "ns")
    write_colmap(tmp_path / "cm", cameras, images, known_points().numpy())
    (tmp_path / "cm" / "masks").mkdir()
    write_image(tmp_path / "cm" / "masks" / "view_0000.png.png", masks[0])
    expect("no mask for image 'view_0001.png'", "masks", load_scene, tmp_path / "cm")


def test_zero_views_in_a_split(tmp_path):
    nerf_synthetic(tmp_path)
    expect("no views in split 'test'", "NeRF-synthetic", MultiViewDataset, load_scene(tmp_path), "test")
    edit_json(tmp_path / "transforms_train.json", lambda d: d.update(frames=[]))
    expect("no views in split 'train'", "transforms_train.json", load_scene, tmp_path)


def test_unknown_format_and_missing_folder(tmp_path):
    expect("no images and no known dataset format", str(tmp_path), load_scene, tmp_path)
    expect("dataset folder not found", "nowhere", load_scene, tmp_path / "nowhere")


def test_no_alpha_no_masks_warns(tmp_path):
    nerf_synthetic(tmp_path, alpha=False)
    with pytest.warns(UserWarning, match="no alpha and no masks"):
        dataset = MultiViewDataset(load_scene(tmp_path), "train")
    assert not dataset.has_masks and dataset.transform.method == "camera look-at point"


def test_colmap_and_llff_numbers_out_of_range(tmp_path):
    write_colmap(tmp_path / "cm", ring_cameras(3), noise_images(3), known_points().numpy())
    model = tmp_path / "cm" / "sparse" / "0"
    cameras_txt = model / "cameras.txt"
    cameras_txt.write_text(cameras_txt.read_text().replace(" 45.0 45.0", " -45.0 -45.0"))
    expect("camera 1 needs positive focal lengths", "view_0000.png", load_scene, tmp_path / "cm")
    (model / "points3D.txt").write_text("1 a b c 128 128 128 0\n")
    expect("points3D.txt:1: malformed point line", "points3D.txt", load_scene, tmp_path / "cm")
    write_llff(tmp_path / "llff", ring_cameras(3), noise_images(3), 1.0, 5.0)
    poses = np.load(tmp_path / "llff" / "poses_bounds.npy")
    poses[:, 15] = -1.0
    np.save(tmp_path / "llff" / "poses_bounds.npy", poses)
    expect("must satisfy 0 < near < far", "poses_bounds.npy", load_scene, tmp_path / "llff")
