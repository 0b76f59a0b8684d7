"""What every parser returns, and the checks they share."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch

from data.cameras import Camera
from data.distortion import Distortion
from data.errors import DatasetError

SPLITS = ("train", "val", "test")


@dataclass
class SceneData:
    """A parsed dataset: cameras and files of every view, before any image is decoded.

    cameras: all N views; image_paths: N files; mask_paths: N files or None (masks from image alpha, or
    none); splits: view indices per split name; points: [P, 3] sparse points (COLMAP) or None;
    distortion: per view, None for an ideal pinhole; source: a description for messages; up: the world's
    up axis when the format defines one (NeRF-synthetic / Blender: +Z), else None (estimated from the
    cameras, see data.orientation).
    """

    cameras: Camera
    image_paths: list[Path]
    splits: dict[str, list[int]]
    mask_paths: list[Path] | None = None
    points: torch.Tensor | None = None
    distortion: list[Distortion | None] = field(default_factory=list)
    source: str = ""
    up: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        if not self.distortion:
            self.distortion = [None] * len(self.image_paths)


def read_json(path: Path) -> dict:
    """Parse a JSON object; malformed or missing files raise DatasetError naming them."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except json.JSONDecodeError as error:
        raise DatasetError(f"{path}: malformed JSON ({error.msg} at line {error.lineno})") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: expected a JSON object at the top level")
    return data


def require(data: dict, key: str, where: str):
    if key not in data:
        raise DatasetError(f"{where}: missing '{key}'")
    return data[key]


def as_matrix(value, where: str) -> np.ndarray:
    """A finite 4x4 (or 3x4, completed) matrix."""
    try:
        matrix = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise DatasetError(f"{where}: transform is not a numeric matrix") from None
    if matrix.shape == (3, 4):
        matrix = np.vstack((matrix, [0.0, 0.0, 0.0, 1.0]))
    if matrix.shape != (4, 4):
        raise DatasetError(f"{where}: transform must be 4x4, got shape {list(matrix.shape)}")
    if not np.isfinite(matrix).all():
        raise DatasetError(f"{where}: transform has non-finite values")
    return matrix


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image file without decoding all of it where the format allows."""
    try:
        shape = iio.improps(path, extension=path.suffix or None).shape
    except FileNotFoundError:
        raise DatasetError(f"{path}: image not found") from None
    except Exception as error:  # noqa: BLE001
        raise DatasetError(f"{path}: cannot read image ({type(error).__name__})") from None
    return int(shape[1]), int(shape[0])


def holdout_splits(n: int, test_every: int) -> dict[str, list[int]]:
    """Every ``test_every``-th view (index 0, k, 2k, ...) is test, the rest train (LLFF/mip-NeRF rule);
    ``test_every`` <= 0 puts every view in train. val = test."""
    if n == 0:
        return {"train": [], "val": [], "test": []}
    test = list(range(0, n, test_every)) if test_every > 0 and n > 1 else []
    held_out = set(test)
    train = [i for i in range(n) if i not in held_out]
    return {"train": train, "val": test, "test": test}


def check_split(splits: dict[str, list[int]], name: str, where: str) -> list[int]:
    views = splits.get(name, [])
    if not views:
        raise DatasetError(f"{where}: no views in split '{name}'")
    return views


def focal_from_fov(fov: float, size: int, where: str) -> float:
    if not (0 < fov < math.pi):
        raise DatasetError(f"{where}: field of view {fov} is not in (0, pi) radians")
    return 0.5 * size / math.tan(0.5 * fov)


def parse_intrinsics(get, size: tuple[int, int], where: str) -> tuple[float, float, float, float, int, int]:
    """(fx, fy, cx, cy, width, height) from transforms-style keys, ``get(key)`` giving the frame's value or
    the global one: ``w``/``h`` (else ``size``), ``fl_x`` or ``camera_angle_x``, ``fl_y`` or
    ``camera_angle_y`` (else fx), ``cx``/``cy`` (else the image centre)."""
    width = int(get("w") or size[0])
    height = int(get("h") or size[1])
    if get("fl_x") is not None:
        fx = float(get("fl_x"))
    elif get("camera_angle_x") is not None:
        fx = focal_from_fov(float(get("camera_angle_x")), width, where)
    else:
        raise DatasetError(f"{where}: missing 'camera_angle_x' (or 'fl_x')")
    if get("fl_y") is not None:
        fy = float(get("fl_y"))
    elif get("camera_angle_y") is not None:
        fy = focal_from_fov(float(get("camera_angle_y")), height, where)
    else:
        fy = fx
    cx = float(get("cx")) if get("cx") is not None else width / 2
    cy = float(get("cy")) if get("cy") is not None else height / 2
    return fx, fy, cx, cy, width, height
