"""Path-traced renders of an asset by Mitsuba 3 (optional extra ``mitsuba``, CPU wheels on the package
index): the independent judge of how an export looks under a light it was not trained in.

The asset is read from its files (docs/design.md, "Export contract": mesh.obj and its textures) into a
principled BSDF (base colour = texture_kd.png, sRGB; roughness and metallic textures, linear; specular 0.5,
i.e. F0 = 0.04), lit by an equirectangular .hdr in this project's convention (docs/design.md, "Environment
maps": Blender's, world +Z up) and rendered with a path tracer (shadows and inter-reflections), emitters
hidden so that the coverage is the alpha. The same function renders a ground truth given as a mesh, a base
colour image and constant roughness/metallic.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from data.errors import DatasetError, UserError

VARIANT_VARIABLE = "MITSUBA_VARIANT"
"""Environment variable naming the variant; by default ``scalar_rgb``, which needs no LLVM (its JIT
variant aborted on this project's CPU machines with the system's LLVM 15)."""
# Mitsuba's envmap looks up world direction d at u = atan2(x, -z) / 2pi, v = acos(y) / pi in its local
# frame; ours (Blender's) at phi = pi (1 - 2u) from +X toward +Y, theta from +Z. Local (x, y, z) =
# world (y, z, x) makes the two agree.
ENVMAP_TO_WORLD = [[0, 0, 1, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1]]


def available() -> bool:
    """Whether the ``mitsuba`` package imports (with a CPU variant)."""
    try:
        _mitsuba()
    except (ImportError, RuntimeError):
        return False
    return True


def _mitsuba():
    import mitsuba as mi

    if mi.variant() is None:
        variant = os.environ.get(VARIANT_VARIABLE, "scalar_rgb")
        if variant not in mi.variants():
            raise UserError(
                f"{VARIANT_VARIABLE}={variant!r}: mitsuba has no such variant (one of {mi.variants()})"
            )
        mi.set_variant(variant)
    return mi


@dataclass
class MitsubaMaterial:
    """A principled material from files: base colour image (sRGB) and roughness / metallic images
    (linear) or constants."""

    base_color: str | os.PathLike
    roughness: str | os.PathLike | float
    metallic: str | os.PathLike | float

    @classmethod
    def of_asset(cls, folder: str | os.PathLike) -> MitsubaMaterial:
        folder = Path(folder)
        return cls(
            folder / "texture_kd.png", folder / "texture_roughness.png", folder / "texture_metallic.png"
        )


def _channel(value, raw: bool) -> dict | float:
    if isinstance(value, int | float):
        return float(value)
    return {"type": "bitmap", "filename": str(value), "raw": raw, "filter_type": "bilinear"}


def render(
    mesh_path: str | os.PathLike, material: MitsubaMaterial, environment: str | os.PathLike, cameras,
    samples: int = 64, seed: int = 0,
) -> torch.Tensor:  # fmt: skip
    """Path-traced views [B, H, W, 4]: linear RGB premultiplied by the alpha (object over black) and the
    coverage. ``cameras``: a data.cameras.Camera batch (OpenGL camera axes, principal point at the centre)."""
    mi = _mitsuba()
    scene_dict = {
        "type": "scene",
        "integrator": {"type": "path", "hide_emitters": True},
        "emitter": {
            "type": "envmap",
            "filename": str(environment),
            "to_world": mi.ScalarTransform4f(ENVMAP_TO_WORLD),
        },
        "object": {
            "type": "obj",
            "filename": str(mesh_path),
            "bsdf": {
                "type": "principled",
                "base_color": _channel(material.base_color, raw=False),
                "roughness": _channel(material.roughness, raw=True),
                "metallic": _channel(material.metallic, raw=True),
            },
        },
    }
    scene = mi.load_dict(scene_dict)
    images = []
    for k in range(len(cameras)):
        width, height = int(cameras.width), int(cameras.height)
        if abs(_at(cameras.cx, k) - width / 2) > 0.5 or abs(_at(cameras.cy, k) - height / 2) > 0.5:
            raise DatasetError(
                f"camera {k}: Mitsuba renders centred principal points only; evaluate without it"
            )
        c2w = cameras.c2w[k].double().cpu().numpy()
        origin = c2w[:3, 3]
        fov = math.degrees(2 * math.atan(width / (2 * float(_at(cameras.fx, k)))))
        sensor = mi.load_dict({
            "type": "perspective",
            "fov": fov,
            "fov_axis": "x",
            "to_world": mi.ScalarTransform4f.look_at(
                origin=origin.tolist(), target=(origin - c2w[:3, 2]).tolist(), up=c2w[:3, 1].tolist()
            ),
            "film": {"type": "hdrfilm", "width": width, "height": height, "pixel_format": "rgba",
                     "rfilter": {"type": "box"}},
            "sampler": {"type": "independent", "sample_count": samples},
        })  # fmt: skip
        image = np.asarray(mi.render(scene, sensor=sensor, seed=seed + k), dtype=np.float32)
        images.append(torch.from_numpy(image.copy()))
    return torch.stack(images)


def _at(value, k: int) -> float:
    tensor = torch.as_tensor(value)
    return float(tensor.reshape(-1)[k] if tensor.numel() > 1 else tensor)
