"""HEIC/HEIF photos (what iPhones write by default), read through pillow-heif (the optional extra
``heic``: ``pip install pillow-heif``): each gets a JPEG beside it once (``IMG_0001.HEIC.jpg``, quality 95,
its EXIF kept), which SfM and training then read like any photo. Without pillow-heif a folder of HEIC
photos ends with one line saying what to install."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from data.errors import DatasetError
from data.files import atomic_path
from data.sfm import image_folder, list_images

HEIC_SUFFIXES = (".heic", ".heif")
ORIENTATION = 0x0112


def heic_photos(root: Path) -> list[Path]:
    """The HEIC photos of ``root/images``, else of ``root`` (the photos' layout: data.sfm.image_folder)."""
    folder = image_folder(root, HEIC_SUFFIXES)
    return [folder / name for name in list_images(folder, HEIC_SUFFIXES)] if folder else []


def convert_heic(root: str | Path) -> int:
    """A JPEG beside each HEIC photo of ``root`` that has none yet (module docstring); how many were made."""
    photos = [path for path in heic_photos(Path(root)) if not path.with_name(path.name + ".jpg").is_file()]
    if not photos:
        return 0
    try:
        import pillow_heif
    except ImportError:
        raise DatasetError(
            f"{photos[0].parent}: {len(photos)} HEIC photos ({photos[0].name}, ...) need pillow-heif to be "
            "read: pip install pillow-heif (or export the photos as JPEG)"
        ) from None
    pillow_heif.register_heif_opener()
    for path in photos:
        try:
            with Image.open(path) as image:
                exif = image.getexif()
                exif[ORIENTATION] = 1  # the decoder has turned the pixels as the file says
                rgb = image.convert("RGB")
        except Exception as error:  # noqa: BLE001 - any decoder failure is a bad file
            raise DatasetError(f"{path}: cannot decode the HEIC photo ({type(error).__name__})") from None
        with atomic_path(path.with_name(path.name + ".jpg")) as tmp:
            rgb.save(tmp, "JPEG", quality=95, exif=exif.tobytes())
    return len(photos)
