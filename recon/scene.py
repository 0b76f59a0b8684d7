"""The scene of a run: its dataset folder parsed, or the built-in synthetic scene rendered into the run
folder once. Training (recon.run), the evaluation and the scripts all start here."""

from __future__ import annotations

from pathlib import Path

from data.dataset import load_scene
from data.scene import SceneData
from recon.config import Config
from recon.distributed import DistributedContext
from recon.synthetic import make_synthetic_scene


def build_scene(config: Config, run_dir: Path, context: DistributedContext | None = None) -> SceneData:
    """The dataset's scene: parsed from ``dataset.path``, or the built-in synthetic scene (rendered into
    ``<run dir>/synthetic`` once, by rank 0, then reused, e.g. by the evaluation)."""
    context = context or DistributedContext()
    data = config.dataset
    if data.path:
        return load_scene(data.path, data.format, test_every=data.test_every)
    folder = run_dir / "synthetic"
    if context.is_main and not (folder / "transforms_train.json").is_file():
        make_synthetic_scene(folder, data.synthetic)
    context.barrier()
    return load_scene(folder, "nerf_synthetic")
