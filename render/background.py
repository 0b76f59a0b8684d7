"""What a photo shows where the object is not: the environment light at infinity and, optionally, the
ground plane the object stands on (a textured disk, found by ray-plane intersection, not rasterized).

    ground = GroundPlane(origin, normal, radius, texture_resolution=512)
    colour = background_radiance(origins, directions, light, ground)   # [B, H, W, 3]

The ground plane's texture is unlit radiance (it holds the table's colour and its shadows as the photos
show them). The object is always in front of the plane where both cover a pixel: it stands on the plane
and the cameras look from above, so compositing the rendered object over this background is exact.
"""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn

from render.light import EnvironmentLight
from render.raster import texture
from render.renderer import RenderOutput


def plane_axes(normal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Two unit vectors [3] spanning the plane of unit ``normal`` [3] (right-handed: u x v = normal)."""
    helper = torch.tensor([1.0, 0.0, 0.0], dtype=normal.dtype, device=normal.device)
    if abs(float(normal[0])) > 0.9:
        helper = torch.tensor([0.0, 1.0, 0.0], dtype=normal.dtype, device=normal.device)
    u = torch.linalg.cross(helper, normal)
    u = u / u.norm()
    return u, torch.linalg.cross(normal, u)


def ray_plane_hits(
    origins: torch.Tensor, directions: torch.Tensor, point: torch.Tensor, normal: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Where rays [..., 3] meet the plane through ``point`` with unit ``normal`` from its upper side:
    hit points [..., 3] and a mask [...] (the ray starts above the plane and goes down to it)."""
    height = ((origins - point) * normal).sum(-1)
    descent = -(directions * normal).sum(-1)
    hit = (height > 0) & (descent > 1e-6)
    t = torch.where(hit, height / descent.clamp(min=1e-6), torch.zeros_like(height))
    return origins + t[..., None] * directions, hit


class GroundPlane(nn.Module):
    """A textured disk of ``radius`` around ``origin`` in the plane with unit ``normal`` (pointing up).

    texture: [T, T, 3] linear radiance over the square [-radius, radius]^2 of the plane's (u, v) axes
    (row 0 at v = -radius); a learnable parameter.
    """

    def __init__(
        self,
        origin: torch.Tensor,
        normal: torch.Tensor,
        radius: float,
        texture_resolution: int = 512,
        initial: torch.Tensor | None = None,
    ):
        super().__init__()
        normal = torch.as_tensor(normal, dtype=torch.float32)
        normal = normal / normal.norm()
        u, v = plane_axes(normal)
        self.register_buffer("origin", torch.as_tensor(origin, dtype=torch.float32).clone())
        self.register_buffer("normal", normal)
        self.register_buffer("axes", torch.stack((u, v)))
        self.register_buffer("extent", torch.tensor(float(radius)))
        if initial is None:
            initial = torch.full((texture_resolution, texture_resolution, 3), 0.5)
        self.texture = nn.Parameter(initial.detach().clone().float())

    def plane_coordinates(self, points: torch.Tensor) -> torch.Tensor:
        """[..., 2] (u, v) / radius of points [..., 3] on the plane: the disk is the unit disk."""
        return ((points - self.origin)[..., None, :] * self.axes).sum(-1) / self.extent

    def radiance(self, points: torch.Tensor) -> torch.Tensor:
        """[..., 3] the texture at points [..., 3] on the plane (bilinear)."""
        uv = self.plane_coordinates(points)
        grid = uv.reshape(1, 1, -1, 2)
        image = self.texture.permute(2, 0, 1)[None]
        out = F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)
        return out[0, :, 0].t().reshape(*points.shape[:-1], 3)

    def hits(self, origins: torch.Tensor, directions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Hit points [..., 3] of rays on the disk and the mask [...] of rays that hit it."""
        points, hit = ray_plane_hits(origins, directions, self.origin, self.normal)
        inside = self.plane_coordinates(points).norm(dim=-1) < 1
        return points, hit & inside

    @property
    def radius(self) -> float:
        return float(self.extent)

    def smoothness(self) -> torch.Tensor:
        """Mean absolute difference of neighbouring texels (total variation)."""
        t = self.texture
        return (t[1:] - t[:-1]).abs().mean() + (t[:, 1:] - t[:, :-1]).abs().mean()


def environment_radiance(light: EnvironmentLight, directions: torch.Tensor) -> torch.Tensor:
    """[..., 3] the light's full-resolution cube map seen in directions [..., 3] (bilinear; differentiable
    in the texels)."""
    flat = directions.reshape(1, -1, 1, 3).contiguous()
    out = texture(light.base[None], flat, filter_mode="linear", boundary_mode="cube")
    return out.reshape(*directions.shape[:-1], 3)


def background_radiance(
    origins: torch.Tensor,
    directions: torch.Tensor,
    light: EnvironmentLight,
    ground: GroundPlane | None = None,
) -> torch.Tensor:
    """[..., 3] what rays [..., 3] see without the object: the ground plane where they hit it, else the
    environment light."""
    colour = environment_radiance(light, directions)
    if ground is None:
        return colour
    points, hit = ground.hits(origins, directions)
    if not bool(hit.any()):
        return colour
    return colour.index_put((hit,), ground.radiance(points[hit]).to(colour.dtype))


class Backdrop(nn.Module):
    """The background of photos without masks, for a model to composite its render over: the light it
    is given (at full resolution) and, when there is one, the ground plane (its texture a parameter)."""

    def __init__(self, ground: GroundPlane | None = None):
        super().__init__()
        self.ground = ground
        self.register_buffer(
            "enabled", torch.ones(())
        )  # marks a backdrop in state dicts, with or without ground

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor], prefix: str = "") -> Backdrop:
        """The backdrop whose :meth:`state_dict` (keys under ``prefix``) is ``state``."""
        ground = None
        if f"{prefix}ground.texture" in state:
            texture = state[f"{prefix}ground.texture"]
            key = lambda name: state[f"{prefix}ground.{name}"]  # noqa: E731
            ground = GroundPlane(
                key("origin"), key("normal"), float(key("extent")), texture.shape[0], texture
            )
            ground.axes.copy_(state[f"{prefix}ground.axes"])
        return cls(ground)

    def clamp_(self) -> None:
        """Project the ground texture back to non-negative radiance (after each optimizer step)."""
        if self.ground is not None:
            with torch.no_grad():
                self.ground.texture.clamp_(min=0)

    def forward(self, out: RenderOutput, cameras, light: EnvironmentLight) -> RenderOutput:
        """``out`` (rendered over black) composited over what ``cameras`` (``rays()`` [B, H, W, 3] each,
        duck-typed like render.renderer's cameras) see of the background."""
        origins, directions = cameras.rays()
        colour = background_radiance(origins, directions, light, self.ground)
        return replace(out, rgb=out.rgb + colour.to(out.rgb) * (1 - out.alpha))
