"""train.py invoked the way a user does: presets smoke-train, bad input ends with one clear line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT, SHARED, TINY, TINY_SYNTHETIC, compose_config, train


def test_default_preset_smoke(tmp_path):
    result = train(tmp_path, *TINY, *TINY_SYNTHETIC)
    assert result.returncode == 0, result.stderr[-2000:]
    for name in (
        "config.yaml",
        "tb",
        "checkpoints/step_2.pt",
        "stage1_mesh/mesh.glb",
        "mesh/mesh.obj",
        "mesh/probe.hdr",
        "synthetic/gt_mesh.obj",
        "synthetic/gt_material.json",
        "synthetic/relight/env.hdr",
        "eval_relight/view_000.png",
        "eval_albedo/view_000.png",
    ):
        assert (tmp_path / name).exists(), name
    first_line = (tmp_path / "train.log").read_text().splitlines()[0]  # train.threads, as it is used
    assert "threads: auto, 1-" in first_line and "threads: auto" in (tmp_path / "config.yaml").read_text()
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert {"psnr", "ssim", "chamfer_l1", "f_score"} <= set(metrics) and metrics["views"] == 1
    assert 0 < metrics["seen_fraction"] <= 1 and 0 <= metrics["recall_seen"] <= 1
    assert {"albedo_psnr", "roughness_mae", "metallic_mae", "relight_psnr", "relight_psnr_scaled"} <= set(
        metrics
    )
    assert metrics["asset"] == "mesh"
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    texts, images, scalars = set(), set(), set()
    for events in (tmp_path / "tb").glob("events.*"):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        texts |= set(accumulator.Tags()["tensors"])
        images |= set(accumulator.Tags()["images"])
        scalars |= set(accumulator.Tags()["scalars"])
    assert "config/text_summary" in texts
    assert {"eval/test_view", "eval/relit_view", "eval/albedo_vs_truth"} <= images
    assert {"eval/albedo_psnr", "eval/relight_psnr", "cpu/threads"} <= scalars
    again = subprocess.run(
        [sys.executable, "scripts/evaluate.py", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert again.returncode == 0 and json.loads(again.stdout)["psnr"] == pytest.approx(metrics["psnr"])


@pytest.mark.parametrize(
    ("preset", "data", "extra"),
    [
        ("spot_mitsuba", SHARED / "spot_mitsuba", ["dataset.downscale=4"]),
        ("lego", SHARED / "nerf_synthetic" / "lego", ["dataset.downscale=16"]),
        ("lego_gpu", SHARED / "nerf_synthetic" / "lego", ["dataset.downscale=16", "device=cpu"]),
        ("synthetic", None, TINY_SYNTHETIC),
        ("concave", None, TINY_SYNTHETIC),
    ],
)
def test_presets_smoke(tmp_path, preset, data, extra):
    if data is not None and not data.is_dir():
        pytest.skip("shared data not present")
    result = train(tmp_path, f"+experiment={preset}", *TINY, *extra)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "stage1_mesh" / "mesh.obj").is_file()


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    return result.stderr


def test_config_typo(tmp_path):
    error = one_line_error(train(tmp_path, "train.stepz=3"))
    assert "stepz" in error


def test_missing_dataset(tmp_path):
    error = one_line_error(train(tmp_path, "dataset.path=/nonexistent/scene", *TINY))
    assert "train.py: /nonexistent/scene: dataset folder not found" in error


def test_resume_from_a_corrupt_checkpoint_keeps_it(tmp_path):
    from recon.run_folder import write_config

    write_config(tmp_path, compose_config(*TINY, *TINY_SYNTHETIC))
    checkpoint = tmp_path / "checkpoints" / "step_5.pt"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"garbage")
    error = one_line_error(train(tmp_path, "train.resume=true"))
    assert "step_5.pt: corrupt checkpoint" in error
    assert checkpoint.read_bytes() == b"garbage"


def test_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("keep me")
    error = one_line_error(train(blocker / "run", *TINY, *TINY_SYNTHETIC))
    assert f"train.py: {blocker / 'run'}: output folder is not writable" in error
    assert blocker.read_text() == "keep me"


def test_help_lists_the_keys():
    result = subprocess.run(
        [sys.executable, "train.py", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0 and "Usage: python train.py" in result.stdout
    assert "steps: 1000" in result.stdout and "path: ''" in result.stdout


def test_bad_texture_resolution(tmp_path):
    error = one_line_error(train(tmp_path, "export.texture_resolution=1000", *TINY[1:], *TINY_SYNTHETIC))
    assert "train.py: export.texture_resolution=1000: expected a power of two >= 8" in error


def _scalars(run_dir: Path, tag: str) -> dict[int, float]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    values: dict[int, float] = {}
    for events in sorted((run_dir / "tb").glob("events.*")):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        if tag in accumulator.Tags()["scalars"]:
            values.update({event.step: event.value for event in accumulator.Scalars(tag)})
    return values


def test_torchrun_two_processes(tmp_path):
    """`torchrun --nproc_per_node=2 train.py`: rank 0 alone writes (the working folder stays empty), the
    outputs are complete, and the first step's loss equals the single-process run's on the same batch."""
    arguments = [*TINY, *TINY_SYNTHETIC, "train.log_every=1"]
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        str(ROOT / "train.py"), f"hydra.run.dir={tmp_path / 'parallel'}", *arguments,
    ]  # fmt: skip
    parallel = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=600, check=False)
    assert parallel.returncode == 0, parallel.stderr[-3000:]
    assert parallel.stdout.count("train.py: done") == 1
    share = max(1, len(os.sched_getaffinity(0)) // 2)  # each process's share of the cores: no oversubscribing
    assert parallel.stdout.count(f"threads: auto, 1-{share} of") == 1
    assert list(workdir.iterdir()) == []
    for name in ("checkpoints/step_2.pt", "mesh/mesh.glb", "stage1_mesh/mesh.obj", "metrics.json"):
        assert (tmp_path / "parallel" / name).exists(), name
    scene = tmp_path / "parallel" / "synthetic"  # the same images (threads change float sums in rendering)
    single = train(tmp_path / "single", *arguments, f"dataset.path={scene}")
    assert single.returncode == 0, single.stderr[-2000:]
    expected, got = _scalars(tmp_path / "single", "loss/loss"), _scalars(tmp_path / "parallel", "loss/loss")
    assert sorted(got) == sorted(expected) == [1, 2]
    assert got[1] == pytest.approx(expected[1], rel=1e-5)
    assert got[2] == pytest.approx(expected[2], rel=0.05)  # after one Adam step; float sums reorder


def test_torchrun_rejects_an_indivisible_batch(tmp_path):
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "train.py", f"hydra.run.dir={tmp_path}", *TINY, *TINY_SYNTHETIC, "train.batch_size=3",
    ]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode != 0
    assert "train.py: [rank 0] train.batch_size=3 is not divisible by the 2 processes" in result.stderr
    # torchrun itself reports failed workers with its own traceback; none comes from the project's code
    assert 'train.py", line' not in result.stderr and "recon/" not in result.stderr


def test_bad_values_end_with_one_line(tmp_path):
    tiny = [argument for argument in TINY if not argument.startswith("train.steps=")]
    error = one_line_error(train(tmp_path / "run", *tiny, *TINY_SYNTHETIC, "train.steps=-3"))
    assert "train.py: train.steps=-3: expected an integer >= 1" in error
    assert not (tmp_path / "run" / "checkpoints").exists()
    error = one_line_error(train(tmp_path / "run", "stage2.image=l3", *TINY, *TINY_SYNTHETIC))
    assert "train.py: stage2.image='l3': expected one of" in error
    error = one_line_error(train(tmp_path / "run", "dataset.sfm=sometimes", *TINY, *TINY_SYNTHETIC))
    assert "train.py: dataset.sfm='sometimes': expected one of auto, force, off" in error
    error = one_line_error(train(tmp_path / "run", "dataset.bbox=[0,0,0,1,-1,1]", *TINY, *TINY_SYNTHETIC))
    assert "train.py: dataset.bbox=[0.0, 0.0, 0.0, 1.0, -1.0, 1.0]: expected [] or [xmin" in error
    error = one_line_error(train(tmp_path / "run", "train.crop=8", *TINY, *TINY_SYNTHETIC))
    assert "train.py: train.crop=8: expected 0 (whole views) or a window side >= 16 pixels" in error


def test_run_folder_that_cannot_be_created(tmp_path):
    error = one_line_error(train(Path("/proc/a_run"), *TINY, *TINY_SYNTHETIC))
    assert "train.py: /proc/a_run: output folder is not writable" in error


def test_a_new_run_refuses_to_start_over_an_earlier_ones_checkpoints(tmp_path):
    checkpoint = tmp_path / "checkpoints" / "step_5.pt"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"an earlier run")
    error = one_line_error(train(tmp_path, *TINY, *TINY_SYNTHETIC))
    assert "holds an earlier run (checkpoints); continue it with train.resume=true" in error
    assert checkpoint.read_bytes() == b"an earlier run"
