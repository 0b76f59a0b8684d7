"""A catalogue of hostile inputs, as a new user makes them: each ends with one line naming the file or key
(or with the documented behaviour), no traceback, and no earlier file changed.

A run folder is a record:
  resume reloads the run's own config.yaml ............ test_resume_takes_the_runs_own_configuration
  resume with another dataset ......................... test_resume_with_other_data_is_refused
  a new run over a finished run (checkpoints deleted) . test_a_new_run_refuses_a_finished_runs_folder
  train.overwrite=true replaces the folder whole ...... test_overwrite_replaces_the_folder_as_a_whole
  resume into a mistyped folder, or no folder named ... test_resume_into_a_folder_without_a_run
  two train.py in one folder .......................... test_run_folder.py::test_one_train_py_at_a_time
  train.log holds the run's lines ..................... test_train_log_holds_the_runs_lines
Configuration:
  +experiment=photos without dataset.path ............. test_photos_preset_needs_its_folder
  +train.stepz=5 (Hydra's suggestion) ................. test_an_added_unknown_key_is_rejected
  model.light.resolution=96, model.grid.resolution=3 .. test_values_that_failed_late
  a non-ASCII character in an unquoted path ........... test_an_unquoted_non_ascii_path
Dataset:
  a view without alpha among RGBA views, empty masks .. test_masks_that_cannot_be_meant
  photos added after SfM .............................. test_photos_added_after_sfm
  degenerate rotations (NeRF-synthetic, LLFF) ......... test_degenerate_rotations
  non-numeric intrinsics .............................. test_non_numeric_intrinsics
  a test image of another size ........................ test_a_test_image_of_another_size
  downscaled to nothing, a bbox no view sees .......... test_views_that_cannot_train
  a dataset with only transforms_train.json ........... test_a_dataset_without_held_out_views
  portrait and landscape JPEGs (EXIF orientation) ..... test_mixed_orientation_names_exif
Files that cannot be written:
  checkpoints/ or the run folder unwritable ........... test_unwritable_checkpoint_and_record
Scripts:
  evaluate.py: a missing texture, a malformed config .. test_evaluate_on_a_damaged_run
  relight.py --frames 0, a bad --env .................. test_relight_rejects_bad_arguments_at_once
In tests/recon/: a second signal mid-step, test_loop.py::test_a_second_signal_names_the_kept_checkpoint;
the resume rules key by key, test_resume.py.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from data.dataset import MultiViewDataset, load_scene
from data.errors import DatasetError
from data.images import write_image
from data.llff import write_llff
from data.nerf_synthetic import write_nerf_synthetic
from tests.data.scenes import noise_images, ring_cameras
from tests.helpers import ROOT, TINY, TINY_SYNTHETIC, train


def tiny(*changes: str) -> list[str]:
    """The tiny test settings (TINY, TINY_SYNTHETIC) with ``changes`` (key=value) in place of theirs."""
    keys = {change.split("=", 1)[0] for change in changes}
    return [a for a in (*TINY, *TINY_SYNTHETIC) if a.split("=", 1)[0] not in keys] + list(changes)


def one_line(result: subprocess.CompletedProcess, exit_code: int = 1) -> str:
    """The one ``train.py:``-style line a failed command printed (and nothing that looks like a traceback)."""
    assert result.returncode == exit_code, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr[-2000:]
    return lines[0]


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` and a digest of its bytes."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def script(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *arguments], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A finished tiny run of the built-in scene with non-default settings (TINY)."""
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    result = train(run_dir, *TINY, *TINY_SYNTHETIC, threads=1)
    assert result.returncode == 0, result.stderr[-2000:]
    return run_dir


@pytest.fixture
def run_copy(finished_run, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(finished_run, copy)
    return copy


# ------------------------------------------------------------------------------- a run folder is a record


def test_resume_takes_the_runs_own_configuration(run_copy):
    """The README's resume command on a finished run with non-default settings: the run's own settings
    (not the defaults), nothing redone or rewritten, the resume recorded in run.json."""
    before = snapshot(run_copy)
    result = train(run_copy, "train.resume=true")
    assert result.returncode == 0, result.stderr[-2000:]
    after = snapshot(run_copy)
    changed = {name for name in before if before[name] != after.get(name)}
    assert changed == {"run.json", "train.log"}, changed  # config.yaml, checkpoints, assets, metrics kept
    record = json.loads((run_copy / "run.json").read_text())
    assert (
        record["resumes"][-1]["command"] == ["train.resume=true"] and record["resumes"][-1]["changed"] == {}
    )
    refused = one_line(train(run_copy, "train.resume=true", "model.grid.resolution=64", "train.seed=3"))
    assert "cannot change what this run trained: model.grid.resolution=64 (the run's: 32)" in refused
    assert "train.seed=3 (the run's: 0)" in refused
    assert snapshot(run_copy) == after


def test_resume_with_other_data_is_refused(run_copy, tmp_path):
    """Another dataset (one image changed) is refused with what differs; the same data moved elsewhere
    resumes (its content is the run's)."""
    moved = tmp_path / "moved"
    shutil.copytree(run_copy / "synthetic", moved)
    before = snapshot(run_copy)
    assert train(run_copy, "train.resume=true", f"dataset.path={moved}").returncode == 0
    other = tmp_path / "other"
    shutil.copytree(run_copy / "synthetic", other)
    image = other / "train" / "r_1.png"
    write_image(image, np.zeros((32, 32, 4), dtype=np.uint8) + 128)
    after = snapshot(run_copy)
    error = one_line(train(run_copy, "train.resume=true", f"dataset.path={other}"))
    assert "the dataset is not the one this run was trained on (1 files changed (train/r_1.png)" in error
    assert snapshot(run_copy) == after
    assert {name for name in before if before[name] != after[name]} == {"run.json", "train.log"}


def test_a_new_run_refuses_a_finished_runs_folder(run_copy):
    shutil.rmtree(run_copy / "checkpoints")  # to save disk
    before = snapshot(run_copy)
    error = one_line(train(run_copy, *TINY, *TINY_SYNTHETIC))
    assert f"{run_copy}: holds an earlier run (config.yaml, run.json, progress.json, metrics.json" in error
    assert "train.overwrite=true" in error
    assert snapshot(run_copy) == before


def test_overwrite_replaces_the_folder_as_a_whole(run_copy):
    (run_copy / "eval" / "view_999.png").write_bytes(b"an earlier run's")
    result = train(run_copy, *tiny("train.overwrite=true", "evaluate=false", "stage2.steps=0"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert not (run_copy / "eval").exists() and not (run_copy / "metrics.json").exists()
    assert (run_copy / "mesh" / "mesh.obj").is_file()
    assert json.loads((run_copy / "run.json").read_text())["resumes"] == []


def test_resume_into_a_folder_without_a_run(tmp_path):
    error = one_line(train(tmp_path / "mistyped", "train.resume=true"))
    assert f"{tmp_path / 'mistyped'}: no run to resume here (no config.yaml)" in error
    assert not (tmp_path / "mistyped").exists()
    error = one_line(script("train.py", "train.resume=true"))  # which run?
    assert error == "train.py: train.resume=true needs hydra.run.dir=RUN, the folder of the run to continue"


def test_train_log_holds_the_runs_lines(finished_run, tmp_path):
    log = (finished_run / "train.log").read_text()
    assert log.startswith("[20") and log.rstrip().endswith(")") and "] train.py: done (" in log
    result = train(tmp_path, *tiny("train.progress=true", "stage2.steps=0", "evaluate=false"))
    assert result.returncode == 0, result.stderr[-2000:]
    lines = (tmp_path / "train.log").read_text().splitlines()
    assert [line.split("] ", 1)[1].split(":")[0] for line in lines if "stage 1:" in line] == ["stage 1"]
    assert any("stage 1: 100%" in line for line in lines)  # the progress bar as it ended, once


# ------------------------------------------------------------------------------------------ configuration


def test_photos_preset_needs_its_folder(tmp_path):
    error = one_line(train(tmp_path / "run", "+experiment=photos"))
    assert error == "train.py: +experiment=photos needs dataset.path=DIR, the folder of your photos"
    assert not (tmp_path / "run" / "synthetic").exists()


def test_an_added_unknown_key_is_rejected(tmp_path):
    error = one_line(train(tmp_path, "+train.stepz=5"))
    assert error.startswith("train.py: train.stepz: unknown key (did you mean train.steps?)")


def test_values_that_failed_late(tmp_path):
    error = one_line(train(tmp_path, "model.light.resolution=96"))
    assert "model.light.resolution=96: expected a power of two >= 8" in error
    error = one_line(train(tmp_path, "model.grid.resolution=3"))
    assert "model.grid.resolution=3: expected 16 times a power of two" in error
    error = one_line(train(tmp_path, "model.grid.resolution=96"))  # the narrow band's own check
    narrow_band = "expected coarse_resolution (16) times a power of two (the narrow band)"
    assert error == f"train.py: model.grid.resolution=96: {narrow_band}"
    assert not (tmp_path / "config.yaml").exists()


def test_an_unquoted_non_ascii_path(tmp_path):
    error = one_line(train(tmp_path / "run", f"dataset.path={tmp_path / 'café'}"))
    assert "quote values with spaces or characters other than" in error and "café" in error
    quoted = one_line(train(tmp_path / "run", f'dataset.path="{tmp_path / "café"}"'))
    assert quoted == f"train.py: {tmp_path / 'café'}: dataset folder not found"


# ---------------------------------------------------------------------------------------------- datasets


def nerf_synthetic(root: Path, n: int = 4, splits: dict | None = None) -> Path:
    write_nerf_synthetic(root, ring_cameras(n), noise_images(n), splits or {"train": list(range(n))})
    return root


def test_masks_that_cannot_be_meant(tmp_path, capsys):
    root = nerf_synthetic(tmp_path / "one_opaque")
    write_image(root / "train" / "r_2.png", noise_images(1, seed=5, alpha=False)[0][..., :3])  # RGB only
    MultiViewDataset(load_scene(root), "train")
    warning = capsys.readouterr().err.strip()
    assert warning == (
        f"warning: {root / 'train' / 'r_2.png'}: the mask covers the whole image (no transparent pixel, "
        "unlike the other views' masks): the background is taken for the object"
    )
    empty = nerf_synthetic(tmp_path / "empty")
    for view in range(4):
        image = noise_images(1, seed=view)[0]
        image[..., 3] = 0
        write_image(empty / "train" / f"r_{view}.png", image)
    with pytest.raises(DatasetError, match="every mask is empty"):
        MultiViewDataset(load_scene(empty), "train")


def test_views_that_cannot_train(tmp_path):
    """Images downscaled to almost nothing, and a ``dataset.bbox`` that no view looks into."""
    scene = load_scene(nerf_synthetic(tmp_path))
    with pytest.raises(DatasetError, match="downscaled by 10 are 4x3, below 8 pixels a side"):
        MultiViewDataset(scene, "train", downscale=10)
    with pytest.raises(DatasetError, match=r"dataset.bbox=\[5, 5, 5, 6, 6, 6\]: no view sees into this box"):
        MultiViewDataset(scene, "train", bbox=(5, 5, 5, 6, 6, 6))
    MultiViewDataset(scene, "train", bbox=(-0.5, -0.5, -0.5, 1, 1, 1))  # around what the cameras look at


def test_photos_added_after_sfm(tmp_path, monkeypatch, capsys):
    """A folder SfM made its model from (sfm/photos.json), then one more photo: ``dataset.sfm=auto`` runs
    SfM again, ``off`` (a resume) says so in one line and keeps the model."""
    from data import sfm
    from data.colmap import write_colmap
    from tests.data.scenes import known_points

    cameras, images = ring_cameras(5), noise_images(5, alpha=False)
    write_colmap(tmp_path, cameras, images[:4], known_points().numpy())
    (tmp_path / "sfm").mkdir()
    made = {p.name: p.stat().st_size for p in (tmp_path / "images").iterdir()}
    (tmp_path / "sfm" / "photos.json").write_text(json.dumps({"photos": made}))
    assert sfm.photos_changed(tmp_path) is None
    write_image(tmp_path / "images" / "view_0004.png", images[4])
    assert sfm.photos_changed(tmp_path) == "1 added (view_0004.png)"
    calls = []
    monkeypatch.setattr(sfm, "run_sfm", lambda root, progress=True: calls.append(root))
    sfm.ensure_poses(tmp_path, "off")
    assert (
        calls == []
        and "made by SfM before the photos changed (1 added (view_0004.png))" in capsys.readouterr().err
    )
    sfm.ensure_poses(tmp_path, "auto")
    assert calls == [tmp_path] and "running SfM again" in capsys.readouterr().out


def test_degenerate_rotations(tmp_path):
    root = nerf_synthetic(tmp_path / "nerf")
    path = root / "transforms_train.json"
    data = json.loads(path.read_text())
    data["frames"][1]["transform_matrix"] = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]]
    path.write_text(json.dumps(data))
    with pytest.raises(DatasetError, match=r"frame 1: the camera's rotation is degenerate \(rank 2 of 3\)"):
        load_scene(root)
    write_llff(tmp_path / "llff", ring_cameras(3), noise_images(3), 1.0, 5.0)
    poses = np.load(tmp_path / "llff" / "poses_bounds.npy")
    poses[:, :15] = 0  # all-zero poses (the bounds kept)
    np.save(tmp_path / "llff" / "poses_bounds.npy", poses)
    with pytest.raises(DatasetError, match=r"poses_bounds.npy row 0: the camera's rotation is degenerate"):
        load_scene(tmp_path / "llff")


@pytest.mark.parametrize("key", ["camera_angle_x", "fl_x", "w"])
def test_non_numeric_intrinsics(tmp_path, key):
    root = nerf_synthetic(tmp_path)
    path = root / "transforms_train.json"
    data = json.loads(path.read_text())
    for frame in data["frames"]:
        frame.pop("fx", None)
    if key == "camera_angle_x":
        data.pop("fl_x")
    data[key] = "forty"
    path.write_text(json.dumps(data))
    with pytest.raises(DatasetError, match=f"frame 0: '{key}' must be a number, got 'forty'"):
        load_scene(root)


def test_a_test_image_of_another_size(tmp_path):
    root = nerf_synthetic(tmp_path, 6, {"train": [0, 1, 2, 3], "test": [4, 5]})
    write_image(root / "test" / "r_5.png", np.zeros((10, 12, 4), dtype=np.uint8))
    expected = r"test/r_5.png: image is 12x10, expected 40x30 like the other views \(split test, val\)"
    with pytest.raises(DatasetError, match=expected):
        load_scene(root)


def test_a_dataset_without_held_out_views(finished_run, tmp_path):
    """Only transforms_train.json: said at the start, the run finishes, no evaluation (no metrics.json)."""
    data = tmp_path / "train_only"
    shutil.copytree(finished_run / "synthetic", data)
    for name in ("transforms_val.json", "transforms_test.json"):
        (data / name).unlink()
    result = train(tmp_path / "run", *tiny("stage2.steps=0", "train.volume.steps=0", f"dataset.path={data}"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "no test or val views, so the evaluation at the end is skipped" in result.stderr
    assert (tmp_path / "run" / "mesh" / "mesh.obj").is_file() and not (
        tmp_path / "run" / "metrics.json"
    ).exists()


def test_mixed_orientation_names_exif(tmp_path):
    from PIL import Image

    from data.sfm import _check_images

    landscape = Image.fromarray(np.zeros((30, 40, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6
    landscape.save(tmp_path / "a.jpg", exif=exif.tobytes())
    Image.fromarray(np.zeros((40, 30, 3), dtype=np.uint8)).save(tmp_path / "b.jpg")
    expected = (
        r"b.jpg: image is 30x40 \(no EXIF orientation\), but a.jpg is 40x30 \(EXIF orientation 6\); portrait"
    )
    with pytest.raises(DatasetError, match=expected):
        _check_images(tmp_path, ["a.jpg", "b.jpg"])


# ------------------------------------------------------------------------- files that cannot be written


def test_unwritable_checkpoint_and_record(tmp_path, monkeypatch):
    """Writes that fail (here: a file where a folder should be; read-only folders and full disks alike)
    end with one line naming the file meant, and leave no temporary file behind."""
    import torch

    from data.files import write_text_atomic
    from recon.train.checkpoint import CheckpointError, save_checkpoint
    from scripts.cli import file_system_problem

    blocker = tmp_path / "checkpoints"
    blocker.write_text("not a folder")
    with pytest.raises(CheckpointError, match=r"checkpoints/step_5.pt: cannot write the checkpoint"):
        save_checkpoint(blocker / "step_5.pt", {"step": 5})
    monkeypatch.setattr(
        torch, "save", lambda *_: (_ for _ in ()).throw(RuntimeError("[enforce fail] denied"))
    )
    with pytest.raises(
        CheckpointError, match=r"step_6.pt: cannot write the checkpoint \(\[enforce fail\] denied\)"
    ):
        save_checkpoint(tmp_path / "step_6.pt", {"step": 6})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoints"]
    with pytest.raises(OSError) as error:
        write_text_atomic(blocker / "progress.json", "{}")
    problem = file_system_problem(error.value)
    assert problem.startswith(f"{blocker / 'progress.json'}: Not a directory (check the folder's permissions")


# ------------------------------------------------------------------------------------------------ scripts


def test_evaluate_on_a_damaged_run(run_copy):
    (run_copy / "mesh" / "texture_kd.png").unlink()
    error = one_line(script("scripts/evaluate.py", str(run_copy)))
    assert (
        error
        == f"evaluate.py: {run_copy / 'mesh' / 'texture_kd.png'}: texture not found (the asset is incomplete)"
    )
    (run_copy / "config.yaml").write_text("dataset: [unclosed\n")
    error = one_line(script("scripts/evaluate.py", str(run_copy)))
    assert error.startswith(
        f"evaluate.py: {run_copy / 'config.yaml'}: not a configuration this version reads"
    )


def test_relight_rejects_bad_arguments_at_once(finished_run, tmp_path):
    env = finished_run / "mesh" / "probe.hdr"
    out = tmp_path / "out"
    error = one_line(script("scripts/relight.py", str(finished_run), "--env", str(env), "--frames", "0",
                            "--out", str(out)))  # fmt: skip
    assert error == "relight.py: frames=0: expected an integer >= 1"
    (tmp_path / "bad.hdr").write_bytes(b"#?RADIANCE\nnot a picture")
    error = one_line(script("scripts/relight.py", str(finished_run), "--env", str(tmp_path / "bad.hdr"),
                            "--out", str(out)))  # fmt: skip
    assert "bad.hdr" in error and not out.exists()
