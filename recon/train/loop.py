"""The training loop both stages share: progress bar, TensorBoard scalars and images, atomic checkpoints
(every N steps, every few minutes of wall time, on Ctrl-C and on SIGTERM), exact resume, the NaN guard.

A stage subclasses :class:`TrainingLoop` and says what one step computes (:meth:`TrainingLoop.compute`),
what the preview image shows (:meth:`TrainingLoop.preview`) and what happens after an optimizer step
(:meth:`TrainingLoop.after_step`); the loop does the rest::

    loop = Trainer(model, dataset, config, run_dir)   # recon.train.trainer (stage 1) or recon.train.stage2
    loop.fit()                                        # resumes from its checkpoints when config.resume

Checkpoints hold everything a bitwise-exact continuation needs (module state, optimizer, scheduler, the
sampling generator, the global RNG, the last terms). Under torchrun only rank 0 writes.
"""

from __future__ import annotations

import contextlib
import math
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from data.dataset import Batch, MultiViewDataset
from data.images import linear_to_srgb
from geometry import cpu_threads
from recon.distributed import DistributedContext
from recon.errors import Interrupted, TrainingError
from recon.run_dir import RunDir
from recon.train.checkpoint import CheckpointError, checkpoints_newest_first, load_checkpoint, save_checkpoint
from render.renderer import RenderOutput

STATE_KEYS = ("step", "model", "optimizer", "scheduler", "generator", "rng")
"""What a checkpoint must hold (``terms``, the last step's, is optional: older checkpoints lack it)."""


@contextlib.contextmanager
def stop_signals(defer: bool = False) -> Iterator[dict]:
    """Within the block Ctrl-C (SIGINT) and SIGTERM (what ``kill``, ``timeout`` and cluster schedulers
    send) stop the run by raising :class:`recon.errors.Interrupted`. With ``defer`` the first signal only
    sets ``state["pending"]`` (the signal's name) and the training loop stops at the end of the step in
    progress, so that its checkpoint is of a whole step; a second one raises at once. Only the main
    thread can install handlers; elsewhere the block runs unchanged (and no signal reaches it)."""
    state: dict = {"pending": None}
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def stop(signum: int, frame) -> None:
        name = signal.Signals(signum).name
        if defer and state["pending"] is None:
            state["pending"] = name
            return
        raise Interrupted(f"stopped by {name}")

    previous = {number: signal.signal(number, stop) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield state
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


class TrainingLoop:
    """Optimize ``module`` for ``config.steps`` steps of ``config.batch_size`` views of ``dataset``
    (``config``: the stage's own settings, read at every step).

    ``settings`` is the run's :class:`recon.train.trainer.TrainConfig` (seed, logging, checkpoint and resume
    settings apply to every stage); checkpoints go to ``checkpoint_dir`` as ``step_<n>.pt``, TensorBoard
    to ``run_dir/tb`` at global step ``step_offset + step`` (stages follow each other on one time axis).
    """

    name = "stage"
    """Label of the progress bar and the error messages."""
    config_key = "train"
    """Where the stage's settings are in the run's configuration (for messages)."""

    @property
    def steps(self) -> int:
        return self.config.steps

    @property
    def batch_size(self) -> int:
        return self.config.batch_size

    @property
    def crop(self) -> int:
        """Side of the random window of each view that a step trains on (0: whole views)."""
        return self.config.crop

    def __init__(
        self,
        module: nn.Module,
        dataset: MultiViewDataset,
        config,
        settings,
        optimizer: torch.optim.Optimizer,
        run_dir: Path,
        checkpoint_dir: Path,
        context: DistributedContext | None = None,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
        step_offset: int = 0,
    ):
        self.module, self.dataset, self.config, self.settings = module, dataset, config, settings
        self.optimizer, self.scheduler = optimizer, scheduler
        self.run_dir, self.checkpoint_dir = Path(run_dir), Path(checkpoint_dir)
        self.context = context or DistributedContext()
        self.context.check_batch_size(config.batch_size, f"{self.config_key}.batch_size")
        self.network = self.context.wrap(module)  # the module itself, or its DistributedDataParallel
        self.generator = torch.Generator().manual_seed(settings.seed)
        self.step_offset = step_offset
        self.step = 0
        self.terms: dict[str, float] = {}
        self.writer: SummaryWriter | None = None
        self._saved_step = -1
        self._saved_at = time.monotonic()

    # ----------------------------------------------------------------------------- what a stage defines

    def compute(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        """The loss of one step on this rank's share of the batch, and its named terms (floats)."""
        raise NotImplementedError

    def preview(self, batch: Batch) -> RenderOutput:
        """A render of ``batch`` for TensorBoard (no gradients needed)."""
        raise NotImplementedError

    def before_step(self) -> None:
        """Called before each step (e.g. to schedule hash-grid levels)."""

    def after_step(self) -> None:
        """Called after each optimizer step (e.g. to clamp values to their physical range)."""

    def scalar_tag(self, name: str) -> str:
        """TensorBoard tag of a term, e.g. ``stage2/loss``."""
        return f"{self.config_key}/{name}"

    # ----------------------------------------------------------------------------------- checkpoints

    def state(self) -> dict:
        return {
            "step": self.step,
            "model": self.module.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "generator": self.generator.get_state(),
            "rng": torch.get_rng_state(),
            "terms": dict(self.terms),
        }

    def save(self) -> Path:
        """Write ``step_<step>.pt`` (rank 0 only; every rank gets the path) and keep it with the newest
        ``settings.keep_checkpoints - 1`` earlier ones (files numbered after it, e.g. a corrupt leftover,
        are neither deleted nor counted)."""
        path = self.checkpoint_dir / f"step_{self.step}.pt"
        if self.context.is_main and self._saved_step != self.step:
            save_checkpoint(path, self.state())
            keep = self.settings.keep_checkpoints
            older = [p for p in checkpoints_newest_first(self.checkpoint_dir) if int(p.stem[5:]) < self.step]
            for old in older[keep - 1 :] if keep > 0 else []:  # never this one, nor a later-numbered file
                old.unlink(missing_ok=True)
        self._saved_step = self.step
        self._saved_at = time.monotonic()
        return path

    def load_state(self, state: dict) -> None:
        self.module.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:  # None: saved without one
            self.scheduler.load_state_dict(state["scheduler"])
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["rng"])
        self.step, self.terms = state["step"], dict(state.get("terms", {}))
        self._saved_step = self.step

    def restore(self, path: Path | None = None) -> bool:
        """Load ``path``, or the newest readable checkpoint (a corrupt newer one is reported in one warning
        line and left in place); False when there is none. A checkpoint of another model (parameters or
        optimizer groups that differ from this configuration's) is a :class:`CheckpointError` naming the
        first difference."""
        state = load_checkpoint(path, STATE_KEYS) if path is not None else newest_state(self.checkpoint_dir)
        if state is None:
            return False
        problem = self.difference(state)
        if problem:
            where = path if path is not None else self.checkpoint_dir
            raise CheckpointError(
                f"{where}: a checkpoint of another model than this configuration's ({problem}); resume with "
                "the configuration that wrote it, or move it away to start this phase afresh"
            )
        self.load_state(state)
        return True

    def difference(self, state: dict) -> str | None:
        """How a checkpoint's model and optimizer differ from this loop's (parameter names and shapes,
        optimizer groups), or None when it fits."""
        own, theirs = dict(self.module.named_parameters()), state["model"]
        if not isinstance(theirs, dict):
            return "its model is not a state dictionary"
        for name, value in own.items():  # parameters only: buffers hold data (e.g. occlusion) of any size
            shape = getattr(theirs.get(name), "shape", None)
            if shape is None:
                return f"no {name}"
            if tuple(shape) != tuple(value.shape):
                return f"{name} is {list(shape)}, this configuration's {list(value.shape)}"
        own_groups = self.optimizer.state_dict()["param_groups"]
        groups = state["optimizer"].get("param_groups", []) if isinstance(state["optimizer"], dict) else []
        sizes, own_sizes = [len(g["params"]) for g in groups], [len(g["params"]) for g in own_groups]
        if sizes != own_sizes:
            return f"optimizer groups of {sizes} parameters, this configuration's {own_sizes}"
        return None

    # ------------------------------------------------------------------------------------- the loop

    def _check_parameters(self) -> None:
        parameters = list(self.module.named_parameters())
        if not parameters:
            return
        # A sum is finite when every element is (one pass, no mask); only when a sum is not (a NaN, an
        # infinity, or an overflow of huge values) are the elements themselves checked.
        sums = torch.stack([parameter.detach().sum() for _, parameter in parameters])
        if bool(torch.isfinite(sums).all()):
            return
        for name, parameter in parameters:
            if not bool(torch.isfinite(parameter).all()):
                raise TrainingError(
                    f"{self.name}, step {self.step}: parameter {name} is not finite; the last good "
                    f"checkpoint is in {self.checkpoint_dir} (lower the learning rates and resume)"
                )

    def train_step(self) -> dict[str, float]:
        cpu_threads.adapt()
        self._check_parameters()
        self.before_step()
        batch = self.dataset.sample(self.batch_size, self.generator)
        if self.crop > 0:
            batch = batch.cropped(self.crop, self.generator)
        batch = self.context.shard(batch)
        loss, terms = self.compute(batch)
        terms = self.context.mean(dict(terms, loss=float(loss.detach())))
        if not math.isfinite(terms["loss"]):
            raise TrainingError(
                f"{self.name}, step {self.step}: the loss is not finite ({terms['loss']}); the last good "
                f"checkpoint is in {self.checkpoint_dir} (lower the learning rates and resume)"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()  # under DDP this also averages the gradients over the ranks
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        self.after_step()
        self.step += 1
        self.terms = terms
        return terms

    def _log(self, seconds: float) -> None:
        step = self.step_offset + self.step
        for name, value in self.terms.items():
            self.writer.add_scalar(self.scalar_tag(name), value, step)
        self.writer.add_scalar(self.scalar_tag("step_seconds"), seconds, step)
        self.writer.add_scalar("cpu/threads", torch.get_num_threads(), step)  # train.threads=auto moves it
        for group in self.optimizer.param_groups:
            self.writer.add_scalar(f"lr/{group['name']}", group["lr"], step)

    def _log_images(self) -> None:
        with torch.no_grad():
            batch = self.dataset.batch([0], torch.Generator().manual_seed(0))  # leaves the RNGs alone
            batch = batch.to(self.context.device)
            out = self.preview(batch)
            step = self.step_offset + self.step
            side = linear_to_srgb(torch.cat((out.rgb[0], batch.images[0]), 1))
            self.writer.add_image("render/rendered_vs_reference", side, step, dataformats="HWC")
            self.writer.add_image("render/normals", (out.normal[0] + 1) / 2, step, dataformats="HWC")
            material = out.material[0].clamp(0, 1)
            images = {
                "base_color": linear_to_srgb(material[..., :3]),
                "roughness": material[..., 3:4],
                "metallic": material[..., 4:5],
            }
            for name, image in images.items():
                self.writer.add_image(f"material/{name}", image, step, dataformats="HWC")
            light = linear_to_srgb(self.module.light.to_latlong(64))
            self.writer.add_image("light/environment", light, step, dataformats="HWC")

    def _postfix(self) -> dict[str, str]:
        return {"loss": f"{self.terms['loss']:.4f}", "psnr": f"{self.terms['psnr']:.2f}"}

    def _checkpoint_due(self) -> bool:
        every, minutes = self.settings.checkpoint_every, self.settings.checkpoint_minutes
        by_steps = every > 0 and self.step % every == 0
        return by_steps or (minutes > 0 and time.monotonic() - self._saved_at >= 60 * minutes)

    def fit(self, resume: bool | None = None) -> dict[str, float]:
        """Train to ``steps``, first restoring the newest checkpoint when ``resume`` (default:
        ``settings.resume``); returns the last step's terms. Ctrl-C or SIGTERM ends the step in progress,
        writes a checkpoint and raises :class:`recon.errors.Interrupted` (a second one raises at once,
        without a checkpoint of the unfinished step)."""
        if self.settings.resume if resume is None else resume:
            self.restore()
        main = self.context.is_main
        self.writer = SummaryWriter(str(RunDir(self.run_dir).tb)) if main else None
        show = self.settings.progress and main
        bar = tqdm(total=self.steps, initial=self.step, disable=not show, unit="step", desc=self.name)
        self._saved_at = time.monotonic()
        try:
            with stop_signals(defer=True) as stop:
                while self.step < self.steps:
                    start = time.perf_counter()
                    self.train_step()
                    seconds = time.perf_counter() - start
                    log_every, image_every = self.settings.log_every, self.settings.image_every
                    if main and (self.step % log_every == 0 or self.step == self.steps):
                        self._log(seconds)
                    if main and image_every and self.step % image_every == 0:
                        self._log_images()
                    if self._checkpoint_due() or stop["pending"]:
                        self.save()
                    bar.set_postfix(self._postfix())
                    bar.update(1)
                    if stop["pending"]:
                        stopped = Interrupted(
                            f"stopped by {stop['pending']} in {self.name} after step {self.step}; checkpoint "
                            f"{self.checkpoint_dir / f'step_{self.step}.pt'}"
                        )
                        stopped.checkpointed = True
                        raise stopped
        except KeyboardInterrupt as error:  # a second signal, or one without our handler: mid-step
            if getattr(error, "checkpointed", False):
                raise
            newest = checkpoints_newest_first(self.checkpoint_dir) if self.context.is_main else []
            kept = (
                f"{newest[0]} is the newest checkpoint" if newest else "no checkpoint of it was written yet"
            )
            raise Interrupted(
                f"{error or 'interrupted'} in {self.name} during step {self.step + 1}; {kept}"
            ) from None
        finally:
            bar.close()
            if self.writer is not None:
                self.writer.close()
        self.save()
        return self.terms


def adam(groups: list[dict], eps: float) -> torch.optim.Adam:
    """Adam (betas 0.9, 0.99) over parameter ``groups``, with the fused kernel where this torch has it
    for the parameters' device (CPU since torch 2.4; 6x faster than the per-tensor loop here)."""
    try:
        return torch.optim.Adam(groups, betas=(0.9, 0.99), eps=eps, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(groups, betas=(0.9, 0.99), eps=eps)


def exponential_decay(
    optimizer: torch.optim.Optimizer, final_fraction: float, steps: int
) -> torch.optim.lr_scheduler.ExponentialLR:
    """A scheduler (stepped once per step) under which every group's learning rate decays exponentially
    to ``final_fraction`` of its start by step ``steps``."""
    return torch.optim.lr_scheduler.ExponentialLR(optimizer, final_fraction ** (1 / max(steps, 1)))


def newest_state(folder: Path) -> dict | None:
    """The newest checkpoint in ``folder`` that loads; None when there is none. Unreadable newer ones
    are named in one warning line each (stderr) and left in place; when none loads, the newest one's
    error is raised."""
    candidates = checkpoints_newest_first(folder)
    failures: list[CheckpointError] = []
    for path in candidates:
        try:
            state = load_checkpoint(path, STATE_KEYS)
        except CheckpointError as error:
            failures.append(error)
            continue
        for failure in failures:
            print(f"warning: {failure}; resuming from {path.name} instead", file=sys.stderr)
        return state
    if failures:
        raise failures[0]
    return None
