"""A learnable environment light and split-sum image-based shading.

The light is a cube map [6, R, R, 3] of linear radiance (a parameter). Every step, :meth:`prefilter`
turns it into the split-sum inputs, differentiably:
  * specular: a chain of GGX-prefiltered levels (see :mod:`render.prefilter`), looked up at the mirror
    direction with a per-pixel mip level from the roughness through :func:`render.raster.texture`;
  * diffuse: order-2 spherical harmonics of a low mip (see :mod:`render.sh`).
Shading then is  specular = P(r, roughness) (F0 A + B)  and  diffuse = E(n)/pi * diffuse colour * C,
with (A, B, C) from the DFG table of :mod:`render.dfg` (C = 1 for Lambert). With ``multiscatter`` the
specular albedo F0 A + B gains the energy single-scattering GGX loses (:func:`multiscatter_reflectance`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn

from data.settings import Settings, power_of_two, require
from render import sh
from render.brdf import (
    DIFFUSE_MODELS,
    MIN_COSINE,
    clamp_roughness,
    diffuse_color,
    dot,
    reflect,
    safe_normalize,
    specular_f0,
)
from render.dfg import dfg_lookup
from render.envmap import cube_directions, cube_solid_angles, cube_to_latlong, latlong_to_cube
from render.hdr import load_environment, write_hdr
from render.prefilter import mip_chain, prefilter_specular, roughness_to_level
from render.raster import texture


@dataclass
class EnvironmentLightConfig(Settings):
    """Settings of :class:`EnvironmentLight`."""

    resolution: int = 128
    """Cube face size R of the learnable map (a power of two)."""
    min_resolution: int = 8
    """Face size of the roughest (roughness 1) prefiltered level; fewer levels when larger."""
    cutoff: float = 0.9
    """Fraction of each GGX lobe's energy kept by the prefilter (the tail is cut, then renormalized)."""
    irradiance_resolution: int = 16
    """Face size of the mip projected onto spherical harmonics for diffuse light."""
    initial_radiance: float = 0.5
    """Constant radiance of a light that is not initialized from a map."""
    diffuse: str = "lambert"
    """Diffuse lobe: "lambert" (glTF's and Blender's Principled BSDF's) or "burley" (Disney's
    retro-reflective one, Mitsuba's principled BSDF's)."""
    bend_normals: bool = True
    """Bend shading normals that face away from the viewer (interpolated normals at silhouettes) until
    n.v = 0.05 (:func:`bend_towards_viewer`), so their reflections do not look below the surface."""
    multiscatter: bool = True
    """Add GGX's multiple-scattering energy (Fdez-Aguera 2019), so rough metals keep their brightness as
    in Cycles' multiscatter GGX; False: single scattering only."""

    def check(self) -> None:
        require(self, "diffuse", self.diffuse in DIFFUSE_MODELS, f"one of {', '.join(DIFFUSE_MODELS)}")
        require(
            self, "resolution", power_of_two(self.resolution), "a power of two (the cube map's mip chain)"
        )
        require(self, "min_resolution", self.min_resolution >= 1, "an integer >= 1")
        require(self, "irradiance_resolution", self.irradiance_resolution >= 1, "an integer >= 1")
        require(self, "cutoff", 0 < self.cutoff <= 1, "a fraction in (0, 1]")


@dataclass
class SplitSumMaps:
    """The prefiltered light for one step: specular chain (levels [6, R/2^k, R/2^k, 3]) and SH [9, 3]."""

    specular: list[torch.Tensor]
    sh_coeffs: torch.Tensor


def dominant_direction(normal: torch.Tensor, mirror: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Lookup direction of the prefiltered specular map: the mirror direction bent towards the normal for
    rough surfaces, where the lobe's mass moves off-specular (Lagarde & de Rousiers 2014, Frostbite)."""
    s = (1 - alpha) * (torch.sqrt((1 - alpha).clamp(min=1e-12)) + alpha)
    return safe_normalize(normal + s * (mirror - normal))


def bend_towards_viewer(normal: torch.Tensor, view: torch.Tensor, min_cosine: float = 0.05) -> torch.Tensor:
    """Unit normals [..., 3] with n.v >= ~``min_cosine``: those below are tilted in the plane of n and v
    towards the view direction v [..., 3] (unit); the others are unchanged."""
    deficit = (min_cosine - dot(normal, view)).clamp(min=0)
    return safe_normalize(normal + deficit * view)


def multiscatter_reflectance(
    f0: torch.Tensor, single: torch.Tensor, single_energy: torch.Tensor
) -> torch.Tensor:
    """Directional albedo of GGX with multiple scattering (Fdez-Aguera 2019, "A Multiple-Scattering
    Microfacet Model for Real-Time Image-based Lighting"): the single-scattering albedo ``single`` =
    F0 A + B [..., 3] plus the energy 1 - E_ss lost by single scattering (``single_energy`` = A + B,
    [..., 1]), re-emitted with the average Fresnel F_avg = F0 + (1 - F0) / 21 over repeated bounces."""
    lost = 1 - single_energy
    f_avg = f0 + (1 - f0) / 21
    return single + single * f_avg * lost / (1 - lost * f_avg)


def occluded_diffuse(ao: torch.Tensor, albedo: torch.Tensor) -> torch.Tensor:
    """Fraction [..., 3] of the unoccluded diffuse light that reaches a point of ambient occlusion ``ao``
    [..., 1], counting the light that bounces off the surrounding surface of the same ``albedo`` [..., 3]
    (Jimenez et al. 2016, "Practical Real-Time Strategies for Accurate Indirect Occlusion", multi-bounce
    fit): ao itself for black surroundings, more for bright ones."""
    a = 2.0404 * albedo - 0.3324
    b = -4.7951 * albedo + 0.6417
    c = 2.7552 * albedo + 0.6903
    return torch.maximum(ao, ((ao * a + b) * ao + c) * ao)


def specular_occlusion(n_dot_v: torch.Tensor, ao: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Occlusion [..., 1] of the specular lookup from ambient occlusion (Lagarde & de Rousiers 2014):
    about ao for rough lobes, close to 1 for sharp ones seen head-on."""
    return ((n_dot_v + ao).pow(torch.exp2(-16 * alpha - 1)) - 1 + ao).clamp(0, 1)


def prefilter_light(base: torch.Tensor, config: EnvironmentLightConfig) -> SplitSumMaps:
    """Split-sum inputs of a cube map [6, R, R, 3]: prefiltered specular chain and diffuse SH."""
    specular = prefilter_specular(base, config.min_resolution, config.cutoff)
    low = mip_chain(base, config.irradiance_resolution)[-1]
    size = low.shape[1]
    coeffs = sh.project(
        low.reshape(-1, 3),
        cube_directions(size, base.device, base.dtype).reshape(-1, 3),
        cube_solid_angles(size, base.device, base.dtype).reshape(-1),
    )
    return SplitSumMaps(specular, coeffs)


class EnvironmentLight(nn.Module):
    """Learnable environment map; see the module docstring."""

    def __init__(self, config: EnvironmentLightConfig | None = None, base: torch.Tensor | None = None):
        super().__init__()
        self.config = config or EnvironmentLightConfig()
        self.config.validate()
        res = self.config.resolution
        if base is None:
            base = torch.full((6, res, res, 3), float(self.config.initial_radiance))
        if tuple(base.shape) != (6, res, res, 3):
            raise ValueError(f"base: expected shape [6, {res}, {res}, 3], got {list(base.shape)}")
        self.base = nn.Parameter(base.detach().clone())

    @classmethod
    def from_latlong(
        cls, latlong: torch.Tensor, config: EnvironmentLightConfig | None = None,
        rotation: torch.Tensor | None = None,
    ):  # fmt: skip
        """A light initialized from a lat-long radiance map [H, 2H, 3]; ``rotation`` [3, 3] as in
        :meth:`to_latlong` (the map was written in the frame rotated by it)."""
        config = config or EnvironmentLightConfig()
        cube = latlong_to_cube(latlong.float(), config.resolution, rotation=rotation)
        return cls(config, cube.clamp(min=0))

    def clamp_(self) -> None:
        """Project the texels back to non-negative radiance (call after each optimizer step)."""
        with torch.no_grad():
            self.base.clamp_(min=0)

    def prefilter(self) -> SplitSumMaps:
        """Split-sum inputs of the current light (differentiable in the texels)."""
        return prefilter_light(self.base, self.config)

    def shade(
        self,
        normal: torch.Tensor,
        view: torch.Tensor,
        base_color: torch.Tensor,
        roughness: torch.Tensor,
        metallic: torch.Tensor,
        diffuse: str | None = None,
        maps: SplitSumMaps | None = None,
        occlusion: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Outgoing radiance under this light (split-sum).

        Args:
            normal: [..., 3] shading normals; view: [..., 3] directions towards the camera.
            base_color: [..., 3] linear RGB; roughness, metallic: [..., 1].
            diffuse: "lambert" or "burley"; None: the config's.
            maps: a :meth:`prefilter` result to reuse within a step (computed when None).
            occlusion: [..., 1] ambient occlusion in [0, 1] (1: open sky; None: no occlusion), applied as
                :func:`occluded_diffuse` and :func:`specular_occlusion` to the two lookups.
        Returns:
            [..., 3] linear RGB.
        """
        diffuse = diffuse or self.config.diffuse
        if diffuse not in DIFFUSE_MODELS:
            raise ValueError(f"diffuse: expected one of {', '.join(DIFFUSE_MODELS)}, got {diffuse!r}")
        maps = maps or self.prefilter()
        shape = normal.shape[:-1]
        v = safe_normalize(view.reshape(-1, 3))
        n = safe_normalize(normal.reshape(-1, 3))
        if self.config.bend_normals:
            n = bend_towards_viewer(n, v)
        rough = clamp_roughness(roughness.reshape(-1, 1))
        metal = metallic.reshape(-1, 1)
        color = base_color.reshape(-1, 3)
        n_dot_v = dot(n, v).clamp(MIN_COSINE, 1)
        dfg = dfg_lookup(n_dot_v, rough)
        mirror = dominant_direction(n, reflect(v, n), rough * rough)
        levels = len(maps.specular)
        lod = roughness_to_level(rough[:, 0], levels)
        prefiltered = texture(
            maps.specular[0][None],
            mirror.reshape(1, -1, 1, 3).contiguous(),
            mip_level_bias=lod.reshape(1, -1, 1),
            mip=[level[None] for level in maps.specular[1:]],
            filter_mode="linear-mipmap-linear" if levels > 1 else "linear",
            boundary_mode="cube",
            max_mip_level=levels - 1,
        ).reshape(-1, 3)
        f0 = specular_f0(color, metal)
        reflectance = f0 * dfg[:, 0:1] + dfg[:, 1:2]
        if self.config.multiscatter:
            reflectance = multiscatter_reflectance(f0, reflectance, dfg[:, 0:1] + dfg[:, 1:2])
        specular = prefiltered * reflectance
        diffuse_light = sh.mean_cosine_radiance(maps.sh_coeffs, n)
        albedo = diffuse_color(color, metal)
        if diffuse == "burley":
            albedo = albedo * dfg[:, 2:3]
        diffuse_term = diffuse_light * albedo
        if occlusion is not None:
            ao = occlusion.reshape(-1, 1).clamp(0, 1)
            diffuse_term = diffuse_term * occluded_diffuse(ao, albedo)
            specular = specular * specular_occlusion(n_dot_v, ao, rough * rough)
        return (specular + diffuse_term).reshape(*shape, 3)

    def regularizer(self) -> torch.Tensor:
        """nvdiffrec's white-balance prior: mean |L - mean_rgb(L)| (pushes the light towards grey)."""
        return (self.base - self.base.mean(-1, keepdim=True)).abs().mean()

    def to_latlong(self, height: int = 0, rotation: torch.Tensor | None = None) -> torch.Tensor:
        """The light as a lat-long map [H, 2H, 3] (H = 2R by default), optionally seen in a frame
        rotated by ``rotation`` [3, 3] (see :func:`render.envmap.cube_to_latlong`)."""
        return cube_to_latlong(self.base.detach(), height or 2 * self.config.resolution, rotation=rotation)

    @classmethod
    def from_file(
        cls, path: str | os.PathLike, config: EnvironmentLightConfig | None = None,
        rotation: torch.Tensor | None = None,
    ):  # fmt: skip
        """A light initialized from an equirectangular .hdr / .exr / .npy file (``rotation``: see
        :meth:`from_latlong`)."""
        return cls.from_latlong(torch.from_numpy(load_environment(path)), config, rotation)

    def save_probe(
        self, path: str | os.PathLike, height: int = 0, rotation: torch.Tensor | None = None
    ) -> None:
        """Write the light as an equirectangular Radiance .hdr (docs/design.md, "Environment maps"),
        atomically; ``rotation`` as in :meth:`to_latlong`."""
        write_hdr(path, self.to_latlong(height, rotation).clamp(min=0).cpu().numpy())
