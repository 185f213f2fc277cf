"""Training on several processes: PyTorch's DistributedDataParallel under torchrun.

    torchrun --nproc-per-node 2 -m infogan.cli train ...        (make train NPROC=2)

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; without them a run is one process
and nothing here does anything. Each rank takes its own contiguous rows of every
global batch (the same global batch a single process would see), DDP averages
the gradients, and rank 0 alone writes the run folder. Backend: nccl on CUDA,
gloo on the CPU.

Batch norm keeps per-rank statistics: PyTorch's SyncBatchNorm runs on GPUs
only (it refuses CPU tensors), and rank 0's evaluation runs D in train mode alone,
where a SyncBatchNorm layer would wait for the other ranks. The README gives the
difference against global-batch statistics (0.9 and 2.0 points of Q accuracy at
500 updates with 2 x 64 images, seeds 0 and 1, one 2-core AMD EPYC).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from infogan.contract import InfoganError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1

    @property
    def main(self) -> bool:
        """The rank that writes the run folder, logs and evaluates."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def rows(self, n: int) -> slice:
        """This rank's rows of a global batch of n."""
        if n % self.size:
            raise InfoganError(f"batch_size={n} is invalid on {self.size} processes: it must be a multiple of {self.size}")
        per = n // self.size
        return slice(self.rank * per, (self.rank + 1) * per)


def world_from_env() -> World:
    """The processes torchrun started (one process without torchrun)."""
    env = os.environ
    return World(rank=int(env.get("RANK", 0)), size=int(env.get("WORLD_SIZE", 1)),
                 local_rank=int(env.get("LOCAL_RANK", 0)), local_size=int(env.get("LOCAL_WORLD_SIZE", 1)))


def start(world: World) -> torch.device:
    """Join the process group (nccl on CUDA, gloo on the CPU); this rank's device."""
    cuda = torch.cuda.is_available()
    if cuda and world.local_size > torch.cuda.device_count():
        # NCCL takes one GPU per process: two ranks on one GPU die inside init ("Duplicate GPU detected")
        n = torch.cuda.device_count()
        raise InfoganError(f"nproc-per-node={world.local_size} is invalid: this machine has {n} GPU(s) and NCCL needs "
                           f"one per process; give --nproc-per-node {n} or less, or train on the CPU with gloo "
                           f"(CUDA_VISIBLE_DEVICES= torchrun ...)")
    device = torch.device("cuda", world.local_rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if world.distributed and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    return device


def stop(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()


def wrap(module: torch.nn.Module, world: World, device: torch.device) -> torch.nn.Module:
    """DDP around a module whose every trainable parameter gets a gradient each step;
    per-rank batch-norm statistics (buffers are synced once, at the start, and then
    left to each rank)."""
    if not world.distributed:
        return module
    return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None,
                                   forward_sync_buffers=False)


def share(world: World, value):
    """Rank 0's value on every rank (a picklable object)."""
    if not world.distributed:
        return value
    box = [value if world.main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()
