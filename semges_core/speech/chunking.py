"""Long audio through a front end in chunks: which samples each chunk reads and which frames it keeps.

Front ends see a bounded piece of audio at a time so memory stays flat for long
recordings. Each chunk reads some context on both sides and keeps only its own
frames, so the joined result matches one pass over the whole recording (exactly for
the log-mel front end, whose frames are local; closely for HuBERT, whose attention
sees 1 s either side). The plan is plain Python so the torch front ends and the ONNX
runtime cut audio identically.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Chunk:
    start: int    # first sample read
    stop: int     # one past the last sample read
    skip: int     # native frames to drop at the front (the left context)
    keep: int     # native frames to keep after that; -1 keeps all


def melonset_plan(n_samples: int, chunk_samples: int, hop: int, n_fft: int) -> list[Chunk]:
    """STFT frames (center=True): S // hop + 1 of them; one FFT of context each side."""
    if n_samples <= chunk_samples:
        return [Chunk(0, n_samples, 0, -1)]
    ctx = hop * math.ceil(n_fft / hop)
    chunk = chunk_samples - chunk_samples % hop
    total = n_samples // hop + 1
    plan, done = [], 0
    for s in range(0, n_samples, chunk):
        a, b = max(0, s - ctx), min(n_samples, s + chunk + ctx)
        n = min(chunk // hop, total - done) if s + chunk < n_samples else total - done
        plan.append(Chunk(a, b, (s - a) // hop, n))
        done += n
    return plan


def hubert_plan(n_samples: int, chunk_samples: int, sample_rate: int, stride: int = 320) -> list[Chunk]:
    """HuBERT frames every `stride` samples; 1 s of context each side of a chunk."""
    if n_samples <= chunk_samples:
        return [Chunk(0, n_samples, 0, -1)]
    ctx = sample_rate
    chunk = chunk_samples - chunk_samples % stride
    plan = []
    for s in range(0, n_samples, chunk):
        a, b = max(0, s - ctx), min(n_samples, s + chunk + ctx)
        plan.append(Chunk(a, b, (s - a) // stride, max(1, round(min(chunk, n_samples - s) / stride))))
    return plan


def resample_frames(feats: np.ndarray, n_frames: int) -> np.ndarray:
    """(N, D) features to exactly n_frames by linear interpolation.

    The same sampling as torch's `F.interpolate(mode="linear", align_corners=False)`, which
    the torch front ends use, so both runtimes feed the generator the same frames.
    """
    n = feats.shape[0]
    if n == n_frames:
        return feats
    x = (np.arange(n_frames, dtype=np.float64) + 0.5) * (n / n_frames) - 0.5
    x = np.clip(x, 0.0, n - 1)
    lo = np.floor(x).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    w = (x - lo)[:, None].astype(feats.dtype)
    return feats[lo] * (1 - w) + feats[hi] * w
