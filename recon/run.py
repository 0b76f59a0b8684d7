"""One reconstruction run: dataset -> stage-1 training -> outputs in the run folder."""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from omegaconf import OmegaConf
from torch.utils.tensorboard import SummaryWriter

from data.dataset import MultiViewDataset
from data.errors import DatasetError
from data.files import write_text_atomic
from recon.config import Config
from recon.distributed import DistributedContext
from recon.evaluate import evaluate, save_transform
from recon.export import export_asset
from recon.model import ReconstructionModel
from recon.scene import build_scene
from recon.stage2 import Stage2Model, train_stage2
from recon.trainer import Trainer
from render.raster import set_backend


def build_dataset(
    config: Config, run_dir: Path, context: DistributedContext | None = None
) -> MultiViewDataset:
    scene = build_scene(config, run_dir, context)
    data = config.dataset
    return MultiViewDataset(scene, "train", downscale=data.downscale, background=data.background)


def run(config: Config, run_dir: Path, context: DistributedContext | None = None) -> dict[str, float]:
    """Stage 1, its export (``stage1_mesh/``), stage 2, the final export (``mesh/``), evaluation.

    Under torchrun every rank calls this with the same ``run_dir`` and its ``context``; rank 0 alone
    writes, and the other ranks return after stage 2 (with an empty dictionary)."""
    context = context or DistributedContext()
    run_dir = Path(run_dir)
    resolution = config.export.texture_resolution
    if resolution < 8 or resolution & (resolution - 1):
        raise ValueError(f"export.texture_resolution must be a power of two >= 8 (mipmaps), got {resolution}")
    set_backend(config.render_backend)
    if context.is_main:
        prepare_run_dir(run_dir, config)
    dataset = build_dataset(config, run_dir, context)
    if context.is_main:
        save_transform(run_dir / "scene_transform.json", dataset.transform)
    torch.manual_seed(config.train.seed)  # anything drawn from the global RNG is reproducible too
    model = ReconstructionModel(config.model, seed=config.train.seed)
    trainer = Trainer(model, dataset, config.train, run_dir, context)
    terms = trainer.fit()
    textured = None
    if context.is_main:
        textured = Stage2Model.from_stage1(
            model,
            config.export.texture_resolution,
            config.export.min_component_fraction,
            normal_map=config.stage2.normal_map or None,
        )
        export_model(textured, dataset, run_dir / "stage1_mesh")
    textured = context.broadcast(textured)
    if config.stage2.steps > 0:
        writer = SummaryWriter(str(run_dir / "tb")) if context.is_main else None
        stage2_terms = train_stage2(
            textured,
            dataset,
            config.stage2,
            writer,
            config.train.seed,
            config.train.progress,
            config.train.steps,
            context,
        )
        if writer is not None:
            writer.close()
        terms.update({f"stage2_{k}": v for k, v in stage2_terms.items()})
    if not context.is_main:
        return {}
    export_model(textured, dataset, run_dir / "mesh")
    if config.evaluate:
        terms.update({f"test_{k}": v for k, v in evaluate(run_dir).items() if isinstance(v, float)})
    return terms


def prepare_run_dir(run_dir: Path, config: Config) -> None:
    """Create the run folder, check it is writable, record the resolved config (config.yaml and as text
    in TensorBoard)."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".writable"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise DatasetError(f"{run_dir}: output folder is not writable ({error.strerror})") from None
    text = OmegaConf.to_yaml(OmegaConf.structured(config))
    write_text_atomic(run_dir / "config.yaml", text)
    with SummaryWriter(str(run_dir / "tb")) as writer:
        writer.add_text("config", "    " + text.replace("\n", "\n    "), 0)


def export_model(model: Stage2Model, dataset: MultiViewDataset, folder: Path) -> Path:
    """Write the asset of a textured model in the dataset's world units."""
    model = copy.deepcopy(model).cpu()
    vertices = dataset.transform.to_world(model.vertices.detach())
    textures = model.material.textures()
    transform = dataset.transform
    return export_asset(
        folder, vertices, model.faces, model.uv, model.uv_faces, textures, model.light,
        up=transform.up, up_source=transform.up_source,
    )  # fmt: skip
