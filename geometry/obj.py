"""Wavefront OBJ meshes: reading (positions, texture coordinates, polygons fan-triangulated) and the one
writer every OBJ of the project goes through."""

from __future__ import annotations

import os

import torch

from data.errors import UserError
from data.files import write_text_atomic
from geometry.mesh import Mesh


class MeshFileError(UserError):
    """A mesh file that cannot be used; the message names the file and the problem."""


def _index(token: str, count: int, path: str, line_no: int) -> int:
    value = int(token)
    index = value - 1 if value > 0 else count + value
    if not 0 <= index < count:
        raise MeshFileError(f"{path}:{line_no}: index {value} out of range (have {count})")
    return index


def read_obj(path: str | os.PathLike) -> Mesh:
    """Load an OBJ file into a :class:`Mesh` (float32 vertices, int64 faces; uv when every face has one).

    Raises :class:`MeshFileError` for a missing or unreadable file, malformed numbers, indices out of
    range, or a file without faces.
    """
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError as error:
        raise MeshFileError(f"{path}: cannot read mesh ({error.strerror or error})") from None
    positions, texcoords, faces, uv_faces = [], [], [], []
    all_uv = True
    for line_no, line in enumerate(lines, 1):
        parts = line.split("#", 1)[0].split()
        if not parts:
            continue
        try:
            if parts[0] == "v":
                positions.append([float(x) for x in parts[1:4]])
            elif parts[0] == "vt":
                texcoords.append([float(x) for x in parts[1:3]])
            elif parts[0] == "f":
                corners = [c.split("/") for c in parts[1:]]
                if len(corners) < 3:
                    raise MeshFileError(f"{path}:{line_no}: a face needs at least 3 vertices")
                v = [_index(c[0], len(positions), path, line_no) for c in corners]
                has_uv = all(len(c) > 1 and c[1] for c in corners)
                all_uv &= has_uv
                t = [_index(c[1], len(texcoords), path, line_no) for c in corners] if has_uv else [0] * len(v)
                for k in range(1, len(v) - 1):
                    faces.append([v[0], v[k], v[k + 1]])
                    uv_faces.append([t[0], t[k], t[k + 1]])
        except ValueError as error:
            if isinstance(error, MeshFileError):
                raise
            raise MeshFileError(f"{path}:{line_no}: malformed line {line.strip()!r}") from None
    if not faces:
        raise MeshFileError(f"{path}: no faces")
    if any(len(p) != 3 for p in positions):
        raise MeshFileError(f"{path}: a vertex line has fewer than 3 coordinates")
    mesh = Mesh(torch.tensor(positions, dtype=torch.float32), torch.tensor(faces, dtype=torch.int64))
    if all_uv and texcoords:
        mesh.uv = torch.tensor(texcoords, dtype=torch.float32)
        mesh.uv_faces = torch.tensor(uv_faces, dtype=torch.int64)
    return mesh


def obj_text(
    vertices: torch.Tensor,
    faces: torch.Tensor,
    uv: torch.Tensor | None = None,
    uv_faces: torch.Tensor | None = None,
    normals: torch.Tensor | None = None,
    material_library: str | None = None,
    material: str | None = None,
) -> str:
    """The text of an OBJ file: positions [V, 3], triangles [F, 3] (0-based in, 1-based out), optionally
    texture coordinates [T, 2] with their own triangles [F, 3], per-vertex normals [V, 3] (indexed like
    the positions), a ``mtllib`` and a ``usemtl`` line."""
    lines = [f"mtllib {material_library}"] if material_library else []
    lines += [f"v {x:.7g} {y:.7g} {z:.7g}" for x, y, z in vertices.detach().cpu().tolist()]
    if uv is not None:
        lines += [f"vt {u:.7g} {v:.7g}" for u, v in uv.detach().cpu().tolist()]
    if normals is not None:
        lines += [f"vn {x:.6g} {y:.6g} {z:.6g}" for x, y, z in normals.detach().cpu().tolist()]
    if material:
        lines.append(f"usemtl {material}")
    positions = (faces.cpu() + 1).tolist()
    texcoords = (uv_faces.cpu() + 1).tolist() if uv is not None else [["", "", ""]] * len(positions)
    for corners, uv_corners in zip(positions, texcoords, strict=True):
        normal_of = corners if normals is not None else ["", "", ""]
        triples = (f"{v}/{t}/{n}".rstrip("/") for v, t, n in zip(corners, uv_corners, normal_of, strict=True))
        lines.append("f " + " ".join(triples))  # v, v/t, v//n or v/t/n
    return "\n".join(lines) + "\n"


def write_obj(
    path: str | os.PathLike,
    vertices: torch.Tensor,
    faces: torch.Tensor,
    uv: torch.Tensor | None = None,
    uv_faces: torch.Tensor | None = None,
    normals: torch.Tensor | None = None,
    material_library: str | None = None,
    material: str | None = None,
) -> None:
    """Write :func:`obj_text` to ``path`` atomically (data.files)."""
    write_text_atomic(path, obj_text(vertices, faces, uv, uv_faces, normals, material_library, material))


def find_texture(path: str | os.PathLike) -> str | None:
    """The ``map_Kd`` image of the first material library an OBJ names (path resolved), or None."""
    folder = os.path.dirname(os.fspath(path))
    with open(path, encoding="utf-8", errors="replace") as handle:
        libraries = [line.split(None, 1)[1].strip() for line in handle if line.startswith("mtllib ")]
    for library in libraries:
        mtl = os.path.join(folder, library)
        if os.path.isfile(mtl):
            with open(mtl, encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    if line.strip().startswith("map_Kd "):
                        return os.path.join(folder, line.strip().split()[-1])
    return None
