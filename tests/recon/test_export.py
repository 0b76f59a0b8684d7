"""Baking and the export contract, read back with independent libraries (trimesh, pygltflib)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pygltflib
import pytest
import torch
import trimesh

from geometry.distance import sample_surface
from geometry.marching_cubes import marching_cubes
from geometry.mesh import face_areas, unwrap_uv
from recon.asset.bake import Textures, bake_textures, bake_vertex_values
from recon.asset.export import export_asset
from recon.asset.load import load_asset
from render.hdr import read_hdr
from render.light import EnvironmentLight, EnvironmentLightConfig
from render.raster import texture
from tests.helpers import ROOT, gltf_accessor


def smooth_material(p: torch.Tensor):
    base = torch.stack(((p[:, 0] + 1) / 2, (p[:, 1] + 1) / 2, 0.5 + 0.4 * torch.sin(6 * p[:, 2])), -1)
    roughness = (0.5 + 0.4 * p[:, 2:3]).clamp(0, 1)
    metallic = (p[:, :1] > 0).float()
    return base, roughness, metallic


@pytest.fixture(scope="module")
def asset():
    axis = torch.linspace(-1, 1, 33)
    grid = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1)
    vertices, faces = marching_cubes(grid.norm(dim=-1) - 0.7)
    uv, uv_faces = unwrap_uv(vertices, faces, resolution=512)
    textures = bake_textures(smooth_material, vertices, faces, uv, uv_faces, resolution=512)
    return vertices, faces, uv, uv_faces, textures


def test_baked_textures_reproduce_the_material(asset, report):
    vertices, faces, uv, uv_faces, textures = asset
    points, face = sample_surface(vertices, faces, 4000, torch.Generator().manual_seed(0))
    # The UV coordinates of the samples: the same barycentrics on the UV triangle.
    a, b, c = (vertices[faces[face, k]] for k in range(3))
    n = torch.cross(b - a, c - a, dim=-1)
    w1 = (torch.cross(points - a, c - a, dim=-1) * n).sum(-1) / (n * n).sum(-1)
    w2 = (torch.cross(b - a, points - a, dim=-1) * n).sum(-1) / (n * n).sum(-1)
    ta, tb, tc = (uv[uv_faces[face, k]] for k in range(3))
    st = (1 - w1 - w2)[:, None] * ta + w1[:, None] * tb + w2[:, None] * tc
    image = torch.cat((textures.base_color, textures.roughness), -1)[None].contiguous()
    looked_up = texture(image, st[None, :, None].contiguous(), filter_mode="linear")[0, :, 0]
    base, roughness, _ = smooth_material(points)
    error = (looked_up - torch.cat((base, roughness), -1)).abs()
    mean, worst = float(error.mean()), float(error.max())
    report(f"baked 512^2 textures vs the material, 4000 points: error mean {mean:.1e}, max {worst:.1e}")
    assert float(error.mean()) < 0.01 and float(error.max()) < 0.1


def test_export_contract(asset, tmp_path):
    vertices, faces, uv, uv_faces, textures = asset
    light = EnvironmentLight(EnvironmentLightConfig(resolution=16, min_resolution=4))
    folder = export_asset(tmp_path / "mesh", vertices, faces, uv, uv_faces, textures, light)
    names = {p.name for p in folder.iterdir()}
    assert names == {
        "mesh.obj", "mesh.mtl", "mesh.glb", "probe.hdr", "texture_kd.png", "texture_roughness.png",
        "texture_metallic.png", "texture_ks.png",
    }  # fmt: skip
    mtl = (folder / "mesh.mtl").read_text()
    maps = ("map_Kd texture_kd.png", "map_Pr texture_roughness.png", "map_Pm texture_metallic.png")
    for line in ("Kd 1 1 1", "map_Ks texture_ks.png", *maps):
        assert line in mtl
    kd, rough, metal, ks = (
        iio.imread(folder / f"texture_{n}.png") for n in ("kd", "roughness", "metallic", "ks")
    )
    assert (
        kd.shape == (512, 512, 3) and rough.shape == metal.shape == (512, 512) and ks.shape == (512, 512, 3)
    )
    assert kd.dtype == np.uint8 and (ks[..., 0] == 255).all()
    assert np.array_equal(ks[..., 1], rough) and np.array_equal(ks[..., 2], metal)
    # The OBJ through trimesh: same surface, UVs, normals pointing outwards.
    loaded = trimesh.load(folder / "mesh.obj", process=False, force="mesh")
    area = float(face_areas(vertices, faces).sum())
    assert abs(loaded.area - area) < 1e-3
    assert loaded.visual.uv is not None and loaded.volume > 0
    # The GLB through pygltflib: one primitive with positions/normals/uv, a PBR material, two images.
    gltf = pygltflib.GLTF2().load(str(folder / "mesh.glb"))
    primitive = gltf.meshes[0].primitives[0]
    assert gltf.accessors[primitive.indices].count == 3 * len(faces)
    assert gltf.accessors[primitive.attributes.POSITION].count == len(uv)
    pbr = gltf.materials[0].pbrMetallicRoughness
    assert pbr.baseColorTexture.index == 0 and pbr.metallicRoughnessTexture.index == 1
    assert len(gltf.images) == 2 and all(i.mimeType == "image/png" for i in gltf.images)
    scene = trimesh.load(folder / "mesh.glb", force="mesh")
    assert abs(scene.area - loaded.area) < 1e-3
    probe = read_hdr(folder / "probe.hdr")
    assert probe.shape[1] == 2 * probe.shape[0]


def test_occlusion_is_baked_into_orm_red_and_the_glb(asset, tmp_path):
    # Per-vertex occlusion through the UV layout: the ORM's R channel holds it where the vertex values say
    # (a linear function of position bakes exactly), the GLB names the ORM as its occlusionTexture, and
    # load_asset shades the asset read back with the mesh's own occlusion.
    vertices, faces, uv, uv_faces, textures = asset
    values = (0.5 + 0.4 * vertices[:, 2:3] / 0.7).clamp(0, 1)
    baked = bake_vertex_values(values, faces, uv, uv_faces, 512)
    positions = bake_vertex_values(vertices, faces, uv, uv_faces, 512)
    covered = textures.covered
    expected = (0.5 + 0.4 * positions[..., 2:3] / 0.7).clamp(0, 1)
    assert (baked[covered] - expected[covered]).abs().max().item() < 1e-4
    with_ao = Textures(textures.base_color, textures.roughness, textures.metallic, covered, occlusion=baked)
    light = EnvironmentLight(EnvironmentLightConfig(resolution=16, min_resolution=4))
    folder = export_asset(tmp_path / "mesh", vertices, faces, uv, uv_faces, with_ao, light)
    ks = iio.imread(folder / "texture_ks.png")
    flipped = np.flip(covered.numpy(), 0)
    red = np.flip(baked[..., 0].numpy(), 0)
    assert np.abs(ks[..., 0][flipped] / 255 - red[flipped]).max() <= 0.5 / 255 + 1e-6
    gltf = pygltflib.GLTF2().load(str(folder / "mesh.glb"))
    assert (
        gltf.materials[0].occlusionTexture.index
        == 1
        == gltf.materials[0].pbrMetallicRoughness.metallicRoughnessTexture.index
    )
    read_back = load_asset(folder, 16)
    assert read_back.occlusion is not None and len(read_back.occlusion) == len(read_back.vertices)
    assert read_back.occlusion.min().item() > 0.95  # a sphere: nothing occludes it
    plain = export_asset(tmp_path / "plain", vertices, faces, uv, uv_faces, textures, light)
    assert pygltflib.GLTF2().load(str(plain / "mesh.glb")).materials[0].occlusionTexture is None
    assert load_asset(plain, 16).occlusion is None


def test_export_replaces_atomically(asset, tmp_path):
    vertices, faces, uv, uv_faces, textures = asset
    folder = tmp_path / "mesh"
    export_asset(folder, vertices, faces, uv, uv_faces, textures)
    (folder / "stale.txt").write_text("from the previous export")
    export_asset(folder, vertices, faces, uv, uv_faces, textures)
    assert not (folder / "stale.txt").exists() and (folder / "mesh.obj").is_file()
    assert not list(tmp_path.glob(".mesh.*"))


def _glb_mesh(folder):
    gltf = pygltflib.GLTF2().load(str(folder / "mesh.glb"))
    primitive = gltf.meshes[0].primitives[0]
    positions = gltf_accessor(gltf, primitive.attributes.POSITION, 3)
    indices = gltf_accessor(gltf, primitive.indices, 1).reshape(-1, 3)
    return gltf, primitive, positions, indices


def test_glb_is_y_up_and_obj_stays_in_the_world_frame(asset, tmp_path):
    vertices, faces, uv, uv_faces, textures = asset
    shifted = vertices * torch.tensor([1.0, 0.5, 0.25]) + torch.tensor([0.3, -0.2, 0.1])
    folder = export_asset(tmp_path / "z_up", shifted, faces, uv, uv_faces, textures)
    _, _, positions, indices = _glb_mesh(folder)
    obj = trimesh.load(folder / "mesh.obj", process=False, force="mesh")
    assert np.allclose(obj.vertices.min(0), shifted.min(0).values.numpy(), atol=1e-6)
    expected = shifted[faces].numpy()  # world (x, y, z) -> glTF (x, z, -y), face by face
    got = positions[indices]
    assert np.allclose(got[..., 0], expected[..., 0], atol=1e-6)
    assert np.allclose(got[..., 1], expected[..., 2], atol=1e-6)
    assert np.allclose(got[..., 2], -expected[..., 1], atol=1e-6)
    # A world whose up is another axis: that axis becomes glTF's +Y (the tallest extent here is along x).
    up = (0.6, 0.8, 0.0)
    folder = export_asset(
        tmp_path / "tilted", shifted, faces, uv, uv_faces, textures, up=up, up_source="test"
    )
    gltf, _, positions, indices = _glb_mesh(folder)
    heights = positions[indices][..., 1]
    assert np.allclose(heights, (shifted[faces].numpy() @ np.array(up)), atol=1e-5)
    assert gltf.asset.extras == {"world_up": list(up), "world_up_source": "test"}


def test_normal_map_export(asset, tmp_path):
    vertices, faces, uv, uv_faces, textures = asset
    tilt = torch.zeros_like(textures.base_color)
    tilt[..., 0], tilt[..., 2] = 0.3, 1.0
    with_normals = Textures(
        textures.base_color, textures.roughness, textures.metallic, textures.covered,
        torch.nn.functional.normalize(tilt, dim=-1),
    )  # fmt: skip
    folder = export_asset(tmp_path / "mesh", vertices, faces, uv, uv_faces, with_normals)
    mtl = (folder / "mesh.mtl").read_text()
    assert "norm texture_n.png" in mtl and "bump texture_n.png" in mtl
    image = iio.imread(folder / "texture_n.png")
    assert image.shape == (512, 512, 3) and abs(int(image[0, 0, 0]) - round(255 * (0.3 / 1.044 + 1) / 2)) <= 1
    gltf, primitive, positions, _ = _glb_mesh(folder)
    assert gltf.materials[0].normalTexture.index == 2 and len(gltf.images) == 3
    tangents = gltf_accessor(gltf, primitive.attributes.TANGENT, 4)
    normals = gltf_accessor(gltf, primitive.attributes.NORMAL, 3)
    assert len(tangents) == len(positions)
    assert np.allclose(np.linalg.norm(tangents[:, :3], axis=-1), 1, atol=1e-5)
    assert np.abs((tangents[:, :3] * normals).sum(-1)).max() < 1e-4
    assert set(np.unique(tangents[:, 3])) <= {-1.0, 1.0}
    # Read back as a texture material: the same normals (8-bit quantized).
    from recon.asset.texture_material import TextureMaterial

    back = TextureMaterial.from_files(folder).textures().normal
    assert back is not None and float((back - with_normals.normal).abs().max()) < 0.01


VALIDATOR = ROOT / ".ci" / "node" / "node_modules" / "gltf-validator"


@pytest.mark.skipif(
    not VALIDATOR.is_dir() or shutil.which("node") is None,
    reason="the Khronos glTF validator is not installed (npm install --prefix .ci/node gltf-validator)",
)
def test_glb_passes_the_khronos_validator(asset, tmp_path):
    vertices, faces, uv, uv_faces, textures = asset
    normal = torch.nn.functional.normalize(
        torch.rand_like(textures.base_color) * 0.4 + torch.tensor([0, 0, 1.0])
    )
    occlusion = torch.rand_like(textures.roughness)
    for name, normal_map, ao in (
        ("plain", None, None),
        ("normal_mapped", normal, None),
        ("ao", None, occlusion),
    ):
        tex = Textures(
            textures.base_color, textures.roughness, textures.metallic, textures.covered, normal_map, ao
        )
        folder = export_asset(tmp_path / name, vertices, faces, uv, uv_faces, tex, up=(0.0, 0.6, 0.8))
        script = Path(__file__).with_name("validate_gltf.js")
        command = ["node", str(script), str(VALIDATOR), str(folder / "mesh.glb")]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
        report = json.loads(result.stdout)
        assert report["errors"] == 0 and report["warnings"] == 0, report["messages"]
