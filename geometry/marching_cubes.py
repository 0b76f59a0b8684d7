"""Differentiable marching cubes on a regular grid of SDF values (vectorized torch, any device).

Topology comes from the case tables of :mod:`geometry.mc_tables`; every vertex is the linear zero
crossing of a grid edge, p = p_a + (p_b - p_a) s_a / (s_a - s_b), differentiable in the two SDF values
s_a, s_b. Vertices are shared between neighbouring cells (one per crossed grid edge), triangles are
counter-clockwise seen from outside (positive SDF), and an empty or full grid gives an empty mesh.
"""

from __future__ import annotations

from functools import lru_cache

import torch

from geometry.mc_tables import CORNERS, EDGE_AXIS, EDGE_ORIGIN, triangle_table

_MIN_DENOMINATOR = 1e-12


@lru_cache(maxsize=8)
def _tables(device: torch.device):
    return (
        torch.as_tensor(triangle_table(), device=device),
        torch.as_tensor(EDGE_AXIS, device=device),
        torch.as_tensor(EDGE_ORIGIN, device=device),
    )


def marching_cubes(
    sdf: torch.Tensor,
    lower: torch.Tensor | tuple = (-1.0, -1.0, -1.0),
    upper: torch.Tensor | tuple = (1.0, 1.0, 1.0),
) -> tuple[torch.Tensor, torch.Tensor]:
    """Extract the zero level set of ``sdf``.

    Args:
        sdf: [N0, N1, N2] values at grid points; point (i, j, k) sits at lower + (i, j, k) * (upper -
            lower) / (N - 1), so the first axis is x. Negative is inside.
        lower, upper: [3] corners of the grid's box (world units).
    Returns:
        vertices [V, 3] (differentiable in ``sdf``) and faces [F, 3] int64.
    """
    if sdf.dim() != 3 or min(sdf.shape) < 2:
        raise ValueError(f"sdf: expected a [N0, N1, N2] grid with every N >= 2, got {list(sdf.shape)}")
    device, dtype = sdf.device, sdf.dtype
    table, edge_axis, edge_origin = _tables(device)
    dims = torch.tensor(sdf.shape, device=device)
    inside = (sdf.detach() < 0).to(torch.uint8)  # uint8 keeps the full-grid passes cheap
    n0, n1, n2 = sdf.shape
    case = torch.zeros(n0 - 1, n1 - 1, n2 - 1, dtype=torch.uint8, device=device)
    for c in range(8):
        x, y, z = (int(v) for v in CORNERS[c])
        case |= inside[x : n0 - 1 + x, y : n1 - 1 + y, z : n2 - 1 + z] * (1 << c)
    cells = torch.nonzero((case > 0) & (case < 255))  # [A, 3]
    empty = (sdf.new_zeros(0, 3), torch.zeros(0, 3, dtype=torch.int64, device=device))
    if cells.shape[0] == 0:
        return empty
    tris = table[case[cells[:, 0], cells[:, 1], cells[:, 2]].long()]  # [A, 5, 3] local edges
    used = tris[:, :, 0] >= 0
    cell_of = cells[:, None, None, :].expand(-1, 5, 3, 3)[used]  # [T, 3, 3]
    local = tris[used]  # [T, 3]
    point = cell_of + edge_origin[local]  # [T, 3, 3] grid point at the edge's lower end
    axis = edge_axis[local]
    edge_id = ((axis * dims[0] + point[..., 0]) * dims[1] + point[..., 1]) * dims[2] + point[..., 2]
    unique, faces = torch.unique(edge_id.reshape(-1), return_inverse=True)
    faces = faces.reshape(-1, 3)
    # Decode the unique edges back into their two grid points.
    k = unique % dims[2]
    j = (unique // dims[2]) % dims[1]
    i = (unique // (dims[2] * dims[1])) % dims[0]
    a = unique // (dims[2] * dims[1] * dims[0])
    start = torch.stack((i, j, k), -1)
    end = start + torch.nn.functional.one_hot(a, 3)
    flat = sdf.reshape(-1)
    s_a = flat[(start[:, 0] * n1 + start[:, 1]) * n2 + start[:, 2]]
    s_b = flat[(end[:, 0] * n1 + end[:, 1]) * n2 + end[:, 2]]
    denom = s_a - s_b
    denom = torch.where(denom.abs() < _MIN_DENOMINATOR, torch.full_like(denom, _MIN_DENOMINATOR), denom)
    t = (s_a / denom).clamp(0, 1)
    lower = torch.as_tensor(lower, device=device, dtype=dtype)
    upper = torch.as_tensor(upper, device=device, dtype=dtype)
    spacing = (upper - lower) / (dims.to(dtype) - 1)
    grid_pos = start.to(dtype) + t[:, None] * (end - start).to(dtype)
    return lower + grid_pos * spacing, faces
