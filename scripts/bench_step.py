"""Benchmark one training step (render, extraction, losses, backward, Adam) on a real dataset.

Stage 1 (default): a model is trained for ``--warmup`` steps first (so that the mesh, narrow band and
hash-grid use are those of a run, not of the initial sphere), then ``--repeats`` steps are timed one by
one. Stage 2 (``--textured RUN/checkpoints/textured.pt``, the stage-2 model a run made from its stage-1
mesh): the same warm-up and timing of stage-2 steps. Prints a table of medians and writes JSON;
``--profile`` also prints the torch profiler's top operators of the timed steps.

``--contended`` measures the steps alone and beside one busy single-threaded process (started and
stopped by the benchmark), in ``--rounds`` alternating blocks of ``--repeats`` steps each (after each
start or stop ``--settle`` seconds of untimed steps, in which ``train.threads=auto`` sees the change):
the medians of both and their ratio. ``--threads`` is train.threads (auto, or a fixed count).

    python scripts/bench_step.py                                  # spot_mitsuba 256^2, batch 4
    python scripts/bench_step.py --dataset ../shared/data/nerf_synthetic/lego --downscale 2
    python scripts/bench_step.py --set model.grid.resolution=128 --profile
    python scripts/bench_step.py --dataset ../shared/data/nerf_synthetic/lego --downscale 2 \\
        --textured outputs/<date>/<time>/checkpoints/textured.pt        # a stage-2 step
    python scripts/bench_step.py --contended --threads 2                 # alone vs beside a busy process
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

from geometry import cpu_threads  # noqa: E402
from geometry.cpu_threads import ThreadPolicy  # noqa: E402
from recon.config import Config  # noqa: E402
from recon.run import build_dataset  # noqa: E402
from recon.train.checkpoint import load_checkpoint  # noqa: E402
from recon.train.model import ReconstructionModel  # noqa: E402
from recon.train.stage2 import Stage2Model, Stage2Trainer  # noqa: E402
from recon.train.trainer import Trainer  # noqa: E402
from scripts.bench_common import busy_neighbour, peak_memory_mb, write_json  # noqa: E402

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
    config.stage2.steps = config.train.steps
    config.render_backend = "torch"
    config.merge_with_dotlist(args.set)
    return OmegaConf.to_object(config)


def make_trainer(config: Config, dataset, run_dir: Path, textured: Path | None) -> Trainer | Stage2Trainer:
    """Stage 1's trainer of a new model, or stage 2's of the model saved in ``textured``."""
    if textured is None:
        model = ReconstructionModel(config.model, seed=config.train.seed)
        return Trainer(model, dataset, config.train, run_dir)
    state = load_checkpoint(textured, ("model",))["model"]
    model = Stage2Model.from_state(state, config.model.light.build(), config.model.material.build())
    return Stage2Trainer(model, dataset, config.stage2, config.train, run_dir)


def timed_steps(trainer: Trainer | Stage2Trainer, repeats: int, threads: list | None = None) -> list[float]:
    """Seconds of each of ``repeats`` steps; the thread count each step ran on is appended to ``threads``."""
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        trainer.train_step()
        seconds.append(time.perf_counter() - start)
        if threads is not None:
            threads.append(torch.get_num_threads())
    return seconds


def settle(trainer: Trainer | Stage2Trainer, seconds: float) -> None:
    """Untimed steps for ``seconds`` (at least one): the thread policy sees the new load meanwhile."""
    end = time.perf_counter() + seconds
    trainer.train_step()
    while time.perf_counter() < end:
        trainer.train_step()


def contended_rounds(
    trainer: Trainer | Stage2Trainer, rounds: int, repeats: int, settle_s: float
) -> tuple[list[float], list[float], dict[str, list[int]]]:
    """Step times alone and beside a busy process, in ``rounds`` alternating blocks, and the thread count
    of each timed step in either condition."""
    alone, contended, threads = [], [], {"alone": [], "contended": []}
    for _ in range(rounds):
        settle(trainer, settle_s)
        alone += timed_steps(trainer, repeats, threads["alone"])
        with busy_neighbour():
            settle(trainer, settle_s)
            contended += timed_steps(trainer, repeats, threads["contended"])
    return alone, contended, threads


def _spread(values: list[int]) -> str:
    return f"{min(values)}" if min(values) == max(values) else f"{min(values)}-{max(values)}"


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
    parser.add_argument(
        "--textured", type=Path, default=None, help="a run's checkpoints/textured.pt: time stage-2 steps"
    )
    parser.add_argument("--profile", action="store_true", help="print the profiler's top operators")
    parser.add_argument("--threads", default="auto", help="train.threads: auto (default) or a count")
    parser.add_argument("--contended", action="store_true", help="alone vs beside one busy process")
    parser.add_argument("--rounds", type=int, default=3, help="alternating blocks with --contended")
    parser.add_argument("--settle", type=float, default=1.0, help="untimed seconds after each change")
    parser.add_argument("--out", type=Path, default=Path("bench_results/bench_step.json"))
    args = parser.parse_args()

    config = make_config(args)
    config.train.threads = args.threads
    torch.manual_seed(config.train.seed)
    policy = ThreadPolicy.from_setting(args.threads)
    print(policy.describe())
    with tempfile.TemporaryDirectory() as run_dir, cpu_threads.installed(policy):
        dataset = build_dataset(config, Path(run_dir))
        trainer = make_trainer(config, dataset, Path(run_dir), args.textured)
        timed_steps(trainer, args.warmup)
        contended, threads = [], {}
        if args.contended:
            seconds, contended, threads = contended_rounds(trainer, args.rounds, args.repeats, args.settle)
        elif args.profile:
            with torch.profiler.profile() as profiler:
                seconds = timed_steps(trainer, args.repeats)
            print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
        else:
            seconds = timed_steps(trainer, args.repeats)
    height, width = dataset.rgba.shape[1:3]
    row = {
        "dataset": str(config.dataset.path or "built-in synthetic"),
        "stage": 1 if args.textured is None else 2,
        "image": f"{width}x{height}",
        "batch": args.batch,
        "overrides": args.set,
        "threads": args.threads,
        "warmup": args.warmup,
        "repeats": args.repeats,
        "step_s_median": statistics.median(seconds),
        "step_s_min": min(seconds),
        "triangles": int(trainer.terms.get("triangles", len(getattr(trainer.model, "faces", [])))),
        "psnr_last": float(trainer.terms.get("psnr", 0.0)),
        "peak_memory_mb": peak_memory_mb(torch.device("cpu")),
    }
    print(f"{'image':>9} {'batch':>5} {'tris':>7} {'median s':>9} {'min s':>7} {'peak MB':>8}")
    print(
        f"{row['image']:>9} {args.batch:5d} {row['triangles']:7d} {row['step_s_median']:9.3f} "
        f"{row['step_s_min']:7.3f} {row['peak_memory_mb']:8.0f}"
    )
    if args.contended:
        row.update(
            rounds=args.rounds,
            contended_s_median=statistics.median(contended),
            contended_s_min=min(contended),
            contended_ratio=statistics.median(contended) / statistics.median(seconds),
            contended_threads=threads,
        )
        print(f"{'alone s':>9} {'threads':>7} {'beside a busy process s':>24} {'threads':>7} {'ratio':>6}")
        print(
            f"{row['step_s_median']:9.3f} {_spread(threads['alone']):>7} {row['contended_s_median']:24.3f} "
            f"{_spread(threads['contended']):>7} {row['contended_ratio']:6.2f}"
        )
    write_json(args.out, [row])


if __name__ == "__main__":
    main()
