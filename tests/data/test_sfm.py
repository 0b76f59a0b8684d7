"""Camera poses of a folder of photos by structure from motion (pycolmap), and its bad inputs."""

from __future__ import annotations

import os
import shutil

import imageio.v3 as iio
import numpy as np
import pytest

pytest.importorskip("pycolmap")

import data.sfm as sfm  # noqa: E402
from data.cameras import pose_errors, similarity_from_centres  # noqa: E402
from data.dataset import MultiViewDataset, load_scene  # noqa: E402
from data.errors import DatasetError  # noqa: E402
from data.images import exif_orientation, write_image  # noqa: E402
from data.nerf_synthetic import load_nerf_synthetic  # noqa: E402
from data.sfm import choose_pairs, run_sfm  # noqa: E402
from recon.scenes.synthetic import SyntheticConfig  # noqa: E402
from tests.capture import CaptureConfig, make_capture_scene  # noqa: E402


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    """16 photos (192^2) of the built-in object on a table, their SfM model and the truth."""
    root = tmp_path_factory.mktemp("capture")
    config = CaptureConfig(SyntheticConfig(resolution=192, light_resolution=32, mesh_resolution=64), views=16)
    make_capture_scene(root / "photos", root / "truth", config)
    scene = load_scene(root / "photos", progress=False)  # sfm=auto: there are no poses yet
    return root, scene, load_nerf_synthetic(root / "truth")


def _truth_cameras(scene, truth):
    by_view = {int(p.stem.split("_")[-1]): i for i, p in enumerate(truth.image_paths)}
    return truth.cameras[[by_view[int(p.stem.split("_")[-1])] for p in scene.image_paths]]


def test_sfm_registers_every_photo_with_accurate_poses_in_an_upright_frame(capture, report):
    root, scene, truth = capture
    assert (root / "photos" / "sparse" / "0" / "cameras.bin").is_file()
    assert len(scene.image_paths) == 16
    true_cameras = _truth_cameras(scene, truth)
    errors = pose_errors(scene.cameras, true_cameras)
    report(f"SfM, 16 photos at 192^2: mean rotation error {errors['rotation_error_deg']:.3f} deg")
    assert errors["rotation_error_deg"] < 1.0 and errors["centre_error"] < 0.01
    _, rotation, _ = similarity_from_centres(scene.cameras.centers, true_cameras.centers)
    assert (
        float(rotation[2, 2]) > 0.999
    )  # the model was re-oriented: its +Z is the true up (the table's normal)
    assert bool((scene.cameras.centers[:, 2] > 0).all())  # and the table is at z = 0, below the cameras
    assert scene.points is not None and float(scene.points[:, 2].abs().median()) < 0.02


def test_a_second_load_reuses_the_model_and_force_redoes_it(capture):
    root, _, _ = capture
    model = root / "photos" / "sparse" / "0" / "images.bin"
    before = model.stat().st_mtime_ns
    load_scene(root / "photos", progress=False)
    assert model.stat().st_mtime_ns == before
    load_scene(root / "photos", sfm="off", progress=False)
    assert model.stat().st_mtime_ns == before


def test_photos_beside_the_model_without_an_images_folder(capture, tmp_path):
    root, _, _ = capture
    for path in sorted((root / "photos" / "images").iterdir()):
        os.link(path, tmp_path / path.name)
    scene = load_scene(tmp_path, progress=False)
    assert len(scene.image_paths) == 16 and scene.image_paths[0].parent == tmp_path
    assert (tmp_path / "sparse" / "0" / "images.bin").is_file()


def test_sfm_bad_inputs_get_one_line(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="no images"):
        load_scene(empty, progress=False)
    mixed = tmp_path / "mixed" / "images"
    write_image(mixed / "a.png", np.zeros((32, 32, 3), np.uint8))
    write_image(mixed / "b.png", np.zeros((40, 32, 3), np.uint8))
    with pytest.raises(DatasetError, match="b.png: image is 32x40, but a.png is 32x32"):
        run_sfm(mixed.parent, progress=False)
    broken = tmp_path / "broken" / "images"
    write_image(broken / "a.png", np.zeros((32, 32, 3), np.uint8))
    (broken / "b.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match="b.png: cannot read image"):
        run_sfm(broken.parent, progress=False)
    with pytest.raises(DatasetError, match="unknown sfm mode"):
        load_scene(broken.parent, sfm="sometimes", progress=False)


def test_noise_photos_do_not_register(tmp_path):
    rng = np.random.default_rng(0)
    for view in range(6):
        write_image(tmp_path / "images" / f"{view}.png", rng.integers(0, 256, (96, 96, 3), dtype=np.uint8))
    with pytest.raises(DatasetError, match=r"registered \d+ of 6 images; take more photos"):
        run_sfm(tmp_path, progress=False)
    assert not (tmp_path / "sparse").exists() and not (tmp_path / "sfm").exists()  # nothing half-written


def test_pairs_every_one_for_a_small_set_and_chosen_ones_beyond(monkeypatch):
    """Up to EXHAUSTIVE_UP_TO photos every pair; beyond, the file-order neighbours (cyclically) and the
    photos that share visual words, even far apart in file order; far fewer than every pair."""
    rng = np.random.default_rng(0)
    names = [f"{i:02d}.jpg" for i in range(12)]
    assert len(choose_pairs(names, [np.zeros((0, 128), np.uint8)] * 12)) == 66
    monkeypatch.setattr(sfm, "EXHAUSTIVE_UP_TO", 8)
    monkeypatch.setattr(sfm, "SEQUENTIAL_OVERLAP", 2)
    monkeypatch.setattr(sfm, "RETRIEVAL_NEIGHBOURS", 1)
    monkeypatch.setattr(sfm, "VOCABULARY_WORDS", 128)
    places = rng.integers(0, 256, (6, 40, 128))  # photo i and i + 6 see the same place: the same features
    noise = rng.integers(-3, 4, (12, 40, 128))
    descriptors = [np.clip(places[i % 6] + noise[i], 0, 255).astype(np.uint8) for i in range(12)]
    pairs = choose_pairs(names, descriptors)
    assert ("00.jpg", "01.jpg") in pairs and ("00.jpg", "02.jpg") in pairs and ("00.jpg", "11.jpg") in pairs
    assert all((names[i], names[i + 6]) in pairs for i in range(6))  # found by their visual words
    assert len(pairs) == len(set(pairs)) < 66 and all(a < b for a, b in pairs)


def test_an_interrupted_sfm_continues_from_its_database(capture, tmp_path):
    """The database (features, matches) stays while the photos do, so a second SfM skips what it holds;
    another set of photos starts a new one."""
    root, _, _ = capture
    photos = tmp_path / "photos"
    shutil.copytree(root / "photos" / "images", photos / "images")
    run_sfm(photos, progress=False)
    database = photos / "sfm" / "database.db"
    kept = database.stat().st_ino
    shutil.rmtree(photos / "sparse")  # as if stopped before the model was written
    run_sfm(photos, progress=False)
    assert database.stat().st_ino == kept and (photos / "sparse" / "0" / "images.bin").is_file()
    first = sorted((photos / "images").iterdir())[0]
    write_image(first, np.asarray(iio.imread(first))[:, :, :3] // 2 * 2)  # another photo of the same name
    run_sfm(photos, progress=False)
    assert database.stat().st_ino != kept


def test_phone_jpegs_with_portrait_shots_register_and_load(tmp_path, report):
    """JPEGs with a phone's EXIF, every third shot held upright (the camera rolled by 90 degrees, its
    pixels stored as the sensor's with Orientation 6): one size, so one camera; the pixels are used as
    stored in SfM and in training alike, and the portrait shots are rolled cameras."""
    config = CaptureConfig(
        SyntheticConfig(resolution=192, light_resolution=32, mesh_resolution=64), views=16, jpeg=True,
        portrait_every=3,
    )  # fmt: skip
    make_capture_scene(tmp_path / "photos", tmp_path / "truth", config)
    photos = sorted((tmp_path / "photos" / "images").iterdir())
    assert [exif_orientation(path) for path in photos[:3]] == [1, 1, 6]
    scene = load_scene(tmp_path / "photos", progress=False)
    truth = load_nerf_synthetic(tmp_path / "truth")
    errors = pose_errors(scene.cameras, _truth_cameras(scene, truth))
    error = errors["rotation_error_deg"]
    report(f"SfM, 16 phone-like JPEGs (5 portrait) at 192^2: rotation error {error:.3f} deg")
    assert len(scene.image_paths) == 16 and errors["rotation_error_deg"] < 1.0
    dataset = MultiViewDataset(scene, "train", downscale=2)
    assert tuple(dataset.rgba.shape[1:3]) == (96, 96)
