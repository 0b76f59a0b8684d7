"""Mesh utilities: normals, adjacency, floaters, xatlas UVs, OBJ reading and writing."""

from __future__ import annotations

import pytest
import torch

from geometry.marching_cubes import marching_cubes
from geometry.mesh import (
    compact,
    connected_components,
    decimate,
    face_adjacency,
    face_areas,
    remove_small_components,
    unwrap_uv,
    vertex_normals,
)
from geometry.obj import MeshFileError, obj_text, read_obj, write_obj
from tests.helpers import sphere_mesh


def test_vertex_normals_of_a_sphere_are_radial():
    vertices, faces = sphere_mesh()
    normals = vertex_normals(vertices, faces)
    cosine = (normals * torch.nn.functional.normalize(vertices, dim=-1)).sum(-1)
    assert float(cosine.min()) > 0.995


def test_vertex_normals_are_area_weighted():
    # Two triangles at a shared vertex 0: a big one in the z = 0 plane, a small one in the x = 0 plane.
    vertices = torch.tensor([[0.0, 0, 0], [4, 0, 0], [0, 4, 0], [0, 1, 0], [0, 0, 1]])
    faces = torch.tensor([[0, 1, 2], [0, 3, 4]])
    expected = torch.nn.functional.normalize(torch.tensor([0.5, 0.0, 8.0]), dim=0)  # 2*area*n of each
    torch.testing.assert_close(vertex_normals(vertices, faces)[0], expected)
    assert float(vertex_normals(vertices, faces)[1:].norm(dim=-1).min()) == pytest.approx(1.0)
    unused = vertex_normals(torch.cat((vertices, torch.ones(1, 3))), faces)[-1]
    assert torch.equal(unused, torch.zeros(3))


def test_face_adjacency_of_a_closed_mesh():
    vertices, faces = sphere_mesh()
    pairs = face_adjacency(faces)
    assert len(pairs) == 3 * len(faces) // 2
    shared = [len(set(faces[a].tolist()) & set(faces[b].tolist())) for a, b in pairs.tolist()]
    assert set(shared) == {2}


def test_remove_small_components_and_compact():
    big_v, big_f = sphere_mesh(radius=1.0)
    small_v, small_f = sphere_mesh(8, 8, radius=0.1, centre=(3.0, 0.0, 0.0))
    vertices = torch.cat((big_v, small_v)).requires_grad_()
    faces = torch.cat((big_f, small_f + len(big_v)))
    assert int(connected_components(faces, len(vertices)).max()) == 1
    kept_v, kept_f = remove_small_components(vertices, faces, min_area_fraction=0.05)
    assert len(kept_f) == len(big_f) and len(kept_v) == len(big_v)
    torch.testing.assert_close(face_areas(kept_v, kept_f).sum(), face_areas(big_v, big_f).sum())
    kept_v.sum().backward()  # the selection is differentiable
    assert float(vertices.grad[: len(big_v)].min()) == 1.0 and float(vertices.grad[len(big_v) :].max()) == 0.0
    same_v, same_f = remove_small_components(vertices, faces, min_area_fraction=0.0)
    assert same_f is faces
    v, f = compact(torch.rand(10, 3), torch.tensor([[7, 2, 9]]))
    assert v.shape == (3, 3) and f.tolist() == [[1, 0, 2]]


def test_unwrap_uv_with_xatlas():
    axis = torch.linspace(-1, 1, 40)
    grid = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1)
    vertices, faces = marching_cubes(grid.norm(dim=-1) - 0.7)
    uv, uv_faces = unwrap_uv(vertices, faces, resolution=512)
    assert uv_faces.shape == faces.shape and uv.shape[1] == 2
    assert float(uv.min()) >= 0.0 and float(uv.max()) <= 1.0
    uv3 = torch.cat((uv, torch.zeros(len(uv), 1)), 1)
    uv_area = face_areas(uv3, uv_faces)
    assert float(uv_area.min()) > 0 and 0.3 < float(uv_area.sum()) <= 1.0  # charts packed, no blow-up
    # UV area is proportional to surface area across charts (xatlas keeps texel density uniform).
    ratio = uv_area / face_areas(vertices, faces)
    assert float(ratio.std() / ratio.mean()) < 0.5


def test_read_obj(tmp_path):
    path = tmp_path / "quad.obj"
    path.write_text(
        "# quad\nv 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 1 1\nvt 0 1\nf 1/1 2/2 3/3 -1/-1\n"
    )
    mesh = read_obj(path)
    assert mesh.faces.tolist() == [[0, 1, 2], [0, 2, 3]] and mesh.uv_faces.tolist() == [[0, 1, 2], [0, 2, 3]]
    assert mesh.vertices.shape == (4, 3) and mesh.uv.shape == (4, 2)


@pytest.mark.parametrize("parts", [(), ("uv",), ("normals",), ("uv", "normals")])
def test_write_obj_round_trips(tmp_path, parts):
    vertices, faces = sphere_mesh(4, 8)
    uv, uv_faces = torch.rand(len(faces) * 3, 2), torch.arange(len(faces) * 3).reshape(-1, 3)
    extra = {"uv": uv, "uv_faces": uv_faces} if "uv" in parts else {}
    if "normals" in parts:
        extra["normals"] = vertex_normals(vertices, faces)
    write_obj(tmp_path / "m.obj", vertices, faces, **extra, material_library="m.mtl", material="m0")
    text = (tmp_path / "m.obj").read_text()
    assert text == obj_text(vertices, faces, **extra, material_library="m.mtl", material="m0")
    assert text.startswith("mtllib m.mtl\n") and "\nusemtl m0\n" in text
    corner = text.split("\nf ", 1)[1].split()[0]
    assert corner.count("/") == {(): 0, ("uv",): 1}.get(parts, 2) and ("//" in corner) == (
        parts == ("normals",)
    )
    mesh = read_obj(tmp_path / "m.obj")
    assert torch.allclose(mesh.vertices, vertices, atol=1e-6) and torch.equal(mesh.faces, faces)
    if "uv" in parts:
        assert torch.allclose(mesh.uv, uv, atol=1e-6) and torch.equal(mesh.uv_faces, uv_faces)
    assert not list(tmp_path.glob(".*tmp"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("v 0 0 0\nv 1 0 0\nv 1 1 0\nf 1 2 4\n", "index 4 out of range"),
        ("v 0 0 zero\nf 1 1 1\n", "malformed line"),
        ("v 0 0 0\n", "no faces"),
        ("v 0 0 0\nf 1 1\n", "at least 3"),
    ],
)
def test_read_obj_errors_name_the_file(tmp_path, text, message):
    path = tmp_path / "bad.obj"
    path.write_text(text)
    with pytest.raises(MeshFileError, match=message) as error:
        read_obj(path)
    assert "bad.obj" in str(error.value)
    with pytest.raises(MeshFileError, match="missing.obj: cannot read"):
        read_obj(tmp_path / "missing.obj")


def signed_volume(vertices, faces):
    a, b, c = vertices[faces[:, 0]], vertices[faces[:, 1]], vertices[faces[:, 2]]
    return float((a * torch.cross(b, c, dim=-1)).sum() / 6)


def test_decimate_keeps_shape_winding_and_a_closed_surface():
    axis = torch.linspace(-1, 1, 97)
    grid = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1)
    ring = torch.stack((grid[..., :2].norm(dim=-1) - 0.6, grid[..., 2]), -1).norm(dim=-1)
    vertices, faces = marching_cubes(ring - 0.25)  # a torus, about 38k faces
    small_v, small_f = decimate(vertices, faces, 3000)
    assert 2900 <= small_f.shape[0] <= 3000
    assert int(small_f.max()) == small_v.shape[0] - 1 and small_f.unique().numel() == small_v.shape[0]
    on_ring = torch.stack((small_v[:, :2].norm(dim=-1) - 0.6, small_v[:, 2]), -1).norm(dim=-1)
    assert float((on_ring - 0.25).abs().max()) < 0.01  # vertices stay on the true surface
    exact = 2 * torch.pi**2 * 0.6 * 0.25**2
    assert signed_volume(small_v, small_f) == pytest.approx(exact, rel=0.01)  # outward winding kept
    directed = torch.cat((small_f[:, [0, 1]], small_f[:, [1, 2]], small_f[:, [2, 0]]))
    _, uses = torch.unique(directed, dim=0, return_counts=True)
    _, undirected = torch.unique(directed.sort(dim=1).values, dim=0, return_counts=True)
    assert int(uses.max()) == 1 and bool((undirected == 2).all())  # closed, consistently oriented


def test_decimate_leaves_a_mesh_within_budget_untouched():
    vertices, faces = sphere_mesh()
    assert decimate(vertices, faces, faces.shape[0])[1] is faces
    assert decimate(vertices, faces, 0)[1] is faces
