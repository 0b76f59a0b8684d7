"""Pure-PyTorch filtered texture sampling with nvdiffrast's semantics.

Texel (i, j) of a level of size H x W has its centre at uv = ((j + 0.5)/W, (i + 0.5)/H): u runs
along the width, v along the height, row 0 at v = 0. Linear filtering blends the 2 x 2 texels
around u*W - 0.5, v*H - 0.5. Mip levels are 2 x 2 box filters of the previous level (a side of 1
stays 1); the level of detail is isotropic, from the major axis of the pixel footprint:
``lod = 0.5 * log2(lambda_max(J^T J)) + bias`` with J the texel-space Jacobian of uv. Cube maps
([6, S, S] faces +X, -X, +Y, -Y, +Z, -Z, OpenGL face orientation) are filtered across face edges:
a tap that falls off a face is re-projected onto the adjacent face, and the missing texel at a
cube corner is replaced by the mean of the three real ones.

All of it is plain differentiable torch, so gradients reach the texture (and, through the box
filters, the base level), uv, uv_da and the mip-level bias.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from geometry.gather import weighted_gather

from .cube import cube_coords, face_coordinates, pad_faces


@dataclass
class TextureMip:
    """A prebuilt mipmap stack: levels 1.. (the base level stays the ``tex`` argument)."""

    levels: list[torch.Tensor]
    cube: bool


def mip_sizes(height: int, width: int, max_mip_level: int | None) -> list[tuple[int, int]]:
    """Sizes of levels 0..N; raises ValueError when a level cannot be halved."""
    sizes = [(height, width)]
    while (height > 1 or width > 1) and (max_mip_level is None or len(sizes) - 1 < max_mip_level):
        if (height > 1 and height % 2) or (width > 1 and width % 2):
            raise ValueError(
                f"tex: mip level {len(sizes) - 1} is {height}x{width} and cannot be halved by a 2x2 box "
                f"filter; use power-of-two texture sizes or pass max_mip_level={len(sizes) - 1}"
            )
        height, width = max(1, height // 2), max(1, width // 2)
        sizes.append((height, width))
    return sizes


def downsample(level: torch.Tensor) -> torch.Tensor:
    """2 x 2 box filter of [B, F, h, w, C] (a side of 1 stays 1)."""
    b, f, h, w, c = level.shape
    if h > 1 and w > 1:
        # avg_pool2d on a channels-last view: no copy, and 2-3x faster (with its backward) on the CPU than a
        # mean over a [.., 2, .., 2, ..] reshape; the same values up to rounding.
        channels_first = level.reshape(b * f, h, w, c).permute(0, 3, 1, 2)
        pooled = torch.nn.functional.avg_pool2d(channels_first, 2)
        return pooled.permute(0, 2, 3, 1).reshape(b, f, h // 2, w // 2, c)
    if h > 1:
        return level.reshape(b, f, h // 2, 2, 1, c).mean(3)
    return level.reshape(b, f, 1, w // 2, 2, c).mean(4)


def build_mip_levels(tex: torch.Tensor, max_mip_level: int | None, cube: bool) -> list[torch.Tensor]:
    """Levels 1.. of ``tex`` ([B, H, W, C] or [B, 6, S, S, C]) in the same layout as ``tex``."""
    faces = tex if cube else tex[:, None]
    levels = []
    for _ in mip_sizes(faces.shape[2], faces.shape[3], max_mip_level)[1:]:
        faces = downsample(faces)
        levels.append(faces if cube else faces[:, 0])
    return levels


def texture_construct_mip(
    tex: torch.Tensor, max_mip_level: int | None = None, cube_mode: bool = False
) -> TextureMip:
    """Prebuild the mipmap stack of a texture known to stay constant (no gradients flow through it)."""
    with torch.no_grad():
        return TextureMip(build_mip_levels(tex.detach(), max_mip_level, cube_mode), cube_mode)


def texture(
    tex: torch.Tensor,
    uv: torch.Tensor,
    uv_da: torch.Tensor | None,
    mip_level_bias: torch.Tensor | None,
    mip: TextureMip | list[torch.Tensor] | None,
    filter_mode: str,
    boundary_mode: str,
    max_mip_level: int | None,
) -> torch.Tensor:
    """Sample ``tex`` at ``uv``; see :func:`render.raster.texture`. ``filter_mode`` is already resolved.

    Args:
        tex: [Bt, H, W, C] or, with boundary_mode 'cube', [Bt, 6, S, S, C]; Bt = 1 or B.
        uv: [B, h, w, 2] (or [B, h, w, 3] cube directions).
        uv_da: [B, h, w, 4] (or 6) pixel derivatives of uv, or None.
        mip_level_bias: [B, h, w] or None.
    Returns:
        [B, h, w, C]
    """
    cube = boundary_mode == "cube"
    faces = tex if cube else tex[:, None]  # [Bt, F, H, W, C]
    mipmapped = filter_mode in ("linear-mipmap-nearest", "linear-mipmap-linear")
    levels = [faces]
    if mipmapped:
        if mip is None:
            extra = build_mip_levels(tex, max_mip_level, cube)
        else:
            extra = list(mip.levels if isinstance(mip, TextureMip) else mip)
            if max_mip_level is not None:
                extra = extra[:max_mip_level]
        levels += [lvl if cube else lvl[:, None] for lvl in extra]
    batch, out_h, out_w = uv.shape[:3]
    count = batch * out_h * out_w
    channels = tex.shape[-1]
    coords = uv.reshape(count, -1)
    pix_batch = torch.arange(batch, device=uv.device).repeat_interleave(out_h * out_w)
    tex_batch = pix_batch if faces.shape[0] > 1 else torch.zeros_like(pix_batch)

    if cube:
        face, s, t, valid = cube_coords(coords)
    else:
        face = torch.zeros(count, dtype=torch.long, device=uv.device)
        s, t, valid = coords[:, 0], coords[:, 1], None
    layout = _Layout(levels, cube)

    if not mipmapped:
        index, weights = _taps(
            layout, tex_batch, face, s, t, torch.zeros_like(face), filter_mode, boundary_mode
        )
    else:
        lod = _level_of_detail(coords, uv_da, mip_level_bias, levels[0], cube, face, count)
        lod = lod.clamp(0, len(levels) - 1)
        if filter_mode == "linear-mipmap-nearest":
            lvl = torch.floor(lod.detach() + 0.5).long().clamp(max=len(levels) - 1)
            index, weights = _taps(layout, tex_batch, face, s, t, lvl, "linear", boundary_mode)
        else:
            lvl0 = torch.floor(lod.detach()).long().clamp(max=len(levels) - 1)
            lvl1 = (lvl0 + 1).clamp(max=len(levels) - 1)
            frac = (lod - lvl0.to(lod.dtype))[:, None]
            index0, weights0 = _taps(layout, tex_batch, face, s, t, lvl0, "linear", boundary_mode)
            index1, weights1 = _taps(layout, tex_batch, face, s, t, lvl1, "linear", boundary_mode)
            index = torch.cat((index0, index1), 1)
            weights = torch.cat((weights0 * (1 - frac), weights1 * frac), 1)
    if valid is not None:
        weights = weights * valid[:, None].to(weights.dtype)
    out = weighted_gather(layout.buffer, index, weights)  # [P, C]
    return out.reshape(batch, out_h, out_w, channels)


class _Layout:
    """All mip levels of all faces flattened into one [Bt * total, C] buffer for single-gather lookups.

    Cube levels are stored as padded faces (see :mod:`.cube`), so ``heights``/``widths`` hold S + 2
    while ``sizes`` holds the face size S.
    """

    def __init__(self, levels: list[torch.Tensor], cube: bool):
        base = levels[0]
        device = base.device
        self.faces = base.shape[1]
        if cube:
            flat = [pad_faces(lvl) for lvl in levels]
        else:
            flat = [lvl.reshape(base.shape[0], -1, base.shape[-1]) for lvl in levels]
        self.total = sum(f.shape[1] for f in flat)
        self.buffer = (flat[0] if len(flat) == 1 else torch.cat(flat, 1)).reshape(-1, base.shape[-1])
        pad = 2 if cube else 0
        sizes = [(lvl.shape[2], lvl.shape[3]) for lvl in levels]
        counts = [self.faces * (h + pad) * (w + pad) for h, w in sizes]
        offsets = [sum(counts[:k]) for k in range(len(counts))]
        self.sizes = torch.tensor([h for h, _ in sizes], device=device)
        self.heights = torch.tensor([h + pad for h, _ in sizes], device=device)
        self.widths = torch.tensor([w + pad for _, w in sizes], device=device)
        self.offsets = torch.tensor(offsets, device=device)


def _taps(layout: _Layout, tex_batch, face, s, t, lvl, mode: str, boundary: str):
    """Buffer rows [P, n] and weights [P, n] of every pixel's lookup at its own level ``lvl`` [P]."""
    h, w = layout.heights[lvl], layout.widths[lvl]
    base = tex_batch * layout.total + layout.offsets[lvl] + face * h * w
    if boundary == "cube":
        return _cube_taps(base, layout.sizes[lvl], w, s, t, mode)
    if mode == "nearest":
        xi = torch.floor(s.detach() * w).long()
        yi = torch.floor(t.detach() * h).long()
        xi, yi, ok = _resolve_boundary(xi, yi, w, h, boundary)
        weights = torch.ones_like(s)[:, None] if ok is None else ok[:, None].to(s.dtype)
        return (base + yi * w + xi)[:, None], weights
    x = s * w.to(s.dtype) - 0.5
    y = t * h.to(t.dtype) - 0.5
    x0, y0 = torch.floor(x.detach()), torch.floor(y.detach())
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    x0, y0 = x0.long(), y0.long()
    # Resolve the two columns and two rows once per pixel, then combine them into four taps.
    cols, col_ok = _resolve_axis(torch.stack((x0, x0 + 1), 1), w[:, None], boundary)
    rows, row_ok = _resolve_axis(torch.stack((y0, y0 + 1), 1), h[:, None], boundary)
    row_start = base[:, None] + rows * w[:, None]  # [P, 2]
    # Taps in the order (x0, y0), (x1, y0), (x0, y1), (x1, y1), matching the weights below.
    index = (row_start[:, :, None] + cols[:, None, :]).reshape(-1, 4)
    weights = _bilinear_weights(fx, fy)
    if col_ok is not None:
        weights = weights * (row_ok[:, :, None] & col_ok[:, None, :]).reshape(-1, 4).to(weights.dtype)
    return index, weights


def _cube_taps(base, size, stride, s, t, mode: str):
    """Taps on padded cube faces: texel i of a face is padded column i + 1."""
    if mode == "nearest":
        xi = torch.minimum(torch.floor(s.detach() * size).long().clamp(min=0), size - 1) + 1
        yi = torch.minimum(torch.floor(t.detach() * size).long().clamp(min=0), size - 1) + 1
        return (base + yi * stride + xi)[:, None], torch.ones_like(s)[:, None]
    x = s * size.to(s.dtype) + 0.5
    y = t * size.to(t.dtype) + 0.5
    x0 = torch.minimum(torch.floor(x.detach()).clamp(min=0), size.to(x.dtype))
    y0 = torch.minimum(torch.floor(y.detach()).clamp(min=0), size.to(y.dtype))
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    first = base + y0.long() * stride + x0.long()
    index = first[:, None] + torch.stack(
        (torch.zeros_like(stride), torch.ones_like(stride), stride, stride + 1), 1
    )
    weights = _bilinear_weights(fx, fy)
    return index, weights


def _bilinear_weights(fx: torch.Tensor, fy: torch.Tensor) -> torch.Tensor:
    """[P, 4] weights of the taps (x0, y0), (x1, y0), (x0, y1), (x1, y1) from fractions fx, fy [P, 1]."""
    return torch.cat(((1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy), dim=1)


def _resolve_axis(index, size, boundary: str):
    """Map texel indices along one axis into [0, size); returns (index, in-range mask or None)."""
    if boundary == "wrap":
        return torch.remainder(index, size), None
    inside = (index >= 0) & (index < size) if boundary == "zero" else None
    # 'clamp'
    return torch.minimum(index.clamp(min=0), size - 1), inside


def _resolve_boundary(xi, yi, w, h, boundary: str):
    """Map tap indices into the texture; returns (xi, yi, in-range mask or None)."""
    xi, x_ok = _resolve_axis(xi, w, boundary)
    yi, y_ok = _resolve_axis(yi, h, boundary)
    return xi, yi, None if x_ok is None else x_ok & y_ok


def _level_of_detail(coords, uv_da, bias, base, cube: bool, face, count) -> torch.Tensor:
    """Per-pixel mip level (before clamping) from uv_da and/or the bias; [P]."""
    dtype = coords.dtype
    lod = torch.zeros(count, dtype=dtype, device=coords.device)
    if uv_da is not None:
        da = uv_da.reshape(count, -1)
        if cube:
            sc, tc, ma = face_coordinates(coords, face).unbind(-1)
            dx = face_coordinates(da[:, 0::2], face)  # d(sc, tc, ma)/dX, [P, 3]
            dy = face_coordinates(da[:, 1::2], face)
            ma = torch.where(ma == 0, torch.ones_like(ma), ma)
            scale = 0.5 * base.shape[3]
            dsdx = scale * (dx[:, 0] * ma - sc * dx[:, 2]) / (ma * ma)
            dsdy = scale * (dy[:, 0] * ma - sc * dy[:, 2]) / (ma * ma)
            dtdx = scale * (dx[:, 1] * ma - tc * dx[:, 2]) / (ma * ma)
            dtdy = scale * (dy[:, 1] * ma - tc * dy[:, 2]) / (ma * ma)
        else:
            width, height = base.shape[3], base.shape[2]
            dsdx, dsdy = da[:, 0] * width, da[:, 1] * width
            dtdx, dtdy = da[:, 2] * height, da[:, 3] * height
        a = dsdx * dsdx + dsdy * dsdy
        c = dtdx * dtdx + dtdy * dtdy
        b = dsdx * dtdx + dsdy * dtdy
        disc = ((a - c) ** 2 + 4 * b * b).clamp(min=1e-30)
        major = (0.5 * (a + c + torch.sqrt(disc))).clamp(min=1e-30)
        lod = 0.5 * torch.log2(major)
    if bias is not None:
        lod = lod + bias.reshape(count).to(dtype)
    return lod
