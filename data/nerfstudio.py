"""nerfstudio / instant-ngp ``transforms.json``.

Intrinsics ``fl_x``, ``fl_y``, ``cx``, ``cy``, ``w``, ``h`` (global or per frame; ``camera_angle_x`` as a
fallback), ``camera_model`` PINHOLE or OPENCV (``k1``, ``k2``, ``p1``, ``p2``: images are undistorted on
load, see :mod:`data.distortion`), per-frame ``file_path``, ``transform_matrix`` (camera-to-world,
OpenGL axes) and optional ``mask_path``. Splits: ``train_filenames`` / ``val_filenames`` /
``test_filenames`` when present, else every ``test_every``-th frame is held out.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from data.cameras import Camera
from data.distortion import Distortion
from data.errors import DatasetError
from data.files import write_text_atomic
from data.images import resolve_image, write_image
from data.scene import (
    SceneData,
    as_matrix,
    holdout_splits,
    image_size,
    number,
    parse_intrinsics,
    read_json,
    require,
)

CAMERA_MODELS = ("PINHOLE", "OPENCV")


def is_nerfstudio(root: Path) -> bool:
    return (root / "transforms.json").is_file()


def load_nerfstudio(root: str | os.PathLike, test_every: int = 8) -> SceneData:
    root = Path(root)
    path = root / "transforms.json"
    meta = read_json(path)
    frames = require(meta, "frames", str(path))
    if not isinstance(frames, list) or not frames:
        raise DatasetError(f"{path}: no frames")
    c2w, rows, images, masks, distortion = [], [], [], [], []
    for index, frame in enumerate(frames):
        where = f"{path} frame {index}"
        if not isinstance(frame, dict):
            raise DatasetError(f"{where}: expected an object")

        def get(key, frame=frame):
            return frame.get(key, meta.get(key))

        model = str(get("camera_model") or "PINHOLE").upper()
        if model not in CAMERA_MODELS:
            raise DatasetError(
                f"{where}: unsupported camera_model '{model}' (supported: {', '.join(CAMERA_MODELS)})"
            )
        image = resolve_image(root / str(require(frame, "file_path", where)))
        size = (
            (number(get("w"), "w", where, int), number(get("h"), "h", where, int))
            if get("w") and get("h")
            else image_size(image)
        )
        rows.append(parse_intrinsics(get, size, where))
        c2w.append(as_matrix(require(frame, "transform_matrix", where), where))
        images.append(image)
        mask = frame.get("mask_path")
        masks.append(resolve_image(root / str(mask)) if mask else None)
        coefficients = [number(get(k) or 0.0, k, where) for k in ("k1", "k2", "p1", "p2")]
        distortion.append(Distortion(*coefficients) if model == "OPENCV" and any(coefficients) else None)
    sizes = {(r[4], r[5]) for r in rows}
    if len(sizes) > 1:
        raise DatasetError(f"{path}: images of different sizes {sorted(sizes)}")
    if any(m is None for m in masks) and any(m is not None for m in masks):
        missing = next(i for i, m in enumerate(masks) if m is None)
        raise DatasetError(f"{path} frame {missing}: 'mask_path' missing (other frames have masks)")
    fx, fy, cx, cy, width, height = (np.array(v) for v in zip(*rows, strict=True))
    cameras = Camera(torch.from_numpy(np.stack(c2w)).float(), fx, fy, cx, cy, int(width[0]), int(height[0]))
    names = [str(Path(f["file_path"])) for f in frames]
    if "train_filenames" in meta:
        lookup = {name: i for i, name in enumerate(names)}
        splits = {}
        for split in ("train", "val", "test"):
            listed = meta.get(f"{split}_filenames", [])
            if not isinstance(listed, list):
                raise DatasetError(f"{path}: {split}_filenames must be a list of file names")
            unknown = [n for n in listed if str(Path(n)) not in lookup]
            if unknown:
                raise DatasetError(f"{path}: {split}_filenames lists unknown file '{unknown[0]}'")
            splits[split] = [lookup[str(Path(n))] for n in listed]
        splits["val"] = splits["val"] or splits["test"]
        splits["test"] = splits["test"] or splits["val"]
    else:
        splits = holdout_splits(len(frames), test_every)
    return SceneData(
        cameras,
        images,
        splits,
        mask_paths=masks if masks[0] is not None else None,
        distortion=distortion,
        source=f"nerfstudio {path}",
    )


def write_nerfstudio(
    root: str | os.PathLike,
    cameras: Camera,
    images: list[np.ndarray],
    distortion: Distortion | None = None,
    masks: list[np.ndarray] | None = None,
) -> None:
    """Write views as a nerfstudio folder (images/, masks/, transforms.json; OPENCV when ``distortion``)."""
    root = Path(root)
    frames = []
    for view, image in enumerate(images):
        name = f"images/frame_{view:05d}.png"
        write_image(root / name, image)
        frame = {"file_path": name, "transform_matrix": cameras.c2w[view].tolist()}
        frame.update(
            {
                k: float(getattr(cameras, v)[view])
                for k, v in (("fl_x", "fx"), ("fl_y", "fy"), ("cx", "cx"), ("cy", "cy"))
            }
        )
        if masks is not None:
            frame["mask_path"] = f"masks/frame_{view:05d}.png"
            write_image(root / frame["mask_path"], masks[view])
        frames.append(frame)
    meta = {"w": cameras.width, "h": cameras.height, "camera_model": "PINHOLE", "frames": frames}
    if distortion is not None:
        meta.update(camera_model="OPENCV", **distortion.__dict__)
    write_text_atomic(root / "transforms.json", json.dumps(meta, indent=2))
