"""The volumetric warm-up: stage 1's SDF trained first by rendering it as a volume (render.volume).

Surface rendering (marching cubes + rasterization) moves the surface only by local gradients: a flat
lid over a pocket, painted with the pocket's colours, is a dead end, as nothing opens a surface that has
no edge there. Volume rendering spreads each surface over a band of every ray, so the views that
disagree about a lid push it down wherever their colours agree deeper (photo-consistency). The warm-up
renders random pixels of each view through the SDF network with a colour field (:class:`RadianceField`:
a hash grid and an MLP, its colour varying with the view direction only to low order, as a specular
surface's does, so that it cannot paint a pocket onto a lid), matching colours and masks, with the
Eikonal term; the sharpness is learned. Stage 1 then starts from its SDF. On the concave test
object (docs/benchmarks.md) it deepens the pocket that stage 1 alone leaves closed. Needs masks: without
them (photos) it is skipped.

    warmup = VolumeWarmup(model, dataset, VolumeConfig(steps=2000), train_config, run_dir)
    warmup.fit()
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path

import torch
from torch import nn

from data.dataset import Batch, MultiViewDataset
from data.images import linear_to_srgb
from data.settings import Settings, require
from geometry.regularizers import eikonal_loss, eikonal_points
from recon.distributed import DistributedContext, view_generator
from recon.evaluation.metrics import psnr
from recon.run_dir import RunDir
from recon.train.loop import TrainingLoop, adam
from recon.train.losses import image_loss
from recon.train.material import HashGridMLP, MaterialConfig
from recon.train.model import ReconstructionModel
from render.sh import sh_basis
from render.volume import composite, ray_samples, sdf_opacity


@dataclass
class VolumeConfig(Settings):
    """Settings of :class:`VolumeWarmup` (``train.volume``)."""

    steps: int = 0
    """Warm-up steps before stage 1 (0: none); a step's cost does not grow with the image size."""
    batch_size: int = 4
    """Views per step (divisible by the torchrun process count)."""
    rays_per_view: int = 256
    """Random pixels of each view per step."""
    samples: int = 96
    """Points per ray, stratified over its segment inside the SDF box."""
    view_degree: int = 1
    """Spherical-harmonic degree of the colour's dependence on the view direction (0: none, at most 2).
    Without it a rough metal, whose colour changes with the view, is placed at a wrong depth instead."""

    def check(self) -> None:
        require(self, "steps", self.steps >= 0, "an integer >= 0 (0: no warm-up)")
        require(self, "batch_size", self.batch_size >= 1, "an integer >= 1")
        require(self, "rays_per_view", self.rays_per_view >= 1, "an integer >= 1")
        require(self, "samples", self.samples >= 2, "an integer >= 2")
        require(self, "view_degree", self.view_degree in (0, 1, 2), "0, 1 or 2")


INITIAL_SHARPNESS = 20.0
"""1 / width (world units) of each surface's band along a ray at the start; learned from there."""
MASK_WEIGHT, EIKONAL_WEIGHT, EIKONAL_POINTS = 1.0, 0.1, 2048
"""The warm-up's loss: image + MASK_WEIGHT * mask + EIKONAL_WEIGHT * Eikonal (at EIKONAL_POINTS points)."""
LEARNING_RATES = {"sdf_encoding": 1e-2, "sdf_mlp": 1e-3, "colour": 1e-2, "sharpness": 1e-2}
"""Adam's rates per group (the sharpness's: of its logarithm)."""


class VolumeModel(nn.Module):
    """What the warm-up trains: the stage-1 model's SDF network (shared, not copied), a colour field and
    the logarithm of the sharpness."""

    def __init__(self, model: ReconstructionModel, config: VolumeConfig, seed: int = 0):
        super().__init__()
        self.sdf = model.sdf
        box = (model.sdf.config.bbox_min, model.sdf.config.bbox_max)
        self.colour = RadianceField(model.material.config, *box, config.view_degree, seed + 7)
        self.log_sharpness = nn.Parameter(torch.tensor(math.log(INITIAL_SHARPNESS)))

    def forward(self, rays: Rays, eikonal_at: torch.Tensor | None = None):
        """Colour [R, 3] (linear, over the rays' background) and coverage [R, 1] of ``rays``, and the
        Eikonal loss at the points ``eikonal_at`` [P, 3] when given (in the same call: under torchrun every
        gradient must come from the wrapped module's forward)."""
        points, _ = ray_samples(
            rays.origins, rays.directions, self.sdf.lower, self.sdf.upper, rays.jitter.shape[1] - 1,
            jitter=rays.jitter,
        )  # fmt: skip
        sdf = self.sdf.sdf(points.reshape(-1, 3)).reshape(points.shape[:2])
        middles = 0.5 * (points[:, :-1] + points[:, 1:])
        colours = self.colour(middles, rays.directions)
        colour, coverage, _ = composite(sdf_opacity(sdf, self.log_sharpness.exp()), colours, rays.background)
        eikonal = None
        if eikonal_at is not None:
            spacing = float((self.sdf.upper - self.sdf.lower).min()) / 128
            eikonal = eikonal_loss(self.sdf.sdf, eikonal_at, step=spacing)
        return colour, coverage, eikonal


class RadianceField(HashGridMLP):
    """Linear colour in [0, 1] at points seen from unit directions: sigmoid(c_0(x) + sum_k c_k(x) Y_k(d) /
    Y_0) over the real spherical harmonics Y_k of degree <= ``degree``, the coefficients from a
    :class:`recon.train.material.HashGridMLP` with the material's settings."""

    def __init__(self, material: MaterialConfig, lower, upper, degree: int = 1, seed: int | None = None):
        super().__init__(material, 3 * (degree + 1) ** 2, lower, upper, seed)
        self.terms = (degree + 1) ** 2

    def forward(self, points: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
        """points [R, S, 3] on rays of directions [R, 3] -> colours [R, S, 3]."""
        raw = self.raw(points.reshape(-1, 3)).reshape(*points.shape[:2], 3, self.terms)
        basis = sh_basis(directions)[:, : self.terms]
        return torch.sigmoid((raw * (basis / basis[:, :1])[:, None, None]).sum(-1))


@dataclass
class Rays:
    """R rays: origins, unit directions [R, 3]; the colours [R, 3] (linear) and masks [R, 1] of their
    pixels; the background [R, 3] behind them; the stratified jitter [R, S + 1] of their samples."""

    origins: torch.Tensor
    directions: torch.Tensor
    colours: torch.Tensor
    masks: torch.Tensor
    background: torch.Tensor
    jitter: torch.Tensor

    @classmethod
    def at_pixels(cls, batch: Batch, view: int, pixels: torch.Tensor, jitter: torch.Tensor) -> Rays:
        """The rays of view ``view`` of ``batch`` through ``pixels`` [R] (row-major indices), with the
        samples' ``jitter`` [R, S + 1]."""
        device = batch.images.device
        pixels = pixels.to(device)
        origins, directions = batch.cameras[view].pixel_rays(pixels)
        return cls(
            origins, torch.nn.functional.normalize(directions, dim=-1),
            batch.images[view].reshape(-1, 3)[pixels], batch.masks[view].reshape(-1, 1)[pixels],
            batch.background[view, 0, 0].expand(len(pixels), 3), jitter.to(device),
        )  # fmt: skip


def view_rays(batch: Batch, rays_per_view: int, samples: int, step: int) -> Rays:
    """``rays_per_view`` random pixels of each view, and their samples' jitter, drawn by a generator
    seeded by the view and the step: the same rays for a view whichever process renders it (under
    torchrun the ranks' mean loss is the single process's)."""
    height, width = batch.images.shape[1:3]
    parts = []
    for b in range(batch.images.shape[0]):
        generator = view_generator(batch.views[b], step)
        pixels = torch.randint(height * width, (rays_per_view,), generator=generator)
        jitter = torch.rand(rays_per_view, samples + 1, generator=generator)
        parts.append(Rays.at_pixels(batch, b, pixels, jitter))
    return Rays(*(torch.cat([getattr(part, f.name) for part in parts]) for f in fields(Rays)))


class VolumeWarmup(TrainingLoop):
    """The warm-up's loop (progress, TensorBoard under ``volume/``, checkpoints in
    ``checkpoints/volume``, resume), on :class:`VolumeModel`."""

    name = "volume warm-up"
    config_key = "train.volume"

    def __init__(
        self, model: ReconstructionModel, dataset: MultiViewDataset, config: VolumeConfig, settings,
        run_dir: Path, context: DistributedContext | None = None,
    ):  # fmt: skip
        self.volume = VolumeModel(model, config, settings.seed)
        rates = {
            "sdf_encoding": (self.volume.sdf.encoding.parameters(), LEARNING_RATES["sdf_encoding"]),
            "sdf_mlp": (self.volume.sdf.layers.parameters(), LEARNING_RATES["sdf_mlp"]),
            "colour": (self.volume.colour.parameters(), LEARNING_RATES["colour"]),
            "sharpness": ([self.volume.log_sharpness], LEARNING_RATES["sharpness"]),
        }
        groups = [{"params": p, "lr": lr, "name": f"volume_{name}"} for name, (p, lr) in rates.items()]
        optimizer = adam(groups, eps=settings.optimizer.eps)
        super().__init__(
            self.volume, dataset, config, settings, optimizer, Path(run_dir),
            RunDir(run_dir).volume_checkpoints, context,
        )  # fmt: skip
        self.image_loss = settings.losses.image

    @property
    def crop(self) -> int:
        return 0  # random pixels of whole views

    def compute(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        config = self.config
        rays = view_rays(batch, config.rays_per_view, config.samples, self.step)
        sdf = self.volume.sdf
        generator = torch.Generator().manual_seed(self.step)  # the same points on every rank
        points = eikonal_points(EIKONAL_POINTS, sdf.lower, sdf.upper, None, 0.0, generator)
        rendered, coverage, eikonal = self.network(rays, points.to(rays.origins.device))
        terms = {
            "image": image_loss(rendered, rays.colours, self.image_loss),
            "mask": (coverage - rays.masks).abs().mean(),
            "eikonal": eikonal,
        }
        loss = terms["image"] + MASK_WEIGHT * terms["mask"] + EIKONAL_WEIGHT * terms["eikonal"]
        logged = {name: float(value.detach()) for name, value in terms.items()}
        logged["psnr"] = float(psnr(rendered.detach().clamp(0, 1), rays.colours.clamp(0, 1)))
        logged["sharpness"] = float(self.volume.log_sharpness.detach().exp())
        return loss, logged

    def scalar_tag(self, name: str) -> str:
        return f"volume/{name}"

    def _log_images(self) -> None:
        """The first view rendered as a volume (at most 96 pixels a side), beside its reference."""
        with torch.no_grad():
            batch = self.dataset.batch([0], torch.Generator().manual_seed(0)).to(self.context.device)
            height, width = batch.images.shape[1:3]
            factor = max(1, math.ceil(max(height, width) / 96))
            rows, cols = len(range(0, height, factor)), len(range(0, width, factor))
            y, x = torch.meshgrid(torch.arange(rows) * factor, torch.arange(cols) * factor, indexing="ij")
            pixels = (y * width + x).reshape(-1)
            rays = Rays.at_pixels(batch, 0, pixels, torch.full((len(pixels), self.config.samples + 1), 0.5))
            colour, _, _ = self.volume(rays)
            reference = rays.colours.reshape(rows, cols, 3)
            side = linear_to_srgb(torch.cat((colour.reshape(rows, cols, 3), reference), 1))
            self.writer.add_image("volume/rendered_vs_reference", side, self.step, dataformats="HWC")
