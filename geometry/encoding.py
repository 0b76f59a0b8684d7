"""Multiresolution hash-grid encoding (Instant-NGP), in pure torch, with tinycudann as the CUDA fast path
and compiled loops (numba, :mod:`geometry.hashgrid_cpu`) as the CPU one.

Every backend shares one parameter vector with tinycudann's layout and semantics, so a model trained on
one runs on the other:
  * level l has scale s_l = base_resolution * per_level_scale**l - 1 and r_l = ceil(s_l) + 1 vertices
    per axis (float32 arithmetic, as tinycudann);
  * an input x in [0, 1]^3 (clamped) sits at p = s_l x + 0.5; its cell corner is floor(p), its
    trilinear weights come from p - floor(p);
  * a level is dense (index = i + j r + k r^2) when r^3 fits in 2^log2_hashmap_size entries, else
    hashed (i * 1 xor j * 2654435761 xor k * 805459861, in uint32); either index is taken modulo the
    level's table size min(next multiple of 8 of r^3, 2^log2_hashmap_size). As in tinycudann, a corner
    past the top of a dense level (when s_l is an integer, in the last half cell before x = 1) is not
    clamped: it wraps to another entry;
  * the flat parameter vector holds level after level, entry after entry, feature after feature;
    output column l * F + f is feature f of level l.

Derivatives: first order in the table and in the input positions (torch backend). Second derivatives
are not supported by either backend; the Eikonal term therefore takes the SDF gradient by finite
differences (:func:`geometry.regularizers.finite_difference_gradient`), which works with both.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch import nn
from torch.autograd.function import once_differentiable

from data.errors import UserError
from data.settings import Settings, require
from geometry import hashgrid_cpu
from geometry.gather import gather_table_rows

BACKENDS = ("auto", "torch", "tcnn", "numba")
_PRIMES = (1, 2654435761, 805459861)
_PRIMES_INT32 = tuple(p - (1 << 32) if p >= 1 << 31 else p for p in _PRIMES)  # same low 32 bits
_INIT_RANGE = 1e-4  # tinycudann's uniform initialisation of the table
_CHUNK = 1 << 16  # points per chunk when evaluating without gradients


class EncodingBackendError(UserError):
    """The requested encoding backend cannot run here (missing tinycudann, CPU tensors, float64)."""


@dataclass
class HashGridConfig(Settings):
    """Settings of :class:`HashGridEncoding` (the keys of tinycudann's "HashGrid" encoding)."""

    n_levels: int = 8
    """Number of resolution levels L. 8 levels (16 -> 512) suit 64-256^3 extraction; the torch backend's
    cost grows faster than linearly with L (16 levels: ~3.5x slower on CPU)."""
    n_features_per_level: int = 2
    """Features F stored per table entry; the output has L * F channels."""
    log2_hashmap_size: int = 17
    """Each level holds at most 2^T entries; finer levels are hashed into them."""
    base_resolution: int = 16
    """Vertices per axis of the coarsest level."""
    per_level_scale: float = 1.641
    """Growth of the resolution from one level to the next (1.641: finest level ~512 with 8 levels)."""
    backend: str = "auto"
    """"auto" (tinycudann for CUDA float32 inputs when it imports; on the CPU numba's compiled loops
    when numba imports, 2-3x faster than torch; else torch), "torch", "tcnn" or "numba"."""

    def check(self) -> None:
        require(self, "n_levels", self.n_levels >= 1, "an integer >= 1")
        require(self, "n_features_per_level", self.n_features_per_level >= 1, "an integer >= 1")
        require(self, "log2_hashmap_size", 4 <= self.log2_hashmap_size <= 30, "an integer in [4, 30]")
        require(self, "base_resolution", self.base_resolution >= 2, "an integer >= 2")
        require(self, "per_level_scale", self.per_level_scale >= 1.0, "a number >= 1")
        require(self, "backend", self.backend in BACKENDS, f"one of {', '.join(BACKENDS)}")

    def tcnn_config(self) -> dict:
        """The same encoding as a tinycudann config dictionary."""
        return {
            "otype": "HashGrid",
            "n_levels": self.n_levels,
            "n_features_per_level": self.n_features_per_level,
            "log2_hashmap_size": self.log2_hashmap_size,
            "base_resolution": self.base_resolution,
            "per_level_scale": self.per_level_scale,
            "interpolation": "Linear",
        }


@dataclass(frozen=True)
class LevelLayout:
    """Per-level constants: scale s_l, vertices per axis r_l, table size, offset (entries), hashed."""

    scale: tuple[float, ...]
    resolution: tuple[int, ...]
    size: tuple[int, ...]
    offset: tuple[int, ...]
    hashed: tuple[bool, ...]

    @property
    def n_entries(self) -> int:
        return self.offset[-1] + self.size[-1]


def level_layout(config: HashGridConfig) -> LevelLayout:
    """The table layout of ``config``, computed exactly as tinycudann does (float32 scales)."""
    log2_scale = np.float32(math.log2(np.float32(config.per_level_scale)))
    cap = 1 << config.log2_hashmap_size
    scales, resolutions, sizes, offsets, hashed = [], [], [], [], []
    offset = 0
    for level in range(config.n_levels):
        scale = np.float32(np.exp2(np.float32(level) * log2_scale)) * np.float32(config.base_resolution)
        scale = float(np.float32(scale - np.float32(1.0)))
        resolution = math.ceil(scale) + 1
        dense = resolution**3
        size = min(-(-dense // 8) * 8, cap)
        scales.append(scale)
        resolutions.append(resolution)
        sizes.append(size)
        offsets.append(offset)
        hashed.append(dense > size)
        offset += size
    return LevelLayout(tuple(scales), tuple(resolutions), tuple(sizes), tuple(offsets), tuple(hashed))


def hash_grid_rows(corner: torch.Tensor, layout: LevelLayout) -> torch.Tensor:
    """Global table rows of the 8 cell corners of every level.

    Args:
        corner: [3, L, N] int32 lower cell corners floor(s_l x + 0.5) of every level (axis first).
    Returns:
        [8, L, N] int64; corner c = 4 a + 2 b + d is the offset (a, b, d) along (x, y, z). Points are the
        innermost axis, so every elementwise step runs over contiguous memory (broadcasting over
        corner axes only), several times faster on the CPU than a point-major [N, L, 8] layout.
    """
    device, levels = corner.device, corner.shape[1]
    first_hashed = layout.hashed.index(True) if any(layout.hashed) else levels
    # int32 throughout: a dense index fits (r^3 <= 2^30), and a hash only needs its low T bits, which
    # wrapping int32 products, sums and xor give exactly ((i + 1) p = i p + p).
    parts = []
    if first_hashed > 0:
        res = torch.tensor(layout.resolution[:first_hashed], dtype=torch.int32, device=device)[:, None]
        strides = (1, res, res * res)
        parts.append(_corner_combinations(corner[:, :first_hashed], strides, torch.add))
        size = torch.tensor(layout.size[:first_hashed], dtype=torch.int32, device=device)[:, None]
        parts[0] = torch.where(parts[0] >= size, parts[0] - size, parts[0])  # past the top: "% size"
    if first_hashed < levels:
        rows = _corner_combinations(corner[:, first_hashed:], _PRIMES_INT32, torch.bitwise_xor)
        parts.append(rows & (layout.size[first_hashed] - 1))
    rows = torch.cat(parts, 1) if len(parts) > 1 else parts[0]
    offset = torch.tensor(layout.offset, dtype=torch.int64, device=device)[:, None]
    return rows + offset  # int64: index_select / index_add are much slower with int32


def _corner_combinations(corner: torch.Tensor, factors, combine) -> torch.Tensor:
    """[8, L, N]: combine(combine(fx (i + a), fy (j + b)), fz (k + d)) for the 8 offsets (a, b, d)."""
    axes = []
    for axis, factor in enumerate(factors):
        lower = corner[axis] * factor
        axes.append(torch.stack((lower, lower + factor)))  # [2, L, N]
    shape = corner.shape[1:]
    xy = combine(axes[0][:, None], axes[1][None]).view(4, *shape)
    return combine(xy[:, None], axes[2][None]).view(8, *shape)


class _HashGrid(torch.autograd.Function):
    """The encoding with an analytic backward: trilinear weights are built without autograd, and the
    position gradient is formed from the corner values directly (a third of the work of
    differentiating the weight products). Internally everything is [.., L, N] (points innermost)."""

    @staticmethod
    def forward(ctx, x, params, layout: LevelLayout, features: int):
        n, levels = x.shape[0], len(layout.scale)
        scale = torch.tensor(layout.scale, dtype=x.dtype, device=x.device)
        pos = x.t()[:, None, :] * scale[None, :, None] + 0.5  # [3, L, N]
        corner = pos.floor()
        frac = pos - corner
        rows = hash_grid_rows(corner.to(torch.int32), layout)  # [8, L, N]
        w = torch.stack((1 - frac, frac), 1)  # [3, 2, L, N]: weights of the lower / upper corner
        wxy = (w[0][:, None] * w[1][None]).view(4, levels, n)
        weights = (wxy[:, None] * w[2][None]).view(8, levels, n)
        table = params.view(-1, features)
        taps = gather_table_rows(table, rows.view(-1)).t().reshape(features, 8, levels, n)
        out = (taps * weights[None]).sum(1)  # [F, L, N]
        need_x = ctx.needs_input_grad[0]
        ctx.save_for_backward(rows, weights, *((taps, w, wxy, scale) if need_x else ()))
        ctx.shape = (n, levels, features, table.shape[0])
        return out.permute(2, 1, 0).reshape(n, levels * features)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        rows, weights, *for_x = ctx.saved_tensors
        n, levels, features, entries = ctx.shape
        grad = grad_out.reshape(n, levels, features).permute(2, 1, 0).contiguous()  # [F, L, N]
        grad_x = grad_params = None
        if ctx.needs_input_grad[1]:
            # Channel-major: index_add along the last dimension of [F, entries] (geometry.gather).
            spread = grad[:, None] * weights[None]  # [F, 8, L, N]
            table_grad = grad_out.new_zeros(features, entries)
            grad_params = table_grad.index_add_(1, rows.view(-1), spread.view(features, -1)).t().reshape(-1)
        if ctx.needs_input_grad[0]:
            taps, w, wxy, scale = for_x
            corner = (taps * grad[:, None]).sum(0).view(2, 2, 2, levels, n)  # dL / d weight
            # weight(a, b, d) = wx[a] wy[b] wz[d], and d wx[a] / d frac_x = -1, +1 for a = 0, 1.
            wx, wy, wz = w  # [2, L, N]
            dz = ((corner[:, :, 1] - corner[:, :, 0]) * wxy.view(2, 2, levels, n)).sum((0, 1))
            in_z = corner[:, :, 0] * wz[0] + corner[:, :, 1] * wz[1]  # [2, 2, L, N]: z interpolated
            dx = ((in_z[1] - in_z[0]) * wy).sum(0)
            dy = ((in_z[:, 1] - in_z[:, 0]) * wx).sum(0)
            grad_x = (torch.stack((dx, dy, dz)) * scale[None, :, None]).sum(1).t()
        return grad_x, grad_params, None, None


def hash_grid_torch(
    x: torch.Tensor, params: torch.Tensor, layout: LevelLayout, features: int
) -> torch.Tensor:
    """The encoding in pure torch.

    Args:
        x: [N, 3] positions (clamped to [0, 1]); params: [n_entries * features] flat table.
    Returns:
        [N, L * features], differentiable (first order) in ``params`` and ``x``.
    """
    return _HashGrid.apply(x.clamp(0.0, 1.0), params, layout, features)


@lru_cache(maxsize=1)
def _tinycudann():
    """The tinycudann module, or None when it does not import (any reason: missing, no GPU, ABI)."""
    try:
        return importlib.import_module("tinycudann")
    except Exception:  # noqa: BLE001 - an optional accelerator must never break the import
        return None


def tcnn_available() -> bool:
    return _tinycudann() is not None


class HashGridEncoding(nn.Module):
    """Hash-grid encoding of points in [0, 1]^3 (outside values are clamped).

    ``forward(x [N, 3]) -> [N, n_levels * n_features_per_level]`` in the dtype of ``params`` (float32
    by default; ``.double()`` works with the torch backend, for gradient checks).
    """

    def __init__(self, config: HashGridConfig | None = None, seed: int | None = None):
        super().__init__()
        self.config = config or HashGridConfig()
        self.config.validate()
        self.layout = level_layout(self.config)
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        n = self.layout.n_entries * self.config.n_features_per_level
        initial = (torch.rand(n, generator=generator) * 2 - 1) * _INIT_RANGE
        self.params = nn.Parameter(initial)
        self._tcnn_module = None  # built on first use; deliberately not a registered submodule

    @property
    def output_dim(self) -> int:
        return self.config.n_levels * self.config.n_features_per_level

    def resolve_backend(self, x: torch.Tensor) -> str:
        """ "torch", "tcnn" or "numba" for inputs ``x`` under the configured backend."""
        name = self.config.backend
        usable = x.is_cuda and self.params.dtype == torch.float32
        cpu_usable = x.device.type == "cpu" and self.params.device.type == "cpu"
        cpu_usable &= self.params.dtype in (torch.float32, torch.float64)
        if name == "auto":
            if usable and tcnn_available():
                return "tcnn"
            return "numba" if cpu_usable and hashgrid_cpu.available() else "torch"
        if name == "numba":
            if not hashgrid_cpu.available():
                raise EncodingBackendError(
                    "encoding backend 'numba': numba does not import; pip install numba, or use "
                    "backend='torch'"
                )
            if not cpu_usable:
                raise EncodingBackendError(
                    f"encoding backend 'numba' needs float32/float64 CPU tensors, got {self.params.dtype} on "
                    f"{x.device}; use backend='auto'"
                )
        if name == "tcnn":
            if not tcnn_available():
                raise EncodingBackendError(
                    "encoding backend 'tcnn': tinycudann does not import; install it from "
                    "https://github.com/NVlabs/tiny-cuda-nn (bindings/torch) or use backend='torch'"
                )
            if not usable:
                raise EncodingBackendError(
                    f"encoding backend 'tcnn' needs float32 CUDA inputs, got {self.params.dtype} on "
                    f"{x.device}; use backend='torch' or 'auto'"
                )
        return name

    def _tcnn(self):
        if self._tcnn_module is None:
            module = _tinycudann().Encoding(3, self.config.tcnn_config(), dtype=torch.float32)
            if module.params.numel() != self.params.numel():
                raise EncodingBackendError(
                    f"tinycudann's hash grid has {module.params.numel()} parameters, ours "
                    f"{self.params.numel()}: unsupported tinycudann version"
                )
            self._tcnn_module = module
        self._tcnn_module.params = self.params  # share our parameter (and its gradient)
        return self._tcnn_module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != 3:
            raise ValueError(f"x: expected [N, 3] positions, got {list(x.shape)}")
        backend = self.resolve_backend(x)
        if backend == "tcnn":
            return self._tcnn()(x.clamp(0.0, 1.0).float())
        x = x.to(self.params.dtype)
        if backend == "numba":
            return hashgrid_cpu.hash_grid_cpu(x, self.params, self.layout, self.config.n_features_per_level)
        if not torch.is_grad_enabled() and x.shape[0] > _CHUNK:
            return torch.cat([self.forward(part) for part in x.split(_CHUNK)])
        return hash_grid_torch(x, self.params, self.layout, self.config.n_features_per_level)
