"""The surface an object stands on, and the region the object occupies above it, from sparse points.

Photos of an object show the table or floor it stands on. The dominant plane among the SfM points
(:func:`fit_ground_plane`, RANSAC then least squares on the inliers) gives the world's up axis (its
normal, on the cameras' side) and the object's region (:func:`object_region`): a box standing on the
plane that holds the points above it near the cameras' common look-at point. The reconstruction keeps
its surface inside that region, so the table is not glued to the asset, and explains the plane
separately (``render.background.GroundPlane``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from data.cameras import Camera
from data.normalization import SceneTransform, look_at_point


@dataclass
class Plane:
    """A plane through ``point`` [3] with unit ``normal`` [3] (up, towards the cameras); ``radius``: how
    far its inlier points reach around ``point``; ``inliers``: their fraction of all points."""

    point: torch.Tensor
    normal: torch.Tensor
    radius: float
    inliers: float

    def height(self, points: torch.Tensor) -> torch.Tensor:
        """[...] signed distance above the plane of points [..., 3]."""
        return ((points - self.point.to(points)) * self.normal.to(points)).sum(-1)

    def transformed(self, scale: float, offset: torch.Tensor) -> Plane:
        """The plane in normalized coordinates, (x - offset) * scale."""
        return Plane((self.point - offset) * scale, self.normal, self.radius * scale, self.inliers)


@dataclass
class Region:
    """An oriented box: centre [3], axes [3, 3] (rows: the box's local x, y, z; for a box standing on a
    plane, two in-plane directions, then the up normal) and half extents [3]."""

    centre: torch.Tensor
    axes: torch.Tensor
    half: torch.Tensor

    def local(self, points: torch.Tensor) -> torch.Tensor:
        return (points - self.centre.to(points)) @ self.axes.to(points).T

    def sdf(self, points: torch.Tensor) -> torch.Tensor:
        """[P] signed distance to the box (negative inside) of points [P, 3]."""
        q = self.local(points).abs() - self.half.to(points)
        return q.clamp(min=0).norm(dim=-1) + q.max(-1).values.clamp(max=0)

    def clamp(self, points: torch.Tensor) -> torch.Tensor:
        """[P, 3] points moved to the nearest point of the box (those inside stay)."""
        local = self.local(points)
        half = self.half.to(points)
        inside = torch.maximum(torch.minimum(local, half), -half)
        return self.centre.to(points) + inside @ self.axes.to(points)

    def crosses(self, origins: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
        """[...] whether rays [..., 3] (forward from their origins) pass through the box (slab test)."""
        o = self.local(origins)
        d = directions @ self.axes.to(directions).T
        half = self.half.to(o)
        safe = torch.where(d.abs() < 1e-9, torch.full_like(d, 1e-9), d)
        t0, t1 = (-half - o) / safe, (half - o) / safe
        near = torch.minimum(t0, t1).max(-1).values
        far = torch.maximum(t0, t1).min(-1).values
        return (far >= near.clamp(min=0)) & (far > 0)

    def contains(self, points: torch.Tensor) -> torch.Tensor:
        return (self.local(points).abs() <= self.half.to(points)).all(-1)

    def corners(self) -> torch.Tensor:
        """[8, 3] the box's corners."""
        signs = torch.tensor(
            [[i, j, k] for i in (-1, 1) for j in (-1, 1) for k in (-1, 1)], dtype=torch.float32
        )
        return self.centre + (signs * self.half) @ self.axes

    def transformed(self, scale: float, offset: torch.Tensor) -> Region:
        """The region in normalized coordinates, (x - offset) * scale."""
        return Region((self.centre - offset) * scale, self.axes, self.half * scale)

    @classmethod
    def from_bounds(cls, bounds) -> Region:
        """An axis-aligned box from (xmin, ymin, zmin, xmax, ymax, zmax)."""
        low, high = (
            torch.tensor(bounds[:3], dtype=torch.float32),
            torch.tensor(bounds[3:], dtype=torch.float32),
        )
        return cls((low + high) / 2, torch.eye(3), (high - low) / 2)


def _plane_from(points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    centre = points.mean(0)
    _, _, vh = torch.linalg.svd(points - centre, full_matrices=False)
    return centre, vh[-1]


def fit_ground_plane(
    points: torch.Tensor,
    cameras: Camera,
    iterations: int = 400,
    threshold: float = 0.01,
    min_inliers: float = 0.15,
    seed: int = 0,
) -> Plane | None:
    """The dominant plane of ``points`` [P, 3] that every camera sees from the same side, or None.

    ``threshold``: inlier distance as a fraction of the points' spread (their median distance to the
    median point); a plane needs ``min_inliers`` of the points and at least 90% of the cameras on its
    normal's side.
    """
    points = points.double()
    if len(points) < 20:
        return None
    centre = points.median(0).values
    spread = float((points - centre).norm(dim=-1).median())
    tolerance = threshold * max(spread, 1e-12)
    generator = torch.Generator().manual_seed(seed)
    triples = torch.randint(len(points), (iterations, 3), generator=generator)
    a, b, c = points[triples[:, 0]], points[triples[:, 1]], points[triples[:, 2]]
    normals = torch.linalg.cross(b - a, c - a)
    valid = normals.norm(dim=-1) > 1e-12
    normals = normals / normals.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    distances = ((points[None] - a[:, None]) * normals[:, None]).sum(-1).abs()  # [I, P]
    counts = torch.where(valid, (distances < tolerance).sum(-1), torch.zeros_like(valid, dtype=torch.long))
    best = int(counts.argmax())
    inliers = distances[best] < tolerance
    for _ in range(2):  # least squares on the inliers, then the inliers of that plane
        if int(inliers.sum()) < 3:
            return None
        origin, normal = _plane_from(points[inliers])
        inliers = ((points - origin) @ normal).abs() < tolerance
    fraction = float(inliers.double().mean())
    if fraction < min_inliers:
        return None
    sides = (cameras.centers.double() - origin) @ normal
    if float((sides < 0).double().mean()) > 0.5:
        normal, sides = -normal, -sides
    if float((sides > 0).double().mean()) < 0.9:
        return None
    on_plane = points[inliers]
    origin = _foot(origin, normal, cameras)
    radius = float(torch.quantile((on_plane - origin).norm(dim=-1), 0.95))
    return Plane(origin.float(), normal.float(), radius, fraction)


def _foot(origin: torch.Tensor, normal: torch.Tensor, cameras: Camera) -> torch.Tensor:
    """The cameras' look-at point projected onto the plane (the object's footprint centre)."""
    target = look_at_point(cameras).double()
    return target - ((target - origin) @ normal) * normal


def plane_basis(normal: torch.Tensor) -> torch.Tensor:
    """[3, 3] rows: two in-plane unit axes, then ``normal`` (right-handed)."""
    normal = normal / normal.norm()
    helper = torch.zeros_like(normal)
    helper[int(normal.abs().argmin())] = 1.0
    u = torch.linalg.cross(helper, normal)
    u = u / u.norm()
    return torch.stack((u, torch.linalg.cross(normal, u), normal))


def object_region(points: torch.Tensor, cameras: Camera, plane: Plane, lift: float = 0.005) -> Region:
    """The box above ``plane`` that holds the object, from the cameras (an object capture frames and
    aims at the object): its footprint is the square around the look-at point's foot that the sphere
    filling the narrowest half field of view covers at the cameras' mean distance, its height 2.3 times
    the look-at point's (at most the footprint's width). With 100 or more sparse points above that
    footprint (a textured object), the box shrinks to their 2-98% extent plus 15% of that sphere's
    radius, and rises to hold 98% of them. Its bottom is ``lift`` (of the cameras' distance) above the
    plane, so the plane itself stays outside."""
    axes = plane_basis(plane.normal.double())
    foot = plane.point.double()
    distance = float((cameras.centers.double() - foot).norm(dim=-1).mean())
    half_fov = float(torch.atan(0.5 * cameras.width / cameras.fx).min())
    reach = distance * math.sin(half_fov)
    aim = float(plane.height(look_at_point(cameras).double()))
    top = min(2 * reach, 2.3 * aim) if aim > 0.1 * reach else reach
    bottom = lift * distance
    local = (points.double() - foot) @ axes.T
    over = local[(local[:, :2].abs() < reach).all(-1) & (local[:, 2] > bottom) & (local[:, 2] < 2 * reach)]
    low, high = torch.full((2,), -reach, dtype=torch.float64), torch.full((2,), reach, dtype=torch.float64)
    if len(over) >= 100:  # a textured object: its own points bound it (with a margin for untextured parts)
        top = max(top, 1.1 * float(torch.quantile(over[:, 2], 0.98)))
        margin = 0.15 * reach
        low = (torch.quantile(over[:, :2], 0.02, dim=0) - margin).clamp(min=-reach)
        high = (torch.quantile(over[:, :2], 0.98, dim=0) + margin).clamp(max=reach)
    middle = torch.cat(((low + high) / 2, torch.tensor([(bottom + top) / 2], dtype=torch.float64)))
    centre = foot + middle @ axes
    half = torch.cat(((high - low) / 2, torch.tensor([(top - bottom) / 2], dtype=torch.float64)))
    return Region(centre.float(), axes.float(), half.float())


def region_transform(region: Region, target_radius: float = 0.9) -> SceneTransform:
    """The normalization that puts the region's centre at the origin and its corners on the sphere of
    ``target_radius`` (inside the SDF box)."""
    return SceneTransform(region.centre.clone(), target_radius / float(region.half.norm()), "object region")
