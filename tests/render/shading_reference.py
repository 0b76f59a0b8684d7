"""Brute-force references for the shading tests: analytic environments, sphere views and a Monte-Carlo
integrator of the BRDF of :mod:`render.brdf` over an environment cube map."""

from __future__ import annotations

import math

import torch

from render.brdf import MIN_ROUGHNESS, evaluate_brdf, safe_normalize
from render.envmap import cube_directions
from render.raster import texture


def sky(d: torch.Tensor) -> torch.Tensor:
    """A smooth, non-trivial environment [..., 3]: blue-white sky over a brown ground, a warm sun blob."""
    z = d[..., 2:3]
    up = torch.clamp(z, min=0)
    sky_color = torch.tensor([0.35, 0.55, 1.0]) * (1 - up) + torch.tensor([1.0, 1.0, 1.0]) * up
    ground = torch.tensor([0.35, 0.25, 0.15]) * (0.6 + 0.4 * torch.clamp(-z, min=0))
    blend = torch.sigmoid(z * 12)
    sun_dir = safe_normalize(torch.tensor([0.6, -0.3, 0.55]))
    sun = torch.exp(((d * sun_dir).sum(-1, keepdim=True) - 1) / 0.02) * torch.tensor([4.0, 3.3, 2.3])
    return blend * sky_color + (1 - blend) * ground + sun


def cube_of(fn, size: int) -> torch.Tensor:
    """Cube map [6, S, S, 3] of an analytic environment, averaged over 4x4 samples per texel."""
    fine = fn(cube_directions(size, samples=4))
    return fine.reshape(6, size, 4, size, 4, 3).mean((2, 4))


def sphere_view(resolution: int, view_dir: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Normals [P, 3] of the visible pixels of a unit sphere seen orthographically along -view_dir, and
    the view direction [P, 3] (towards the camera)."""
    w = safe_normalize(view_dir)
    helper = torch.tensor([0.0, 0.0, 1.0]) if abs(float(w[2])) < 0.9 else torch.tensor([1.0, 0.0, 0.0])
    u = safe_normalize(torch.linalg.cross(helper, w))
    v = torch.linalg.cross(w, u)
    coords = (torch.arange(resolution) + 0.5) / resolution * 2 - 1
    y, x = torch.meshgrid(coords, coords, indexing="ij")
    r2 = x * x + y * y
    inside = r2 < 0.98
    x, y = x[inside], y[inside]
    z = torch.sqrt(1 - x * x - y * y)
    normal = x[:, None] * u + y[:, None] * v + z[:, None] * w
    return normal, w.expand_as(normal)


def _ggx_half(u1, u2, alpha):
    cos_h = torch.sqrt((1 - u1) / (1 + (alpha * alpha - 1) * u1))
    sin_h = torch.sqrt((1 - cos_h * cos_h).clamp(min=0))
    phi = 2 * math.pi * u2
    return torch.stack((sin_h * torch.cos(phi), sin_h * torch.sin(phi), cos_h), -1)


def _frame(n):
    helper = torch.where(n[:, 2:3].abs() < 0.9, torch.tensor([0.0, 0.0, 1.0]), torch.tensor([1.0, 0.0, 0.0]))
    t = safe_normalize(torch.linalg.cross(helper, n))
    return t, torch.linalg.cross(n, t)


def monte_carlo(
    cube: torch.Tensor,
    normal: torch.Tensor,
    view: torch.Tensor,
    base_color: torch.Tensor,
    roughness: float,
    metallic: float,
    samples: int = 2048,
    diffuse: str = "lambert",
    seed: int = 0,
) -> torch.Tensor:
    """Outgoing radiance [P, 3]: integral of f(l, v) L(l) (n.l) dl with L a bilinear lookup of ``cube``,
    by multiple importance sampling (GGX half vectors + cosine directions, balance heuristic)."""
    gen = torch.Generator().manual_seed(seed)
    n = safe_normalize(normal)
    v = safe_normalize(view)
    alpha = max(roughness, MIN_ROUGHNESS) ** 2
    t, b = _frame(n)
    out = torch.zeros(n.shape[0], 3, dtype=torch.float64)
    chunk = 256
    for _ in range(0, samples, chunk):
        u1 = torch.rand(n.shape[0], chunk, generator=gen, dtype=torch.float64)
        u2 = torch.rand(n.shape[0], chunk, generator=gen, dtype=torch.float64)
        pick_ggx = torch.arange(chunk) % 2 == 0
        h_local = _ggx_half(u1, u2, alpha)
        c_local = torch.stack(
            (
                torch.sqrt(u1) * torch.cos(2 * math.pi * u2),
                torch.sqrt(u1) * torch.sin(2 * math.pi * u2),
                torch.sqrt(1 - u1),
            ),
            -1,
        )
        to_world = lambda a: a[..., :1] * t[:, None] + a[..., 1:2] * b[:, None] + a[..., 2:3] * n[:, None]  # noqa: E731
        h = to_world(h_local)
        v_e = v[:, None].expand_as(h)
        l_ggx = 2 * (v_e * h).sum(-1, keepdim=True) * h - v_e
        l = torch.where(pick_ggx[None, :, None], l_ggx, to_world(c_local))
        n_e = n[:, None].expand_as(l)
        cos_l = (n_e * l).sum(-1)
        hh = safe_normalize(v_e + l)
        n_dot_h = (n_e * hh).sum(-1).clamp(min=0)
        v_dot_h = (v_e * hh).sum(-1).clamp(min=1e-12)
        d = alpha**2 / (math.pi * (n_dot_h**2 * (alpha**2 - 1) + 1) ** 2)
        pdf = 0.5 * d * n_dot_h / (4 * v_dot_h) + 0.5 * cos_l.clamp(min=0) / math.pi
        f = evaluate_brdf(
            n_e,
            v_e,
            l,
            base_color.expand(*l.shape[:-1], 3).double(),
            torch.full_like(cos_l[..., None], roughness),
            torch.full_like(cos_l[..., None], metallic),
            diffuse,
        )
        radiance = texture(cube[None].double(), l.float().reshape(1, -1, 1, 3).double(), boundary_mode="cube")
        radiance = radiance.reshape(*l.shape)
        value = f * radiance * cos_l.clamp(min=0)[..., None] / pdf.clamp(min=1e-30)[..., None]
        out += torch.where((cos_l > 0)[..., None], value, torch.zeros_like(value)).sum(1)
    return (out / samples).float()
