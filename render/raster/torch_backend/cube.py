"""Cube-map addressing for the pure-PyTorch texture sampler.

Faces are +X, -X, +Y, -Y, +Z, -Z with OpenGL face coordinates. Filtering across face edges is done
by sampling *padded* faces: every level is copied into [6, S + 2, S + 2] faces whose one-texel
border holds the neighbouring faces' edge texels (found by re-projecting the border texel centre
onto the adjacent face), and whose four corners, which have no texel on the cube, hold the mean of
the three real texels of the 2 x 2 footprint that reaches them. A bilinear footprint then never
leaves its padded face, so a lookup is four plain gathers.
"""

from __future__ import annotations

from functools import lru_cache

import torch

from geometry.gather import gather_rows

# (sc, tc, ma) of each face as (component index, sign) of the direction: OpenGL cube-map rules.
_FACE_COMPONENTS = (
    ((2, -1), (1, -1), (0, 1)),  # +X: sc = -z, tc = -y, ma = x
    ((2, 1), (1, -1), (0, -1)),  # -X: sc = z, tc = -y, ma = -x
    ((0, 1), (2, 1), (1, 1)),  # +Y: sc = x, tc = z, ma = y
    ((0, 1), (2, -1), (1, -1)),  # -Y: sc = x, tc = -z, ma = -y
    ((0, 1), (1, -1), (2, 1)),  # +Z: sc = x, tc = -y, ma = z
    ((0, -1), (1, -1), (2, -1)),  # -Z: sc = -x, tc = -y, ma = -z
)


def face_of(d: torch.Tensor) -> torch.Tensor:
    """Cube face of directions d [..., 3] (ties resolved towards x, then y)."""
    a = d.abs()
    x_major = (a[..., 0] >= a[..., 1]) & (a[..., 0] >= a[..., 2])
    y_major = ~x_major & (a[..., 1] >= a[..., 2])
    axis = torch.where(x_major, 0, torch.where(y_major, 1, 2))
    negative = torch.gather(d, -1, axis[..., None])[..., 0] < 0
    return axis * 2 + negative.long()


def _component_tables(device) -> tuple[torch.Tensor, torch.Tensor]:
    table = torch.tensor(_FACE_COMPONENTS, device=device)  # [6, 3, 2]
    return table[..., 0], table[..., 1]


def face_coordinates(d: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
    """(sc, tc, ma) [P, 3] of directions d [P, 3] on the given faces [P] (differentiable in d).

    Written with selects rather than a gather: on CPU a gather's backward (scatter_add) costs several
    times more than the elementwise selects.
    """
    x, y, z = d.unbind(-1)
    axis = torch.div(face, 2, rounding_mode="floor")
    x_major, y_major = axis == 0, axis == 1
    sign = (1 - 2 * (face % 2)).to(d.dtype)  # +1 on the positive faces
    ma = torch.where(x_major, x, torch.where(y_major, y, z)) * sign
    sc = torch.where(x_major, -z * sign, torch.where(y_major, x, x * sign))
    tc = torch.where(y_major, z * sign, -y)
    return torch.stack((sc, tc, ma), -1)


def cube_coords(d: torch.Tensor):
    """Face [P], face coordinates s, t in [0, 1] [P] and validity [P] of directions d [P, 3]."""
    valid = (d.detach() != 0).any(-1) & torch.isfinite(d.detach()).all(-1)
    face = face_of(d.detach())
    sc, tc, ma = face_coordinates(d, face).unbind(-1)
    ma = torch.where(valid, ma, torch.ones_like(ma))
    return face, 0.5 * (sc / ma + 1), 0.5 * (tc / ma + 1), valid


def face_direction(face: torch.Tensor, sc: torch.Tensor, tc: torch.Tensor) -> torch.Tensor:
    """Directions [P, 3] (not normalized) of face coordinates sc, tc in [-1, 1] on faces [P]."""
    index, sign = _component_tables(face.device)
    local = torch.stack((sc, tc, torch.ones_like(sc)), -1) * sign[face].to(sc.dtype)
    return torch.zeros_like(local).scatter(1, index[face], local)


def _wrap(face: torch.Tensor, xi: torch.Tensor, yi: torch.Tensor, size: int):
    """Face and texel of taps (xi, yi) one texel off a face edge (not a corner), via the texel centre."""
    sc = (2 * xi + 1).to(torch.float64) / size - 1
    tc = (2 * yi + 1).to(torch.float64) / size - 1
    d = face_direction(face, sc, tc)
    target = face_of(d)
    nsc, ntc, nma = face_coordinates(d, target).unbind(-1)
    new_x = torch.floor((nsc / nma + 1) * 0.5 * size).long().clamp(0, size - 1)
    new_y = torch.floor((ntc / nma + 1) * 0.5 * size).long().clamp(0, size - 1)
    return target, new_x, new_y


@lru_cache(maxsize=64)
def padding_tables(size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gather tables that turn a flat [6 * S * S] level into padded [6 * (S + 2)^2] faces.

    Returns:
        source: [6 * (S + 2)^2] flat source texel of every padded texel (corners: any, overwritten).
        corner_pos: [24] padded positions of the face corners.
        corner_src: [24, 3] the three real texels averaged into each corner.
    """
    face, yy, xx = torch.meshgrid(
        torch.arange(6), torch.arange(-1, size + 1), torch.arange(-1, size + 1), indexing="ij"
    )
    face, yy, xx = face.reshape(-1), yy.reshape(-1), xx.reshape(-1)
    corner = ((xx < 0) | (xx >= size)) & ((yy < 0) | (yy >= size))
    source = resolve_at(face, torch.where(corner, xx.clamp(0, size - 1), xx), yy, size)
    corner_pos = torch.nonzero(corner).squeeze(1)
    cf, cx, cy = face[corner_pos], xx[corner_pos], yy[corner_pos]
    inner_x, inner_y = cx.clamp(0, size - 1), cy.clamp(0, size - 1)
    corner_src = torch.stack(
        [resolve_at(cf, tx, ty, size) for tx, ty in ((inner_x, cy), (cx, inner_y), (inner_x, inner_y))], 1
    )
    return source.to(device), corner_pos.to(device), corner_src.to(device)


def resolve_at(face: torch.Tensor, x: torch.Tensor, y: torch.Tensor, size: int) -> torch.Tensor:
    """Flat texel index of taps (x, y) that may lie one texel off a face edge (not a corner)."""
    off = (x < 0) | (x >= size) | (y < 0) | (y >= size)
    face, cx, cy = face.clone(), x.clamp(0, size - 1), y.clamp(0, size - 1)
    if bool(off.any()):
        face[off], cx[off], cy[off] = _wrap(face[off], x[off], y[off], size)
    return (face * size + cy) * size + cx


def pad_faces(level: torch.Tensor) -> torch.Tensor:
    """[Bt, 6, S, S, C] -> padded faces flattened to [Bt, 6 * (S + 2)^2, C] (differentiable)."""
    batch, _, size, _, channels = level.shape
    flat = level.reshape(-1, channels)
    source, corner_pos, corner_src = padding_tables(size, level.device)
    offsets = torch.arange(batch, device=level.device)[:, None] * (6 * size * size)
    padded = gather_rows(flat, (source[None] + offsets).reshape(-1)).view(batch, -1, channels)
    corners = gather_rows(flat, (corner_src.reshape(1, -1) + offsets).reshape(-1))
    corners = corners.view(batch, -1, 3, channels).mean(2)
    return padded.index_copy(1, corner_pos, corners)
