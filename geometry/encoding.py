"""Multiresolution hash-grid encoding (Instant-NGP), in pure torch with tinycudann as a CUDA fast path.

Both backends share one parameter vector with tinycudann's layout and semantics, so a model trained on
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

from geometry.gather import weighted_gather

BACKENDS = ("auto", "torch", "tcnn")
_PRIMES = (1, 2654435761, 805459861)
_PRIMES_INT32 = tuple(p - (1 << 32) if p >= 1 << 31 else p for p in _PRIMES)  # same low 32 bits
_INIT_RANGE = 1e-4  # tinycudann's uniform initialisation of the table
_CHUNK = 1 << 16  # points per chunk when evaluating without gradients


class EncodingBackendError(RuntimeError):
    """The requested encoding backend cannot run here (missing tinycudann, CPU tensors, float64)."""


@dataclass
class HashGridConfig:
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
    """"auto" (tinycudann for CUDA float32 inputs when it imports, else torch), "torch" or "tcnn"."""

    def validate(self) -> None:
        if self.n_levels < 1 or self.n_features_per_level < 1:
            raise ValueError("encoding: n_levels and n_features_per_level must be >= 1")
        if not 4 <= self.log2_hashmap_size <= 30:
            raise ValueError(f"encoding: log2_hashmap_size must be in [4, 30], got {self.log2_hashmap_size}")
        if self.base_resolution < 2 or self.per_level_scale < 1.0:
            raise ValueError("encoding: base_resolution must be >= 2 and per_level_scale >= 1")
        if self.backend not in BACKENDS:
            raise ValueError(f"encoding: backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")

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


def hash_grid_corners(
    x: torch.Tensor, layout: LevelLayout, levels: slice
) -> tuple[torch.Tensor, torch.Tensor]:
    """Corner table rows and trilinear weights of points ``x`` on a run of levels of one kind.

    Args:
        x: [N, 3] positions in [0, 1]; levels: a slice of levels that are all dense or all hashed.
    Returns:
        rows [N, L', 8] int64 (global entry index) and weights [N, L', 8] (differentiable in x); corner
        c = 4 a + 2 b + d is the offset (a, b, d) along (x, y, z).
    """
    index = range(*levels.indices(len(layout.scale)))
    device = x.device
    scale = torch.tensor([layout.scale[i] for i in index], dtype=x.dtype, device=device)
    pos = x[:, None, :] * scale[None, :, None] + 0.5  # [N, L', 3]
    corner = pos.detach().floor()
    frac = pos - corner
    # int32 throughout: a dense index fits (r^3 <= 2^30), and a hash only needs its low T bits, which
    # wrapping int32 products and xor give exactly.
    g = corner.to(torch.int32)
    g = torch.stack((g, g + 1), -1)  # [N, L', 3, 2]
    if layout.hashed[index[0]]:
        g = g * torch.tensor(_PRIMES_INT32, dtype=torch.int32, device=device)[:, None]
        rows = g[:, :, 0, :, None, None] ^ g[:, :, 1, None, :, None] ^ g[:, :, 2, None, None, :]
        rows = rows.reshape(*rows.shape[:2], 8) & (layout.size[index[0]] - 1)
    else:
        res = torch.tensor([layout.resolution[i] for i in index], dtype=torch.int32, device=device)
        stride = torch.stack((torch.ones_like(res), res, res * res), -1)  # [L', 3]
        g = g * stride[None, :, :, None]
        rows = g[:, :, 0, :, None, None] + g[:, :, 1, None, :, None] + g[:, :, 2, None, None, :]
        size = torch.tensor([layout.size[i] for i in index], dtype=torch.int32, device=device)[:, None]
        rows = rows.reshape(*rows.shape[:2], 8)
        rows = torch.where(rows >= size, rows - size, rows)  # corners past the top wrap, as "% size"
    offset = torch.tensor([layout.offset[i] for i in index], dtype=torch.int32, device=device)
    rows = (rows + offset[:, None]).long()
    w = torch.stack((1 - frac, frac), -1)  # [N, L', 3, 2]
    weights = w[:, :, 0, :, None, None] * w[:, :, 1, None, :, None] * w[:, :, 2, None, None, :]
    return rows, weights.reshape(*weights.shape[:2], 8)


def hash_grid_torch(
    x: torch.Tensor, params: torch.Tensor, layout: LevelLayout, features: int
) -> torch.Tensor:
    """The encoding in pure torch.

    Args:
        x: [N, 3] positions (clamped to [0, 1]); params: [n_entries * features] flat table.
    Returns:
        [N, L * features], differentiable (first order) in ``params`` and ``x``.
    """
    x = x.clamp(0.0, 1.0)
    table = params.view(-1, features)
    first_hashed = layout.hashed.index(True) if any(layout.hashed) else len(layout.hashed)
    parts = [slice(0, first_hashed), slice(first_hashed, len(layout.hashed))]
    out = []
    for levels in parts:
        if levels.stop > levels.start:
            rows, weights = hash_grid_corners(x, layout, levels)
            n_levels = rows.shape[1]
            gathered = weighted_gather(table, rows.reshape(-1, 8), weights.reshape(-1, 8))
            out.append(gathered.view(x.shape[0], n_levels * features))
    return torch.cat(out, 1) if len(out) > 1 else out[0]


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
        """ "torch" or "tcnn" for inputs ``x`` under the configured backend."""
        name = self.config.backend
        usable = x.is_cuda and self.params.dtype == torch.float32
        if name == "auto":
            return "tcnn" if usable and tcnn_available() else "torch"
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
        if self.resolve_backend(x) == "tcnn":
            return self._tcnn()(x.clamp(0.0, 1.0).float())
        x = x.to(self.params.dtype)
        if not torch.is_grad_enabled() and x.shape[0] > _CHUNK:
            return torch.cat([self.forward(part) for part in x.split(_CHUNK)])
        return hash_grid_torch(x, self.params, self.layout, self.config.n_features_per_level)
