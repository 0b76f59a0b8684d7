"""Stage-1 training loop: optimizer groups with decay, progress bar, TensorBoard, checkpoints, resume.

    trainer = Trainer(model, dataset, TrainConfig(steps=1000), run_dir)
    trainer.fit()            # resumes from run_dir/checkpoints when TrainConfig.resume is set

A non-finite loss stops training with :class:`TrainingError` (the last good checkpoint stays); Ctrl-C
writes a checkpoint before leaving. Under torchrun pass a :class:`recon.distributed.DistributedContext`:
each rank renders its share of every batch and only rank 0 writes (TensorBoard, checkpoints).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from data.dataset import MultiViewDataset
from data.images import linear_to_srgb
from recon.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from recon.distributed import DistributedContext
from recon.model import LossConfig, ReconstructionModel


class TrainingError(RuntimeError):
    """Training cannot continue (e.g. a non-finite loss); the message is one line."""


@dataclass
class OptimizerConfig:
    """Adam learning rates per parameter group; all decay exponentially to ``final_lr_fraction``."""

    sdf_encoding_lr: float = 1e-2
    sdf_mlp_lr: float = 1e-3
    material_lr: float = 1e-2
    light_lr: float = 3e-2
    final_lr_fraction: float = 0.1
    eps: float = 1e-15
    """Adam's epsilon (instant-ngp's 1e-15 by default)."""


@dataclass
class TrainConfig:
    """The loop's settings."""

    steps: int = 1000
    batch_size: int = 4
    """Views per step, over all processes (divisible by the torchrun process count)."""
    seed: int = 0
    losses: LossConfig = field(default_factory=LossConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    start_levels: int = 0
    """Coarse to fine: train with the ``start_levels`` coarsest hash-grid levels and enable one more every
    ``steps_per_level`` steps (0: every level from the first step)."""
    steps_per_level: int = 100
    log_every: int = 10
    image_every: int = 200
    checkpoint_every: int = 250
    resume: bool = False
    progress: bool = True


def make_optimizer(model: ReconstructionModel, config: OptimizerConfig) -> torch.optim.Adam:
    return torch.optim.Adam(
        [
            {"params": model.sdf.encoding.parameters(), "lr": config.sdf_encoding_lr, "name": "sdf_encoding"},
            {"params": model.sdf.layers.parameters(), "lr": config.sdf_mlp_lr, "name": "sdf_mlp"},
            {"params": model.material.parameters(), "lr": config.material_lr, "name": "material"},
            {"params": model.light.parameters(), "lr": config.light_lr, "name": "light"},
        ],
        betas=(0.9, 0.99),
        eps=config.eps,
    )


class Trainer:
    def __init__(
        self,
        model: ReconstructionModel,
        dataset: MultiViewDataset,
        config: TrainConfig,
        run_dir: Path,
        context: DistributedContext | None = None,
    ):
        self.model, self.dataset, self.config = model, dataset, config
        self.run_dir = Path(run_dir)
        self.context = context or DistributedContext()
        self.context.check_batch_size(config.batch_size, "train.batch_size")
        if config.start_levels < 0 or config.steps_per_level < 1:
            raise ValueError("train: start_levels must be >= 0 and steps_per_level >= 1")
        self.network = self.context.wrap(model)  # the model itself, or its DistributedDataParallel
        self.optimizer = make_optimizer(model, config.optimizer)
        decay = config.optimizer.final_lr_fraction ** (1 / max(config.steps, 1))
        self.scheduler = torch.optim.lr_scheduler.ExponentialLR(self.optimizer, decay)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.step = 0
        self.writer: SummaryWriter | None = None

    @property
    def checkpoint_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    def state(self) -> dict:
        return {
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "generator": self.generator.get_state(),
            "rng": torch.get_rng_state(),
        }

    def save(self) -> Path:
        """Write ``checkpoints/step_<step>.pt`` (rank 0 only; every rank gets the path)."""
        path = self.checkpoint_dir / f"step_{self.step}.pt"
        if self.context.is_main:
            save_checkpoint(path, self.state())
        return path

    def restore(self, path: Path | None = None) -> bool:
        """Load the given (or latest) checkpoint; False when there is none."""
        path = path or latest_checkpoint(self.checkpoint_dir)
        if path is None:
            return False
        state = load_checkpoint(
            path, required=("step", "model", "optimizer", "scheduler", "generator", "rng")
        )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["rng"])
        self.step = state["step"]
        self._schedule_levels(max(self.step - 1, 0))  # the levels of the last step trained (for exports)
        return True

    def _schedule_levels(self, step: int) -> None:
        """Coarse to fine: the hash-grid levels active at ``step`` (every level when off)."""
        if self.config.start_levels > 0:
            self.model.sdf.set_active_levels(self.config.start_levels + step // self.config.steps_per_level)

    def _check_parameters(self) -> None:
        for name, parameter in self.model.named_parameters():
            if not bool(torch.isfinite(parameter).all()):
                raise TrainingError(
                    f"step {self.step}: parameter {name} is not finite; the last good checkpoint is in "
                    f"{self.checkpoint_dir} (lower the learning rates and resume)"
                )

    def train_step(self) -> dict[str, float]:
        self._check_parameters()
        self._schedule_levels(self.step)
        batch = self.context.shard(self.dataset.sample(self.config.batch_size, self.generator))
        result = self.network(batch, self.config.losses, self.step, self.generator)
        terms = self.context.mean(dict(result.terms, loss=float(result.loss.detach())))
        if not math.isfinite(terms["loss"]):
            raise TrainingError(
                f"step {self.step}: the loss is not finite ({terms['loss']}); the last good checkpoint "
                f"is in {self.checkpoint_dir} (lower the learning rates and resume)"
            )
        self.optimizer.zero_grad(set_to_none=True)
        result.loss.backward()  # under DDP this also averages the gradients over the ranks
        self.optimizer.step()
        self.scheduler.step()
        self.model.light.clamp_()
        self.step += 1
        return terms

    def _log(self, terms: dict[str, float], seconds: float) -> None:
        if self.writer is None:
            return
        for name, value in terms.items():
            self.writer.add_scalar(
                f"{'loss' if name not in ('psnr', 'triangles') else 'train'}/{name}", value, self.step
            )
        self.writer.add_scalar("train/step_seconds", seconds, self.step)
        for group in self.optimizer.param_groups:
            self.writer.add_scalar(f"lr/{group['name']}", group["lr"], self.step)

    def _log_images(self) -> None:
        if self.writer is None:
            return
        with torch.no_grad():
            batch = self.dataset.batch([0], torch.Generator().manual_seed(0))  # leaves the RNGs alone
            batch = batch.to(self.context.device)
            vertices, faces, _ = self.model.extract()
            out = self.model.render(batch, vertices, faces)
            side = linear_to_srgb(torch.cat((out.rgb[0], batch.images[0]), 1))
            self.writer.add_image("render/rendered_vs_reference", side, self.step, dataformats="HWC")
            self.writer.add_image("render/normals", (out.normal[0] + 1) / 2, self.step, dataformats="HWC")
            material = out.material[0].clamp(0, 1)
            images = {
                "base_color": linear_to_srgb(material[..., :3]),
                "roughness": material[..., 3:4],
                "metallic": material[..., 4:5],
            }
            for name, image in images.items():
                self.writer.add_image(f"material/{name}", image, self.step, dataformats="HWC")
            light = linear_to_srgb(self.model.light.to_latlong(64))
            self.writer.add_image("light/environment", light, self.step, dataformats="HWC")

    def fit(self) -> dict[str, float]:
        """Train to ``config.steps``; returns the last step's terms."""
        if self.config.resume:
            self.restore()
        main = self.context.is_main
        self.writer = SummaryWriter(str(self.run_dir / "tb")) if main else None
        terms: dict[str, float] = {}
        show = self.config.progress and main
        bar = tqdm(total=self.config.steps, initial=self.step, disable=not show, unit="step")
        try:
            while self.step < self.config.steps:
                start = time.perf_counter()
                terms = self.train_step()
                seconds = time.perf_counter() - start
                if self.step % self.config.log_every == 0 or self.step == self.config.steps:
                    self._log(terms, seconds)
                if self.config.image_every and self.step % self.config.image_every == 0:
                    self._log_images()
                if self.config.checkpoint_every and self.step % self.config.checkpoint_every == 0:
                    self.save()
                bar.set_postfix(
                    loss=f"{terms['loss']:.4f}", psnr=f"{terms['psnr']:.2f}", tris=int(terms["triangles"])
                )
                bar.update(1)
        except KeyboardInterrupt:
            self.save()
            raise
        finally:
            bar.close()
            if self.writer is not None:
                self.writer.close()
        self.save()
        return terms
