"""Distances between points and meshes: surface sampling, point-to-mesh distance, winding numbers,
signed distance to a closed mesh and the Chamfer distance. Chunked dense computations, meant for
reference values in tests, metrics and benchmarks, not for the training loop."""

from __future__ import annotations

import math

import torch

from geometry.mesh import face_areas

_PAIRS = 1 << 22  # point-face pairs per chunk


def sample_surface(
    vertices: torch.Tensor, faces: torch.Tensor, n: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` points uniformly distributed over the surface (by area).

    Returns:
        points [n, 3] (differentiable in vertices) and the face index of each [n].
    """
    area = face_areas(vertices.detach(), faces)
    face = torch.multinomial(area.cpu(), n, replacement=True, generator=generator).to(faces.device)
    r = torch.rand(n, 2, generator=generator).to(vertices)
    s = r[:, :1].sqrt()
    a, b, c = (vertices[faces[face, k]] for k in range(3))
    return (1 - s) * a + s * (1 - r[:, 1:]) * b + s * r[:, 1:] * c, face


def _chunks(n_faces: int) -> int:
    """Points per chunk so that a chunk holds about _PAIRS point-face pairs."""
    return max(1, _PAIRS // max(n_faces, 1))


def point_triangle_distance(points: torch.Tensor, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor):
    """Distance from points [P, 1, 3] to triangles (a, b, c) [1, F, 3]: [P, F] (Voronoi regions of the
    triangle: inside, three edges, three vertices)."""
    ab, ac, ap = b - a, c - a, points - a
    normal = torch.cross(ab, ac, dim=-1)
    n2 = (normal * normal).sum(-1).clamp_min(1e-30)
    # Barycentric projection onto the plane; inside when all three are >= 0.
    w1 = (torch.cross(ap, ac, dim=-1) * normal).sum(-1) / n2
    w2 = (torch.cross(ab, ap, dim=-1) * normal).sum(-1) / n2
    inside = (w1 >= 0) & (w2 >= 0) & (w1 + w2 <= 1)
    plane = (ap * normal).sum(-1).abs() / n2.sqrt()

    def segment(p0, p1):
        d = p1 - p0
        t = (((points - p0) * d).sum(-1) / (d * d).sum(-1).clamp_min(1e-30)).clamp(0, 1)
        return (points - p0 - t[..., None] * d).norm(dim=-1)

    edges = torch.minimum(torch.minimum(segment(a, b), segment(b, c)), segment(c, a))
    return torch.where(inside, plane, edges)


def point_mesh_distance(
    points: torch.Tensor, vertices: torch.Tensor, faces: torch.Tensor, candidates: int | None = 32
) -> torch.Tensor:
    """[P] unsigned distance from each point to the nearest triangle.

    With ``candidates`` = K, only the K triangles with the nearest centroids are tested (exact unless the
    nearest triangle is not among them: large triangles next to many small ones); None tests all.
    """
    if candidates is None or candidates >= len(faces):
        a, b, c = (vertices[faces[:, k]][None] for k in range(3))
        step = _chunks(len(faces))
        return torch.cat([point_triangle_distance(p[:, None], a, b, c).amin(1) for p in points.split(step)])
    centroids = vertices[faces].mean(1)
    out = []
    for p in points.split(_chunks(len(faces))):
        near = faces[torch.cdist(p, centroids).topk(candidates, largest=False).indices]  # [p, K, 3]
        a, b, c = (vertices[near[..., k]] for k in range(3))
        out.append(point_triangle_distance(p[:, None], a, b, c).amin(1))
    return torch.cat(out)


def winding_number(points: torch.Tensor, vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """[P] generalized winding number (Jacobson et al. 2013): ~1 inside a closed outward mesh, ~0 outside.

    Sum of the triangles' signed solid angles (Van Oosterom & Strackee) over 4 pi.
    """
    out = []
    for p in points.split(_chunks(len(faces))):
        a, b, c = (vertices[faces[:, k]][None] - p[:, None] for k in range(3))
        la, lb, lc = a.norm(dim=-1), b.norm(dim=-1), c.norm(dim=-1)
        det = (a * torch.cross(b, c, dim=-1)).sum(-1)
        den = la * lb * lc + (a * b).sum(-1) * lc + (b * c).sum(-1) * la + (c * a).sum(-1) * lb
        out.append(2 * torch.atan2(det, den).sum(1) / (4 * math.pi))
    return torch.cat(out)


def signed_distance(points: torch.Tensor, vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """[P] signed distance to a closed mesh, negative inside (sign from the winding number)."""
    distance = point_mesh_distance(points, vertices, faces)
    return torch.where(winding_number(points, vertices, faces) > 0.5, -distance, distance)


def nearest_distance(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """[N] distance from each source point [N, 3] to its nearest target point [M, 3]."""
    step = max(1, _PAIRS // max(len(target), 1))
    exact = "donot_use_mm_for_euclid_dist"  # the matrix-product form loses ~1e-4 to cancellation
    return torch.cat([torch.cdist(s, target, compute_mode=exact).amin(1) for s in source.split(step)])


def chamfer_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Symmetric Chamfer distance between point sets [N, 3] and [M, 3]: the mean of the two mean
    nearest-neighbour distances (unsquared, in the points' units)."""
    return 0.5 * (nearest_distance(a, b).mean() + nearest_distance(b, a).mean())


def mesh_surface_distances(
    vertices_a: torch.Tensor,
    faces_a: torch.Tensor,
    vertices_b: torch.Tensor,
    faces_b: torch.Tensor,
    n: int = 20000,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """[n], [n]: the distances of ``n`` area-uniform samples of mesh a to mesh b's triangles, and of ``n``
    samples of b to a's (a sampled first, then b, from ``generator``)."""
    on_a = sample_surface(vertices_a.detach(), faces_a, n, generator)[0]
    on_b = sample_surface(vertices_b.detach(), faces_b, n, generator)[0]
    return point_mesh_distance(on_a, vertices_b.detach(), faces_b), point_mesh_distance(
        on_b, vertices_a.detach(), faces_a
    )


def mesh_chamfer_distance(
    vertices_a: torch.Tensor,
    faces_a: torch.Tensor,
    vertices_b: torch.Tensor,
    faces_b: torch.Tensor,
    n: int = 20000,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Symmetric point-to-surface Chamfer distance between two meshes: ``n`` area-uniform samples of each
    mesh, their mean distance to the other mesh's triangles, averaged over both directions (world units).

    Unlike :func:`chamfer_distance` on two sample sets, it has no floor from the sample spacing.
    """
    a_to_b, b_to_a = mesh_surface_distances(vertices_a, faces_a, vertices_b, faces_b, n, generator)
    return 0.5 * (a_to_b.mean() + b_to_a.mean())
