"""LLFF: ``poses_bounds.npy`` [N, 17] with ``images/`` (sorted by name) and optional ``masks/``.

Each row is a 3x5 matrix (row-major) followed by the near/far bounds: columns 0-2 are the camera axes
(down, right, backwards) in world coordinates, column 3 the camera centre, column 4 (height, width,
focal) of the images the poses were computed for. Axes are converted to OpenGL (right, up, backwards);
the principal point is the image centre; the focal length is rescaled if the images have another size.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from data.cameras import Camera
from data.errors import DatasetError
from data.images import IMAGE_SUFFIXES, write_image
from data.scene import SceneData, check_rotation, holdout_splits, image_size


def is_llff(root: Path) -> bool:
    return (root / "poses_bounds.npy").is_file()


def _listing(folder: Path) -> list[Path]:
    return (
        sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []
    )


def load_llff(root: str | os.PathLike, test_every: int = 8, images_dir: str = "images") -> SceneData:
    root = Path(root)
    path = root / "poses_bounds.npy"
    try:
        data = np.load(path)
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except Exception as error:  # noqa: BLE001
        raise DatasetError(f"{path}: cannot read ({type(error).__name__})") from None
    if data.ndim != 2 or data.shape[1] != 17:
        raise DatasetError(f"{path}: expected an [N, 17] array, got shape {list(data.shape)}")
    if not np.isfinite(data).all():
        raise DatasetError(f"{path}: non-finite values")
    images = _listing(root / images_dir)
    if len(images) != len(data):
        raise DatasetError(f"{root / images_dir}: {len(images)} images for {len(data)} poses")
    poses = data[:, :15].reshape(-1, 3, 5)
    near, far = data[:, 15], data[:, 16]
    if not ((near > 0).all() and (far > near).all()):
        raise DatasetError(f"{path}: the near and far bounds (columns 16 and 17) must satisfy 0 < near < far")
    for view, pose in enumerate(poses):
        check_rotation(pose[:, :3], f"{path} row {view}")
        if not (pose[:, 4] > 0).all():
            raise DatasetError(
                f"{path} row {view}: height, width and focal {pose[:, 4].tolist()} must be > 0"
            )
    width, height = image_size(images[0])
    pose_height, pose_width, focal = poses[0, :, 4]
    scale = width / pose_width
    if abs(height / pose_height - scale) > 1e-3:
        raise DatasetError(
            f"{images[0]}: aspect ratio differs from poses_bounds.npy ({pose_width}x{pose_height})"
        )
    c2w = np.tile(np.eye(4), (len(poses), 1, 1))
    c2w[:, :3, 0] = poses[:, :, 1]  # right
    c2w[:, :3, 1] = -poses[:, :, 0]  # up = -down
    c2w[:, :3, 2] = poses[:, :, 2]  # backwards
    c2w[:, :3, 3] = poses[:, :, 3]
    f = poses[:, 2, 4] * scale
    cameras = Camera(torch.from_numpy(c2w).float(), f, f, width / 2, height / 2, width, height)
    cameras.near = float(data[:, 15].min()) * 0.9
    cameras.far = float(data[:, 16].max()) * 1.1
    masks = None
    if (root / "masks").is_dir():
        masks = []
        for image in images:
            found = [
                p for p in (root / "masks").glob(image.stem + ".*") if p.suffix.lower() in IMAGE_SUFFIXES
            ]
            if not found:
                raise DatasetError(f"{root / 'masks'}: no mask for image '{image.name}'")
            masks.append(found[0])
    return SceneData(
        cameras, images, holdout_splits(len(images), test_every), mask_paths=masks, source=f"LLFF {path}"
    )


def write_llff(
    root: str | os.PathLike, cameras: Camera, images: list[np.ndarray], near: float, far: float
) -> None:
    """Write views as an LLFF folder (images/ + poses_bounds.npy). Needs a centred principal point and
    fx = fy (the format has one focal length)."""
    root = Path(root)
    rows = []
    for view, image in enumerate(images):
        write_image(root / "images" / f"{view:04d}.png", image)
        c2w = cameras.c2w[view].double().numpy()
        pose = np.stack((-c2w[:3, 1], c2w[:3, 0], c2w[:3, 2], c2w[:3, 3]), 1)
        hwf = np.array([cameras.height, cameras.width, float(cameras.fx[view])])
        rows.append(np.concatenate((np.concatenate((pose, hwf[:, None]), 1).reshape(-1), [near, far])))
    np.save(root / "poses_bounds.npy", np.stack(rows))
