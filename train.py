"""Reconstruct a mesh, materials and light from a multi-view dataset (Hydra entry point).

    python train.py                                   # the built-in synthetic scene, CPU or GPU
    python train.py +experiment=spot_mitsuba          # a preset from configs/experiment/
    python train.py dataset.path=/data/capture train.steps=3000
    python train.py --help                            # every key with its default

Outputs go to outputs/<date>/<time>/ (Hydra's run folder): config.yaml, tb/, checkpoints/ and the
stage-1 mesh. Bad input ends with one line naming the problem, exit status 1.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from recon.config import register

register()


@hydra.main(version_base=None, config_path="configs", config_name="config")
def main(cfg: DictConfig) -> None:
    from data.errors import DatasetError
    from recon.checkpoint import CheckpointError
    from recon.run import run
    from recon.trainer import TrainingError
    from render.raster.nvdiffrast_backend import BackendUnavailableError

    try:
        config = OmegaConf.to_object(cfg)
        terms = run(config, Path(HydraConfig.get().runtime.output_dir))
    except (DatasetError, CheckpointError, TrainingError, BackendUnavailableError, ValueError) as error:
        print(f"train.py: {error}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print(
            "train.py: interrupted; a checkpoint was written (resume with train.resume=true)", file=sys.stderr
        )
        sys.exit(130)
    summary = f"last batch PSNR {terms.get('psnr', float('nan')):.2f} dB"
    if "test_psnr" in terms:
        summary += f", test PSNR {terms['test_psnr']:.2f} dB, SSIM {terms['test_ssim']:.3f}"
    if "test_chamfer_l1" in terms:
        summary += f", Chamfer-L1 {terms['test_chamfer_l1']:.4f}"
    print(f"train.py: done ({summary})")


if __name__ == "__main__":
    main()
