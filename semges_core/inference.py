"""Gestures for any length of speech: windowed generation with blended overlaps.

The generator sees 34-frame windows. Consecutive windows start 30 frames apart
(the paper's 4-frame overlap) and are cross-faded over the overlap so no seam
shows; windows are independent, so they run in batches. Audio features are
computed in chunks, so memory stays bounded for long recordings.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

from .audio import MIN_AUDIO_SECONDS
from .bundle import Bundle
from .errors import SemgesError
from .framing import words_per_frame
from .motion import Motion
from .skeleton import BEAT_SKELETON
from .textgrid import Word
from .word_vectors import frame_vectors

OVERLAP = 4

Progress = Callable[[float, str], None]


class Cancelled(SemgesError):
    """The user cancelled generation; nothing was written."""


@dataclass
class GenerationResult:
    motion: Motion                       # at the requested frame rate, whole BEAT skeleton
    model_motion: Motion                 # at the model's frame rate (15 fps)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    n_windows: int = 0


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise SemgesError("device 'cuda' was asked for, but no CUDA GPU is available (use --device cpu or auto)")
    if device not in ("cpu", "cuda"):
        raise SemgesError(f"device must be auto, cpu or cuda, got {device!r}")
    return torch.device(device)


def window_starts(n_frames: int, window: int, overlap: int = OVERLAP) -> list[int]:
    """Starts of the windows covering n_frames; the last may run past the end (padded)."""
    hop = window - overlap
    n = max(1, math.ceil(max(n_frames - overlap, 1) / hop))
    return [i * hop for i in range(n)]


def stitch(windows: torch.Tensor, starts: Sequence[int], n_frames: int, overlap: int = OVERLAP) -> torch.Tensor:
    """Join (N, W, D) windows into (n_frames, D), cross-fading linearly over each overlap."""
    N, W, D = windows.shape
    total = starts[-1] + W
    out = torch.zeros(total, D, dtype=windows.dtype)
    weight = torch.zeros(total, 1, dtype=windows.dtype)
    ramp = torch.ones(W, 1, dtype=windows.dtype)
    if overlap:
        fade = torch.arange(1, overlap + 1, dtype=windows.dtype)[:, None] / (overlap + 1)
        ramp[:overlap] = fade           # fade in over the leading overlap...
        ramp[W - overlap:] = fade.flip(0)  # ...and out over the trailing one
    for i, s in enumerate(starts):
        w = ramp.clone()
        if i == 0 and overlap:
            w[:overlap] = 1.0
        if i == N - 1 and overlap:
            w[W - overlap:] = 1.0
        out[s:s + W] += windows[i] * w
        weight[s:s + W] += w
    return (out / weight)[:n_frames]


def generate(bundle: Bundle, audio: np.ndarray, words: Sequence[Word], speaker: int | str | None = None, *,
             fps: float = 30.0, device: str = "auto", precision: str = "auto", batch_windows: int = 64,
             seed: int = 0, progress: Progress | None = None,
             should_cancel: Callable[[], bool] | None = None) -> GenerationResult:
    """audio: 16 kHz mono float32; words: timed transcript. Deterministic for a given seed."""
    if fps <= 0 or not math.isfinite(fps):
        raise SemgesError(f"output frame rate must be positive, got {fps}")
    sr = bundle.audio_config.sample_rate
    if len(audio) < sr * MIN_AUDIO_SECONDS:
        raise SemgesError(f"the audio is {len(audio) / sr:.2f} s long; at least {MIN_AUDIO_SECONDS:g} s is needed")
    dev = resolve_device(device)
    dtype = _precision(precision, dev)
    torch.manual_seed(seed)
    report = progress or (lambda f, s: None)
    cancelled = should_cancel or (lambda: False)
    timings: dict[str, float] = {}
    spk = bundle.speaker_index(speaker)
    model_fps, window = bundle.fps, bundle.window
    duration = len(audio) / sr
    n_frames = max(1, int(round(duration * model_fps)))
    # The output has round(duration * fps) frames (Motion.duration = n_frames / fps). Resampling
    # keeps the last frame's time, so the model runs on as many frames as reach that one.
    n_out = max(1, int(round(duration * fps)))
    n_src = max(n_frames, math.ceil((n_out - 1) * model_fps / fps - 1e-9) + 1)
    starts = window_starts(n_src, window)
    total = starts[-1] + window

    t = time.perf_counter()
    report(0.0, "audio features")
    padded = np.zeros(int(math.ceil(total * sr / model_fps)), np.float32)
    padded[: len(audio)] = audio[: len(padded)]
    front = bundle.audio_features(dev)
    with torch.no_grad():
        feats = front(torch.from_numpy(padded)[None].to(dev), total)[0]  # (total, A)
    timings["audio_features"] = _elapsed(t, dev)
    if cancelled():
        raise Cancelled("generation cancelled")

    t = time.perf_counter()
    report(0.2, "word vectors")
    text = torch.from_numpy(frame_vectors(bundle.words, words_per_frame(words, total, model_fps))).to(dev)
    timings["text"] = _elapsed(t, dev)

    gen = bundle.generator.to(dev).eval()
    hand_q, body_q = [], []
    t = time.perf_counter()
    with torch.no_grad(), _autocast(dev, dtype):
        for b in range(0, len(starts), batch_windows):
            if cancelled():
                raise Cancelled("generation cancelled")
            chunk = starts[b:b + batch_windows]
            a = torch.stack([feats[s:s + window] for s in chunk])  # (n, W, A)
            w = torch.stack([text[s:s + window] for s in chunk])  # (n, W, text_dim)
            speakers = torch.full((len(chunk),), spk, dtype=torch.long, device=dev)
            hl, bl, _ = gen.fuse(a.to(feats.dtype), w, speakers)
            hand_q.append(gen.hand_vq.codebook.lookup(gen.hand_vq.codebook.nearest(hl.flatten(0, 1).float())).view_as(hl))
            body_q.append(gen.body_vq.codebook.lookup(gen.body_vq.codebook.nearest(bl.flatten(0, 1).float())).view_as(bl))
            report(0.2 + 0.5 * min(1.0, (b + len(chunk)) / len(starts)), f"generating window {b + len(chunk)}/{len(starts)}")
    timings["generator"] = _elapsed(t, dev)

    t = time.perf_counter()
    report(0.75, "decoding motion")
    with torch.no_grad(), _autocast(dev, dtype):
        parts = [gen.decode(h, bq) for h, bq in zip(hand_q, body_q)]
    windows_out = torch.cat(parts).float().cpu()  # (N, W, 282) normalised
    pose = stitch(windows_out, starts, n_src).numpy()
    pose = bundle.stats.denormalize(pose).astype(np.float32)
    base = Motion.rest(BEAT_SKELETON, n_src, model_fps)
    source = Motion.from_upper_body_rot6d(pose, model_fps, base=base)
    model_motion = source.slice(0, n_frames)
    motion = (source.resample(fps) if abs(fps - model_fps) > 1e-9 else source).slice(0, n_out)
    timings["decode"] = _elapsed(t, dev)
    report(1.0, "done")
    return GenerationResult(motion, model_motion, timings, len(starts))


def _elapsed(t: float, dev: torch.device) -> float:
    """Seconds since `t`; on CUDA after the queued kernels finish, so each stage is charged its own work."""
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    return time.perf_counter() - t


def _precision(precision: str, dev: torch.device) -> torch.dtype | None:
    if precision not in ("auto", "fp32", "fp16", "bf16"):
        raise SemgesError(f"precision must be auto, fp32, fp16 or bf16, got {precision!r}")
    if dev.type != "cuda":
        if precision in ("fp16", "bf16"):
            raise SemgesError(f"{precision} needs a CUDA device; on the CPU use fp32")
        return None
    if precision == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]


def _autocast(dev: torch.device, dtype: torch.dtype | None):
    from contextlib import nullcontext

    return torch.autocast(dev.type, dtype=dtype) if dtype is not None else nullcontext()
