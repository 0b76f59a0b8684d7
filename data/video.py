"""A video as a folder of photos: ``dataset.path=clip.mp4`` keeps the sharpest frame of each of
``dataset.video_frames`` equal windows of the clip, as JPEGs in ``clip/images/`` beside the video (then
the photos path: SfM, whose file-order pairs follow the clip).

    root = video_photos("clip.mp4", frames=60)   # clip/images/frame_0000.jpg ... -> clip/

Frames are decoded by imageio-ffmpeg (its wheel ships its own ffmpeg), one at a time, so memory stays that
of a few frames. Sharpness is the variance of the Laplacian of the frame's grey levels (at most 480 px
wide): motion blur and defocus lower it. The folder is written whole (data.files.atomic_folder) and
reused while the video stays the same (its name and size, recorded in ``clip/video.json``).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from data.errors import DatasetError
from data.files import atomic_folder, write_text_atomic

VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm")
RECORD = "video.json"


def is_video(path: str | os.PathLike) -> bool:
    return Path(path).is_file() and Path(path).suffix.lower() in VIDEO_SUFFIXES


def photos_folder(video: str | os.PathLike) -> Path:
    """The folder of a video's kept frames: ``<video without suffix>/`` beside it."""
    video = Path(video)
    return video.with_name(video.stem)


def sharpness(frame: np.ndarray) -> float:
    """Variance of the Laplacian of a frame's grey levels [H, W, 3] (uint8), at most 480 px wide."""
    grey = frame.astype(np.float32).mean(axis=2)
    step = max(1, grey.shape[1] // 480)
    grey = grey[::step, ::step]
    laplacian = grey[1:-1, :-2] + grey[1:-1, 2:] + grey[:-2, 1:-1] + grey[2:, 1:-1] - 4 * grey[1:-1, 1:-1]
    return float(laplacian.var())


def window_of(index: int, count: int, windows: int) -> int:
    """Which of ``windows`` equal, consecutive windows of ``count`` frames frame ``index`` falls in."""
    return min(windows - 1, index * windows // max(count, 1))


def _ffmpeg():
    try:
        import imageio_ffmpeg
    except ImportError:
        raise DatasetError("reading a video needs imageio-ffmpeg: pip install imageio-ffmpeg") from None
    return imageio_ffmpeg


def _frames(video: Path):
    """(size, iterator of [H, W, 3] uint8 frames, frame count) of ``video``."""
    ffmpeg = _ffmpeg()
    try:
        count, _ = ffmpeg.count_frames_and_secs(str(video))
        reader = ffmpeg.read_frames(str(video))
        meta = next(reader)
        width, height = (int(v) for v in meta["size"])
    except Exception as error:  # noqa: BLE001 - ffmpeg's failures are a video it cannot read
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        raise DatasetError(f"{video}: cannot decode the video ({reason})") from None

    def frames():
        for data in reader:
            yield np.frombuffer(data, np.uint8).reshape(height, width, 3)

    return (width, height), frames(), count


def video_photos(video: str | os.PathLike, frames: int = 60, progress: bool = True) -> Path:
    """The folder of ``video``'s kept frames (module docstring), made first when it is missing or the video
    changed; returns it."""
    video = Path(video)
    folder = photos_folder(video)
    made = {"video": video.name, "bytes": video.stat().st_size, "frames": frames}
    try:
        if json.loads((folder / RECORD).read_text()) == made and (folder / "images").is_dir():
            return folder
    except (OSError, ValueError):
        pass
    size, stream, count = _frames(video)
    kept, best, current = [], None, 0
    for index, frame in enumerate(stream):  # one frame at a time: the best of the current window kept
        if progress and sys.stdout.isatty():
            print(f"\rvideo: frame {index + 1}/{count}", end="", flush=True)
        window = window_of(index, count, frames) if count > frames else index
        if window != current and best is not None:
            kept.append(best[1])
            best = None
        current, score = window, sharpness(frame)
        if best is None or score > best[0]:
            best = (score, frame.copy())
    if best is not None:
        kept.append(best[1])
    if progress:
        print(f"\rvideo: {len(kept)} sharpest frames of {count} ({size[0]}x{size[1]})", flush=True)
    if len(kept) < 3:
        raise DatasetError(
            f"{video}: {len(kept)} frames decoded; a reconstruction needs a video of 3 or more"
        )
    with atomic_folder(folder) as staging:
        for k, frame in enumerate(kept):
            path = staging / "images" / f"frame_{k:04d}.jpg"
            path.parent.mkdir(exist_ok=True)
            Image.fromarray(frame).save(path, quality=95)
        write_text_atomic(staging / RECORD, json.dumps(made))
    return folder
