"""Stage 1 and the run's training settings: optimizer groups with decay, coarse-to-fine hash levels.

    trainer = Trainer(model, dataset, TrainConfig(steps=1000), run_dir)
    trainer.fit()            # resumes from run_dir/checkpoints when TrainConfig.resume is set

The loop itself (progress, TensorBoard, checkpoints, resume, NaN guard, Ctrl-C / SIGTERM) is
:class:`recon.train.loop.TrainingLoop`, shared with stage 2. Under torchrun pass a
:class:`recon.distributed.DistributedContext`: each rank renders its share of every batch and only rank 0
writes (TensorBoard, checkpoints).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from data.dataset import Batch, MultiViewDataset
from data.errors import ConfigError
from data.settings import Settings, require
from geometry.cpu_threads import parse_setting
from geometry.extraction import GridConfig
from recon.distributed import DistributedContext
from recon.errors import TrainingError
from recon.run_dir import RunDir
from recon.train.loop import TrainingLoop, adam, exponential_decay
from recon.train.model import LossConfig, ReconstructionModel
from recon.train.volume import VolumeConfig
from render.renderer import RenderOutput

__all__ = ["OptimizerConfig", "TrainConfig", "Trainer", "TrainingError", "fine_grid", "make_optimizer"]


@dataclass
class OptimizerConfig(Settings):
    """Adam learning rates per parameter group; all decay exponentially to ``final_lr_fraction``."""

    sdf_encoding_lr: float = 1e-2
    sdf_mlp_lr: float = 1e-3
    material_lr: float = 1e-2
    light_lr: float = 3e-2
    ground_lr: float = 1e-2
    """The ground plane's texture (photos without masks)."""
    final_lr_fraction: float = 0.1
    eps: float = 1e-15
    """Adam's epsilon in every stage: the warm-up, stage 1 and stage 2 (instant-ngp's 1e-15 by default)."""

    def check(self) -> None:
        for name in ("sdf_encoding_lr", "sdf_mlp_lr", "material_lr", "light_lr", "ground_lr"):
            require(self, name, getattr(self, name) >= 0, "a learning rate >= 0")
        require(self, "final_lr_fraction", 0 < self.final_lr_fraction <= 1, "a fraction in (0, 1]")
        require(self, "eps", self.eps > 0, "a number > 0")


@dataclass
class TrainConfig(Settings):
    """Stage 1's settings, and the loop settings every stage shares (seed, logging, checkpoints,
    resume, progress)."""

    steps: int = 1000
    batch_size: int = 4
    """Views per step, over all processes (divisible by the torchrun process count)."""
    crop: int = 0
    """Train each step on a random ``crop`` x ``crop`` window of every view (0: whole views): full-resolution
    pixels at less cost per step (docs/benchmarks.md)."""
    seed: int = 0
    losses: LossConfig = field(default_factory=LossConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    volume: VolumeConfig = field(default_factory=VolumeConfig)
    """The volumetric warm-up of the SDF before stage 1 (recon.train.volume;
    ``train.volume.steps=0``: none)."""
    start_levels: int = 0
    """Coarse to fine: train with the ``start_levels`` coarsest hash-grid levels and enable one more every
    ``steps_per_level`` steps (0: every level from the first step)."""
    steps_per_level: int = 100
    fine_grid_resolution: int = 0
    """Coarse to fine extraction: from step ``fine_grid_start`` on, marching cubes runs on a grid of this
    many cells per axis instead of ``model.grid.resolution`` (0: off), and so do the stage-1 mesh and
    stage 2. A step on a twice finer grid costs about twice as much (4x the triangles), so the fine grid
    is for the last steps, once the shape is settled (docs/benchmarks.md has what it gave on lego)."""
    fine_grid_start: int = 0
    log_every: int = 10
    image_every: int = 200
    checkpoint_every: int = 250
    """Write a checkpoint every this many steps (0: only by time, at the end and when stopped)."""
    checkpoint_minutes: float = 5.0
    """Also write one when this many minutes of wall time passed since the last (0: off), so that a
    slow run never loses more."""
    keep_checkpoints: int = 3
    """Keep the newest this many checkpoints of each stage (0: all)."""
    resume: bool = False
    """Continue the run in the output folder (hydra.run.dir) from where it stopped: stage 1, stage 2,
    export or evaluation; finished work is not redone. The run's own config.yaml is reloaded: other
    values on the command line are taken only where they cannot change what was trained (more steps,
    logging, checkpoints, a phase not yet done); anything else is refused."""
    overwrite: bool = False
    """Start a new run in a folder that holds an earlier run's results, deleting that run first (the whole
    folder's content, once the new run's dataset has loaded); without it such a folder is refused."""
    progress: bool = True
    threads: str = "auto"
    """CPU threads of the operators: auto (the cores the other programs leave free, re-measured every half
    second, at most this process's share of the cores; geometry.cpu_threads) or a fixed count N (1 makes a
    run bitwise reproducible)."""
    occlusion: bool = True
    """Shade with the ambient occlusion of the mesh (render.occlusion), recomputed every
    ``occlusion_every`` steps from ``occlusion_start`` on, so crevices are not painted dark into the
    material (see stage2.occlusion)."""
    occlusion_start: int = 100
    occlusion_every: int = 100

    def check(self) -> None:
        counts = {
            "steps": (1, "(stage 1 must train before stage 2 can start)"), "batch_size": (1, ""),
            "steps_per_level": (1, ""), "log_every": (1, ""), "occlusion_every": (1, ""),
            "start_levels": (0, ""), "fine_grid_start": (0, ""), "occlusion_start": (0, ""),
            "image_every": (0, "(0: no images)"), "checkpoint_every": (0, "(0: by time only)"),
            "keep_checkpoints": (0, "(0: keep all)"), "fine_grid_resolution": (0, "(0: off)"),
        }  # fmt: skip
        for name, (least, note) in counts.items():
            require(self, name, getattr(self, name) >= least, f"an integer >= {least} {note}".strip())
        require(
            self, "crop", self.crop == 0 or self.crop >= 16, "0 (whole views) or a window side >= 16 pixels"
        )
        require(self, "checkpoint_minutes", self.checkpoint_minutes >= 0, "minutes >= 0 (0: by steps only)")
        require(self, "threads", _thread_setting(self.threads), "auto or a thread count >= 1")
        if self.fine_grid_resolution:  # the narrow band must reach it from its coarse grid
            expected = "16 times a power of two (cells per axis), or 0 (off)"
            require(self, "fine_grid_resolution", fine_grid(self, GridConfig()) is not None, expected)


def _thread_setting(value: str) -> bool:
    try:
        parse_setting(value)
    except ValueError:
        return False
    return True


def fine_grid(config: TrainConfig, grid: GridConfig) -> GridConfig | None:
    """``grid`` at ``config.fine_grid_resolution``; None when that is off or the narrow band cannot reach
    it from ``grid.coarse_resolution``."""
    if not config.fine_grid_resolution:
        return None
    fine = replace(grid, resolution=config.fine_grid_resolution)
    try:
        fine.validate()
    except ConfigError:
        return None
    return fine


def make_optimizer(model: ReconstructionModel, config: OptimizerConfig) -> torch.optim.Adam:
    groups = [
        {"params": model.sdf.encoding.parameters(), "lr": config.sdf_encoding_lr, "name": "sdf_encoding"},
        {"params": model.sdf.layers.parameters(), "lr": config.sdf_mlp_lr, "name": "sdf_mlp"},
        {"params": model.material.parameters(), "lr": config.material_lr, "name": "material"},
        {"params": model.light.parameters(), "lr": config.light_lr, "name": "light"},
    ]
    if model.backdrop is not None and model.backdrop.ground is not None:
        groups.append({"params": [model.backdrop.ground.texture], "lr": config.ground_lr, "name": "ground"})
    return adam(groups, eps=config.eps)


class Trainer(TrainingLoop):
    """Stage 1: the SDF network, material MLP and light, through marching cubes, with the learning rates
    decaying exponentially and the hash-grid levels enabled coarse to fine."""

    name = "stage 1"

    def __init__(
        self,
        model: ReconstructionModel,
        dataset: MultiViewDataset,
        config: TrainConfig,
        run_dir: Path,
        context: DistributedContext | None = None,
    ):
        config.validate()
        optimizer = make_optimizer(model, config.optimizer)
        scheduler = exponential_decay(optimizer, config.optimizer.final_lr_fraction, config.steps)
        super().__init__(
            model, dataset, config, config, optimizer, Path(run_dir), RunDir(run_dir).checkpoints, context,
            scheduler,
        )  # fmt: skip
        self.model = model

    def _schedule_levels(self, step: int) -> None:
        """Coarse to fine: the hash-grid levels active at ``step`` (every level when off)."""
        if self.config.start_levels > 0:
            self.model.sdf.set_active_levels(self.config.start_levels + step // self.config.steps_per_level)

    def _schedule_grid(self, step: int) -> None:
        """Coarse to fine extraction: the marching-cubes grid of ``step``."""
        fine = self.config.fine_grid_resolution
        base = self.model.config.grid.resolution  # the run's (GridSettings)
        self.model.set_grid_resolution(fine if fine and step >= self.config.fine_grid_start else base)

    def before_step(self) -> None:
        self._schedule_levels(self.step)
        self._schedule_grid(self.step)
        config = self.config
        due = (
            self.step >= config.occlusion_start
            and (self.step - config.occlusion_start) % config.occlusion_every == 0
        )
        if config.occlusion and due:
            self.model.update_occlusion()

    def load_state(self, state: dict) -> None:
        super().load_state(state)
        last = max(self.step - 1, 0)  # the levels and grid of the last step trained (for exports, stage 2)
        self._schedule_levels(last)
        self._schedule_grid(last)

    def compute(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        result = self.network(batch, self.config.losses, self.step, self.generator)
        return result.loss, result.terms

    def after_step(self) -> None:
        self.model.light.clamp_()
        if self.model.backdrop is not None:
            self.model.backdrop.clamp_()

    def preview(self, batch: Batch) -> RenderOutput:
        vertices, faces, _ = self.model.surface(self.step)
        return self.model.render(batch, vertices, faces)

    def scalar_tag(self, name: str) -> str:
        return f"{'train' if name in ('psnr', 'triangles', 'step_seconds') else 'loss'}/{name}"

    def _postfix(self) -> dict[str, str]:
        return dict(super()._postfix(), tris=str(int(self.terms["triangles"])))
