"""Evaluate a run: render the test split with the exported asset, compare, write metrics.json.

python scripts/evaluate.py outputs/<date>/<time>
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NamedTuple

import imageio.v3 as iio
import numpy as np
import torch
from omegaconf import OmegaConf

from data.dataset import MultiViewDataset
from data.files import write_text_atomic
from data.images import linear_to_srgb, to_uint8, write_image
from data.normalization import SceneTransform
from data.orientation import Z_UP, rotation_to_z_up
from geometry.obj import read_obj
from recon.backdrop import load_ground
from recon.checkpoint import CheckpointError
from recon.config import Config
from recon.metrics import image_psnr, image_ssim, surface_metrics
from recon.scene import build_scene
from recon.texture_material import TextureMaterial
from render.background import Backdrop
from render.light import EnvironmentLight, EnvironmentLightConfig
from render.occlusion import vertex_occlusion
from render.renderer import render_views


def save_transform(path: Path, transform: SceneTransform) -> None:
    data = {
        "offset": transform.offset.tolist(),
        "scale": transform.scale,
        "method": transform.method,
        "up": list(transform.up),
        "up_source": transform.up_source,
        "note": "normalized = (world - offset) * scale; mesh.glb maps 'up' to glTF +Y and probe.hdr has it "
        "as its pole (+Z); mesh.obj stays in the dataset's world frame (the same frame when up is +Z)",
    }
    write_text_atomic(path, json.dumps(data, indent=2))


def reference_mesh(config: Config, run_dir: Path) -> Path | None:
    root = Path(config.dataset.path) if config.dataset.path else run_dir / "synthetic"
    path = root / "gt_mesh.obj"
    return path if path.is_file() else None


class Asset(NamedTuple):
    """An exported asset read back (world units): what :func:`render.renderer.render_views` needs."""

    vertices: torch.Tensor
    faces: torch.Tensor
    uv: torch.Tensor
    uv_faces: torch.Tensor
    material: TextureMaterial
    light: EnvironmentLight
    occlusion: torch.Tensor | None
    """[V] ambient occlusion of the mesh when the asset has it baked (ORM's R channel below 1), else None."""

    def render(self, cameras, background: torch.Tensor | None = None, light: EnvironmentLight | None = None):
        """The asset in ``cameras`` under its own probe (or ``light``)."""
        return render_views(
            self.vertices, self.faces, cameras, light or self.light, self.material, background,
            uv=self.uv, uv_faces=self.uv_faces, occlusion=self.occlusion,
        )  # fmt: skip


def has_baked_occlusion(folder: Path) -> bool:
    """Whether the ORM texture's R channel holds ambient occlusion (anything below 1)."""
    path = folder / "texture_ks.png"
    return path.is_file() and int(np.asarray(iio.imread(path))[..., 0].min()) < 255


def load_asset(folder: Path, light_resolution: int, up=Z_UP, turn: torch.Tensor | None = None) -> Asset:
    """An exported asset (docs/design.md, "Export contract"), in world units; ``up``: the world's up
    axis, the probe's pole. ``turn`` [3, 3]: the light is wanted in the world rotated by it (the mesh
    stays as written). When the asset has occlusion baked, the mesh's own (render.occlusion, which the
    bake was made of) shades it, as a glTF viewer applies ``occlusionTexture``."""
    mesh = read_obj(folder / "mesh.obj")
    if mesh.uv is None:
        raise CheckpointError(f"{folder / 'mesh.obj'}: no texture coordinates")
    light = EnvironmentLight.from_file(
        folder / "probe.hdr", EnvironmentLightConfig(resolution=light_resolution),
        rotation=(rotation_to_z_up(up) if turn is None else rotation_to_z_up(up) @ turn.double().T).float(),
    )  # fmt: skip
    occlusion = vertex_occlusion(mesh.vertices, mesh.faces) if has_baked_occlusion(folder) else None
    material = TextureMaterial.from_files(folder)
    return Asset(mesh.vertices, mesh.faces, mesh.uv, mesh.uv_faces, material, light, occlusion)


def load_run(run_dir: Path) -> tuple[Config, Path]:
    """A run folder's resolved config and its final asset folder (``mesh/``, else ``stage1_mesh/``)."""
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise CheckpointError(f"{config_path}: not a run folder (no config.yaml)")
    config: Config = OmegaConf.to_object(
        OmegaConf.merge(OmegaConf.structured(Config), OmegaConf.load(config_path))
    )
    folder = next(
        (run_dir / name for name in ("mesh", "stage1_mesh") if (run_dir / name / "mesh.obj").is_file()), None
    )
    if folder is None:
        raise CheckpointError(f"{run_dir}: no exported asset (mesh/ or stage1_mesh/) to evaluate")
    return config, folder


def load_up(run_dir: Path) -> tuple[tuple[float, float, float], str]:
    """The world's up axis recorded in ``scene_transform.json`` (+Z for runs that predate it)."""
    path = run_dir / "scene_transform.json"
    data = json.loads(path.read_text()) if path.is_file() else {}
    return tuple(data.get("up", (0.0, 0.0, 1.0))), data.get("up_source", "+Z by convention")


def asset_dataset(scene, split: str, downscale: float) -> MultiViewDataset:
    """The views of a split in the dataset's own units (exports are), over white."""
    world = SceneTransform(torch.zeros(3), 1.0, "identity")
    return MultiViewDataset(scene, split, downscale=downscale, background="white", transform=world)


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


def evaluate(run_dir: str | os.PathLike, max_views: int = 0) -> dict:
    """Metrics of the run's exported asset (``mesh/``, else ``stage1_mesh/``) on the test split: the OBJ,
    its textures and probe.hdr are read back and rendered with the dataset's own cameras, so what is
    measured is exactly what was exported. Writes ``metrics.json`` and ``eval/view_XXX.png``
    (rendered | reference, sRGB, white background)."""
    run_dir = Path(run_dir)
    config, folder = load_run(run_dir)
    scene = build_scene(config, run_dir, sfm="off")
    split = "test" if scene.splits.get("test") else "val"
    dataset = asset_dataset(scene, split, config.dataset.downscale_for(scene))
    views = range(len(dataset)) if not max_views else range(min(max_views, len(dataset)))
    backdrop = None
    if dataset.photos:
        ground = run_dir / "ground"
        backdrop = Backdrop(load_ground(ground) if (ground / "ground.json").is_file() else None)
    up, _ = load_up(run_dir)
    scores = evaluate_asset(
        folder, dataset, views, config.model.light.resolution, run_dir / "eval", up, backdrop
    )
    psnrs, ssims = scores["psnrs"], scores["ssims"]
    metrics = {"asset": folder.name, "split": split, "views": len(psnrs), "psnr": float(np.mean(psnrs)),
               "ssim": float(np.mean(ssims))}  # fmt: skip
    gt = reference_mesh(config, run_dir)
    if gt is not None:
        mesh, reference = read_obj(folder / "mesh.obj"), read_obj(gt)
        vertices, faces = mesh.vertices, mesh.faces
        extent = float((reference.vertices.max(0).values - reference.vertices.min(0).values).norm())
        metrics.update(
            surface_metrics(vertices, faces, reference.vertices, reference.faces, threshold=0.01 * extent)
        )
        metrics["reference_mesh"] = str(gt)
    write_text_atomic(run_dir / "metrics.json", json.dumps(metrics, indent=2))
    return metrics
