"""One reconstruction run: dataset -> stage 1 -> its export -> stage 2 -> the final export -> evaluation,
each phase recorded in ``progress.json`` so that ``train.resume=true`` continues a run stopped anywhere
without redoing finished work."""

from __future__ import annotations

import copy
import json
import shutil
import sys
from pathlib import Path

import torch

from data.dataset import MultiViewDataset
from data.errors import DatasetError, warn
from data.fingerprint import scene_fingerprint
from data.scene import held_out_split
from geometry import cpu_threads
from geometry.cpu_threads import ThreadPolicy
from recon import run_folder
from recon.asset.backdrop import make_backdrop, save_ground
from recon.asset.bake import bake_vertex_values
from recon.asset.export import export_asset
from recon.config import Config
from recon.distributed import DistributedContext
from recon.evaluation.evaluate import evaluate, log_evaluation
from recon.progress import RunProgress
from recon.run_dir import RunDir
from recon.run_folder import RunLock, RunLog
from recon.scenes.scene import build_scene, dataset_root
from recon.train.checkpoint import load_checkpoint, save_checkpoint
from recon.train.loop import stop_signals
from recon.train.model import ReconstructionModel
from recon.train.stage2 import Stage2Model, Stage2Trainer
from recon.train.trainer import Trainer
from recon.train.volume import VolumeWarmup
from render.raster import set_backend


def build_dataset(
    config: Config, run_dir: Path, context: DistributedContext | None = None, sfm: str | None = None
) -> MultiViewDataset:
    """The training views (every input checked: files, sizes, masks); ``sfm`` overrides ``dataset.sfm``."""
    scene = build_scene(config.dataset, run_dir, context, sfm)
    if len(scene.splits.get("train", [])) == 1:  # none: MultiViewDataset says so
        raise DatasetError(
            f"{scene.source}: one training view; a reconstruction needs 2 or more (20 or more for a good one)"
        )
    data = config.dataset
    return MultiViewDataset(
        scene,
        "train",
        downscale=data.downscale_for(scene),
        background=data.background,
        bbox=tuple(data.bbox) or None,
    )


def start_run(
    config: Config, run_dir: Path, context: DistributedContext, log: RunLog | None, command: list[str],
    changes: dict[str, tuple],
) -> MultiViewDataset:  # fmt: skip
    """Check the folder and the dataset before anything is written into the folder, then record the new
    run (config.yaml, run.json with the dataset's fingerprint) or the resume (run.json), and send the log
    to train.log. A resume reads its poses as they are (no SfM) and must find the run's own data."""
    resume, main = config.train.resume, context.is_main

    def fingerprint() -> dict:
        return scene_fingerprint(dataset.scene, dataset_root(config.dataset, run_dir))

    if main and resume:
        run_folder.check_resumable(run_dir)
    elif main:
        run_folder.check_new(run_dir, config.train.overwrite)
    dataset = None
    if config.dataset.path or resume:  # nothing of it goes into the run folder: check it first
        dataset = build_dataset(config, run_dir, context, sfm="off" if resume else None)
    if main and resume:
        recorded = fingerprint()
        run_folder.check_dataset(run_dir, recorded)
        run_folder.add_resume(run_dir, command, changes, recorded)
    elif main:
        if config.train.overwrite:
            run_folder.clear(run_dir)
        shutil.rmtree(RunDir(run_dir).synthetic, ignore_errors=True)  # of a start that failed: rendered anew
        run_folder.write_config(run_dir, config)
    if main and log is not None:
        log.attach(RunDir(run_dir).log_file)
    if dataset is None:  # the built-in scene, rendered into the run folder
        dataset = build_dataset(config, run_dir, context)
    if main and not resume:
        run_folder.write_record(run_dir, command, fingerprint())
    if main and (not resume or not RunDir(run_dir).transform_file.is_file()):
        RunDir(run_dir).save_transform(dataset.transform)
    if main and config.evaluate and held_out_split(dataset.scene.splits) is None:
        warn(f"{dataset.scene.source}: no test or val views, so the evaluation at the end is skipped (no "
             "metrics.json); hold views out with dataset.test_every or a transforms_test.json")  # fmt: skip
    return dataset


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


def run(
    config: Config, run_dir: Path, context: DistributedContext | None = None, log: RunLog | None = None,
    command: list[str] | tuple[str, ...] = (), changes: dict[str, tuple] | None = None,
) -> dict[str, float]:  # fmt: skip
    """Every phase of :data:`recon.progress.PHASES` not yet finished (all of them unless
    ``train.resume``). Ctrl-C or SIGTERM raises :class:`recon.errors.Interrupted`; in training, after the
    step in progress and a checkpoint. ``log`` (train.py's capture) is sent to train.log once the folder
    is this run's; ``command`` (the command line's overrides) and ``changes`` (a resume's changed keys,
    recon.resume) go into run.json.

    Under torchrun every rank calls this with the same ``run_dir`` and its ``context``; rank 0 alone
    writes, and the other ranks return after stage 2 (with an empty dictionary)."""
    config.validate()
    context = context or DistributedContext()
    run_dir = Path(run_dir)
    set_backend(config.render_backend)
    lock = RunLock(run_dir)
    threads = ThreadPolicy.from_setting(config.train.threads)
    try:
        with stop_signals(), cpu_threads.installed(threads):  # stop at once outside training (atomic writes)
            if context.is_main:
                print(threads.describe(), flush=True)
                lock.acquire()
            return run_phases(config, run_dir, context, log, list(command), changes or {})
    finally:
        lock.release()


def run_phases(
    config: Config, run_dir: Path, context: DistributedContext, log: RunLog | None, command: list[str],
    changes: dict[str, tuple],
) -> dict[str, float]:  # fmt: skip
    """:func:`run` once the folder is locked: the checks and the record, then every unfinished phase."""
    dataset = start_run(config, run_dir, context, log, command, changes)
    progress = RunProgress(run_dir, config, config.train.resume, write=context.is_main)
    if context.is_main and config.train.resume:
        progress.discard_unfinished()
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
        export_model(textured, dataset, RunDir(run_dir).stage1_mesh, config.stage2.occlusion_directions)
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
        export_model(stage2.model, dataset, RunDir(run_dir).mesh, config.stage2.occlusion_directions)
        progress.mark("mesh")
    if config.evaluate and held_out_split(dataset.scene.splits) is not None:
        if progress.finished("metrics") and RunDir(run_dir).metrics_file.is_file():
            metrics = json.loads(RunDir(run_dir).metrics_file.read_text())
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
    path = RunDir(run_dir).textured
    if progress.finished("textured") and path.is_file():
        state = load_checkpoint(path, ("model",))["model"]
        return Stage2Model.from_state(state, config.model.light.build(), config.model.material.build())
    textured = None
    if context.is_main:
        shutil.rmtree(RunDir(run_dir).stage2_checkpoints, ignore_errors=True)  # of an earlier stage-2 model
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


def export_model(
    model: Stage2Model, dataset: MultiViewDataset, folder: Path, occlusion_directions: int
) -> Path:
    """Write the asset of a textured model in the dataset's world units; its occlusion (ORM's R) from
    ``occlusion_directions`` depth maps, stage 2's own count (``stage2.occlusion_directions``)."""
    model = copy.deepcopy(model).cpu()
    vertices = dataset.transform.to_world(model.vertices.detach())
    textures = model.material.textures()
    if model.occlusion is not None:  # of the final vertices, into ORM's R channel
        model.update_occlusion(occlusion_directions)
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
