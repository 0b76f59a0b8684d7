"""Tangent frames for tangent-space normal maps, as MikkTSpace computes them (Blender, glTF viewers).

MikkTSpace (Mikkelsen 2008, "Simulation of wrinkled surfaces revisited"), for a mesh without
degenerate charts:
1. each face gets the directions of dP/du and dP/dv from its positions and UVs, and an orientation:
   whether its UV triangle is counter-clockwise (a mirrored chart is not);
2. at each corner, the face's dP/du is projected onto the tangent plane of the corner's vertex normal,
   normalized and weighted by the corner's angle (measured in that plane);
3. corners that share a vertex (same position, normal and UV: one UV vertex here) and an orientation
   are summed and normalized: the vertex tangent, with w = +1 (orientation kept) or -1 (mirrored).

Shading then uses bitangent = w * cross(N, T) and n = normalize(x T + y B + z N) for a texel (x, y, z)
= 2 * rgb - 1 of an OpenGL (+Y up) normal map, which is what Cycles' Normal Map node does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _project(vectors: torch.Tensor, normals: torch.Tensor) -> torch.Tensor:
    """Unit projections of vectors [..., 3] onto the planes of unit normals [..., 3] (0 when degenerate)."""
    projected = vectors - normals * (vectors * normals).sum(-1, keepdim=True)
    return F.normalize(projected, dim=-1, eps=1e-20)


def corner_tangents(
    vertices: torch.Tensor,
    normals: torch.Tensor,
    faces: torch.Tensor,
    uv: torch.Tensor,
    uv_faces: torch.Tensor,
) -> torch.Tensor:
    """MikkTSpace tangents of every face corner, [F, 3, 4] (xyz unit, w = +-1 bitangent sign).

    Args:
        vertices: [V, 3] positions; normals: [V, 3] unit vertex normals (the ones the asset is shaded with);
        faces: [F, 3] position indices; uv: [T, 2]; uv_faces: [F, 3] UV indices.
    Corners of one UV vertex and one orientation get the same tangent; a UV vertex whose faces have
    both orientations gets one tangent per orientation (exports split such vertices). Faces of zero
    area (on the surface or in UV space) do not contribute; their corners take their UV vertex's
    tangent, as MikkTSpace does (or, where that has no other face, the tangent of their position).
    """
    p = vertices[faces].double()  # [F, 3, 3]
    t = uv[uv_faces].double()  # [F, 3, 2]
    n = F.normalize(normals[faces].double(), dim=-1, eps=1e-20)  # [F, 3, 3]
    d1, d2 = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]
    t21, t31 = t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]
    signed_area = t21[:, 0] * t31[:, 1] - t21[:, 1] * t31[:, 0]
    orientation = torch.where(signed_area > 0, 1.0, -1.0).to(p.dtype)  # [F]
    dp_du = (t31[:, 1:2] * d1 - t21[:, 1:2] * d2) * orientation[:, None]  # direction of dP/du
    face_tangent = _project(dp_du[:, None].expand(-1, 3, -1), n)  # [F, 3, 3] per corner
    # Corner angles in the tangent plane of the corner's normal.
    edge_next = _project(p.roll(-1, 1) - p, n)
    edge_prev = _project(p.roll(1, 1) - p, n)
    angle = torch.acos((edge_next * edge_prev).sum(-1).clamp(-1, 1))  # [F, 3]
    # Sum per (UV vertex, orientation), over faces with area both on the surface and in UV space.
    degenerate = (signed_area.abs() < 1e-20) | (torch.linalg.cross(d1, d2).norm(dim=-1) < 1e-20)
    weight = angle * (~degenerate)[:, None]
    positive = (orientation > 0).long().repeat_interleave(3)
    uv_index = uv_faces.reshape(-1)
    total = torch.zeros(2 * len(uv), 3, dtype=p.dtype, device=p.device)
    total.index_add_(0, uv_index * 2 + positive, (face_tangent * weight[..., None]).reshape(-1, 3))
    # Degenerate faces take their UV vertex's tangent, preferring the orientation its other faces have.
    corner_degenerate = degenerate.repeat_interleave(3)
    has_positive = total[uv_index * 2 + 1].norm(dim=-1) > 1e-12
    positive = torch.where(corner_degenerate, has_positive.long(), positive)
    orientation = torch.where(positive > 0, 1.0, -1.0).to(p.dtype)
    tangent = total[uv_index * 2 + positive]
    # A UV vertex without usable faces (degenerate ones get their own in UV layouts) takes the tangent
    # of its position's usable corners.
    weak = tangent.norm(dim=-1) < 1e-12
    if bool(weak.any()):
        vertex = faces.reshape(-1)
        by_position = torch.zeros(len(vertices), 3, dtype=p.dtype, device=p.device)
        by_position.index_add_(0, vertex, (face_tangent * weight[..., None]).reshape(-1, 3))
        tangent = torch.where(weak[:, None], by_position[vertex], tangent)
    tangent = _project(tangent, n.reshape(-1, 3))
    sign = orientation[:, None]
    return torch.cat((tangent, sign), -1).reshape(-1, 3, 4).to(vertices.dtype)


def _frame(normals: torch.Tensor, tangents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Unit T, B = sign * (N x T) and unit N [P, 3] of interpolated normals [P, 3] and tangents [P, 4]."""
    n = F.normalize(normals, dim=-1, eps=1e-20)
    t = F.normalize(tangents[:, :3], dim=-1, eps=1e-20)
    return t, torch.sign(tangents[:, 3:4]) * torch.linalg.cross(n, t), n


def apply_normal_offset(normals: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """Unit normals [P, 3] tilted by the tangential part of a world-space ``offset`` [P, 3] (the stage-1
    material's perturbation, render.renderer's "offset" mode)."""
    n = F.normalize(normals, dim=-1, eps=1e-20)
    return F.normalize(n + offset - n * (offset * n).sum(-1, keepdim=True), dim=-1, eps=1e-20)


def perturb_normals(normal_map: torch.Tensor, normals: torch.Tensor, tangents: torch.Tensor) -> torch.Tensor:
    """Shading normals from tangent-space normal-map values (Cycles' Normal Map node, strength 1).

    Args:
        normal_map: [P, 3] tangent-space normals (x, y, z), z towards the surface's outside;
        normals: [P, 3] interpolated vertex normals; tangents: [P, 4] interpolated (xyz, sign).
    Returns:
        [P, 3] unit world-space normals.
    """
    t, b, n = _frame(normals, tangents)
    return F.normalize(
        normal_map[:, :1] * t + normal_map[:, 1:2] * b + normal_map[:, 2:3] * n, dim=-1, eps=1e-20
    )


def to_tangent_space(world: torch.Tensor, normals: torch.Tensor, tangents: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`perturb_normals`: unit tangent-space normals [P, 3] whose perturbation of the
    frame (normals [P, 3], tangents [P, 4]) points along ``world`` [P, 3]."""
    t, b, n = _frame(normals, tangents)
    frame = torch.stack((t, b, n), -1)  # [P, 3, 3], columns T, B, N
    usable = torch.linalg.det(frame).abs() > 1e-6
    identity = torch.eye(3, dtype=frame.dtype, device=frame.device).expand_as(frame)
    frame = torch.where(usable[:, None, None], frame, identity)
    solved = torch.linalg.solve(frame, torch.where(usable[:, None], world, n)[..., None])[..., 0]
    solved = torch.cat((solved[:, :2], solved[:, 2:].clamp(min=0)), -1)  # never below the surface
    return F.normalize(solved, dim=-1, eps=1e-20)
