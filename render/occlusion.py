"""Ambient occlusion of a triangle mesh by many-view depth maps (the "shadow maps from all around" bake).

For K directions d spread evenly over the sphere (a Fibonacci lattice), the mesh is rasterized
orthographically as seen from far away along d; a vertex sees the sky in direction d when nothing in that
depth map lies between it and the viewer. A vertex's ambient occlusion is the cosine-weighted fraction of
its hemisphere that is open:

    ao(p) = sum_k max(0, n.d_k) open_k(p) / sum_k max(0, n.d_k)        (1 = nothing in the way)

which is what a path tracer's AO pass computes with K rays per point (same directions for every point, so
the result is smooth over the surface). Every ray escapes to infinity: the whole mesh occludes.
Self-shadowing ("acne") is avoided by looking up each vertex slightly off the surface, along its normal,
and with a slope-scaled depth bias; both are a few depth-map pixels.
Nothing here is differentiated: occlusion follows the mesh, it is not optimized through.
"""

from __future__ import annotations

import math

import torch

from geometry import cpu_threads
from geometry.mesh import vertex_normals
from render.raster import rasterize


def sphere_directions(count: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """[K, 3] unit vectors evenly spread over the sphere (Fibonacci lattice)."""
    i = torch.arange(count, device=device, dtype=torch.float64) + 0.5
    z = 1 - 2 * i / count
    phi = math.pi * (3 - math.sqrt(5)) * i
    r = torch.sqrt((1 - z * z).clamp(min=0))
    return torch.stack((r * torch.cos(phi), r * torch.sin(phi), z), -1).to(dtype)


def _orthographic_frames(directions: torch.Tensor) -> torch.Tensor:
    """[K, 3, 3] rows (u, v, w) with w = the direction, u and v spanning the image plane."""
    helper = torch.where(
        directions[:, 2:3].abs() < 0.9,
        torch.tensor([0.0, 0.0, 1.0], dtype=directions.dtype, device=directions.device),
        torch.tensor([1.0, 0.0, 0.0], dtype=directions.dtype, device=directions.device),
    )
    u = torch.nn.functional.normalize(torch.linalg.cross(helper, directions), dim=-1)
    v = torch.linalg.cross(directions, u)
    return torch.stack((u, v, directions), 1)


def vertex_occlusion(
    vertices: torch.Tensor,
    faces: torch.Tensor,
    normals: torch.Tensor | None = None,
    directions: int = 128,
    resolution: int = 256,
    views_per_pass: int = 8,
    backend: str | None = None,
) -> torch.Tensor:
    """Ambient occlusion [V] in [0, 1] of each vertex (module docstring).

    Args:
        vertices: [V, 3]; faces: [F, 3] integer; normals: [V, 3] (area-weighted vertex normals if None).
        directions: K, the number of depth maps; resolution: their side in pixels.
        views_per_pass: depth maps rasterized together (memory: views_per_pass x resolution^2 x 16 bytes).
    """
    with torch.no_grad():
        points = vertices.detach().float()
        n = vertex_normals(points, faces) if normals is None else normals.detach().float()
        n = torch.nn.functional.normalize(n, dim=-1)
        centre = (points.min(0).values + points.max(0).values) / 2
        radius = float((points - centre).norm(dim=-1).max()) * 1.02 + 1e-12
        pixel = 2 * radius / resolution  # world size of a depth-map pixel
        lookup = points + 1.5 * pixel * n  # off the surface, against acne
        tri = faces.to(device=points.device, dtype=torch.int32).contiguous()
        dirs = sphere_directions(directions, points.device)
        open_sum = torch.zeros(len(points), device=points.device)
        weight_sum = torch.zeros(len(points), device=points.device)
        for start in range(0, directions, views_per_pass):
            cpu_threads.adapt()
            frames = _orthographic_frames(dirs[start : start + views_per_pass])  # [B, 3, 3]
            local = torch.einsum("bij,vj->bvi", frames, points - centre) / radius  # [B, V, 3]
            # clip space: x = u, y = v, depth = -w (the side facing the direction is nearest)
            clip = torch.cat((local[..., :2], -local[..., 2:], torch.ones_like(local[..., :1])), -1)
            rast, _ = rasterize(clip.contiguous(), tri, (resolution, resolution), backend=backend)
            query = torch.einsum("bij,vj->bvi", frames, lookup - centre) / radius
            col = ((query[..., 0] + 1) / 2 * resolution).floor().long().clamp(0, resolution - 1)
            row = ((query[..., 1] + 1) / 2 * resolution).floor().long().clamp(0, resolution - 1)
            batch = torch.arange(len(frames), device=points.device)[:, None].expand_as(col)
            hit = rast[batch, row, col]  # [B, V, 4]
            cosine = (n[None] * frames[:, None, 2]).sum(-1)  # [B, V]
            slope = torch.sqrt((1 - cosine**2).clamp(min=0)) / cosine.clamp(min=0.05)
            bias = (2 / resolution) * (1 + slope.clamp(max=8))  # in clip depth units (2 radius = 2)
            blocked = (hit[..., 3] > 0) & (hit[..., 2] < -query[..., 2] - bias)
            weight = cosine.clamp(min=0)
            open_sum += (weight * (~blocked)).sum(0)
            weight_sum += weight.sum(0)
        return (open_sum / weight_sum.clamp(min=1e-12)).clamp(0, 1)
