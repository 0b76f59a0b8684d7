"""Adapter to nvdiffrast's CUDA rasterizer (optional; imported lazily).

nvdiffrast needs a context object per device; it is created on first use and cached here, so the
public ops take no context argument.
"""

from __future__ import annotations

import importlib
from functools import lru_cache

import torch

from data.errors import UserError


class BackendUnavailableError(UserError):
    """The requested backend cannot run here (missing package or wrong device)."""


@lru_cache(maxsize=1)
def _module():
    try:
        return importlib.import_module("nvdiffrast.torch")
    except Exception as exc:  # ImportError, or a plugin build failure on import
        raise BackendUnavailableError(
            f"backend='nvdiffrast' was requested but `import nvdiffrast.torch` failed ({exc}); "
            "install it with `pip install diffrp-nvdiffrast` on a machine with CUDA, or use backend='torch'"
        ) from exc


def is_available() -> bool:
    """True when nvdiffrast imports and a CUDA device exists."""
    if not torch.cuda.is_available():
        return False
    try:
        _module()
    except BackendUnavailableError:
        return False
    return True


_contexts: dict[torch.device, object] = {}


def _context(device: torch.device):
    if device.type != "cuda":
        raise BackendUnavailableError(
            f"backend='nvdiffrast' needs CUDA tensors, got tensors on {device}; use backend='torch' or 'auto'"
        )
    if device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    if device not in _contexts:
        _contexts[device] = _module().RasterizeCudaContext(device=device)
    return _contexts[device]


def rasterize(pos, tri, resolution, ranges=None, grad_db=True):
    return _module().rasterize(_context(pos.device), pos, tri, resolution, ranges=ranges, grad_db=grad_db)


def interpolate(attr, rast, tri, rast_db=None, diff_attrs=None):
    return _module().interpolate(attr, rast, tri, rast_db=rast_db, diff_attrs=diff_attrs)


def texture(tex, uv, uv_da, mip_level_bias, mip_levels, filter_mode, boundary_mode, max_mip_level):
    return _module().texture(
        tex,
        uv,
        uv_da=uv_da,
        mip_level_bias=mip_level_bias,
        mip=mip_levels,
        filter_mode=filter_mode,
        boundary_mode=boundary_mode,
        max_mip_level=max_mip_level,
    )


def construct_topology(tri):
    return _module().antialias_construct_topology_hash(tri)


def antialias(color, rast, pos, tri, topology, pos_gradient_boost=1.0):
    return _module().antialias(
        color, rast, pos, tri, topology_hash=topology, pos_gradient_boost=pos_gradient_boost
    )
