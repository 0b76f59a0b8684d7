"""train.py runs that train for real: the short reconstruction of the built-in scene (scored by our
evaluation and in Blender), and runs stopped by a signal or killed mid-stage and resumed. Apart from
tests/test_train.py because ``pytest -n 2 --dist loadfile`` hands out whole files: split in two, the long
runs go to both workers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import ROOT, TINY, TINY_SYNTHETIC, train

SHORT_RECONSTRUCTION_PSNR = 25.0
"""Test PSNR (dB) the short CI reconstruction must beat. Measured 2026-11-21 on the 2-core machine with one
thread (bitwise reproducible): 28.3 dB, SSIM 0.962, Chamfer-L1 0.0059, F-score 0.90 in 172 s. Since the
equirectangular convention changed (2026-12-02) the sky's cube map is resampled through other
arithmetic (equal to 2e-5 of its peak): 2 pixel values of the 32 training images differ by 1/255, and
that is enough for another trajectory: 32.9 dB, SSIM 0.979, Chamfer-L1 0.0028, F-score 0.985 in 202 s.
The figure is that sensitive; the bar stays at 25 dB. With two
threads the trajectory drifts: 24.8-25.7 dB over three runs (the full default run reaches 34 dB)."""


@pytest.fixture(scope="module")
def short_run(tmp_path_factory) -> tuple[Path, float]:
    """A real, if short, reconstruction: `python train.py` on the built-in scene with fewer views and
    steps, both stages, export and evaluation of the exported asset on held-out views."""
    run_dir = tmp_path_factory.mktemp("short")
    start = time.perf_counter()
    result = train(
        run_dir,
        "dataset.synthetic.n_train=32",
        "dataset.synthetic.n_test=4",
        "train.steps=300",
        "train.progress=false",
        "stage2.steps=100",
        "model.grid.resolution=64",
        "export.texture_resolution=256",
        threads=1,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return run_dir, time.perf_counter() - start


def test_short_reconstruction_of_the_built_in_scene(short_run, report):
    run_dir, seconds = short_run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    report(
        f"short reconstruction (built-in scene, 128^2, 300 + 100 steps): test PSNR {metrics['psnr']:.2f} dB, "
        f"SSIM {metrics['ssim']:.3f}, Chamfer-L1 {metrics['chamfer_l1']:.4f}, F-score "
        f"{metrics['f_score']:.3f}, {seconds:.0f} s"
    )
    assert metrics["psnr"] > SHORT_RECONSTRUCTION_PSNR
    assert metrics["chamfer_l1"] < 0.012 and metrics["f_score"] > 0.8


def test_short_reconstruction_in_blender(short_run, report):
    """The trained asset opened in Blender (scripts/blender_eval.py: GLB and OBJ, Cycles, the run's own
    probe.hdr) scores like our own evaluation of it, and lower with the probe mirrored. The learned light
    is blurry and the textures carry much of the shading, so the mirror costs a trained asset only
    ~0.2-0.7 dB (measured); the clear gap (5.7 dB) is tested on spot_mitsuba's ground truth in
    tests/recon/test_blender.py. Cycles' seed is fixed, so these renders are deterministic."""
    pytest.importorskip(
        "bpy", reason="Blender's Python module is not installed (pip install -e '.[blender]')"
    )
    run_dir, _ = short_run
    result = subprocess.run(
        [sys.executable, "scripts/blender_eval.py", str(run_dir), "--views", "4", "--samples", "32"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    scores = json.loads((run_dir / "blender_metrics.json").read_text())
    report(
        f"short reconstruction in Blender (4 test views, Cycles 32 spp): GLB {scores['glb_psnr']:.2f} dB, "
        f"OBJ {scores['obj_psnr']:.2f} dB (as imported: {scores['obj_as_imported_psnr']:.2f} dB), "
        f"mirrored probe {scores['glb_mirrored_probe_psnr']:.2f} dB; ours {scores['ours_psnr']:.2f} dB"
    )
    assert abs(scores["glb_psnr"] - scores["obj_psnr"]) < 0.5
    assert abs(scores["glb_psnr"] - scores["ours_psnr"]) < 3.0
    assert scores["glb_mirrored_probe_psnr"] < scores["glb_psnr"] - 0.1
    for low, high in zip(scores["glb_bounds"], scores["obj_bounds"], strict=True):
        assert low == pytest.approx(high, abs=1e-4)


def test_sigterm_saves_a_checkpoint(tmp_path):
    """`kill PID` (SIGTERM) in stage 1: the step in progress ends, a checkpoint is written, one line says
    where, exit status 143; the checkpoint resumes."""
    arguments = [*TINY, *TINY_SYNTHETIC, "train.steps=100000", "train.checkpoint_every=0"]
    arguments += ["train.checkpoint_minutes=1e-6", "train.keep_checkpoints=1"]  # one at every step
    process = subprocess.Popen(
        [sys.executable, "train.py", f"hydra.run.dir={tmp_path}", *arguments],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    wait_for(process, tmp_path / "checkpoints", "step_*.pt")
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr[-2000:]
    assert "Traceback" not in stderr
    (line,) = [line for line in stderr.splitlines() if line.startswith("train.py:")]
    assert "stopped by SIGTERM in stage 1 after step" in line and "continue with train.resume=true" in line
    step = int(line.split("after step ")[1].split(";")[0])
    assert (tmp_path / "checkpoints" / f"step_{step}.pt").is_file()
    from recon.train.checkpoint import load_checkpoint

    assert load_checkpoint(tmp_path / "checkpoints" / f"step_{step}.pt")["step"] == step


def wait_for(process: subprocess.Popen, folder: Path, pattern: str, timeout: float = 300) -> Path:
    """The first file matching ``pattern`` in ``folder``, polled while ``process`` runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sorted(folder.glob(pattern))
        if found:
            return found[0]
        assert process.poll() is None, f"the run ended first: {process.communicate()[1][-2000:]}"
        time.sleep(0.005)
    process.kill()
    raise AssertionError(f"no {pattern} in {folder} after {timeout} s")


def asset_files(run_dir: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted((run_dir / "mesh").iterdir())}


def test_killed_in_stage_2_resumes_to_the_same_asset(tmp_path):
    """SIGKILL (no chance to save) in stage 2 of a run with non-default settings, then the README's
    `python train.py hydra.run.dir=RUN train.resume=true` (none of those settings repeated): stage 1 and
    its export are not redone, stage 2 continues from its newest checkpoint (a truncated newer one is named
    and skipped), and the final asset equals an uninterrupted run's byte for byte (one thread: bitwise
    reproducible); config.yaml is the start's. Resuming a finished run redoes nothing; one stopped in
    evaluation only evaluates."""
    arguments = [*TINY, *TINY_SYNTHETIC, "train.steps=4", "stage2.steps=150", "train.checkpoint_every=5"]
    straight = train(tmp_path / "straight", *arguments, threads=1)
    assert straight.returncode == 0, straight.stderr[-2000:]
    run_dir = tmp_path / "killed"
    process = subprocess.Popen(
        [sys.executable, "train.py", f"hydra.run.dir={run_dir}", *arguments],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )  # fmt: skip
    wait_for(process, run_dir / "checkpoints" / "stage2", "step_10.pt")
    process.kill()
    process.communicate(timeout=60)
    assert not (run_dir / "mesh").exists()
    stage1_asset = {path.name: path.stat().st_mtime_ns for path in (run_dir / "stage1_mesh").iterdir()}
    stage1_checkpoint = (run_dir / "checkpoints" / "step_4.pt").stat().st_mtime_ns
    started_with = (run_dir / "config.yaml").read_bytes()
    stage2_dir = run_dir / "checkpoints" / "stage2"
    newest = max(stage2_dir.glob("step_*.pt"), key=lambda p: int(p.stem[5:]))
    (stage2_dir / "step_149.pt").write_bytes(newest.read_bytes()[:5000])  # a truncated newer checkpoint
    resumed = train(
        run_dir, "train.resume=true", threads=1
    )  # as the README writes it: the run's own settings
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"warning: {stage2_dir / 'step_149.pt'}: corrupt checkpoint" in resumed.stderr
    assert (stage2_dir / "step_149.pt").stat().st_size == 5000  # kept, not deleted
    assert asset_files(run_dir) == asset_files(tmp_path / "straight")
    assert (run_dir / "config.yaml").read_bytes() == started_with
    assert {p.name: p.stat().st_mtime_ns for p in (run_dir / "stage1_mesh").iterdir()} == stage1_asset
    assert (run_dir / "checkpoints" / "step_4.pt").stat().st_mtime_ns == stage1_checkpoint
    metrics = json.loads((run_dir / "metrics.json").read_text())
    expected = json.loads((tmp_path / "straight" / "metrics.json").read_text())
    for own in ("reference_mesh", "reference_material"):  # each run's own copy of the scene
        assert metrics.pop(own) != expected.pop(own)
    assert metrics == expected

    exported = {p.name: p.stat().st_mtime_ns for p in (run_dir / "mesh").iterdir()}
    checkpoints = {p: p.stat().st_mtime_ns for p in (run_dir / "checkpoints").rglob("*.pt")}
    progress = json.loads((run_dir / "progress.json").read_text())
    del progress["finished"]["metrics"]  # as if stopped during the evaluation
    (run_dir / "progress.json").write_text(json.dumps(progress))
    (run_dir / "metrics.json").unlink()
    again = train(run_dir, *arguments, "train.resume=true", threads=1)  # the same settings again: accepted
    assert again.returncode == 0, again.stderr[-2000:]
    assert dict(
        json.loads((run_dir / "metrics.json").read_text()), reference_mesh=None, reference_material=None
    ) == dict(metrics, reference_mesh=None, reference_material=None)
    assert {p.name: p.stat().st_mtime_ns for p in (run_dir / "mesh").iterdir()} == exported
    assert {p: p.stat().st_mtime_ns for p in (run_dir / "checkpoints").rglob("*.pt")} == checkpoints
