"""Evaluate a training run: test-split PSNR/SSIM and, with a reference mesh, Chamfer-L1 and F-score.

    python scripts/evaluate.py outputs/2026-11-21/15-30-00 [--max-views N]

Writes <run dir>/metrics.json and <run dir>/eval/view_XXX.png (rendered | reference).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data.errors import DatasetError  # noqa: E402
from recon.checkpoint import CheckpointError  # noqa: E402
from recon.evaluate import evaluate  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dir", type=Path, help="a run folder written by train.py")
    parser.add_argument("--max-views", type=int, default=0, help="evaluate at most this many views (0: all)")
    args = parser.parse_args()
    try:
        metrics = evaluate(args.run_dir, args.max_views)
    except (DatasetError, CheckpointError, ValueError) as error:
        print(f"evaluate.py: {error}", file=sys.stderr)
        return 1
    print(json.dumps(metrics, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
