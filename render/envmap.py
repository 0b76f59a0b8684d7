"""Environment-map geometry: cube-map texel directions and solid angles, the lat-long convention, and
conversions between the two.

Cube maps are [6, S, S, C] with faces +X, -X, +Y, -Y, +Z, -Z in OpenGL face coordinates (texel (i, j)
of a face at s = (j + 0.5)/S, t = (i + 0.5)/S), as :func:`render.raster.texture` reads them.
Lat-long maps are [H, 2H, C], top row first, in Blender's convention for a Z-up world (docs/design.md,
"Environment maps"): row i looks at polar angle theta = pi (i + 0.5)/H from world +Z and column j, at
u = (j + 0.5)/W, at azimuth phi = pi (1 - 2u) measured from +X towards +Y. The centre column looks along
+X, u = 1/4 along +Y, the edges along -X (Cycles: u = 1/2 - atan2(d_y, d_x) / 2 pi).
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F

from render.raster import texture
from render.raster.torch_backend.cube import face_direction


def _face_grid(size: int, samples: int, device, dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Face index, sc, tc ([6 * S*k * S*k]) of `samples` x `samples` points per texel, texel-major."""
    fine = size * samples
    centres = (2 * torch.arange(fine, device=device, dtype=dtype) + 1) / fine - 1
    tc, sc = torch.meshgrid(centres, centres, indexing="ij")
    face = torch.arange(6, device=device).repeat_interleave(fine * fine)
    return face, sc.reshape(-1).repeat(6), tc.reshape(-1).repeat(6)


@lru_cache(maxsize=32)
def cube_directions(size: int, device=None, dtype=torch.float32, samples: int = 1) -> torch.Tensor:
    """Unit directions of cube texel centres, [6, S, S, 3] (or [6, S*k, S*k, 3] sub-texel samples).

    Cached (the light's prefilter asks for the same grids every step): do not modify the result.
    """
    face, sc, tc = _face_grid(size, samples, device, dtype)
    d = face_direction(face, sc, tc)
    d = d / d.norm(dim=-1, keepdim=True)
    fine = size * samples
    return d.reshape(6, fine, fine, 3)


@lru_cache(maxsize=32)
def cube_solid_angles(size: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Exact solid angle of every cube texel, [6, S, S]; they sum to 4 pi. Cached: do not modify."""
    edges = torch.linspace(-1, 1, size + 1, device=device, dtype=torch.float64)

    def corner(x, y):  # solid angle of the face region [0, x] x [0, y] at unit distance
        return torch.atan2(x * y, torch.sqrt(x * x + y * y + 1))

    x0, x1 = edges[None, :-1], edges[None, 1:]
    y0, y1 = edges[:-1, None], edges[1:, None]
    area = corner(x1, y1) - corner(x0, y1) - corner(x1, y0) + corner(x0, y0)
    return area.to(dtype).expand(6, size, size).contiguous()


def latlong_directions(
    height: int, width: int | None = None, device=None, dtype=torch.float32
) -> torch.Tensor:
    """Unit directions of lat-long pixel centres, [H, W, 3] (W = 2H by default)."""
    width = 2 * height if width is None else width
    theta = math.pi * (torch.arange(height, device=device, dtype=dtype) + 0.5) / height
    phi = math.pi * (1 - 2 * (torch.arange(width, device=device, dtype=dtype) + 0.5) / width)
    st, ct = torch.sin(theta)[:, None], torch.cos(theta)[:, None]
    return torch.stack((st * torch.cos(phi)[None], st * torch.sin(phi)[None], ct.expand(height, width)), -1)


def direction_to_latlong_uv(d: torch.Tensor) -> torch.Tensor:
    """Lat-long texture coordinates (u, v) = (1/2 - phi / 2pi mod 1, theta / pi) in [0, 1] of directions
    [..., 3]; v = 0 is the top row (+Z)."""
    d = d / d.norm(dim=-1, keepdim=True).clamp(min=1e-20)
    theta = torch.acos(d[..., 2].clamp(-1, 1))
    u = torch.remainder(0.5 - torch.atan2(d[..., 1], d[..., 0]) / (2 * math.pi), 1.0)
    return torch.stack((u, theta / math.pi), -1)


def sample_latlong(latlong: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """Bilinear lookup of a lat-long map [H, W, C] in directions d [..., 3] (wraps in azimuth,
    clamps at the poles); differentiable in the map. Returns [..., C]."""
    height, width, channels = latlong.shape
    uv = direction_to_latlong_uv(d).reshape(1, 1, -1, 2)
    # One wrapped column on each side, so grid_sample's border clamp only acts at the poles.
    padded = torch.cat((latlong[:, -1:], latlong, latlong[:, :1]), 1).permute(2, 0, 1)[None]
    x = (uv[..., 0] * width + 1) / (width + 2) * 2 - 1
    y = uv[..., 1] * 2 - 1
    out = F.grid_sample(
        padded, torch.stack((x, y), -1), mode="bilinear", padding_mode="border", align_corners=False
    )
    return out[0, :, 0].t().reshape(*d.shape[:-1], channels)


def latlong_to_cube(
    latlong: torch.Tensor, size: int, samples: int = 2, rotation: torch.Tensor | None = None
) -> torch.Tensor:
    """Resample a lat-long map [H, W, C] into a cube map [6, S, S, C] (mean of samples^2 bilinear
    lookups per texel). ``rotation`` [3, 3] maps the cube's frame to the lat-long's, as in
    :func:`cube_to_latlong` (so the two are inverse to each other)."""
    d = cube_directions(size, latlong.device, latlong.dtype, samples)
    if rotation is not None:
        d = d @ rotation.to(d).T  # lat-long direction = rotation (cube direction)
    fine = sample_latlong(latlong, d)  # [6, S*k, S*k, C]
    channels = latlong.shape[-1]
    return fine.reshape(6, size, samples, size, samples, channels).mean((2, 4))


def cube_to_latlong(
    cube: torch.Tensor, height: int, samples: int = 2, rotation: torch.Tensor | None = None
) -> torch.Tensor:
    """Resample a cube map [6, S, S, C] into a lat-long map [H, 2H, C] (mean of samples^2 bilinear
    cube lookups per pixel). ``rotation`` [3, 3] maps the cube's frame to the lat-long's (the map then
    shows the light with the rotated +Z as its pole)."""
    fine_h = height * samples
    d = latlong_directions(fine_h, 2 * fine_h, cube.device, cube.dtype)
    if rotation is not None:
        d = d @ rotation.to(d)  # cube direction = rotation^T (lat-long direction)
    out = texture(cube[None], d[None].contiguous(), filter_mode="linear", boundary_mode="cube")[0]
    channels = cube.shape[-1]
    return out.reshape(height, samples, 2 * height, samples, channels).mean((1, 3))
