"""The run configuration (Hydra structured config): dataset, model, training, outputs.

Every field is typed, so a misspelt key or a wrong type fails when the command line is parsed. The
schema is registered as ``base_config``; ``configs/config.yaml`` builds on it and ``configs/experiment/``
holds presets.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError, MissingMandatoryValue

from data.errors import ConfigError
from data.settings import Settings, power_of_two, require
from recon.scenes.scene import DatasetConfig
from recon.train.model import ModelConfig
from recon.train.stage2 import Stage2Config
from recon.train.trainer import TrainConfig
from render.raster import BACKENDS


@dataclass
class ExportConfig(Settings):
    """The exported asset (docs/design.md, "Export contract")."""

    texture_resolution: int = 1024
    """Side of the square PBR textures (pixels): a power of two (mipmaps)."""
    min_component_fraction: float = 0.05
    """Floating pieces smaller than this fraction of the largest one's area are removed."""
    max_faces: int = 200_000
    """Face budget of the asset: a larger stage-1 mesh is decimated (quadric edge collapse) before UV
    unwrapping and stage 2; 0 keeps every face."""

    def check(self) -> None:
        require(self, "texture_resolution", power_of_two(self.texture_resolution, 8), "a power of two >= 8")
        fraction = 0 <= self.min_component_fraction <= 1
        require(self, "min_component_fraction", fraction, "a fraction in [0, 1]")
        require(
            self, "max_faces", self.max_faces == 0 or self.max_faces >= 4, "0 (no limit) or an integer >= 4"
        )


@dataclass
class Config(Settings):
    """Everything one ``python train.py`` run needs; ``validate()`` checks every value (one line naming
    the first bad key) before anything is computed or written."""

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

    def check(self) -> None:
        require(self, "render_backend", self.render_backend in BACKENDS, f"one of {', '.join(BACKENDS)}")
        require(self, "device", self.device in ("auto", "cpu", "cuda"), "auto, cpu or cuda")


def leaf_values(config: Config | DictConfig) -> dict[str, object]:
    """Every leaf value of a configuration by its dotted key (``train.steps``); lists are leaves and
    interpolations stay unresolved."""
    node = config if isinstance(config, DictConfig) else OmegaConf.structured(config)
    leaves: dict[str, object] = {}

    def walk(value, prefix: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{prefix}{key}.")
        else:
            leaves[prefix[:-1]] = value

    walk(OmegaConf.to_container(node, resolve=False), "")
    return leaves


def to_config(cfg: DictConfig) -> Config:
    """The typed configuration of a composed Hydra config, with a :class:`ConfigError` (one line) for a key
    the schema does not have (Hydra accepts ``+train.stepz=5``), a value a preset requires that the
    command line did not give (``${required:...}`` in the preset) or any other missing value."""
    known = leaf_values(Config())
    for key in leaf_values(cfg):
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(key, f"unknown key{hint}; python train.py --help lists every key")
    try:
        return OmegaConf.to_object(cfg)
    except InterpolationResolutionError as error:
        cause = error
        while cause is not None and not isinstance(cause, ConfigError):
            cause = cause.__context__
        raise (cause or ConfigError(str(error).splitlines()[0])) from None
    except MissingMandatoryValue as error:
        raise ConfigError(error.full_key, f"a value is required (set {error.full_key}=...)") from None


def _required(message: str) -> str:
    """``${required:"what to set"}`` in a preset: the value the user must give on the command line."""
    raise ConfigError(message)


def register() -> None:
    """The schema as Hydra's ``base_config``, and the ``required`` resolver presets use."""
    ConfigStore.instance().store(name="base_config", node=Config)
    if not OmegaConf.has_resolver("required"):
        OmegaConf.register_new_resolver("required", _required)
