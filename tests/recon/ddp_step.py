"""One stage-1 and one stage-2 training step, single-process or as one rank of a torchrun job.

    python -m torch.distributed.run --standalone --nproc_per_node=2 tests/recon/ddp_step.py SCENE OUT

Rank 0 saves the step's terms and every parameter's gradient to OUT (tests/recon/test_distributed.py
compares them with the single-process step on the same batch).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from data.dataset import MultiViewDataset, load_scene  # noqa: E402
from recon.distributed import DistributedContext  # noqa: E402
from recon.train.model import GridSettings, LightSettings, ModelConfig, ReconstructionModel  # noqa: E402
from recon.train.stage2 import Stage2Config, Stage2Model, train_stage2  # noqa: E402
from recon.train.trainer import TrainConfig, Trainer  # noqa: E402
from recon.train.volume import VolumeConfig, VolumeWarmup  # noqa: E402

BATCH = 4


def gradients(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {
        name: p.grad.detach().cpu().clone() for name, p in module.named_parameters() if p.grad is not None
    }


def one_step(scene: Path, run_dir: Path, context: DistributedContext) -> dict:
    """Terms and gradients of one stage-1 step, one stage-2 step and one volumetric warm-up step on the same
    seeded batch of 4 views."""
    torch.manual_seed(0)
    dataset = MultiViewDataset(load_scene(scene), "train", background="random")
    config = ModelConfig(grid=GridSettings(32), light=LightSettings(16))
    model = ReconstructionModel(config, seed=0)
    trainer = Trainer(
        model, dataset, TrainConfig(steps=1, batch_size=BATCH, progress=False), run_dir, context
    )
    stage1_terms = trainer.train_step()
    stage1_gradients = gradients(model)
    stage2 = None
    if context.is_main:  # xatlas and baking once; DDP-style broadcast of the result to the other ranks
        stage2 = Stage2Model.from_stage1(model, texture_resolution=32, min_component_fraction=0.05)
    stage2 = context.broadcast(stage2)
    settings = TrainConfig(progress=False)
    stage2_terms = train_stage2(
        stage2, dataset, Stage2Config(steps=1, batch_size=BATCH), run_dir, settings, context
    )
    volume_model = ReconstructionModel(config, seed=0)
    warmup = VolumeWarmup(
        volume_model, dataset, VolumeConfig(steps=1, batch_size=BATCH, rays_per_view=32, samples=16),
        TrainConfig(progress=False), run_dir, context,
    )  # fmt: skip
    volume_terms = warmup.train_step()
    return {
        "volume_terms": volume_terms,
        "volume_gradients": gradients(warmup.volume),
        "stage1_terms": stage1_terms,
        "stage1_gradients": stage1_gradients,
        "stage2_terms": stage2_terms,
        "stage2_gradients": gradients(stage2),
    }


if __name__ == "__main__":
    torch.set_num_threads(1)
    context = DistributedContext.from_environment("cpu")
    result = one_step(Path(sys.argv[1]), Path(sys.argv[2]) / "run", context)
    if context.is_main:
        torch.save(dict(result, world_size=context.world_size), Path(sys.argv[2]) / "ddp.pt")
    context.close()
