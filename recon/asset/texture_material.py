"""Texture materials: PBR textures looked up by UV (stage 2, and for reading exported assets back)."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch
from torch import nn

from data.images import srgb_to_linear
from recon.asset.bake import Textures
from recon.errors import AssetError
from render.raster import texture


class TextureMaterial(nn.Module):
    """base colour [1, R, R, 3] (linear) and roughness/metallic [1, R, R, 2] textures, row 0 = v = 0, and
    optionally a tangent-space normal map [1, R, R, 3] (render.renderer's "tangent" normal mode).

    ``forward(points, uv, uv_da=None)`` samples them at uv [P, 2]: trilinear mipmapping when the
    renderer supplies screen-space derivatives uv_da [P, 4], else bilinear. Call :meth:`clamp_` after
    optimizer steps to keep the values physical.
    """

    uses_uv_derivatives = True
    normal_mode = "tangent"

    def __init__(
        self, textures: Textures, normal_map: bool | None = None,
        metallic_range: tuple[float, float] = (0.0, 1.0), roughness_range: tuple[float, float] = (0.08, 1.0),
        base_color_range: tuple[float, float] = (0.0, 1.0),
    ):  # fmt: skip
        """``normal_map``: learn one (flat when ``textures`` has none); None: iff textures has one.
        ``*_range``: the values allowed, the stage-1 material's (recon.train.stage2.material_ranges), e.g.
        metallic (0, 0) for dielectrics only; roughness 0.08 = render.brdf.MIN_ROUGHNESS."""
        super().__init__()
        self.base_color_range = (float(base_color_range[0]), float(base_color_range[1]))
        self.metallic_range = (float(metallic_range[0]), float(metallic_range[1]))
        self.roughness_range = (float(roughness_range[0]), float(roughness_range[1]))
        self.base_color = nn.Parameter(textures.base_color[None].detach().clone().float())
        rm = torch.cat((textures.roughness, textures.metallic), -1)[None]
        self.roughness_metallic = nn.Parameter(rm.detach().clone().float())
        self.normal_map = None
        if normal_map or (normal_map is None and textures.normal is not None):
            normal = textures.normal
            if normal is None:
                normal = torch.zeros_like(textures.base_color)
                normal[..., 2] = 1
            self.normal_map = nn.Parameter(normal[None].detach().clone().float())

    @classmethod
    def from_files(cls, folder: str | Path) -> TextureMaterial:
        """Read the textures of an exported asset (docs/design.md, "Export contract")."""
        folder = Path(folder)

        def read(name: str) -> torch.Tensor:
            try:
                image = torch.from_numpy(np.asarray(iio.imread(folder / name))).float() / 255
            except FileNotFoundError:
                raise AssetError(f"{folder / name}: texture not found (the asset is incomplete)") from None
            except Exception as error:  # noqa: BLE001 - any decoder failure is a bad file
                raise AssetError(
                    f"{folder / name}: cannot decode the texture ({type(error).__name__})"
                ) from None
            return torch.flip(image if image.dim() == 3 else image[..., None], dims=[0])  # v = 0 at row 0

        base = srgb_to_linear(read("texture_kd.png")[..., :3])
        normal = read("texture_n.png")[..., :3] * 2 - 1 if (folder / "texture_n.png").is_file() else None
        textures = Textures(
            base, read("texture_roughness.png"), read("texture_metallic.png"), torch.ones(1), normal
        )
        return cls(textures)

    def textures(self) -> Textures:
        rm = self.roughness_metallic.detach()[0]
        normal = None if self.normal_map is None else self._unit_normals(self.normal_map.detach())[0]
        return Textures(self.base_color.detach()[0], rm[..., :1], rm[..., 1:], torch.ones(1), normal)

    @staticmethod
    def _unit_normals(values: torch.Tensor) -> torch.Tensor:
        """Unit tangent-space normals, never below the surface (z >= 0)."""
        values = torch.cat((values[..., :2], values[..., 2:].clamp(min=0)), -1)
        return torch.nn.functional.normalize(values, dim=-1, eps=1e-12)

    def clamp_(self) -> None:
        with torch.no_grad():
            self.base_color.clamp_(*self.base_color_range)
            self.roughness_metallic[..., 0].clamp_(*self.roughness_range)
            self.roughness_metallic[..., 1].clamp_(*self.metallic_range)
            if self.normal_map is not None:
                self.normal_map.copy_(self._unit_normals(self.normal_map))

    def normal_smoothness(self) -> torch.Tensor:
        """Mean absolute difference of neighbouring normal-map texels (0 without a normal map)."""
        if self.normal_map is None:
            return self.base_color.new_zeros(())
        n = self.normal_map
        return ((n[:, 1:] - n[:, :-1]).abs().mean() + (n[:, :, 1:] - n[:, :, :-1]).abs().mean()) / 2

    def forward(self, points: torch.Tensor, uv: torch.Tensor | None, uv_da: torch.Tensor | None = None):
        if uv is None:
            raise ValueError("uv: a texture material needs texture coordinates")
        st = uv[None, :, None].contiguous()
        options = {"filter_mode": "linear", "boundary_mode": "clamp"}
        if uv_da is not None:
            derivatives = uv_da[None, :, None].contiguous()
            options = {"uv_da": derivatives, "filter_mode": "linear-mipmap-linear", "boundary_mode": "clamp"}
        # One lookup of every map stacked along the channels: the taps, weights and mip levels are
        # computed once, not per map (the same values as separate lookups).
        maps = [self.base_color, self.roughness_metallic]
        if self.normal_map is not None:
            maps.append(self.normal_map)
        stacked = texture(torch.cat(maps, -1), st, **options)[0, :, 0]
        base = stacked[:, :3].clamp(*self.base_color_range)
        values = (
            base,
            stacked[:, 3:4].clamp(*self.roughness_range),
            stacked[:, 4:5].clamp(*self.metallic_range),
        )
        if self.normal_map is None:
            return values
        return (*values, stacked[:, 5:8])
