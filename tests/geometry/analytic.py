"""Analytic signed distance functions shared by the geometry tests ([P, 3] -> [P])."""

from __future__ import annotations

import torch


def sphere(points: torch.Tensor, radius: float = 0.7) -> torch.Tensor:
    return points.norm(dim=-1) - radius


def torus(points: torch.Tensor, major: float = 0.6, minor: float = 0.05) -> torch.Tensor:
    ring = torch.stack((points[:, :2].norm(dim=-1) - major, points[:, 2]), -1)
    return ring.norm(dim=-1) - minor


def box(points: torch.Tensor, half: tuple[float, float, float] = (0.6, 0.4, 0.3)) -> torch.Tensor:
    q = points.abs() - torch.tensor(half, dtype=points.dtype)
    return q.clamp(min=0).norm(dim=-1) + q.max(-1).values.clamp(max=0)
