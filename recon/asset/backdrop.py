"""The backdrop of a run on photos without masks: the ground plane's texture, started from the photos
themselves, and written beside the asset so the evaluation (and the user) can put the table back.

``<run dir>/ground/``: ``ground.json`` (origin, normal, in-plane axes and radius of the textured disk,
in the dataset's world units) and ``texture.hdr`` (linear radiance, row 0 at the disk's -v edge).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from data.dataset import MultiViewDataset
from data.files import write_text_atomic
from data.normalization import SceneTransform
from render.background import Backdrop, GroundPlane
from render.hdr import read_hdr, write_hdr


def photo_texture(dataset: MultiViewDataset, ground: GroundPlane, batch: int = 8) -> torch.Tensor:
    """[T, T, 3] per texel, the mean colour of the photos' pixels whose rays meet the disk: a starting
    point for training. Rays through the object's region may see the object instead of the table, so
    they count 1/20 as much as the others (they alone fill texels only they see); texels no ray meets
    get the overall mean."""
    size = ground.texture.shape[0]
    sums = torch.zeros(size * size, 3, dtype=torch.float64)
    counts = torch.zeros(size * size, dtype=torch.float64)
    with torch.no_grad():
        for start in range(0, len(dataset), batch):
            views = list(range(start, min(start + batch, len(dataset))))
            data = dataset.batch(views)
            origins, directions = data.cameras.rays()
            points, hit = ground.hits(origins, directions)
            uv = ground.plane_coordinates(points[hit])
            cells = ((uv + 1) / 2 * size).floor().long().clamp(0, size - 1)
            index = cells[:, 1] * size + cells[:, 0]
            weight = torch.ones(len(index), dtype=torch.float64)
            if dataset.region is not None:
                weight[dataset.region.crosses(origins[hit], directions[hit])] = 0.05
            sums.index_add_(0, index, data.images[hit].double() * weight[:, None])
            counts.index_add_(0, index, weight)
    seen = counts > 0
    mean = sums[seen].sum(0) / counts[seen].sum() if bool(seen.any()) else torch.full((3,), 0.5)
    texture = torch.where(seen[:, None], sums / counts.clamp(min=1e-9)[:, None], mean)
    return texture.reshape(size, size, 3).float()


def make_backdrop(dataset: MultiViewDataset, texture_resolution: int) -> Backdrop | None:
    """The backdrop of a dataset of photos (None when it has masks): the environment light alone, or
    with the ground plane the dataset found, its texture projected from the photos."""
    if not dataset.photos:
        return None
    if dataset.ground is None:
        return Backdrop()
    plane = dataset.ground
    ground = GroundPlane(plane.point, plane.normal, plane.radius, texture_resolution)
    with torch.no_grad():
        ground.texture.copy_(photo_texture(dataset, ground))
    return Backdrop(ground)


def save_ground(folder: Path, ground: GroundPlane, transform: SceneTransform) -> None:
    """Write the ground plane in world units (module docstring), atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    origin = transform.to_world(ground.origin.detach().cpu()[None])[0]
    meta = {
        "origin": origin.tolist(),
        "normal": ground.normal.tolist(),
        "axes": ground.axes.tolist(),
        "radius": float(ground.radius) / transform.scale,
        "texture": "texture.hdr",
        "note": "a disk of 'radius' around 'origin' in the plane with 'normal'; texture.hdr spans "
        "[-radius, radius]^2 along 'axes' (u: columns, v: rows, row 0 at -radius), linear radiance",
    }
    write_hdr(folder / "texture.hdr", ground.texture.detach().clamp(min=0).cpu().numpy())
    write_text_atomic(folder / "ground.json", json.dumps(meta, indent=2))


def load_ground(folder: Path) -> GroundPlane:
    """A ground plane written by :func:`save_ground` (world units)."""
    meta = json.loads((folder / "ground.json").read_text())
    texture = torch.from_numpy(read_hdr(folder / meta["texture"])).float()
    ground = GroundPlane(torch.tensor(meta["origin"]), torch.tensor(meta["normal"]), meta["radius"],
                         texture.shape[0], initial=texture)  # fmt: skip
    ground.axes.copy_(torch.tensor(meta["axes"]))
    return ground
