"""The truth of a scene's materials, ``gt_material.json`` beside the true mesh (the built-in scenes write
one) or one the user writes, e.g. for spot_mitsuba::

    {"base_color": "../spot/spot_texture.png", "roughness": 0.45, "metallic": 0.0}

Each channel is a number (or a linear RGB list), an image looked up by the true mesh's UVs (base colour sRGB,
the others linear), or "procedural" (the built-in object's material, recon.scenes.procedural). Paths are
relative to the JSON file. This module owns the format: it reads, writes and exports it as an asset.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from data.errors import DatasetError
from data.files import write_text_atomic
from data.images import read_rgba, srgb_to_linear
from geometry.mesh import Mesh, unwrap_uv
from geometry.obj import read_obj
from recon.asset.bake import Textures, bake_textures, bake_vertex_values
from recon.asset.export import export_asset
from recon.scenes.procedural import procedural_material
from render.light import EnvironmentLight
from render.occlusion import vertex_occlusion
from render.raster import texture

MATERIAL_FILE = "gt_material.json"
RELIGHT_FOLDER = "relight"
"""Beside a built-in scene: the test views again under a second light (transforms_test.json, env.hdr)."""
CHANNELS = ("base_color", "roughness", "metallic")


@dataclass
class ReferenceMaterial:
    """The true material on the true mesh: each channel a constant [C], an image [H, W, C] (linear, row 0
    = v = 0) or None for the procedural material."""

    mesh: Mesh
    channels: dict[str, torch.Tensor | None]

    def at(self, points: torch.Tensor, uv: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """Each channel [P, C] at surface points [P, 3] with their uv [P, 2] on the true mesh."""
        procedural = None
        out = {}
        for name, value in self.channels.items():
            size = 3 if name == "base_color" else 1
            if value is None:
                procedural = procedural or procedural_material(points)
                out[name] = procedural[CHANNELS.index(name)].float()
            elif value.dim() == 1:
                out[name] = value.float().expand(len(points), size)
            else:
                if uv is None:
                    raise DatasetError(f"{name}: a texture needs the true mesh's texture coordinates")
                st = uv[None, :, None].contiguous()
                out[name] = texture(value[None].contiguous(), st, filter_mode="linear")[0, :, 0]
        return out


def _channel(name: str, value, folder: Path) -> torch.Tensor | None:
    size = 3 if name == "base_color" else 1
    if value == "procedural":
        return None
    if isinstance(value, int | float) or isinstance(value, list):
        values = torch.tensor(value if isinstance(value, list) else [value] * size, dtype=torch.float32)
        if len(values) != size:
            raise DatasetError(f"{name}: expected {size} values, got {len(values)}")
        return values
    path = Path(value)
    path = path if path.is_absolute() else folder / path
    if not path.is_file():
        raise DatasetError(f"{path}: the {name} image of the reference material is missing")
    image = torch.from_numpy(read_rgba(path)[..., :size].copy()).float() / 255
    image = srgb_to_linear(image) if name == "base_color" else image
    return torch.flip(image, dims=[0])  # row 0 = v = 0


def load_reference(path: str | os.PathLike, mesh_path: str | os.PathLike) -> ReferenceMaterial:
    """A reference material from its JSON (module docstring) on the mesh at ``mesh_path``."""
    path = Path(path)
    try:
        spec = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise DatasetError(f"{path}: not a readable material description ({error})") from None
    missing = [name for name in CHANNELS if name not in spec]
    if missing:
        raise DatasetError(f"{path}: no {', '.join(missing)}")
    channels = {name: _channel(name, spec[name], path.parent) for name in CHANNELS}
    return ReferenceMaterial(read_obj(mesh_path), channels)


def export_reference(
    reference: ReferenceMaterial, folder: Path, resolution: int = 1024, environment: Path | None = None
) -> Path:
    """The truth as an asset folder (docs/design.md, "Export contract"), for renderers that read assets:
    the true mesh with its own UVs when every image channel has them (constants filled in at the base
    colour image's size), else unwrapped and baked at ``resolution``; its ambient occlusion in ORM's R;
    ``environment`` (.hdr) as its probe."""
    mesh = reference.mesh
    images = [v for v in reference.channels.values() if v is not None and v.dim() == 3]
    procedural = any(v is None for v in reference.channels.values())
    if mesh.uv is not None and not procedural and images:
        size = images[0].shape[:2]
        filled = {
            name: v if v.dim() == 3 else v.expand(*size, len(v)) for name, v in reference.channels.items()
        }
        textures = Textures(
            filled["base_color"], filled["roughness"], filled["metallic"], torch.ones(size, dtype=torch.bool)
        )
        uv, uv_faces = mesh.uv, mesh.uv_faces if mesh.uv_faces is not None else mesh.faces
    else:
        uv, uv_faces = unwrap_uv(mesh.vertices, mesh.faces, resolution=resolution)

        def material(points: torch.Tensor):  # textured channels need uv: at() says so
            values = reference.at(points, None)
            return values["base_color"], values["roughness"], values["metallic"]

        textures = bake_textures(material, mesh.vertices, mesh.faces, uv, uv_faces, resolution)
    occlusion = vertex_occlusion(mesh.vertices, mesh.faces)[:, None]
    textures.occlusion = bake_vertex_values(occlusion, mesh.faces, uv, uv_faces, textures.base_color.shape[0])
    light = EnvironmentLight.from_file(environment) if environment is not None else None
    return export_asset(folder, mesh.vertices, mesh.faces, uv, uv_faces, textures, light)


def write_reference(path: Path, base_color, roughness, metallic) -> None:
    """A gt_material.json (module docstring)."""
    data = {"base_color": base_color, "roughness": roughness, "metallic": metallic}
    write_text_atomic(path, json.dumps(data, indent=2))
