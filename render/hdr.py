"""Radiance ``.hdr`` (RGBE) reading and writing, and loading of environment maps from disk.

imageio has no Radiance codec without optional plugins, so this module implements the format (Ward,
"Real Pixels", Graphics Gems II): a text header, ``-Y H +X W``, then scanlines of 4-byte RGBE pixels,
flat or new-style run-length encoded. Written files are run-length encoded (literal runs), readable by
Blender, OpenCV, stb_image and imageio's FreeImage plugin. Decoding follows the common readers:
value = mantissa * 2^(E - 136).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from data.errors import UserError
from data.files import write_bytes_atomic


class EnvironmentFileError(UserError):
    """A light probe or environment map file that cannot be read; the message names the file."""


def encode_rgbe(image: np.ndarray) -> np.ndarray:
    """[H, W, 3] linear float -> [H, W, 4] uint8 RGBE (negative and non-finite values become 0)."""
    rgb = np.nan_to_num(np.asarray(image, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0).clip(min=0)
    peak = rgb.max(-1)
    valid = peak > 1e-32
    exponent = np.where(valid, np.floor(np.log2(np.where(valid, peak, 1.0))) + 1, 0)
    mantissa = np.rint(rgb * np.ldexp(1.0, (8 - exponent).astype(np.int64))[..., None])
    overflow = mantissa.max(-1) > 255
    exponent = exponent + overflow
    mantissa = np.rint(rgb * np.ldexp(1.0, (8 - exponent).astype(np.int64))[..., None]).clip(0, 255)
    out = np.zeros(rgb.shape[:-1] + (4,), np.uint8)
    out[..., :3] = np.where(valid[..., None], mantissa, 0)
    out[..., 3] = np.where(valid, exponent + 128, 0).clip(0, 255)
    return out


def decode_rgbe(rgbe: np.ndarray) -> np.ndarray:
    """[H, W, 4] uint8 RGBE -> [H, W, 3] float32."""
    exponent = rgbe[..., 3].astype(np.int64)
    scale = np.where(exponent > 0, np.ldexp(1.0, exponent - 136), 0.0)
    return (rgbe[..., :3] * scale[..., None]).astype(np.float32)


def _rle_scanline(channel_rows: np.ndarray) -> bytes:
    """New-style RLE of one scanline [4, W] using literal runs only."""
    chunks = []
    for channel in channel_rows:
        data = channel.tobytes()
        for start in range(0, len(data), 128):
            piece = data[start : start + 128]
            chunks.append(bytes([len(piece)]) + piece)
    return b"".join(chunks)


def write_hdr(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write [H, W, 3] linear radiance as a Radiance .hdr file, atomically (temp file + rename)."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{path}: expected an [H, W, 3] image, got shape {list(image.shape)}")
    height, width = image.shape[:2]
    rgbe = encode_rgbe(image)
    header = f"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y {height} +X {width}\n".encode("ascii")
    if 8 <= width < 32768:
        marker = bytes([2, 2, width >> 8, width & 255])
        body = b"".join(marker + _rle_scanline(row.T) for row in rgbe)
    else:
        body = rgbe.tobytes()
    write_bytes_atomic(path, header + body)


def _read_header(data: bytes, path) -> tuple[int, int, int]:
    """(height, width, offset of the pixel data)."""
    if not (data.startswith(b"#?RADIANCE") or data.startswith(b"#?RGBE")):
        raise EnvironmentFileError(f"{path}: not a Radiance .hdr file (missing '#?RADIANCE' signature)")
    end = data.find(b"\n\n")
    if end < 0:
        raise EnvironmentFileError(f"{path}: truncated header")
    for line in data[:end].split(b"\n"):
        if line.startswith(b"FORMAT=") and line.strip() != b"FORMAT=32-bit_rle_rgbe":
            raise EnvironmentFileError(f"{path}: unsupported pixel format {line.decode(errors='replace')!r}")
    line_end = data.find(b"\n", end + 2)
    fields = data[end + 2 : line_end].split()
    if line_end < 0 or len(fields) != 4 or fields[0] != b"-Y" or fields[2] != b"+X":
        raise EnvironmentFileError(f"{path}: unsupported resolution line (only '-Y H +X W' is read)")
    return int(fields[1]), int(fields[3]), line_end + 1


def read_hdr(path: str | os.PathLike) -> np.ndarray:
    """Read a Radiance .hdr file as [H, W, 3] float32 linear radiance."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise EnvironmentFileError(f"{path}: cannot read ({err.strerror or err})") from err
    height, width, pos = _read_header(data, path)
    out = np.zeros((height, width, 4), np.uint8)
    try:
        for y in range(height):
            if 8 <= width < 32768 and data[pos : pos + 2] == b"\x02\x02" and data[pos + 2] < 128:
                pos += 4
                for channel in range(4):
                    x = 0
                    while x < width:
                        count = data[pos]
                        if count > 128:
                            count -= 128
                            out[y, x : x + count, channel] = data[pos + 1]
                            pos += 2
                        else:
                            out[y, x : x + count, channel] = np.frombuffer(data, np.uint8, count, pos + 1)
                            pos += 1 + count
                        x += count
            else:
                out[y] = np.frombuffer(data, np.uint8, 4 * width, pos).reshape(width, 4)
                pos += 4 * width
    except (IndexError, ValueError) as err:
        raise EnvironmentFileError(f"{path}: truncated or corrupt pixel data") from err
    return decode_rgbe(out)


def load_environment(path: str | os.PathLike) -> np.ndarray:
    """Load an equirectangular environment map ([H, 2H, 3] float32 linear) from .hdr, .npy or .exr."""
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise EnvironmentFileError(f"{path}: environment map not found")
    if suffix == ".hdr":
        image = read_hdr(path)
    elif suffix == ".npy":
        image = np.load(path).astype(np.float32)
    elif suffix == ".exr":
        image = _read_exr(path)
    else:
        raise EnvironmentFileError(
            f"{path}: unsupported environment format {suffix!r} (use .hdr, .exr or .npy)"
        )
    if image.ndim != 3 or image.shape[2] < 3:
        raise EnvironmentFileError(f"{path}: expected an RGB image, got shape {list(image.shape)}")
    image = image[..., :3]
    if image.shape[1] != 2 * image.shape[0]:
        height, width = image.shape[:2]
        raise EnvironmentFileError(
            f"{path}: an equirectangular map must be twice as wide as high, got {width}x{height}"
        )
    if not np.isfinite(image).all():
        raise EnvironmentFileError(f"{path}: contains non-finite values")
    return image


def _read_exr(path: Path) -> np.ndarray:
    import imageio.v3 as iio

    try:
        return np.asarray(iio.imread(path), dtype=np.float32)
    except Exception as err:  # imageio raises several types depending on the plugin
        raise EnvironmentFileError(
            f"{path}: cannot read OpenEXR ({type(err).__name__}); install an EXR plugin "
            "(pip install imageio[opencv] or imageio[freeimage]) or convert the map to .hdr"
        ) from err
