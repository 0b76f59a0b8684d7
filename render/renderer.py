"""Mesh renderer: rasterize -> G-buffer -> split-sum shading -> antialias -> composite (top row first).

    out = render_views(vertices, faces, cameras, light, material, background)  # a data.cameras.Camera batch
    out.rgb      # [B, H, W, 3] linear RGB over the background, row 0 = the image's top row
    out.alpha    # [B, H, W, 1] coverage (antialiased)

``material(points [P, 3], uv [P, 2] | None) -> (base_color [P, 3], roughness [P, 1], metallic [P, 1])``
is evaluated only at covered pixels. A material with ``uses_uv_derivatives = True`` is called as
``material(points, uv, uv_da)`` with the screen-space derivatives uv_da [P, 4] (for mipmapping).
A fourth value perturbs the shading normal, as the material's ``normal_mode`` says: "tangent" (a
tangent-space normal map value [P, 3], in the MikkTSpace frame of the UV layout, see geometry.tangents)
or "offset" (a world-space vector [P, 3] whose part in the tangent plane is added to the normal).
Gradients reach vertices (through shading, positions and the antialiased silhouettes), the material
and the light.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from geometry.mesh import vertex_normals
from geometry.tangents import apply_normal_offset, corner_tangents, perturb_normals
from render.brdf import safe_normalize
from render.camera import to_clip
from render.light import EnvironmentLight
from render.raster import antialias, interpolate, rasterize

Material = Callable[[torch.Tensor, torch.Tensor | None], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


@dataclass
class RenderOutput:
    """rgb [B, H, W, 3] composited, alpha [B, H, W, 1], normal [B, H, W, 3] (world, 0 off the mesh),
    material [B, H, W, 5] (linear base colour, roughness, metallic; 0 off the mesh, not antialiased),
    rast [B, H, W, 4] (the rasterizer's, bottom row first)."""

    rgb: torch.Tensor
    alpha: torch.Tensor
    normal: torch.Tensor
    material: torch.Tensor
    rast: torch.Tensor


def render_mesh(
    vertices: torch.Tensor,
    faces: torch.Tensor,
    mvp: torch.Tensor,
    eyes: torch.Tensor,
    resolution: tuple[int, int],
    light: EnvironmentLight,
    material: Material,
    background: torch.Tensor | None = None,
    uv: torch.Tensor | None = None,
    uv_faces: torch.Tensor | None = None,
    backend: str | None = None,
    occlusion: torch.Tensor | None = None,
) -> RenderOutput:
    """Render a mesh (world units, counter-clockwise outward) in every camera.

    Args:
        vertices: [V, 3]; faces: [F, 3] integer; uv/uv_faces: optional [T, 2] / [F, 3] texture layout.
        mvp: [B, 4, 4] world -> clip (e.g. ``data.cameras.Camera.mvp()``); eyes: [B, 3] camera positions;
        resolution: (height, width).
        background: [B or 1, 1, 1, 3] linear colour behind the object (black when None).
        occlusion: [V] ambient occlusion per vertex (render.occlusion), interpolated and applied to both
            split-sum lookups (render.light.EnvironmentLight.shade); None: unoccluded.
    """
    device = vertices.device
    tri = faces.to(device=device, dtype=torch.int32).contiguous()
    clip = to_clip(vertices, mvp.to(device)).contiguous()  # [B, V, 4]
    rast, rast_db = rasterize(clip, tri, tuple(resolution), backend=backend)
    smooth_normals = vertex_normals(vertices, faces)
    # Positions, normals and occlusion in one interpolation (one pass over the covered pixels, not three).
    attributes = [vertices, smooth_normals]
    if occlusion is not None:
        attributes.append(occlusion.reshape(-1, 1).to(vertices))
    interpolated, _ = interpolate(torch.cat(attributes, -1)[None].contiguous(), rast, tri, backend=backend)
    normals = interpolated[..., 3:6]
    texcoords = texcoord_da = None
    if uv is not None:
        uv_tri = (
            (uv_faces if uv_faces is not None else faces).to(device=device, dtype=torch.int32).contiguous()
        )
        texcoords, texcoord_da = interpolate(
            uv[None].contiguous(), rast, uv_tri, rast_db, diff_attrs="all", backend=backend
        )
    covered = rast[..., 3] > 0
    colour = torch.zeros(*covered.shape, 3, device=device, dtype=vertices.dtype)
    material_image = torch.zeros(*covered.shape, 5, device=device, dtype=vertices.dtype)
    if bool(covered.any()):
        at_pixels = interpolated[covered]  # [P, 6 or 7]
        p, n = at_pixels[:, 0:3], safe_normalize(at_pixels[:, 3:6])
        view_index = torch.nonzero(covered)[:, 0]
        view = safe_normalize(eyes.to(device)[view_index] - p)
        st = texcoords[covered] if texcoords is not None else None
        if st is not None and getattr(material, "uses_uv_derivatives", False):
            values = tuple(material(p, st, texcoord_da[covered]))
        else:
            values = tuple(material(p, st))
        base_color, roughness, metallic = values[:3]
        if len(values) > 3:
            mode = getattr(material, "normal_mode", "offset")
            mesh = (vertices, smooth_normals, faces, uv, uv_faces)
            n = _perturbed_normals(n, values[3], mode, covered, rast, mesh, backend)
        ao = at_pixels[:, 6:7] if occlusion is not None else None
        shaded = light.shade(n, view, base_color, roughness, metallic, occlusion=ao)
        colour = colour.index_put((covered,), shaded.to(colour.dtype))
        sample = torch.cat((base_color, roughness, metallic), -1).detach().to(colour.dtype)
        material_image = material_image.index_put((covered,), sample)
    rgba = torch.cat((colour, covered[..., None].to(colour.dtype)), -1)
    rgba = antialias(rgba.contiguous(), rast, clip, tri, backend=backend)
    if background is None:
        background = torch.zeros(1, 1, 1, 3, device=device, dtype=rgba.dtype)
    rgb = rgba[..., :3] + background.to(rgba) * (1 - rgba[..., 3:])
    normal_image = torch.where(covered[..., None], safe_normalize(normals), torch.zeros_like(normals))
    flip = lambda x: torch.flip(x, dims=[1])  # noqa: E731 - rasterizer row 0 is the bottom (docs/design.md)
    return RenderOutput(flip(rgb), flip(rgba[..., 3:]), flip(normal_image), flip(material_image), rast)


def interpolate_tangents(
    vertices: torch.Tensor, normals: torch.Tensor, faces: torch.Tensor, uv: torch.Tensor,
    uv_faces: torch.Tensor, rast: torch.Tensor, backend: str | None = None,
) -> torch.Tensor:  # fmt: skip
    """MikkTSpace tangents (geometry.tangents.corner_tangents, not differentiated: the frame follows the
    mesh) interpolated over a ``rast`` of these faces: [B, H, W, 4]."""
    with torch.no_grad():
        tangents = corner_tangents(vertices, normals, faces, uv, uv_faces)
    corners = torch.arange(3 * len(faces), device=rast.device, dtype=torch.int32).reshape(-1, 3)
    per_pixel, _ = interpolate(tangents.reshape(1, -1, 4).contiguous(), rast, corners, backend=backend)
    return per_pixel


def _perturbed_normals(n, value, mode, covered, rast, mesh, backend) -> torch.Tensor:
    """Shading normals [P, 3] at the covered pixels from a material's normal value (module docstring)."""
    if mode == "offset":
        return apply_normal_offset(n, value)
    if mode != "tangent":
        raise ValueError(f"normal_mode: expected 'tangent' or 'offset', got {mode!r}")
    vertices, smooth_normals, faces, uv, uv_faces = mesh
    if uv is None:
        raise ValueError("a tangent-space normal map needs the mesh's uv layout")
    uv_faces = uv_faces if uv_faces is not None else faces
    per_pixel = interpolate_tangents(vertices, smooth_normals, faces, uv, uv_faces, rast, backend)
    return perturb_normals(value, n, per_pixel[covered])


def render_views(
    vertices: torch.Tensor,
    faces: torch.Tensor,
    cameras,
    light: EnvironmentLight,
    material: Material,
    background: torch.Tensor | None = None,
    uv: torch.Tensor | None = None,
    uv_faces: torch.Tensor | None = None,
    backend: str | None = None,
    occlusion: torch.Tensor | None = None,
) -> RenderOutput:
    """:func:`render_mesh` for a camera batch: any object with ``mvp()`` [B, 4, 4], ``centers`` [B, 3],
    ``height`` and ``width`` (``data.cameras.Camera``; taken by duck typing so that render/ does not
    import data/)."""
    return render_mesh(
        vertices,
        faces,
        cameras.mvp(),
        cameras.centers,
        (cameras.height, cameras.width),
        light,
        material,
        background,
        uv=uv,
        uv_faces=uv_faces,
        backend=backend,
        occlusion=occlusion,
    )
