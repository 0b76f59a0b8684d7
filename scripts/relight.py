"""Render a run's exported asset under another environment map, from a turntable around it.

    python scripts/relight.py outputs/2026-12-02/10-00-00 --env studio.hdr [--out DIR] [--frames 36]
                              [--size 256] [--background environment|white] [--blender]

Writes DIR/frame_XXX.png and DIR/turntable.gif (default DIR: <run dir>/relight/<env name>/). The map
is read in Blender's equirectangular convention (any HDRI library's .hdr/.exr). Our renderer by default;
--blender renders with Cycles (needs bpy).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recon.evaluation.evaluate import load_run  # noqa: E402
from recon.evaluation.relight import render_turntable  # noqa: E402
from recon.run_dir import RunDir  # noqa: E402
from scripts.cli import run  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dir", type=Path, help="a run folder written by train.py")
    parser.add_argument("--env", type=Path, required=True, help="equirectangular .hdr / .exr environment map")
    parser.add_argument("--out", type=Path, default=None, help="output folder")
    parser.add_argument("--frames", type=int, default=36, help="turntable frames (default 36)")
    parser.add_argument("--size", type=int, default=256, help="image side in pixels (default 256)")
    parser.add_argument("--background", choices=("environment", "white"), default="environment")
    parser.add_argument("--blender", action="store_true", help="render with Blender's Cycles instead")
    parser.add_argument("--samples", type=int, default=32, help="Cycles samples per pixel (with --blender)")
    args = parser.parse_args()
    out = args.out or RunDir(args.run_dir).relight / args.env.stem

    def relight() -> None:
        _, folder = load_run(args.run_dir)
        up, _ = RunDir(args.run_dir).up()
        paths = render_turntable(folder, args.env, out, args.frames, args.size, args.background, up,
                                 use_blender=args.blender, samples=args.samples)  # fmt: skip
        print(f"relight.py: wrote {len(paths)} frames and {out / 'turntable.gif'}")

    return run("relight.py", relight)


if __name__ == "__main__":
    sys.exit(main())
