"""Disney-style metallic/roughness BRDF: GGX (Trowbridge-Reitz) specular with height-correlated Smith
masking-shadowing and Schlick Fresnel, plus a Lambert or Burley diffuse lobe.

Conventions: directions are [..., 3] and point *away* from the surface (normal n, towards the viewer
v, towards the light l); scalar material channels are [..., 1]. Roughness is perceptual, alpha =
roughness^2, and is clamped to [MIN_ROUGHNESS, 1]; n.v is clamped to at least MIN_COSINE. Every
function is safe for back-facing or zero-length normals, grazing angles and roughness 0: values and
gradients stay finite (a zero-length vector normalizes to zero).

The point evaluation here is the reference; :mod:`render.light` evaluates the same model with the
split-sum approximation.
"""

from __future__ import annotations

import math

import torch

MIN_ROUGHNESS = 0.08
"""Smallest perceptual roughness (alpha = 0.0064), as in nvdiffrec; keeps the GGX peak finite."""
MIN_COSINE = 1e-4
"""Smallest n.v used in shading: grazing and back-facing views are treated as nearly grazing."""
DIELECTRIC_F0 = 0.04
"""Normal-incidence reflectance of non-metals."""
DIFFUSE_MODELS = ("lambert", "burley")


def dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[..., 3] x [..., 3] -> [..., 1]"""
    return (a * b).sum(-1, keepdim=True)


def safe_normalize(v: torch.Tensor, eps: float = 1e-20) -> torch.Tensor:
    """v / |v| for [..., 3]; zero vectors give zero with finite gradients."""
    return v * torch.rsqrt(dot(v, v).clamp(min=eps))


def reflect(v: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
    """Mirror direction of v about n: 2 (n.v) n - v. [..., 3]"""
    return 2 * dot(n, v) * n - v


def clamp_roughness(roughness: torch.Tensor) -> torch.Tensor:
    return roughness.clamp(MIN_ROUGHNESS, 1.0)


def specular_f0(base_color: torch.Tensor, metallic: torch.Tensor) -> torch.Tensor:
    """Normal-incidence reflectance: lerp(0.04, base colour, metallic). [..., 3]"""
    return DIELECTRIC_F0 + (base_color - DIELECTRIC_F0) * metallic


def diffuse_color(base_color: torch.Tensor, metallic: torch.Tensor) -> torch.Tensor:
    """Albedo of the diffuse lobe: base colour (1 - metallic). [..., 3]"""
    return base_color * (1 - metallic)


def ggx_ndf(n_dot_h: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """GGX normal distribution D(h) = alpha^2 / (pi ((n.h)^2 (alpha^2 - 1) + 1)^2), normalized so that
    the integral of D(h) (n.h) over the hemisphere is 1."""
    a2 = alpha * alpha
    cos2 = n_dot_h.clamp(0, 1) ** 2
    return a2 / (math.pi * (cos2 * (a2 - 1) + 1) ** 2)


def smith_visibility(n_dot_v: torch.Tensor, n_dot_l: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Height-correlated Smith term folded with the BRDF's denominator: V = G2 / (4 (n.l) (n.v))."""
    a2 = alpha * alpha
    nv, nl = n_dot_v.clamp(min=MIN_COSINE), n_dot_l.clamp(min=0)
    lambda_v = nl * torch.sqrt(nv * nv * (1 - a2) + a2)
    lambda_l = nv * torch.sqrt(nl * nl * (1 - a2) + a2)
    return 0.5 / (lambda_v + lambda_l)


def fresnel_schlick(f0: torch.Tensor, v_dot_h: torch.Tensor) -> torch.Tensor:
    """F = F0 + (1 - F0) (1 - v.h)^5."""
    return f0 + (1 - f0) * (1 - v_dot_h.clamp(0, 1)) ** 5


def burley_factor(
    n_dot_l: torch.Tensor, n_dot_v: torch.Tensor, l_dot_h: torch.Tensor, roughness: torch.Tensor
) -> torch.Tensor:
    """Burley's retro-reflection factor (Lambert = 1): (1 + (F90 - 1)(1 - n.l)^5)(1 + (F90 - 1)(1 - n.v)^5)
    with F90 = 0.5 + 2 roughness (l.h)^2."""
    f90 = 0.5 + 2 * roughness * l_dot_h.clamp(0, 1) ** 2
    light = 1 + (f90 - 1) * (1 - n_dot_l.clamp(0, 1)) ** 5
    view = 1 + (f90 - 1) * (1 - n_dot_v.clamp(0, 1)) ** 5
    return light * view


def evaluate_brdf(
    normal: torch.Tensor,
    view: torch.Tensor,
    light: torch.Tensor,
    base_color: torch.Tensor,
    roughness: torch.Tensor,
    metallic: torch.Tensor,
    diffuse: str = "lambert",
) -> torch.Tensor:
    """BRDF value f(l, v) (without the cosine), zero for light below the horizon.

    Args:
        normal, view, light: [..., 3] directions away from the surface (need not be normalized).
        base_color: [..., 3] linear RGB; roughness, metallic: [..., 1].
        diffuse: "lambert" or "burley".
    Returns:
        [..., 3]
    """
    if diffuse not in DIFFUSE_MODELS:
        raise ValueError(f"diffuse: expected one of {', '.join(DIFFUSE_MODELS)}, got {diffuse!r}")
    n, v, l = safe_normalize(normal), safe_normalize(view), safe_normalize(light)
    h = safe_normalize(v + l)
    n_dot_v = dot(n, v).clamp(min=MIN_COSINE)
    n_dot_l = dot(n, l)
    rough = clamp_roughness(roughness)
    alpha = rough * rough
    specular = (
        ggx_ndf(dot(n, h), alpha)
        * smith_visibility(n_dot_v, n_dot_l, alpha)
        * fresnel_schlick(specular_f0(base_color, metallic), dot(v, h))
    )
    lobe = diffuse_color(base_color, metallic) / math.pi
    if diffuse == "burley":
        lobe = lobe * burley_factor(n_dot_l, n_dot_v, dot(l, h), rough)
    return (specular + lobe) * (n_dot_l > 0).to(lobe.dtype)
