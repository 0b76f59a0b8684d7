"""GGX prefiltering of cube maps for the split-sum specular term.

Level k of the prefiltered chain (face size R / 2^k) holds the environment convolved with the GGX lobe
of alpha_k, under the split-sum assumption n = v = r (Karis 2013):

    P_k(r) = sum_i L(l_i) w(l_i) / sum_i w(l_i),   w = D(n.h) G1(n.l) dw,   n.h = sqrt((1 + r.l) / 2)

with G1 the Smith masking of the light direction: for n = v this is exactly the weight the BRDF puts
on L (up to Fresnel), where Karis' n.l weighting is not.

Level 0 is the unfiltered base at MIN_ROUGHNESS; alpha grows geometrically to 1 at the last level, so
the mip level of a roughness is log(alpha / alpha_0) / log(q). A level k >= 1 is filtered at its
:func:`work_size` (coarser for wide lobes) from the box mip of that size, as a fixed number of
normalized taps per texel (:class:`FilterTaps`, built once and cached per size, alpha and truncation),
then bilinearly upsampled to R / 2^k. Every step thus costs one weighted gather per level,
differentiable in the texels.

The lobe is truncated at the half-vector angle that holds ``cutoff`` of its energy (the GGX cdf is
tan^2 / (tan^2 + alpha^2)), which bounds the number of taps for small roughness.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch

from geometry.gather import weighted_gather
from render.brdf import MIN_ROUGHNESS, ggx_ndf
from render.envmap import cube_directions, cube_solid_angles
from render.raster import texture

_TILE = 8


def level_alphas(levels: int) -> list[float]:
    """GGX alpha of each prefiltered level: MIN_ROUGHNESS^2 at level 0, geometric, 1 at the last."""
    alpha0 = MIN_ROUGHNESS**2
    if levels == 1:
        return [alpha0]
    return [alpha0 * (1 / alpha0) ** (k / (levels - 1)) for k in range(levels)]


def roughness_to_level(roughness: torch.Tensor, levels: int) -> torch.Tensor:
    """Fractional mip level [...] of perceptual roughness [...] for a chain of ``levels`` levels."""
    if levels == 1:
        return torch.zeros_like(roughness)
    alpha0 = MIN_ROUGHNESS**2
    alpha = roughness.clamp(MIN_ROUGHNESS, 1) ** 2
    return (torch.log(alpha / alpha0) / math.log(1 / alpha0) * (levels - 1)).clamp(0, levels - 1)


def _max_angle(alpha: float, cutoff: float) -> float:
    """Angle between r and l beyond which the truncated lobe is zero."""
    half = math.atan(alpha * math.sqrt(cutoff / (1 - cutoff))) if cutoff < 1 else math.pi / 2
    return min(2 * half, math.pi / 2)


TEXELS_PER_CORE = 1.5
"""Resolution at which a level is filtered: texels per angular radius of the lobe's core (75% energy)."""


def work_size(output_size: int, alpha: float, min_size: int = 8) -> int:
    """Face size at which a level of the given alpha is filtered (then upsampled to ``output_size``):
    the coarsest power of two with at least TEXELS_PER_CORE texels across the core's radius."""
    core = 2 * math.atan(alpha * math.sqrt(3.0))
    wanted = TEXELS_PER_CORE * (math.pi / 2) / core
    size = output_size
    while size // 2 >= max(min_size, wanted):
        size //= 2
    return size


@dataclass
class FilterTaps:
    """A row-normalized filter as a fixed number of taps per output texel (ELL sparse format)."""

    index: torch.Tensor  # [N_out, K] input texels
    weight: torch.Tensor  # [N_out, K] weights, zero for padding taps

    def apply(self, source: torch.Tensor) -> torch.Tensor:
        """[N_in, C] -> [N_out, C]; one gather and one batched product, differentiable in ``source``."""
        return weighted_gather(source, self.index, self.weight)


@lru_cache(maxsize=32)
def ggx_filter(
    output_size: int, source_size: int, alpha: float, cutoff: float, device: torch.device, dtype: torch.dtype
) -> FilterTaps:
    """Normalized, truncated GGX lobes from a source cube level to every texel of an output level."""
    out_dirs = cube_directions(output_size, dtype=torch.float64).reshape(-1, 3)
    dirs = cube_directions(source_size, dtype=torch.float64).reshape(-1, 3)
    solid = cube_solid_angles(source_size, dtype=torch.float64).reshape(-1)
    limit = _max_angle(alpha, cutoff)
    tile = min(_TILE, output_size)
    # Output texels grouped in tile x tile blocks of one face; candidates found per block.
    blocks_per_side = output_size // tile
    index = torch.arange(6 * output_size**2).reshape(6, blocks_per_side, tile, blocks_per_side, tile)
    blocks = index.permute(0, 1, 3, 2, 4).reshape(-1, tile * tile)
    centres = out_dirs[blocks].mean(1)
    centres = centres / centres.norm(dim=-1, keepdim=True)
    radius = torch.acos((out_dirs[blocks] * centres[:, None]).sum(-1).clamp(-1, 1)).max(1).values
    source_texel = math.pi / source_size  # generous bound on the angular size of a source texel
    reach = torch.cos((radius + limit + source_texel).clamp(max=math.pi))
    cos_limit = math.cos(limit)
    alpha_t = torch.tensor(alpha, dtype=torch.float64)
    per_block = []
    for block, centre, cos_reach in zip(blocks, centres, reach, strict=True):
        cand = torch.nonzero(dirs @ centre >= cos_reach).squeeze(1)
        cos_rl = out_dirs[block] @ dirs[cand].t()  # [T^2, n]
        n_dot_h = torch.sqrt(((1 + cos_rl) / 2).clamp(min=0))
        n_dot_l = cos_rl.clamp(min=0)
        masking = 2 * n_dot_l / (n_dot_l + torch.sqrt(n_dot_l * n_dot_l * (1 - alpha_t**2) + alpha_t**2))
        weight = ggx_ndf(n_dot_h, alpha_t) * masking * solid[cand]
        weight = torch.where(cos_rl >= cos_limit, weight, torch.zeros_like(weight))
        per_block.append((block, cand, weight))
    width = max(int((w > 0).sum(1).max()) for _, _, w in per_block)
    index = torch.zeros(6 * output_size**2, width, dtype=torch.long)
    weight = torch.zeros(6 * output_size**2, width, dtype=torch.float64)
    for block, cand, w in per_block:
        top = torch.topk(w, min(width, w.shape[1]), dim=1)
        index[block, : top.indices.shape[1]] = cand[top.indices]
        weight[block, : top.indices.shape[1]] = top.values
    weight = weight / weight.sum(1, keepdim=True)
    return FilterTaps(index.to(device), weight.to(device=device, dtype=dtype))


def mip_chain(base: torch.Tensor, min_size: int) -> list[torch.Tensor]:
    """Box-filtered levels of a cube map [6, R, R, C] down to face size ``min_size`` (differentiable)."""
    levels = [base]
    while levels[-1].shape[1] > min_size:
        level = levels[-1]
        size, channels = level.shape[1], level.shape[-1]
        levels.append(level.reshape(6, size // 2, 2, size // 2, 2, channels).mean((2, 4)))
    return levels


def prefilter_specular(base: torch.Tensor, min_size: int, cutoff: float) -> list[torch.Tensor]:
    """Prefiltered specular chain [6, R/2^k, R/2^k, C], k = 0.. down to face size ``min_size``.

    Level k >= 1 is filtered at :func:`work_size` from the box mip of that size, then bilinearly
    upsampled (with seamless cube filtering) to R / 2^k.
    """
    chain = mip_chain(base, min(min_size, 4))
    sizes = [level.shape[1] for level in chain]
    count = sum(1 for size in sizes if size >= min_size)
    alphas = level_alphas(count)
    channels = base.shape[-1]
    out = [base]
    for k in range(1, count):
        work = work_size(sizes[k], alphas[k])
        source = chain[sizes.index(work)].reshape(-1, channels)
        taps = ggx_filter(work, work, alphas[k], cutoff, base.device, base.dtype)
        filtered = taps.apply(source).reshape(6, work, work, channels)
        if work < sizes[k]:
            dirs = cube_directions(sizes[k], base.device, base.dtype).reshape(1, 6 * sizes[k], sizes[k], 3)
            filtered = texture(filtered[None], dirs, filter_mode="linear", boundary_mode="cube")
        out.append(filtered.reshape(6, sizes[k], sizes[k], channels))
    return out
