"""Synthetic scenes rendered with our own renderer: what ``python train.py`` reconstructs by default.

Three objects: the built-in procedural one (an analytic SDF — a rounded body with a bowl-shaped dent on
top and a torus handle through a side lug, so concave and of genus 1 — with base colour stripes,
roughness varying along x and a metallic handle), the built-in "concave" one (a block with a tunnel
through it and a deep pocket in its top: surface that only grazing or top-down views see), or any OBJ
reference mesh (base colour from its
``map_Kd`` texture when it has UVs). The light is a procedural sky or a user ``.hdr``. Cameras sit
uniformly at random on a sphere around the object, looking at its centre. The views are written in
NeRF-synthetic format (RGBA PNG, sRGB) with the ground truth beside them (``gt_mesh.obj``, ``env.hdr``,
``gt_material.json``, and ``relight/``: the test views again under a second light, for
recon.evaluation.relight_eval), then loaded back through the normal parser, so training sees exactly
what a user's dataset gives. Views are shaded with the object's ambient occlusion (render.occlusion), as
a photo's shadows darken its crevices.
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from data.cameras import Camera
from data.images import linear_to_srgb, read_rgba, srgb_to_linear, to_uint8
from data.nerf_synthetic import load_nerf_synthetic, write_nerf_synthetic
from data.scene import SceneData
from data.settings import Settings, power_of_two, require
from geometry.extraction import GridConfig, extract_mesh
from geometry.mesh import Mesh
from geometry.obj import find_texture, read_obj, write_obj
from recon.scenes.procedural import BUILT_IN_OBJECTS, procedural_material, procedural_sky, relight_sky
from recon.scenes.reference import MATERIAL_FILE, RELIGHT_FOLDER, write_reference
from render.camera import look_at
from render.envmap import latlong_directions
from render.hdr import load_environment, write_hdr
from render.light import EnvironmentLight, EnvironmentLightConfig
from render.occlusion import vertex_occlusion
from render.raster import texture
from render.renderer import Material, render_views


@dataclass
class SyntheticConfig(Settings):
    """Settings of :func:`make_synthetic_scene`."""

    object: str = "procedural"
    """"procedural", "concave" (a tunnel and a cavity: :func:`recon.scenes.procedural.concave_sdf`) or the
    path of an OBJ mesh."""
    environment: str = "sky"
    """"sky" (procedural) or the path of a lat-long .hdr / .npy / .exr."""
    n_train: int = 48
    n_val: int = 2
    n_test: int = 8
    resolution: int = 128
    """Image width and height (pixels)."""
    mesh_resolution: int = 128
    """Marching-cubes grid of the procedural object."""
    light_resolution: int = 64
    """Cube face size of the environment light the views are rendered under."""
    occlusion: bool = True
    """Shade the views with the object's ambient occlusion (render.occlusion), the darkening of crevices
    that a photo's shadows give; False: the unoccluded split-sum shading."""
    seed: int = 0

    def check(self) -> None:
        mesh = self.object.lower().endswith(".obj") and Path(self.object).expanduser().is_file()
        expected = f"{' or '.join(BUILT_IN_OBJECTS)} or the path of an .obj mesh"
        require(self, "object", self.object in BUILT_IN_OBJECTS or mesh, expected)
        environment = self.environment == "sky" or Path(self.environment).expanduser().is_file()
        require(self, "environment", environment, '"sky" or the path of a lat-long map (.hdr, .exr, .npy)')
        require(self, "n_train", self.n_train >= 2, "an integer >= 2 (views from more than one side)")
        require(self, "n_val", self.n_val >= 0, "an integer >= 0")
        require(self, "n_test", self.n_test >= 0, "an integer >= 0")
        require(self, "resolution", self.resolution >= 8, "an image size >= 8")
        require(self, "mesh_resolution", self.mesh_resolution >= 8, "a grid size >= 8")
        require(self, "light_resolution", power_of_two(self.light_resolution, 8), "a power of two >= 8")


FOV_DEGREES = 40.0
"""The cameras' field of view."""
CAMERA_DISTANCE = 3.2
"""Camera distance in units of the object's bounding-sphere radius (>= 1 / sin(fov / 2) keeps the whole
object in view: 2.92 at 40 degrees)."""


# ----------------------------------------------------------------------------------- the object


def _textured_material(image_path: str) -> Material:
    tex = srgb_to_linear(torch.from_numpy(read_rgba(image_path)[..., :3]).float() / 255)
    tex = torch.flip(tex, dims=[0])[None].contiguous()  # OBJ v = 0 at the bottom row

    def material(p: torch.Tensor, uv: torch.Tensor | None):
        if uv is None:
            base = torch.full_like(p, 0.6)
        else:
            base = texture(tex.to(p.device), uv[None, :, None].contiguous(), filter_mode="linear")[0, :, 0]
        return base, torch.full_like(p[:, :1], 0.5), torch.zeros_like(p[:, :1])

    return material


def _constant_material(p: torch.Tensor, uv: torch.Tensor | None):
    return torch.full_like(p, 0.6), torch.full_like(p[:, :1], 0.5), torch.zeros_like(p[:, :1])


def reference_material(config: SyntheticConfig) -> tuple:
    """The (base_color, roughness, metallic) entries of the object's gt_material.json
    (recon.scenes.reference): what :func:`build_object`'s material is."""
    if config.object in BUILT_IN_OBJECTS:
        return "procedural", "procedural", "procedural"
    image = find_texture(config.object)
    if image and read_obj(config.object).uv is not None:
        return str(Path(image).resolve()), 0.5, 0.0
    return [0.6, 0.6, 0.6], 0.5, 0.0


def build_object(config: SyntheticConfig) -> tuple[Mesh, Material]:
    if config.object in BUILT_IN_OBJECTS:
        bound = torch.full((3,), 1.0)
        vertices, faces, _ = extract_mesh(
            BUILT_IN_OBJECTS[config.object],
            -bound,
            bound,
            GridConfig(config.mesh_resolution, narrow_band=False),
        )
        return Mesh(vertices.detach(), faces), procedural_material
    mesh = read_obj(config.object)
    image = find_texture(config.object)
    material = _textured_material(image) if image and mesh.uv is not None else _constant_material
    return mesh, material


# ----------------------------------------------------------------------------------- cameras, rendering


def random_cameras(
    n: int, centre: torch.Tensor, distance: float, config: SyntheticConfig, generator
) -> Camera:
    """``n`` cameras uniformly on the sphere (away from the poles, where +Z up degenerates)."""
    c2w = []
    while len(c2w) < n:
        d = torch.randn(3, generator=generator)
        d = d / d.norm()
        if abs(float(d[2])) < 0.95:
            c2w.append(torch.linalg.inv(look_at(centre + distance * d, centre, (0, 0, 1))))
    focal = 0.5 * config.resolution / math.tan(math.radians(FOV_DEGREES) / 2)
    half = config.resolution / 2
    cameras = Camera(torch.stack(c2w), focal, focal, half, half, config.resolution, config.resolution)
    cameras.near, cameras.far = max(distance * 0.05, 1e-3), distance * 4
    return cameras


def _render(
    mesh: Mesh, material: Material, light: EnvironmentLight, cameras: Camera, occlusion: torch.Tensor | None
) -> list[np.ndarray]:
    images = []
    with torch.no_grad():
        for start in range(0, len(cameras), 8):
            part = cameras[list(range(start, min(start + 8, len(cameras))))]
            out = render_views(
                mesh.vertices,
                mesh.faces,
                part,
                light,
                material,
                uv=mesh.uv,
                uv_faces=mesh.uv_faces,
                occlusion=occlusion,
            )
            # Un-premultiply the antialiased colour (rendered over black) for straight-alpha PNGs.
            alpha = out.alpha.clamp(0, 1)
            rgb = torch.where(alpha > 0, out.rgb / alpha.clamp_min(1e-6), out.rgb)
            rgba = torch.cat((linear_to_srgb(rgb), alpha), -1)
            images += list(to_uint8(rgba))
    return images


@dataclass
class SyntheticScene:
    """A rendered scene on disk (``root``) and its ground truth."""

    root: Path
    scene: SceneData
    mesh: Mesh
    material: Material
    light: EnvironmentLight
    environment: torch.Tensor
    """[H, 2H, 3] the lat-long radiance the views were lit by."""


def make_synthetic_scene(root: str | os.PathLike, config: SyntheticConfig | None = None) -> SyntheticScene:
    """Render ``config``'s object into ``root`` (NeRF-synthetic format + gt_mesh.obj + env.hdr); load it."""
    config = config or SyntheticConfig()
    root = Path(root)
    generator = torch.Generator().manual_seed(config.seed)
    mesh, material = build_object(config)
    if config.environment == "sky":
        environment = procedural_sky(latlong_directions(config.light_resolution))
    else:
        environment = torch.as_tensor(load_environment(config.environment)).float()
    light = EnvironmentLight.from_latlong(
        environment, EnvironmentLightConfig(resolution=config.light_resolution)
    )
    lower, upper = mesh.vertices.min(0).values, mesh.vertices.max(0).values
    centre = (lower + upper) / 2
    radius = float((mesh.vertices - centre).norm(dim=-1).max())
    counts = {"train": config.n_train, "val": config.n_val, "test": config.n_test}
    cameras = random_cameras(sum(counts.values()), centre, CAMERA_DISTANCE * radius, config, generator)
    occlusion = vertex_occlusion(mesh.vertices, mesh.faces) if config.occlusion else None
    images = _render(mesh, material, light, cameras, occlusion)
    splits, start = {}, 0
    for split, count in counts.items():
        splits[split] = list(range(start, start + count))
        start += count
    write_nerf_synthetic(root, cameras, images, {k: v for k, v in splits.items() if v})
    write_obj(root / "gt_mesh.obj", mesh.vertices, mesh.faces, mesh.uv, mesh.uv_faces)
    write_hdr(root / "env.hdr", environment)
    write_reference(root / MATERIAL_FILE, *reference_material(config))
    if splits["test"]:  # the test views again, under a second light (recon.evaluation.materials)
        relight = relight_sky(latlong_directions(config.light_resolution))
        relight_light = EnvironmentLight.from_latlong(relight, light.config)
        test_cameras = cameras[splits["test"]]
        relight_images = _render(mesh, material, relight_light, test_cameras, occlusion)
        relight_root = root / RELIGHT_FOLDER
        write_nerf_synthetic(
            relight_root, test_cameras, relight_images, {"test": list(range(len(test_cameras)))}
        )
        # the parser wants a train split: the same frames (one copy of the images)
        shutil.copyfile(relight_root / "transforms_test.json", relight_root / "transforms_train.json")
        write_hdr(relight_root / "env.hdr", relight)
    return SyntheticScene(root, load_nerf_synthetic(root), mesh, material, light, environment)
