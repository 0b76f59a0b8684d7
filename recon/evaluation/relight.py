"""An exported asset under any environment map: turntable cameras around it, renders by our renderer (or
Cycles, through recon.evaluation.blender), PNG frames and an animated turntable. ``scripts/relight.py`` is the
command line."""

from __future__ import annotations

import math
import os
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch

from data.cameras import Camera
from data.errors import ConfigError
from data.files import atomic_path
from data.images import linear_to_srgb, to_uint8, write_image
from data.orientation import Z_UP, rotation_to_z_up
from recon.asset.load import load_asset
from recon.evaluation import blender
from render.camera import look_at
from render.light import EnvironmentLight, EnvironmentLightConfig
from render.raster import texture


def turntable_cameras(
    vertices: torch.Tensor, frames: int = 36, size: int = 256, fov_degrees: float = 40.0,
    elevation_degrees: float = 20.0,
) -> Camera:  # fmt: skip
    """``frames`` cameras circling the asset (vertices [V, 3] of a +Z-up frame) about +Z,
    ``elevation_degrees`` above its centre, far enough that its bounding sphere fills 80% of the view."""
    lower, upper = vertices.min(0).values, vertices.max(0).values
    centre = (lower + upper) / 2
    radius = float((vertices - centre).norm(dim=-1).max())
    distance = radius / math.sin(math.radians(fov_degrees) / 2 * 0.8)
    elevation = math.radians(elevation_degrees)
    c2w = []
    for k in range(frames):
        angle = 2 * math.pi * k / frames
        direction = torch.tensor(
            [
                math.cos(elevation) * math.cos(angle),
                math.cos(elevation) * math.sin(angle),
                math.sin(elevation),
            ]
        )
        c2w.append(torch.linalg.inv(look_at(centre + distance * direction, centre, Z_UP)))
    focal = size / (2 * math.tan(math.radians(fov_degrees) / 2))
    return Camera(torch.stack(c2w), focal, focal, size / 2, size / 2, size, size, near=0.01 * distance,
                  far=10 * distance)  # fmt: skip


def render_turntable(
    folder: str | os.PathLike, environment: str | os.PathLike, out_dir: str | os.PathLike, frames: int = 36,
    size: int = 256, background: str = "environment", up=Z_UP, use_blender: bool = False, samples: int = 32,
) -> list[Path]:  # fmt: skip
    """Render the asset in ``folder`` (an export: mesh.obj + textures) lit by ``environment`` (.hdr/.exr,
    the equirectangular convention of docs/design.md) from turntable cameras; writes ``frame_XXX.png``
    and ``turntable.gif`` into ``out_dir`` and returns the frame paths. ``background``: "environment"
    (the map, as a camera sees it) or "white". Everything happens in the upright frame (the world's
    ``up`` along +Z, as the map's pole and Blender's import have it)."""
    folder, out_dir = Path(folder), Path(out_dir)
    for name, value, least in (("frames", frames, 1), ("size", size, 8), ("samples", samples, 1)):
        if value < least:
            raise ConfigError(name, f"={value}: expected an integer >= {least}")
    if background not in ("environment", "white"):
        raise ConfigError("background", f"={background!r}: expected environment or white")
    light = EnvironmentLight.from_file(
        environment, EnvironmentLightConfig(resolution=128)
    )  # a bad map: at once
    asset = load_asset(folder, 64)
    asset = asset._replace(vertices=asset.vertices @ rotation_to_z_up(up).float().T)
    cameras = turntable_cameras(asset.vertices, frames, size)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    if use_blender:
        scene = blender.new_scene(samples=samples)
        blender.import_asset(folder, "glb", up)
        blender.set_world(environment)
        scene.render.film_transparent = background == "white"
    for k in range(frames):
        if use_blender:
            rgba = blender.render(blender.add_camera(cameras, k), size, size)
            rgb = blender.over_white_srgb(rgba)
        else:
            with torch.no_grad():
                out = asset.render(cameras[k], light=light)
            behind = _environment_background(light, cameras[k]) if background == "environment" else 1.0
            rgb = linear_to_srgb((out.rgb[0] + behind * (1 - out.alpha[0])).clamp(0, 1))
        path = out_dir / f"frame_{k:03d}.png"
        write_image(path, to_uint8(rgb))
        paths.append(path)
    images = [np.asarray(iio.imread(p)) for p in paths]
    with atomic_path(out_dir / "turntable.gif") as tmp:
        iio.imwrite(tmp, np.stack(images), duration=80, loop=0)
    return paths


def _environment_background(light: EnvironmentLight, camera: Camera) -> torch.Tensor:
    """[H, W, 3] the environment seen through ``camera`` (its own rays, top row first)."""
    _, directions = camera.rays()
    flat = directions.reshape(-1, 3)
    cube = light.base.detach()[None]
    seen = texture(cube, flat[None, :, None].contiguous(), filter_mode="linear", boundary_mode="cube")
    return seen.reshape(camera.height, camera.width, 3)
