"""Train the motion feature autoencoder that FGD is measured with.

    python -m training.fgd_autoencoder --cache-dir data/cache/synthbeat --out fgd_ae.safetensors [--epochs N]

Trains `MotionAutoencoder` by reconstruction on the TRAIN split of a built dataset
cache (the 34-frame windows at the cache's stride, 141-d Euler degrees normalised
with the train split's statistics) and writes one safetensors file: weights,
normalisation statistics, config and the training facts. Resumable checkpoints
and TensorBoard logs go to `--work-dir` (default `<out without suffix>.run/`).
Deterministic for a given seed, device and thread count on one process. On a CPU
shared with other jobs `--threads 1` is much faster than torch's default
(intra-op threads spin while they wait for a core).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from semges_core.data.dataset import Cache, WindowDataset, open_cache
from semges_core.errors import SemgesError
from semges_core.model.motion_autoencoder import (
    MotionAutoencoder,
    MotionAutoencoderConfig,
    reconstruction_loss,
    save_motion_autoencoder,
)

from . import runtime
from .loop import Job, fit


def make_job(cache: Cache, model: MotionAutoencoder, work_dir: Path, epochs: int, batch_size: int, lr: float,
             seed: int, workers: int) -> Job:
    def compute(batch: dict[str, torch.Tensor], train: bool):
        x = model.normalize(batch["euler"].float())  # (B, W, 141)
        loss = reconstruction_loss(model(x), x)
        return loss.total, {"total": loss.total.item(), "recon": loss.recon.item(), "velocity": loss.velocity.item()}

    return Job(
        name="fgd autoencoder", out=work_dir, modules={"autoencoder": model}, parameters=list(model.parameters()),
        train_ds=WindowDataset(cache, "train", fields=("euler",)),
        val_ds=WindowDataset(cache, "val", fields=("euler",)),
        compute=compute, epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=0.0, grad_clip=1.0,
        seed=seed, workers=workers, checkpoint_every=10**9, log_every=10, train_mode=model.train,
    )


def train_fgd_autoencoder(cache_dir: str | Path, out: str | Path, epochs: int = 100, batch_size: int = 64,
                          lr: float = 1e-3, seed: int = 0, config: MotionAutoencoderConfig | None = None,
                          device: str = "auto", workers: int = 0, work_dir: str | Path | None = None,
                          resume: bool = False, max_steps: int | None = None, progress: bool = True) -> Path:
    """Train on the cache's train split and write the autoencoder to `out`; returns `out`."""
    out = Path(out)
    work_dir = Path(work_dir) if work_dir is not None else out.with_suffix(".run")
    cache = open_cache(cache_dir)
    config = config or MotionAutoencoderConfig(window=cache.config.window)
    if config.window != cache.config.window:
        raise SemgesError(f"the autoencoder's window ({config.window}) differs from "
                          f"the cache's ({cache.config.window})")
    rt = runtime.start(device, amp=False)
    try:
        runtime.seed_everything(seed)
        model = MotionAutoencoder(config, cache.stats["euler"]).to(rt.device)
        job = make_job(cache, model, work_dir, epochs, batch_size, lr, seed, workers)
        result = fit(job, rt, resume, max_steps, progress)
        if rt.is_main:
            model.eval()
            save_motion_autoencoder(out, model, extra={
                "cache": str(Path(cache_dir).resolve()), "fps": cache.config.fps, "stride": cache.config.stride,
                "train_windows": len(job.train_ds), "seed": seed, "epochs": epochs, "batch_size": batch_size,
                "lr": lr, "steps": result.steps, "epochs_done": result.epochs, "train_seconds": result.seconds,
                "final_train": result.last_train, "final_val": result.last_val,
            })
            val = result.last_val.get("recon")
            print(f"fgd autoencoder done: {result.steps} steps in {result.seconds:.0f} s, train L1 "
                  f"{result.last_train.get('recon', float('nan')):.4f}"
                  + (f", val L1 {val:.4f}" if val is not None else "") + f" (normalised units); wrote {out}")
        rt.barrier()
        return out
    finally:
        runtime.finish(rt)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train the motion autoencoder used for FGD on a cache's train split.")
    parser.add_argument("--cache-dir", required=True, help="a built dataset cache (see semges_core.data.dataset)")
    parser.add_argument("--out", required=True, help="output .safetensors file")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--width", type=int, default=MotionAutoencoderConfig.width, help="conv channels")
    parser.add_argument("--latent-dim", type=int, default=MotionAutoencoderConfig.latent_dim)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--work-dir", help="checkpoints and logs (default: <out without suffix>.run)")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --work-dir")
    parser.add_argument("--max-steps", type=int, help="stop after this many steps")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1 or not args.lr > 0:
        parser.error("--epochs and --batch-size must be positive and --lr > 0")
    if args.threads is not None:
        if args.threads < 1:
            parser.error("--threads must be positive")
        torch.set_num_threads(args.threads)
    try:
        cache = open_cache(args.cache_dir)
        config = MotionAutoencoderConfig(window=cache.config.window, width=args.width, latent_dim=args.latent_dim)
        train_fgd_autoencoder(args.cache_dir, args.out, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                              seed=args.seed, config=config, device=args.device, workers=args.workers,
                              work_dir=args.work_dir, resume=args.resume, max_steps=args.max_steps,
                              progress=not args.no_progress)
    except (SemgesError, ValueError) as e:
        print(f"fgd_autoencoder: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
