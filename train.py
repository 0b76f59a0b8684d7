"""Reconstruct a mesh, materials and light from a multi-view dataset (Hydra entry point).

    python train.py                                   # the built-in synthetic scene, CPU or GPU
    python train.py +experiment=spot_mitsuba          # a preset from configs/experiment/
    python train.py dataset.path=/data/capture train.steps=3000
    python train.py --help                            # every key with its default
    torchrun --nproc_per_node=2 train.py train.batch_size=8   # data parallel: each process renders 4 views

Outputs go to outputs/<date>/<time>/ (Hydra's run folder): config.yaml, tb/, checkpoints/, stage1_mesh/,
mesh/ (the asset), metrics.json and progress.json. Bad input or a bad value ends with one line naming the
problem, exit status 1. Ctrl-C or SIGTERM writes a checkpoint (exit 130 / 143); checkpoints are also
written every train.checkpoint_every steps and train.checkpoint_minutes minutes; train.resume=true with
the same hydra.run.dir continues from where the run stopped, in any phase.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

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
    ``hydra.run.dir`` ends with one line rather than Hydra's traceback."""
    if _launch_rank() > 0 or {"--help", "-h", "--hydra-help"} & set(sys.argv):
        return
    given = [arg.split("=", 1)[1] for arg in sys.argv[1:] if arg.startswith("hydra.run.dir=")]
    folder = Path((given[-1] if given else "outputs").split("${", 1)[0] or ".").absolute()
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


@hydra.main(version_base=None, config_path="configs", config_name="config")
def main(cfg: DictConfig) -> None:
    from data.errors import DatasetError
    from geometry.encoding import EncodingBackendError
    from geometry.obj import MeshFileError
    from recon.checkpoint import CheckpointError
    from recon.distributed import DistributedContext, DistributedError
    from recon.errors import ConfigError, TrainingError
    from recon.run import run
    from render.hdr import EnvironmentFileError
    from render.raster.nvdiffrast_backend import BackendUnavailableError

    # what the user can fix, told in one line; anything else is our bug and keeps its traceback
    user_errors = (
        DatasetError, CheckpointError, TrainingError, ConfigError, DistributedError, MeshFileError,
        EnvironmentFileError, BackendUnavailableError, EncodingBackendError,
    )  # fmt: skip
    context, succeeded = None, False
    try:
        config = OmegaConf.to_object(cfg)
        context = DistributedContext.from_environment(config.device)
        run_dir = context.broadcast(HydraConfig.get().runtime.output_dir)
        terms = run(config, Path(run_dir), context)
        succeeded = True
    except user_errors as error:
        rank = f"[rank {context.rank}] " if context is not None and context.enabled else ""
        print(f"train.py: {rank}{error}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt as error:  # Ctrl-C, or SIGTERM (recon.errors.Interrupted)
        where = f"{error}; " if str(error) else "interrupted; "
        print(f"train.py: {where}continue with train.resume=true", file=sys.stderr)
        sys.exit(143 if "SIGTERM" in str(error) else 130)
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
    _check_output_folder()
    _quiet_hydra_on_other_ranks()
    main()
