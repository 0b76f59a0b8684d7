"""One reconstruction run: dataset -> stage 1 -> its export -> stage 2 -> the final export -> evaluation,
each phase recorded in ``progress.json`` so that ``train.resume=true`` continues a run stopped anywhere
without redoing finished work."""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
import sys
from pathlib import Path

import torch
from omegaconf import OmegaConf
from torch.utils.tensorboard import SummaryWriter

from data.dataset import MultiViewDataset
from data.errors import DatasetError
from data.files import write_text_atomic
from recon.backdrop import make_backdrop, save_ground
from recon.bake import bake_vertex_values
from recon.checkpoint import checkpoints_newest_first, load_checkpoint, save_checkpoint
from recon.config import Config, validate
from recon.distributed import DistributedContext
from recon.errors import ConfigError
from recon.evaluate import evaluate, log_evaluation, save_transform
from recon.export import export_asset
from recon.loop import stop_signals
from recon.model import ReconstructionModel
from recon.scene import build_scene
from recon.stage2 import Stage2Model, Stage2Trainer, stage2_checkpoint_dir
from recon.trainer import Trainer
from recon.volume import VolumeWarmup
from render.raster import set_backend

PHASES = ("stage1", "textured", "stage1_mesh", "stage2", "mesh", "metrics")
"""In order: stage 1 trained; the stage-2 model made from it (``checkpoints/textured.pt``); the stage-1
asset exported; stage 2 trained; the final asset exported; the evaluation written."""


class RunProgress:
    """The finished phases of a run (``<run dir>/progress.json``), each stamped with a digest of the
    configuration. A phase counts as finished only if every earlier one does, with the same digest:
    change the configuration and resume, and everything after stage 1 is done again."""

    def __init__(self, run_dir: Path, config: Config, context: DistributedContext):
        self.path, self.context = run_dir / "progress.json", context
        text = OmegaConf.to_yaml(OmegaConf.structured(config))
        lines = [line for line in text.splitlines() if not line.strip().startswith(("resume:", "progress:"))]
        self.digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]
        self.done: dict[str, str] = {}
        if config.train.resume and self.path.is_file():
            try:
                self.done = dict(json.loads(self.path.read_text()).get("finished", {}))
            except (ValueError, AttributeError):
                self.done = {}  # unreadable: every phase is redone, which is always safe

    def finished(self, phase: str) -> bool:
        earlier = PHASES[: PHASES.index(phase) + 1]
        return all(self.done.get(name) == self.digest for name in earlier)

    def mark(self, phase: str, redone: bool = True) -> None:
        """Record ``phase`` as finished; when it was (re)done in this process, every later phase is
        forgotten (``redone=False``: it only resumed and found its work finished)."""
        if self.finished(phase) and not redone:
            return
        later = PHASES[PHASES.index(phase) :]
        self.done = {name: value for name, value in self.done.items() if name not in later}
        self.done[phase] = self.digest
        if self.context.is_main:
            write_text_atomic(self.path, json.dumps({"finished": self.done}, indent=2))


def build_dataset(
    config: Config, run_dir: Path, context: DistributedContext | None = None
) -> MultiViewDataset:
    scene = build_scene(config, run_dir, context)
    data = config.dataset
    return MultiViewDataset(
        scene,
        "train",
        downscale=data.downscale_for(scene),
        background=data.background,
        bbox=tuple(data.bbox) or None,
    )


def warm_up(
    model: ReconstructionModel, dataset: MultiViewDataset, config: Config, run_dir: Path,
    context: DistributedContext,
) -> None:  # fmt: skip
    """The volumetric warm-up of the SDF (``train.volume``), continued from its checkpoints on a resume;
    skipped for photos (it matches masks)."""
    if config.train.volume.steps <= 0:
        return
    if dataset.photos:
        if context.is_main:
            print("train.volume: skipped, the views have no masks (photos)", file=sys.stderr)
        return
    warmup = VolumeWarmup(model, dataset, config.train.volume, config.train, run_dir, context)
    if config.train.resume:
        warmup.restore()
    warmup.fit(resume=False)


def run(config: Config, run_dir: Path, context: DistributedContext | None = None) -> dict[str, float]:
    """Every phase of :data:`PHASES` not yet finished (all of them unless ``train.resume``). Ctrl-C or
    SIGTERM raises :class:`recon.errors.Interrupted`; in training, after the step in progress and a
    checkpoint.

    Under torchrun every rank calls this with the same ``run_dir`` and its ``context``; rank 0 alone
    writes, and the other ranks return after stage 2 (with an empty dictionary)."""
    validate(config)
    context = context or DistributedContext()
    run_dir = Path(run_dir)
    set_backend(config.render_backend)
    with stop_signals():  # outside the training loops: stop at once (every write is atomic)
        if context.is_main:
            prepare_run_dir(run_dir, config)
        progress = RunProgress(run_dir, config, context)
        dataset = build_dataset(config, run_dir, context)
        if context.is_main:
            save_transform(run_dir / "scene_transform.json", dataset.transform)
        torch.manual_seed(config.train.seed)  # anything drawn from the global RNG is reproducible too
        backdrop = make_backdrop(dataset, config.model.ground_texture)
        model = ReconstructionModel(config.model, config.train.seed, backdrop, dataset.region)
        trainer = Trainer(model, dataset, config.train, run_dir, context)
        if config.train.resume:
            trainer.restore()
        if trainer.step == 0:
            warm_up(model, dataset, config, run_dir, context)
        start = trainer.step
        terms = dict(trainer.fit(resume=False))
        progress.mark("stage1", redone=trainer.step > start)
        textured = textured_model(config, run_dir, trainer, progress, context)
        textured.region = dataset.region  # also when read back from checkpoints/textured.pt
        if context.is_main and not progress.finished("stage1_mesh"):
            export_model(textured, dataset, run_dir / "stage1_mesh")
            progress.mark("stage1_mesh")
        stage2 = Stage2Trainer(
            textured, dataset, config.stage2, config.train, run_dir, context, step_offset=config.train.steps
        )
        stage2.restore()  # checkpoints/stage2 only ever hold this stage-2 model's training
        start = stage2.step
        if config.stage2.steps > 0:
            terms.update({f"stage2_{k}": v for k, v in stage2.fit(resume=False).items()})
        progress.mark("stage2", redone=stage2.step > start)
        if not context.is_main:
            return {}
        if not progress.finished("mesh"):
            export_model(stage2.model, dataset, run_dir / "mesh")
            progress.mark("mesh")
        if config.evaluate:
            if progress.finished("metrics") and (run_dir / "metrics.json").is_file():
                metrics = json.loads((run_dir / "metrics.json").read_text())
            else:
                metrics = evaluate(run_dir)
                log_evaluation(run_dir, metrics, config.train.steps + config.stage2.steps)
                progress.mark("metrics")
            terms.update({f"test_{k}": v for k, v in metrics.items() if isinstance(v, float)})
    return terms


def textured_model(
    config: Config, run_dir: Path, trainer: Trainer, progress: RunProgress, context: DistributedContext
) -> Stage2Model:
    """The stage-2 model as made from the trained stage-1 model (xatlas and baking, on rank 0), saved as
    ``checkpoints/textured.pt``; read back from there when the run made it before."""
    path = run_dir / "checkpoints" / "textured.pt"
    if progress.finished("textured") and path.is_file():
        state = load_checkpoint(path, ("model",))["model"]
        return Stage2Model.from_state(state, config.model.light, config.model.material)
    textured = None
    if context.is_main:
        shutil.rmtree(stage2_checkpoint_dir(run_dir), ignore_errors=True)  # of an earlier stage-2 model
        textured = Stage2Model.from_stage1(
            trainer.model,
            config.export.texture_resolution,
            config.export.min_component_fraction,
            normal_map=config.stage2.normal_map or None,
            max_faces=config.export.max_faces,
        )
        save_checkpoint(path, {"model": textured.state_dict()})
    textured = context.broadcast(textured)
    progress.mark("textured")
    return textured


def prepare_run_dir(run_dir: Path, config: Config) -> None:
    """Create the run folder, check it is writable, refuse to start over a run that has checkpoints
    unless resuming, record the resolved config (config.yaml and as text in TensorBoard)."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".writable"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise DatasetError(f"{run_dir}: output folder is not writable ({error.strerror})") from None
    if not config.train.resume and checkpoints_newest_first(run_dir / "checkpoints"):
        raise ConfigError(
            f"{run_dir}: holds the checkpoints of an earlier run; continue it with train.resume=true or "
            "choose another hydra.run.dir"
        )
    text = OmegaConf.to_yaml(OmegaConf.structured(config))
    write_text_atomic(run_dir / "config.yaml", text)
    with SummaryWriter(str(run_dir / "tb")) as writer:
        writer.add_text("config", "    " + text.replace("\n", "\n    "), 0)


def export_model(model: Stage2Model, dataset: MultiViewDataset, folder: Path) -> Path:
    """Write the asset of a textured model in the dataset's world units."""
    model = copy.deepcopy(model).cpu()
    vertices = dataset.transform.to_world(model.vertices.detach())
    textures = model.material.textures()
    if model.occlusion is not None:  # of the final vertices, into ORM's R channel
        model.update_occlusion()
        size = textures.base_color.shape[0]
        textures.occlusion = bake_vertex_values(
            model.occlusion[:, None], model.faces, model.uv, model.uv_faces, size
        )
    transform = dataset.transform
    if model.backdrop is not None and model.backdrop.ground is not None:
        save_ground(folder.parent / "ground", model.backdrop.ground, transform)
    return export_asset(
        folder, vertices, model.faces, model.uv, model.uv_faces, textures, model.light,
        up=transform.up, up_source=transform.up_source,
    )  # fmt: skip
