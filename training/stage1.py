"""Stage 1: train the hand and body VQ-VAE motion priors.

    python -m training.stage1 --config configs/synthbeat_small.toml [--resume] [--set key=value]
    torchrun --nproc_per_node 4 -m training.stage1 --config configs/beat_paper.toml

Writes `<stage1.out>/stage1.safetensors` (both priors, their configs and the
dataset's normalisation statistics), resumable checkpoints under
`<stage1.out>/checkpoints/` and TensorBoard logs under `<stage1.out>/tb/`.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from semges_core.data.dataset import Cache, DatasetConfig, WindowDataset, load_cache
from semges_core.model.losses import stage1_loss
from semges_core.model.priors import MotionPriors, save_priors
from semges_core.model.vqvae import VQVAEConfig

from . import runtime
from .config import TrainConfig, config_to_dict, stage_main
from .loop import Job, fit

BODY_DIM, HAND_DIM = 54, 228


def open_dataset(config: TrainConfig, rt: runtime.Runtime) -> Cache:
    """Rank 0 builds (or reuses) the cache; the others wait, then open it."""
    d = config.data
    dc = DatasetConfig(fps=d.fps, window=d.window, stride=d.stride,
                       speakers=tuple(d.speakers) if d.speakers else None)
    cache = None
    if rt.is_main:
        cache = load_cache(d.root, d.cache_dir, dc, workers=max(1, d.workers), progress=True)
    rt.barrier()
    if cache is None:
        cache = load_cache(d.root, d.cache_dir, dc, progress=False)
    return cache


def build_priors(config: TrainConfig) -> MotionPriors:
    s = config.stage1
    return MotionPriors(
        VQVAEConfig(input_dim=HAND_DIM, **dataclasses.asdict(s.hand)),
        VQVAEConfig(input_dim=BODY_DIM, **dataclasses.asdict(s.body)),
    )


class _BothPriors(nn.Module):
    """Both priors behind one forward, so DDP wraps a single module."""

    def __init__(self, priors: MotionPriors) -> None:
        super().__init__()
        self.priors = priors

    def forward(self, x: torch.Tensor):
        return self.priors.body(x[..., :BODY_DIM]), self.priors.hand(x[..., BODY_DIM:])


def rot6d_denormalizer(cache: Cache, device: torch.device):
    stats = cache.stats["rot6d"]
    mean = torch.as_tensor(stats.mean, dtype=torch.float32, device=device)
    std = torch.as_tensor(stats.std, dtype=torch.float32, device=device)
    return lambda y, a, b: y.float() * std[a:b] + mean[a:b]


def make_job(config: TrainConfig, cache: Cache, rt: runtime.Runtime) -> tuple[Job, MotionPriors]:
    s = config.stage1
    priors = build_priors(config).to(rt.device)
    both = _BothPriors(priors)
    model = DistributedDataParallel(both) if rt.distributed else both
    denorm = rot6d_denormalizer(cache, rt.device)
    w = s.loss

    def compute(batch: dict[str, torch.Tensor], train: bool):
        x = batch["rot6d"]
        body_out, hand_out = model(x) if train else both(x)
        lb = stage1_loss(body_out, x[..., :BODY_DIM], w, lambda y: denorm(y, 0, BODY_DIM))
        lh = stage1_loss(hand_out, x[..., BODY_DIM:], w, lambda y: denorm(y, BODY_DIM, BODY_DIM + HAND_DIM))
        logs = {"total": (lb.total + lh.total).item(), "body_recon": lb.recon.item(), "hand_recon": lh.recon.item(),
                "body_velocity": lb.velocity.item(), "hand_velocity": lh.velocity.item(),
                "body_perplexity": body_out.perplexity.item(), "hand_perplexity": hand_out.perplexity.item(),
                "body_usage": body_out.usage.item(), "hand_usage": hand_out.usage.item(),
                "commit": (lb.commit + lh.commit).item()}
        return lb.total + lh.total, logs

    job = Job(
        name="stage 1", out=Path(s.out), modules={"priors": priors}, parameters=list(priors.parameters()),
        train_ds=WindowDataset(cache, "train", fields=("rot6d",), normalize=True),
        val_ds=WindowDataset(cache, "val", fields=("rot6d",), normalize=True),
        compute=compute, epochs=s.epochs, batch_size=s.batch_size, lr=s.lr, weight_decay=s.weight_decay,
        grad_clip=s.grad_clip, seed=config.seed, workers=config.data.workers,
        checkpoint_every=config.checkpoint_every, log_every=config.log_every,
        train_mode=priors.train, extra={"config": config_to_dict(config)},
    )
    return job, priors


@torch.no_grad()
def codebook_usage(priors: MotionPriors, dataset: WindowDataset, device: torch.device, limit: int = 8192) -> dict:
    """How many codes the training windows use, and the perplexity of that distribution."""
    priors.eval()
    n = min(len(dataset), limit)
    counts: dict[str, torch.Tensor] = {}
    for a in range(0, n, 256):
        x = torch.stack([dataset[i]["rot6d"] for i in range(a, min(n, a + 256))]).to(device)
        for part, vq, xs in (("body", priors.body, x[..., :BODY_DIM]), ("hand", priors.hand, x[..., BODY_DIM:])):
            idx = vq.codebook.nearest(vq.encode(xs).reshape(-1, vq.config.code_dim))
            c = torch.bincount(idx, minlength=vq.config.codebook_size).cpu()
            counts[part] = counts[part] + c if part in counts else c
    out = {}
    for part, c in counts.items():
        p = c.float() / c.sum()
        out[part] = {"used": int((c > 0).sum()), "size": int(len(c)),
                     "perplexity": float(torch.exp(-(p * torch.log(p + 1e-10)).sum()))}
    priors.train()
    return out


def train_stage1(config: TrainConfig, resume: bool = False, max_steps: int | None = None,
                 progress: bool = True) -> Path:
    rt = runtime.start(config.device, config.amp)
    try:
        runtime.seed_everything(config.seed)
        cache = open_dataset(config, rt)
        job, priors = make_job(config, cache, rt)
        result = fit(job, rt, resume, max_steps, progress)
        final = job.out / "stage1.safetensors"
        if rt.is_main:
            usage = codebook_usage(priors, job.train_ds, rt.device)
            save_priors(final, priors, cache, extra={
                "config": config_to_dict(config), "steps": result.steps, "epochs_done": result.epochs,
                "train_seconds": result.seconds, "codebook_usage": usage,
                "final_train": result.last_train, "final_val": result.last_val,
            })
            print(f"stage 1 done: {result.steps} steps in {result.seconds:.0f} s; codebook use "
                  f"hand {usage['hand']['used']}/{usage['hand']['size']} (perplexity {usage['hand']['perplexity']:.1f}), "
                  f"body {usage['body']['used']}/{usage['body']['size']} (perplexity {usage['body']['perplexity']:.1f}); "
                  f"wrote {final}")
        rt.barrier()
        return final
    finally:
        runtime.finish(rt)


def main(argv: list[str] | None = None) -> int:
    return stage_main(argv, "stage1", "Train SemGes stage 1 (hand and body VQ-VAE priors).", train_stage1)


if __name__ == "__main__":
    sys.exit(main())
