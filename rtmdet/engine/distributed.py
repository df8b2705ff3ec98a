"""Multi-process helpers: ``torchrun`` initialisation and a rank-sharded resumable sampler.

``torchrun --nproc_per_node N -m rtmdet train CONFIG`` sets RANK/WORLD_SIZE/LOCAL_RANK;
one process per GPU uses NCCL, CPU-only runs (and the 2-process test) use gloo.
"""
from __future__ import annotations

import os
from datetime import timedelta

import torch
import torch.distributed as dist
from torch.utils.data import Sampler


def init_distributed(device: str) -> tuple[int, int, int]:
    """(rank, world_size, local_rank); initialises the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1 or (dist.is_available() and dist.is_initialized()):
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0))
        return 0, 1, 0
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if device.startswith("cuda") else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend, timeout=timedelta(minutes=30))
    return rank, world, local_rank


def is_main() -> bool:
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


class ShardedEpochSampler(Sampler[int]):
    """One global shuffle per epoch (a pure function of seed and epoch), split across ranks by
    striding, with ``start`` skipping this rank's first items when resuming mid-epoch.

    The global order is padded by wrapping so each rank sees the same number of items
    (otherwise DDP ranks would disagree on the number of steps and hang).
    """

    def __init__(self, n: int, seed: int = 0, rank: int = 0, world: int = 1,
                 shuffle: bool = True) -> None:
        self.n, self.seed, self.rank, self.world, self.shuffle = n, seed, rank, world, shuffle
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def per_rank(self) -> int:
        return -(-self.n // self.world)

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.n, generator=g) if self.shuffle else torch.arange(self.n)
        total = self.per_rank() * self.world
        order = torch.cat([order, order[: total - self.n]]) if total > self.n else order
        return iter(order[self.rank::self.world][self.start:].tolist())

    def __len__(self) -> int:
        return self.per_rank() - self.start
