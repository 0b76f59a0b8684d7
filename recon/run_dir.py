"""The run folder's layout: the one place that names its paths, and the reader of its small files.

    <run>/config.yaml          the configuration the run started with (recon.run_folder writes it)
    <run>/run.json             the command line, the dataset's fingerprint, every resume (changed keys)
    <run>/progress.json        the finished phases (recon.progress)
    <run>/train.log            every line the run printed, each with its time
    <run>/.lock                the process that runs there (recon.run_folder.RunLock)
    <run>/tb/                  TensorBoard
    <run>/checkpoints/         stage 1; volume/ the warm-up; textured.pt and stage2/ stage 2
    <run>/stage1_mesh/ mesh/   the exported assets (docs/design.md, "Export contract")
    <run>/scene_transform.json the normalization of the dataset's world and its up axis
    <run>/ground/              the ground plane of a photo capture, beside the asset
    <run>/synthetic/           the built-in scene, rendered once
    <run>/metrics.json eval*/  the evaluation (relight_sky.hdr: the light of its Mitsuba renders)
    <run>/eval_blender/ blender_metrics.json   scripts/blender_eval.py's renders and scores
    <run>/relight/<map>/       scripts/relight.py's turntables

Every package reads the layout from here; the evaluation of an exported asset needs nothing of training
to find it (:meth:`RunDir.settings` gives the configuration as plain values, as its resumes left it).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, is_dataclass
from pathlib import Path

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from data.files import write_text_atomic
from data.normalization import SceneTransform
from recon.errors import RunFolderError

CONFIG_FILE, RECORD_FILE, LOG_FILE, LOCK_FILE = "config.yaml", "run.json", "train.log", ".lock"
PROGRESS_FILE, METRICS_FILE, TRANSFORM_FILE = "progress.json", "metrics.json", "scene_transform.json"
ASSET_FOLDERS = ("mesh", "stage1_mesh")
"""The exported assets, final first."""


@dataclass(frozen=True)
class RunDir:
    """The paths of one run folder (module docstring), and its small files read back."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    config_file = property(lambda self: self.root / CONFIG_FILE)
    record_file = property(lambda self: self.root / RECORD_FILE)
    log_file = property(lambda self: self.root / LOG_FILE)
    lock_file = property(lambda self: self.root / LOCK_FILE)
    progress_file = property(lambda self: self.root / PROGRESS_FILE)
    metrics_file = property(lambda self: self.root / METRICS_FILE)
    transform_file = property(lambda self: self.root / TRANSFORM_FILE)
    tb = property(lambda self: self.root / "tb")
    checkpoints = property(lambda self: self.root / "checkpoints")
    volume_checkpoints = property(lambda self: self.root / "checkpoints" / "volume")
    stage2_checkpoints = property(lambda self: self.root / "checkpoints" / "stage2")
    textured = property(lambda self: self.root / "checkpoints" / "textured.pt")
    stage1_mesh = property(lambda self: self.root / "stage1_mesh")
    mesh = property(lambda self: self.root / "mesh")
    ground = property(lambda self: self.root / "ground")
    synthetic = property(lambda self: self.root / "synthetic")
    eval = property(lambda self: self.root / "eval")
    eval_relight = property(lambda self: self.root / "eval_relight")
    eval_albedo = property(lambda self: self.root / "eval_albedo")
    eval_mitsuba = property(lambda self: self.root / "eval_mitsuba")
    eval_blender = property(lambda self: self.root / "eval_blender")
    relight_sky = property(lambda self: self.root / "relight_sky.hdr")
    blender_metrics_file = property(lambda self: self.root / "blender_metrics.json")
    relight = property(lambda self: self.root / "relight")

    def asset(self) -> Path:
        """The final exported asset's folder (``mesh/``, else ``stage1_mesh/``)."""
        for name in ASSET_FOLDERS:
            if (self.root / name / "mesh.obj").is_file():
                return self.root / name
        raise RunFolderError(f"{self.root}: no exported asset (mesh/ or stage1_mesh/) to evaluate")

    def record(self) -> dict:
        """run.json ({} before a run has written it)."""
        path = self.record_file
        if not path.is_file():
            return {}
        try:
            record = json.loads(path.read_text())
        except ValueError as error:
            raise RunFolderError(
                f"{path}: malformed JSON ({error}); the run's record cannot be read"
            ) from None
        if not isinstance(record, dict):
            raise RunFolderError(f"{path}: expected a JSON object; the run's record cannot be read")
        return record

    def settings(self) -> DictConfig:
        """config.yaml with the keys its resumes changed (run.json), as plain values."""
        path = self.config_file
        if not path.is_file():
            raise RunFolderError(f"{path}: not a run folder (no {CONFIG_FILE})")
        with self._readable():
            settings = OmegaConf.load(path)
            for resume in self.record().get("resumes", []):
                for key, (_, value) in resume.get("changed", {}).items():
                    OmegaConf.update(settings, key, value, merge=False)
        if not isinstance(settings, DictConfig):
            raise RunFolderError(f"{path}: not a configuration this version reads (not a mapping)")
        return settings

    def typed(self, schema: type, key: str = ""):
        """The :meth:`settings` at ``key`` (dotted; "" the whole) as ``schema``: a structured-config
        dataclass (e.g. ``Config``, ``DatasetConfig``) or a plain type (``int``)."""
        settings = self.settings()
        with self._readable():
            value = OmegaConf.select(settings, key) if key else settings
            if not is_dataclass(schema):
                return schema(value)
            return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), value or {}))

    @contextlib.contextmanager
    def _readable(self) -> Iterator[None]:
        """config.yaml that this version cannot read (YAML, keys, types): one RunFolderError naming it."""
        try:
            yield
        except (OmegaConfBaseException, yaml.YAMLError, ValueError, TypeError) as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise RunFolderError(
                f"{self.config_file}: not a configuration this version reads ({reason})"
            ) from None

    def save_transform(self, transform: SceneTransform) -> None:
        """scene_transform.json: the normalization of the dataset's world, and its up axis."""
        data = {
            "offset": transform.offset.tolist(),
            "scale": transform.scale,
            "method": transform.method,
            "up": list(transform.up),
            "up_source": transform.up_source,
            "note": "normalized = (world - offset) * scale; mesh.glb maps 'up' to glTF +Y and probe.hdr has "
            "it as its pole (+Z); mesh.obj stays in the dataset's world frame (the same frame when up is +Z)",
        }
        write_text_atomic(self.transform_file, json.dumps(data, indent=2))

    def up(self) -> tuple[tuple[float, float, float], str]:
        """The world's up axis recorded in scene_transform.json (+Z for runs that predate it), and where it
        came from."""
        path = self.transform_file
        try:
            data = json.loads(path.read_text()) if path.is_file() else {}
            up = tuple(float(value) for value in data.get("up", (0.0, 0.0, 1.0)))
        except (ValueError, TypeError, AttributeError):
            raise RunFolderError(f"{path}: malformed (expected the JSON that train.py writes)") from None
        if len(up) != 3:
            raise RunFolderError(f"{path}: 'up' must have three numbers")
        return up, str(data.get("up_source", "+Z by convention"))
