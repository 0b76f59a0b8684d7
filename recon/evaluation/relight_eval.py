"""An exported asset under a light it never saw, against the truth under that light.

* Built-in scenes keep their test views rendered again under a second light (``relight/``, see
  recon.scenes.synthetic): the asset is rendered by our renderer with that light (:func:`relight_ours`).
* Any scene with a true mesh and material (recon.evaluation.materials) can be judged by an independent path
  tracer: Mitsuba 3 renders the truth and the asset under the same light (:func:`relight_mitsuba`).

Both score PSNR (sRGB, over white) as is and after the per-channel scale fitted on the object's pixels
(the asset's brightness is only known relative to its own light).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from data.dataset import load_scene
from data.images import linear_to_srgb, to_uint8, write_image
from recon.asset.load import Asset, asset_dataset
from recon.evaluation import mitsuba
from recon.evaluation.materials import scaled_psnr
from recon.evaluation.metrics import image_psnr
from recon.scenes.reference import RELIGHT_FOLDER
from render.light import EnvironmentLight, EnvironmentLightConfig


def relight_root(dataset_root: Path) -> Path | None:
    """The relighting views beside a dataset, when it has them."""
    root = Path(dataset_root) / RELIGHT_FOLDER
    return root if (root / "transforms_test.json").is_file() and (root / "env.hdr").is_file() else None


def _scores(rendered: torch.Tensor, reference: torch.Tensor, alpha: torch.Tensor, prefix: str) -> dict:
    """Metrics of linear renders [B, H, W, 3] over white against references [B, H, W, 3] over white."""
    psnrs = [image_psnr(linear_to_srgb(r.clamp(0, 1)), linear_to_srgb(t.clamp(0, 1))) for r, t in
             zip(rendered, reference, strict=True)]  # fmt: skip
    scaled, scale = scaled_psnr(rendered, reference, alpha)
    return {f"{prefix}_psnr": float(sum(psnrs) / len(psnrs)), f"{prefix}_psnr_scaled": scaled,
            f"{prefix}_scale": scale, f"{prefix}_views": len(psnrs)}  # fmt: skip


def _write(image_dir: Path | None, rendered: torch.Tensor, reference: torch.Tensor) -> None:
    if image_dir is None:
        return
    image_dir.mkdir(parents=True, exist_ok=True)
    for k, (r, t) in enumerate(zip(rendered, reference, strict=True)):
        side = linear_to_srgb(torch.cat((r, t), 1).clamp(0, 1))
        write_image(image_dir / f"view_{k:03d}.png", to_uint8(side))


def relight_ours(
    asset: Asset, root: Path, downscale: float, light_resolution: int, image_dir: Path | None = None,
    max_views: int = 0,
) -> dict:  # fmt: skip
    """``relight_psnr`` (and scaled) of the asset rendered by our renderer under ``root/env.hdr`` in the
    views of ``root`` (a relighting folder, :func:`relight_root`)."""
    dataset = asset_dataset(load_scene(root), "test", downscale)
    light = EnvironmentLight.from_file(root / "env.hdr", EnvironmentLightConfig(resolution=light_resolution))
    views = range(len(dataset) if not max_views else min(max_views, len(dataset)))
    rendered, reference, alpha = [], [], []
    with torch.no_grad():
        for view in views:
            batch = dataset.batch([view])
            out = asset.render(batch.cameras, batch.background, light=light)
            rendered.append(out.rgb[0])
            reference.append(batch.images[0])
            alpha.append(torch.maximum(out.alpha[0], batch.masks[0]))
    rendered, reference = torch.stack(rendered), torch.stack(reference)
    _write(image_dir, rendered, reference)
    return _scores(rendered, reference, torch.stack(alpha), "relight")


def relight_mitsuba(
    asset_folder: Path, truth_folder: Path, environment: str | os.PathLike, cameras, samples: int = 64,
    image_dir: Path | None = None,
) -> dict:  # fmt: skip
    """``mitsuba_relight_psnr`` (and scaled): Mitsuba 3 path-traces the exported asset and the truth (an
    asset folder too, recon.evaluation.materials.export_reference) under ``environment`` in ``cameras``, over
    white."""
    truth = mitsuba.render(
        truth_folder / "mesh.obj", mitsuba.MitsubaMaterial.of_asset(truth_folder), environment, cameras,
        samples,
    )  # fmt: skip
    ours = mitsuba.render(
        asset_folder / "mesh.obj", mitsuba.MitsubaMaterial.of_asset(asset_folder), environment, cameras,
        samples, seed=len(cameras),
    )  # fmt: skip
    over_white = lambda x: x[..., :3] + (1 - x[..., 3:])  # noqa: E731  (premultiplied)
    rendered, expected = over_white(ours), over_white(truth)
    _write(image_dir, rendered, expected)
    alpha = torch.maximum(ours[..., 3:], truth[..., 3:])
    return _scores(rendered, expected, alpha, "mitsuba_relight")
