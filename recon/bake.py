"""Baking a material function into UV textures (rasterized in texture space), with seam dilation."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from render.raster import interpolate, rasterize


@dataclass
class Textures:
    """Texture images, row 0 = v = 0 (the bottom row of the image as OBJ sees it; flip before saving).

    base_color [R, R, 3] linear, roughness [R, R, 1], metallic [R, R, 1]; covered [R, R] marks texels
    inside a chart (the rest is dilated from the charts' borders).
    """

    base_color: torch.Tensor
    roughness: torch.Tensor
    metallic: torch.Tensor
    covered: torch.Tensor


def uv_vertex_positions(vertices: torch.Tensor, faces: torch.Tensor, uv_faces: torch.Tensor, n_uv: int):
    """[T, 3] the position of each UV vertex (its face corners' mesh vertex)."""
    positions = vertices.new_zeros(n_uv, 3)
    positions[uv_faces.reshape(-1)] = vertices[faces.reshape(-1)]
    return positions


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
    """Evaluate ``material(points) -> (base_color, roughness, metallic)`` at the centre of every texel
    covered by the UV layout (positions interpolated on the triangles), then dilate by ``padding``."""
    positions = uv_vertex_positions(vertices, faces, uv_faces, len(uv))
    clip = torch.cat((uv * 2 - 1, torch.zeros_like(uv[:, :1]), torch.ones_like(uv[:, :1])), -1)[None]
    tri = uv_faces.to(torch.int32).contiguous()
    rast, _ = rasterize(clip.contiguous(), tri, (resolution, resolution))
    points, _ = interpolate(positions[None].contiguous(), rast, tri)
    covered = rast[0, ..., 3] > 0
    values = torch.zeros(resolution, resolution, 5, device=vertices.device)
    with torch.no_grad():
        p = points[0][covered]
        outputs = [torch.cat(tuple(material(part)), -1) for part in p.split(chunk)] if len(p) else []
        if outputs:
            values[covered] = torch.cat(outputs).float()
    values = dilate(values, covered, padding)
    return Textures(values[..., :3], values[..., 3:4], values[..., 4:5], covered)
