"""Device choice and multi-process data parallelism (``torchrun --nproc_per_node=N train.py ...``).

Every rank holds the whole model and draws the same view batch from the same seeded generator, then
renders only its share (``shard``); DistributedDataParallel averages the gradients, so N processes
take exactly the step one process takes on the full batch (the image terms are per-view means and the
regularizers are computed identically on every rank). Rank 0 alone writes outputs.

    context = DistributedContext.from_environment("auto")   # reads RANK / WORLD_SIZE set by torchrun
    network = context.wrap(model)                           # DDP when world_size > 1, else the model
    batch = context.shard(dataset.sample(8, generator))     # this rank's 8 / N views, on its device
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

from data.dataset import Batch
from data.errors import UserError


class DistributedError(UserError):
    """An unusable device or process-group setting; the message is one line."""


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` = the rank's CUDA device when there is one, else the CPU; ``cpu``; ``cuda``."""
    if name not in ("auto", "cpu", "cuda"):
        raise DistributedError(f"device must be auto, cpu or cuda, got '{name}'")
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise DistributedError("device=cuda but PyTorch sees no CUDA device (use device=auto or cpu)")
    if local_rank >= torch.cuda.device_count():
        raise DistributedError(
            f"local rank {local_rank} has no GPU ({torch.cuda.device_count()} visible); "
            "lower --nproc_per_node"
        )
    return torch.device("cuda", local_rank)


@dataclass
class DistributedContext:
    """This process's place in the job; world_size 1 (the default) is a plain single-process run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @classmethod
    def from_environment(cls, device: str = "auto") -> DistributedContext:
        """Join the process group torchrun describes in the environment (NCCL on GPUs, gloo on the CPU);
        a single-process context when it describes none."""
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
        target = resolve_device(device, local_rank)
        if world_size > 1 and not dist.is_initialized():
            if target.type == "cuda":
                torch.cuda.set_device(target)
            backend = "nccl" if target.type == "cuda" else "gloo"
            dist.init_process_group(backend, rank=rank, world_size=world_size, timeout=timedelta(hours=2))
        return cls(rank, world_size, local_rank, target)

    def close(self, succeeded: bool = True) -> None:
        """Leave the process group. After a successful run every rank first waits for the others, so
        that no rank tears gloo or NCCL down while a peer is still working (rank 0 exports for minutes;
        an early leaver could abort with "terminate called without an active exception"). After an
        error there is no barrier: the other ranks may be inside a collective that never ends."""
        if not (self.enabled and dist.is_initialized()):
            return
        if succeeded:
            self.barrier()
        dist.destroy_process_group()

    def check_batch_size(self, batch_size: int, name: str) -> None:
        if batch_size % self.world_size:
            raise DistributedError(
                f"{name}={batch_size} is not divisible by the {self.world_size} processes; each renders an "
                "equal share of the views"
            )

    def shard(self, batch: Batch) -> Batch:
        """This rank's contiguous share of ``batch`` (whose size divides by world_size), on its device."""
        share = len(batch.views) // self.world_size
        return batch[list(range(self.rank * share, (self.rank + 1) * share))].to(self.device)

    def wrap(self, module: nn.Module) -> nn.Module:
        """``module`` on this rank's device, inside DistributedDataParallel when there are several ranks
        (which first copies rank 0's parameters and buffers to every rank)."""
        module.to(self.device)
        if not self.enabled:
            return module
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(module, device_ids=ids, broadcast_buffers=False)

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """The mean of each value over the ranks (every rank calls this with the same keys)."""
        if not self.enabled:
            return values
        names = sorted(values)
        stacked = torch.tensor([values[name] for name in names], dtype=torch.float64, device=self.device)
        dist.all_reduce(stacked)
        means = (stacked / self.world_size).tolist()
        return {name: float(value) for name, value in zip(names, means, strict=True)}

    def broadcast(self, value):
        """Rank 0's ``value`` on every rank (any picklable object; a module on a GPU is sent, and returned
        on rank 0 too, as a CPU copy, so that no rank unpickles tensors onto rank 0's GPU)."""
        if not self.enabled:
            return value
        payload = [_to_cpu(value) if self.is_main else None]
        dist.broadcast_object_list(payload, src=0, device=self.device)
        return payload[0]

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier(device_ids=[self.device.index] if self.device.type == "cuda" else None)


def view_generator(view: int, step: int) -> torch.Generator:
    """A generator seeded by a view's dataset index and the step: what a term draws per view with it is the
    same whichever rank renders the view, so the ranks' mean is the single process's loss."""
    return torch.Generator().manual_seed(int(view) * 1_000_003 + step)


def _to_cpu(value):
    if isinstance(value, nn.Module) and any(t.device.type != "cpu" for t in value.state_dict().values()):
        return copy.deepcopy(value).to("cpu")
    return value
