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
    check_rotation(matrix[:3, :3], where)
    return matrix


def check_rotation(rotation: np.ndarray, where: str) -> None:
    """A camera's axes [3, 3] (the columns of its camera-to-world rotation) must span space: a zero or
    rank-deficient rotation has no inverse and no viewing direction."""
    singular = np.linalg.svd(np.asarray(rotation, dtype=np.float64), compute_uv=False)
    if singular[0] == 0 or singular[-1] < 1e-6 * singular[0]:
        rank = int((singular > 1e-6 * max(singular[0], 1e-300)).sum())
        raise DatasetError(
            f"{where}: the camera's rotation is degenerate (rank {rank} of 3); expected a rotation"
        )


def number(value, key: str, where: str, kind: type = float):
    """``value`` as a finite ``kind`` (float or int); a string, list or other non-number names ``key``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise DatasetError(f"{where}: '{key}' must be a number, got {value!r}")
    if kind is int:
        if value != int(value):
            raise DatasetError(f"{where}: '{key}' must be a whole number, got {value!r}")
        return int(value)
    return float(value)


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


def held_out_split(splits: dict[str, list[int]]) -> str | None:
    """The split the evaluation renders: ``test``, else ``val``, else None (every view trains)."""
    return next((name for name in ("test", "val") if splits.get(name)), None)


def check_files(scene: SceneData) -> None:
    """Every view's image (and mask) of every split exists and has the cameras' size, read from the file
    headers only: a bad test image ends the run before training, not after it."""
    expected = (scene.cameras.width, scene.cameras.height)
    for view, path in enumerate(scene.image_paths):
        size = image_size(path)
        if size != expected:
            raise DatasetError(
                f"{path}: image is {size[0]}x{size[1]}, expected {expected[0]}x{expected[1]} like the other "
                f"views{_split_of(scene, view)}"
            )
        if scene.mask_paths is not None and image_size(scene.mask_paths[view]) != size:
            raise DatasetError(f"{scene.mask_paths[view]}: mask size differs from its image {path.name}")


def _split_of(scene: SceneData, view: int) -> str:
    names = [name for name, views in scene.splits.items() if view in views]
    return f" (split {', '.join(names)})" if names else ""


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

    def value(key: str, kind: type = float):
        found = get(key)
        return None if found is None else number(found, key, where, kind)

    def focal(key: str, angle_key: str, side: int) -> float | None:
        """The focal length ``key``, else from the field of view ``angle_key``, else None."""
        given = value(key)
        if given is not None:
            return given
        angle = value(angle_key)
        return None if angle is None else focal_from_fov(angle, side, where)

    width = value("w", int) or size[0]
    height = value("h", int) or size[1]
    fx = focal("fl_x", "camera_angle_x", width)
    if fx is None:
        raise DatasetError(f"{where}: missing 'camera_angle_x' (or 'fl_x')")
    fy = focal("fl_y", "camera_angle_y", height)
    fy = fx if fy is None else fy
    if fx <= 0 or fy <= 0 or width <= 0 or height <= 0:
        raise DatasetError(f"{where}: focal lengths and image size must be positive, got fx={fx}, fy={fy}, "
                           f"{width}x{height}")  # fmt: skip
    cx, cy = value("cx"), value("cy")
    cx, cy = (width / 2 if cx is None else cx), (height / 2 if cy is None else cy)
    return fx, fy, cx, cy, width, height
