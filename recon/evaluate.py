"""Evaluate a run: render the test split with the learned model, compare, write metrics.json.

python scripts/evaluate.py outputs/<date>/<time>
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from data.dataset import MultiViewDataset
from data.images import linear_to_srgb, write_image
from data.normalization import SceneTransform
from geometry.mesh import remove_small_components
from geometry.obj import read_obj
from recon.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint
from recon.config import Config
from recon.metrics import image_psnr, image_ssim, surface_metrics
from recon.model import ReconstructionModel


def save_transform(path: Path, transform: SceneTransform) -> None:
    data = {"offset": transform.offset.tolist(), "scale": transform.scale, "method": transform.method}
    path.write_text(json.dumps(data, indent=2))


def load_transform(path: Path) -> SceneTransform:
    data = json.loads(path.read_text())
    return SceneTransform(torch.tensor(data["offset"]), float(data["scale"]), data["method"])


def reference_mesh(config: Config, run_dir: Path) -> Path | None:
    root = Path(config.dataset.path) if config.dataset.path else run_dir / "synthetic"
    path = root / "gt_mesh.obj"
    return path if path.is_file() else None


def evaluate(run_dir: str | os.PathLike, max_views: int = 0) -> dict:
    """Metrics of the run's latest checkpoint on the test split; writes ``metrics.json`` and
    ``eval/view_XXX.png`` (rendered | reference, sRGB, white background)."""
    from recon.run import build_scene  # late: run imports this module

    run_dir = Path(run_dir)
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise CheckpointError(f"{config_path}: not a run folder (no config.yaml)")
    config: Config = OmegaConf.to_object(
        OmegaConf.merge(OmegaConf.structured(Config), OmegaConf.load(config_path))
    )
    checkpoint = latest_checkpoint(run_dir / "checkpoints")
    if checkpoint is None:
        raise CheckpointError(f"{run_dir / 'checkpoints'}: no checkpoint to evaluate")
    model = ReconstructionModel(config.model)
    model.load_state_dict(load_checkpoint(checkpoint, required=("model",))["model"])
    model.eval()
    transform = load_transform(run_dir / "scene_transform.json")
    scene = build_scene(config, run_dir)
    split = "test" if scene.splits.get("test") else "val"
    dataset = MultiViewDataset(
        scene, split, downscale=config.dataset.downscale, background="white", transform=transform
    )
    views = range(len(dataset)) if not max_views else range(min(max_views, len(dataset)))
    (run_dir / "eval").mkdir(exist_ok=True)
    psnrs, ssims = [], []
    with torch.no_grad():
        vertices, faces, _ = model.extract()
        for view in views:
            batch = dataset.batch([view])
            out = model.render(batch, vertices, faces)
            rendered, reference = linear_to_srgb(out.rgb[0]), linear_to_srgb(batch.images[0])
            psnrs.append(image_psnr(rendered, reference))
            ssims.append(image_ssim(rendered, reference))
            side = (torch.cat((rendered, reference), 1) * 255 + 0.5).to(torch.uint8).numpy()
            write_image(run_dir / "eval" / f"view_{view:03d}.png", side)
    metrics = {
        "split": split,
        "views": len(psnrs),
        "psnr": float(np.mean(psnrs)),
        "ssim": float(np.mean(ssims)),
        "checkpoint": checkpoint.name,
    }
    gt = reference_mesh(config, run_dir)
    if gt is not None:
        reference = read_obj(gt)
        vertices, faces = remove_small_components(vertices, faces, config.export.min_component_fraction)
        world = transform.to_world(vertices)
        extent = float((reference.vertices.max(0).values - reference.vertices.min(0).values).norm())
        metrics.update(
            surface_metrics(world, faces, reference.vertices, reference.faces, threshold=0.01 * extent)
        )
        metrics["reference_mesh"] = str(gt)
    tmp = run_dir / ".metrics.json.tmp"
    tmp.write_text(json.dumps(metrics, indent=2))
    os.replace(tmp, run_dir / "metrics.json")
    return metrics
