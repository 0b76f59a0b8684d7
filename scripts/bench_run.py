"""Benchmark a whole ``train.py`` run alone and beside one busy single-threaded process, as a user runs
it: wall time of each, and the median step time of each training phase (the warm-up, stage 1, stage 2,
from the run's TensorBoard ``step_seconds``). Runs alternate (alone, contended, alone, ...) over
``--rounds``; prints a table and the contended/alone ratios, and writes JSON.

    python scripts/bench_run.py                                   # the README's default run
    python scripts/bench_run.py --rounds 1 -- train.steps=200 stage2.steps=100
    python scripts/bench_run.py --torchrun 2 -- train.batch_size=8   # 2 CPU processes under torchrun

Arguments after ``--`` go to train.py. Each run writes into a temporary folder, deleted afterwards.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recon.run_dir import RunDir  # noqa: E402
from scripts.bench_common import busy_neighbour, write_json  # noqa: E402

PHASE_TAGS = {
    "warm-up": "volume/step_seconds",
    "stage 1": "train/step_seconds",
    "stage 2": "stage2/step_seconds",
}
"""The phases' step-time scalars in a run's tb/ (recon.train.loop.TrainingLoop._log)."""


def step_medians(run_dir: Path) -> dict[str, float]:
    """The median logged step time of each training phase the run has (seconds)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    values: dict[str, list[float]] = {}
    for events in RunDir(run_dir).tb.glob("events.*"):
        accumulator = EventAccumulator(str(events), size_guidance={"scalars": 0})
        accumulator.Reload()
        for phase, tag in PHASE_TAGS.items():
            if tag in accumulator.Tags()["scalars"]:
                values.setdefault(phase, []).extend(event.value for event in accumulator.Scalars(tag))
    return {phase: statistics.median(found) for phase, found in values.items() if found}


def one_run(arguments: list[str], processes: int) -> dict:
    """Wall seconds and per-phase step medians of one train.py run (a failed run raises)."""
    with tempfile.TemporaryDirectory() as folder:
        run_dir = Path(folder) / "run"
        launcher = [sys.executable]
        if processes > 1:
            launcher += ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
        command = [*launcher, str(ROOT / "train.py"), f"hydra.run.dir={run_dir}", "train.progress=false",
                   "train.log_every=1", *arguments]  # fmt: skip
        start = time.perf_counter()
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - start
        if result.returncode != 0:
            raise SystemExit(f"bench_run.py: train.py failed ({result.returncode}): {result.stderr[-1500:]}")
        first = result.stdout.splitlines()[0] if result.stdout else ""
        return {"wall_s": seconds, "steps": step_medians(run_dir), "threads": first}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=1, help="alternating pairs of runs (default 1)")
    parser.add_argument("--torchrun", type=int, default=1, help="processes under torchrun (default 1: none)")
    parser.add_argument("--out", type=Path, default=Path("bench_results/bench_run.json"))
    parser.add_argument("train_args", nargs="*", help="train.py arguments (after --)")
    args = parser.parse_args()

    alone, contended = [], []
    for _ in range(args.rounds):
        alone.append(one_run(args.train_args, args.torchrun))
        with busy_neighbour():
            contended.append(one_run(args.train_args, args.torchrun))
    print(alone[0]["threads"])
    print(f"{'':>18} {'alone':>9} {'beside a busy process':>22} {'ratio':>6}")
    row: dict = {"train_args": args.train_args, "torchrun": args.torchrun, "rounds": args.rounds}
    keys = [("wall time s", lambda r: r["wall_s"])]
    keys += [(f"{phase} step s", lambda r, p=phase: r["steps"].get(p)) for phase in PHASE_TAGS]
    for name, value in keys:
        a = [v for v in map(value, alone) if v is not None]
        c = [v for v in map(value, contended) if v is not None]
        if not a or not c:
            continue
        ratio = statistics.median(c) / statistics.median(a)
        row[name] = {"alone": statistics.median(a), "contended": statistics.median(c), "ratio": ratio}
        print(f"{name:>18} {statistics.median(a):9.3f} {statistics.median(c):22.3f} {ratio:6.2f}")
    write_json(args.out, [row])


if __name__ == "__main__":
    main()
