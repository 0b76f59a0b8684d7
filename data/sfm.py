"""Camera poses from a folder of photos: structure from motion with pycolmap (SIFT features, exhaustive
matching, incremental mapping), written next to the images as a COLMAP model that later runs reuse.

    root = ensure_poses("photos/", mode="auto")   # photos/images/*.jpg (or photos/*.jpg) -> photos/sparse/0

The model is re-oriented before it is written: +Z is up (the ground plane's normal when the points have
one, else the cameras' mean up vector) and the origin is the cameras' look-at point on the ground, so the
asset, exported in this model's frame, stands upright in Blender. pycolmap is imported only here, when
poses are missing (``pip install pycolmap``; CPU wheels).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from data.cameras import OPENCV_TO_OPENGL, Camera
from data.colmap import find_model
from data.errors import DatasetError, warn
from data.files import atomic_folder, write_text_atomic
from data.ground import fit_ground_plane, plane_basis
from data.images import IMAGE_SUFFIXES, exif_orientation
from data.normalization import look_at_point
from data.orientation import estimate_up
from data.scene import image_size

SFM_MODES = ("auto", "force", "off")
PHOTOS_RECORD = "photos.json"
"""In ``<root>/sfm/``: the photos (name: bytes) SfM made the model from, to notice added or removed ones."""
MIN_REGISTERED = 0.5
"""SfM fails when it registers fewer than this fraction of the images (or fewer than 3)."""


def image_folder(root: Path) -> Path | None:
    """``root/images`` when it holds images, else ``root`` when it does, else None."""
    for folder in (root / "images", root):
        if folder.is_dir() and any(
            p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir() if p.is_file()
        ):
            return folder
    return None


def list_images(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def needs_sfm(root: Path, mode: str, has_other_format: bool) -> bool:
    """Whether ``root`` gets its poses from SfM: ``force`` always, ``off`` never, ``auto`` when the folder
    is no known dataset format and has no COLMAP model yet."""
    if mode not in SFM_MODES:
        raise DatasetError(f"{root}: unknown sfm mode '{mode}' (expected {', '.join(SFM_MODES)})")
    if mode == "off":
        return False
    if mode == "force":
        return True
    return not has_other_format and find_model(root) is None


class StageBar:
    """A one-line progress display per SfM stage (elapsed seconds, counts where the stage reports them)."""

    def __init__(self, total_stages: int, enabled: bool = True):
        self.total, self.enabled, self.index = total_stages, enabled, 0
        self.live = enabled and sys.stdout.isatty()  # a log file gets each stage's final line only
        self.last = ""

    def stage(self, name: str) -> Callable[[str], None]:
        self.index += 1
        started = time.perf_counter()
        prefix = f"SfM {self.index}/{self.total} {name}"

        def update(detail: str = "") -> None:
            self.last = f"{prefix}: {detail} [{time.perf_counter() - started:5.1f} s]"
            if self.live:
                print(f"\r{self.last}", end="", flush=True)

        update("...")
        return update

    def done(self, update: Callable[[str], None], detail: str) -> None:
        update(detail)
        if self.live:
            print(flush=True)
        elif self.enabled:
            print(self.last, flush=True)


def _import_pycolmap():
    try:
        import pycolmap
    except ImportError:
        raise DatasetError(
            "camera poses are missing and pycolmap is not installed: pip install pycolmap (or give a "
            "dataset with poses)"
        ) from None
    return pycolmap


def run_sfm(root: str | os.PathLike, progress: bool = True, max_image_size: int = 1600) -> Path:
    """Structure from motion on the images of ``root`` (``root/images`` or ``root`` itself); writes the
    largest model, re-oriented (module docstring), to ``root/sparse/0`` (the database to ``root/sfm``)
    and returns ``root``. An earlier model is replaced only once the new one is complete."""
    pycolmap = _import_pycolmap()
    pycolmap.logging.minloglevel = 2  # errors only: the stage lines below say what happens
    root = Path(root)
    folder = image_folder(root)
    if folder is None:
        raise DatasetError(
            f"{root}: no images (expected {', '.join(IMAGE_SUFFIXES)} files in it or in images/)"
        )
    names = list_images(folder)
    _check_images(folder, names)
    work = root / "sfm"
    try:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
    except OSError as error:
        raise DatasetError(f"{root}: cannot write the SfM model there ({error.strerror})") from None
    database = work / "database.db"
    bar = StageBar(3, progress)
    update = bar.stage("features")
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.max_image_size = max_image_size
    extraction.sift.peak_threshold = 0.002  # a third of COLMAP's: renders and small photos are smooth
    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = "SIMPLE_RADIAL"
    pycolmap.extract_features(
        database, folder, image_names=names, camera_mode=pycolmap.CameraMode.SINGLE,
        reader_options=reader, extraction_options=extraction, device=pycolmap.Device.cpu,
    )  # fmt: skip
    bar.done(update, f"{len(names)} images")
    update = bar.stage("matching")
    matching = pycolmap.FeatureMatchingOptions()
    matching.guided_matching = True  # more matches on weakly textured objects
    verification = pycolmap.TwoViewGeometryOptions()
    verification.ransac.random_seed = 0  # with the mapper's seed: the same photos give the same model
    pycolmap.match_exhaustive(
        database, matching_options=matching, verification_options=verification, device=pycolmap.Device.cpu
    )
    bar.done(update, f"{len(names) * (len(names) - 1) // 2} pairs")
    update = bar.stage("mapping")
    registered = [0]

    def initial_pair() -> None:
        registered[0] = 2
        update(f"2/{len(names)} registered")

    def next_image() -> None:
        registered[0] += 1
        update(f"{registered[0]}/{len(names)} registered")

    options = pycolmap.IncrementalPipelineOptions()
    options.random_seed = 0
    models = pycolmap.incremental_mapping(
        database,
        folder,
        work / "models",
        options=options,
        initial_image_pair_callback=initial_pair,
        next_image_callback=next_image,
    )
    best = max(models.values(), key=lambda model: model.num_reg_images(), default=None)
    count = 0 if best is None else best.num_reg_images()
    bar.done(update, f"{count}/{len(names)} registered")
    if count < max(3, MIN_REGISTERED * len(names)):
        shutil.rmtree(work, ignore_errors=True)
        raise DatasetError(
            f"{root}: structure from motion registered {count} of {len(names)} images; take more photos with "
            "more overlap (every part seen from 3+ views, 10-20 degrees apart), keep the object and its "
            "surroundings textured and still, avoid motion blur"
        )
    if count < len(names):
        print(
            f"{root}: structure from motion registered {count} of {len(names)} images; the other "
            f"{len(names) - count} are left out (more overlap between photos registers them)",
            flush=True,
        )
    _align(best, pycolmap)
    _write_model(best, root / "sparse" / "0", work)
    photos = {name: (folder / name).stat().st_size for name in names}
    write_text_atomic(work / PHOTOS_RECORD, json.dumps({"photos": photos}, indent=1))
    return root


def photos_changed(root: Path) -> str | None:
    """How the photos differ from those SfM made ``root``'s model from (added, removed or replaced ones,
    by name and file size, as recorded in ``sfm/photos.json``); None when they do not, or when the model
    was not made here (no record)."""
    record, folder = root / "sfm" / PHOTOS_RECORD, image_folder(root)
    if not record.is_file() or find_model(root) is None:
        return None
    try:
        made = dict(json.loads(record.read_text())["photos"])
    except (ValueError, KeyError, TypeError):
        return None
    now = {name: (folder / name).stat().st_size for name in list_images(folder)} if folder else {}
    groups = {
        "added": sorted(set(now) - set(made)),
        "removed": sorted(set(made) - set(now)),
        "replaced": sorted(name for name in now if name in made and now[name] != made[name]),
    }
    parts = [f"{len(names)} {what} ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''})"
             for what, names in groups.items() if names]  # fmt: skip
    return "; ".join(parts) or None


def _check_images(folder: Path, names: list[str]) -> None:
    """Every image decodes and all have one size (one line naming the first that does not)."""
    sizes = {}
    for name in names:
        sizes.setdefault(image_size(folder / name), name)
    if len(sizes) > 1:
        (first, a), (second, b) = list(sizes.items())[:2]
        tags = [exif_orientation(folder / name) for name in (b, a)]
        if any(tags) or first == second[::-1]:
            described = [f"EXIF orientation {tag}" if tag else "no EXIF orientation" for tag in tags]
            raise DatasetError(
                f"{folder / b}: image is {second[0]}x{second[1]} ({described[0]}), but {a} is "
                f"{first[0]}x{first[1]} ({described[1]}); portrait and landscape shots are not combined yet: "
                "use photos of one orientation (or turn the pixels of all to one)"
            )
        raise DatasetError(
            f"{folder / b}: image is {second[0]}x{second[1]}, but {a} is {first[0]}x{first[1]}; SfM here "
            "takes photos of one size (one camera)"
        )


def _cameras_of(model) -> Camera:
    """The registered images of a pycolmap model as OpenGL cameras (intrinsics unused here)."""
    c2w = []
    for image_id in sorted(model.reg_image_ids()):
        pose = model.image(image_id).cam_from_world()
        w2c = np.eye(4)
        w2c[:3, :4] = pose.matrix()
        c2w.append(np.linalg.inv(w2c) @ OPENCV_TO_OPENGL.numpy())
    camera = model.cameras[model.image(sorted(model.reg_image_ids())[0]).camera_id]
    f = float(camera.params[0])
    return Camera(torch.tensor(np.stack(c2w)).float(), f, f, camera.width / 2, camera.height / 2,
                  int(camera.width), int(camera.height))  # fmt: skip


def alignment(points: torch.Tensor, cameras: Camera) -> tuple[np.ndarray, np.ndarray, str]:
    """(rotation [3, 3], translation [3], up source) taking the SfM frame to an upright one: +Z = the
    ground plane's normal (else the cameras' mean up), origin = the look-at point's foot on the ground
    (else the look-at point)."""
    plane = fit_ground_plane(points, cameras) if len(points) else None
    if plane is not None:
        up, origin, source = plane.normal.double(), plane.point.double(), "the ground plane of the SfM points"
    else:
        up = torch.tensor(estimate_up(cameras), dtype=torch.float64)
        origin, source = (
            look_at_point(cameras).double(),
            "the cameras' mean up vector (no ground plane found)",
        )
    basis = plane_basis(up)  # rows: x, y, z = up
    rotation = basis.numpy()
    return rotation, -rotation @ origin.numpy(), source


def _align(model, pycolmap) -> None:
    points = torch.tensor(np.array([p.xyz for p in model.points3D.values()]).reshape(-1, 3))
    rotation, translation, _ = alignment(points, _cameras_of(model))
    model.transform(pycolmap.Sim3d(1.0, pycolmap.Rotation3d(rotation), translation.reshape(3, 1)))


def _write_model(model, target: Path, work: Path) -> None:
    """Write ``model`` to ``target`` through a temporary folder; an earlier model is replaced at the end."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_folder(target) as staging:
        model.write_binary(str(staging))
    shutil.rmtree(work / "models", ignore_errors=True)


def ensure_poses(root: str | os.PathLike, mode: str = "auto", has_other_format: bool = False,
                 progress: bool = True) -> Path:  # fmt: skip
    """``root``, with a COLMAP model made by :func:`run_sfm` first when :func:`needs_sfm` says so, or again
    when the photos changed since it was made (:func:`photos_changed`; with ``mode="off"`` one warning
    line instead: a resumed run keeps its poses)."""
    root = Path(root)
    if needs_sfm(root, mode, has_other_format):
        run_sfm(root, progress)
        return root
    change = None if has_other_format else photos_changed(root)
    if change and mode == "auto":
        print(f"{root}: the photos changed since SfM made sparse/0 ({change}); running SfM again", flush=True)
        run_sfm(root, progress)
    elif change:
        warn(f"{root / 'sparse' / '0'}: made by SfM before the photos changed ({change}); used as it is "
             "(dataset.sfm=force makes it again)")  # fmt: skip
    return root
