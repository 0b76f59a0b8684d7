"""The run configuration (Hydra structured config): dataset, model, training, outputs.

Every field is typed, so a misspelt key or a wrong type fails when the command line is parsed. The
schema is registered as ``base_config``; ``configs/config.yaml`` builds on it and ``configs/experiment/``
holds presets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore

from recon.model import ModelConfig
from recon.stage2 import Stage2Config
from recon.synthetic import SyntheticConfig
from recon.trainer import TrainConfig


def _default_synthetic() -> SyntheticConfig:
    return SyntheticConfig(
        n_train=48, n_val=2, n_test=8, resolution=128, mesh_resolution=128, light_resolution=64
    )


@dataclass
class DatasetConfig:
    """Where the views come from."""

    path: str = ""
    """A dataset folder (NeRF-synthetic, nerfstudio, COLMAP, LLFF); empty = the built-in synthetic scene."""
    format: str = "auto"
    """auto, nerf_synthetic, nerfstudio, colmap or llff."""
    test_every: int = 8
    """Hold-out rule for formats without explicit splits: every n-th view is a test view."""
    downscale: float = 1.0
    """Divide the image size by this on load."""
    background: str = "random"
    """Training background: random, white or black."""
    synthetic: SyntheticConfig = field(default_factory=_default_synthetic)
    """The built-in scene, rendered into <run dir>/synthetic when ``path`` is empty."""


@dataclass
class ExportConfig:
    """The exported asset (docs/design.md, "Export contract")."""

    texture_resolution: int = 1024
    """Side of the square PBR textures (pixels)."""
    min_component_fraction: float = 0.05
    """Floating pieces smaller than this fraction of the largest one's area are removed."""


@dataclass
class Config:
    """Everything one ``python train.py`` run needs."""

    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    stage2: Stage2Config = field(default_factory=Stage2Config)
    export: ExportConfig = field(default_factory=ExportConfig)
    evaluate: bool = True
    """Render the test split at the end and write metrics.json (scripts/evaluate.py does the same)."""
    render_backend: str = "auto"
    """Rasterization backend: auto (nvdiffrast on CUDA when installed, else torch), torch or nvdiffrast."""
    device: str = "auto"
    """auto (the process's GPU when PyTorch sees one, else the CPU), cpu or cuda. Under torchrun each
    process takes GPU number LOCAL_RANK."""


def register() -> None:
    ConfigStore.instance().store(name="base_config", node=Config)
