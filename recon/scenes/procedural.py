"""The built-in analytic scene: the procedural and "concave" objects (signed distance functions), the
procedural object's materials, and the procedural sky. :mod:`recon.scenes.synthetic` renders them.

The procedural object is a rounded body with a bowl-shaped dent on top and a torus handle through a side
lug (concave, genus 1), with base colour stripes, roughness varying along x and a metallic handle; the
concave one is a block with a tunnel through it and a deep pocket in its top.
"""

from __future__ import annotations

import torch


def _smooth_min(a: torch.Tensor, b: torch.Tensor, k: float) -> torch.Tensor:
    h = (0.5 + 0.5 * (b - a) / k).clamp(0, 1)
    return b + (a - b) * h - k * h * (1 - h)


def procedural_sdf(p: torch.Tensor) -> torch.Tensor:
    """[P, 3] -> [P] (world units, object within radius ~0.85 of the origin, +Z up)."""
    q = p.abs() - torch.tensor([0.38, 0.3, 0.3], dtype=p.dtype, device=p.device)
    body = q.clamp(min=0).norm(dim=-1) + q.max(-1).values.clamp(max=0) - 0.12
    dent = (p - torch.tensor([0.0, 0.0, 0.62], dtype=p.dtype, device=p.device)).norm(dim=-1) - 0.3
    body = torch.maximum(body, -dent)  # a bowl carved into the top: concavity
    h = p - torch.tensor([0.62, 0.0, 0.0], dtype=p.dtype, device=p.device)
    ring = torch.stack((torch.stack((h[:, 0], h[:, 2]), -1).norm(dim=-1) - 0.2, h[:, 1]), -1)
    handle = ring.norm(dim=-1) - 0.06  # a torus in the xz-plane beside the body: genus 1
    return _smooth_min(body, handle, 0.04)


def concave_sdf(p: torch.Tensor) -> torch.Tensor:
    """[P, 3] -> [P]: a rounded block (1.2 x 0.7 x 0.7) with a tunnel (radius 0.15) through it along y and
    a pocket (radius 0.17, 0.35 deep, as deep as it is wide) open at the top; genus 1, and a quarter of
    its surface lies inside the two."""
    q = p.abs() - torch.tensor([0.52, 0.27, 0.27], dtype=p.dtype, device=p.device)
    block = q.clamp(min=0).norm(dim=-1) + q.max(-1).values.clamp(max=0) - 0.08
    tunnel = torch.stack((p[:, 0] + 0.25, p[:, 2]), -1).norm(dim=-1) - 0.15
    pocket = torch.maximum(torch.stack((p[:, 0] - 0.28, p[:, 1]), -1).norm(dim=-1) - 0.17, -p[:, 2])
    return torch.maximum(block, -torch.minimum(tunnel, pocket))


def procedural_material(p: torch.Tensor, uv: torch.Tensor | None = None):
    """Base colour stripes along z, roughness rising along x, metallic handle (x > 0.5)."""
    stripes = 0.5 + 0.5 * torch.sin(p[:, 2:3] * 18.0)
    warm = torch.tensor([0.8, 0.35, 0.1], device=p.device)
    cool = torch.tensor([0.15, 0.45, 0.75], device=p.device)
    base = warm * stripes + cool * (1 - stripes)
    roughness = (0.25 + 0.5 * (p[:, :1] + 0.5)).clamp(0.15, 0.9)
    metallic = (p[:, :1] > 0.5).to(p.dtype)
    base = torch.where(metallic > 0, torch.tensor([0.9, 0.85, 0.7], device=p.device), base)
    return base, roughness, metallic


BUILT_IN_OBJECTS = {"procedural": procedural_sdf, "concave": concave_sdf}


def procedural_sky(directions: torch.Tensor) -> torch.Tensor:
    """[..., 3] directions -> linear radiance: blue-white sky, brown ground, a warm sun."""
    z = directions[..., 2:3]
    up = z.clamp(min=0)
    sky = torch.tensor([0.35, 0.55, 1.0]) * (1 - up) + up
    ground = torch.tensor([0.35, 0.25, 0.15]) * (0.6 + 0.4 * (-z).clamp(min=0))
    blend = torch.sigmoid(12 * z)
    sun_dir = torch.nn.functional.normalize(torch.tensor([0.6, -0.3, 0.55]), dim=0)
    sun = torch.exp(((directions * sun_dir).sum(-1, keepdim=True) - 1) / 0.02) * torch.tensor([4.0, 3.3, 2.3])
    return blend * sky + (1 - blend) * ground + sun


def relight_sky(directions: torch.Tensor) -> torch.Tensor:
    """[..., 3] -> linear radiance: the second light of the built-in scenes' relighting views — the
    procedural sky turned 150 degrees about +Z (the sun comes from elsewhere), tinted warmer."""
    angle = torch.tensor(150.0 * torch.pi / 180)
    c, s = torch.cos(angle), torch.sin(angle)
    x, y, z = directions.unbind(-1)
    turned = torch.stack((c * x + s * y, -s * x + c * y, z), -1)
    return procedural_sky(turned) * torch.tensor([1.0, 0.85, 0.7])
