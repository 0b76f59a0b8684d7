"""Argument validation shared by both backends: every bad input becomes a ValueError naming the argument."""

from __future__ import annotations

from collections.abc import Sequence

import torch

FILTER_MODES = ("auto", "nearest", "linear", "linear-mipmap-nearest", "linear-mipmap-linear")
BOUNDARY_MODES = ("wrap", "clamp", "zero", "cube")


def tensor(
    name: str,
    value,
    ndims: Sequence[int],
    float_dtypes: Sequence[torch.dtype] | None = None,
    int32: bool = False,
) -> torch.Tensor:
    """Check that ``value`` is a contiguous tensor of one of ``ndims`` and an allowed dtype."""
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor, got {type(value).__name__}")
    if value.dim() not in ndims:
        dims = " or ".join(f"{d}-D" for d in ndims)
        raise ValueError(f"{name}: expected a {dims} tensor, got shape {list(value.shape)}")
    if int32 and value.dtype != torch.int32:
        raise ValueError(f"{name}: expected dtype torch.int32, got {value.dtype}")
    if float_dtypes is not None and value.dtype not in float_dtypes:
        allowed = ", ".join(str(d) for d in float_dtypes)
        raise ValueError(f"{name}: expected dtype {allowed}, got {value.dtype}")
    if not value.is_contiguous():
        raise ValueError(f"{name}: tensor must be contiguous (call .contiguous() first)")
    return value


def same_device(**tensors: torch.Tensor | None) -> torch.device:
    named = [(k, v) for k, v in tensors.items() if v is not None]
    first_name, first = named[0]
    for name, value in named[1:]:
        if value.device != first.device:
            raise ValueError(f"{name}: is on {value.device} but {first_name} is on {first.device}")
    return first.device


def last_dim(name: str, value: torch.Tensor, size: int) -> None:
    if value.shape[-1] != size:
        raise ValueError(f"{name}: last dimension must be {size}, got shape {list(value.shape)}")


def triangles(tri, num_vertices: int) -> torch.Tensor:
    tensor("tri", tri, (2,), int32=True)
    last_dim("tri", tri, 3)
    if tri.shape[0] == 0:
        raise ValueError("tri: the mesh has no triangles")
    if num_vertices == 0:
        raise ValueError("pos: the mesh has no vertices")
    lo, hi = int(tri.min()), int(tri.max())
    if lo < 0 or hi >= num_vertices:
        raise ValueError(f"tri: vertex indices must lie in [0, {num_vertices - 1}], found range [{lo}, {hi}]")
    return tri


def resolution(value) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"resolution: expected (height, width), got {value!r}") from None
    if height <= 0 or width <= 0 or (height, width) != tuple(value):
        raise ValueError(f"resolution: expected two positive integers (height, width), got {value!r}")
    return height, width


def ranges(value, num_triangles: int) -> torch.Tensor:
    if value is None:
        raise ValueError("ranges: required in range mode (pos of shape [V, 4])")
    tensor("ranges", value, (2,), int32=True)
    last_dim("ranges", value, 2)
    if value.device.type != "cpu":
        raise ValueError(f"ranges: must be a CPU tensor, got one on {value.device}")
    if value.shape[0] == 0:
        raise ValueError("ranges: needs at least one (start, count) row")
    start, count = value[:, 0], value[:, 1]
    if bool((start < 0).any()) or bool((count < 0).any()) or bool((start + count > num_triangles).any()):
        raise ValueError(
            "ranges: every (start, count) must satisfy 0 <= start, 0 <= count, "
            f"start + count <= {num_triangles}"
        )
    return value


def rast_buffer(name: str, value, batch: int | None = None) -> torch.Tensor:
    tensor(name, value, (4,))
    last_dim(name, value, 4)
    if batch is not None and value.shape[0] != batch:
        raise ValueError(f"{name}: minibatch {value.shape[0]} does not match {batch}")
    return value
