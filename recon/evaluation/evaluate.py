"""Evaluate a run: render the test split with the exported asset, compare, write metrics.json.

python scripts/evaluate.py outputs/<date>/<time>
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter

from data.dataset import MultiViewDataset
from data.files import write_text_atomic
from data.images import linear_to_srgb, to_uint8, write_image
from data.orientation import Z_UP
from data.scene import held_out_split
from geometry import cpu_threads
from geometry.obj import read_obj
from recon.asset.backdrop import load_ground
from recon.asset.load import Asset, asset_dataset, load_asset
from recon.errors import RunFolderError
from recon.evaluation.materials import material_metrics
from recon.evaluation.metrics import image_psnr, image_ssim, surface_metrics
from recon.evaluation.relight_eval import relight_mitsuba, relight_ours, relight_root
from recon.run_dir import RunDir
from recon.scenes.procedural import relight_sky
from recon.scenes.reference import MATERIAL_FILE, ReferenceMaterial, export_reference, load_reference
from recon.scenes.scene import DatasetConfig, build_scene, dataset_root
from render.background import Backdrop
from render.envmap import latlong_directions
from render.hdr import write_hdr
from render.renderer import render_views


@dataclass
class RunSettings:
    """What the evaluation of a run needs of its configuration: where the views come from, and the size
    of the light probe (read from config.yaml without the training's configuration)."""

    dataset: DatasetConfig
    light_resolution: int

    @classmethod
    def of(cls, run_dir: Path) -> RunSettings:
        layout = RunDir(run_dir)
        return cls(layout.typed(DatasetConfig, "dataset"), layout.typed(int, "model.light.resolution"))


def reference_mesh(data: DatasetConfig, run_dir: Path) -> Path | None:
    path = dataset_root(data, run_dir) / "gt_mesh.obj"
    return path if path.is_file() else None


def load_run(run_dir: Path) -> tuple[RunSettings, Path]:
    """A run folder's settings (as its resumes left them) and its final asset folder (``mesh/``, else
    ``stage1_mesh/``)."""
    return RunSettings.of(run_dir), RunDir(run_dir).asset()


def evaluate_asset(
    folder: Path, dataset: MultiViewDataset, views, light_resolution: int, image_dir: Path | None = None,
    up=Z_UP, backdrop: Backdrop | None = None, asset: Asset | None = None,
) -> dict:  # fmt: skip
    """PSNR and SSIM (sRGB, over white, or for photos over the ``backdrop``) of an exported asset
    rendered by our renderer in ``views`` of a world-unit dataset (:func:`asset_dataset`); side-by-side
    images into ``image_dir`` when given. ``asset``: a :func:`load_asset` result to use instead of
    reading ``folder``."""
    asset = asset or load_asset(folder, light_resolution, up)
    if image_dir is not None:
        image_dir.mkdir(exist_ok=True)
    psnrs, ssims = [], []
    with torch.no_grad():
        for view in views:
            cpu_threads.adapt()
            batch = dataset.batch([view])
            background = batch.background if backdrop is None else None
            out = asset.render(batch.cameras, background)
            if backdrop is not None:
                out = backdrop(out, batch.cameras, asset.light)
            rendered, reference = linear_to_srgb(out.rgb[0]), linear_to_srgb(batch.images[0])
            psnrs.append(image_psnr(rendered, reference))
            ssims.append(image_ssim(rendered, reference))
            if image_dir is not None:
                write_image(image_dir / f"view_{view:03d}.png", to_uint8(torch.cat((rendered, reference), 1)))
    return {"psnr": float(np.mean(psnrs)), "ssim": float(np.mean(ssims)), "psnrs": psnrs, "ssims": ssims}


def evaluate(
    run_dir: str | os.PathLike, max_views: int = 0, reference_material: str | os.PathLike | None = None,
    use_mitsuba: bool = False, relight_environment: str | os.PathLike | None = None,
    mitsuba_views: int = 4, mitsuba_samples: int = 128,
) -> dict:  # fmt: skip
    """Metrics of the run's exported asset (``mesh/``, else ``stage1_mesh/``) on the test split: the OBJ,
    its textures and probe.hdr are read back and rendered with the dataset's own cameras, so what is
    measured is exactly what was exported. Writes ``metrics.json`` and ``eval/view_XXX.png``
    (rendered | reference, sRGB, white background)."""
    run_dir = Path(run_dir)
    settings, folder = load_run(run_dir)
    layout = RunDir(run_dir)
    scene = build_scene(settings.dataset, run_dir, sfm="off")
    split = held_out_split(scene.splits)
    if split is None:
        raise RunFolderError(f"{scene.source}: no test or val views to evaluate the asset on")
    dataset = asset_dataset(scene, split, settings.dataset.downscale_for(scene))
    views = range(len(dataset)) if not max_views else range(min(max_views, len(dataset)))
    backdrop = None
    if dataset.photos:
        ground = layout.ground
        backdrop = Backdrop(load_ground(ground) if (ground / "ground.json").is_file() else None)
    up, _ = layout.up()
    asset = load_asset(folder, settings.light_resolution, up)
    scores = evaluate_asset(
        folder, dataset, views, settings.light_resolution, layout.eval, up, backdrop, asset
    )
    psnrs, ssims = scores["psnrs"], scores["ssims"]
    metrics = {"asset": folder.name, "split": split, "views": len(psnrs), "psnr": float(np.mean(psnrs)),
               "ssim": float(np.mean(ssims))}  # fmt: skip
    gt = reference_mesh(settings.dataset, run_dir)
    if gt is not None:
        mesh, reference = read_obj(folder / "mesh.obj"), read_obj(gt)
        vertices, faces = mesh.vertices, mesh.faces
        extent = float((reference.vertices.max(0).values - reference.vertices.min(0).values).norm())
        train_cameras = scene.cameras[scene.splits["train"]]  # the reference's (world) frame, as parsed
        metrics.update(
            surface_metrics(
                vertices, faces, reference.vertices, reference.faces, 0.01 * extent, cameras=train_cameras
            )
        )
        metrics["reference_mesh"] = str(gt)
    root = dataset_root(settings.dataset, run_dir)
    metrics.update(
        evaluate_materials(
            layout, folder, asset, root, gt, settings.light_resolution, dataset,
            settings.dataset.downscale_for(scene),
            reference_material, use_mitsuba,
            relight_environment, mitsuba_views, mitsuba_samples,
        )
    )  # fmt: skip
    write_text_atomic(layout.metrics_file, json.dumps(metrics, indent=2))
    return metrics


def write_albedo_views(
    asset: Asset, reference: ReferenceMaterial, cameras, scale: list, image_dir: Path
) -> None:  # fmt: skip
    """``view_XXX.png``: the asset's base colour (times the fitted per-channel ``scale``) | the truth's (the
    reference material on the true mesh), as the cameras see them (sRGB, white where neither is)."""
    image_dir.mkdir(parents=True, exist_ok=True)
    mesh = reference.mesh

    def truth_material(points: torch.Tensor, uv: torch.Tensor | None):
        values = reference.at(points, uv)
        return values["base_color"], values["roughness"], values["metallic"]

    with torch.no_grad():
        for k in range(len(cameras)):
            cpu_threads.adapt()
            ours = asset.render(cameras[k])
            theirs = render_views(
                mesh.vertices, mesh.faces, cameras[k], asset.light, truth_material, uv=mesh.uv,
                uv_faces=mesh.uv_faces,
            )  # fmt: skip
            white = torch.ones_like(ours.rgb[0])
            left = torch.where(ours.alpha[0] > 0.5, ours.material[0, ..., :3] * torch.tensor(scale), white)
            right = torch.where(theirs.alpha[0] > 0.5, theirs.material[0, ..., :3], white)
            side = linear_to_srgb(torch.cat((left, right), 1).clamp(0, 1))
            write_image(image_dir / f"view_{k:03d}.png", to_uint8(side))


def log_evaluation(run_dir: Path, metrics: dict, step: int) -> None:
    """The evaluation into TensorBoard: every number as ``eval/<name>`` and the first image pair of each
    of eval/ (test views), eval_relight/ (second light), eval_albedo/ and eval_mitsuba/views/."""
    folders = {"test_view": "eval", "relit_view": "eval_relight", "albedo_vs_truth": "eval_albedo",
               "mitsuba_relit_view": "eval_mitsuba/views"}  # fmt: skip
    with SummaryWriter(str(RunDir(run_dir).tb)) as writer:
        for name, value in metrics.items():
            if isinstance(value, float | int) and not isinstance(value, bool):
                writer.add_scalar(f"eval/{name}", value, step)
        for name, folder in folders.items():
            first = sorted((run_dir / folder).glob("view_*.png"))[:1]
            if first:
                writer.add_image(
                    f"eval/{name}", np.asarray(iio.imread(first[0]))[..., :3], step, dataformats="HWC"
                )


def evaluate_materials(
    layout: RunDir, folder: Path, asset: Asset, root: Path, gt: Path | None, light_resolution: int,
    dataset, downscale: float,
    reference_material=None, use_mitsuba: bool = False, relight_environment=None, mitsuba_views: int = 4,
    mitsuba_samples: int = 128,
) -> dict:  # fmt: skip
    """Material and relighting metrics where the truth allows (recon.evaluation.materials,
    recon.evaluation.relight_eval): albedo / roughness / metallic against ``reference_material``
    (default: the dataset's gt_material.json), the built-in relighting views, and with ``use_mitsuba``
    Mitsuba 3 renders of the truth and the asset under ``relight_environment`` (default: the relighting
    views' light, else the procedural sky)."""
    metrics: dict = {}
    relight = relight_root(root)
    if relight is not None:
        scores = relight_ours(
            asset,
            relight,
            downscale,
            light_resolution,
            layout.eval_relight,
        )
        metrics.update(scores)
    material_path = Path(reference_material) if reference_material else root / MATERIAL_FILE
    if gt is None or not material_path.is_file():
        return metrics
    reference = load_reference(material_path, gt)
    metrics.update(material_metrics(asset, reference))
    metrics["reference_material"] = str(material_path)
    cameras = dataset.batch(list(range(min(4, len(dataset))))).cameras
    write_albedo_views(asset, reference, cameras, metrics["albedo_scale"], layout.eval_albedo)
    if use_mitsuba:
        truth = export_reference(reference, layout.eval_mitsuba / "truth")
        environment = relight_environment or (relight / "env.hdr" if relight is not None else None)
        if environment is None:
            environment = layout.relight_sky
            write_hdr(environment, relight_sky(latlong_directions(128)))
        views = list(range(min(mitsuba_views, len(dataset))))
        cameras = dataset.batch(views).cameras
        metrics.update(relight_mitsuba(folder, truth, environment, cameras, mitsuba_samples,
                                       layout.eval_mitsuba / "views"))  # fmt: skip
        metrics["mitsuba_environment"] = str(environment)
    return metrics
