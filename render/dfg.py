"""The split-sum "DFG" table, computed in code by numerical integration (Karis 2013, "Real Shading in
Unreal Engine 4"; the diffuse channel as in Lagarde & de Rousiers 2014, "Moving Frostbite to PBR").

For n.v and perceptual roughness r, with the BRDF of :mod:`render.brdf`:
    A = integral of f_spec / F * (1 - (1 - v.h)^5) * (n.l) dl
    B = integral of f_spec / F * (1 - v.h)^5 * (n.l) dl          so that  integral f_spec (n.l) = F0 A + B
    C = integral of burley_factor * (n.l) / pi dl                 (Burley's diffuse reflectance; Lambert is 1)
A and B are estimated by GGX importance sampling, C by cosine sampling, on a Hammersley point set.
The table is built once per (device, dtype) and kept in memory (about 0.2 s on a CPU).
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F

from render.brdf import MIN_COSINE, MIN_ROUGHNESS, burley_factor, smith_visibility

COS_SAMPLES = 64
ROUGHNESS_SAMPLES = 32
INTEGRATION_SAMPLES = 1024


def _hammersley(count: int) -> tuple[torch.Tensor, torch.Tensor]:
    i = torch.arange(count, dtype=torch.int64)
    bits = torch.zeros(count, dtype=torch.float64)
    scale, rest = 0.5, i.clone()
    while bool((rest > 0).any()):
        bits += (rest & 1).to(torch.float64) * scale
        rest, scale = rest >> 1, scale / 2
    return (i.to(torch.float64) + 0.5) / count, bits


def _table_axes() -> tuple[torch.Tensor, torch.Tensor]:
    n_dot_v = torch.linspace(0, 1, COS_SAMPLES, dtype=torch.float64).clamp(min=MIN_COSINE)
    roughness = torch.linspace(MIN_ROUGHNESS, 1, ROUGHNESS_SAMPLES, dtype=torch.float64)
    return n_dot_v, roughness


def integrate_dfg(
    n_dot_v: torch.Tensor, roughness: torch.Tensor, samples: int = INTEGRATION_SAMPLES
) -> torch.Tensor:
    """(A, B, C) [..., 3] for broadcastable n_dot_v and roughness tensors (float64 recommended)."""
    nv, rough = torch.broadcast_tensors(n_dot_v, roughness)
    nv, rough = nv[..., None], rough[..., None]
    alpha = rough * rough
    u1, u2 = _hammersley(samples)
    u1, u2 = u1.to(nv), u2.to(nv)
    # View in the xz-plane, normal = +z.
    v = torch.stack((torch.sqrt(1 - nv * nv), torch.zeros_like(nv), nv), -1)
    # GGX-distributed half vectors (pdf of h: D (n.h)).
    cos_h = torch.sqrt((1 - u1) / (1 + (alpha * alpha - 1) * u1))
    sin_h = torch.sqrt((1 - cos_h * cos_h).clamp(min=0))
    phi = 2 * math.pi * u2
    h = torch.stack((sin_h * torch.cos(phi), sin_h * torch.sin(phi), cos_h), -1)
    v_dot_h = (v * h).sum(-1).clamp(min=0)
    l_z = 2 * v_dot_h * cos_h - nv
    # f_spec / F * n.l / pdf(l), with pdf(l) = D (n.h) / (4 v.h):  4 V (n.l) (v.h) / (n.h)
    weight = 4 * smith_visibility(nv, l_z, alpha) * l_z.clamp(min=0) * v_dot_h / cos_h.clamp(min=1e-12)
    fresnel = (1 - v_dot_h) ** 5
    a = (weight * (1 - fresnel)).mean(-1)
    b = (weight * fresnel).mean(-1)
    # Cosine-distributed light directions for the diffuse factor (pdf: n.l / pi).
    cos_l = torch.sqrt(1 - u1)
    sin_l = torch.sqrt(u1)
    light = torch.stack((sin_l * torch.cos(phi), sin_l * torch.sin(phi), cos_l), -1)
    half = light + v
    half = half / half.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    l_dot_h = (light * half).sum(-1)
    c = burley_factor(cos_l, nv, l_dot_h, rough).mean(-1)
    return torch.stack((a, b, c), -1)


@lru_cache(maxsize=8)
def dfg_table(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """The table as an image [1, 3, ROUGHNESS_SAMPLES, COS_SAMPLES] (rows: roughness, columns: n.v)."""
    n_dot_v, roughness = _table_axes()
    table = integrate_dfg(n_dot_v[None, :], roughness[:, None])  # [R, C, 3]
    return table.permute(2, 0, 1)[None].to(device=device, dtype=dtype).contiguous()


def dfg_lookup(n_dot_v: torch.Tensor, roughness: torch.Tensor) -> torch.Tensor:
    """Bilinear lookup of (A, B, C) [..., 3] for n_dot_v [..., 1] in [0, 1] and roughness [..., 1] in
    [MIN_ROUGHNESS, 1]; differentiable in both."""
    table = dfg_table(n_dot_v.device, n_dot_v.dtype)
    x = n_dot_v * 2 - 1
    y = (roughness - MIN_ROUGHNESS) / (1 - MIN_ROUGHNESS) * 2 - 1
    grid = torch.cat((x, y), -1).reshape(1, 1, -1, 2)
    out = F.grid_sample(table, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out[0, :, 0].t().reshape(*n_dot_v.shape[:-1], 3)
