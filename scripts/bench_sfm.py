"""Benchmark structure from motion (data.sfm) on a folder of photos: each stage's time, the photos
registered, peak memory, and with the true cameras the pose error. Each setting runs on a fresh copy of
the photos (no database, no model); prints a table and writes JSON.

    python scripts/bench_sfm.py --make 48 1600                  # a capture-like scene, 48 photos of 1600^2
    python scripts/bench_sfm.py --photos DIR [--truth TRUTH]    # your photos (TRUTH: tests.capture's truth)
    python scripts/bench_sfm.py --make 48 1600 --features 2048 4096 --exhaustive

``--make`` renders the capture-like scene of tests/capture.py (an object on a textured table) into
``--out``; ``--features`` and ``--exhaustive`` (every pair matched) are the settings compared.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import data.sfm as sfm  # noqa: E402
from data.cameras import pose_errors  # noqa: E402
from data.dataset import load_scene  # noqa: E402
from data.nerf_synthetic import load_nerf_synthetic  # noqa: E402
from scripts.bench_common import write_json  # noqa: E402


class TimedStages(sfm.StageBar):
    """The SfM progress lines, with each stage's seconds kept."""

    seconds: dict[str, float] = {}
    details: dict[str, str] = {}

    def stage(self, name: str):
        self._name, self._started = name, time.perf_counter()
        return super().stage(name)

    def done(self, update, detail: str) -> None:
        TimedStages.seconds[self._name] = time.perf_counter() - self._started
        TimedStages.details[self._name] = detail
        super().done(update, detail)


def pose_scores(photos: Path, truth: Path | None) -> dict:
    scene = load_scene(photos, sfm="off", progress=False)
    scores = {"registered": len(scene.image_paths)}
    if truth is not None:
        from tests.capture import _truth_order  # the capture's photo names -> its true views

        reference = load_nerf_synthetic(truth)
        names = json.loads((truth / "photo_names.json").read_text())
        errors = pose_errors(scene.cameras, reference.cameras[_truth_order(scene, reference, names)])
        scores |= {"rotation_error_deg": float(errors["rotation_error_deg"]),
                   "max_rotation_error_deg": float(errors["max_rotation_error_deg"])}  # fmt: skip
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--photos", type=Path, help="a folder of photos (DIR/images or DIR)")
    parser.add_argument("--truth", type=Path, help="the true cameras (a capture's truth/ folder)")
    parser.add_argument("--make", type=int, nargs=2, metavar=("VIEWS", "SIZE"), help="render a capture")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "bench_sfm")
    parser.add_argument("--features", type=int, nargs="+", default=[sfm.MAX_FEATURES])
    parser.add_argument("--exhaustive", action="store_true", help="also time matching every pair")
    parser.add_argument("--json", type=Path, default=Path("outputs/bench_sfm.json"))
    args = parser.parse_args()
    if args.make:
        from recon.scenes.synthetic import SyntheticConfig
        from tests.capture import CaptureConfig, make_capture_scene

        views, size = args.make
        args.photos, args.truth = args.out / "photos", args.out / "truth"
        if not (args.truth / "photo_names.json").is_file():
            scene = SyntheticConfig(resolution=size, light_resolution=128, mesh_resolution=128)
            make_capture_scene(args.photos, args.truth, CaptureConfig(scene, views=views))
    if args.photos is None:
        parser.error("give --photos DIR or --make VIEWS SIZE")
    folder = sfm.image_folder(args.photos)
    sfm.StageBar = TimedStages
    rows = []
    for features in args.features:
        for exhaustive in (False, True) if args.exhaustive else (False,):
            work = Path(tempfile.mkdtemp(prefix="bench_sfm_"))
            shutil.copytree(folder, work / "images")
            sfm.MAX_FEATURES = features
            sfm.EXHAUSTIVE_UP_TO = 10**9 if exhaustive else 30
            started = time.perf_counter()
            sfm.run_sfm(work, progress=True)
            row = {"photos": len(sfm.list_images(folder)), "features": features,
                   "pairs": "all" if exhaustive else "chosen", "seconds": time.perf_counter() - started,
                   "matched": TimedStages.details["matching"],
                   **{f"{name}_s": value for name, value in TimedStages.seconds.items()},
                   **pose_scores(work, args.truth)}  # fmt: skip
            rows.append(row)
            shutil.rmtree(work, ignore_errors=True)
    rows.append({"peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})
    print(f"{'features':>8} {'pairs':>7} {'features s':>10} {'matching s':>10} {'mapping s':>9} "
          f"{'total s':>8} {'registered':>10} {'rot. err.':>9}")  # fmt: skip
    for row in rows[:-1]:
        print(f"{row['features']:>8} {row['pairs']:>7} {row['features_s']:>10.1f} {row['matching_s']:>10.1f} "
              f"{row['mapping_s']:>9.1f} {row['seconds']:>8.1f} {row['registered']:>6}/{row['photos']:<3} "
              f"{row.get('rotation_error_deg', float('nan')):>8.3f}°")  # fmt: skip
    print(f"peak memory {rows[-1]['peak_memory_mb']:.0f} MB")
    write_json(args.json, rows)


if __name__ == "__main__":
    main()
