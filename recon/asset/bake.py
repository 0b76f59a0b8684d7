"""Baking a material function into UV textures (rasterized in texture space), with seam dilation."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from geometry import cpu_threads
from geometry.mesh import vertex_normals
from geometry.tangents import apply_normal_offset, to_tangent_space
from render.raster import interpolate, rasterize
from render.renderer import interpolate_tangents


@dataclass
class Textures:
    """Texture images, row 0 = v = 0 (the bottom row of the image as OBJ sees it; flip before saving).

    base_color [R, R, 3] linear, roughness [R, R, 1], metallic [R, R, 1]; covered [R, R] marks texels
    inside a chart (the rest is dilated from the charts' borders); normal [R, R, 3] unit tangent-space
    normals (MikkTSpace frame, +Y = bitangent, OpenGL convention) or None without a normal map.
    """

    base_color: torch.Tensor
    roughness: torch.Tensor
    metallic: torch.Tensor
    covered: torch.Tensor
    normal: torch.Tensor | None = None
    occlusion: torch.Tensor | None = None


def uv_vertex_positions(vertices: torch.Tensor, faces: torch.Tensor, uv_faces: torch.Tensor, n_uv: int):
    """[T, C] the value of each UV vertex (its face corners' mesh vertex) for per-vertex values [V, C],
    e.g. the positions."""
    positions = vertices.new_zeros(n_uv, vertices.shape[-1])
    positions[uv_faces.reshape(-1)] = vertices[faces.reshape(-1)]
    return positions


def bake_vertex_values(
    values: torch.Tensor, faces: torch.Tensor, uv: torch.Tensor, uv_faces: torch.Tensor,
    resolution: int, padding: int = 8,
) -> torch.Tensor:  # fmt: skip
    """Per-vertex values [V, C] interpolated over the UV layout into a texture [R, R, C] (row 0 = v = 0),
    dilated by ``padding`` texels past the charts."""
    clip = torch.cat((uv * 2 - 1, torch.zeros_like(uv[:, :1]), torch.ones_like(uv[:, :1])), -1)[None]
    tri = uv_faces.to(torch.int32).contiguous()
    with torch.no_grad():
        rast, _ = rasterize(clip.contiguous(), tri, (resolution, resolution))
        per_uv = uv_vertex_positions(values.float(), faces, uv_faces, len(uv))
        image, _ = interpolate(per_uv[None].contiguous(), rast, tri)
    return dilate(image[0], rast[0, ..., 3] > 0, padding)


def dilate(image: torch.Tensor, covered: torch.Tensor, steps: int) -> torch.Tensor:
    """Grow the covered region of ``image`` [R, R, C] by ``steps`` texels (mean of covered neighbours)."""
    value = (image * covered[..., None]).permute(2, 0, 1)[None]
    weight = covered[None, None].to(image.dtype)
    kernel = torch.ones(1, 1, 3, 3, dtype=image.dtype, device=image.device)
    channels = value.shape[1]
    for _ in range(steps):
        total = F.conv2d(value, kernel.expand(channels, 1, 3, 3), padding=1, groups=channels)
        count = F.conv2d(weight, kernel, padding=1)
        grown = (count > 0) & (weight == 0)
        value = torch.where(grown, total / count.clamp_min(1), value)
        weight = torch.where(grown, torch.ones_like(weight), weight)
    return value[0].permute(1, 2, 0)


def bake_textures(
    material,
    vertices: torch.Tensor,
    faces: torch.Tensor,
    uv: torch.Tensor,
    uv_faces: torch.Tensor,
    resolution: int = 1024,
    padding: int = 8,
    chunk: int = 1 << 17,
) -> Textures:
    """Evaluate ``material(points) -> (base_color, roughness, metallic[, normal offset])`` at the centre of
    every texel covered by the UV layout (positions interpolated on the triangles), then dilate by
    ``padding``. A normal offset (world space, render.renderer's "offset" mode) is baked into a
    tangent-space normal map in the MikkTSpace frame of this layout."""
    positions = uv_vertex_positions(vertices, faces, uv_faces, len(uv))
    clip = torch.cat((uv * 2 - 1, torch.zeros_like(uv[:, :1]), torch.ones_like(uv[:, :1])), -1)[None]
    tri = uv_faces.to(torch.int32).contiguous()
    rast, _ = rasterize(clip.contiguous(), tri, (resolution, resolution))
    points, _ = interpolate(positions[None].contiguous(), rast, tri)
    covered = rast[0, ..., 3] > 0
    with torch.no_grad():
        p = points[0][covered]
        outputs = [_evaluated(material, part) for part in p.split(chunk)] if len(p) else []
        channels = outputs[0].shape[-1] if outputs else 5
        values = torch.zeros(resolution, resolution, channels, device=vertices.device)
        if outputs:
            values[covered] = torch.cat(outputs).float()
        if channels > 5:
            values[..., 5:8][covered] = _tangent_space(
                values[..., 5:8][covered], vertices, faces, uv, uv_faces, rast
            )
    values = dilate(values, covered, padding)
    normal = None
    if channels > 5:  # texels no chart reaches even after dilation: flat
        flat = torch.tensor([0.0, 0.0, 1.0], device=values.device)
        baked = values[..., 5:8]
        normal = torch.nn.functional.normalize(
            torch.where(baked.norm(dim=-1, keepdim=True) > 1e-6, baked, flat), dim=-1
        )
    return Textures(values[..., :3], values[..., 3:4], values[..., 4:5], covered, normal)


def _evaluated(material, points: torch.Tensor) -> torch.Tensor:
    """[P, C] the material's outputs at ``points`` [P, 3], concatenated (one chunk of the bake)."""
    cpu_threads.adapt()
    return torch.cat(tuple(material(points)), -1)


def _tangent_space(offset, vertices, faces, uv, uv_faces, rast) -> torch.Tensor:
    """Normal offsets [P, 3] at the covered texels of a UV-space ``rast`` -> tangent-space normals [P, 3]."""
    smooth = vertex_normals(vertices, faces)
    normals, _ = interpolate(uv_vertex_positions(smooth, faces, uv_faces, len(uv))[None].contiguous(), rast,
                             uv_faces.to(torch.int32).contiguous())  # fmt: skip
    per_texel = interpolate_tangents(vertices, smooth, faces, uv, uv_faces, rast)
    covered = rast[0, ..., 3] > 0
    n = torch.nn.functional.normalize(normals[0][covered], dim=-1, eps=1e-20)
    return to_tangent_space(apply_normal_offset(n, offset), n, per_texel[0][covered])
