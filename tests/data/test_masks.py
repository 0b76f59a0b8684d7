"""Masks made by a user's command, once per image, into <dataset>/masks/."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from data.errors import DatasetError
from data.images import read_mask, write_image
from data.masks import make_masks

WRITE_MASK = (
    f'{sys.executable} -c "import sys, imageio.v3 as iio, numpy as np; '
    "image = iio.imread(sys.argv[1]); "
    'iio.imwrite(sys.argv[2], (image[..., 0] > 100).astype(np.uint8) * 255)" '
    "{image} {mask}"
)


def _photos(root, count=3):
    for view in range(count):
        image = np.zeros((16, 16, 3), np.uint8)
        image[4:12, 4:12] = 200
        write_image(root / "images" / f"view_{view}.png", image)


def test_a_command_makes_each_missing_mask_once(tmp_path):
    _photos(tmp_path)
    assert make_masks(tmp_path, WRITE_MASK) == 3
    mask = read_mask(tmp_path / "masks" / "view_1.png.png")
    assert mask[8, 8] == 255 and mask[0, 0] == 0
    assert make_masks(tmp_path, WRITE_MASK) == 0  # every image has its mask: nothing to do
    assert not list((tmp_path / "masks").glob(".*"))  # no temporary files left


def test_a_failing_mask_command_names_the_image(tmp_path):
    _photos(tmp_path, 1)
    failing = f"{sys.executable} -c \"import sys; sys.exit('no person found')\" {{image}} {{mask}}"
    with pytest.raises(DatasetError, match=r"view_0.png: mask command failed \(exit 1\): no person found"):
        make_masks(tmp_path, failing)
    with pytest.raises(DatasetError, match="needs both"):
        make_masks(tmp_path, "rembg i {image}")
    with pytest.raises(DatasetError, match="cannot run it"):
        make_masks(tmp_path, "/no/such/tool {image} {mask}")
