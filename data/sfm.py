"""Camera poses from a folder of photos: structure from motion with pycolmap (SIFT features, matching of
chosen pairs, incremental mapping), written next to the images as a COLMAP model that later runs reuse.

Matching every pair costs n^2 / 2 pair matches; a walk-around needs far fewer. Up to
:data:`EXHAUSTIVE_UP_TO` photos every pair is matched; beyond, each photo is matched with the next
:data:`SEQUENTIAL_OVERLAP` in file order (a phone numbers its shots in the order taken; the last ones
with the first: a closed walk-around) and with its :data:`RETRIEVAL_NEIGHBOURS` most similar photos by
their visual words (a vocabulary clustered from this capture's own SIFT descriptors: nothing is
downloaded), which finds the pairs of an unordered set. Features are capped at :data:`MAX_FEATURES` per
photo. The database (``<root>/sfm/database.db``) is kept while the photos stay the same, so an
interrupted SfM continues: COLMAP skips the photos and pairs it already holds.

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
DATABASE_RECORD = "database.json"
"""In ``<root>/sfm/``: the photos (name: bytes) the database holds features of; other photos: a new one."""
MAX_FEATURES = 2048
"""SIFT features per photo (COLMAP keeps the coarsest scales); its default 8192 costs matching time, not
registrations (docs/benchmarks.md, "SfM in minutes")."""
EXHAUSTIVE_UP_TO = 30
"""Every pair is matched up to this many photos (435 pairs); beyond, chosen pairs (module docstring)."""
SEQUENTIAL_OVERLAP = 6
RETRIEVAL_NEIGHBOURS = 10
VOCABULARY_WORDS = 1024
MATCH_BLOCK = 40
"""Pairs per matching call: the progress line (done, ETA) is updated after each block."""


def image_folder(root: Path, suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> Path | None:
    """``root/images`` when it holds images (files ending in one of ``suffixes``), else ``root`` when it
    does, else None."""
    for folder in (root / "images", root):
        if folder.is_dir() and any(p.suffix.lower() in suffixes for p in folder.iterdir() if p.is_file()):
            return folder
    return None


def list_images(folder: Path, suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes)


def _photo_sizes(folder: Path | None) -> dict[str, int]:
    """The photos of ``folder`` by name, with their size in bytes: what the records below compare."""
    return {name: (folder / name).stat().st_size for name in list_images(folder)} if folder else {}


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
    photos = _photo_sizes(folder)
    try:
        if _recorded(work / DATABASE_RECORD) != photos:  # another set of photos: a new database
            shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(work / "models", ignore_errors=True)
        work.mkdir(parents=True, exist_ok=True)
        write_text_atomic(work / DATABASE_RECORD, json.dumps({"photos": photos}, indent=1))
    except OSError as error:
        raise DatasetError(f"{root}: cannot write the SfM model there ({error.strerror})") from None
    database = work / "database.db"
    bar = StageBar(3, progress)
    update = bar.stage("features")
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.max_image_size = max_image_size
    extraction.sift.peak_threshold = 0.002  # a third of COLMAP's: renders and small photos are smooth
    extraction.sift.max_num_features = MAX_FEATURES
    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = "SIMPLE_RADIAL"
    pycolmap.extract_features(
        database, folder, image_names=names, camera_mode=pycolmap.CameraMode.SINGLE,
        reader_options=reader, extraction_options=extraction, device=pycolmap.Device.cpu,
    )  # fmt: skip
    bar.done(update, f"{len(names)} images")
    update = bar.stage("matching")
    pairs = choose_pairs(names, _descriptors(pycolmap, database, names))
    _match(pycolmap, database, work, pairs, update)
    bar.done(update, f"{len(pairs)} pairs")
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
    write_text_atomic(work / PHOTOS_RECORD, json.dumps({"photos": photos}, indent=1))
    return root


def _recorded(path: Path) -> dict | None:
    """The photos (name: bytes) a record names; None when there is no readable one."""
    try:
        return dict(json.loads(path.read_text())["photos"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _descriptors(pycolmap, database: Path, names: list[str]) -> list[np.ndarray]:
    """Each photo's SIFT descriptors [N, 128] (uint8), in the order of ``names``."""
    db = pycolmap.Database.open(str(database))
    try:
        return [
            np.asarray(db.read_descriptors(db.read_image_with_name(name).image_id).data) for name in names
        ]
    finally:
        db.close()


def visual_words(descriptors: list[np.ndarray], words: int | None = None, seed: int = 0) -> np.ndarray:
    """[n, words] L2-normalized tf-idf histograms of each photo's descriptors over a vocabulary clustered
    (k-means, 8 rounds; ``words``: VOCABULARY_WORDS) from a sample of all of them."""
    words = words or VOCABULARY_WORDS
    generator = torch.Generator().manual_seed(seed)
    everything = torch.cat([torch.tensor(d, dtype=torch.float32) for d in descriptors if len(d)])
    sample = everything[torch.randperm(len(everything), generator=generator)[: 32 * words]]
    centres = sample[torch.randperm(len(sample), generator=generator)[:words]].clone()
    for _ in range(8):
        nearest = torch.cdist(sample, centres).argmin(1)
        counts = torch.bincount(nearest, minlength=len(centres)).clamp_min(1)[:, None]
        centres = torch.zeros_like(centres).index_add_(0, nearest, sample) / counts
    histograms = torch.zeros(len(descriptors), len(centres))
    for i, d in enumerate(descriptors):
        if len(d):
            found = torch.cdist(torch.tensor(d, dtype=torch.float32), centres).argmin(1)
            histograms[i] = torch.bincount(found, minlength=len(centres)).float()
    idf = torch.log(len(descriptors) / (1 + (histograms > 0).sum(0)))
    weighted = histograms * idf.clamp_min(0)
    return (weighted / weighted.norm(dim=1, keepdim=True).clamp_min(1e-12)).numpy()


def choose_pairs(names: list[str], descriptors: list[np.ndarray]) -> list[tuple[str, str]]:
    """The pairs to match (module docstring): every pair up to EXHAUSTIVE_UP_TO photos; beyond, each photo
    with the next SEQUENTIAL_OVERLAP in file order (cyclically) and its RETRIEVAL_NEIGHBOURS most similar
    by visual words. Each pair once, in file order."""
    n = len(names)
    if n <= EXHAUSTIVE_UP_TO:
        chosen = {(i, j) for i in range(n) for j in range(i + 1, n)}
    else:
        chosen = {tuple(sorted((i, (i + k) % n))) for i in range(n) for k in range(1, SEQUENTIAL_OVERLAP + 1)}
        words = visual_words(descriptors)
        similarity = words @ words.T
        np.fill_diagonal(similarity, -np.inf)
        for i in range(n):
            for j in np.argsort(-similarity[i])[:RETRIEVAL_NEIGHBOURS]:
                chosen.add(tuple(sorted((i, int(j)))))
    return [(names[i], names[j]) for i, j in sorted(chosen)]


def _match(pycolmap, database: Path, work: Path, pairs: list[tuple[str, str]], update) -> None:
    """Match and verify ``pairs`` in blocks of MATCH_BLOCK (pairs the database holds are skipped by
    COLMAP), with the progress line saying how many are done and the time left."""
    matching = pycolmap.FeatureMatchingOptions()
    matching.guided_matching = True  # more matches on weakly textured objects
    verification = pycolmap.TwoViewGeometryOptions()
    verification.ransac.random_seed = 0  # with the mapper's seed: the same photos give the same model
    started = time.perf_counter()
    for first in range(0, len(pairs), MATCH_BLOCK):
        block = pairs[first : first + MATCH_BLOCK]
        listing = work / "pairs.txt"
        write_text_atomic(listing, "".join(f"{a} {b}\n" for a, b in block))
        pairing = pycolmap.ImportedPairingOptions()
        pairing.match_list_path = str(listing)
        pycolmap.match_image_pairs(database, matching_options=matching, pairing_options=pairing,
                                   verification_options=verification, device=pycolmap.Device.cpu)  # fmt: skip
        done = first + len(block)
        left = (time.perf_counter() - started) / done * (len(pairs) - done)
        update(f"{done}/{len(pairs)} pairs, {left:.0f} s left")


def photos_changed(root: Path) -> str | None:
    """How the photos differ from those SfM made ``root``'s model from (added, removed or replaced ones,
    by name and file size, as recorded in ``sfm/photos.json``); None when they do not, or when the model
    was not made here (no record)."""
    made = _recorded(root / "sfm" / PHOTOS_RECORD)
    if made is None or find_model(root) is None:
        return None
    now = _photo_sizes(image_folder(root))
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
