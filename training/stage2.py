"""Stage 2: train the semantics-driven generator on top of the frozen priors.

    python -m training.stage2 --config configs/synthbeat_small.toml [--resume] [--set key=value]
    torchrun --nproc_per_node 4 -m training.stage2 --config configs/beat_paper.toml

Needs stage 1's `stage1.safetensors`. Writes resumable checkpoints and TensorBoard
logs under `<stage2.out>/`, and at the end the model bundle `<stage2.out>/model.safetensors`
(see `training.export_bundle`). With `stage2.precompute_audio` (the default) the frozen
audio front end's features are computed once per take, before training starts, beside
the dataset cache (see `training.audio_feature_cache`).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from semges_core.speech.features import make_audio_features
from semges_core.data.dataset import Cache, WindowDataset
from semges_core.errors import SemgesError
from semges_core.model.generator import SemGesGenerator
from semges_core.model.losses import stage2_loss
from semges_core.model.priors import load_priors
from semges_core.speech.word_vectors import WordVectors, open_word_vectors

from . import runtime
from .audio_feature_cache import AudioFeatureFile, load_features
from .config import TrainConfig, config_to_dict, stage_main
from .loop import Job, fit
from .stage1 import open_dataset

FIELDS = ("rot6d", "word", "sem_score", "audio")
AUDIO_FEATURES = "audio_features"  # the batch key of precomputed front-end features


def priors_path(config: TrainConfig) -> Path:
    return Path(config.stage2.priors) if config.stage2.priors else Path(config.stage1.out) / "stage1.safetensors"


def vocabulary_table(cache: Cache, vectors: WordVectors) -> torch.Tensor:
    """(V + 1, dim): the cache vocabulary's vectors, then a zero row for pauses (index -1)."""
    rows = [vectors.vector(w) for w in cache.vocab] + [np.zeros(vectors.dim, np.float32)]
    return torch.from_numpy(np.stack(rows).astype(np.float32))


def build_generator(config: TrainConfig, cache: Cache, audio_dim: int, text_dim: int) -> SemGesGenerator:
    path = priors_path(config)
    if not path.exists():
        raise SemgesError(f"{path}: stage-1 priors not found; train stage 1 first (python -m training.stage1)")
    priors, stats, _ = load_priors(path)
    cache_stats = cache.stats["rot6d"]
    if not (np.allclose(stats.mean, cache_stats.mean, atol=1e-4) and np.allclose(stats.std, cache_stats.std, atol=1e-4)):
        raise SemgesError(f"{path}: the priors were trained with another dataset's normalisation than {cache.dir}")
    gen_cfg = dataclasses.replace(config.stage2.model, audio_dim=audio_dim, text_dim=text_dim,
                                  n_speakers=len(cache.speaker_ids))
    return SemGesGenerator(gen_cfg, priors.hand, priors.body)


class Stage2:
    """Everything a stage-2 step needs, built once: front end, vocabulary, generator."""

    def __init__(self, config: TrainConfig, cache: Cache, rt: runtime.Runtime) -> None:
        s = config.stage2
        self.config, self.cache, self.rt = config, cache, rt
        self.audio: torch.nn.Module | None = make_audio_features(s.audio).to(rt.device).eval()
        self.features: AudioFeatureFile | None = None
        self.vectors = open_word_vectors(s.text.vectors)
        self.table = vocabulary_table(cache, self.vectors).to(rt.device)
        self.generator = build_generator(config, cache, self.audio.dim, self.vectors.dim).to(rt.device)
        self.model = (DistributedDataParallel(self.generator, find_unused_parameters=not s.loss.coherence)
                      if rt.distributed else self.generator)

    def datasets(self, progress: bool = True) -> tuple[WindowDataset, WindowDataset]:
        """Train and val windows. With `precompute_audio` this first builds (or reuses) the
        per-take features and lets the front end go: steps only read slices of them."""
        if self.config.stage2.precompute_audio and self.features is None:
            self.features = load_features(self.cache, self.config.stage2.audio, self.audio, self.rt, progress)
            self.audio = None  # e.g. HuBERT's 95M weights: no longer needed on the device
        if self.features is not None:
            fields = tuple(f for f in FIELDS if f != "audio")
            files = {AUDIO_FEATURES: self.features.path}
        else:
            fields, files = FIELDS, None
        return tuple(WindowDataset(self.cache, split, fields=fields, normalize=True, frame_files=files)
                     for split in ("train", "val"))

    def inputs(self, batch: dict[str, torch.Tensor]):
        window = batch["rot6d"].shape[1]
        if self.audio is None:
            feats = batch[AUDIO_FEATURES]  # (B, T, A): the take's features, as inference computes them
        else:
            feats = self.audio(batch["audio"], window)  # (B, T, A), no gradients: the front end is fixed
        word = batch["word"].clone()
        word[word < 0] = self.table.shape[0] - 1
        return feats, self.table[word], batch["speaker"]  # (B, T, A), (B, T, text_dim), (B,)

    def compute(self, batch: dict[str, torch.Tensor], train: bool):
        g = self.generator
        out = (self.model if train else g)(*self.inputs(batch))
        loss = stage2_loss(out, batch["rot6d"], batch["sem_score"], g.hand_vq, g.body_vq, self.config.stage2.loss)
        with torch.no_grad():
            body_dim = g.body_vq.config.input_dim
            real_h = g.hand_vq.codebook.nearest(g.hand_vq.encode(batch["rot6d"][..., body_dim:]).flatten(0, 1))
            real_b = g.body_vq.codebook.nearest(g.body_vq.encode(batch["rot6d"][..., :body_dim]).flatten(0, 1))
        logs = {"total": loss.total.item(), "coherence": loss.coherence.item(), "relevance": loss.relevance.item(),
                "quantization": loss.quantization.item(),
                "hand_code_acc": float((out.hand_indices.flatten() == real_h).float().mean()),
                "body_code_acc": float((out.body_indices.flatten() == real_b).float().mean())}
        return loss.total, logs


def train_stage2(config: TrainConfig, resume: bool = False, max_steps: int | None = None,
                 progress: bool = True) -> Path:
    from .export_bundle import export_bundle

    rt = runtime.start(config.device, config.amp)
    try:
        runtime.seed_everything(config.seed)
        cache = open_dataset(config, rt)
        st = Stage2(config, cache, rt)
        s = config.stage2
        train_ds, val_ds = st.datasets(progress)  # before fit: a kill during it leaves nothing read later
        job = Job(
            name="stage 2", out=Path(s.out), modules={"generator": st.generator},
            parameters=st.generator.trainable_parameters(),
            train_ds=train_ds, val_ds=val_ds,
            compute=st.compute, epochs=s.epochs, batch_size=s.batch_size, lr=s.lr, weight_decay=s.weight_decay,
            grad_clip=s.grad_clip, seed=config.seed, workers=config.data.workers,
            checkpoint_every=config.checkpoint_every, log_every=config.log_every,
            train_mode=st.generator.train, extra={"config": config_to_dict(config)},
        )
        result = fit(job, rt, resume, max_steps, progress)
        bundle = job.out / "model.safetensors"
        if rt.is_main:
            export_bundle(st.generator, config, cache, st.vectors, bundle, training={
                "steps": result.steps, "epochs_done": result.epochs, "train_seconds": result.seconds,
                "final_train": result.last_train, "final_val": result.last_val,
            })
            print(f"stage 2 done: {result.steps} steps in {result.seconds:.0f} s; final train losses "
                  + ", ".join(f"{k} {v:.4f}" for k, v in result.last_train.items()) + f"; wrote {bundle}")
        rt.barrier()
        return bundle
    finally:
        runtime.finish(rt)


def main(argv: list[str] | None = None) -> int:
    return stage_main(argv, "stage2", "Train SemGes stage 2 (the semantics-driven generator).", train_stage2)


if __name__ == "__main__":
    sys.exit(main())
