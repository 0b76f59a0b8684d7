"""One reconstruction run: dataset -> stage-1 training -> outputs in the run folder."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf
from torch.utils.tensorboard import SummaryWriter

from data.dataset import MultiViewDataset, load_scene
from data.errors import DatasetError
from data.scene import SceneData
from data.synthetic import make_synthetic_scene
from recon.config import Config
from recon.evaluate import evaluate, save_transform
from recon.export import export_asset
from recon.model import ReconstructionModel
from recon.stage2 import Stage2Model, train_stage2
from recon.trainer import Trainer
from render.raster import set_backend


def build_scene(config: Config, run_dir: Path) -> SceneData:
    """The dataset's scene: parsed from ``dataset.path``, or the built-in synthetic scene (rendered into
    ``<run dir>/synthetic`` once, then reused, e.g. by the evaluation)."""
    data = config.dataset
    if data.path:
        return load_scene(data.path, data.format, test_every=data.test_every)
    folder = run_dir / "synthetic"
    if (folder / "transforms_train.json").is_file():
        return load_scene(folder, "nerf_synthetic")
    return make_synthetic_scene(folder, data.synthetic).scene


def build_dataset(config: Config, run_dir: Path) -> MultiViewDataset:
    scene = build_scene(config, run_dir)
    data = config.dataset
    return MultiViewDataset(scene, "train", downscale=data.downscale, background=data.background)


def run(config: Config, run_dir: Path) -> dict[str, float]:
    """Stage 1, its export (``stage1_mesh/``), stage 2, the final export (``mesh/``), evaluation."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    probe = run_dir / ".writable"
    try:
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise DatasetError(f"{run_dir}: output folder is not writable ({error.strerror})") from None
    resolution = config.export.texture_resolution
    if resolution < 8 or resolution & (resolution - 1):
        raise ValueError(f"export.texture_resolution must be a power of two >= 8 (mipmaps), got {resolution}")
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.structured(config)))
    set_backend(config.render_backend)
    dataset = build_dataset(config, run_dir)
    save_transform(run_dir / "scene_transform.json", dataset.transform)
    model = ReconstructionModel(config.model, seed=config.train.seed)
    trainer = Trainer(model, dataset, config.train, run_dir)
    terms = trainer.fit()
    stage1 = Stage2Model.from_stage1(
        model, config.export.texture_resolution, config.export.min_component_fraction
    )
    export_model(stage1, dataset, run_dir / "stage1_mesh")
    if config.stage2.steps > 0:
        writer = SummaryWriter(str(run_dir / "tb"))
        stage2_terms = train_stage2(
            stage1,
            dataset,
            config.stage2,
            writer,
            config.train.seed,
            config.train.progress,
            config.train.steps,
        )
        writer.close()
        terms.update({f"stage2_{k}": v for k, v in stage2_terms.items()})
    export_model(stage1, dataset, run_dir / "mesh")
    if config.evaluate:
        terms.update({f"test_{k}": v for k, v in evaluate(run_dir).items() if isinstance(v, float)})
    return terms


def export_model(model: Stage2Model, dataset: MultiViewDataset, folder: Path) -> Path:
    """Write the asset of a textured model in the dataset's world units."""
    vertices = dataset.transform.to_world(model.vertices.detach())
    textures = model.material.textures()
    return export_asset(folder, vertices, model.faces, model.uv, model.uv_faces, textures, model.light)
