"""data.images: decoding a large JPEG at a reduced size (bounded memory), against the full decode."""

from __future__ import annotations

import numpy as np
from PIL import Image

from data.images import read_rgba, read_rgba_reduced, resize_rgba


def _photo(path, width: int = 1600, height: int = 1200) -> None:
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 1, width)[None, :, None] * np.linspace(0, 1, height)[:, None, None]
    pixels = np.clip(ramp + 0.1 * rng.random((height, width, 3)), 0, 1)
    Image.fromarray((pixels * 255).astype(np.uint8)).save(path, quality=92)


def test_a_jpeg_is_decoded_at_the_smallest_scale_that_keeps_the_size_asked(tmp_path):
    _photo(tmp_path / "a.jpg")
    small, size = read_rgba_reduced(tmp_path / "a.jpg", (200, 150))
    assert size == (1600, 1200) and small.shape == (150, 200, 4) and bool((small[..., 3] == 255).all())
    larger, _ = read_rgba_reduced(tmp_path / "a.jpg", (300, 200))
    assert larger.shape == (300, 400, 4)  # 1/4: 1/8 would be below 300 x 200
    full = resize_rgba(read_rgba(tmp_path / "a.jpg"), 200, 150)
    difference = np.abs(full.astype(int) - resize_rgba(small, 200, 150).astype(int))
    assert difference.max() <= 3 and difference.mean() < 0.5


def test_other_formats_are_decoded_whole(tmp_path):
    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(tmp_path / "a.png")
    image, size = read_rgba_reduced(tmp_path / "a.png", (15, 10))
    assert size == (60, 40) and image.shape == (40, 60, 4)
