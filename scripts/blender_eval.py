"""Score a run's exported asset in Blender: import mesh.glb and mesh.obj, light them with probe.hdr,
render the test views with Cycles (CPU) and compare with the reference images, beside our own renderer.

    python scripts/blender_eval.py outputs/2026-12-02/10-00-00 [--views 4] [--downscale 1] [--samples 32]

Writes <run dir>/blender_metrics.json and <run dir>/eval_blender/{glb,obj}_view_XXX.png (Blender |
reference). Needs bpy (pip install -e '.[blender]', Python 3.11).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data.files import write_text_atomic  # noqa: E402
from recon.asset.load import asset_dataset  # noqa: E402
from recon.evaluation.blender import require_bpy  # noqa: E402
from recon.evaluation.evaluate import evaluate_asset, load_run  # noqa: E402
from recon.run_dir import RunDir  # noqa: E402
from scripts.cli import run  # noqa: E402


def evaluate(run_dir: Path, n_views: int, downscale: float, samples: int) -> None:
    require_bpy()
    from recon.evaluation.blender import evaluate_in_blender
    from recon.scenes.scene import build_scene

    settings, folder = load_run(run_dir)
    up, up_source = RunDir(run_dir).up()
    scene = build_scene(settings.dataset, run_dir)
    split = "test" if scene.splits.get("test") else "val"
    dataset = asset_dataset(scene, split, downscale or settings.dataset.downscale_for(scene))
    views = range(min(n_views, len(dataset)))
    images = RunDir(run_dir).eval_blender
    results = {"asset": folder.name, "split": split, "views": len(views), "samples": samples,
               "resolution": [dataset.cameras.width, dataset.cameras.height], "up": list(up),
               "up_source": up_source}  # fmt: skip
    results["ours_psnr"] = evaluate_asset(folder, dataset, views, settings.light_resolution)["psnr"]
    runs = {
        "glb": {"kind": "glb", "image_dir": images},
        "obj": {"kind": "obj", "image_dir": images},
        "obj_as_imported": {"kind": "obj", "fix_obj": False},
        "glb_mirrored_probe": {"kind": "glb", "mirrored": True},
    }
    for name, options in runs.items():
        scores = evaluate_in_blender(folder, dataset, views, up=up, samples=samples, **options)
        results[f"{name}_psnr"] = scores["psnr"]
        results[f"{name}_bounds"] = scores["bounds"]
    write_text_atomic(RunDir(run_dir).blender_metrics_file, json.dumps(results, indent=2))
    print(json.dumps({k: v for k, v in results.items() if not k.endswith("_bounds")}, indent=2))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dir", type=Path, help="a run folder written by train.py")
    parser.add_argument("--views", type=int, default=4, help="number of test views (default 4)")
    parser.add_argument("--downscale", type=float, default=0, help="image downscale (default: the run's)")
    parser.add_argument("--samples", type=int, default=32, help="Cycles samples per pixel (denoised)")
    args = parser.parse_args()
    return run("blender_eval.py", lambda: evaluate(args.run_dir, args.views, args.downscale, args.samples))


if __name__ == "__main__":
    sys.exit(main())
