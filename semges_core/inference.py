"""Gestures for any length of speech: windowed generation with blended overlaps.

The generator sees 34-frame windows. Consecutive windows start 30 frames apart
(the paper's 4-frame overlap) and are cross-faded over the overlap so no seam
shows; windows are independent, so they run in batches. Audio features are
computed in chunks, so memory stays bounded for long recordings.

This module is numpy only: the model behind it is ONNX Runtime or torch
(`semges_core.runtime`), chosen by the caller, and everything around the model
(windows, code choice, stitching, the motion maths) is written once here.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from semges_core.data.framing import words_per_frame
from semges_core.errors import SemgesError
from semges_core.formats.textgrid import Word
from semges_core.motion.clip import Motion
from semges_core.motion.skeleton import BEAT_SKELETON
from semges_core.speech.audio import MIN_AUDIO_SECONDS
from semges_core.speech.word_vectors import frame_vectors

OVERLAP = 4
VARIATION_HOLD = 4  # code frames between independent draws of the sampling noise (0.27 s at 15 fps)

Progress = Callable[[float, str], None]


class Cancelled(SemgesError):
    """The user cancelled generation; nothing was written."""


@dataclass
class GenerationResult:
    motion: Motion                       # at the requested frame rate, whole BEAT skeleton
    model_motion: Motion                 # at the model's frame rate (15 fps)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    n_windows: int = 0
    runtime: str = ""                    # "onnx" or "torch"
    hand_codes: np.ndarray | None = None  # (N, W') chosen codebook entries, for inspection and tests
    body_codes: np.ndarray | None = None
    hand_distances: np.ndarray | None = None  # (N, W', K) with keep_distances=True
    body_distances: np.ndarray | None = None


def window_starts(n_frames: int, window: int, overlap: int = OVERLAP) -> list[int]:
    """Starts of the windows covering n_frames; the last may run past the end (padded)."""
    hop = window - overlap
    n = max(1, math.ceil(max(n_frames - overlap, 1) / hop))
    return [i * hop for i in range(n)]


def stitch(windows, starts: Sequence[int], n_frames: int, overlap: int = OVERLAP):
    """Join (N, W, D) windows into (n_frames, D), cross-fading linearly over each overlap."""
    torch_in = not isinstance(windows, np.ndarray)
    arr = windows.detach().cpu().numpy() if torch_in else windows
    N, W, D = arr.shape
    total = starts[-1] + W
    out = np.zeros((total, D), dtype=np.float64)
    weight = np.zeros((total, 1), dtype=np.float64)
    ramp = np.ones((W, 1))
    if overlap:
        fade = np.arange(1, overlap + 1, dtype=np.float64)[:, None] / (overlap + 1)
        ramp[:overlap] = fade             # fade in over the leading overlap...
        ramp[W - overlap:] = fade[::-1]   # ...and out over the trailing one
    for i, s in enumerate(starts):
        w = ramp.copy()
        if i == 0 and overlap:
            w[:overlap] = 1.0
        if i == N - 1 and overlap:
            w[W - overlap:] = 1.0
        out[s:s + W] += arr[i] * w
        weight[s:s + W] += w
    result = (out / weight)[:n_frames].astype(arr.dtype)
    if torch_in:
        import torch

        return torch.from_numpy(result)
    return result


def code_noise(n_frames: int, size: int, seed: int, hold: int = VARIATION_HOLD) -> np.ndarray:
    """Gumbel noise (n_frames, size) that changes smoothly over time, for sampling codebook entries.

    Independent draws at every `hold`-th frame, linearly interpolated between: a sampled
    choice persists for a few frames instead of flickering, and windows that overlap in
    time see the same noise there, so their cross-fade joins agreeing motion.
    """
    rng = np.random.default_rng(seed)
    knots = np.arange(0, n_frames + hold, hold)
    u = rng.random((len(knots), size)).clip(1e-12, 1 - 1e-12)
    g = -np.log(-np.log(u))  # (knots, size) standard Gumbel
    t = np.arange(n_frames)
    i = np.minimum(t // hold, len(knots) - 2)
    w = ((t - knots[i]) / hold)[:, None]
    return (1 - w) * g[i] + w * g[i + 1]


def choose_codes(distances: np.ndarray, variation: float = 0.0, noise: np.ndarray | None = None) -> np.ndarray:
    """Codebook entries from squared distances (..., K): the nearest, or sampled.

    With variation > 0 each frame samples from softmax(-(d - d_min) / tau) (the Gumbel-max
    trick with `noise`), tau = variation x the standard deviation of that frame's distances
    over the codebook: at 0.1 only codes nearly as close as the nearest compete, at 1 a
    broad choice of plausible ones. variation = 0 is the nearest code, bit for bit.
    """
    if variation <= 0:
        return distances.argmin(-1)
    d = distances.astype(np.float64)
    tau = variation * d.std(-1, keepdims=True).clip(1e-9)
    return np.argmax(-(d - d.min(-1, keepdims=True)) / tau + noise, axis=-1)


def _as_model(model, device: str, precision: str):
    """A GestureModel; a torch `Bundle` (the older calling convention) is wrapped in the torch runtime."""
    if hasattr(model, "code_distances"):
        return model
    from semges_core.runtime.torch_model import TorchModel

    return TorchModel(model, device, precision)


def generate(model, audio: np.ndarray, words: Sequence[Word], speaker: int | str | None = None, *,
             fps: float = 30.0, device: str = "auto", precision: str = "auto", batch_windows: int = 64,
             seed: int = 0, progress: Progress | None = None,
             should_cancel: Callable[[], bool] | None = None, keep_distances: bool = False,
             variation: float = 0.0) -> GenerationResult:
    """audio: 16 kHz mono float32; words: timed transcript. Deterministic for a given seed.

    variation: 0 picks the nearest codebook entry everywhere (the seed does not matter);
    above 0, entries are sampled (`choose_codes`) and each seed gives other plausible
    gestures for the same speech, the same seed the same ones, bit for bit.

    model: a `GestureModel` from `semges_core.runtime.load_model` (or a torch `Bundle`,
    run with `device` and `precision`).
    """
    if fps <= 0 or not math.isfinite(fps):
        raise SemgesError(f"output frame rate must be positive, got {fps}")
    if not (math.isfinite(variation) and 0.0 <= variation <= 10.0):
        raise SemgesError(f"variation must be between 0 and 10, got {variation}")
    model = _as_model(model, device, precision)
    header = model.header
    sr = header.audio_config.sample_rate
    if len(audio) < sr * MIN_AUDIO_SECONDS:
        raise SemgesError(f"the audio is {len(audio) / sr:.2f} s long; at least {MIN_AUDIO_SECONDS:g} s is needed")
    report = progress or (lambda f, s: None)
    cancelled = should_cancel or (lambda: False)
    timings: dict[str, float] = {}
    spk = header.speaker_index(speaker)
    model_fps, window = header.fps, header.window
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
    feats = model.audio_features(padded, total)  # (total, A)
    model.synchronize()
    timings["audio_features"] = time.perf_counter() - t
    if cancelled():
        raise Cancelled("generation cancelled")

    t = time.perf_counter()
    report(0.2, "word vectors")
    text = frame_vectors(header.words, words_per_frame(words, total, model_fps)).astype(np.float32)
    timings["text"] = time.perf_counter() - t

    hand_codes, body_codes, hand_dist, body_dist = [], [], [], []
    noise = {}  # per part: Gumbel noise over the whole take's code frames (variation > 0)
    t = time.perf_counter()
    for b in range(0, len(starts), batch_windows):
        if cancelled():
            raise Cancelled("generation cancelled")
        chunk = starts[b:b + batch_windows]
        a = np.stack([feats[s:s + window] for s in chunk])  # (n, W, A)
        w = np.stack([text[s:s + window] for s in chunk])  # (n, W, text_dim)
        hand_d, body_d = model.code_distances(a, w, np.full(len(chunk), spk, np.int64))
        if variation > 0 and not noise:
            per_code = window // hand_d.shape[1]  # frames per code (1 in the paper's setting)
            n_codes = total // per_code + 1
            noise = {"hand": code_noise(n_codes, hand_d.shape[-1], seed),
                     "body": code_noise(n_codes, body_d.shape[-1], seed + 1_000_003)}
        if variation > 0:
            idx = (np.asarray(chunk)[:, None] // per_code) + np.arange(hand_d.shape[1])[None]  # (n, W')
            hand_codes.append(choose_codes(hand_d, variation, noise["hand"][idx]))
            body_codes.append(choose_codes(body_d, variation, noise["body"][idx]))
        else:
            hand_codes.append(hand_d.argmin(-1))
            body_codes.append(body_d.argmin(-1))
        if keep_distances:
            hand_dist.append(hand_d)
            body_dist.append(body_d)
        report(0.2 + 0.5 * min(1.0, (b + len(chunk)) / len(starts)), f"generating window {b + len(chunk)}/{len(starts)}")
    model.synchronize()
    timings["generator"] = time.perf_counter() - t

    t = time.perf_counter()
    report(0.75, "decoding motion")
    hand_all, body_all = np.concatenate(hand_codes), np.concatenate(body_codes)
    parts = [model.decode(hand_all[b:b + batch_windows], body_all[b:b + batch_windows])
             for b in range(0, len(starts), batch_windows)]
    windows_out = np.concatenate(parts).astype(np.float32)  # (N, W, 282) normalised
    pose = stitch(windows_out, starts, n_src)
    pose = header.stats.denormalize(pose).astype(np.float32)
    base = Motion.rest(BEAT_SKELETON, n_src, model_fps)
    source = Motion.from_upper_body_rot6d(pose, model_fps, base=base)
    model_motion = source.slice(0, n_frames)
    motion = (source.resample(fps) if abs(fps - model_fps) > 1e-9 else source).slice(0, n_out)
    timings["decode"] = time.perf_counter() - t
    report(1.0, "done")
    dists = (np.concatenate(hand_dist), np.concatenate(body_dist)) if keep_distances else (None, None)
    return GenerationResult(motion, model_motion, timings, len(starts), model.runtime, hand_all, body_all, *dists)
