"""The run configuration (Hydra structured config): dataset, model, training, outputs.

Every field is typed, so a misspelt key or a wrong type fails when the command line is parsed. The
schema is registered as ``base_config``; ``configs/config.yaml`` builds on it and ``configs/experiment/``
holds presets.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, fields, is_dataclass

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError, MissingMandatoryValue

from data.dataset import FORMATS
from data.sfm import SFM_MODES
from geometry.cpu_threads import parse_setting
from recon.errors import ConfigError
from recon.scenes.scene import DatasetConfig
from recon.scenes.synthetic import BUILT_IN_OBJECTS
from recon.train.losses import IMAGE_LOSSES
from recon.train.model import ModelConfig
from recon.train.stage2 import Stage2Config
from recon.train.trainer import TrainConfig, fine_grid
from render.brdf import DIFFUSE_MODELS
from render.raster import BACKENDS


@dataclass
class ExportConfig:
    """The exported asset (docs/design.md, "Export contract")."""

    texture_resolution: int = 1024
    """Side of the square PBR textures (pixels)."""
    min_component_fraction: float = 0.05
    """Floating pieces smaller than this fraction of the largest one's area are removed."""
    max_faces: int = 200_000
    """Face budget of the asset: a larger stage-1 mesh is decimated (quadric edge collapse) before UV
    unwrapping and stage 2; 0 keeps every face."""


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


def _power_of_two(value: int) -> bool:
    return value >= 8 and not value & (value - 1)


def _thread_setting(value: str) -> bool:
    try:
        parse_setting(value)
    except ValueError:
        return False
    return True


RULES: tuple[tuple[str, object, str], ...] = (
    # (key, test of the value, what the key takes)
    ("train.steps", lambda v: v >= 1, "an integer >= 1 (stage 1 must train before stage 2 can start)"),
    ("train.batch_size", lambda v: v >= 1, "an integer >= 1"),
    ("train.crop", lambda v: v == 0 or v >= 16, "0 (whole views) or a window side >= 16 pixels"),
    ("train.start_levels", lambda v: v >= 0, "an integer >= 0"),
    ("train.steps_per_level", lambda v: v >= 1, "an integer >= 1"),
    ("train.fine_grid_resolution", lambda v: v >= 0, "an integer >= 0 (0: off)"),
    ("train.fine_grid_start", lambda v: v >= 0, "an integer >= 0"),
    ("train.occlusion_start", lambda v: v >= 0, "an integer >= 0"),
    ("train.occlusion_every", lambda v: v >= 1, "an integer >= 1"),
    ("train.volume.steps", lambda v: v >= 0, "an integer >= 0 (0: no warm-up)"),
    ("train.volume.batch_size", lambda v: v >= 1, "an integer >= 1"),
    ("train.volume.rays_per_view", lambda v: v >= 1, "an integer >= 1"),
    ("train.volume.samples", lambda v: v >= 2, "an integer >= 2"),
    ("train.volume.view_degree", lambda v: v in (0, 1, 2), "0, 1 or 2"),
    ("train.volume.initial_sharpness", lambda v: v > 0, "a number > 0"),
    ("train.threads", _thread_setting, "auto or a thread count >= 1"),
    ("train.log_every", lambda v: v >= 1, "an integer >= 1"),
    ("train.image_every", lambda v: v >= 0, "an integer >= 0 (0: no images)"),
    ("train.checkpoint_every", lambda v: v >= 0, "an integer >= 0 (0: by time only)"),
    ("train.checkpoint_minutes", lambda v: v >= 0, "a number of minutes >= 0 (0: by steps only)"),
    ("train.keep_checkpoints", lambda v: v >= 0, "an integer >= 0 (0: keep all)"),
    ("train.losses.image", lambda v: v in IMAGE_LOSSES, f"one of {', '.join(IMAGE_LOSSES)}"),
    ("train.losses.eikonal_points", lambda v: v >= 1, "an integer >= 1"),
    ("train.losses.free_space_rays", lambda v: v >= 1, "an integer >= 1"),
    ("train.optimizer.sdf_encoding_lr", lambda v: v >= 0, "a learning rate >= 0"),
    ("train.optimizer.sdf_mlp_lr", lambda v: v >= 0, "a learning rate >= 0"),
    ("train.optimizer.material_lr", lambda v: v >= 0, "a learning rate >= 0"),
    ("train.optimizer.light_lr", lambda v: v >= 0, "a learning rate >= 0"),
    ("train.optimizer.final_lr_fraction", lambda v: 0 < v <= 1, "a fraction in (0, 1]"),
    ("train.optimizer.eps", lambda v: v > 0, "a number > 0"),
    ("stage2.steps", lambda v: v >= 0, "an integer >= 0 (0: no stage 2)"),
    ("stage2.batch_size", lambda v: v >= 1, "an integer >= 1"),
    ("stage2.crop", lambda v: v == 0 or v >= 16, "0 (whole views) or a window side >= 16 pixels"),
    ("stage2.texture_lr", lambda v: v >= 0, "a learning rate >= 0"),
    ("stage2.light_lr", lambda v: v >= 0, "a learning rate >= 0"),
    ("stage2.vertex_lr", lambda v: v >= 0, "a learning rate >= 0"),
    ("stage2.normal_lr", lambda v: v >= 0, "a learning rate >= 0"),
    ("stage2.final_lr_fraction", lambda v: 0 < v <= 1, "a fraction in (0, 1]"),
    ("stage2.laplacian_weight", lambda v: v >= 0, "a weight >= 0"),
    ("stage2.mask_weight", lambda v: v >= 0, "a weight >= 0"),
    ("stage2.normal_smoothness_weight", lambda v: v >= 0, "a weight >= 0"),
    ("stage2.metallic_weight", lambda v: v >= 0, "a weight >= 0"),
    ("stage2.occlusion_every", lambda v: v >= 1, "an integer >= 1"),
    ("stage2.occlusion_directions", lambda v: v >= 8, "an integer >= 8"),
    ("stage2.image", lambda v: v in IMAGE_LOSSES, f"one of {', '.join(IMAGE_LOSSES)}"),
    ("export.texture_resolution", _power_of_two, "a power of two >= 8 (mipmaps)"),
    ("export.min_component_fraction", lambda v: 0 <= v <= 1, "a fraction in [0, 1]"),
    ("export.max_faces", lambda v: v == 0 or v >= 4, "0 (no limit) or an integer >= 4"),
    ("dataset.format", lambda v: v == "auto" or v in FORMATS, f"auto or one of {', '.join(FORMATS)}"),
    ("dataset.test_every", lambda v: v >= 1, "an integer >= 1"),
    ("dataset.downscale", lambda v: v > 0, "a factor > 0"),
    ("dataset.max_side", lambda v: v == 0 or v >= 16, "0 (no limit) or a size >= 16 pixels"),
    ("dataset.background", lambda v: v in ("random", "white", "black"), "random, white or black"),
    ("dataset.sfm", lambda v: v in SFM_MODES, f"one of {', '.join(SFM_MODES)}"),
    (
        "dataset.bbox",
        lambda v: len(v) == 0 or (len(v) == 6 and all(a < b for a, b in zip(v[:3], v[3:], strict=True))),
        "[] or [xmin, ymin, zmin, xmax, ymax, zmax] with each min < max",
    ),
    ("model.ground_texture", lambda v: v >= 8, "a texture size >= 8"),
    (
        "dataset.synthetic.object",
        lambda v: v in BUILT_IN_OBJECTS or v.lower().endswith(".obj"),
        f"{' or '.join(BUILT_IN_OBJECTS)} or the path of an .obj mesh",
    ),
    ("dataset.synthetic.n_train", lambda v: v >= 2, "an integer >= 2 (views from more than one side)"),
    ("dataset.synthetic.n_val", lambda v: v >= 0, "an integer >= 0"),
    ("dataset.synthetic.n_test", lambda v: v >= 0, "an integer >= 0"),
    ("dataset.synthetic.resolution", lambda v: v >= 8, "an image size >= 8"),
    ("dataset.synthetic.mesh_resolution", lambda v: v >= 8, "a grid size >= 8"),
    ("dataset.synthetic.light_resolution", lambda v: v >= 8, "a cube-map size >= 8"),
    ("dataset.synthetic.fov_degrees", lambda v: 0 < v < 180, "an angle in (0, 180) degrees"),
    ("dataset.synthetic.distance", lambda v: v > 1, "a distance > 1 (object radii)"),
    ("model.light.resolution", _power_of_two, "a power of two >= 8 (the cube map's mip chain)"),
    (
        "model.grid.resolution",
        lambda v: v >= 8,
        "a grid size >= 8 (cells per axis; coarser misses the shape)",
    ),
    ("model.light.diffuse", lambda v: v in DIFFUSE_MODELS, f"one of {', '.join(DIFFUSE_MODELS)}"),
    ("render_backend", lambda v: v in BACKENDS, f"one of {', '.join(BACKENDS)}"),
    ("device", lambda v: v in ("auto", "cpu", "cuda"), "auto, cpu or cuda"),
)
"""Range checks :func:`validate` applies; every component's own ``validate()`` runs after them."""


def validate(config: Config) -> None:
    """Raise :class:`recon.errors.ConfigError` (one line: key, value, what it takes) for the first value
    out of its range, before anything is computed or written: the rules above, then every component's own
    ``validate()`` (the SDF, the encodings, the material, the grid, the light, ...)."""
    for key, test, expected in RULES:
        value = config
        for part in key.split("."):
            value = getattr(value, part)
        if not test(value):
            raise ConfigError(f"{key}={value!r}: expected {expected}")
    for key, component in _components(config, ""):
        try:
            component.validate()
        except ValueError as error:
            raise ConfigError(f"{key}: {str(error).split(': ', 1)[-1]}") from None
    fine_grid(config.train, config.model.grid)


def _components(node, prefix: str):
    """(key, settings) for every nested settings dataclass that checks itself (has ``validate``)."""
    for item in fields(node):
        value = getattr(node, item.name)
        if is_dataclass(value):
            key = f"{prefix}{item.name}"
            if hasattr(value, "validate"):
                yield key, value
            yield from _components(value, f"{key}.")


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
            raise ConfigError(f"{key}: unknown key{hint}; python train.py --help lists every key")
    try:
        return OmegaConf.to_object(cfg)
    except InterpolationResolutionError as error:
        cause = error
        while cause is not None and not isinstance(cause, ConfigError):
            cause = cause.__context__
        raise (cause or ConfigError(str(error).splitlines()[0])) from None
    except MissingMandatoryValue as error:
        raise ConfigError(f"{error.full_key}: a value is required (set {error.full_key}=...)") from None


def _required(message: str) -> str:
    """``${required:"what to set"}`` in a preset: the value the user must give on the command line."""
    raise ConfigError(message)


def register() -> None:
    """The schema as Hydra's ``base_config``, and the ``required`` resolver presets use."""
    ConfigStore.instance().store(name="base_config", node=Config)
    if not OmegaConf.has_resolver("required"):
        OmegaConf.register_new_resolver("required", _required)
