"""Pure-PyTorch attribute interpolation with nvdiffrast's semantics."""

from __future__ import annotations

import torch


def take_rows(src: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``src[index]`` for ``src`` [N, C] and an integer ``index`` of any shape, as [*index.shape, C].

    Uses ``index_select``, whose backward (index_add) is about twice as fast on CPU as that of
    advanced indexing (an accumulating index_put).
    """
    return src.index_select(0, index.reshape(-1)).view(*index.shape, src.shape[-1])


def covered_pixels(rast: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat indices of covered pixels [P] and their triangle ids [P] (0-based) from ``rast`` [B, H, W, 4]."""
    ident = rast.detach()[..., 3].reshape(-1).long()
    pixel = torch.nonzero(ident > 0).squeeze(1)
    return pixel, ident[pixel] - 1


def gather_vertex_values(
    values: torch.Tensor, tri: torch.Tensor, tri_id: torch.Tensor, batch: torch.Tensor
) -> torch.Tensor:
    """Per-vertex values of the given triangles, [P, 3, C].

    Args:
        values: [V, C] (range mode) or [Bv, V, C] with Bv = 1 (broadcast) or the image batch.
        tri: [F, 3] vertex indices.
        tri_id: [P] triangle ids.
        batch: [P] image batch index of each entry.
    """
    vidx = tri[tri_id].long()  # [P, 3]
    if values.dim() == 2:
        return take_rows(values, vidx)
    if values.shape[0] == 1:
        return take_rows(values[0], vidx)
    return take_rows(values.reshape(-1, values.shape[-1]), vidx + (batch * values.shape[1])[:, None])


def interpolate(
    attr: torch.Tensor,
    rast: torch.Tensor,
    tri: torch.Tensor,
    rast_db: torch.Tensor | None = None,
    diff_attrs: list[int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Interpolate vertex attributes; see :func:`render.raster.interpolate`.

    Args:
        attr: [V, C] or [B|1, V, C].
        rast: [B, H, W, 4] rasterizer output (gradients flow into its u, v channels).
        tri: [F, 3] int32.
        rast_db: [B, H, W, 4] or None.
        diff_attrs: attribute indices whose pixel derivatives are wanted (already resolved from 'all').

    Returns:
        out [B, H, W, C] (zeros where empty) and out_da [B, H, W, 2 * len(diff_attrs)] ordered
        (dA0/dX, dA0/dY, dA1/dX, ...), or an empty [B, H, W, 0] tensor.
    """
    batch, height, width, _ = rast.shape
    channels = attr.shape[-1]
    pixel, tri_id = covered_pixels(rast)
    b = torch.div(pixel, height * width, rounding_mode="floor")
    a = gather_vertex_values(attr, tri, tri_id, b)  # [P, 3, C]
    flat = take_rows(rast.reshape(-1, 4), pixel)
    u, v = flat[:, 0:1], flat[:, 1:2]
    d0, d1, a2 = a[:, 0] - a[:, 2], a[:, 1] - a[:, 2], a[:, 2]
    values = a2 + u * d0 + v * d1
    dtype = torch.promote_types(attr.dtype, rast.dtype)
    out = torch.zeros(batch * height * width, channels, dtype=dtype, device=attr.device)
    out = out.index_put((pixel,), values.to(dtype)).view(batch, height, width, channels)
    if rast_db is None or not diff_attrs:
        return out, torch.zeros(batch, height, width, 0, dtype=dtype, device=attr.device)
    sel = torch.as_tensor(diff_attrs, dtype=torch.long, device=attr.device)
    db = take_rows(rast_db.reshape(-1, 4), pixel)
    du_dx, du_dy, dv_dx, dv_dy = (db[:, i : i + 1] for i in range(4))
    d0, d1 = d0[:, sel], d1[:, sel]
    da_dx = du_dx * d0 + dv_dx * d1
    da_dy = du_dy * d0 + dv_dy * d1
    da = torch.stack((da_dx, da_dy), dim=-1).reshape(pixel.numel(), 2 * sel.numel())
    out_da = torch.zeros(batch * height * width, 2 * sel.numel(), dtype=dtype, device=attr.device)
    out_da = out_da.index_put((pixel,), da.to(dtype)).view(batch, height, width, 2 * sel.numel())
    return out, out_da
