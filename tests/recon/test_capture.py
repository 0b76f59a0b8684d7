"""Photos in, asset out: a capture-like scene (an object on a textured table, images only, no poses, no
masks) through SfM, reconstruction and export, scored against its truth after aligning the frames."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pytest

pytest.importorskip("pycolmap")

from geometry.obj import read_obj  # noqa: E402
from recon.scenes.synthetic import SyntheticConfig  # noqa: E402
from tests.capture import CaptureConfig, evaluate_capture, make_capture_scene  # noqa: E402
from tests.helpers import ROOT


@pytest.fixture(scope="module")
def photos_run(tmp_path_factory):
    """``python train.py +experiment=photos`` on 24 photos (160^2) of the built-in object on a table,
    shortened to 400 + 100 steps at 128^2, then scored against the truth."""
    root = tmp_path_factory.mktemp("photos")
    config = CaptureConfig(SyntheticConfig(resolution=160, light_resolution=32, mesh_resolution=96), views=24)
    make_capture_scene(root / "photos", root / "truth", config)
    run_dir = root / "run"
    command = [
        sys.executable, "train.py", "+experiment=photos", f"dataset.path={root / 'photos'}",
        f"hydra.run.dir={run_dir}", "dataset.max_side=128", "train.steps=400", "stage2.steps=100",
        "train.progress=false", "export.texture_resolution=256", "model.ground_texture=256",
    ]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=900, env=env, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return root, run_dir, evaluate_capture(run_dir, root / "truth")


def test_photos_become_an_asset_in_the_sfm_frame(photos_run, report):
    root, run_dir, metrics = photos_run
    report(
        f"photos -> asset (24 photos 160^2 without poses or masks, 128^2, 400 + 100 steps): "
        f"{metrics['registered']}/{metrics['images']} registered, rotation error "
        f"{metrics['rotation_error_deg']:.2f} deg, Chamfer-L1 {metrics['chamfer_l1']:.4f}, F-score "
        f"{metrics['f_score']:.3f}, PSNR over white {metrics['psnr_over_white']:.2f} dB"
    )
    assert metrics["registered"] == metrics["images"] == 24
    assert metrics["rotation_error_deg"] < 1.0
    # Measured at 300 steps: Chamfer 0.024-0.033, F-score 0.72, 21.4-22.1 dB (the full 48-view preset run:
    # 0.0036, 0.99, 34.4 dB); the bars leave room for SfM's run-to-run differences.
    assert metrics["chamfer_l1"] < 0.05 and metrics["f_score"] > 0.55
    assert metrics["psnr_over_white"] > 19.0
    assert (root / "photos" / "sparse" / "0" / "cameras.bin").is_file()  # written next to the images
    transform = json.loads((run_dir / "scene_transform.json").read_text())
    assert "ground plane" in transform["up_source"]
    ground = json.loads((run_dir / "ground" / "ground.json").read_text())
    assert abs(ground["origin"][2]) < 0.02 and ground["normal"][2] > 0.999  # the model's z = 0 is the table
    mesh = read_obj(run_dir / "mesh" / "mesh.obj")
    assert float(mesh.vertices[:, 2].min()) > 0.0  # nothing of the table glued under the asset
    # the preset is dielectric: no metal mirror of the light standing in for the background
    assert int(np.asarray(iio.imread(run_dir / "mesh" / "texture_metallic.png")).max()) == 0


def test_photos_run_scores_its_whole_images(photos_run):
    _, run_dir, _ = photos_run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["psnr"] > 20.0  # the photos themselves, table and sky included (the backdrop)
    assert (run_dir / "ground" / "texture.hdr").is_file()
