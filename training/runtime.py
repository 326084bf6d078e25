"""Where a training run executes: one process or many (torchrun), CPU or CUDA.

Everything that differs between a laptop run and a multi-node run lives here,
so the stage scripts read the same either way: rank-0-only logging and saving,
a sampler that every rank shards the same way, and reproducible seeding.
"""

from __future__ import annotations

import os
import random
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler


@dataclass
class Runtime:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    amp: bool

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def autocast(self):
        if self.amp:
            return torch.autocast("cuda", dtype=torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)
        return nullcontext()

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def mean(self, value: float) -> float:
        """Average a scalar over ranks (for logging validation losses)."""
        if not self.distributed:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return float(t.item()) / self.world_size


def start(device: str = "auto", amp: bool = True) -> Runtime:
    """Join the torchrun process group when launched by torchrun, else run alone."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for but CUDA is not available")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, got {device!r}")
    dev = torch.device(device, local) if device == "cuda" else torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        if device == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group("nccl" if device == "cuda" else "gloo")
    return Runtime(rank, world, local, dev, amp=amp and device == "cuda")


def finish(rt: Runtime) -> None:
    if rt.distributed and dist.is_initialized():
        dist.destroy_process_group()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class ResumableSampler(DistributedSampler):
    """DistributedSampler that can start an epoch part-way, to resume after a kill."""

    def __init__(self, dataset: Dataset, rt: Runtime, shuffle: bool, seed: int) -> None:
        super().__init__(dataset, num_replicas=rt.world_size, rank=rt.rank, shuffle=shuffle, seed=seed,
                         drop_last=shuffle)
        self.skip = 0

    def set_position(self, epoch: int, skip_samples: int) -> None:
        self.set_epoch(epoch)
        self.skip = skip_samples

    def __iter__(self):
        return iter(list(super().__iter__())[self.skip:])

    def __len__(self) -> int:
        return max(0, super().__len__() - self.skip)


def make_loader(dataset: Dataset, rt: Runtime, batch_size: int, shuffle: bool, seed: int,
                workers: int) -> tuple[DataLoader, ResumableSampler]:
    """`batch_size` is per process; drop_last for training keeps every step the same size."""
    sampler = ResumableSampler(dataset, rt, shuffle=shuffle, seed=seed)
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
                        drop_last=shuffle, pin_memory=rt.device.type == "cuda",
                        persistent_workers=False,
                        # Worker seeds come from this generator, not the global RNG, so
                        # starting an epoch's iterator does not shift dropout or codebook restarts.
                        generator=torch.Generator().manual_seed(seed))
    return loader, sampler


def tensorboard(rt: Runtime, directory: str | Path, purge_step: int | None = None):
    """A SummaryWriter on rank 0, None elsewhere; `purge_step` hides earlier runs' events from that step on."""
    if not rt.is_main:
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(directory), purge_step=purge_step)
