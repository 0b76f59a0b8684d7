"""Procedural triangle meshes for tests, benchmarks and examples."""

from __future__ import annotations

import math

import torch


def uv_sphere(n_lat: int, n_lon: int, radius: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A closed latitude/longitude sphere with 2 * n_lat * n_lon triangles, outward winding.

    The poles are repeated per longitude (the triangles touching them are degenerate, zero area),
    which keeps the texture seam-free in longitude.

    Returns:
        vertices [(n_lat + 1) * n_lon, 3], uv [(n_lat + 1) * n_lon, 2] in [0, 1], tri [F, 3] int32.
    """
    theta = torch.linspace(0, math.pi, n_lat + 1, dtype=torch.float64)
    phi = torch.linspace(0, 2 * math.pi, n_lon + 1, dtype=torch.float64)[:-1]
    t, p = torch.meshgrid(theta, phi, indexing="ij")
    vertices = radius * torch.stack((t.sin() * p.cos(), t.sin() * p.sin(), t.cos()), -1).reshape(-1, 3)
    uv = torch.stack((p / (2 * math.pi), 1 - t / math.pi), -1).reshape(-1, 2)
    i = torch.arange(n_lat)[:, None]
    j = torch.arange(n_lon)[None]
    a = i * n_lon + j
    b = i * n_lon + (j + 1) % n_lon
    c, d = a + n_lon, b + n_lon
    tri = torch.cat((torch.stack((a, c, b), -1).reshape(-1, 3), torch.stack((b, c, d), -1).reshape(-1, 3)))
    return vertices.float(), uv.float(), tri.int()


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
