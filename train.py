"""Reconstruct a mesh, materials and light from a multi-view dataset (Hydra entry point).

    python train.py                                   # the built-in synthetic scene, CPU or GPU
    python train.py +experiment=spot_mitsuba          # a preset from configs/experiment/
    python train.py dataset.path=/data/capture train.steps=3000
    python train.py --help                            # every key with its default
    torchrun --nproc_per_node=2 train.py train.batch_size=8   # data parallel: each process renders 4 views

Outputs go to outputs/<date>/<time>/ (Hydra's run folder): config.yaml, run.json, train.log, tb/,
checkpoints/, stage1_mesh/, mesh/ (the asset), metrics.json and progress.json (recon.run_folder). Bad input
or a bad value ends with one line naming the problem, exit status 1, before anything is written. Ctrl-C or
SIGTERM writes a checkpoint (exit 130 / 143); checkpoints are also written every train.checkpoint_every
steps and train.checkpoint_minutes minutes. `python train.py hydra.run.dir=RUN train.resume=true`
continues RUN from where it stopped, in any phase, with RUN's own configuration (recon.resume); a new run
refuses a folder that holds an earlier run unless train.overwrite=true.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from recon.config import register

register()


def _launch_rank() -> int:
    """This process's rank when torchrun started it (0 for a plain ``python train.py``)."""
    return int(os.environ.get("RANK", "0"))


def _quiet_hydra_on_other_ranks() -> None:
    """Under ``torchrun`` only rank 0 lets Hydra create the run folder (the others receive its path from
    rank 0, as the ``${now:...}`` folder name could differ by a second between processes)."""
    if _launch_rank() > 0:
        keep = [arg for arg in sys.argv if not arg.startswith(("hydra.run.dir=", "hydra.output_subdir="))]
        sys.argv = keep + [
            "hydra.run.dir=.",
            "hydra.output_subdir=null",
            "hydra/job_logging=disabled",
            "hydra/hydra_logging=disabled",
        ]


def _check_output_folder() -> None:
    """Hydra creates the run folder before any project code runs: check first that it can, so that a bad
    ``hydra.run.dir`` ends with one line rather than Hydra's traceback, and that a resume names a run
    (a mistyped folder is not created)."""
    if _launch_rank() > 0 or {"--help", "-h", "--hydra-help"} & set(sys.argv):
        return
    given = [arg.split("=", 1)[1] for arg in sys.argv[1:] if arg.startswith("hydra.run.dir=")]
    folder = Path((given[-1] if given else "outputs").split("${", 1)[0] or ".").absolute()
    resume = any(arg.lower() in ("train.resume=true", "train.resume=1") for arg in sys.argv[1:])
    if resume and not given:
        print("train.py: train.resume=true needs hydra.run.dir=RUN, the folder of the run to continue",
              file=sys.stderr)  # fmt: skip
        sys.exit(1)
    if resume:  # before Hydra makes the folder
        from data.errors import UserError
        from recon.run_folder import check_resumable

        try:
            check_resumable(folder)
        except UserError as error:
            print(f"train.py: {error}", file=sys.stderr)
            sys.exit(1)
    existing = next(path for path in (folder, *folder.parents) if path.exists())
    problem = None
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        problem = f"{existing} is not a writable folder"
    else:
        try:  # permissions alone do not tell (e.g. /proc, read-only mounts): try it
            folder.mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=folder).close()
        except OSError as error:
            problem = error.strerror or type(error).__name__
    if problem:
        print(f"train.py: {folder}: output folder is not writable ({problem})", file=sys.stderr)
        sys.exit(1)


def _check_overrides() -> None:
    """Hydra's parser rejects some values that a shell passes through (a non-ASCII character or a space in
    a path): say so in one line, with the quoting that works, instead of Hydra's lexer error."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    parser = OverridesParser.create()
    for argument in sys.argv[1:]:
        if argument.startswith("-") or "=" not in argument:  # Hydra's own flags and their values
            continue
        try:
            parser.parse_overrides([argument])
        except OverrideParseException:
            key, _, value = argument.partition("=")
            print(
                f"train.py: cannot read {argument!r}: quote values with spaces or characters other than "
                f"letters, digits and /._-, e.g. '{key}=\"{value}\"' (the outer quotes are for the shell)",
                file=sys.stderr,
            )
            sys.exit(1)


@hydra.main(version_base=None, config_path="configs", config_name="config")
def main(cfg: DictConfig) -> None:
    from hydra import compose

    from data.errors import UserError
    from recon.config import to_config
    from recon.distributed import DistributedContext
    from recon.resume import resumed_config
    from recon.run import run
    from recon.run_folder import RunLog
    from scripts.cli import file_system_problem

    hydra_config = HydraConfig.get()
    overrides = list(hydra_config.overrides.task)
    context, succeeded, terms = None, False, {}
    with RunLog().capture() as log:  # into <run dir>/train.log once the folder is this run's
        try:
            config = to_config(cfg)
            context = DistributedContext.from_environment(config.device)
            run_dir = Path(context.broadcast(hydra_config.runtime.output_dir))
            changes = {}
            if config.train.resume:  # the run's own configuration, with what this command line may change
                config, changes = resumed_config(cfg, compose(config_name="config"), overrides, run_dir)
            terms = run(config, run_dir, context, log, overrides, changes)
            succeeded = True
        except UserError as error:  # what the user can fix, in one line; anything else keeps its traceback
            rank = f"[rank {context.rank}] " if context is not None and context.enabled else ""
            print(f"train.py: {rank}{error}", file=sys.stderr)
            sys.exit(1)
        except KeyboardInterrupt as error:  # Ctrl-C, or SIGTERM (recon.errors.Interrupted)
            where = f"{error}; " if str(error) else "interrupted; "
            started = (Path(hydra_config.runtime.output_dir) / "config.yaml").is_file()
            then = "continue with train.resume=true" if started else "the run had not started: run it again"
            print(f"train.py: {where}{then}", file=sys.stderr)
            sys.exit(143 if "SIGTERM" in str(error) else 130)
        except OSError as error:  # a folder made read-only, a full disk
            if (problem := file_system_problem(error)) is None:
                raise
            print(f"train.py: {problem}", file=sys.stderr)
            sys.exit(1)
        finally:
            if context is not None:
                context.close(succeeded)
        if not context.is_main:
            return
        summary = f"last training batch PSNR {terms.get('psnr', float('nan')):.2f} dB (linear RGB)"
        if "test_psnr" in terms:
            summary += f", test PSNR {terms['test_psnr']:.2f} dB (sRGB), SSIM {terms['test_ssim']:.3f}"
        if "test_chamfer_l1" in terms:
            summary += f", Chamfer-L1 {terms['test_chamfer_l1']:.4f}"
        print(f"train.py: done ({summary})")


if __name__ == "__main__":
    _check_overrides()
    _check_output_folder()
    _quiet_hydra_on_other_ranks()
    main()
