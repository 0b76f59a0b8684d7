"""Scene normalization: a similarity that puts the object inside the SDF's box, and its inverse.

Internally the reconstruction works in normalized units, normalized = (world - offset) * scale, chosen so
that the object fits in a sphere of ``target_radius`` around the origin (the SDF box is [-1, 1]^3 by
default). Exports map back with :meth:`SceneTransform.to_world` so meshes and probes come out in the
dataset's units. Three estimates of the object's bounding sphere, best first: the masks' visual hull,
the sparse points (COLMAP), the cameras' common look-at point.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from data.cameras import Camera


@dataclass
class SceneTransform:
    """normalized = (world - offset) * scale; ``method`` says how it was estimated. ``up`` is the world's
    up axis (exports turn it into glTF's +Y) and ``up_source`` where it comes from (the format's
    convention or an estimate from the cameras)."""

    offset: torch.Tensor
    scale: float
    method: str = "identity"
    up: tuple[float, float, float] = (0.0, 0.0, 1.0)
    up_source: str = "+Z by convention"

    def to_normalized(self, points: torch.Tensor) -> torch.Tensor:
        return (points - self.offset.to(points)) * self.scale

    def to_world(self, points: torch.Tensor) -> torch.Tensor:
        return points / self.scale + self.offset.to(points)

    def cameras(self, cameras: Camera) -> Camera:
        return cameras.transformed(self.scale, self.offset)


def look_at_point(cameras: Camera) -> torch.Tensor:
    """[3] the point closest (least squares) to every camera's optical axis."""
    origins = cameras.centers.double()
    axes = -cameras.c2w[:, :3, 2].double()  # OpenGL cameras look down -Z
    axes = axes / axes.norm(dim=-1, keepdim=True)
    projector = torch.eye(3, dtype=torch.float64) - axes[:, :, None] * axes[:, None, :]  # [B, 3, 3]
    a, b = projector.sum(0), (projector @ origins[:, :, None]).sum(0)[:, 0]
    if torch.linalg.matrix_rank(a) < 3:  # all axes parallel: fall back to the cameras' centroid
        return origins.mean(0).float()
    return torch.linalg.solve(a, b).float()


def from_cameras(cameras: Camera, target_radius: float = 0.8) -> SceneTransform:
    """Centre at the look-at point; radius = the sphere that subtends 80% of the narrowest half field of
    view from the mean camera distance (object-centric captures frame the object)."""
    centre = look_at_point(cameras)
    distance = float((cameras.centers - centre).norm(dim=-1).mean())
    half_fov = float(
        torch.atan(0.5 * cameras.width / cameras.fx)
        .min()
        .minimum(torch.atan(0.5 * cameras.height / cameras.fy).min())
    )
    radius = 0.8 * distance * torch.sin(torch.tensor(half_fov)).item()
    return SceneTransform(centre, target_radius / radius, "camera look-at point")


def from_points(points: torch.Tensor, target_radius: float = 0.8, quantile: float = 0.98) -> SceneTransform:
    """Centre = median of the points; radius = the ``quantile`` of their distances (ignores outliers)."""
    centre = points.median(0).values
    radius = float(torch.quantile((points - centre).norm(dim=-1), quantile))
    return SceneTransform(centre, target_radius / max(radius, 1e-8), "sparse points")


def from_masks(
    cameras: Camera, masks: torch.Tensor, target_radius: float = 0.8, resolution: int = 64
) -> SceneTransform | None:
    """Bounding sphere of the masks' visual hull (carved on a ``resolution``^3 grid around the look-at
    point; a point survives when every view that sees it has it in the mask and at least 3/4 of the
    views see it: with fewer, chance alignments of a few silhouettes survive); None when nothing survives.

    Args:
        masks: [B, H, W] uint8 or bool (foreground > half), images top row first.
    """
    centre = look_at_point(cameras)
    half = float((cameras.centers - centre).norm(dim=-1).mean())
    axis = torch.linspace(-half, half, resolution)
    grid = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3) + centre
    keep = torch.ones(len(grid), dtype=torch.bool)
    seen = torch.zeros(len(grid), dtype=torch.int64)
    foreground = masks > (127 if masks.dtype == torch.uint8 else 0)
    for view in range(len(cameras)):
        xy, depth = cameras[view].project(grid)
        x, y = xy[0, :, 0].floor().long(), xy[0, :, 1].floor().long()
        inside = (depth[0] > 0) & (x >= 0) & (y >= 0) & (x < cameras.width) & (y < cameras.height)
        hit = foreground[view][y.clamp(0, cameras.height - 1), x.clamp(0, cameras.width - 1)]
        keep &= ~inside | hit  # carve only where the view sees the point
        seen += inside
    keep &= seen * 4 >= 3 * len(cameras)  # and drop what a quarter of the views never see
    if not bool(keep.any()):
        return None
    occupied = grid[keep]
    lower, upper = occupied.min(0).values, occupied.max(0).values
    mid = (lower + upper) / 2
    radius = float((occupied - mid).norm(dim=-1).max()) + float(axis[1] - axis[0]) * 3**0.5
    if not radius > 0:  # e.g. one camera (a degenerate hull): leave it to the other estimates
        return None
    return SceneTransform(mid, target_radius / radius, "mask visual hull")
