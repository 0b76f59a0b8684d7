"""COLMAP sparse models (text or binary): cameras, images, points3D.

Layout: ``<root>/sparse/0/`` (or ``<root>/sparse/`` or ``<root>/``) holds the model, ``<root>/images/`` the
images and, optionally, ``<root>/masks/`` one mask per image (``<name>.png`` or ``<stem>.png``; else the
images' alpha). COLMAP stores world-to-camera rotations as quaternions (w, x, y, z) and translations in
OpenCV camera axes; they are inverted and converted to OpenGL axes. Radial/tangential models are
undistorted on load (:mod:`data.distortion`); fisheye and other models are rejected.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import torch

from data.cameras import OPENCV_TO_OPENGL, Camera
from data.distortion import Distortion
from data.errors import DatasetError
from data.files import atomic_path
from data.images import write_image
from data.scene import SceneData, holdout_splits

# model id -> (name, number of parameters)
MODELS = {
    0: ("SIMPLE_PINHOLE", 3),
    1: ("PINHOLE", 4),
    2: ("SIMPLE_RADIAL", 4),
    3: ("RADIAL", 5),
    4: ("OPENCV", 8),
    5: ("OPENCV_FISHEYE", 8),
    6: ("FULL_OPENCV", 12),
    7: ("FOV", 5),
    8: ("SIMPLE_RADIAL_FISHEYE", 4),
    9: ("RADIAL_FISHEYE", 5),
    10: ("THIN_PRISM_FISHEYE", 12),
}
MODEL_IDS = {name: model_id for model_id, (name, _) in MODELS.items()}
SUPPORTED = ("SIMPLE_PINHOLE", "PINHOLE", "SIMPLE_RADIAL", "RADIAL", "OPENCV")


def _pinhole(model: str, params: list[float]) -> tuple[float, float, float, float, Distortion | None]:
    """(fx, fy, cx, cy, distortion) of a supported model."""
    if model in ("SIMPLE_PINHOLE", "SIMPLE_RADIAL", "RADIAL"):
        f, cx, cy, *k = params
        distortion = Distortion(*(k + [0.0, 0.0])[:2]) if any(k) else None
        return f, f, cx, cy, distortion
    fx, fy, cx, cy, *k = params
    return fx, fy, cx, cy, (Distortion(*k) if any(k) else None)


def qvec_to_rotation(q: np.ndarray) -> np.ndarray:
    w, x, y, z = q / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def rotation_to_qvec(r: np.ndarray) -> np.ndarray:
    """Rotation matrix -> unit quaternion (w, x, y, z) with w >= 0."""
    k = (
        np.array(
            [
                [r[0, 0] - r[1, 1] - r[2, 2], 0, 0, 0],
                [r[1, 0] + r[0, 1], r[1, 1] - r[0, 0] - r[2, 2], 0, 0],
                [r[2, 0] + r[0, 2], r[2, 1] + r[1, 2], r[2, 2] - r[0, 0] - r[1, 1], 0],
                [r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1], r[0, 0] + r[1, 1] + r[2, 2]],
            ]
        )
        / 3.0
    )
    values, vectors = np.linalg.eigh(k)
    q = vectors[[3, 0, 1, 2], np.argmax(values)]
    return -q if q[0] < 0 else q


# ----------------------------------------------------------------------------------------- reading


def _read_text(model_dir: Path):
    cameras, images, points = {}, [], []
    path = model_dir / "cameras.txt"
    for line_no, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split()
        try:
            cameras[int(parts[0])] = (parts[1], int(parts[2]), int(parts[3]), [float(p) for p in parts[4:]])
        except (ValueError, IndexError):
            raise DatasetError(f"{path}:{line_no}: malformed camera line") from None
    path = model_dir / "images.txt"
    lines = [ln for ln in path.read_text().splitlines() if not ln.startswith("#")]
    for line_no in range(0, len(lines), 2):  # an image line, then its POINTS2D line
        parts = lines[line_no].split()
        if not parts:
            continue
        try:
            qvec = np.array([float(v) for v in parts[1:5]])
            tvec = np.array([float(v) for v in parts[5:8]])
            images.append((int(parts[0]), qvec, tvec, int(parts[8]), " ".join(parts[9:])))
        except (ValueError, IndexError):
            raise DatasetError(f"{path}: malformed image line '{lines[line_no][:60]}'") from None
    path = model_dir / "points3D.txt"
    if path.is_file():
        for line_no, line in enumerate(path.read_text().splitlines(), 1):
            if line.strip() and not line.startswith("#"):
                try:
                    points.append([float(v) for v in line.split()[1:4]])
                except ValueError:
                    raise DatasetError(f"{path}:{line_no}: malformed point line") from None
                if len(points[-1]) != 3:
                    raise DatasetError(f"{path}:{line_no}: malformed point line")
    return cameras, images, points


def _unpack(handle, fmt: str, path: Path):
    size = struct.calcsize(fmt)
    data = handle.read(size)
    if len(data) != size:
        raise DatasetError(f"{path}: truncated binary model")
    return struct.unpack(fmt, data)


def _read_binary(model_dir: Path):
    cameras, images, points = {}, [], []
    path = model_dir / "cameras.bin"
    with open(path, "rb") as handle:
        for _ in range(_unpack(handle, "<Q", path)[0]):
            camera_id, model_id, width, height = _unpack(handle, "<iiQQ", path)
            if model_id not in MODELS:
                raise DatasetError(f"{path}: unknown camera model id {model_id}")
            name, n_params = MODELS[model_id]
            cameras[camera_id] = (name, width, height, list(_unpack(handle, f"<{n_params}d", path)))
    path = model_dir / "images.bin"
    with open(path, "rb") as handle:
        for _ in range(_unpack(handle, "<Q", path)[0]):
            image_id, *pose, camera_id = _unpack(handle, "<i7di", path)
            name = b""
            while (char := handle.read(1)) not in (b"\x00", b""):
                name += char
            n_points = _unpack(handle, "<Q", path)[0]
            handle.seek(24 * n_points, os.SEEK_CUR)
            images.append((image_id, np.array(pose[:4]), np.array(pose[4:]), camera_id, name.decode()))
    path = model_dir / "points3D.bin"
    if path.is_file():
        with open(path, "rb") as handle:
            for _ in range(_unpack(handle, "<Q", path)[0]):
                _, x, y, z, _, _, _, _, track = _unpack(handle, "<Q3d3BdQ", path)
                handle.seek(8 * track, os.SEEK_CUR)
                points.append([x, y, z])
    return cameras, images, points


def find_model(root: Path) -> Path | None:
    for candidate in (root / "sparse" / "0", root / "sparse", root):
        if any((candidate / f"cameras.{ext}").is_file() for ext in ("bin", "txt")):
            return candidate
    return None


def is_colmap(root: Path) -> bool:
    return find_model(root) is not None


def _mask_for(masks_dir: Path, name: str) -> Path | None:
    for candidate in (masks_dir / f"{name}.png", (masks_dir / name).with_suffix(".png"), masks_dir / name):
        if candidate.is_file():
            return candidate
    return None


def load_colmap(root: str | os.PathLike, test_every: int = 8, images_dir: str = "images") -> SceneData:
    root = Path(root)
    model_dir = find_model(root)
    if model_dir is None:
        raise DatasetError(f"{root}: no COLMAP model (cameras.bin/.txt under sparse/0, sparse or the folder)")
    binary = (model_dir / "cameras.bin").is_file()
    expected = model_dir / f"images.{'bin' if binary else 'txt'}"
    if not expected.is_file():
        raise DatasetError(f"{expected}: file not found")
    cameras, images, points = (_read_binary if binary else _read_text)(model_dir)
    if not images:
        raise DatasetError(f"{model_dir}: the model has no images")
    images.sort(key=lambda item: item[4])
    c2w, rows, paths, distortion = [], [], [], []
    for _, qvec, tvec, camera_id, name in images:
        where = f"{model_dir} image '{name}'"
        if camera_id not in cameras:
            raise DatasetError(f"{where}: unknown camera id {camera_id}")
        model, width, height, params = cameras[camera_id]
        if model not in SUPPORTED:
            raise DatasetError(
                f"{where}: unsupported camera model {model} (supported: {', '.join(SUPPORTED)}; "
                "undistort with `colmap image_undistorter` first)"
            )
        if not (np.isfinite(qvec).all() and np.isfinite(tvec).all()) or np.linalg.norm(qvec) == 0:
            raise DatasetError(f"{where}: non-finite or zero pose")
        w2c = np.eye(4)
        w2c[:3, :3] = qvec_to_rotation(qvec)
        w2c[:3, 3] = tvec
        c2w.append(np.linalg.inv(w2c) @ OPENCV_TO_OPENGL.numpy())
        try:
            fx, fy, cx, cy, dist = _pinhole(model, params)
        except (TypeError, ValueError):
            raise DatasetError(f"{where}: camera {camera_id} has too few parameters for {model}") from None
        if not (fx > 0 and fy > 0 and width > 0 and height > 0):
            raise DatasetError(f"{where}: camera {camera_id} needs positive focal lengths and size, got "
                               f"fx={fx}, fy={fy}, {width}x{height}")  # fmt: skip
        rows.append((fx, fy, cx, cy, width, height))
        distortion.append(dist)
        path = root / images_dir / name
        if not path.is_file() and (root / name).is_file():  # images beside sparse/ (a folder of photos)
            path = root / name
        if not path.is_file():
            raise DatasetError(f"{path}: image not found")
        paths.append(path)
    sizes = {(r[4], r[5]) for r in rows}
    if len(sizes) > 1:
        raise DatasetError(f"{model_dir}: images of different sizes {sorted(sizes)}")
    fx, fy, cx, cy, width, height = (np.array(v) for v in zip(*rows, strict=True))
    camera = Camera(torch.from_numpy(np.stack(c2w)).float(), fx, fy, cx, cy, int(width[0]), int(height[0]))
    masks = None
    masks_dir = root / "masks"
    if masks_dir.is_dir():
        masks = [_mask_for(masks_dir, image[4]) for image in images]
        if any(m is None for m in masks):
            missing = images[[m is None for m in masks].index(True)][4]
            raise DatasetError(f"{masks_dir}: no mask for image '{missing}'")
    return SceneData(
        camera,
        paths,
        holdout_splits(len(paths), test_every),
        mask_paths=masks,
        points=torch.tensor(points, dtype=torch.float32) if points else None,
        distortion=distortion,
        source=f"COLMAP {model_dir}",
    )


# ----------------------------------------------------------------------------------------- writing


def write_colmap(
    root: str | os.PathLike,
    cameras: Camera,
    images: list[np.ndarray],
    points: np.ndarray,
    binary: bool = False,
    distortion: Distortion | None = None,
) -> None:
    """Write views as a COLMAP folder (images/, sparse/0/ model, one camera per image: PINHOLE, or
    OPENCV with ``distortion``). ``points`` [P, 3] become points3D (without tracks)."""
    root = Path(root)
    model_dir = root / "sparse" / "0"
    model_dir.mkdir(parents=True, exist_ok=True)
    model = "OPENCV" if distortion is not None else "PINHOLE"
    entries = []
    for view, image in enumerate(images):
        name = f"view_{view:04d}.png"
        write_image(root / "images" / name, image)
        w2c = np.linalg.inv(cameras.c2w[view].double().numpy() @ OPENCV_TO_OPENGL.numpy())
        params = [float(getattr(cameras, k)[view]) for k in ("fx", "fy", "cx", "cy")]
        if distortion is not None:
            params += [distortion.k1, distortion.k2, distortion.p1, distortion.p2]
        entries.append((view + 1, rotation_to_qvec(w2c[:3, :3]), w2c[:3, 3], params, name))
    if binary:
        with atomic_path(model_dir / "cameras.bin") as tmp, open(tmp, "wb") as handle:
            handle.write(struct.pack("<Q", len(entries)))
            for image_id, _, _, params, _ in entries:
                handle.write(struct.pack("<iiQQ", image_id, MODEL_IDS[model], cameras.width, cameras.height))
                handle.write(struct.pack(f"<{len(params)}d", *params))
        with atomic_path(model_dir / "images.bin") as tmp, open(tmp, "wb") as handle:
            handle.write(struct.pack("<Q", len(entries)))
            for image_id, qvec, tvec, _, name in entries:
                handle.write(struct.pack("<i7di", image_id, *qvec, *tvec, image_id))
                handle.write(name.encode() + b"\x00" + struct.pack("<Q", 0))
        with atomic_path(model_dir / "points3D.bin") as tmp, open(tmp, "wb") as handle:
            handle.write(struct.pack("<Q", len(points)))
            for index, point in enumerate(points):
                handle.write(struct.pack("<Q3d3BdQ", index + 1, *map(float, point), 128, 128, 128, 0.0, 0))
        return
    with atomic_path(model_dir / "cameras.txt") as tmp, open(tmp, "w") as handle:
        handle.write("# CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]\n")
        for image_id, _, _, params, _ in entries:
            values = " ".join(repr(p) for p in params)
            handle.write(f"{image_id} {model} {cameras.width} {cameras.height} {values}\n")
    with atomic_path(model_dir / "images.txt") as tmp, open(tmp, "w") as handle:
        handle.write("# IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME\n# POINTS2D[]\n")
        for image_id, qvec, tvec, _, name in entries:
            pose = " ".join(repr(float(v)) for v in (*qvec, *tvec))
            handle.write(f"{image_id} {pose} {image_id} {name}\n\n")
    with atomic_path(model_dir / "points3D.txt") as tmp, open(tmp, "w") as handle:
        for index, point in enumerate(points):
            handle.write(f"{index + 1} {' '.join(repr(float(v)) for v in point)} 128 128 128 0\n")
