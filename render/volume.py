"""Volume rendering of a signed distance field (NeuS, Wang et al. 2021, its discrete form).

A ray's samples t_0 < ... < t_S carry SDF values f_i. The opacity of the section [t_i, t_i+1] is

    alpha_i = clamp((Phi(f_i) - Phi(f_i+1)) / Phi(f_i), 0, 1),     Phi(x) = sigmoid(sharpness * x)

which is exact for an SDF linear across the section: the density that makes the expected surface the zero
crossing, unbiased, and only where the ray goes from outside to inside (leaving a surface adds nothing),
plus NeuS's small constant (:data:`SOLID`) that makes the deep interior opaque.
Colours are composited front to back with the transmittance T_i = prod_{j < i} (1 - alpha_j). Low
sharpness spreads each surface over a wide band of the ray; high sharpness concentrates it at the zero
crossing. Everything is differentiable in the SDF values, the sharpness and the colours; the SDF's own
gradient is not needed.
"""

from __future__ import annotations

import torch

from geometry.regularizers import ray_box_segment

SOLID = 1e-5
"""NeuS's constant in the opacity: where Phi(f_i) is far below it (deep inside the surface) a section is
opaque, so a ray that reaches the interior ends there; elsewhere it changes the opacity by about 1e-5."""


def sdf_opacity(sdf: torch.Tensor, sharpness: torch.Tensor | float) -> torch.Tensor:
    """[R, S] opacity of each section between consecutive samples of [R, S + 1] SDF values along R rays
    (samples in ray order, world units), for a scalar ``sharpness`` (1 / world units)."""
    cdf = torch.sigmoid(sdf * sharpness)
    previous, following = cdf[:, :-1], cdf[:, 1:]
    return ((previous - following + SOLID) / (previous + SOLID)).clamp(0, 1)


def composite(
    opacity: torch.Tensor, colours: torch.Tensor, background: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Front-to-back compositing.

    Args:
        opacity: [R, S] per section (:func:`sdf_opacity`); colours: [R, S, C] per section;
        background: [R, C] seen through what remains (None: black).
    Returns:
        colour [R, C], coverage [R, 1] (the summed weights) and the weights [R, S] (alpha_i T_i).
    """
    transmittance = torch.cumprod(
        torch.cat((torch.ones_like(opacity[:, :1]), 1 - opacity[:, :-1]), -1), -1
    )  # T_i = prod_{j < i} (1 - alpha_j)
    weights = opacity * transmittance
    coverage = weights.sum(-1, keepdim=True)
    colour = (weights[..., None] * colours).sum(1)
    if background is not None:
        colour = colour + (1 - coverage) * background
    return colour, coverage, weights


def ray_samples(
    origins: torch.Tensor,
    directions: torch.Tensor,
    lower: torch.Tensor,
    upper: torch.Tensor,
    samples: int,
    generator: torch.Generator | None = None,
    jitter: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``samples + 1`` stratified points on each ray's segment inside the box [lower, upper], in order.

    Args:
        origins, directions: [R, 3] (directions unit length).
        jitter: [R, samples + 1] each point's place in its stratum, in [0, 1) (None: drawn from
            ``generator``).
    Returns:
        points [R, S + 1, 3] and their distances t [R, S + 1] along the rays. A ray that misses the box
        gets a zero-length segment at its entry point (every point outside the object: no opacity).
    """
    near, far = ray_box_segment(origins, directions, lower, upper)
    far = torch.maximum(far, near)
    if jitter is None:
        jitter = torch.rand(len(origins), samples + 1, generator=generator)
    u = (torch.arange(samples + 1).to(origins) + jitter.to(origins)) / (samples + 1)
    t = near[:, None] + (far - near)[:, None] * u
    return origins[:, None] + t[..., None] * directions[:, None], t
