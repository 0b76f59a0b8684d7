"""Pure-PyTorch twin of the nvdiffrast primitives: same semantics, any torch device, float32/float64."""

from .antialias import antialias, construct_topology
from .interpolate import interpolate
from .rasterize import rasterize
from .texture import TextureMip, build_mip_levels, mip_sizes, texture, texture_construct_mip

__all__ = [
    "TextureMip",
    "antialias",
    "build_mip_levels",
    "construct_topology",
    "interpolate",
    "mip_sizes",
    "rasterize",
    "texture",
    "texture_construct_mip",
]
