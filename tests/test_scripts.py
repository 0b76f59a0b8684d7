"""The user-facing scripts around a run: relight.py (our renderer; Cycles with bpy), blender_scene.py and
the one-line message when bpy is missing."""

from __future__ import annotations

import json
import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pytest

from tests.helpers import ROOT, TINY, TINY_SYNTHETIC, train

# Runs a script as if bpy were not installed (`import bpy` raises ImportError).
BLOCK_BPY = (
    "import runpy, sys; sys.modules['bpy'] = None; sys.argv = sys.argv[1:]; "
    "runpy.run_path(sys.argv[0], run_name='__main__')"
)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("tiny")
    result = train(run_dir, *TINY, *TINY_SYNTHETIC, "dataset.synthetic.resolution=48")
    assert result.returncode == 0, result.stderr[-2000:]
    return run_dir


def script(*arguments: str, block_bpy: bool = False) -> subprocess.CompletedProcess:
    prefix = [sys.executable, "-c", BLOCK_BPY] if block_bpy else [sys.executable]
    return subprocess.run(
        [*prefix, *arguments], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )


def test_relight_writes_frames_and_a_turntable(tiny_run, tmp_path):
    env = tiny_run / "mesh" / "probe.hdr"
    result = script("scripts/relight.py", str(tiny_run), "--env", str(env), "--out", str(tmp_path / "r"),
                    "--frames", "4", "--size", "48")  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    frames = [iio.imread(tmp_path / "r" / f"frame_{k:03d}.png") for k in range(4)]
    assert all(f.shape == (48, 48, 3) for f in frames)
    assert not np.array_equal(frames[0], frames[2])  # the object turned
    assert iio.imread(tmp_path / "r" / "turntable.gif").shape[0] == 4


def test_relight_bad_environment_is_one_line(tiny_run, tmp_path):
    (tmp_path / "square.hdr").write_bytes((tiny_run / "mesh" / "probe.hdr").read_bytes()[:40])
    result = script("scripts/relight.py", str(tiny_run), "--env", str(tmp_path / "square.hdr"))
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "square.hdr" in result.stderr


def test_blender_scripts_without_bpy_say_how_to_install(tiny_run, tmp_path):
    for arguments in (
        ("scripts/blender_scene.py", str(tiny_run), str(tmp_path / "out.blend")),
        ("scripts/blender_eval.py", str(tiny_run)),
        ("scripts/relight.py", str(tiny_run), "--env", str(tiny_run / "mesh" / "probe.hdr"), "--blender"),
    ):
        result = script(*arguments, block_bpy=True)
        assert result.returncode == 2, result.stderr[-2000:]
        message = result.stderr.strip()
        assert message.count("\n") == 0 and "pip install" in message and "bpy" in message
    assert not (tmp_path / "out.blend").exists()


def test_blender_scene_is_ready_to_render(tiny_run, tmp_path):
    bpy = pytest.importorskip("bpy", reason="Blender's Python module is not installed")
    out = tmp_path / "result.blend"
    result = script("scripts/blender_scene.py", str(tiny_run), str(out), "--frames", "8")
    assert result.returncode == 0, result.stderr[-2000:]
    bpy.ops.wm.open_mainfile(filepath=str(out))
    scene = bpy.context.scene
    cameras = sorted(o.name for o in scene.objects if o.type == "CAMERA")
    assert cameras == ["test_005", "turntable"] and scene.camera.name == "turntable"
    assert scene.world.node_tree.nodes["Environment Texture"].image.filepath.endswith("probe.hdr")
    assert (scene.frame_start, scene.frame_end) == (1, 8)
    meshes = [o for o in scene.objects if o.type == "MESH"]
    assert len(meshes) == 1 and len(meshes[0].data.polygons) > 0
    positions = []
    for frame in (1, 5):
        scene.frame_set(frame)
        positions.append(np.array(scene.camera.matrix_world.translation))
    assert np.linalg.norm(positions[0] - positions[1]) > 0.1  # half a turn apart


def test_bench_step_times_a_stage1_step(tmp_path):
    out = tmp_path / "step.json"
    result = script(
        "scripts/bench_step.py", "--dataset", "builtin", "--warmup", "1", "--repeats", "2", "--batch", "2",
        "--out", str(out), "--set", *TINY_SYNTHETIC, "model.grid.resolution=32", "model.light.resolution=16",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    row = json.loads(out.read_text())["results"][0]
    assert row["image"] == "32x32" and row["batch"] == 2 and row["repeats"] == 2
    assert row["step_s_median"] > 0 and row["triangles"] > 0


def test_bench_step_contended_measures_both_conditions(tmp_path):
    """--contended: alone and beside its own busy process, in alternating blocks, and the busy process
    gone afterwards."""
    out = tmp_path / "step.json"
    result = script(
        "scripts/bench_step.py", "--dataset", "builtin", "--warmup", "1", "--repeats", "2", "--batch", "2",
        "--contended", "--rounds", "2", "--settle", "0", "--out", str(out), "--set", *TINY_SYNTHETIC,
        "model.grid.resolution=32", "model.light.resolution=16",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    row = json.loads(out.read_text())["results"][0]
    assert row["rounds"] == 2 and row["contended_s_median"] > 0 and row["step_s_median"] > 0
    assert row["contended_ratio"] == pytest.approx(row["contended_s_median"] / row["step_s_median"])
    assert len(row["contended_threads"]["alone"]) == len(row["contended_threads"]["contended"]) == 4
    assert "beside a busy process" in result.stdout and "threads: auto" in result.stdout


def test_busy_neighbour_is_stopped_even_on_error():
    from scripts.bench_common import busy_neighbour

    with pytest.raises(RuntimeError), busy_neighbour() as process:
        assert process.poll() is None  # running
        raise RuntimeError("the benchmark failed")
    assert process.poll() is not None


def test_bench_run_times_train_py_alone_and_contended(tmp_path):
    out = tmp_path / "run.json"
    result = script("scripts/bench_run.py", "--out", str(out), "--", *TINY, *TINY_SYNTHETIC)
    assert result.returncode == 0, result.stderr[-2000:]
    row = json.loads(out.read_text())["results"][0]
    assert row["wall time s"]["alone"] > 0 and row["wall time s"]["contended"] > 0
    assert row["stage 1 step s"]["ratio"] > 0 and "stage 2 step s" in row
    assert "threads: auto" in result.stdout


def test_bench_sfm_times_chosen_pairs_on_a_rendered_capture(tmp_path):
    """32 photos: more than data.sfm.EXHAUSTIVE_UP_TO, so the chosen pairs are matched."""
    pytest.importorskip("pycolmap")
    out = tmp_path / "sfm.json"
    result = script("scripts/bench_sfm.py", "--make", "32", "128", "--out", str(tmp_path / "capture"),
                    "--json", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    row = json.loads(out.read_text())["results"][0]
    assert row["photos"] == 32 and row["pairs"] == "chosen" and row["registered"] >= 30
    assert int(row["matched"].split()[0]) < 32 * 31 // 2 and row["rotation_error_deg"] < 1.0
