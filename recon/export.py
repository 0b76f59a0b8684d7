"""The export contract of DESIGN.md §4: OBJ + MTL + PNG textures, a glTF 2.0 binary and the light probe.

All files are written into a temporary sibling folder that replaces the target folder only once
complete, so an interrupted export never leaves a half-written asset (the previous one stays).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch

from data.images import linear_to_srgb, to_uint8
from geometry.mesh import vertex_normals
from recon.bake import Textures, uv_vertex_positions
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


def _to_uint8(image: torch.Tensor) -> np.ndarray:
    """[R, R, C] in [0, 1], row 0 = v = 0 -> uint8, top row first (as image files store it)."""
    return to_uint8(torch.flip(image, dims=[0]))


def texture_images(textures: Textures) -> dict[str, np.ndarray]:
    """The four PNG images of the contract: sRGB base colour, linear roughness / metallic, ORM."""
    roughness, metallic = textures.roughness, textures.metallic
    orm = torch.cat((torch.ones_like(roughness), roughness, metallic), -1)
    return {
        "texture_kd.png": _to_uint8(linear_to_srgb(textures.base_color)),
        "texture_roughness.png": _to_uint8(roughness)[..., 0],
        "texture_metallic.png": _to_uint8(metallic)[..., 0],
        "texture_ks.png": _to_uint8(orm),
    }


def obj_text(vertices: torch.Tensor, normals: torch.Tensor, uv: torch.Tensor, faces, uv_faces) -> str:
    lines = ["mtllib mesh.mtl"]
    lines += [f"v {x:.7g} {y:.7g} {z:.7g}" for x, y, z in vertices.tolist()]
    lines += [f"vt {u:.7g} {v:.7g}" for u, v in uv.tolist()]
    lines += [f"vn {x:.6g} {y:.6g} {z:.6g}" for x, y, z in normals.tolist()]
    lines.append("usemtl material0")
    for (a, b, c), (ta, tb, tc) in zip((faces + 1).tolist(), (uv_faces + 1).tolist(), strict=True):
        lines.append(f"f {a}/{ta}/{a} {b}/{tb}/{b} {c}/{tc}/{c}")
    return "\n".join(lines) + "\n"


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
) -> bytes:
    """A glTF 2.0 binary: one mesh, one metallic-roughness material with embedded PNG textures."""
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
    images = [
        {"bufferView": add(kd_png), "mimeType": "image/png"},
        {"bufferView": add(orm_png), "mimeType": "image/png"},
    ]
    document = {
        "asset": {"version": "2.0", "generator": "inverse-renderer"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0}],
        "meshes": [
            {
                "primitives": [
                    {"attributes": {"POSITION": 0, "NORMAL": 1, "TEXCOORD_0": 2}, "indices": 3, "material": 0}
                ]
            }
        ],
        "materials": [
            {
                "name": "material0",
                "pbrMetallicRoughness": {
                    "baseColorTexture": {"index": 0},
                    "metallicRoughnessTexture": {"index": 1},
                    "baseColorFactor": [1.0, 1.0, 1.0, 1.0],
                    "metallicFactor": 1.0,
                    "roughnessFactor": 1.0,
                },
            }
        ],
        "samplers": [{"magFilter": 9729, "minFilter": 9987, "wrapS": 33071, "wrapT": 33071}],
        "textures": [{"sampler": 0, "source": 0}, {"sampler": 0, "source": 1}],
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


def export_asset(
    folder: str | os.PathLike,
    vertices: torch.Tensor,
    faces: torch.Tensor,
    uv: torch.Tensor,
    uv_faces: torch.Tensor,
    textures: Textures,
    light: EnvironmentLight | None = None,
) -> Path:
    """Write the contract's files for a mesh in world units (counter-clockwise = outward)."""
    folder = Path(folder)
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    vertices, faces, uv, uv_faces = (t.detach().cpu() for t in (vertices, faces, uv, uv_faces))
    normals = vertex_normals(vertices, faces)
    (tmp / "mesh.obj").write_text(obj_text(vertices, normals, uv, faces, uv_faces))
    (tmp / "mesh.mtl").write_text(MTL)
    pngs = {name: _png(image) for name, image in texture_images(textures).items()}  # encoded once
    for name, data in pngs.items():
        (tmp / name).write_bytes(data)
    # glTF needs one index per vertex: split positions along UV seams; its v axis points down.
    positions = uv_vertex_positions(vertices, faces, uv_faces, len(uv))
    seam_normals = uv_vertex_positions(normals, faces, uv_faces, len(uv))
    texcoords = torch.stack((uv[:, 0], 1 - uv[:, 1]), -1)
    glb = glb_bytes(
        positions.numpy(),
        seam_normals.numpy(),
        texcoords.numpy(),
        uv_faces.numpy().reshape(-1),
        pngs["texture_kd.png"],
        pngs["texture_ks.png"],
    )
    (tmp / "mesh.glb").write_bytes(glb)
    if light is not None:
        light.save_probe(tmp / "probe.hdr")
    if folder.exists():
        old = folder.with_name(f".{folder.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        folder.rename(old)
        tmp.rename(folder)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(folder)
    return folder
