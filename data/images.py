"""Image files: decoding to compact uint8 RGBA, colour transfer functions, resizing, atomic writing."""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch
from PIL import Image

from data.errors import DatasetError
from data.files import atomic_path

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".exr", ".bmp", ".tif", ".tiff", ".webp")


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    """sRGB-encoded [0, 1] -> linear (IEC 61966-2-1)."""
    return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def srgb_curve(x: torch.Tensor) -> torch.Tensor:
    """The sRGB encoding curve for x >= 0, not clamped above 1 (values above 1 keep their gradient)."""
    return torch.where(x <= 0.0031308, x * 12.92, 1.055 * x.clamp_min(0.0031308) ** (1 / 2.4) - 0.055)


def linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    """Linear -> sRGB-encoded, clamped to [0, 1]."""
    return srgb_curve(x.clamp(0.0, 1.0))


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Values in [0, 1] (clamped) -> rounded uint8 array on the CPU."""
    return (x.clamp(0, 1) * 255 + 0.5).to(torch.uint8).cpu().numpy()


def resolve_image(path: Path) -> Path:
    """``path`` itself, or with an image suffix appended when the dataset omits it (NeRF-synthetic)."""
    if path.is_file():
        return path
    for suffix in IMAGE_SUFFIXES:
        candidate = path.with_name(path.name + suffix)
        if candidate.is_file():
            return candidate
    raise DatasetError(f"{path}: image not found")


def read_rgba(path: str | os.PathLike) -> np.ndarray:
    """Decode an 8- or 16-bit image into uint8 RGBA [H, W, 4] (alpha 255 when the file has none)."""
    path = Path(path)
    with _decoding(path):
        image = np.asarray(iio.imread(path, extension=path.suffix or None))
    return _as_rgba(image, path)


@contextlib.contextmanager
def _decoding(path: Path) -> Iterator[None]:
    """A file that is missing or does not decode: one DatasetError naming it."""
    try:
        yield
    except FileNotFoundError:
        raise DatasetError(f"{path}: image not found") from None
    except Exception as error:  # noqa: BLE001 - any decoder failure is a bad file
        raise DatasetError(f"{path}: cannot decode image ({type(error).__name__}: {error})") from None


def _as_rgba(image: np.ndarray, path: Path) -> np.ndarray:
    """A decoded 8- or 16-bit grey, grey + alpha, RGB or RGBA image as uint8 RGBA [H, W, 4]."""
    if image.dtype == np.uint16:
        image = (image.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise DatasetError(f"{path}: unsupported image type {image.dtype} (expected 8 or 16 bits)")
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[2] not in (1, 2, 3, 4):
        raise DatasetError(f"{path}: unsupported image shape {list(image.shape)}")
    if image.shape[2] in (1, 2):  # gray (+ alpha)
        image = np.concatenate([image[..., :1]] * 3 + [image[..., 1:]], axis=2)
    if image.shape[2] == 3:
        image = np.concatenate([image, np.full_like(image[..., :1], 255)], axis=2)
    return np.ascontiguousarray(image)


JPEG_SUFFIXES = (".jpg", ".jpeg")


def read_rgba_reduced(
    path: str | os.PathLike, at_least: tuple[int, int]
) -> tuple[np.ndarray, tuple[int, int]]:
    """:func:`read_rgba` of ``path`` decoded at a reduced size where the format allows (JPEG: the
    decoder's 1/2, 1/4 or 1/8 scale, the smallest that stays at least ``at_least`` = (width, height)), so a
    12 MP photo never occupies memory at full size; and the file's own (width, height)."""
    path = Path(path)
    if path.suffix.lower() not in JPEG_SUFFIXES:
        image = read_rgba(path)
        return image, (image.shape[1], image.shape[0])
    with _decoding(path), Image.open(path) as file:
        size = file.size
        file.draft("RGB", at_least)
        image = np.asarray(file.convert("RGB"))
    return _as_rgba(image, path), size


def exif_orientation(path: str | os.PathLike) -> int | None:
    """The EXIF Orientation tag of an image file (1-8; 6 and 8: the pixels are stored turned by 90 degrees,
    as phones store portrait shots), or None when the file has none or is not readable."""

    try:
        with Image.open(path) as image:
            value = image.getexif().get(0x0112)
    except Exception:  # noqa: BLE001 - no EXIF to read is the same as no tag
        return None
    return int(value) if isinstance(value, int) else None


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """A mask image as uint8 [H, W] (its alpha if it has one that is not opaque, else its first channel)."""
    rgba = read_rgba(path)
    return rgba[..., 3] if (rgba[..., 3] < 255).any() else rgba[..., 0]


def resize_rgba(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Area-average resize of uint8 RGBA in linear light (colour weighted by alpha); uint8 RGBA out."""
    if image.shape[1] == width and image.shape[0] == height:
        return image
    x = torch.from_numpy(image).float().div(255).permute(2, 0, 1)[None]
    rgb, alpha = srgb_to_linear(x[:, :3]), x[:, 3:]
    pooled = torch.nn.functional.interpolate(
        torch.cat((rgb * alpha, alpha), 1), size=(height, width), mode="area"
    )
    alpha = pooled[:, 3:]
    rgb = torch.where(alpha > 0, pooled[:, :3] / alpha.clamp_min(1e-8), pooled[:, :3])
    out = torch.cat((linear_to_srgb(rgb), alpha), 1)[0].permute(1, 2, 0)
    return to_uint8(out)


def write_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write a uint8 image atomically (data.files)."""
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, image)


def warn_no_masks(where: str) -> None:
    warnings.warn(
        f"{where}: images have no alpha and no masks were found; reconstructing without masks "
        "(the background is then part of the scene: expect a worse silhouette and floaters)",
        stacklevel=3,
    )
