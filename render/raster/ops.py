"""Public differentiable rasterization ops with nvdiffrast's arguments, outputs and gradients.

Each op validates its inputs (a ValueError naming the argument for anything wrong), picks a
backend (``backend=None`` uses the default from :func:`set_backend` / :func:`use_backend`, "auto"
at start: nvdiffrast for CUDA tensors when importable, else the pure-torch twin) and dispatches.
Unlike nvdiffrast, no context object is passed. Conventions are nvdiffrast's (docs/design.md,
"Conventions"): clip-space input, pixel centres at NDC ((2x+1)/W - 1, (2y+1)/H - 1), row 0 at the bottom.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from . import checks, nvdiffrast_backend
from . import torch_backend as torch_impl
from .backend import resolve
from .torch_backend import TextureMip

_FLOATS = (torch.float32, torch.float64)


def _float_dtypes(backend: str) -> tuple[torch.dtype, ...]:
    return (torch.float32,) if backend == "nvdiffrast" else _FLOATS


def rasterize(
    pos: torch.Tensor,
    tri: torch.Tensor,
    resolution: tuple[int, int],
    ranges: torch.Tensor | None = None,
    grad_db: bool = True,
    backend: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rasterize triangles.

    Args:
        pos: [B, V, 4] clip-space positions (instanced mode: one view per batch entry, shared
            ``tri``), or [V, 4] together with ``ranges`` (range mode).
        tri: [F, 3] int32 vertex indices.
        resolution: (H, W) of the output.
        ranges: [B, 2] int32 CPU tensor of (first triangle, count) per output image; range mode only.
        grad_db: let gradients of ``rast_db`` flow into ``pos``.
        backend: "auto" | "torch" | "nvdiffrast" | None (the current default).

    Returns:
        rast: [B, H, W, 4] (u, v, z/w, triangle_id + 1), zeros where no triangle covers the pixel
            centre. u weights vertex tri[:, 0], v vertex tri[:, 1]. Perspective-correct, nearest
            z/w wins, no culling, clipped to the view frustum (-w <= z <= w); gradients reach pos
            (x, y, w) through u, v; z/w and the id carry none.
        rast_db: [B, H, W, 4] (du/dX, du/dY, dv/dX, dv/dY) per pixel.
    """
    checks.tensor("pos", pos, (2, 3))
    device = checks.same_device(pos=pos, tri=tri if isinstance(tri, torch.Tensor) else None)
    name = resolve(backend, device)
    checks.tensor("pos", pos, (2, 3), _float_dtypes(name))
    checks.last_dim("pos", pos, 4)
    checks.triangles(tri, pos.shape[-2])
    height, width = checks.resolution(resolution)
    if pos.dim() == 2:
        checks.ranges(ranges, tri.shape[0])
    elif pos.shape[0] == 0:
        raise ValueError("pos: minibatch is empty")
    else:
        ranges = None
    if name == "nvdiffrast":
        return nvdiffrast_backend.rasterize(pos, tri, (height, width), ranges, grad_db)
    return torch_impl.rasterize(pos, tri, (height, width), ranges, grad_db)


def interpolate(
    attr: torch.Tensor,
    rast: torch.Tensor,
    tri: torch.Tensor,
    rast_db: torch.Tensor | None = None,
    diff_attrs: str | list[int] | None = None,
    backend: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Interpolate vertex attributes over the rasterized triangles.

    Args:
        attr: [V, C] (range mode) or [B, V, C] / [1, V, C] (instanced, broadcast over the batch).
        rast: [B, H, W, 4] from :func:`rasterize`.
        tri: [F, 3] int32, the triangles given to :func:`rasterize`.
        rast_db: [B, H, W, 4] from :func:`rasterize`, to get pixel derivatives of attributes.
        diff_attrs: "all" or a list of attribute indices whose derivatives to output.

    Returns:
        out: [B, H, W, C], zeros where empty; out_da: [B, H, W, 2 * len(diff_attrs)] ordered
        (dA0/dX, dA0/dY, dA1/dX, ...), or an empty [B, H, W, 0] tensor.
    """
    checks.tensor("attr", attr, (2, 3))
    checks.rast_buffer("rast", rast)
    device = checks.same_device(attr=attr, rast=rast, tri=tri if isinstance(tri, torch.Tensor) else None)
    name = resolve(backend, device)
    floats = _float_dtypes(name)
    checks.tensor("attr", attr, (2, 3), floats)
    checks.tensor("rast", rast, (4,), floats)
    checks.triangles(tri, attr.shape[-2])
    if attr.dim() == 3 and attr.shape[0] not in (1, rast.shape[0]):
        raise ValueError(f"attr: minibatch {attr.shape[0]} must be 1 or match rast's {rast.shape[0]}")
    if rast_db is not None:
        checks.rast_buffer("rast_db", rast_db, rast.shape[0])
        checks.tensor("rast_db", rast_db, (4,), floats)
        checks.same_device(rast=rast, rast_db=rast_db)
        if rast_db.shape[:3] != rast.shape[:3]:
            raise ValueError(f"rast_db: shape {list(rast_db.shape)} does not match rast {list(rast.shape)}")
    channels = attr.shape[-1]
    if diff_attrs == "all":
        diff_list = list(range(channels))
    elif diff_attrs is None:
        diff_list = None
    else:
        try:
            diff_list = [int(i) for i in diff_attrs]
        except (TypeError, ValueError):
            raise ValueError(f"diff_attrs: expected 'all' or a list of ints, got {diff_attrs!r}") from None
        if any(i < 0 or i >= channels for i in diff_list):
            raise ValueError(f"diff_attrs: indices must lie in [0, {channels - 1}], got {diff_list}")
    if name == "nvdiffrast":
        return nvdiffrast_backend.interpolate(attr, rast, tri, rast_db, diff_list)
    return torch_impl.interpolate(attr, rast, tri, rast_db, diff_list)


def texture(
    tex: torch.Tensor,
    uv: torch.Tensor,
    uv_da: torch.Tensor | None = None,
    mip_level_bias: torch.Tensor | None = None,
    mip: TextureMip | list[torch.Tensor] | None = None,
    filter_mode: str = "auto",
    boundary_mode: str = "wrap",
    max_mip_level: int | None = None,
    backend: str | None = None,
) -> torch.Tensor:
    """Filtered texture lookups.

    Args:
        tex: [Bt, H, W, C], or [Bt, 6, S, S, C] cube map (with boundary_mode="cube"); Bt = 1 or B.
        uv: [B, h, w, 2] texture coordinates (texel (i, j) centred at ((j+.5)/W, (i+.5)/H)), or
            [B, h, w, 3] directions for cube maps.
        uv_da: [B, h, w, 4] (cube: 6) pixel derivatives of uv, e.g. from :func:`interpolate`.
        mip_level_bias: [B, h, w] added to the level of detail (the level itself without uv_da).
        mip: a :func:`texture_construct_mip` result, or a list of custom levels 1.. (they receive
            their own gradients; none flow from them to ``tex``).
        filter_mode: "auto" (linear-mipmap-linear when uv_da or mip_level_bias is given, else
            linear), "nearest", "linear", "linear-mipmap-nearest", "linear-mipmap-linear".
        boundary_mode: "wrap", "clamp", "zero" or "cube".
        max_mip_level: limit on the number of mip levels built and used.

    Returns:
        [B, h, w, C]. Cube lookups with invalid (zero) directions give zeros and no gradient.
    """
    checks.tensor("tex", tex, (4, 5))
    checks.tensor("uv", uv, (4,))
    device = checks.same_device(tex=tex, uv=uv, uv_da=uv_da, mip_level_bias=mip_level_bias)
    name = resolve(backend, device)
    floats = _float_dtypes(name)
    if boundary_mode not in checks.BOUNDARY_MODES:
        raise ValueError(
            f"boundary_mode: expected one of {', '.join(checks.BOUNDARY_MODES)}, got {boundary_mode!r}"
        )
    if filter_mode not in checks.FILTER_MODES:
        raise ValueError(
            f"filter_mode: expected one of {', '.join(checks.FILTER_MODES)}, got {filter_mode!r}"
        )
    cube = boundary_mode == "cube"
    checks.tensor("tex", tex, (5,) if cube else (4,), floats)
    if cube and (tex.shape[1] != 6 or tex.shape[2] != tex.shape[3]):
        raise ValueError(f"tex: a cube map must have shape [B, 6, S, S, C], got {list(tex.shape)}")
    checks.tensor("uv", uv, (4,), floats)
    checks.last_dim("uv", uv, 3 if cube else 2)
    if tex.shape[0] not in (1, uv.shape[0]):
        raise ValueError(f"tex: minibatch {tex.shape[0]} must be 1 or match uv's {uv.shape[0]}")
    if min(tex.shape[1:-1]) == 0 or tex.shape[-1] == 0:
        raise ValueError(f"tex: empty texture of shape {list(tex.shape)}")
    if uv_da is not None:
        checks.tensor("uv_da", uv_da, (4,), floats)
        if list(uv_da.shape) != list(uv.shape[:3]) + [2 * uv.shape[3]]:
            raise ValueError(
                f"uv_da: expected shape {list(uv.shape[:3]) + [2 * uv.shape[3]]}, got {list(uv_da.shape)}"
            )
    if mip_level_bias is not None:
        checks.tensor("mip_level_bias", mip_level_bias, (3,), floats)
        if mip_level_bias.shape != uv.shape[:3]:
            raise ValueError(
                f"mip_level_bias: expected shape {list(uv.shape[:3])}, got {list(mip_level_bias.shape)}"
            )
    if filter_mode == "auto":
        filter_mode = (
            "linear-mipmap-linear" if (uv_da is not None or mip_level_bias is not None) else "linear"
        )
    if max_mip_level is not None and (not isinstance(max_mip_level, int) or max_mip_level < 0):
        raise ValueError(f"max_mip_level: expected a non-negative int, got {max_mip_level!r}")
    mip_levels = _check_mip(mip, tex, cube, device, floats)
    if filter_mode.startswith("linear-mipmap") and mip_levels is None:
        faces = tex.shape[2:4] if cube else tex.shape[1:3]
        torch_impl.mip_sizes(faces[0], faces[1], max_mip_level)  # raises a ValueError on odd sizes
    if name == "nvdiffrast":
        return nvdiffrast_backend.texture(
            tex, uv, uv_da, mip_level_bias, mip_levels, filter_mode, boundary_mode, max_mip_level
        )
    return torch_impl.texture(
        tex, uv, uv_da, mip_level_bias, mip_levels, filter_mode, boundary_mode, max_mip_level
    )


def _check_mip(mip, tex, cube: bool, device, floats) -> list[torch.Tensor] | None:
    if mip is None:
        return None
    if isinstance(mip, TextureMip):
        if mip.cube != cube:
            raise ValueError(
                f"mip: built with cube_mode={mip.cube} but boundary_mode is {'cube' if cube else '2D'!r}"
            )
        levels = mip.levels
    elif isinstance(mip, (list, tuple)):
        levels = list(mip)
    else:
        raise ValueError(
            f"mip: expected texture_construct_mip() output or a list of tensors, got {type(mip).__name__}"
        )
    height, width = (tex.shape[2], tex.shape[3]) if cube else (tex.shape[1], tex.shape[2])
    for k, level in enumerate(levels, start=1):
        checks.tensor(f"mip[{k - 1}]", level, (tex.dim(),), floats)
        height, width = max(1, height // 2), max(1, width // 2)
        expected = [tex.shape[0]] + ([6, height, width] if cube else [height, width]) + [tex.shape[-1]]
        if list(level.shape) != expected:
            raise ValueError(
                f"mip[{k - 1}]: expected shape {expected} for mip level {k}, got {list(level.shape)}"
            )
        if level.device != device:
            raise ValueError(f"mip[{k - 1}]: is on {level.device} but tex is on {device}")
    return levels


def texture_construct_mip(
    tex: torch.Tensor, max_mip_level: int | None = None, cube_mode: bool = False
) -> TextureMip:
    """Prebuild the mip stack of a constant texture (levels 1..; 2x2 box filter), for ``texture(mip=...)``."""
    checks.tensor("tex", tex, (5,) if cube_mode else (4,), _FLOATS)
    faces = tex.shape[2:4] if cube_mode else tex.shape[1:3]
    torch_impl.mip_sizes(faces[0], faces[1], max_mip_level)
    return torch_impl.texture_construct_mip(tex, max_mip_level, cube_mode)


@dataclass
class TopologyHash:
    """Edge-adjacency of a triangle tensor for :func:`antialias`, built once per mesh and per backend."""

    tri: torch.Tensor
    _per_backend: dict[str, object] = field(default_factory=dict, repr=False)

    def get(self, backend: str):
        if backend not in self._per_backend:
            build = (
                nvdiffrast_backend.construct_topology
                if backend == "nvdiffrast"
                else torch_impl.construct_topology
            )
            self._per_backend[backend] = build(self.tri)
        return self._per_backend[backend]


def antialias_construct_topology_hash(tri: torch.Tensor) -> TopologyHash:
    """Topology of ``tri`` [F, 3] int32 for repeated :func:`antialias` calls on the same mesh."""
    checks.tensor("tri", tri, (2,), int32=True)
    checks.last_dim("tri", tri, 3)
    return TopologyHash(tri)


def antialias(
    color: torch.Tensor,
    rast: torch.Tensor,
    pos: torch.Tensor,
    tri: torch.Tensor,
    topology_hash: TopologyHash | None = None,
    pos_gradient_boost: float = 1.0,
    backend: str | None = None,
) -> torch.Tensor:
    """Analytic anti-aliasing of silhouette edges, with gradients to ``color`` and to the positions
    of the silhouette edges' vertices (Laine et al. 2020).

    Args:
        color: [B, H, W, C] image to anti-alias.
        rast: [B, H, W, 4] from :func:`rasterize` with the same ``pos`` and ``tri``.
        pos: [B, V, 4] or [V, 4] clip-space positions given to :func:`rasterize`.
        tri: [F, 3] int32.
        topology_hash: from :func:`antialias_construct_topology_hash`; built on the fly if None.
        pos_gradient_boost: multiplier on the gradients sent to ``pos``.

    Returns:
        [B, H, W, C]
    """
    checks.tensor("color", color, (4,))
    checks.rast_buffer("rast", rast, color.shape[0])
    checks.tensor("pos", pos, (2, 3))
    device = checks.same_device(
        color=color, rast=rast, pos=pos, tri=tri if isinstance(tri, torch.Tensor) else None
    )
    name = resolve(backend, device)
    floats = _float_dtypes(name)
    checks.tensor("color", color, (4,), floats)
    checks.tensor("rast", rast, (4,), floats)
    checks.tensor("pos", pos, (2, 3), floats)
    checks.last_dim("pos", pos, 4)
    checks.triangles(tri, pos.shape[-2])
    if color.shape[:3] != rast.shape[:3]:
        raise ValueError(f"color: shape {list(color.shape)} does not match rast {list(rast.shape)}")
    if pos.dim() == 3 and pos.shape[0] != color.shape[0]:
        raise ValueError(f"pos: minibatch {pos.shape[0]} does not match color's {color.shape[0]}")
    if topology_hash is None:
        topology_hash = TopologyHash(tri)
    elif not isinstance(topology_hash, TopologyHash):
        raise ValueError("topology_hash: expected the result of antialias_construct_topology_hash()")
    elif topology_hash.tri is not tri and not torch.equal(topology_hash.tri, tri):
        raise ValueError("topology_hash: was built for a different triangle tensor")
    topology = topology_hash.get(name)
    if name == "nvdiffrast":
        return nvdiffrast_backend.antialias(color, rast, pos, tri, topology, pos_gradient_boost)
    return torch_impl.antialias(color, rast, pos, tri, topology, pos_gradient_boost)
