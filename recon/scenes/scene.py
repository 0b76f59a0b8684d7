"""The scene of a run: its dataset folder parsed, or the built-in synthetic scene rendered into the run
folder once. Training (recon.run), the evaluation and the scripts all start here."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from data.dataset import FORMATS, load_scene
from data.scene import SceneData
from data.settings import Settings, require
from data.sfm import SFM_MODES
from data.video import VIDEO_SUFFIXES, photos_folder
from recon.distributed import DistributedContext
from recon.run_dir import RunDir
from recon.scenes.synthetic import SyntheticConfig, make_synthetic_scene

BACKGROUNDS = ("random", "white", "black")


@dataclass
class DatasetConfig(Settings):
    """Where the views come from."""

    path: str = ""
    """A dataset folder (NeRF-synthetic, nerfstudio, COLMAP, LLFF, or photos), a video file (.mp4, .mov,
    ...: its sharpest frames become photos), or empty: the built-in synthetic scene."""
    format: str = "auto"
    """auto, nerf_synthetic, nerfstudio, colmap or llff."""
    test_every: int = 8
    """Hold-out rule for formats without explicit splits: every n-th view is a test view."""
    downscale: float = 1.0
    """Divide the image size by this on load."""
    max_side: int = 0
    """Downscale further, if needed, so that no image side exceeds this many pixels (0: no limit);
    photos straight from a camera are far larger than a CPU run needs."""
    background: str = "random"
    """Training background of masked views: random, white or black (photos without masks are explained
    by the environment light and the ground plane instead)."""
    sfm: str = "auto"
    """Camera poses by structure from motion (pycolmap) for a folder of photos (DIR/images/ or DIR):
    auto (when the folder has no poses yet; written to DIR/sparse/0 and reused), force (redo) or off."""
    video_frames: int = 60
    """For a video: how many frames to keep (the sharpest of each of this many equal windows)."""
    mask_command: str = ""
    """For a folder of photos: a command that writes one image's mask, run for each image without one
    in DIR/masks/, with {image} and {mask} replaced by paths (e.g. "rembg i {image} {mask}"); empty: none
    (photos without masks are reconstructed whole, see docs/photos.md)."""
    bbox: list[float] = field(default_factory=list)
    """The object's region, [xmin, ymin, zmin, xmax, ymax, zmax] in the dataset's units; empty: found
    from the ground plane and the cameras (photos) or the masks."""
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    """The built-in scene, rendered into <run dir>/synthetic when ``path`` is empty."""

    def check(self) -> None:
        require(
            self,
            "format",
            self.format == "auto" or self.format in FORMATS,
            f"auto or one of {', '.join(FORMATS)}",
        )
        require(self, "test_every", self.test_every >= 1, "an integer >= 1")
        require(self, "video_frames", self.video_frames >= 3, "an integer >= 3")
        require(self, "downscale", self.downscale > 0, "a factor > 0")
        require(
            self, "max_side", self.max_side == 0 or self.max_side >= 16, "0 (no limit) or a size >= 16 pixels"
        )
        require(self, "background", self.background in BACKGROUNDS, ", ".join(BACKGROUNDS))
        require(self, "sfm", self.sfm in SFM_MODES, f"one of {', '.join(SFM_MODES)}")
        box = self.bbox
        ordered = len(box) == 6 and all(a < b for a, b in zip(box[:3], box[3:], strict=True))
        require(
            self, "bbox", not box or ordered, "[] or [xmin, ymin, zmin, xmax, ymax, zmax], each min < max"
        )

    def downscale_for(self, scene: SceneData) -> float:
        """The downscale factor for ``scene``'s images: ``downscale``, more when ``max_side`` needs it."""
        longest = max(scene.cameras.width, scene.cameras.height)
        return max(self.downscale, longest / self.max_side) if self.max_side > 0 else self.downscale


def dataset_root(data: DatasetConfig, run_dir: Path) -> Path:
    """The folder of the run's dataset: ``dataset.path``, or the built-in scene's ``<run dir>/synthetic``."""
    if not data.path:
        return RunDir(run_dir).synthetic
    path = Path(data.path).expanduser()
    return photos_folder(path) if path.suffix.lower() in VIDEO_SUFFIXES else path


def build_scene(
    data: DatasetConfig, run_dir: Path, context: DistributedContext | None = None, sfm: str | None = None
) -> SceneData:
    """The dataset's scene: parsed from ``dataset.path`` (poses by SfM first when ``dataset.sfm``, or
    ``sfm`` when given, says so), or the built-in synthetic scene (rendered into ``<run dir>/synthetic``
    once, by rank 0, then reused, e.g. by the evaluation)."""
    context = context or DistributedContext()
    sfm = sfm or data.sfm
    if data.path:  # rank 0 runs SfM when it is needed; the others then find its model
        if context.is_main:
            scene = load_scene(
                data.path, data.format, data.test_every, sfm, mask_command=data.mask_command,
                video_frames=data.video_frames,
            )  # fmt: skip
        context.barrier()
        if not context.is_main:
            scene = load_scene(
                data.path, data.format, data.test_every, "off", progress=False, video_frames=data.video_frames
            )
        return scene
    folder = RunDir(run_dir).synthetic
    if context.is_main and not (folder / "transforms_train.json").is_file():
        make_synthetic_scene(folder, data.synthetic)
    context.barrier()
    return load_scene(folder, "nerf_synthetic")
