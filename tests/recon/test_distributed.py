"""Data parallelism: sharding, device choice, and 2 CPU processes (gloo) = 1 process on the same batch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from data.dataset import MultiViewDataset, load_scene
from recon.distributed import DistributedContext, DistributedError, resolve_device
from recon.scenes.synthetic import SyntheticConfig, make_synthetic_scene
from tests.helpers import ROOT
from tests.recon.ddp_step import one_step


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("scene")
    config = SyntheticConfig(
        n_train=6, n_val=1, n_test=1, resolution=32, mesh_resolution=32, light_resolution=16
    )
    make_synthetic_scene(folder, config)
    return folder


def test_shards_partition_the_batch(scene):
    dataset = MultiViewDataset(load_scene(scene), "train")
    batch = dataset.sample(4, torch.Generator().manual_seed(3))
    shards = [DistributedContext(rank, 2).shard(batch) for rank in range(2)]
    assert torch.equal(torch.cat([s.views for s in shards]), batch.views)
    assert torch.equal(torch.cat([s.images for s in shards]), batch.images)
    assert torch.equal(torch.cat([s.background for s in shards]), batch.background)
    assert torch.equal(torch.cat([s.cameras.c2w for s in shards]), batch.cameras.c2w)
    with pytest.raises(DistributedError, match="train.batch_size=3 is not divisible by the 2 processes"):
        DistributedContext(0, 2).check_batch_size(3, "train.batch_size")


def test_device_choice():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(DistributedError, match="device must be auto, cpu or cuda"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(DistributedError, match="no CUDA device"):
            resolve_device("cuda")
    single = DistributedContext()
    assert single.mean({"a": 1.5}) == {"a": 1.5} and single.broadcast([1]) == [1] and not single.enabled


def test_two_processes_take_the_single_process_step(scene, tmp_path):
    """torchrun with 2 gloo ranks, 2 views each: the same loss terms and gradients as 4 views in one
    process, for a stage-1, a stage-2 and a volumetric warm-up step."""
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        str(ROOT / "tests" / "recon" / "ddp_step.py"), str(scene), str(tmp_path),
    ]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    parallel = torch.load(tmp_path / "ddp.pt", weights_only=False)
    assert parallel["world_size"] == 2
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = one_step(scene, tmp_path / "single", DistributedContext())
    finally:
        torch.set_num_threads(threads)
    for stage in ("stage1", "stage2", "volume"):
        for name in ("loss", "image", "mask"):
            assert parallel[f"{stage}_terms"][name] == pytest.approx(single[f"{stage}_terms"][name], rel=1e-5)
        expected, got = single[f"{stage}_gradients"], parallel[f"{stage}_gradients"]
        assert set(got) == set(expected)
        for name, gradient in expected.items():
            scale = float(gradient.abs().max()) + 1e-12
            assert torch.allclose(got[name], gradient, rtol=1e-4, atol=1e-5 * scale), f"{stage} {name}"
