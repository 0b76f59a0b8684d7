"""Pure-PyTorch analytic anti-aliasing (Laine et al. 2020, "Modular Primitives for High-Performance
Differentiable Rendering", section on antialiasing).

For every pair of horizontally or vertically adjacent pixels with different triangle ids, the
triangle in front (the one with smaller z/w; the only one if the other pixel is empty) is examined:
if the segment between the two pixel centres leaves that triangle through a *silhouette* edge (a
boundary edge, or one whose neighbouring triangle folds behind it) that is oriented across the
segment (mostly vertical for horizontal pairs, mostly horizontal for vertical pairs), the edge
crosses the segment at a fraction t from the front pixel's centre. The front triangle is then taken
to cover the segment up to t, so one pixel of the pair is blended towards the other:

    t > 1/2:  other pixel  += (t - 1/2) * (front colour - other colour)
    t < 1/2:  front pixel  += (1/2 - t) * (other colour - front colour)

This is continuous as the edge sweeps across pixel centres, and t is a smooth function of the two
edge vertices' clip-space positions, which is where the silhouette gradients come from. All
discrete choices are made without autograd; the blend for the chosen pairs is then recomputed with
plain differentiable torch, so gradients are the exact derivative of the forward formula.
"""

from __future__ import annotations

import torch

from .interpolate import gather_vertex_values, take_rows


def construct_topology(tri: torch.Tensor) -> torch.Tensor:
    """Opposite-vertex table [F, 3] int64: for edge k of triangle f, (tri[f, k], tri[f, (k+1) % 3]),
    the vertex of the neighbouring triangle across it that is not on the edge; -1 on boundary and
    non-manifold edges (shared by more than two triangles), which always count as silhouettes."""
    tri = tri.long()
    faces = tri.shape[0]
    a = tri
    b = tri.roll(-1, dims=1)
    opposite = tri.roll(-2, dims=1)
    lo, hi = torch.minimum(a, b).reshape(-1), torch.maximum(a, b).reshape(-1)
    key = lo * (int(tri.max()) + 1 if faces else 1) + hi
    order = torch.argsort(key, stable=True)
    sorted_key = key[order]
    new_run = torch.ones_like(sorted_key, dtype=torch.bool)
    new_run[1:] = sorted_key[1:] != sorted_key[:-1]
    run_id = torch.cumsum(new_run.long(), 0) - 1
    run_len = torch.bincount(run_id)
    manifold = run_len[run_id] == 2
    # In a run of exactly two half-edges, each one's partner is the other.
    run_start = torch.nonzero(new_run).squeeze(1)[run_id]
    position = torch.arange(order.numel(), device=tri.device)
    partner_pos = torch.where(position == run_start, run_start + 1, run_start)
    partner = order[partner_pos.clamp(max=order.numel() - 1)]
    result = torch.full((faces * 3,), -1, dtype=torch.long, device=tri.device)
    result[order[manifold]] = opposite.reshape(-1)[partner[manifold]]
    return result.view(faces, 3)


class _ScaleGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale):
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.scale, None


def antialias(
    color: torch.Tensor,
    rast: torch.Tensor,
    pos: torch.Tensor,
    tri: torch.Tensor,
    topology: torch.Tensor,
    pos_gradient_boost: float = 1.0,
) -> torch.Tensor:
    """Anti-alias silhouette edges; see :func:`render.raster.antialias`.

    Args:
        color: [B, H, W, C].
        rast: [B, H, W, 4] rasterizer output for the same geometry.
        pos: [B, V, 4] or [V, 4] clip-space positions.
        tri: [F, 3].
        topology: [F, 3] from :func:`construct_topology`.
    Returns:
        [B, H, W, C]
    """
    batch, height, width, channels = color.shape
    with torch.no_grad():
        pairs = [_silhouette_pairs(rast, pos.detach(), tri, topology, axis) for axis in (0, 1)]
    front = torch.cat([p[0] for p in pairs])
    other = torch.cat([p[1] for p in pairs])
    tri_id = torch.cat([p[2] for p in pairs])
    edge = torch.cat([p[3] for p in pairs])
    if front.numel() == 0:
        return color.clone()
    if pos_gradient_boost != 1.0:
        pos = _ScaleGradient.apply(pos, float(pos_gradient_boost))
    b = torch.div(front, height * width, rounding_mode="floor")
    verts = gather_vertex_values(pos, tri, tri_id, b)  # [N, 3, 4]
    va = torch.gather(verts, 1, edge[:, None, None].expand(-1, 1, 4))[:, 0]
    vb = torch.gather(verts, 1, ((edge + 1) % 3)[:, None, None].expand(-1, 1, 4))[:, 0]
    ax, ay = _to_pixels(va, height, width)
    bx, by = _to_pixels(vb, height, width)
    fx, fy = _pixel_xy(front, height, width, color.dtype)
    ox, oy = _pixel_xy(other, height, width, color.dtype)
    e_front = (bx - ax) * (fy - ay) - (by - ay) * (fx - ax)
    e_other = (bx - ax) * (oy - ay) - (by - ay) * (ox - ax)
    t = e_front / (e_front - e_other)
    beyond = t.detach() > 0.5  # the front triangle reaches into the other pixel
    dst = torch.where(beyond, other, front)
    src = torch.where(beyond, front, other)
    alpha = torch.where(beyond, t - 0.5, 0.5 - t)
    flat = color.reshape(-1, channels)
    delta = alpha[:, None].to(color.dtype) * (take_rows(flat, src) - take_rows(flat, dst))
    return flat.index_add(0, dst, delta).view(batch, height, width, channels)


def _to_pixels(v: torch.Tensor, height: int, width: int):
    """Clip-space [N, 4] -> continuous pixel coordinates whose integer points are pixel centres."""
    return (v[:, 0] / v[:, 3] + 1) * (0.5 * width) - 0.5, (v[:, 1] / v[:, 3] + 1) * (0.5 * height) - 0.5


def _pixel_xy(pixel: torch.Tensor, height: int, width: int, dtype):
    rem = pixel % (height * width)
    return (rem % width).to(dtype), torch.div(rem, width, rounding_mode="floor").to(dtype)


def _silhouette_pairs(rast, pos, tri, topology, axis: int):
    """Pixel pairs across silhouette edges along ``axis`` (0: horizontal neighbours, 1: vertical).

    Returns (front pixel, other pixel, front triangle id, edge index k in 0..2), each [N].
    """
    batch, height, width, _ = rast.shape
    ident = rast[..., 3].long()
    depth = rast[..., 2]
    if axis == 0:
        differ = ident[:, :, :-1] != ident[:, :, 1:]
        bb, yy, xx = torch.nonzero(differ, as_tuple=True)
        p = (bb * height + yy) * width + xx
        q = p + 1
    else:
        differ = ident[:, :-1, :] != ident[:, 1:, :]
        bb, yy, xx = torch.nonzero(differ, as_tuple=True)
        p = (bb * height + yy) * width + xx
        q = p + width
    flat_id, flat_depth = ident.reshape(-1), depth.reshape(-1)
    id_p, id_q = flat_id[p], flat_id[q]
    p_in_front = (id_q == 0) | ((id_p != 0) & (flat_depth[p] <= flat_depth[q]))
    front = torch.where(p_in_front, p, q)
    other = torch.where(p_in_front, q, p)
    tri_id = torch.where(p_in_front, id_p, id_q) - 1
    empty = front[:0]
    if front.numel() == 0:
        return empty, empty, empty, empty
    verts = gather_vertex_values(pos, tri, tri_id, bb).float()  # [N, 3, 4]
    w_ok = (verts[..., 3] > 0).all(1)
    px, py = _to_pixels(verts.reshape(-1, 4), height, width)
    px, py = px.view(-1, 3), py.view(-1, 3)
    fx, fy = _pixel_xy(front, height, width, torch.float32)
    ox, oy = _pixel_xy(other, height, width, torch.float32)
    ax, ay = px, py
    bx, by = px.roll(-1, 1), py.roll(-1, 1)
    cx, cy = px.roll(-2, 1), py.roll(-2, 1)
    ex, ey = bx - ax, by - ay

    def side(x, y):  # [N, 3] edge functions
        return ex * (y - ay) - ey * (x - ax)

    orient = torch.sign(side(cx, cy))  # inside is where orient * side > 0
    e_front = orient * side(fx[:, None], fy[:, None])
    e_other = orient * side(ox[:, None], oy[:, None])
    crossing = (e_other < 0) & (e_front >= 0) & (orient != 0)
    t = torch.where(crossing, e_front / (e_front - e_other), torch.full_like(e_front, float("inf")))
    t_min, edge = t.min(1)
    found = torch.isfinite(t_min) & w_ok
    ex_k = torch.gather(ex, 1, edge[:, None])[:, 0]
    ey_k = torch.gather(ey, 1, edge[:, None])[:, 0]
    across = ex_k.abs() < ey_k.abs() if axis == 0 else ey_k.abs() <= ex_k.abs()
    # Silhouette test: the neighbour's opposite vertex lies on the inner side of the edge.
    opp = topology[tri_id, edge]
    opp_b = bb if pos.dim() == 3 else torch.zeros_like(bb)
    opp_v = (pos[opp_b, opp.clamp(min=0)] if pos.dim() == 3 else pos[opp.clamp(min=0)]).float()
    dx, dy = _to_pixels(opp_v, height, width)
    ax_k, ay_k = torch.gather(ax, 1, edge[:, None])[:, 0], torch.gather(ay, 1, edge[:, None])[:, 0]
    o_k = torch.gather(orient, 1, edge[:, None])[:, 0]
    e_opp = o_k * (ex_k * (dy - ay_k) - ey_k * (dx - ax_k))
    # A neighbour exactly on the edge line (degenerate, or seen exactly edge-on) is not a fold.
    silhouette = (opp < 0) | (opp_v[:, 3] <= 0) | (e_opp > 0)
    keep = torch.nonzero(found & across & silhouette).squeeze(1)
    return front[keep], other[keep], tri_id[keep], edge[keep]
