"""A capture-like synthetic scene: what a user's photos of an object look like, with the truth kept aside.

The built-in object (or an OBJ) stands on a textured table (a disk lit by the environment, with enough
texture for feature matching) in front of a visible HDR environment; the photos are RGB only (no alpha)
and come without poses. Cameras circle the object from above the table, at random elevations and
azimuths, all looking at the object's centre, as a person walking around a table would.

    make_capture_scene(photos_dir, truth_dir, CaptureConfig())

writes ``photos_dir/images/view_XXXX.png`` (what ``python train.py dataset.path=photos_dir`` reads) and
``truth_dir``: the same views of the object alone with alpha and the true cameras, in NeRF-synthetic
format (the masked, posed reference run trains on it; its test split is the photos' hold-out split),
``gt_mesh.obj``, ``env.hdr`` and ``table.json`` (the table's plane, radius, in the world frame).
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from data.cameras import Camera, pose_errors, similarity_from_centres
from data.dataset import load_scene
from data.files import write_text_atomic
from data.images import linear_to_srgb, read_rgba, srgb_to_linear, to_uint8, write_image
from data.nerf_synthetic import load_nerf_synthetic, write_nerf_synthetic
from data.scene import SceneData, holdout_splits
from geometry.obj import read_obj, write_obj
from recon.asset.load import asset_dataset, load_asset
from recon.evaluation.evaluate import evaluate_asset, load_run
from recon.evaluation.metrics import surface_metrics
from recon.run_dir import RunDir
from recon.scenes.synthetic import CAMERA_DISTANCE, FOV_DEGREES, SyntheticConfig, build_object, procedural_sky
from render.background import GroundPlane, environment_radiance
from render.camera import look_at
from render.envmap import latlong_directions
from render.hdr import load_environment, write_hdr
from render.light import EnvironmentLight, EnvironmentLightConfig
from render.renderer import render_views


def _capture_object() -> SyntheticConfig:
    return SyntheticConfig(resolution=384, light_resolution=128, mesh_resolution=128)


@dataclass
class CaptureConfig:
    """Settings of :func:`make_capture_scene`."""

    scene: SyntheticConfig = field(default_factory=_capture_object)
    """Object, environment, image size, field of view, camera distance and seed (its n_* are unused)."""
    views: int = 48
    test_every: int = 8
    """The hold-out rule of the photos' loader (every n-th image is a test view)."""
    min_elevation: float = 12.0
    max_elevation: float = 55.0
    """Camera elevation above the table, degrees."""
    table_radius: float = 3.0
    """In object radii."""
    table_texture: int = 1024
    jpeg: bool = False
    """Write the photos as a phone does: JPEG (quality 92) with EXIF (Make, Model, FocalLength,
    FocalLengthIn35mmFilm, Orientation); else PNG without EXIF."""
    portrait_every: int = 0
    """Every n-th shot held upright (0: none): the camera rolled by 90 degrees, its pixels stored as the
    sensor's (the same size) with EXIF Orientation 6, as phones store portrait shots."""


def table_texture(resolution: int, generator: torch.Generator) -> torch.Tensor:
    """[R, R, 3] linear albedo: a terrazzo-like table, sharp-edged discs of random colours and sizes
    over value noise (blobs and corners for SIFT at every scale)."""
    base = torch.zeros(1, 3, resolution, resolution)
    for level, weight in ((8, 0.5), (64, 0.3)):
        cells = torch.rand(1, 3, level, level, generator=generator)
        base += weight * torch.nn.functional.interpolate(
            cells, size=(resolution, resolution), mode="bilinear"
        )
    albedo = (0.15 + 0.5 * base[0].permute(1, 2, 0)) * torch.tensor([0.9, 0.7, 0.5])
    count = resolution * resolution // 300
    centres = torch.rand(count, 2, generator=generator) * resolution
    radii = resolution * (0.003 + 0.02 * torch.rand(count, generator=generator) ** 3)
    colours = 0.03 + 0.8 * torch.rand(count, 3, generator=generator) ** 1.5
    rows = torch.arange(resolution, dtype=torch.float32)
    for (x, y), r, colour in zip(centres.tolist(), radii.tolist(), colours, strict=True):
        y0, y1 = max(0, int(y - r)), min(resolution, int(y + r) + 1)
        x0, x1 = max(0, int(x - r)), min(resolution, int(x + r) + 1)
        inside = (rows[y0:y1, None] - y) ** 2 + (rows[None, x0:x1] - x) ** 2 <= r * r
        albedo[y0:y1, x0:x1][inside] = colour
    return albedo.contiguous()


def capture_cameras(config: CaptureConfig, centre: torch.Tensor, radius: float, generator) -> Camera:
    """``config.views`` cameras above the table looking at ``centre`` (stratified in azimuth)."""
    c2w = []
    low, high = math.radians(config.min_elevation), math.radians(config.max_elevation)
    for view in range(config.views):
        azimuth = 2 * math.pi * (view + float(torch.rand(1, generator=generator))) / config.views
        elevation = low + (high - low) * float(torch.rand(1, generator=generator))
        direction = torch.tensor(
            [
                math.cos(elevation) * math.cos(azimuth),
                math.cos(elevation) * math.sin(azimuth),
                math.sin(elevation),
            ]
        )
        eye = centre + CAMERA_DISTANCE * radius * direction
        up = (0, 0, 1)
        if config.portrait_every and view % config.portrait_every == config.portrait_every - 1:
            up = tuple(float(v) for v in torch.linalg.cross(direction, torch.tensor([0.0, 0.0, 1.0])))
        c2w.append(torch.linalg.inv(look_at(eye, centre, up)))
    size = config.scene.resolution
    focal = 0.5 * size / math.tan(math.radians(FOV_DEGREES) / 2)
    cameras = Camera(torch.stack(c2w), focal, focal, size / 2, size / 2, size, size)
    cameras.near, cameras.far = 0.05 * radius, 20 * radius * config.table_radius
    return cameras


def _shaded_table(table: GroundPlane, light: EnvironmentLight, points, view) -> torch.Tensor:
    albedo = table.radiance(points)
    normal = table.normal.expand_as(points)
    rough, metal = torch.full_like(points[:, :1], 0.75), torch.zeros_like(points[:, :1])
    return light.shade(normal, view, albedo, rough, metal)


def _write_phone_jpeg(path: Path, photo: np.ndarray, focal_pixels, orientation: int) -> None:
    """A JPEG with a phone's EXIF: the 35 mm-equivalent focal length (by the diagonal, 43.27 mm) that
    matches ``focal_pixels``; COLMAP takes it as its focal-length prior."""
    exif = Image.Exif()
    diagonal = math.hypot(photo.shape[0], photo.shape[1])
    exif[0x010F], exif[0x0110], exif[0x0112] = (
        "Capture",
        "Phone-like",
        orientation,
    )  # Make, Model, Orientation
    details = exif.get_ifd(0x8769)
    details[0x920A] = 4.2  # FocalLength (mm) of a phone's main camera
    details[0xA405] = round(43.27 * float(focal_pixels) / diagonal)  # FocalLengthIn35mmFilm
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(photo).save(path, quality=92, exif=exif.tobytes())


def make_capture_scene(
    photos_dir: str | os.PathLike, truth_dir: str | os.PathLike, config: CaptureConfig | None = None
) -> Camera:
    """Render the capture (module docstring); returns the true cameras (world frame, +Z up)."""
    config = config or CaptureConfig()
    photos_dir, truth_dir = Path(photos_dir), Path(truth_dir)
    generator = torch.Generator().manual_seed(config.scene.seed)
    mesh, material = build_object(config.scene)
    if config.scene.environment == "sky":
        environment = procedural_sky(latlong_directions(config.scene.light_resolution * 2))
    else:
        environment = torch.as_tensor(load_environment(config.scene.environment)).float()
    light = EnvironmentLight.from_latlong(
        environment, EnvironmentLightConfig(resolution=config.scene.light_resolution)
    )
    lower, upper = mesh.vertices.min(0).values, mesh.vertices.max(0).values
    centre = (lower + upper) / 2
    radius = float((mesh.vertices - centre).norm(dim=-1).max())
    floor = torch.tensor([float(centre[0]), float(centre[1]), float(lower[2])])
    table = GroundPlane(
        floor, torch.tensor([0.0, 0.0, 1.0]), config.table_radius * radius,
        initial=table_texture(config.table_texture, generator),
    )  # fmt: skip
    cameras = capture_cameras(config, centre, radius, generator)
    photos, cutouts = [], []
    with torch.no_grad():
        for view in range(len(cameras)):
            camera = cameras[[view]]
            out = render_views(
                mesh.vertices, mesh.faces, camera, light, material, uv=mesh.uv, uv_faces=mesh.uv_faces
            )
            origins, directions = camera.rays()
            colour = environment_radiance(light, directions)
            points, hit = table.hits(origins, directions)
            colour[hit] = _shaded_table(table, light, points[hit], -directions[hit])
            photo = out.rgb + colour * (1 - out.alpha)  # out.rgb is premultiplied (rendered over black)
            photos.append(to_uint8(linear_to_srgb(photo[0])))
            alpha = out.alpha.clamp(0, 1)
            straight = torch.where(alpha > 0, out.rgb / alpha.clamp_min(1e-6), out.rgb)
            cutouts.append(to_uint8(torch.cat((linear_to_srgb(straight), alpha), -1)[0]))
    names = [f"view_{view:04d}.{'jpg' if config.jpeg else 'png'}" for view in range(len(cameras))]
    for view, (name, photo) in enumerate(zip(names, photos, strict=True)):
        if config.jpeg:
            portrait = config.portrait_every and view % config.portrait_every == config.portrait_every - 1
            _write_phone_jpeg(photos_dir / "images" / name, photo, cameras.fx[view], 6 if portrait else 1)
        else:
            write_image(photos_dir / "images" / name, photo)
    splits = holdout_splits(len(cameras), config.test_every)
    write_nerf_synthetic(truth_dir, cameras, cutouts, {k: v for k, v in splits.items() if v})
    write_obj(truth_dir / "gt_mesh.obj", mesh.vertices, mesh.faces)
    write_hdr(truth_dir / "env.hdr", environment.numpy())
    write_image(truth_dir / "table_albedo.png", to_uint8(linear_to_srgb(table.texture.detach())))
    table_meta = {"origin": floor.tolist(), "normal": [0.0, 0.0, 1.0], "radius": table.radius}
    write_text_atomic(truth_dir / "table.json", json.dumps(table_meta, indent=2))
    write_text_atomic(truth_dir / "photo_names.json", json.dumps(names))
    return cameras


def _truth_order(scene: SceneData, truth: SceneData, names: list[str]) -> list[int]:
    """For each view of ``scene`` (photos, by file name), its index among ``truth``'s views."""
    by_view = {int(path.stem.split("_")[-1]): index for index, path in enumerate(truth.image_paths)}
    return [by_view[names.index(path.name)] for path in scene.image_paths]


def evaluate_capture(run_dir: str | os.PathLike, truth_dir: str | os.PathLike) -> dict:
    """Score a run on a capture (images only) against its truth (:func:`make_capture_scene`): the SfM
    cameras' errors after the similarity that best maps their centres onto the true ones; the exported
    asset mapped by that similarity and compared with the true mesh (Chamfer-L1, F-score at 1% of its
    diagonal); and its test PSNR / SSIM over white in the true test cameras, as a masked run with known
    poses is scored. Writes ``<run dir>/capture_metrics.json``."""
    run_dir, truth_dir = Path(run_dir), Path(truth_dir)
    settings, folder = load_run(run_dir)
    scene = load_scene(settings.dataset.path, "colmap", settings.dataset.test_every, sfm="off")
    truth = load_nerf_synthetic(truth_dir)
    names = json.loads((truth_dir / "photo_names.json").read_text())
    order = _truth_order(scene, truth, names)
    poses = pose_errors(scene.cameras, truth.cameras[order])
    scale, rotation, translation = similarity_from_centres(
        scene.cameras.centers, truth.cameras[order].centers
    )
    up, _ = RunDir(run_dir).up()
    asset = load_asset(folder, settings.light_resolution, up, turn=rotation)
    aligned = (scale * asset.vertices.double() @ rotation.T + translation).float()
    faces = asset.faces
    reference = read_obj(truth_dir / "gt_mesh.obj")
    extent = float((reference.vertices.max(0).values - reference.vertices.min(0).values).norm())
    surface = surface_metrics(aligned, faces, reference.vertices, reference.faces, threshold=0.01 * extent)
    dataset = asset_dataset(truth, "test", settings.dataset.downscale_for(truth))
    images = evaluate_asset(
        folder, dataset, range(len(dataset)), settings.light_resolution, run_dir / "capture_eval",
        asset=asset._replace(vertices=aligned),
    )  # fmt: skip
    metrics = {
        "registered": len(scene.image_paths),
        "images": len(names),
        **poses,
        **surface,
        "psnr_over_white": images["psnr"],
        "ssim_over_white": images["ssim"],
    }
    write_text_atomic(run_dir / "capture_metrics.json", json.dumps(metrics, indent=2))
    return metrics


def photos_from_dataset(
    dataset_dir: str | os.PathLike, photos_dir: str | os.PathLike, truth_dir: str | os.PathLike,
    environment: str | os.PathLike | None = None, test_every: int = 8, table: bool = False,
    min_elevation: float = 5.0, seed: int = 0,
) -> None:  # fmt: skip
    """A masked, posed NeRF-synthetic dataset (all splits) turned into photos: each view composited
    over what its camera sees of the environment it was lit by (``environment``, default
    ``<dataset>/env.hdr``) and, with ``table``, of a textured table under the object (its plane through
    the lowest point of ``gt_mesh.obj``, lit by that environment, as in :func:`make_capture_scene`;
    only the views at least ``min_elevation`` degrees above it are kept), written without alpha and
    without poses to ``photos_dir/images``. ``truth_dir`` gets the same views with alpha and poses,
    re-split by the photos' hold-out rule (every ``test_every``-th), and the dataset's ``gt_mesh.obj``."""
    dataset_dir, photos_dir, truth_dir = Path(dataset_dir), Path(photos_dir), Path(truth_dir)
    scene = load_nerf_synthetic(dataset_dir)
    latlong = torch.as_tensor(load_environment(environment or dataset_dir / "env.hdr")).float()
    light = EnvironmentLight.from_latlong(latlong, EnvironmentLightConfig(resolution=256))
    mesh = read_obj(dataset_dir / "gt_mesh.obj")
    views = list(range(len(scene.image_paths)))
    ground = None
    if table:
        lower, upper = mesh.vertices.min(0).values, mesh.vertices.max(0).values
        centre = (lower + upper) / 2
        radius = float((mesh.vertices - centre).norm(dim=-1).max())
        floor = torch.tensor([float(centre[0]), float(centre[1]), float(lower[2])])
        generator = torch.Generator().manual_seed(seed)
        ground = GroundPlane(
            floor, torch.tensor([0.0, 0.0, 1.0]), 3 * radius, initial=table_texture(1024, generator)
        )
        to_camera = scene.cameras.centers - centre
        elevation = torch.rad2deg(torch.asin(to_camera[:, 2] / to_camera.norm(dim=-1)))
        views = [view for view in views if float(elevation[view]) >= min_elevation]
    cutouts, names = [], []
    for view in views:
        rgba = torch.from_numpy(read_rgba(scene.image_paths[view])).float() / 255
        origins, directions = scene.cameras[[view]].rays()
        with torch.no_grad():
            background = environment_radiance(light, directions)[0]
            if ground is not None:
                points, hit = ground.hits(origins[0], directions[0])
                background[hit] = _shaded_table(ground, light, points[hit], -directions[0][hit])
        alpha = rgba[..., 3:]
        photo = srgb_to_linear(rgba[..., :3]) * alpha + background * (1 - alpha)
        names.append(f"view_{len(names):04d}.png")
        write_image(photos_dir / "images" / names[-1], to_uint8(linear_to_srgb(photo)))
        cutouts.append((rgba * 255 + 0.5).to(torch.uint8).numpy())
    splits = holdout_splits(len(names), test_every)
    write_nerf_synthetic(truth_dir, scene.cameras[views], cutouts, {k: v for k, v in splits.items() if v})
    shutil.copyfile(dataset_dir / "gt_mesh.obj", truth_dir / "gt_mesh.obj")
    write_text_atomic(truth_dir / "photo_names.json", json.dumps(names))
