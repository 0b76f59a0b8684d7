"""Differentiable rasterization primitives with nvdiffrast's semantics on two backends.

``rasterize``, ``interpolate``, ``texture`` and ``antialias`` take nvdiffrast's arguments (no
context object) plus ``backend=``: "nvdiffrast" (CUDA, optional package) or "torch" (pure
PyTorch, any device). "auto", the default, uses nvdiffrast for CUDA tensors when it is importable.
"""

from .backend import BACKENDS, get_backend, set_backend, use_backend
from .nvdiffrast_backend import BackendUnavailableError
from .nvdiffrast_backend import is_available as nvdiffrast_available
from .ops import (
    TopologyHash,
    antialias,
    antialias_construct_topology_hash,
    interpolate,
    rasterize,
    texture,
    texture_construct_mip,
)
from .torch_backend import TextureMip

__all__ = [
    "BACKENDS",
    "BackendUnavailableError",
    "TextureMip",
    "TopologyHash",
    "antialias",
    "antialias_construct_topology_hash",
    "get_backend",
    "interpolate",
    "nvdiffrast_available",
    "rasterize",
    "set_backend",
    "texture",
    "texture_construct_mip",
    "use_backend",
]
