"""One reconstruction run: dataset -> stage-1 training -> outputs in the run folder."""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import OmegaConf

from data.dataset import MultiViewDataset, load_scene
from data.errors import DatasetError
from data.synthetic import make_synthetic_scene
from geometry.mesh import remove_small_components
from geometry.obj import write_obj
from recon.config import Config
from recon.model import ReconstructionModel
from recon.trainer import Trainer
from render.raster import set_backend


def build_dataset(config: Config, run_dir: Path) -> MultiViewDataset:
    data = config.dataset
    if data.path:
        options = {} if data.format == "nerf_synthetic" else {"test_every": data.test_every}
        if data.format == "auto" and not (Path(data.path) / "transforms_train.json").is_file():
            options = {"test_every": data.test_every}
        scene = load_scene(data.path, data.format, **options)
    else:
        scene = make_synthetic_scene(run_dir / "synthetic", data.synthetic).scene
    return MultiViewDataset(scene, "train", downscale=data.downscale, background=data.background)


def run(config: Config, run_dir: Path) -> dict[str, float]:
    """Train stage 1 and write ``stage1_mesh_untextured.obj`` (world units) and the resolved config."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    probe = run_dir / ".writable"
    try:
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise DatasetError(f"{run_dir}: output folder is not writable ({error.strerror})") from None
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.structured(config)))
    set_backend(config.render_backend)
    device = "cuda" if config.device == "auto" and torch.cuda.is_available() else config.device
    if device not in ("cpu", "cuda", "auto"):
        raise DatasetError(f"device: expected auto, cpu or cuda, got {config.device!r}")
    dataset = build_dataset(config, run_dir)
    model = ReconstructionModel(config.model, seed=config.train.seed)
    trainer = Trainer(model, dataset, config.train, run_dir)
    terms = trainer.fit()
    with torch.no_grad():
        vertices, faces, _ = model.extract()
        vertices, faces = remove_small_components(vertices, faces, 0.05)
        write_obj(run_dir / "stage1_mesh_untextured.obj", dataset.transform.to_world(vertices), faces)
    return terms
