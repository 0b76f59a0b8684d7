"""NeRF-synthetic / Blender format: ``transforms_{train,val,test}.json`` next to the images.

Each file has ``camera_angle_x`` (horizontal field of view, radians) or ``fl_x``; optional global or
per-frame ``fl_x``/``fl_y``/``cx``/``cy``/``w``/``h`` (and ``camera_angle_y``); ``frames`` with
``file_path`` (relative, with or without extension) and ``transform_matrix`` (camera-to-world, OpenGL
axes). Images are RGBA, alpha = mask.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from data.cameras import Camera
from data.errors import DatasetError
from data.files import write_text_atomic
from data.images import resolve_image, write_image
from data.orientation import Z_UP
from data.scene import SPLITS, SceneData, as_matrix, image_size, parse_intrinsics, read_json, require


def _intrinsics(meta: dict, frame: dict, size: tuple[int, int], where: str) -> tuple:
    def get(key):  # a per-frame value overrides the global one; our writer uses fx/fy/cx/cy per frame
        alias = {"fl_x": "fx", "fl_y": "fy"}.get(key, key)
        return frame.get(key, frame.get(alias, meta.get(key)))

    return parse_intrinsics(get, size, where)


def is_nerf_synthetic(root: Path) -> bool:
    return (root / "transforms_train.json").is_file()


def load_nerf_synthetic(root: str | os.PathLike) -> SceneData:
    """Parse a NeRF-synthetic folder (train required; val and test when present)."""
    root = Path(root)
    if not (root / "transforms_train.json").is_file():
        raise DatasetError(f"{root / 'transforms_train.json'}: file not found")
    c2w, intrinsics, paths, splits = [], [], [], {}
    size = None
    for split in SPLITS:
        path = root / f"transforms_{split}.json"
        if not path.is_file():
            continue
        meta = read_json(path)
        frames = require(meta, "frames", str(path))
        if not isinstance(frames, list):
            raise DatasetError(f"{path}: 'frames' must be a list")
        splits[split] = []
        for index, frame in enumerate(frames):
            where = f"{path} frame {index}"
            if not isinstance(frame, dict):
                raise DatasetError(f"{where}: expected an object")
            image = resolve_image(root / str(require(frame, "file_path", where)))
            if size is None:
                size = image_size(image)
            c2w.append(as_matrix(require(frame, "transform_matrix", where), where))
            intrinsics.append(_intrinsics(meta, frame, size, where))
            splits[split].append(len(paths))
            paths.append(image)
    if not splits.get("train"):
        raise DatasetError(f"{root / 'transforms_train.json'}: no views in split 'train'")
    sizes = {(k[4], k[5]) for k in intrinsics}
    if len(sizes) > 1:
        raise DatasetError(f"{root}: images of different sizes {sorted(sizes)}")
    fx, fy, cx, cy, width, height = (np.array(v) for v in zip(*intrinsics, strict=True))
    cameras = Camera(torch.from_numpy(np.stack(c2w)).float(), fx, fy, cx, cy, int(width[0]), int(height[0]))
    splits.setdefault("val", splits.get("test", []))
    splits.setdefault("test", splits.get("val", []))
    return SceneData(cameras, paths, splits, source=f"NeRF-synthetic {root}", up=Z_UP)  # Blender: +Z up


def write_nerf_synthetic(
    root: str | os.PathLike, cameras: Camera, images: list[np.ndarray], splits: dict[str, list[int]]
) -> None:
    """Write views (uint8 RGBA [H, W, 4] each) as a NeRF-synthetic folder: PNGs under ``<split>/`` and
    one JSON per split with per-file ``fl_x``/``fl_y``/``cx``/``cy``/``w``/``h`` and ``camera_angle_x``."""
    root = Path(root)
    for split, views in splits.items():
        frames = []
        for view in views:
            name = f"{split}/r_{view}"
            write_image(root / f"{name}.png", images[view])
            frames.append(
                {
                    "file_path": f"./{name}",
                    "transform_matrix": cameras.c2w[view].tolist(),
                    **{key: float(getattr(cameras, key)[view]) for key in ("fx", "fy", "cx", "cy")},
                }
            )
        first = views[0] if views else 0
        meta = {
            "camera_angle_x": float(2 * torch.atan(cameras.width / (2 * cameras.fx[first]))),
            "fl_x": float(cameras.fx[first]),
            "fl_y": float(cameras.fy[first]),
            "cx": float(cameras.cx[first]),
            "cy": float(cameras.cy[first]),
            "w": cameras.width,
            "h": cameras.height,
            "frames": frames,
        }
        write_text_atomic(root / f"transforms_{split}.json", json.dumps(meta, indent=2))
