"""The model bundle: everything inference needs, in one safetensors file.

A bundle holds the generator with its frozen priors' codebooks and decoders (not the
encoders, which only training uses), the audio front end's
settings, the word vectors of the vocabulary it can read, the speakers it knows,
the pose normalisation and the frame rate; since format 1 it may also carry the
whole inference path as ONNX graphs (`graph.*` tensors, see `model.export`), which
the torch-free runtime runs. The file cannot execute anything when opened.

Reading the metadata, words, speakers and normalisation needs numpy only
(`read_header`); `load_bundle` builds the torch generator and needs torch.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from semges_core.errors import InputFileError, SemgesError
from semges_core.fileio import refuse_pickles
from semges_core.formats.tensor_files import load_arrays, read_meta
from semges_core.motion.normalization import NormStats
from semges_core.speech.feature_config import AudioFeatureConfig
from semges_core.speech.word_vectors import TableVectors

if TYPE_CHECKING:
    import torch
    from torch import nn

    from semges_core.model.generator import SemGesGenerator

BUNDLE_KIND = "semges-bundle"
BUNDLE_FORMAT = 1
DEMO_BUNDLE = Path(__file__).parent / "assets" / "demo_model.safetensors"
GRAPH_PREFIX = "graph."
# Training-only state a bundle leaves out: the priors' encoders (stage 2 reads them to
# find target codes; inference only decodes) and the codebooks' EMA/restart counters.
# `load_bundle` rebuilds them freshly initialised, so a bundle is about 1.8 MB smaller.
TRAINING_ONLY = ("hand_vq.encoder.", "body_vq.encoder.", "hand_vq.codebook.ema_", "body_vq.codebook.ema_",
                 "hand_vq.codebook.steps_unused", "body_vq.codebook.steps_unused")


def _training_only(name: str) -> bool:
    return name.startswith(TRAINING_ONLY)


def default_bundle_path() -> Path:
    """The demonstration model shipped with the package (trained on SynthBEAT)."""
    if not DEMO_BUNDLE.exists():
        raise SemgesError(f"{DEMO_BUNDLE}: the bundled demo model is missing; pass --model BUNDLE")
    return DEMO_BUNDLE


def speaker_index(speakers: list[dict[str, Any]], speaker: int | str | None) -> int:
    """Index for a speaker given by BEAT id or name (case-insensitive); None: the first one."""
    if speaker is None or str(speaker).strip() == "":
        return 0
    for i, s in enumerate(speakers):
        if str(s["id"]) == str(speaker).strip() or s["name"].lower() == str(speaker).strip().lower():
            return i
    known = ", ".join(f"{s['id']} ({s['name']})" for s in speakers)
    raise SemgesError(f"unknown speaker {speaker!r}; this model knows {known}")


@dataclass
class BundleHeader:
    """A bundle's parts that need no torch: what both runtimes share."""

    audio_config: AudioFeatureConfig
    words: TableVectors
    stats: NormStats                 # of the (T, 282) rot6d pose the generator produces
    speakers: list[dict[str, Any]]   # [{"id": 2, "name": "scott"}, ...] in embedding order
    fps: float
    window: int
    meta: dict[str, Any]
    path: Path | None = None

    @property
    def has_graphs(self) -> bool:
        return bool(self.meta.get("graphs"))

    def speaker_index(self, speaker: int | str | None) -> int:
        return speaker_index(self.speakers, speaker)


@dataclass
class Bundle(BundleHeader):
    """A bundle loaded for torch: the header plus the generator module."""

    generator: "SemGesGenerator | None" = None

    def audio_features(self, device: "str | torch.device" = "cpu") -> "nn.Module":
        from semges_core.speech.features import make_audio_features

        return make_audio_features(self.audio_config).to(device)


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


def _header(path: Path, arrays: dict[str, np.ndarray], meta: dict[str, Any], hubert_path: str | None) -> BundleHeader:
    try:
        audio_values = dict(meta["audio"])
        if hubert_path:
            audio_values["hubert_path"] = hubert_path
        audio_cfg = AudioFeatureConfig(**audio_values)
        speakers = [{"id": s["id"], "name": str(s["name"])} for s in meta["speakers"]]
        fps, window, words = float(meta["fps"]), int(meta["window"]), [str(w) for w in meta["words"]]
        text_dim = int(meta["generator"]["text_dim"])
        n_speakers = int(meta["generator"]["n_speakers"])
    except (KeyError, TypeError, ValueError) as e:
        raise InputFileError(path, f"bundle metadata is incomplete or invalid ({e})") from None
    for name in ("words.vectors", "norm.rot6d.mean", "norm.rot6d.std"):
        if name not in arrays:
            raise InputFileError(path, f"bundle is missing the tensor {name!r}")
    vectors = np.asarray(arrays["words.vectors"], np.float32)
    if vectors.shape != (len(words), text_dim):
        raise InputFileError(path, f"words.vectors has shape {tuple(vectors.shape)}, expected ({len(words)}, {text_dim})")
    mean = np.asarray(arrays["norm.rot6d.mean"], np.float64)
    std = np.asarray(arrays["norm.rot6d.std"], np.float64)
    if mean.shape != (282,) or std.shape != (282,):
        raise InputFileError(path, f"pose normalisation must have 282 values, got {mean.shape} and {std.shape}")
    if len(speakers) != n_speakers:
        raise InputFileError(path, f"{len(speakers)} speakers listed, the generator has {n_speakers}")
    return BundleHeader(audio_cfg, TableVectors(words, vectors), NormStats(mean, std), speakers, fps, window, meta, path)


def read_header(path: str | Path, hubert_path: str | None = None) -> tuple[BundleHeader, dict[str, np.ndarray]]:
    """The torch-free parts of a bundle, and its arrays (memory-mapped) for the runtime to take graphs from."""
    path = Path(path)
    refuse_pickles(path)
    arrays, meta = load_arrays(path)
    _check_meta(path, meta)
    return _header(path, arrays, meta, hubert_path), arrays


def graph_bytes(path: Path, arrays: dict[str, np.ndarray], meta: dict[str, Any], name: str) -> bytes:
    """One ONNX graph's bytes, checked against the digest recorded at export (a damaged graph names itself)."""
    key = GRAPH_PREFIX + name
    if key not in arrays:
        raise InputFileError(path, f"the bundle lists ONNX graphs but the graph {name!r} is missing; "
                                   f"convert it again with `semges convert {path}`")
    data = np.asarray(arrays[key]).tobytes()
    want = (meta.get("graphs", {}).get("sha256", {}) or {}).get(name)
    if want and hashlib.sha256(data).hexdigest() != want:
        raise InputFileError(path, f"the ONNX graph {name!r} is damaged (its checksum does not match); "
                                   "download or convert the bundle again")
    return data


def save_bundle(path: str | Path, generator: "SemGesGenerator", audio_config: AudioFeatureConfig,
                words: TableVectors, stats: NormStats, speakers: list[dict[str, Any]], fps: float,
                window: int, extra: dict[str, Any] | None = None, graphs: bool = True) -> None:
    """Write a bundle; with `graphs` (the default) it carries the ONNX inference graphs too."""
    import torch

    from semges_core.formats.tensor_files import save_tensors
    from semges_core.formats.tensor_files import with_prefix

    if words.dim != generator.config.text_dim:
        raise ValueError(f"word vectors have {words.dim} dims, the generator reads {generator.config.text_dim}")
    tensors = with_prefix("generator.", {k: v for k, v in generator.state_dict().items() if not _training_only(k)})
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
    meta.pop("graphs", None)
    if graphs:
        from semges_core.model.export import export_graphs, graphs_meta
        from semges_core.speech.features import make_audio_features

        blobs = export_graphs(generator, make_audio_features(audio_config), window, audio_config.sample_rate)
        for name, data in blobs.items():
            tensors[GRAPH_PREFIX + name] = torch.frombuffer(bytearray(data), dtype=torch.uint8)
        meta["graphs"] = {**graphs_meta(audio_config.kind),
                          "sha256": {name: hashlib.sha256(data).hexdigest() for name, data in blobs.items()}}
    save_tensors(path, tensors, meta)


def convert_bundle(src: str | Path, dst: str | Path | None = None, hubert_path: str | None = None) -> Path:
    """Add ONNX graphs to a bundle written without them (needs torch); `dst` defaults to `src`."""
    src = Path(src)
    dst = Path(dst) if dst else src
    bundle = load_bundle(src, hubert_path=hubert_path)
    extra = {k: v for k, v in bundle.meta.items()
             if k not in ("kind", "format", "generator", "hand", "body", "audio", "speakers", "fps", "window",
                          "words", "graphs")}
    audio = bundle.audio_config
    if hubert_path:  # the graph carries HuBERT's weights; the path stays as it was recorded
        audio = dataclasses.replace(audio, hubert_path=hubert_path)
    save_bundle(dst, bundle.generator, audio, bundle.words, bundle.stats, bundle.speakers, bundle.fps,
                bundle.window, extra, graphs=True)
    return dst


def load_bundle(path: str | Path, device: "str | torch.device" = "cpu", hubert_path: str | None = None) -> Bundle:
    """The bundle with its torch generator (needs torch)."""
    from semges_core.formats.tensor_files import load_state, load_tensors, strip_prefix
    from semges_core.model.generator import GeneratorConfig, SemGesGenerator
    from semges_core.model.vqvae import MotionVQVAE, VQVAEConfig

    path = Path(path)
    refuse_pickles(path)
    tensors, meta = load_tensors(path)
    _check_meta(path, meta)
    arrays = {k: v.float().numpy() for k, v in tensors.items() if k in ("words.vectors", "norm.rot6d.mean",
                                                                       "norm.rot6d.std")}
    header = _header(path, arrays, meta, hubert_path)
    try:
        gen_cfg = GeneratorConfig(**meta["generator"])
        hand = MotionVQVAE(VQVAEConfig(**meta["hand"]))
        body = MotionVQVAE(VQVAEConfig(**meta["body"]))
    except (KeyError, TypeError, ValueError) as e:
        raise InputFileError(path, f"bundle metadata is incomplete or invalid ({e})") from None
    generator = SemGesGenerator(gen_cfg, hand, body)
    state = strip_prefix("generator.", tensors)
    fresh = generator.state_dict()  # what a bundle may omit comes from the fresh (unused) modules
    state.update({k: v for k, v in fresh.items() if _training_only(k) and k not in state})
    load_state(generator, state, path, "generator")
    generator.eval().to(device)
    return Bundle(**{f.name: getattr(header, f.name) for f in dataclasses.fields(BundleHeader)}, generator=generator)


def replace_config(config: Any, **changes: Any) -> Any:
    return dataclasses.replace(config, **changes)
