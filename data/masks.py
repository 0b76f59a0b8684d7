"""Masks made by a command of the user's choosing (a background remover, a segmentation model), once
per image, into ``<dataset>/masks/<image name>.png``, where the COLMAP loader finds them.

    make_masks(root, "rembg i {image} {mask}")     # any command; {image} and {mask} become paths
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

from data.errors import DatasetError
from data.files import atomic_path
from data.sfm import image_folder, list_images


def make_masks(root: str | os.PathLike, command: str) -> int:
    """Run ``command`` for every image of ``root`` (``root/images`` or ``root``) that has no mask in
    ``root/masks`` yet; returns how many it made. A failing command, or one that writes no mask, ends
    with one line naming the image; masks already made stay."""
    root = Path(root)
    folder = image_folder(root)
    if folder is None:
        raise DatasetError(f"{root}: no images to make masks for")
    if "{image}" not in command or "{mask}" not in command:
        raise DatasetError(f"mask command {command!r}: needs both {{image}} and {{mask}}")
    masks = root / "masks"
    masks.mkdir(exist_ok=True)
    made = 0
    for name in list_images(folder):
        target = masks / f"{name}.png"
        if target.is_file():
            continue
        with atomic_path(target) as partial:  # the command writes under a temporary name
            arguments = [part.format(image=folder / name, mask=partial) for part in shlex.split(command)]
            try:
                result = subprocess.run(arguments, capture_output=True, text=True, check=False)
            except OSError as error:
                raise DatasetError(
                    f"mask command {arguments[0]!r}: cannot run it ({error.strerror})"
                ) from None
            if result.returncode != 0 or not partial.is_file():
                detail = (result.stderr.strip().splitlines() or ["no mask written"])[-1]
                raise DatasetError(
                    f"{folder / name}: mask command failed (exit {result.returncode}): {detail}"
                )
        made += 1
    return made
