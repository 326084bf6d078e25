"""The model bundle: everything inference needs, in one safetensors file.

A bundle holds the generator with its frozen priors, the audio front end's
settings, the word vectors of the vocabulary it can read, the speakers it knows,
the pose normalisation and the frame rate. Inference loads it without the
training code, and the file cannot execute anything when opened.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .audio_features import AudioFeatureConfig, make_audio_features
from .errors import InputFileError, SemgesError
from .fileio import refuse_pickles
from .model.generator import GeneratorConfig, SemGesGenerator
from .model.vqvae import MotionVQVAE, VQVAEConfig
from .normalization import NormStats
from .tensor_files import load_state, load_tensors, read_meta, save_tensors, strip_prefix, with_prefix
from .word_vectors import TableVectors

BUNDLE_KIND = "semges-bundle"
BUNDLE_FORMAT = 1
DEMO_BUNDLE = Path(__file__).parent / "assets" / "demo_model.safetensors"


def default_bundle_path() -> Path:
    """The demonstration model shipped with the package (trained on SynthBEAT)."""
    if not DEMO_BUNDLE.exists():
        raise SemgesError(f"{DEMO_BUNDLE}: the bundled demo model is missing; pass --model BUNDLE")
    return DEMO_BUNDLE


@dataclass
class Bundle:
    generator: SemGesGenerator
    audio_config: AudioFeatureConfig
    words: TableVectors
    stats: NormStats                 # of the (T, 282) rot6d pose the generator produces
    speakers: list[dict[str, Any]]   # [{"id": 2, "name": "scott"}, ...] in embedding order
    fps: float
    window: int
    meta: dict[str, Any]
    path: Path | None = None

    def audio_features(self, device: str | torch.device = "cpu") -> nn.Module:
        return make_audio_features(self.audio_config).to(device)

    def speaker_index(self, speaker: int | str | None) -> int:
        """Index for a speaker given by BEAT id or name (case-insensitive); None: the first one."""
        if speaker is None:
            return 0
        for i, s in enumerate(self.speakers):
            if str(s["id"]) == str(speaker).strip() or s["name"].lower() == str(speaker).strip().lower():
                return i
        known = ", ".join(f"{s['id']} ({s['name']})" for s in self.speakers)
        raise SemgesError(f"unknown speaker {speaker!r}; this model knows {known}")


def save_bundle(path: str | Path, generator: SemGesGenerator, audio_config: AudioFeatureConfig,
                words: TableVectors, stats: NormStats, speakers: list[dict[str, Any]], fps: float,
                window: int, extra: dict[str, Any] | None = None) -> None:
    if words.dim != generator.config.text_dim:
        raise ValueError(f"word vectors have {words.dim} dims, the generator reads {generator.config.text_dim}")
    tensors = with_prefix("generator.", generator.state_dict())
    tensors["words.vectors"] = torch.from_numpy(words.vectors.astype(np.float16))
    tensors["norm.rot6d.mean"] = torch.from_numpy(np.asarray(stats.mean, np.float32))
    tensors["norm.rot6d.std"] = torch.from_numpy(np.asarray(stats.std, np.float32))
    meta = {
        "kind": BUNDLE_KIND, "format": BUNDLE_FORMAT,
        "generator": generator.config.to_dict(),
        "hand": generator.hand_vq.config.to_dict(), "body": generator.body_vq.config.to_dict(),
        "audio": audio_config.to_dict(), "speakers": speakers, "fps": fps, "window": window,
        "words": words.words, **(extra or {}),
    }
    save_tensors(path, tensors, meta)


def _check_meta(path: Path, meta: dict[str, Any]) -> None:
    if meta.get("kind") != BUNDLE_KIND:
        raise InputFileError(path, f"not a SemGes model bundle (kind {meta.get('kind')!r})")
    fmt = meta.get("format")
    if not isinstance(fmt, int) or fmt > BUNDLE_FORMAT:
        raise InputFileError(path, f"bundle format {fmt} is newer than this SemGes reads ({BUNDLE_FORMAT}); update SemGes")
    if fmt < 1:
        raise InputFileError(path, f"unknown bundle format {fmt}")


def bundle_info(path: str | Path) -> dict[str, Any]:
    """The bundle's metadata without loading weights (for `semges info`)."""
    path = Path(path)
    refuse_pickles(path)
    meta = read_meta(path)
    _check_meta(path, meta)
    return meta


def load_bundle(path: str | Path, device: str | torch.device = "cpu", hubert_path: str | None = None) -> Bundle:
    path = Path(path)
    refuse_pickles(path)
    tensors, meta = load_tensors(path)
    _check_meta(path, meta)
    try:
        gen_cfg = GeneratorConfig(**meta["generator"])
        hand = MotionVQVAE(VQVAEConfig(**meta["hand"]))
        body = MotionVQVAE(VQVAEConfig(**meta["body"]))
        audio_values = dict(meta["audio"])
        if hubert_path:
            audio_values["hubert_path"] = hubert_path
        audio_cfg = AudioFeatureConfig(**audio_values)
        speakers = [{"id": s["id"], "name": str(s["name"])} for s in meta["speakers"]]
        fps, window, words = float(meta["fps"]), int(meta["window"]), [str(w) for w in meta["words"]]
    except (KeyError, TypeError, ValueError) as e:
        raise InputFileError(path, f"bundle metadata is incomplete or invalid ({e})") from None
    generator = SemGesGenerator(gen_cfg, hand, body)
    load_state(generator, strip_prefix("generator.", tensors), path, "generator")
    for name in ("words.vectors", "norm.rot6d.mean", "norm.rot6d.std"):
        if name not in tensors:
            raise InputFileError(path, f"bundle is missing the tensor {name!r}")
    vectors = tensors["words.vectors"].float().numpy()
    if vectors.shape != (len(words), gen_cfg.text_dim):
        raise InputFileError(path, f"words.vectors has shape {tuple(vectors.shape)}, expected ({len(words)}, {gen_cfg.text_dim})")
    mean, std = tensors["norm.rot6d.mean"].double().numpy(), tensors["norm.rot6d.std"].double().numpy()
    if mean.shape != (282,) or std.shape != (282,):
        raise InputFileError(path, f"pose normalisation must have 282 values, got {mean.shape} and {std.shape}")
    if len(speakers) != gen_cfg.n_speakers:
        raise InputFileError(path, f"{len(speakers)} speakers listed, the generator has {gen_cfg.n_speakers}")
    generator.eval().to(device)
    return Bundle(generator, audio_cfg, TableVectors(words, vectors), NormStats(mean, std), speakers, fps,
                  window, meta, path)


def replace_config(config: Any, **changes: Any) -> Any:
    return dataclasses.replace(config, **changes)
