"""Procedural triangle meshes for tests, benchmarks and examples."""

from __future__ import annotations

import math

import torch


def uv_sphere(n_lat: int, n_lon: int, radius: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A closed, welded latitude/longitude sphere around +Z: 2 * n_lon * (n_lat - 1) triangles, outward
    (counter-clockwise) winding, every edge shared by exactly two triangles.

    uv = (longitude / 2 pi, 1 - colatitude / pi); being welded, the mesh has no seam vertices, so
    the triangles of the last longitude column interpolate u back from (n_lon - 1)/n_lon to 0.

    Returns:
        vertices [2 + (n_lat - 1) * n_lon, 3], uv [same, 2], tri [F, 3] int32.
    """
    theta = torch.linspace(0, math.pi, n_lat + 1, dtype=torch.float64)[1:-1]
    phi = torch.arange(n_lon, dtype=torch.float64) * (2 * math.pi / n_lon)
    t, p = torch.meshgrid(theta, phi, indexing="ij")
    ring = torch.stack((t.sin() * p.cos(), t.sin() * p.sin(), t.cos()), -1).reshape(-1, 3)
    poles = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0]], dtype=torch.float64)
    vertices = radius * torch.cat((poles[:1], ring, poles[1:]))
    ring_uv = torch.stack((p / (2 * math.pi), 1 - t / math.pi), -1).reshape(-1, 2)
    uv = torch.cat((torch.tensor([[0.5, 1.0]]), ring_uv.float(), torch.tensor([[0.5, 0.0]])))
    j = torch.arange(n_lon)
    jn = (j + 1) % n_lon
    north, south = 0, 1 + (n_lat - 1) * n_lon
    parts = [torch.stack((torch.full_like(j, north), 1 + j, 1 + jn), -1)]
    for i in range(n_lat - 2):
        a, b = 1 + i * n_lon + j, 1 + i * n_lon + jn
        c, d = a + n_lon, b + n_lon
        parts += [torch.stack((a, c, b), -1), torch.stack((b, c, d), -1)]
    last = 1 + (n_lat - 2) * n_lon
    parts.append(torch.stack((last + j, torch.full_like(j, south), last + jn), -1))
    return vertices.float(), uv, torch.cat(parts).int()


def triangle_soup(count: int, size: float = 0.05, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` independent random triangles of about ``size`` in the cube [-1, 1]^3.

    Returns:
        vertices [3 * count, 3], tri [count, 3] int32.
    """
    gen = torch.Generator().manual_seed(seed)
    centres = torch.rand(count, 1, 3, generator=gen) * 2 - 1
    offsets = (torch.rand(count, 3, 3, generator=gen) - 0.5) * (2 * size)
    vertices = (centres + offsets).reshape(-1, 3)
    tri = torch.arange(3 * count, dtype=torch.int32).reshape(count, 3)
    return vertices, tri
