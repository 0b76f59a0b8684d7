"""A dataset's fingerprint: what a run was trained on (the views of each split, the bytes of their image
and mask files, the cameras), kept in the run's record so that a resumed run can tell that it is given
the same data.

    stored = scene_fingerprint(scene, root)           # at the start of a run
    problem = fingerprint_difference(stored, scene_fingerprint(scene_now, root_now))   # on resume
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from data.scene import SceneData


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _name(path: Path, root: Path) -> str:
    path = Path(path).resolve()
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def scene_fingerprint(scene: SceneData, root: Path) -> dict:
    """The folder (``path``, informative only: a dataset may move), the image size, each split's view
    files relative to ``root``, a digest of every image and mask file's bytes, and one of the cameras
    (poses and intrinsics as parsed)."""
    root = Path(root).resolve()
    names = [_name(path, root) for path in scene.image_paths]
    files = {}
    for path in [*scene.image_paths, *(scene.mask_paths or [])]:
        files[_name(path, root)] = _digest(Path(path).read_bytes())
    c = scene.cameras
    arrays = [c.c2w, c.fx, c.fy, c.cx, c.cy]
    cameras = _digest(
        b"".join(np.ascontiguousarray(a.detach().cpu().float().numpy()).tobytes() for a in arrays)
    )
    return {
        "path": str(root),
        "size": [c.width, c.height],
        "splits": {split: [names[view] for view in views] for split, views in scene.splits.items()},
        "files": files,
        "cameras": cameras,
    }


def _listing(names: list[str]) -> str:
    return ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")


def fingerprint_difference(stored: dict, current: dict) -> str | None:
    """In a few words, how ``current`` differs from ``stored`` (views added to or removed from a split,
    another image size, files whose bytes changed, other cameras); None when it does not. The folder's
    path is not compared."""
    for split in sorted(set(stored.get("splits", {})) | set(current.get("splits", {}))):
        before, after = stored.get("splits", {}).get(split, []), current.get("splits", {}).get(split, [])
        added = [name for name in after if name not in before]
        removed = [name for name in before if name not in after]
        if added or removed:
            parts = [f"{len(added)} added ({_listing(added)})"] if added else []
            parts += [f"{len(removed)} removed ({_listing(removed)})"] if removed else []
            return f"split '{split}': views {' and '.join(parts)}"
        if before != after:
            return f"split '{split}': the views are in another order"
    if stored.get("size") != current.get("size"):
        return f"images are {current.get('size')} pixels, were {stored.get('size')}"
    changed = sorted(name for name, digest in current.get("files", {}).items()
                     if stored.get("files", {}).get(name) not in (None, digest))  # fmt: skip
    if changed:
        return f"{len(changed)} files changed ({_listing(changed)})"
    if stored.get("cameras") != current.get("cameras"):
        return "the cameras (poses or intrinsics) changed"
    return None
