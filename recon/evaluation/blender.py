"""Exported assets in Blender (optional ``bpy``, the Blender 5.0 Python module): import, world light from
``probe.hdr``, the dataset's cameras, Cycles renders. Used by the round-trip tests, the Blender
evaluation (``scripts/blender_eval.py``) and ``scripts/blender_scene.py``.

Blender's frame is the export's upright frame: the GLB importer turns glTF's +Y into +Z, so the asset
lands with the world's up axis (``scene_transform.json``) along +Z; the OBJ, which is in the dataset's
frame, is imported unrotated (Forward = Y, Up = Z) and then given the same rotation; the dataset's
cameras get it too. probe.hdr is written in that frame, so it goes into the Environment Texture node
with Blender's default mapping.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from data.cameras import Camera
from data.errors import UserError
from data.images import linear_to_srgb, to_uint8, write_image
from data.orientation import Z_UP, rotation_to_z_up
from recon.evaluation.metrics import image_psnr

INSTALL_HINT = (
    "pip install bpy==5.0.1 (Blender as a Python module; Python 3.11 only), or pip install -e '.[blender]'"
)


class BlenderUnavailable(UserError):
    """bpy is not installed; the message says how to install it (exit status 2: a missing extra)."""

    exit_code = 2


def require_bpy():
    """The ``bpy`` module, or :class:`BlenderUnavailable` with the install command."""
    try:
        import bpy
    except ImportError:
        raise BlenderUnavailable(f"Blender's Python module is not installed: {INSTALL_HINT}") from None
    return bpy


def new_scene(samples: int = 32, denoise: bool = True, threads: int = 0):
    """An empty scene rendering with Cycles on the CPU: ``samples`` per pixel, OpenImageDenoise, transparent
    film (alpha = coverage), the 'Standard' view transform (no tone mapping), linear 32-bit EXR output."""
    bpy = require_bpy()
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.use_adaptive_sampling = False
    scene.cycles.use_denoising = denoise
    scene.cycles.seed = 0
    scene.render.film_transparent = True
    scene.view_settings.view_transform = "Standard"
    scene.view_settings.look = "None"
    scene.render.image_settings.file_format = "OPEN_EXR"
    scene.render.image_settings.color_depth = "32"
    scene.render.image_settings.color_mode = "RGBA"
    if threads:
        scene.render.threads_mode = "FIXED"
        scene.render.threads = threads
    return scene


def _fix_obj_material(material) -> None:
    """Blender's OBJ importer reads every map as sRGB and plugs map_Ks (our ORM texture) into 'Specular IOR
    Level'; make the data maps Non-Color and restore the default specular level (0.5 = F0 0.04)."""
    tree = material.node_tree
    for node in tree.nodes:
        image = getattr(node, "image", None)
        if image is not None and not image.name.startswith("texture_kd"):
            image.colorspace_settings.name = "Non-Color"
        if node.bl_idname == "ShaderNodeBsdfPrincipled":
            socket = node.inputs["Specular IOR Level"]
            for link in list(socket.links):
                tree.links.remove(link)
            socket.default_value = 0.5


def import_asset(folder: str | os.PathLike, kind: str = "glb", up=Z_UP, fix_obj: bool = True) -> list:
    """Import ``mesh.glb`` or ``mesh.obj`` of an export folder; returns the new mesh objects.

    Both end up in the upright frame (see the module docstring). ``fix_obj``: correct the OBJ importer's
    colour spaces and specular (see :func:`_fix_obj_material`); False imports exactly as File > Import does.
    """
    bpy = require_bpy()
    from mathutils import Matrix

    folder = Path(folder)
    before = set(bpy.data.objects)
    if kind == "glb":
        bpy.ops.import_scene.gltf(filepath=str(folder / "mesh.glb"))
    elif kind == "obj":
        bpy.ops.wm.obj_import(filepath=str(folder / "mesh.obj"), forward_axis="Y", up_axis="Z")
    else:
        raise ValueError(f"kind: expected 'glb' or 'obj', got {kind!r}")
    objects = [o for o in bpy.data.objects if o not in before and o.type == "MESH"]
    for obj in objects:
        if kind == "obj":
            obj.matrix_world = Matrix(_homogeneous(rotation_to_z_up(up)).tolist()) @ obj.matrix_world
            if fix_obj:
                for slot in obj.material_slots:
                    _fix_obj_material(slot.material)
    return objects


def _homogeneous(rotation: torch.Tensor) -> torch.Tensor:
    matrix = torch.eye(4, dtype=torch.float64)
    matrix[:3, :3] = rotation.double()
    return matrix


def world_bounds(objects) -> tuple[np.ndarray, np.ndarray]:
    """World-space bounding box (min [3], max [3]) of the objects' vertices."""
    points = []
    for obj in objects:
        matrix = np.array(obj.matrix_world)
        coords = np.array([v.co[:] for v in obj.data.vertices])
        points.append(coords @ matrix[:3, :3].T + matrix[:3, 3])
    points = np.concatenate(points)
    return points.min(0), points.max(0)


def set_world(probe: str | os.PathLike, mirrored: bool = False) -> None:
    """Light the scene with an equirectangular .hdr (Environment Texture, Blender's default mapping);
    ``mirrored`` flips it left-right (a control: a probe written in the wrong convention)."""
    bpy = require_bpy()
    scene = bpy.context.scene
    world = bpy.data.worlds.new("probe")  # Blender 5 worlds always have a node tree
    nodes, links = world.node_tree.nodes, world.node_tree.links
    nodes.clear()
    texture = nodes.new("ShaderNodeTexEnvironment")
    texture.image = bpy.data.images.load(str(Path(probe).resolve()), check_existing=True)
    texture.image.colorspace_settings.name = "Linear Rec.709"
    background = nodes.new("ShaderNodeBackground")
    output = nodes.new("ShaderNodeOutputWorld")
    if mirrored:  # direction (x, y, z) looks up (x, -y, z): the map mirrored about its centre column
        coords, mapping = nodes.new("ShaderNodeTexCoord"), nodes.new("ShaderNodeMapping")
        mapping.vector_type = "VECTOR"
        mapping.inputs["Scale"].default_value = (1.0, -1.0, 1.0)
        links.new(coords.outputs["Generated"], mapping.inputs["Vector"])
        links.new(mapping.outputs["Vector"], texture.inputs["Vector"])
    links.new(texture.outputs["Color"], background.inputs["Color"])
    links.new(background.outputs["Background"], output.inputs["Surface"])
    scene.world = world


def add_camera(cameras: Camera, index: int, up=Z_UP, name: str = "camera"):
    """A Blender camera for view ``index`` (OpenGL axes = Blender's camera axes; pinhole intrinsics as
    focal length and lens shift); returns the object."""
    bpy = require_bpy()
    from mathutils import Matrix

    width, height = cameras.width, cameras.height
    data = bpy.data.cameras.new(name)
    data.sensor_fit = "HORIZONTAL"
    data.sensor_width = 36.0
    data.lens = float(cameras.fx[index]) * data.sensor_width / width
    size = max(width, height)
    data.shift_x = (width / 2 - float(cameras.cx[index])) / size
    data.shift_y = (float(cameras.cy[index]) - height / 2) / size
    data.clip_start, data.clip_end = cameras.near, cameras.far
    obj = bpy.data.objects.new(name, data)
    bpy.context.scene.collection.objects.link(obj)
    c2w = _homogeneous(rotation_to_z_up(up)) @ cameras.c2w[index].double()
    obj.matrix_world = Matrix(c2w.tolist())
    return obj


def render(camera, width: int, height: int) -> np.ndarray:
    """Render through ``camera`` with the scene's settings: [H, W, 4] float32, linear RGB premultiplied by
    alpha (coverage), top row first."""
    bpy = require_bpy()
    scene = bpy.context.scene
    scene.camera = camera
    scene.render.resolution_x, scene.render.resolution_y = width, height
    scene.render.resolution_percentage = 100
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "render.exr")
        scene.render.filepath = path
        bpy.ops.render.render(write_still=True)
        image = bpy.data.images.load(path)
        pixels = np.array(image.pixels[:], dtype=np.float32).reshape(height, width, 4)
        bpy.data.images.remove(image)
    return pixels[::-1].copy()


def over_white_srgb(rgba: np.ndarray) -> torch.Tensor:
    """A premultiplied linear render [H, W, 4] over a white background, sRGB-encoded [H, W, 3] in [0, 1]."""
    rgba = torch.from_numpy(np.ascontiguousarray(rgba))
    return linear_to_srgb((rgba[..., :3] + (1 - rgba[..., 3:])).clamp(0, 1))


def evaluate_in_blender(
    folder: str | os.PathLike, dataset, views, kind: str = "glb", up=Z_UP, mirrored: bool = False,
    samples: int = 32, fix_obj: bool = True, image_dir: Path | None = None,
) -> dict:  # fmt: skip
    """Import an exported asset into a fresh Blender scene, light it with its probe.hdr, render ``views``
    of a world-unit dataset (``recon.asset.load.asset_dataset``) with Cycles and score them like our
    own evaluation does (PSNR, sRGB over white). Returns psnr, psnrs and the asset's world bounding box."""

    new_scene(samples=samples)
    objects = import_asset(folder, kind, up, fix_obj=fix_obj)
    set_world(Path(folder) / "probe.hdr", mirrored=mirrored)
    psnrs = []
    for view in views:
        camera = add_camera(dataset.cameras, view, up, name=f"view_{view:03d}")
        rendered = over_white_srgb(render(camera, dataset.cameras.width, dataset.cameras.height))
        reference = linear_to_srgb(dataset.batch([view]).images[0])
        psnrs.append(image_psnr(rendered, reference))
        if image_dir is not None:
            image_dir.mkdir(parents=True, exist_ok=True)
            write_image(
                image_dir / f"{kind}_view_{view:03d}.png", to_uint8(torch.cat((rendered, reference), 1))
            )
    lower, upper = world_bounds(objects)
    return {"psnr": float(np.mean(psnrs)), "psnrs": psnrs, "bounds": (lower.tolist(), upper.tolist())}
