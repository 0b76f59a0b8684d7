"""SDF network -> grid of values -> mesh, evaluating the network only where the surface can be.

The grid has ``resolution`` cells (``resolution + 1`` points) per axis over the box. Two samplers:
  * full: every grid point without gradients;
  * narrow band (coarse to fine): every point of a ``coarse_resolution`` grid; then, level by level
    (doubling the resolution), values are trilinearly interpolated from the coarser level and only the
    points whose interpolated value is within ``band`` spacings of zero are evaluated. A final repair
    pass evaluates every point on a sign-changing edge that is still interpolated (and its neighbours),
    until none is left. The result equals full evaluation unless a whole surface component hides
    between evaluated points (thinner than the band, and missed by interpolation at every level).
Both then re-evaluate, with gradients, only the two end points of every edge whose sign changes: those
are the only values marching cubes' vertex positions depend on, so the backward pass costs a
surface's worth of points, not a volume's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from data.settings import Settings, power_of_two, require
from geometry.marching_cubes import marching_cubes

SDFFunction = Callable[[torch.Tensor], torch.Tensor]
_CHUNK = 1 << 17


@dataclass
class GridConfig(Settings):
    """Settings of the SDF grid that marching cubes extracts."""

    resolution: int = 128
    """Cells per axis (the grid has resolution + 1 points per axis)."""
    narrow_band: bool = True
    """Evaluate coarse to fine near the surface instead of at every grid point."""
    coarse_resolution: int = 16
    """Cells per axis of the first, fully evaluated level; resolution / coarse_resolution must be 2^k."""
    band: float = 1.0
    """At each finer level, evaluate the points whose value interpolated from the coarser level is within
    band * (that level's spacing) of zero. An end point of a crossing edge is within one spacing of the
    surface, so band >= 1 covers it up to the interpolation error (small for smooth surfaces); the repair
    pass catches the rest. 1.0 gave the full-evaluation mesh on every shape tested."""
    max_repairs: int = 8
    """Rounds of the repair pass before giving up (the mesh is still valid, just possibly incomplete)."""

    def check(self) -> None:
        require(self, "resolution", self.resolution >= 2, "an integer >= 2")
        if self.narrow_band and self.coarse_resolution < self.resolution:
            require(self, "coarse_resolution", self.coarse_resolution >= 2, "an integer >= 2")
            ratio = self.resolution // self.coarse_resolution
            exact = not self.resolution % self.coarse_resolution and power_of_two(ratio)
            expected = f"coarse_resolution ({self.coarse_resolution}) times a power of two (the narrow band)"
            require(self, "resolution", exact, expected)


@dataclass
class SDFGrid:
    """Sampled SDF: values [R+1, R+1, R+1] (first axis x), differentiable at the crossing edges' ends."""

    values: torch.Tensor
    lower: torch.Tensor
    upper: torch.Tensor
    evaluated: int
    """Points evaluated without gradients (all levels and repairs)."""
    evaluated_with_grad: int
    """Points re-evaluated with gradients (the crossing edges' end points)."""
    repaired: int = 0
    """Points among ``evaluated`` that the repair pass added (narrow band only)."""

    @property
    def spacing(self) -> torch.Tensor:
        """[3] distance between neighbouring grid points (world units)."""
        return (self.upper - self.lower) / (torch.tensor(self.values.shape, device=self.lower.device) - 1)


def crossing_edges(values: torch.Tensor) -> torch.Tensor:
    """Grid edges whose end points have different signs (negative = inside).

    Args:
        values: [N0, N1, N2].
    Returns:
        [E, 2] int64 flat indices (into ``values.reshape(-1)``) of each edge's two end points.
    """
    inside = values.detach() < 0
    n1, n2 = values.shape[1], values.shape[2]
    strides = (n1 * n2, n2, 1)
    edges = []
    for axis in range(3):
        lo = [slice(None)] * 3
        lo[axis] = slice(0, -1)
        hi = [slice(None)] * 3
        hi[axis] = slice(1, None)
        start = torch.nonzero(inside[tuple(lo)] != inside[tuple(hi)])
        start = (start[:, 0] * n1 + start[:, 1]) * n2 + start[:, 2]
        edges.append(torch.stack((start, start + strides[axis]), -1))
    return torch.cat(edges)


def _evaluate(fn: SDFFunction, index: torch.Tensor, lower: torch.Tensor, spacing: torch.Tensor):
    """fn at grid points ``index`` [P, 3] (int), in chunks; [P]."""
    points = lower + index.to(lower.dtype) * spacing
    return torch.cat([fn(part).reshape(-1) for part in points.split(_CHUNK)]) if len(points) else points[:, 0]


_NEIGHBOURS = torch.stack(torch.meshgrid(*[torch.arange(-1, 2)] * 3, indexing="ij"), -1).reshape(
    -1, 3
)  # the 27 offsets of a 3x3x3 block


def _neighbourhood(index: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Grid points within one step (in every axis) of the points ``index`` [P, 3]: [Q, 3], unique."""
    near = (index[:, None, :] + _NEIGHBOURS.to(index.device)).reshape(-1, 3)
    limit = torch.tensor(shape, device=index.device) - 1
    near = torch.minimum(near.clamp(min=0), limit)
    n1, n2 = shape[1], shape[2]
    key = torch.unique((near[:, 0] * n1 + near[:, 1]) * n2 + near[:, 2])  # unique(dim=0) is ~20x slower
    return torch.stack((key // (n1 * n2), (key // n2) % n1, key % n2), -1)


def _narrow_band(fn: SDFFunction, lower, spacing, config: GridConfig):
    """No-grad values on the full grid (exact near the surface, interpolated elsewhere), known mask."""
    device = lower.device
    stride = config.resolution // config.coarse_resolution
    n = config.coarse_resolution
    index = torch.stack(torch.meshgrid(*[torch.arange(n + 1, device=device)] * 3, indexing="ij"), -1)
    values = _evaluate(fn, index.reshape(-1, 3) * stride, lower, spacing).view(n + 1, n + 1, n + 1)
    known = torch.ones_like(values, dtype=torch.bool)
    evaluated = values.numel()
    while stride > 1:
        size = (2 * n + 1,) * 3
        values = F.interpolate(values[None, None], size=size, mode="trilinear", align_corners=True)[0, 0]
        fine_known = torch.zeros_like(values, dtype=torch.bool)
        fine_known[::2, ::2, ::2] = known
        stride, n = stride // 2, 2 * n
        threshold = config.band * float((spacing * stride).max())
        new = (values.abs() <= threshold) & ~fine_known
        index = torch.nonzero(new)
        values[new] = _evaluate(fn, index * stride, lower, spacing).to(values.dtype)
        known = fine_known | new
        evaluated += len(index)
    return values, known, evaluated


def _repair(fn: SDFFunction, values, known, lower, spacing, config: GridConfig) -> int:
    """Evaluate interpolated points on crossing edges (and their neighbours) until there are none."""
    evaluated = 0
    for _ in range(config.max_repairs):
        ends = crossing_edges(values).reshape(-1)
        ends = torch.unique(ends[~known.view(-1)[ends]])
        if len(ends) == 0:
            break
        n1, n2 = values.shape[1], values.shape[2]
        missing = torch.stack((ends // (n1 * n2), (ends // n2) % n1, ends % n2), -1)
        index = _neighbourhood(missing, values.shape)
        index = index[~known[index[:, 0], index[:, 1], index[:, 2]]]
        values[index[:, 0], index[:, 1], index[:, 2]] = _evaluate(fn, index, lower, spacing).to(values.dtype)
        known[index[:, 0], index[:, 1], index[:, 2]] = True
        evaluated += len(index)
    return evaluated


def sample_sdf_grid(
    fn: SDFFunction, lower: torch.Tensor, upper: torch.Tensor, config: GridConfig | None = None
) -> SDFGrid:
    """Sample ``fn`` ([P, 3] world points -> [P] signed distances) on the grid over [lower, upper].

    Returns an :class:`SDFGrid` whose values carry gradients (to fn's parameters) exactly at the end
    points of sign-changing edges, which is all that :func:`marching_cubes` differentiates.
    """
    config = config or GridConfig()
    config.validate()
    resolution = config.resolution
    spacing = (upper - lower) / resolution
    with torch.no_grad():
        if config.narrow_band and config.coarse_resolution < resolution:
            values, known, evaluated = _narrow_band(fn, lower, spacing, config)
            repaired = _repair(fn, values, known, lower, spacing, config)
            evaluated += repaired
        else:
            axis = torch.arange(resolution + 1, device=lower.device)
            index = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
            values = _evaluate(fn, index, lower, spacing).view((resolution + 1,) * 3)
            evaluated, repaired = values.numel(), 0
    ends = torch.unique(crossing_edges(values))
    n = resolution + 1
    index = torch.stack((ends // (n * n), (ends // n) % n, ends % n), -1)
    with_grad = _evaluate(fn, index, lower, spacing)
    values = values.reshape(-1).index_put((ends,), with_grad.to(values.dtype)).view(values.shape)
    return SDFGrid(values, lower, upper, evaluated, len(ends), repaired)


def extract_mesh(
    fn: SDFFunction, lower: torch.Tensor, upper: torch.Tensor, config: GridConfig | None = None
) -> tuple[torch.Tensor, torch.Tensor, SDFGrid]:
    """Sample ``fn`` on the grid and run marching cubes.

    Returns:
        vertices [V, 3] (differentiable in fn's parameters), faces [F, 3] int64, and the grid (for the
        sign regularizer and statistics).
    """
    grid = sample_sdf_grid(fn, lower, upper, config)
    vertices, faces = marching_cubes(grid.values, grid.lower, grid.upper)
    return vertices, faces, grid
