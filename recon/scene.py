"""The scene of a run: its dataset folder parsed, or the built-in synthetic scene rendered into the run
folder once. Training (recon.run), the evaluation and the scripts all start here."""

from __future__ import annotations

from pathlib import Path

from data.dataset import load_scene
from data.scene import SceneData
from recon.config import Config
from recon.distributed import DistributedContext
from recon.synthetic import make_synthetic_scene


def dataset_root(config: Config, run_dir: Path) -> Path:
    """The folder of the run's dataset: ``dataset.path``, or the built-in scene's ``<run dir>/synthetic``."""
    return Path(config.dataset.path).expanduser() if config.dataset.path else Path(run_dir) / "synthetic"


def build_scene(
    config: Config, run_dir: Path, context: DistributedContext | None = None, sfm: str | None = None
) -> SceneData:
    """The dataset's scene: parsed from ``dataset.path`` (poses by SfM first when ``dataset.sfm``, or
    ``sfm`` when given, says so), or the built-in synthetic scene (rendered into ``<run dir>/synthetic``
    once, by rank 0, then reused, e.g. by the evaluation)."""
    context = context or DistributedContext()
    data = config.dataset
    sfm = sfm or data.sfm
    if data.path:  # rank 0 runs SfM when it is needed; the others then find its model
        if context.is_main:
            scene = load_scene(data.path, data.format, data.test_every, sfm, mask_command=data.mask_command)
        context.barrier()
        if not context.is_main:
            scene = load_scene(data.path, data.format, data.test_every, "off", progress=False)
        return scene
    folder = run_dir / "synthetic"
    if context.is_main and not (folder / "transforms_train.json").is_file():
        make_synthetic_scene(folder, data.synthetic)
    context.barrier()
    return load_scene(folder, "nerf_synthetic")
