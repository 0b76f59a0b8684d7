"""data.video: a clip becomes a folder of its sharpest frames (one per window), which SfM then poses;
a clip that does not decode is one line, and nothing is left half-written."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("imageio_ffmpeg")
pytest.importorskip("pycolmap")

import imageio_ffmpeg  # noqa: E402

from data.dataset import load_scene  # noqa: E402
from data.errors import DatasetError  # noqa: E402
from data.images import read_rgba  # noqa: E402
from data.video import photos_folder, sharpness, video_photos, window_of  # noqa: E402
from recon.scenes.synthetic import SyntheticConfig  # noqa: E402
from tests.capture import CaptureConfig, make_capture_scene  # noqa: E402


def _blur(frame: np.ndarray) -> np.ndarray:
    """A 9-pixel box blur (motion blur's effect on sharpness)."""
    out = frame.astype(np.float32)
    for axis in (0, 1):
        out = sum(np.roll(out, shift, axis) for shift in range(-4, 5)) / 9
    return out.astype(np.uint8)


def _write_video(path, frames: list[np.ndarray], fps: int = 10) -> None:
    height, width = frames[0].shape[:2]
    writer = imageio_ffmpeg.write_frames(str(path), (width, height), fps=fps, quality=9, macro_block_size=1)
    writer.send(None)
    for frame in frames:
        writer.send(np.ascontiguousarray(frame))
    writer.close()


def test_windows_and_sharpness():
    assert [window_of(i, 10, 5) for i in range(10)] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert [window_of(i, 7, 3) for i in range(7)] == [0, 0, 0, 1, 1, 2, 2]
    frame = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert sharpness(frame) > 4 * sharpness(_blur(frame))


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 96-frame walk-around of the capture-like scene (160^2); every second frame blurred."""
    root = tmp_path_factory.mktemp("video")
    config = CaptureConfig(SyntheticConfig(resolution=160, light_resolution=32, mesh_resolution=64), views=48)
    make_capture_scene(root / "capture", root / "truth", config)
    frames = []
    for path in sorted((root / "capture" / "images").iterdir()):
        sharp = read_rgba(path)[..., :3]
        frames += [sharp, _blur(sharp)]
    _write_video(root / "walk.mp4", frames)
    return root / "walk.mp4"


def test_a_clip_becomes_its_sharpest_frames_and_gets_poses(clip):
    scene = load_scene(clip, video_frames=24, progress=False)
    folder = photos_folder(clip)
    kept = sorted((folder / "images").iterdir())
    assert len(kept) == 24 and kept[0].suffix == ".jpg"
    blurred = [sharpness(read_rgba(path)[..., :3]) for path in kept]
    assert min(blurred) > 0.5 * max(blurred)  # no blurred frame kept: one sharp frame per window
    assert len(scene.image_paths) >= 22 and (folder / "sparse" / "0" / "images.bin").is_file()
    before = kept[0].stat().st_mtime_ns
    video_photos(clip, 24, progress=False)  # the same clip: reused
    assert kept[0].stat().st_mtime_ns == before


def test_a_clip_that_does_not_decode_is_one_line(tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    with pytest.raises(DatasetError, match=r"broken.mp4: cannot decode the video"):
        load_scene(broken, progress=False)
    assert not photos_folder(broken).exists()
