"""The export contract (docs/design.md, "Export contract"): OBJ + MTL + PNG textures, a glTF 2.0 binary
(+Y up) and the light probe.

All files are written into a temporary sibling folder that replaces the target folder only once
complete, so an interrupted export never leaves a half-written asset (the previous one stays).
"""

from __future__ import annotations

import io
import json
import os
import struct
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch

from data.files import atomic_folder
from data.images import linear_to_srgb, to_uint8
from data.orientation import Z_UP, rotation_to_z_up, world_to_gltf
from geometry.mesh import vertex_normals
from geometry.obj import write_obj
from geometry.tangents import corner_tangents
from recon.asset.bake import Textures
from render.light import EnvironmentLight

MTL = """# inverse-renderer export (metallic-roughness PBR)
newmtl material0
Kd 1 1 1
Ks 0 0 0
map_Kd texture_kd.png
map_Pr texture_roughness.png
map_Pm texture_metallic.png
map_Ks texture_ks.png
"""
NORMAL_MAP_LINES = "norm texture_n.png\nbump texture_n.png\n"


def _to_uint8(image: torch.Tensor) -> np.ndarray:
    """[R, R, C] in [0, 1], row 0 = v = 0 -> uint8, top row first (as image files store it)."""
    return to_uint8(torch.flip(image, dims=[0]))


def texture_images(textures: Textures) -> dict[str, np.ndarray]:
    """The PNG images of the contract: sRGB base colour, linear roughness / metallic, ORM, and the
    tangent-space normal map ((n + 1) / 2) when there is one."""
    roughness, metallic = textures.roughness, textures.metallic
    occlusion = torch.ones_like(roughness) if textures.occlusion is None else textures.occlusion
    orm = torch.cat((occlusion.clamp(0, 1), roughness, metallic), -1)
    images = {
        "texture_kd.png": _to_uint8(linear_to_srgb(textures.base_color)),
        "texture_roughness.png": _to_uint8(roughness)[..., 0],
        "texture_metallic.png": _to_uint8(metallic)[..., 0],
        "texture_ks.png": _to_uint8(orm),
    }
    if textures.normal is not None:
        images["texture_n.png"] = _to_uint8((textures.normal + 1) / 2)
    return images


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    iio.imwrite(buffer, image, extension=".png")
    return buffer.getvalue()


def glb_bytes(
    positions: np.ndarray,
    normals: np.ndarray,
    texcoords: np.ndarray,
    indices: np.ndarray,
    kd_png: bytes,
    orm_png: bytes,
    tangents: np.ndarray | None = None,
    normal_png: bytes | None = None,
    extras: dict | None = None,
    occlusion: bool = False,
) -> bytes:
    """A glTF 2.0 binary: one mesh, one metallic-roughness material with embedded PNG textures, and a
    tangent-space ``normalTexture`` with its ``TANGENT`` attribute [N, 4] when both are given;
    ``occlusion``: the ORM texture's R channel is ambient occlusion (``occlusionTexture``). Arrays are
    in glTF axes (+Y up); ``extras`` go into the asset's metadata."""
    blobs, views = [], []

    def add(data: bytes, target: int | None = None) -> int:
        offset = sum(len(b) for b in blobs)
        blobs.append(data + b"\x00" * (-len(data) % 4))
        view = {"buffer": 0, "byteOffset": offset, "byteLength": len(data)}
        if target is not None:
            view["target"] = target
        views.append(view)
        return len(views) - 1

    array, element, float32, uint32 = 34962, 34963, 5126, 5125

    def accessor(data: np.ndarray, dtype: str, component: int, kind: str, target: int) -> dict:
        view = add(data.astype(dtype).tobytes(), target)
        count = len(data) if kind != "SCALAR" else int(data.size)
        return {"bufferView": view, "componentType": component, "count": count, "type": kind}

    accessors = [
        accessor(positions, "<f4", float32, "VEC3", array),
        accessor(normals, "<f4", float32, "VEC3", array),
        accessor(texcoords, "<f4", float32, "VEC2", array),
        accessor(indices, "<u4", uint32, "SCALAR", element),
    ]
    accessors[0].update(min=positions.min(0).tolist(), max=positions.max(0).tolist())
    attributes = {"POSITION": 0, "NORMAL": 1, "TEXCOORD_0": 2}
    pngs = [kd_png, orm_png]
    material = {
        "name": "material0",
        "pbrMetallicRoughness": {
            "baseColorTexture": {"index": 0},
            "metallicRoughnessTexture": {"index": 1},
            "baseColorFactor": [1.0, 1.0, 1.0, 1.0],
            "metallicFactor": 1.0,
            "roughnessFactor": 1.0,
        },
    }
    if occlusion:
        material["occlusionTexture"] = {"index": 1}
    if tangents is not None and normal_png is not None:
        attributes["TANGENT"] = len(accessors)
        accessors.append(accessor(tangents, "<f4", float32, "VEC4", array))
        material["normalTexture"] = {"index": len(pngs)}
        pngs.append(normal_png)
    images = [{"bufferView": add(data), "mimeType": "image/png"} for data in pngs]
    document = {
        "asset": {
            "version": "2.0",
            "generator": "inverse-renderer",
            **({"extras": extras} if extras else {}),
        },
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0}],
        "meshes": [{"primitives": [{"attributes": attributes, "indices": 3, "material": 0}]}],
        "materials": [material],
        "samplers": [{"magFilter": 9729, "minFilter": 9987, "wrapS": 33071, "wrapT": 33071}],
        "textures": [{"sampler": 0, "source": k} for k in range(len(images))],
        "images": images,
        "accessors": accessors,
        "bufferViews": views,
        "buffers": [{"byteLength": sum(len(b) for b in blobs)}],
    }
    text = json.dumps(document, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)
    binary = b"".join(blobs)
    total = 12 + 8 + len(text) + 8 + len(binary)
    return (
        struct.pack("<4sII", b"glTF", 2, total)
        + struct.pack("<I4s", len(text), b"JSON")
        + text
        + struct.pack("<I4s", len(binary), b"BIN\x00")
        + binary
    )


def gltf_vertices(
    vertices: torch.Tensor,
    normals: torch.Tensor,
    faces: torch.Tensor,
    uv: torch.Tensor,
    uv_faces: torch.Tensor,
) -> tuple[torch.Tensor, ...]:
    """glTF needs one index per vertex: split positions along UV seams (and where a UV vertex's faces have
    both UV orientations, so that each vertex has one MikkTSpace tangent).

    Returns positions [N, 3], normals [N, 3], uv [N, 2] (OBJ's v up), tangents [N, 4], indices [F, 3].
    """
    tangents = corner_tangents(vertices, normals, faces, uv, uv_faces).reshape(-1, 4)
    key = uv_faces.reshape(-1) * 2 + (tangents[:, 3] > 0).long()
    unique, indices = torch.unique(key, return_inverse=True)
    first = torch.full((len(unique),), len(key), dtype=torch.long).scatter_reduce(
        0, indices, torch.arange(len(key)), "amin"
    )
    corner_vertex, corner_uv = faces.reshape(-1)[first], uv_faces.reshape(-1)[first]
    return (
        vertices[corner_vertex],
        normals[corner_vertex],
        uv[corner_uv],
        tangents[first],
        indices.reshape(-1, 3),
    )


def export_asset(
    folder: str | os.PathLike,
    vertices: torch.Tensor,
    faces: torch.Tensor,
    uv: torch.Tensor,
    uv_faces: torch.Tensor,
    textures: Textures,
    light: EnvironmentLight | None = None,
    up: tuple[float, float, float] = Z_UP,
    up_source: str = "+Z by convention",
) -> Path:
    """Write the contract's files for a mesh in world units (counter-clockwise = outward).

    ``up`` is the world's up axis: mesh.glb maps it to glTF's +Y (rotating positions, normals and
    tangents), and probe.hdr is written with it as the lat-long's pole, so both light and asset stand
    upright in Blender; mesh.obj stays in the world frame (both are the world frame when up is +Z).
    """
    with atomic_folder(folder) as tmp:
        _write_asset(tmp, vertices, faces, uv, uv_faces, textures, light, up, up_source)
    return Path(folder)


def _write_asset(tmp: Path, vertices, faces, uv, uv_faces, textures, light, up, up_source) -> None:
    vertices, faces, uv, uv_faces = (t.detach().cpu() for t in (vertices, faces, uv, uv_faces))
    normals = vertex_normals(vertices, faces)
    write_obj(tmp / "mesh.obj", vertices, faces, uv, uv_faces, normals, "mesh.mtl", "material0")
    (tmp / "mesh.mtl").write_text(MTL + (NORMAL_MAP_LINES if textures.normal is not None else ""))
    pngs = {name: _png(image) for name, image in texture_images(textures).items()}  # encoded once
    for name, data in pngs.items():
        (tmp / name).write_bytes(data)
    positions, seam_normals, seam_uv, tangents, indices = gltf_vertices(
        vertices, normals, faces, uv, uv_faces
    )
    rotation = world_to_gltf(up).float()
    texcoords = torch.stack((seam_uv[:, 0], 1 - seam_uv[:, 1]), -1)  # glTF's v axis points down
    glb = glb_bytes(
        (positions @ rotation.T).numpy(),
        (seam_normals @ rotation.T).numpy(),
        texcoords.numpy(),
        indices.numpy().reshape(-1),
        pngs["texture_kd.png"],
        pngs["texture_ks.png"],
        tangents=torch.cat((tangents[:, :3] @ rotation.T, tangents[:, 3:]), -1).numpy(),
        normal_png=pngs.get("texture_n.png"),
        extras={"world_up": [float(x) for x in up], "world_up_source": up_source},
        occlusion=textures.occlusion is not None,
    )
    (tmp / "mesh.glb").write_bytes(glb)
    if light is not None:
        light.save_probe(tmp / "probe.hdr", rotation=rotation_to_z_up(up).float())
