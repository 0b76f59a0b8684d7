"""Triangle-mesh utilities: normals, adjacency, cleanup of floating pieces, quadric decimation
(fast-simplification), UV unwrapping (xatlas)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Mesh:
    """An indexed triangle mesh, counter-clockwise = outward.

    vertices [V, 3] float, faces [F, 3] int64; optionally a UV layout with its own indexing (seams
    split UV vertices, not positions): uv [T, 2] in [0, 1] (v = 0 at the image's bottom row, OBJ's
    convention) and uv_faces [F, 3] int64.
    """

    vertices: torch.Tensor
    faces: torch.Tensor
    uv: torch.Tensor | None = None
    uv_faces: torch.Tensor | None = None


def face_normals(vertices: torch.Tensor, faces: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """[F, 3] face normals (unit, or with length 2 * area when ``normalize`` is False)."""
    a, b, c = vertices[faces[:, 0]], vertices[faces[:, 1]], vertices[faces[:, 2]]
    n = torch.cross(b - a, c - a, dim=-1)
    return torch.nn.functional.normalize(n, dim=-1) if normalize else n


def face_areas(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """[F] triangle areas."""
    return 0.5 * face_normals(vertices, faces, normalize=False).norm(dim=-1)


def vertex_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """[V, 3] unit vertex normals: the area-weighted mean of the adjacent faces' normals (differentiable).

    A vertex without faces gets a zero vector.
    """
    weighted = face_normals(vertices, faces, normalize=False)  # length 2 * area
    summed = torch.zeros_like(vertices).index_add_(0, faces.reshape(-1), weighted.repeat_interleave(3, 0))
    return torch.nn.functional.normalize(summed, dim=-1, eps=1e-20)


def face_adjacency(faces: torch.Tensor) -> torch.Tensor:
    """[E, 2] pairs of faces sharing an edge (each interior edge of a manifold mesh once).

    Edges with more than two faces contribute the pairs of consecutive faces in sorted order.
    """
    edges = torch.cat((faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]))
    edges = edges.sort(dim=1).values
    key = edges[:, 0] * (int(faces.max()) + 1 if faces.numel() else 1) + edges[:, 1]
    order = torch.argsort(key)
    key = key[order]
    face = order % faces.shape[0]
    same = key[1:] == key[:-1]
    return torch.stack((face[:-1][same], face[1:][same]), -1)


def compact(vertices: torch.Tensor, faces: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop vertices that no face uses; faces are re-indexed. Differentiable in ``vertices``."""
    used, faces = torch.unique(faces.reshape(-1), return_inverse=True)
    return vertices[used], faces.reshape(-1, 3)


def connected_components(faces: torch.Tensor, n_vertices: int) -> torch.Tensor:
    """[F] component label of each face (faces connected through shared vertices)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components as scipy_components

    f = faces.detach().cpu().numpy()
    rows = np.concatenate((f[:, 0], f[:, 1]))
    cols = np.concatenate((f[:, 1], f[:, 2]))
    graph = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n_vertices, n_vertices))
    _, labels = scipy_components(graph, directed=False)
    return torch.as_tensor(labels[f[:, 0]], dtype=torch.int64, device=faces.device)


def remove_small_components(
    vertices: torch.Tensor, faces: torch.Tensor, min_area_fraction: float = 0.05
) -> tuple[torch.Tensor, torch.Tensor]:
    """Remove floating pieces: components whose area is below ``min_area_fraction`` of the largest.

    Returns the kept vertices (a differentiable selection) and re-indexed faces; 0 keeps everything.
    """
    if faces.shape[0] == 0 or min_area_fraction <= 0:
        return vertices, faces
    labels = connected_components(faces, vertices.shape[0])
    area = torch.zeros(int(labels.max()) + 1, dtype=vertices.dtype, device=vertices.device)
    area.index_add_(0, labels, face_areas(vertices.detach(), faces))
    keep = area[labels] >= min_area_fraction * area.max()
    return compact(vertices, faces[keep])


def decimate(
    vertices: torch.Tensor, faces: torch.Tensor, max_faces: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """At most ``max_faces`` faces by quadric edge collapse (Garland-Heckbert, through the
    fast-simplification library); a mesh already within budget, or ``max_faces`` 0, is returned as is.

    Returns new vertices [V', 3] (not differentiable: collapses move vertices) and faces [F', 3] int64,
    with the winding kept, no degenerate faces and no unused vertices.
    """
    if max_faces <= 0 or faces.shape[0] <= max_faces:
        return vertices, faces
    import fast_simplification

    points, triangles = fast_simplification.simplify(
        vertices.detach().cpu().double().numpy(), faces.detach().cpu().numpy().astype(np.int64),
        target_count=max_faces,
    )  # fmt: skip
    triangles = triangles.astype(np.int64)
    a, b, c = triangles.T
    distinct = (a != b) & (b != c) & (c != a)
    new_vertices = torch.as_tensor(points, dtype=vertices.dtype, device=vertices.device)
    new_faces = torch.as_tensor(triangles[distinct], device=faces.device)
    return compact(new_vertices, new_faces)


def unwrap_uv(
    vertices: torch.Tensor, faces: torch.Tensor, resolution: int = 1024, padding: int = 2
) -> tuple[torch.Tensor, torch.Tensor]:
    """UV atlas through xatlas: charts packed into a ``resolution``² texture with ``padding`` texels.

    Returns:
        uv [T, 2] in [0, 1] (v up, OBJ convention) and uv_faces [F, 3] int64, face i of ``faces`` being
        uv face i.
    """
    import xatlas

    atlas = xatlas.Atlas()
    atlas.add_mesh(
        vertices.detach().cpu().numpy().astype(np.float32), faces.detach().cpu().numpy().astype(np.uint32)
    )
    pack = xatlas.PackOptions()
    pack.resolution = resolution
    pack.padding = padding
    pack.bilinear = True
    atlas.generate(pack_options=pack)
    mapping, uv_faces, uv = atlas[0]
    original = faces.detach().cpu().numpy()
    if uv_faces.shape != original.shape or not np.array_equal(mapping[uv_faces], original):
        raise RuntimeError("xatlas changed the face order or count; cannot match UV faces to faces")
    device = vertices.device
    return (
        torch.as_tensor(uv, dtype=torch.float32, device=device),
        torch.as_tensor(uv_faces.astype(np.int64), device=device),
    )
