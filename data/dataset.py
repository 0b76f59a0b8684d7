"""Multi-view dataset: decoded once into compact uint8 RGBA, linear RGB on the fly, random view batches.

    scene = load_scene("path/to/dataset")                 # any supported format (auto-detected)
    train = MultiViewDataset(scene, "train", downscale=2)
    batch = train.sample(4, generator)                     # images [4, H, W, 3] linear, masks, cameras

Memory: 100 views of 800x800 RGBA take 256 MB (uint8); float conversion happens per batch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from data.cameras import Camera
from data.colmap import is_colmap, load_colmap
from data.distortion import undistort
from data.errors import DatasetError, warn
from data.ground import Plane, Region, fit_ground_plane, object_region, region_transform
from data.heic import convert_heic
from data.images import read_mask, read_rgba, read_rgba_reduced, resize_rgba, srgb_to_linear, warn_no_masks
from data.llff import is_llff, load_llff
from data.masks import make_masks
from data.nerf_synthetic import is_nerf_synthetic, load_nerf_synthetic
from data.nerfstudio import is_nerfstudio, load_nerfstudio
from data.normalization import SceneTransform, from_cameras, from_masks, from_points
from data.orientation import estimate_up
from data.scene import SceneData, check_files, check_split
from data.sfm import ensure_poses, image_folder
from data.video import is_video, video_photos

FORMATS = {  # name: (detect, load, whether the format needs a hold-out rule for its test split)
    "nerf_synthetic": (is_nerf_synthetic, load_nerf_synthetic, False),
    "nerfstudio": (is_nerfstudio, load_nerfstudio, True),
    "colmap": (is_colmap, load_colmap, True),
    "llff": (is_llff, load_llff, True),
}


MIN_SIDE = 8
"""The smallest image side a view is trained and evaluated at (pixels; SSIM's window is 7)."""

_SRGB_TO_LINEAR = srgb_to_linear(torch.arange(256, dtype=torch.float32) / 255)
"""[256] each 8-bit sRGB code decoded to linear: a lookup is the decode of ``code / 255``, bit for bit,
at a third of its time."""


def load_scene(
    path: str | os.PathLike,
    format: str = "auto",
    test_every: int = 8,
    sfm: str = "auto",
    progress: bool = True,
    mask_command: str = "",
    video_frames: int = 60,
) -> SceneData:
    """Parse a dataset folder; ``format`` = "auto" (detected from its files) or a key of FORMATS.

    ``test_every``: formats without explicit splits hold out every n-th view for testing (0: none);
    NeRF-synthetic has its own split files. ``sfm`` (auto, force, off): a folder of photos without poses
    gets them by structure from motion first (:mod:`data.sfm`), written next to the images as a COLMAP
    model that the next run reuses; ``force`` redoes it. ``mask_command``: for such a folder, a command
    that makes the missing masks (:func:`data.masks.make_masks`). A video file is first turned into a
    folder of its ``video_frames`` sharpest frames beside it (:mod:`data.video`).
    """
    root = Path(path).expanduser()
    if is_video(root):
        root = video_photos(root, video_frames, progress)
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder not found")
    if format in ("auto", "colmap"):
        convert_heic(root)  # HEIC photos: a JPEG beside each, once
    detected = next((name for name, (detect, _, _) in FORMATS.items() if detect(root)), None)
    if format in ("auto", "colmap") and detected in (None, "colmap") and image_folder(root) is not None:
        ensure_poses(root, sfm, has_other_format=False, progress=progress)
        detected = "colmap"
        if mask_command:
            make_masks(root, mask_command)
    if format == "auto":
        if detected is None:
            raise DatasetError(
                f"{root}: no images and no known dataset format (expected photos, transforms_train.json, "
                "transforms.json, a COLMAP sparse model or poses_bounds.npy)"
            )
        format = detected
    if format not in FORMATS:
        raise DatasetError(f"{root}: unknown format '{format}' (known: {', '.join(FORMATS)})")
    _, load, holds_out = FORMATS[format]
    scene = load(root, test_every=test_every) if holds_out else load(root)
    check_files(scene)
    return scene


@dataclass
class Batch:
    """images [B, H, W, 3] linear RGB composited over ``background``; masks [B, H, W, 1] in [0, 1];
    background [B, 1, 1, 3]; cameras (B views); views [B] dataset indices."""

    images: torch.Tensor
    masks: torch.Tensor
    background: torch.Tensor
    cameras: Camera
    views: torch.Tensor

    def to(self, device: torch.device | str) -> Batch:
        """The batch with its tensors and cameras on ``device`` (views stay on the CPU)."""
        return replace(
            self,
            images=self.images.to(device),
            masks=self.masks.to(device),
            background=self.background.to(device),
            cameras=self.cameras.to(device),
        )

    def __getitem__(self, index: list[int]) -> Batch:
        """The views at positions ``index`` of this batch."""
        return Batch(
            self.images[index], self.masks[index], self.background[index], self.cameras[index],
            self.views[index],
        )  # fmt: skip

    def cropped(self, side: int, generator: torch.Generator | None = None) -> Batch:
        """A random ``side`` x ``side`` window of each view (clamped to the image size; one window per view,
        drawn uniformly), with its cameras (:meth:`data.cameras.Camera.cropped`)."""
        height, width = self.images.shape[1:3]
        h, w = min(side, height), min(side, width)
        if (h, w) == (height, width):
            return self
        top = torch.randint(height - h + 1, (len(self.views),), generator=generator)
        left = torch.randint(width - w + 1, (len(self.views),), generator=generator)
        windows = [
            (b, slice(int(t), int(t) + h), slice(int(x), int(x) + w))
            for b, (t, x) in enumerate(zip(top, left, strict=True))
        ]
        images = torch.stack([self.images[window] for window in windows])
        masks = torch.stack([self.masks[window] for window in windows])
        return replace(self, images=images, masks=masks, cameras=self.cameras.cropped(left, top, w, h))


@dataclass
class MultiViewDataset(torch.utils.data.Dataset):
    """One split of a scene, decoded and cached.

    background: "random" (a uniform random colour per view and batch), "white", "black" or an (r, g, b)
    tuple in linear RGB. transform: the scene normalization applied to the cameras (None: estimate one
    from masks, sparse points or cameras; pass the train split's to the test split).

    Without masks, the views are photos: ``ground`` is the plane the object stands on (from the sparse
    points, :func:`data.ground.fit_ground_plane`) and ``region`` the box above it that holds the object
    (:func:`data.ground.object_region`, or ``bbox`` = (xmin, ymin, zmin, xmax, ymax, zmax) in world
    units), both in normalized coordinates; the normalization then frames that region. A ``bbox`` also
    bounds the region of a masked dataset.
    """

    scene: SceneData
    split: str = "train"
    downscale: float = 1.0
    background: str | tuple[float, float, float] = "random"
    transform: SceneTransform | None = None
    bbox: tuple[float, ...] | None = None
    rgba: torch.Tensor = field(init=False, repr=False)
    cameras: Camera = field(init=False, repr=False)
    has_masks: bool = field(init=False)
    views: list[int] = field(init=False)
    ground: Plane | None = field(init=False, default=None)
    region: Region | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        views = check_split(self.scene.splits, self.split, self.scene.source)
        cameras = self.scene.cameras[views]
        if self.downscale <= 0:
            raise DatasetError(f"{self.scene.source}: downscale must be positive, got {self.downscale}")
        target = cameras.scaled(1.0 / self.downscale) if self.downscale != 1 else cameras
        if min(target.width, target.height) < MIN_SIDE:
            raise DatasetError(
                f"{self.scene.source}: images of {cameras.width}x{cameras.height} downscaled by "
                f"{self.downscale:g} are {target.width}x{target.height}, below {MIN_SIDE} pixels a side "
                "(lower dataset.downscale or raise dataset.max_side)"
            )
        # one photo at a time at full size at most (JPEGs are decoded at a reduced size): bounded memory
        images = [resize_rgba(self._decode(view, target), target.width, target.height) for view in views]
        self.rgba = torch.from_numpy(np.stack(images))  # [N, H, W, 4] uint8
        self.has_masks = self.scene.mask_paths is not None or bool((self.rgba[..., 3] < 255).any())
        if self.has_masks:
            mask_files = self.scene.mask_paths or self.scene.image_paths
            check_masks(self.rgba[..., 3], [mask_files[view] for view in views], self.scene.source)
        plane, region = (
            scene_ground(self.scene, self.bbox) if not self.has_masks or self.bbox else (None, None)
        )
        if not self.has_masks and plane is None:
            warn_no_masks(self.scene.source)
        if self.bbox and region is not None:
            check_region_seen(region, target, self.rgba[..., 3] if self.has_masks else None, self.bbox)
        if self.transform is None:
            self.transform = (
                region_transform(region) if region is not None else self._estimate_transform(target)
            )
            if self.scene.up is not None:
                self.transform.up, self.transform.up_source = self.scene.up, "the dataset format's convention"
            elif plane is not None:
                self.transform.up = tuple(plane.normal.tolist())
                self.transform.up_source = "the normal of the ground plane in the sparse points"
            else:
                self.transform.up = estimate_up(target)
                self.transform.up_source = "estimated from the cameras' mean up vector"
        scale, offset = self.transform.scale, self.transform.offset
        self.ground = plane.transformed(scale, offset) if plane is not None and not self.has_masks else None
        self.region = region.transformed(scale, offset) if region is not None else None
        self.cameras = self.transform.cameras(target)
        self.views = views

    def _decode(self, view: int, target: Camera) -> np.ndarray:
        """View ``view``'s RGBA, decoded at ``target``'s size or larger (see read_rgba_reduced; masks are
        read at full size, so with masks the image is too), its mask in alpha, undistorted."""
        path = self.scene.image_paths[view]
        if self.scene.mask_paths is None:
            image, size = read_rgba_reduced(path, (target.width, target.height))
        else:
            image = read_rgba(path)
            size = (image.shape[1], image.shape[0])
        if size != (self.scene.cameras.width, self.scene.cameras.height):
            raise DatasetError(
                f"{path}: image is {size[0]}x{size[1]}, expected "
                f"{self.scene.cameras.width}x{self.scene.cameras.height} like the other views"
            )
        if self.scene.mask_paths is not None:
            mask = read_mask(self.scene.mask_paths[view])
            if mask.shape != image.shape[:2]:
                raise DatasetError(
                    f"{self.scene.mask_paths[view]}: mask size differs from its image {path.name}"
                )
            image = image.copy()
            image[..., 3] = mask
        distortion = self.scene.distortion[view]
        if distortion is not None:  # at the decoded size: the intrinsics scaled to it
            c, sx, sy = self.scene.cameras, image.shape[1] / size[0], image.shape[0] / size[1]
            scales = {"fx": sx, "fy": sy, "cx": sx, "cy": sy}
            image = undistort(image, distortion, *(float(getattr(c, k)[view]) * s for k, s in scales.items()))
        return image

    def _estimate_transform(self, cameras: Camera) -> SceneTransform:
        if self.has_masks:
            hull = from_masks(cameras, self.rgba[..., 3])
            if hull is not None:
                return hull
        if self.scene.points is not None and len(self.scene.points) >= 10:
            return from_points(self.scene.points)
        return from_cameras(cameras)

    def __len__(self) -> int:
        return self.rgba.shape[0]

    @property
    def photos(self) -> bool:
        """No masks: what is not the object is background to explain (``render.background``)."""
        return not self.has_masks

    def _background(self, n: int, generator: torch.Generator | None) -> torch.Tensor:
        if self.background == "random":
            return torch.rand(n, 1, 1, 3, generator=generator)
        named = {"white": (1.0, 1.0, 1.0), "black": (0.0, 0.0, 0.0)}
        colour = (
            named.get(self.background, self.background)
            if isinstance(self.background, str)
            else self.background
        )
        if isinstance(colour, str):
            raise DatasetError(
                f"background: expected 'random', 'white', 'black' or (r, g, b), got {colour!r}"
            )
        return torch.tensor(colour, dtype=torch.float32).view(1, 1, 1, 3).expand(n, 1, 1, 3)

    def batch(self, views: torch.Tensor | list[int], generator: torch.Generator | None = None) -> Batch:
        """The given views (indices into this split), composited over the background."""
        views = torch.as_tensor(views, dtype=torch.long)
        rgba = self.rgba[views]
        rgb, alpha = _SRGB_TO_LINEAR[rgba[..., :3].long()], rgba[..., 3:].float() / 255
        background = self._background(len(views), generator)
        images = rgb * alpha + background * (1 - alpha)
        return Batch(images, alpha, background, self.cameras[views.tolist()], views)

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> Batch:
        """``batch_size`` distinct random views (with replacement once the split is exhausted)."""
        n = len(self)
        views = torch.randperm(n, generator=generator)[: min(batch_size, n)]
        if batch_size > n:
            views = torch.cat((views, torch.randint(n, (batch_size - n,), generator=generator)))
        return self.batch(views, generator)

    def __getitem__(self, index: int) -> dict:
        """One view for ``torch.utils.data.DataLoader``: image [H, W, 3], mask [H, W, 1], view index."""
        batch = self.batch([index])
        return {"image": batch.images[0], "mask": batch.masks[0], "view": index}

    def __iter__(self):
        """Every view in order, one Batch each (validation / test)."""
        for view in range(len(self)):
            yield self.batch([view])


def check_masks(alpha: torch.Tensor, files: list[Path], where: str) -> None:
    """Masks [N, H, W] (uint8) that cannot be what the user meant: one warning line for views whose mask
    covers the whole image (an image without alpha among masked ones: the background would be taken
    for the object) and one for empty masks (the view shows no object); a DatasetError when every mask
    is empty (nothing to reconstruct). ``files``: each view's mask (or RGBA image) file."""
    empty = (alpha.flatten(1).amax(1) == 0).tolist()
    full = (alpha.flatten(1).amin(1) == 255).tolist()
    if all(empty):
        raise DatasetError(f"{where}: every mask is empty (alpha 0 everywhere in {files[0].name} and the "
                           "others): there is no object to reconstruct")  # fmt: skip
    for flags, problem in (
        (full, "covers the whole image (no transparent pixel, unlike the other views' masks): the background "
         "is taken for the object"),
        (empty, "is empty (alpha 0 everywhere): the view shows no object"),
    ):  # fmt: skip
        flagged = [file for file, flag in zip(files, flags, strict=True) if flag]
        if flagged:
            more = f" (and {len(flagged) - 1} more views)" if len(flagged) > 1 else ""
            warn(f"{flagged[0]}: the mask {problem}{more}")


def check_region_seen(region: Region, cameras: Camera, alpha: torch.Tensor | None, bbox) -> None:
    """A DatasetError when no view looks into a given ``dataset.bbox``: no ray through a pixel of the
    object (its mask; every pixel of photos) crosses the box, so there is nothing to reconstruct in it.
    ``alpha`` [N, H, W] (uint8) or None; up to 1024 pixels per view are tried."""
    generator = torch.Generator().manual_seed(0)
    for view in range(len(cameras)):
        pixels = torch.arange(cameras.height * cameras.width)
        candidates = pixels[alpha[view].flatten() > 127] if alpha is not None else pixels
        if len(candidates) == 0:
            continue
        chosen = candidates[torch.randperm(len(candidates), generator=generator)[:1024]]
        origins, directions = cameras[view].pixel_rays(chosen)
        if bool(region.crosses(origins, directions).any()):
            return
    seen = "the object's pixels (masks)" if alpha is not None else "any pixel"
    raise DatasetError(
        f"dataset.bbox={list(bbox)}: no view sees into this box through {seen}; give the object's region in "
        "the dataset's units, or leave dataset.bbox empty"
    )


def scene_ground(scene: SceneData, bbox=None) -> tuple[Plane | None, Region | None]:
    """The ground plane of a scene's sparse points (None without points or a dominant plane) and the
    object's region (``bbox``, else the box above the plane, else None), in world units; from every view's
    camera, so each split gets the same."""
    plane = None
    if scene.points is not None and len(scene.points) >= 20:
        plane = fit_ground_plane(scene.points, scene.cameras)
    if bbox:
        if len(bbox) != 6 or not all(low < high for low, high in zip(bbox[:3], bbox[3:], strict=True)):
            raise DatasetError(
                f"{scene.source}: bbox {list(bbox)} is not (xmin, ymin, zmin, xmax, ymax, zmax) with each "
                "min < max"
            )
        return plane, Region.from_bounds(bbox)
    if plane is None:
        return None, None
    return plane, object_region(scene.points, scene.cameras, plane)
