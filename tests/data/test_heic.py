"""data.heic: HEIC photos get a JPEG beside them once (pillow-heif), or one line saying what to install."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image

from data.errors import DatasetError
from data.heic import convert_heic
from data.images import read_rgba


def _heic(path, pixels: np.ndarray) -> None:
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, quality=95)


def test_heic_photos_get_a_jpeg_once(tmp_path):
    ramp = np.linspace(0, 255, 64, dtype=np.uint8)[None, :, None].repeat(48, 0).repeat(3, 2)
    _heic(tmp_path / "images" / "IMG_0001.HEIC", ramp)
    _heic(tmp_path / "images" / "IMG_0002.HEIC", 255 - ramp)
    assert convert_heic(tmp_path) == 2
    jpeg = tmp_path / "images" / "IMG_0001.HEIC.jpg"
    decoded = read_rgba(jpeg)[..., :3].astype(int)
    assert decoded.shape == (48, 64, 3) and np.abs(decoded - ramp).mean() < 3
    before = jpeg.stat().st_mtime_ns
    assert convert_heic(tmp_path) == 0 and jpeg.stat().st_mtime_ns == before


def test_heic_without_a_reader_is_one_line(tmp_path, monkeypatch):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "IMG_0001.HEIC").write_bytes(b"a heic photo")
    monkeypatch.setitem(sys.modules, "pillow_heif", None)  # as if it were not installed
    with pytest.raises(DatasetError, match=r"1 HEIC photos \(IMG_0001.HEIC, ...\) need pillow-heif"):
        convert_heic(tmp_path)
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == ["IMG_0001.HEIC"]


def test_a_heic_that_does_not_decode_is_one_line(tmp_path):
    pytest.importorskip("pillow_heif")
    (tmp_path / "IMG_0001.heic").write_bytes(b"not a heic photo")
    with pytest.raises(DatasetError, match=r"IMG_0001.heic: cannot decode the HEIC photo"):
        convert_heic(tmp_path)
    assert not (tmp_path / "IMG_0001.heic.jpg").exists()
