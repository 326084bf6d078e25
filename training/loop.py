"""The training loop both stages share: epochs, resumable checkpoints, validation, logs.

A stage describes itself as a `Job` (what to save, what to optimise, how to
turn a batch into a loss); this loop does the rest the same way for both, on one
process or under torchrun.

A run killed at any moment and started again with `resume=True` ends with the
same weights, optimizer state, final logs and TensorBoard scalars as a run that
was never killed (see `training.checkpoint` for how; TensorBoard events are flushed
before each checkpoint, and a resumed run's writer purges the steps it will log again).
The `fault_point` calls mark where tests kill it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from tqdm import tqdm

from semges_core.data.dataset import WindowDataset
from semges_core.errors import SemgesError

from . import runtime
from .checkpoint import Position, fault_point, remove_partial_writes, resume_latest, save_checkpoint

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


def _log(writer, prefix: str, logs: dict[str, float], step: int) -> None:
    for k, v in logs.items():
        writer.add_scalar(f"{prefix}/{k}", v, step)


@torch.no_grad()
def validate(job: Job, loader, rt: runtime.Runtime) -> dict[str, float]:
    job.train_mode(False)
    sums: dict[str, float] = {}
    n = 0
    for i, batch in enumerate(loader):
        if i == 1:
            fault_point("validate")
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
    if rt.is_main:
        for p in remove_partial_writes(ckpt_dir):  # no write runs yet: these are from a killed run
            tqdm.write(f"{job.name}: removed {p}, a checkpoint write that did not finish")
    pos = Position()
    logs: dict[str, float] = {}   # the last step's train logs
    val: dict[str, float] = {}    # the last validation's
    resumed = None
    if resume:
        resumed = resume_latest(ckpt_dir, job.modules, opt, scaler, rt.device)
        if resumed is not None:
            pos = resumed.position
            logs, val = resumed.logs.get("train", {}), resumed.logs.get("val", {})
        if rt.is_main:
            tqdm.write(f"{job.name}: resuming from {resumed.path} (epoch {pos.epoch}, step {pos.step})"
                       if resumed is not None else f"{job.name}: no checkpoint in {ckpt_dir}, starting from scratch")
    # On resume TensorBoard drops what the killed run logged from the checkpoint's step on;
    # what was logged at that very step is logged again, the rest is recomputed.
    writer = runtime.tensorboard(rt, job.out / "tb", purge_step=pos.step if resume else None)
    if resumed is not None and writer is not None:
        if pos.step % job.log_every == 0:
            _log(writer, "train", logs, pos.step)
        if pos.batch == 0 and pos.epoch > 0:  # an epoch-end checkpoint: validation logged at this step
            _log(writer, "val", val, pos.step)
    steps_per_epoch = len(job.train_ds) // world_batch
    total = job.epochs * steps_per_epoch if max_steps is None else min(job.epochs * steps_per_epoch, max_steps)
    bar = tqdm(total=total, initial=min(pos.step, total), desc=job.name, disable=not (progress and rt.is_main),
               dynamic_ncols=True)

    saved = vars(pos).copy() if resumed is not None else None  # the position the newest checkpoint holds

    def checkpoint() -> None:
        nonlocal saved
        if vars(pos) == saved:
            return  # e.g. the final checkpoint right after an epoch's
        if rt.is_main:
            writer.flush()  # what a resume will not log again must be on disk before the checkpoint
            save_checkpoint(ckpt_dir, pos, job.modules, opt, scaler, job.extra, logs={"train": logs, "val": val})
        rt.barrier()
        saved = vars(pos).copy()

    t0 = time.perf_counter()
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
            fault_point("step")
            if rt.is_main and pos.step % job.log_every == 0:
                _log(writer, "train", logs, pos.step)
                bar.set_postfix({k: f"{v:.4g}" for k, v in list(logs.items())[:4]})
            if pos.step % job.checkpoint_every == 0:
                checkpoint()
            if max_steps is not None and pos.step >= max_steps:
                stop = True
                break
        if stop:
            break
        fault_point("epoch_end")
        pos.epoch += 1
        pos.batch = 0
        if len(job.val_ds):
            val = validate(job, val_loader, rt)
            if rt.is_main:
                _log(writer, "val", val, pos.step)
                tqdm.write(f"{job.name} epoch {pos.epoch}/{job.epochs}: "
                           + ", ".join(f"val {k} {v:.4g}" for k, v in list(val.items())[:6]))
        checkpoint()
    bar.close()
    checkpoint()
    fault_point("fit_done")
    if writer is not None:
        writer.close()
    return Result(pos.step, pos.epoch, time.perf_counter() - t0, logs, val)
