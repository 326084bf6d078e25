"""The training loop both stages share: epochs, resumable checkpoints, validation, logs.

A stage describes itself as a `Job` (what to save, what to optimise, how to
turn a batch into a loss); this loop does the rest the same way for both, on one
process or under torchrun.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from tqdm import tqdm

from semges_core.dataset import WindowDataset
from semges_core.errors import SemgesError

from . import runtime
from .checkpoint import Position, latest_checkpoint, load_checkpoint, save_checkpoint

# compute(batch, train) -> (loss to minimise, scalar logs); batch tensors are on the device.
Compute = Callable[[dict[str, torch.Tensor], bool], tuple[torch.Tensor, dict[str, float]]]


@dataclass
class Job:
    name: str
    out: Path
    modules: dict[str, nn.Module]          # what a checkpoint holds
    parameters: list[nn.Parameter]         # what the optimiser updates
    train_ds: WindowDataset
    val_ds: WindowDataset
    compute: Compute
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    grad_clip: float
    seed: int
    workers: int
    checkpoint_every: int
    log_every: int
    train_mode: Callable[[bool], None]     # switches the trained modules between train and eval
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Result:
    steps: int
    epochs: int
    seconds: float
    last_train: dict[str, float]
    last_val: dict[str, float]


def _to(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


@torch.no_grad()
def validate(job: Job, loader, rt: runtime.Runtime) -> dict[str, float]:
    job.train_mode(False)
    sums: dict[str, float] = {}
    n = 0
    for batch in loader:
        batch = _to(batch, rt.device)
        with rt.autocast():
            _, logs = job.compute(batch, False)
        b = next(iter(batch.values())).shape[0]
        for k, v in logs.items():
            sums[k] = sums.get(k, 0.0) + v * b
        n += b
    job.train_mode(True)
    return {k: rt.mean(v / max(n, 1)) for k, v in sums.items()}


def fit(job: Job, rt: runtime.Runtime, resume: bool, max_steps: int | None, progress: bool) -> Result:
    """Train until `job.epochs` (or `max_steps`); resumes from `<out>/checkpoints` when asked."""
    world_batch = job.batch_size * rt.world_size
    if len(job.train_ds) < world_batch:
        raise SemgesError(f"{job.name}: {len(job.train_ds)} training windows, fewer than one batch of {world_batch}")
    loader, sampler = runtime.make_loader(job.train_ds, rt, job.batch_size, True, job.seed, job.workers)
    val_loader, _ = runtime.make_loader(job.val_ds, rt, job.batch_size, False, job.seed, 0)
    opt = torch.optim.Adam(job.parameters, lr=job.lr, weight_decay=job.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=rt.amp and not torch.cuda.is_bf16_supported())
    ckpt_dir = job.out / "checkpoints"
    pos = Position()
    if resume:
        path = latest_checkpoint(ckpt_dir)
        if path is not None:
            pos, _ = load_checkpoint(path, job.modules, opt, scaler, rt.device)
            if rt.is_main:
                tqdm.write(f"{job.name}: resuming from {path} (epoch {pos.epoch}, step {pos.step})")
    writer = runtime.tensorboard(rt, job.out / "tb")
    steps_per_epoch = len(job.train_ds) // world_batch
    total = job.epochs * steps_per_epoch if max_steps is None else min(job.epochs * steps_per_epoch, max_steps)
    bar = tqdm(total=total, initial=min(pos.step, total), desc=job.name, disable=not (progress and rt.is_main),
               dynamic_ncols=True)

    def checkpoint() -> None:
        if rt.is_main:
            save_checkpoint(ckpt_dir, pos, job.modules, opt, scaler, job.extra)
        rt.barrier()

    t0 = time.perf_counter()
    logs: dict[str, float] = {}
    val: dict[str, float] = {}
    job.train_mode(True)
    stop = max_steps is not None and pos.step >= max_steps
    while pos.epoch < job.epochs and not stop:
        sampler.set_position(pos.epoch, pos.batch * job.batch_size)
        for batch in loader:
            batch = _to(batch, rt.device)
            with rt.autocast():
                loss, logs = job.compute(batch, True)
            if not torch.isfinite(loss):
                raise SemgesError(f"{job.name}: loss became {float(loss)} at step {pos.step}; lower the learning rate")
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(job.parameters, job.grad_clip)
            scaler.step(opt)
            scaler.update()
            pos.step += 1
            pos.batch += 1
            bar.update(1)
            if rt.is_main and pos.step % job.log_every == 0:
                for k, v in logs.items():
                    writer.add_scalar(f"train/{k}", v, pos.step)
                bar.set_postfix({k: f"{v:.4g}" for k, v in list(logs.items())[:4]})
            if pos.step % job.checkpoint_every == 0:
                checkpoint()
            if max_steps is not None and pos.step >= max_steps:
                stop = True
                break
        if stop:
            break
        pos.epoch += 1
        pos.batch = 0
        if len(job.val_ds):
            val = validate(job, val_loader, rt)
            if rt.is_main:
                for k, v in val.items():
                    writer.add_scalar(f"val/{k}", v, pos.step)
                tqdm.write(f"{job.name} epoch {pos.epoch}/{job.epochs}: "
                           + ", ".join(f"val {k} {v:.4g}" for k, v in list(val.items())[:6]))
        checkpoint()
    bar.close()
    checkpoint()
    if writer is not None:
        writer.close()
    return Result(pos.step, pos.epoch, time.perf_counter() - t0, logs, val)
