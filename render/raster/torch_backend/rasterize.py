"""Pure-PyTorch triangle rasterizer with nvdiffrast's semantics.

Visibility is found without autograd: every triangle is set up once in 2D homogeneous coordinates
(Olano & Greer 1997), which needs no explicit clipping and handles vertices behind the camera
(w <= 0) exactly; candidate pixels come from binned bounding-box tiles (on the CPU with numba, setup and
scan are compiled loops over the boxes instead, ``scan_cpu``, the same keys bit for bit), and a packed 64-bit
(depth, triangle id) key resolved with ``scatter_reduce(amin)`` implements "nearest z/w wins"
(ties go to the lower triangle id). Then, for the winning triangle of every covered pixel, the
perspective-correct barycentrics and their screen-space derivatives are recomputed with plain
differentiable torch ops, so gradients reach ``pos`` (x, y, w) through u, v and ``rast_db`` exactly
as the analytic derivative of the forward formula. z/w carries no gradient (as in nvdiffrast).

Pixel (X, Y) has its centre at NDC ((2X + 1)/W - 1, (2Y + 1)/H - 1): row 0 is the bottom row.
"""

from __future__ import annotations

import torch

from . import scan_cpu
from .interpolate import gather_vertex_values

# Candidate-pixel budget per vectorized step; bounds peak memory at roughly 60 bytes per candidate.
CANDIDATE_BUDGET = 1 << 22
# Triangles per setup chunk.
TRIANGLE_CHUNK = 1 << 20
# Bounding boxes are cut into square tiles of at most this many pixels a side.
MAX_TILE = 32
_TILE_SIZES = (1, 2, 4, 8, 16, 32)
_EMPTY_KEY = torch.iinfo(torch.int64).max
_BOX_EPS = 1e-3


def rasterize(
    pos: torch.Tensor,
    tri: torch.Tensor,
    resolution: tuple[int, int],
    ranges: torch.Tensor | None = None,
    grad_db: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rasterize triangles; see :func:`render.raster.rasterize` for the contract.

    Args:
        pos: [B, V, 4] (instanced mode) or [V, 4] (range mode) clip-space positions.
        tri: [F, 3] int32 vertex indices.
        resolution: (H, W).
        ranges: [B, 2] int32 (start, count) into ``tri``, range mode only.
        grad_db: propagate gradients of ``rast_db`` into ``pos``.

    Returns:
        rast [B, H, W, 4] = (u, v, z/w, triangle_id + 1), zeros where empty;
        rast_db [B, H, W, 4] = (du/dX, du/dY, dv/dX, dv/dY) in pixel units.
    """
    height, width = int(resolution[0]), int(resolution[1])
    tri_long = tri.long()
    with torch.no_grad():
        keys = _visibility(pos.detach(), tri_long, height, width, ranges)
    return _shade_visible(pos, tri_long, keys, height, width, grad_db)


# ----------------------------------------------------------------------------------------------
# Visibility (no autograd)
# ----------------------------------------------------------------------------------------------


def _primitive_batches(pos: torch.Tensor, tri: torch.Tensor, ranges: torch.Tensor | None):
    """Yield (view indices [N], clip-space vertices [N, 3, 4], triangle ids [N]) work units of at most
    TRIANGLE_CHUNK triangles; in instanced mode several views share one unit (fewer, larger ops)."""
    device = tri.device
    if pos.dim() == 3:
        views_per_unit = max(1, TRIANGLE_CHUNK // max(1, tri.shape[0]))
        for first in range(0, pos.shape[0], views_per_unit):
            views = torch.arange(first, min(first + views_per_unit, pos.shape[0]), device=device)
            for start in range(0, tri.shape[0], TRIANGLE_CHUNK):
                ids = torch.arange(start, min(start + TRIANGLE_CHUNK, tri.shape[0]), device=device)
                corners = tri[ids]  # [n, 3]
                verts = pos[views[:, None, None], corners[None]]  # [views, n, 3, 4]
                yield (
                    views.repeat_interleave(len(ids)),
                    verts.reshape(-1, 3, pos.shape[-1]),
                    ids.repeat(len(views)),
                )
    else:
        for b, (first, count) in enumerate(ranges.tolist()):
            for start in range(first, first + count, TRIANGLE_CHUNK):
                ids = torch.arange(start, min(start + TRIANGLE_CHUNK, first + count), device=device)
                yield torch.full_like(ids, b), pos[tri[ids]], ids


def _visibility(pos: torch.Tensor, tri: torch.Tensor, height: int, width: int, ranges) -> torch.Tensor:
    """Return the resolved depth/id key per pixel, int64 [B * H * W] (_EMPTY_KEY where empty)."""
    batch = pos.shape[0] if pos.dim() == 3 else ranges.shape[0]
    keys = torch.full((batch * height * width,), _EMPTY_KEY, dtype=torch.int64, device=pos.device)
    compiled = keys.device.type == "cpu" and scan_cpu.available()
    for views, verts, tri_ids in _primitive_batches(pos, tri, ranges):
        if compiled:  # the same keys, bit for bit, from compiled loops (scan_cpu)
            scan_cpu.setup_and_scan(verts, tri_ids, views, keys, height, width, _BOX_EPS)
            continue
        setup = _setup_triangles(verts.float(), height, width)
        if setup is None:
            continue
        coeffs, boxes, keep = setup
        if keep.numel() == 0:
            continue
        _scan_tiles(coeffs[keep], boxes[keep], tri_ids[keep], views[keep], keys, height, width)
    return keys


def _setup_triangles(v: torch.Tensor, height: int, width: int):
    """Per-triangle edge and depth planes in pixel coordinates, and clamped pixel bounding boxes.

    Args:
        v: [N, 3, 4] float32 clip-space vertices.

    Returns:
        coeffs [N, 4, 3]: rows = three edge functions and z/w, each (a, b, c) with value a*X + b*Y + c
            at pixel (X, Y); edges are sign-normalized so that covered pixels have all three >= 0.
        boxes [N, 4] int64: (x0, y0, x1, y1) inclusive pixel ranges, clamped to the viewport.
        keep [K] long: triangles with a non-empty box and a non-degenerate setup.
    """
    x, y, z, w = v.unbind(-1)  # each [N, 3]
    # Rows of the adjugate of M = [[x0 x1 x2], [y0 y1 y2], [w0 w1 w2]]: e_i(p) = r_i . (px, py, 1).
    # Each product is its own elementwise op (no fused multiply-add), so the row of an edge shared by
    # two triangles, V_a x V_b versus V_b x V_a, is negated exactly: no cracks along shared edges.
    x1, y1, w1 = x.roll(-1, 1), y.roll(-1, 1), w.roll(-1, 1)
    x2, y2, w2 = x.roll(-2, 1), y.roll(-2, 1), w.roll(-2, 1)
    rows = torch.stack((y1 * w2 - w1 * y2, w1 * x2 - x1 * w2, x1 * y2 - y1 * x2), dim=-1)  # [N, 3, 3]
    det = x[:, 0] * rows[:, 0, 0] + y[:, 0] * rows[:, 0, 1] + w[:, 0] * rows[:, 0, 2]  # [N]
    sign = torch.sign(det)
    rows = rows * sign[:, None, None]
    # z/w at p = sum_i z_i e_i(p) / det: an affine function of p.
    depth_row = (z[:, :, None] * rows).sum(1) / det.abs()[:, None]  # [N, 3]
    planes = torch.cat((rows, depth_row[:, None]), dim=1)  # [N, 4, 3] in NDC
    # NDC -> pixel coordinates: px = X * 2/W + (1/W - 1), py = Y * 2/H + (1/H - 1).
    sx, ox = 2.0 / width, 1.0 / width - 1.0
    sy, oy = 2.0 / height, 1.0 / height - 1.0
    coeffs = torch.stack(
        (
            planes[..., 0] * sx,
            planes[..., 1] * sy,
            planes[..., 0] * ox + planes[..., 1] * oy + planes[..., 2],
        ),
        dim=-1,
    )
    boxes = _bounding_boxes(v, height, width)
    ok = (det != 0) & torch.isfinite(coeffs).flatten(1).all(1)
    ok &= (boxes[:, 2] >= boxes[:, 0]) & (boxes[:, 3] >= boxes[:, 1])
    return coeffs, boxes, ok.nonzero().squeeze(1)


def _bounding_boxes(v: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Conservative pixel bounding boxes of the triangles' visible parts, int64 [N, 4] (x0, y0, x1, y1).

    Visible points have w > 0 and z >= -w, so each triangle is clipped against the near plane
    d = z + w >= 0 first; when the clipped polygon still has w <= 0 points (unusual projections)
    the box is the whole viewport. Boxes never exclude a covered pixel centre.
    """
    x, y, z, w = v.unbind(-1)  # [N, 3]
    d = z + w
    # Candidate polygon points: the 3 vertices and the near-plane crossings of the 3 edges.
    d_next, idx_next = d.roll(-1, dims=1), [1, 2, 0]
    t = d / (d - d_next)  # crossing parameter along edge i -> i+1
    crosses = (d >= 0) != (d_next >= 0)
    t = torch.where(crosses, t, torch.zeros_like(t))
    pts = torch.cat((v, v + t[..., None] * (v[:, idx_next] - v)), dim=1)  # [N, 6, 4]
    valid = torch.cat((d >= 0, crosses), dim=1)  # [N, 6]
    pw = pts[..., 3]
    safe_w = torch.where(valid & (pw > 0), pw, torch.ones_like(pw))
    ndc_x, ndc_y = pts[..., 0] / safe_w, pts[..., 1] / safe_w
    inf = torch.full_like(ndc_x, float("inf"))
    xmin = torch.where(valid, ndc_x, inf).amin(1)
    xmax = torch.where(valid, ndc_x, -inf).amax(1)
    ymin = torch.where(valid, ndc_y, inf).amin(1)
    ymax = torch.where(valid, ndc_y, -inf).amax(1)
    full = (valid & (pw <= 0)).any(1)  # clipped polygon still reaches w <= 0: no useful bound
    xmin = torch.where(full, torch.full_like(xmin, -1.0), xmin)
    ymin = torch.where(full, torch.full_like(ymin, -1.0), ymin)
    xmax = torch.where(full, torch.full_like(xmax, 1.0), xmax)
    ymax = torch.where(full, torch.full_like(ymax, 1.0), ymax)
    # Pixel X is covered only if xmin <= (2X+1)/W - 1 <= xmax.  A 1e-3 pixel tolerance absorbs float
    # rounding of the projected vertices; the exact test happens per pixel.
    x0 = torch.ceil((xmin + 1.0) * (width * 0.5) - 0.5 - _BOX_EPS)
    x1 = torch.floor((xmax + 1.0) * (width * 0.5) - 0.5 + _BOX_EPS)
    y0 = torch.ceil((ymin + 1.0) * (height * 0.5) - 0.5 - _BOX_EPS)
    y1 = torch.floor((ymax + 1.0) * (height * 0.5) - 0.5 + _BOX_EPS)
    box = torch.stack(
        (x0.clamp(0, width), y0.clamp(0, height), x1.clamp(-1, width - 1), y1.clamp(-1, height - 1)), 1
    )
    box = torch.nan_to_num(box, nan=-1.0)  # NaN vertices: empty box
    empty = ~valid.any(1)
    box[empty] = torch.tensor([0.0, 0.0, -1.0, -1.0], device=box.device)
    return box.long()


def _scan_tiles(coeffs, boxes, tri_ids, views, keys, height, width) -> None:
    """Test candidate pixels tile by tile and fold (depth, id) keys into ``keys`` with amin."""
    nx = boxes[:, 2] - boxes[:, 0] + 1
    ny = boxes[:, 3] - boxes[:, 1] + 1
    extent = torch.maximum(nx, ny)
    small = extent <= MAX_TILE
    # Large boxes are cut into MAX_TILE x MAX_TILE tiles.
    items = [(torch.nonzero(small).squeeze(1), boxes[small, 0], boxes[small, 1])]
    big = torch.nonzero(~small).squeeze(1)
    if big.numel() > 0:
        tiles_x = (nx[big] + MAX_TILE - 1) // MAX_TILE
        tiles_y = (ny[big] + MAX_TILE - 1) // MAX_TILE
        count = tiles_x * tiles_y
        owner = torch.repeat_interleave(big, count)
        local = torch.arange(int(count.sum()), device=boxes.device) - torch.repeat_interleave(
            torch.cumsum(count, 0) - count, count
        )
        tx = torch.repeat_interleave(tiles_x, count)
        items.append(
            (owner, boxes[owner, 0] + (local % tx) * MAX_TILE, boxes[owner, 1] + (local // tx) * MAX_TILE)
        )
    owner = torch.cat([it[0] for it in items])
    tile_x0 = torch.cat([it[1] for it in items])
    tile_y0 = torch.cat([it[2] for it in items])
    tile_x1 = torch.minimum(tile_x0 + MAX_TILE - 1, boxes[owner, 2])
    tile_y1 = torch.minimum(tile_y0 + MAX_TILE - 1, boxes[owner, 3])
    # Bin tiles by power-of-two width and height so each bin is one dense broadcast.
    sizes = torch.tensor(_TILE_SIZES, device=boxes.device)
    bin_x = torch.bucketize(tile_x1 - tile_x0 + 1, sizes)
    bin_y = torch.bucketize(tile_y1 - tile_y0 + 1, sizes)
    bin_index = bin_x * len(_TILE_SIZES) + bin_y
    order = torch.argsort(bin_index)
    counts = torch.bincount(bin_index, minlength=len(_TILE_SIZES) ** 2).tolist()
    start = 0
    for k, count in enumerate(counts):
        tile_w, tile_h = _TILE_SIZES[k // len(_TILE_SIZES)], _TILE_SIZES[k % len(_TILE_SIZES)]
        step = max(1, CANDIDATE_BUDGET // (tile_w * tile_h))
        for chunk in range(start, start + count, step):
            part = order[chunk : min(chunk + step, start + count)]
            o = owner[part]
            _scan_bin(
                coeffs[o], tri_ids[o], views[o], tile_x0[part], tile_y0[part], tile_x1[part],
                tile_y1[part], tile_w, tile_h, keys, height, width,
            )  # fmt: skip
        start += count


def _scan_bin(coeffs, tri_ids, views, x0, y0, x1, y1, tile_w, tile_h, keys, height, width) -> None:
    # Candidates are laid out [tile_w * tile_h, M] so every broadcast runs along the long, contiguous
    # triangle axis.
    off_x = torch.arange(tile_w, device=coeffs.device).repeat(tile_h)
    off_y = torch.arange(tile_h, device=coeffs.device).repeat_interleave(tile_w)
    xs = x0[None, :] + off_x[:, None]  # [K, M] absolute pixel columns
    ys = y0[None, :] + off_y[:, None]  # [K, M]
    inside = (xs <= x1[None, :]) & (ys <= y1[None, :])
    fx, fy = xs.to(coeffs.dtype), ys.to(coeffs.dtype)
    planes = coeffs.permute(1, 2, 0).contiguous()  # [4, 3, M]
    # Evaluate (a*X + c) + b*Y with absolute coordinates, so an edge shared by two triangles gives
    # exactly opposite values in both (no cracks, no double hits beyond exact ties).
    for i in range(3):
        inside &= (planes[i, 0] * fx + planes[i, 2]) + planes[i, 1] * fy >= 0
    depth = (planes[3, 0] * fx + planes[3, 2]) + planes[3, 1] * fy
    inside &= (depth >= -1) & (depth <= 1)
    k, m = torch.nonzero(inside, as_tuple=True)
    if m.numel() == 0:
        return
    pixel = (views[m] * height + ys[k, m]) * width + xs[k, m]
    keys.scatter_reduce_(0, pixel, _pack_key(depth[k, m], tri_ids[m]), reduce="amin", include_self=True)


def _pack_key(depth: torch.Tensor, tri_ids: torch.Tensor) -> torch.Tensor:
    """int64 keys ordered by (depth, triangle id): float32 bits mapped to order-preserving int32."""
    bits = depth.float().contiguous().view(torch.int32)
    ordered = torch.where(bits < 0, bits ^ 0x7FFFFFFF, bits)
    return (ordered.long() << 32) | tri_ids


# ----------------------------------------------------------------------------------------------
# Differentiable per-pixel attributes
# ----------------------------------------------------------------------------------------------


def _shade_visible(pos, tri, keys, height, width, grad_db):
    batch = keys.numel() // (height * width)
    dtype = pos.dtype
    pixel = torch.nonzero(keys != _EMPTY_KEY).squeeze(1)
    tri_id = keys[pixel] & 0xFFFFFFFF
    b = torch.div(pixel, height * width, rounding_mode="floor")
    rem = pixel - b * (height * width)
    py_i = torch.div(rem, width, rounding_mode="floor")
    px_i = rem - py_i * width
    verts = gather_vertex_values(pos, tri, tri_id, b)  # [P, 3, 4]
    px = ((2 * px_i + 1).to(dtype) / width - 1)[:, None]
    py = ((2 * py_i + 1).to(dtype) / height - 1)[:, None]
    x, y, z, w = verts.unbind(-1)  # [P, 3]
    x1, y1, w1 = x.roll(-1, 1), y.roll(-1, 1), w.roll(-1, 1)
    x2, y2, w2 = x.roll(-2, 1), y.roll(-2, 1), w.roll(-2, 1)
    # e_i = (V_{i+1} x V_{i+2}) . (px, py, 1) over (x, y, w)
    rx = y1 * w2 - w1 * y2
    ry = w1 * x2 - x1 * w2
    rw = x1 * y2 - y1 * x2
    e = rx * px + ry * py + rw  # [P, 3]
    s = e.sum(1, keepdim=True)
    bary = e[:, :2] / s  # (u, v)
    with torch.no_grad():
        zw = (e * z).sum(1, keepdim=True) / (e * w).sum(1, keepdim=True)
    # d(e_i / s)/dpx = (rx_i s - e_i sum(rx)) / s^2, and dpx/dX = 2/W, dpy/dY = 2/H.
    db_src = (rx, ry, e, s) if grad_db else (rx.detach(), ry.detach(), e.detach(), s.detach())
    rx_, ry_, e_, s_ = db_src
    s2 = s_ * s_
    du_dx = (rx_[:, 0:1] * s_ - e_[:, 0:1] * rx_.sum(1, keepdim=True)) / s2 * (2.0 / width)
    du_dy = (ry_[:, 0:1] * s_ - e_[:, 0:1] * ry_.sum(1, keepdim=True)) / s2 * (2.0 / height)
    dv_dx = (rx_[:, 1:2] * s_ - e_[:, 1:2] * rx_.sum(1, keepdim=True)) / s2 * (2.0 / width)
    dv_dy = (ry_[:, 1:2] * s_ - e_[:, 1:2] * ry_.sum(1, keepdim=True)) / s2 * (2.0 / height)
    ident = (tri_id + 1).to(dtype)[:, None]
    values = torch.cat((bary, zw, ident), dim=1)
    rast = torch.zeros(batch * height * width, 4, dtype=dtype, device=pos.device).index_put((pixel,), values)
    db = torch.cat((du_dx, du_dy, dv_dx, dv_dy), dim=1)
    rast_db = torch.zeros(batch * height * width, 4, dtype=dtype, device=pos.device).index_put((pixel,), db)
    return rast.view(batch, height, width, 4), rast_db.view(batch, height, width, 4)
