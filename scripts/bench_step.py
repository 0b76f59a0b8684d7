"""Benchmark one stage-1 training step (render, extraction, losses, backward, Adam) on a real dataset.

A model is trained for ``--warmup`` steps first (so that the mesh, narrow band and hash-grid use are
those of a run, not of the initial sphere), then ``--repeats`` steps are timed one by one. Prints a
table of medians and writes JSON; ``--profile`` also prints the torch profiler's top operators of the
timed steps.

    python scripts/bench_step.py                                  # spot_mitsuba 256^2, batch 4
    python scripts/bench_step.py --dataset ../shared/data/nerf_synthetic/lego --downscale 2
    python scripts/bench_step.py --set model.grid.resolution=128 --profile
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recon.config import Config  # noqa: E402
from recon.model import ReconstructionModel  # noqa: E402
from recon.run import build_dataset  # noqa: E402
from recon.trainer import Trainer  # noqa: E402
from scripts.bench_common import peak_memory_mb, write_json  # noqa: E402

DEFAULT_DATASET = Path(__file__).resolve().parents[2] / "shared" / "data" / "spot_mitsuba"


def make_config(args: argparse.Namespace) -> Config:
    config = OmegaConf.structured(Config)
    if args.dataset and str(args.dataset) != "builtin":
        config.dataset.path = str(args.dataset)
        config.dataset.format = "nerf_synthetic"
    config.dataset.downscale = args.downscale
    config.train.batch_size = args.batch
    config.train.progress = False
    config.train.steps = max(args.warmup + args.repeats, 1000)  # the learning-rate schedule of a run
    config.render_backend = "torch"
    config.merge_with_dotlist(args.set)
    return OmegaConf.to_object(config)


def timed_steps(trainer: Trainer, repeats: int) -> list[float]:
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        trainer.train_step()
        seconds.append(time.perf_counter() - start)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    default = DEFAULT_DATASET if DEFAULT_DATASET.is_dir() else Path("builtin")
    parser.add_argument(
        "--dataset",
        type=Path,
        default=default,
        help="a NeRF-synthetic folder or builtin (default: spot_mitsuba)",
    )
    parser.add_argument("--downscale", type=float, default=1.0, help="image downscale factor")
    parser.add_argument("--batch", type=int, default=4, help="views per step")
    parser.add_argument("--warmup", type=int, default=30, help="untimed steps first")
    parser.add_argument("--repeats", type=int, default=10, help="timed steps")
    parser.add_argument("--set", nargs="*", default=[], help="config overrides, key=value")
    parser.add_argument("--profile", action="store_true", help="print the profiler's top operators")
    parser.add_argument("--out", type=Path, default=Path("bench_results/bench_step.json"))
    args = parser.parse_args()

    config = make_config(args)
    torch.manual_seed(config.train.seed)
    with tempfile.TemporaryDirectory() as run_dir:
        dataset = build_dataset(config, Path(run_dir))
        model = ReconstructionModel(config.model, seed=config.train.seed)
        trainer = Trainer(model, dataset, config.train, Path(run_dir))
        timed_steps(trainer, args.warmup)
        if args.profile:
            with torch.profiler.profile() as profiler:
                seconds = timed_steps(trainer, args.repeats)
            print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
        else:
            seconds = timed_steps(trainer, args.repeats)
    height, width = dataset.rgba.shape[1:3]
    row = {
        "dataset": str(config.dataset.path or "built-in synthetic"),
        "image": f"{width}x{height}",
        "batch": args.batch,
        "overrides": args.set,
        "warmup": args.warmup,
        "repeats": args.repeats,
        "step_s_median": statistics.median(seconds),
        "step_s_min": min(seconds),
        "triangles": int(trainer.terms.get("triangles", 0)),
        "psnr_last": float(trainer.terms.get("psnr", 0.0)),
        "peak_memory_mb": peak_memory_mb(torch.device("cpu")),
    }
    print(f"{'image':>9} {'batch':>5} {'tris':>7} {'median s':>9} {'min s':>7} {'peak MB':>8}")
    print(
        f"{row['image']:>9} {args.batch:5d} {row['triangles']:7d} {row['step_s_median']:9.3f} "
        f"{row['step_s_min']:7.3f} {row['peak_memory_mb']:8.0f}"
    )
    write_json(args.out, [row])


if __name__ == "__main__":
    main()
