"""Order-2 spherical harmonics (9 real coefficients) for diffuse irradiance (Ramamoorthi & Hanrahan 2001,
"An Efficient Representation for Irradiance Environment Maps").

The cosine lobe's SH spectrum falls off fast (A0 = pi, A1 = 2pi/3, A2 = pi/4, A3 = 0, A4 = -pi/24), so
projecting the radiance onto l <= 2 reproduces irradiance with about 1% mean error for any lighting.
"""

from __future__ import annotations

import math

import torch

_COSINE_LOBE = (1.0, 2.0 / 3.0, 2.0 / 3.0, 2.0 / 3.0, 0.25, 0.25, 0.25, 0.25, 0.25)
"""A_l / pi for each coefficient: irradiance / pi = sum_lm (A_l / pi) L_lm Y_lm."""


def sh_basis(d: torch.Tensor) -> torch.Tensor:
    """Real SH basis Y_lm (l <= 2) of unit directions d [..., 3] -> [..., 9]."""
    x, y, z = d.unbind(-1)
    return torch.stack(
        (
            torch.full_like(x, 0.5 * math.sqrt(1 / math.pi)),
            math.sqrt(3 / (4 * math.pi)) * y,
            math.sqrt(3 / (4 * math.pi)) * z,
            math.sqrt(3 / (4 * math.pi)) * x,
            0.5 * math.sqrt(15 / math.pi) * x * y,
            0.5 * math.sqrt(15 / math.pi) * y * z,
            0.25 * math.sqrt(5 / math.pi) * (3 * z * z - 1),
            0.5 * math.sqrt(15 / math.pi) * x * z,
            0.25 * math.sqrt(15 / math.pi) * (x * x - y * y),
        ),
        -1,
    )


def project(radiance: torch.Tensor, directions: torch.Tensor, solid_angles: torch.Tensor) -> torch.Tensor:
    """SH coefficients [9, C] of radiance [N, C] sampled in directions [N, 3] with weights [N] (sr)."""
    basis = sh_basis(directions) * solid_angles[:, None]  # [N, 9]
    return basis.t() @ radiance


def mean_cosine_radiance(coeffs: torch.Tensor, normal: torch.Tensor) -> torch.Tensor:
    """Irradiance / pi (the cosine-weighted mean radiance over the hemisphere around ``normal``) from SH
    coefficients [9, C], for unit normals [..., 3]; clamped at 0 against ringing. Returns [..., C]."""
    lobe = torch.tensor(_COSINE_LOBE, dtype=coeffs.dtype, device=coeffs.device)
    basis = sh_basis(normal)
    flat = basis.reshape(-1, 9) @ (coeffs * lobe[:, None])
    return flat.reshape(*normal.shape[:-1], coeffs.shape[-1]).clamp(min=0)
