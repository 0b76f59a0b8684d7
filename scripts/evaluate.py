"""Evaluate a training run: test-split PSNR/SSIM; with a reference mesh, Chamfer-L1 and F-score; with a
reference material (the built-in scenes' gt_material.json, or --reference-material), albedo PSNR and
roughness / metallic error; with relighting views (built-in scenes), the asset under their second light;
with --mitsuba, the asset and the truth path-traced by Mitsuba 3 under a new light.

    python scripts/evaluate.py outputs/2026-11-21/15-30-00 [--max-views N]
    python scripts/evaluate.py RUN --reference-material spot.json --mitsuba   # spot.json:
        {"base_color": "/path/to/spot_texture.png", "roughness": 0.45, "metallic": 0.0}

Writes <run dir>/metrics.json, eval/view_XXX.png (rendered | reference), eval_relight/ and
eval_mitsuba/views/ (the same pairs under the second light).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recon.evaluation import mitsuba  # noqa: E402
from recon.evaluation.evaluate import evaluate  # noqa: E402
from scripts.cli import run  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dir", type=Path, help="a run folder written by train.py")
    parser.add_argument("--max-views", type=int, default=0, help="evaluate at most this many views (0: all)")
    parser.add_argument(
        "--reference-material", type=Path, default=None,
        help="gt_material.json of the true mesh (default: the dataset's, if any)",
    )  # fmt: skip
    parser.add_argument(
        "--mitsuba", action="store_true",
        help="relight the asset and the truth with Mitsuba 3 (pip install -e '.[mitsuba]')",
    )  # fmt: skip
    parser.add_argument(
        "--relight-env", type=Path, default=None,
        help="the new light for --mitsuba (.hdr; default: the relighting views' light, else the sky)",
    )  # fmt: skip
    parser.add_argument("--mitsuba-views", type=int, default=4, help="test views Mitsuba renders")
    parser.add_argument("--mitsuba-samples", type=int, default=128, help="Mitsuba's samples per pixel")
    args = parser.parse_args()
    if min(args.max_views, args.mitsuba_views - 1, args.mitsuba_samples - 1) < 0:
        parser.error("--max-views must be >= 0, --mitsuba-views and --mitsuba-samples >= 1")
    if args.mitsuba and not mitsuba.available():
        print(
            "evaluate.py: --mitsuba needs the mitsuba package (pip install -e '.[mitsuba]')", file=sys.stderr
        )
        return 1

    def evaluate_run() -> None:
        metrics = evaluate(
            args.run_dir, args.max_views, args.reference_material, args.mitsuba, args.relight_env,
            args.mitsuba_views, args.mitsuba_samples,
        )  # fmt: skip
        print(json.dumps(metrics, indent=2))

    return run("evaluate.py", evaluate_run)


if __name__ == "__main__":
    sys.exit(main())
