"""The bundle's ONNX graphs under ONNX Runtime: inference with numpy and no torch.

Sessions use all cores of the machine for one request (intra-op threads) and run
sequentially, which is what a single generation wants. ONNX Runtime releases the
GIL while it computes, so a caller's progress thread or UI stays responsive.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from semges_core.bundle import BundleHeader, graph_bytes, read_header
from semges_core.errors import InputFileError, SemgesError
from semges_core.speech.chunking import hubert_plan, melonset_plan, resample_frames

MELONSET_HOP, MELONSET_FFT = 160, 512  # must match speech.features.MelOnsetFeatures
HUBERT_STRIDE = 320


def _providers(device: str) -> list[str]:
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device == "cuda":
        if "CUDAExecutionProvider" not in available:
            raise SemgesError("device 'cuda' was asked for, but this onnxruntime has no CUDA provider "
                              "(install onnxruntime-gpu, use --runtime torch, or --device cpu)")
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device == "auto" and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device not in ("auto", "cpu", "cuda"):
        raise SemgesError(f"device must be auto, cpu or cuda, got {device!r}")
    return ["CPUExecutionProvider"]


class OnnxModel:
    runtime = "onnx"

    def __init__(self, header: BundleHeader, sessions: dict, providers: list[str]) -> None:
        self.header = header
        self.sessions = sessions
        self.device = "cuda" if providers[0].startswith("CUDA") else "cpu"

    @classmethod
    def load(cls, path: str | Path, device: str = "auto") -> "OnnxModel":
        import onnxruntime as ort

        path = Path(path)
        header, arrays = read_header(path)
        graphs = header.meta.get("graphs") or {}
        kind = graphs.get("audio_kind", header.audio_config.kind)
        if kind not in ("melonset", "hubert"):
            raise InputFileError(path, f"unknown audio front end {kind!r} in the bundle's graphs")
        providers = _providers(device)
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: ORT's warnings are not the user's business
        sessions = {}
        for name in ("audio", "generator", "decoder"):
            data = graph_bytes(path, arrays, header.meta, name)
            try:
                sessions[name] = ort.InferenceSession(data, options, providers=providers)
            except Exception as e:  # ORT raises its own classes (InvalidGraph, Fail, ...) for bad bytes
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise InputFileError(path, f"the ONNX graph {name!r} cannot be loaded ({first[:300]})") from None
        return cls(header, sessions, providers)

    def _plan(self, n_samples: int):
        cfg = self.header.audio_config
        chunk = int(cfg.chunk_seconds * cfg.sample_rate)
        if cfg.kind == "hubert":
            return hubert_plan(n_samples, chunk, cfg.sample_rate, HUBERT_STRIDE)
        return melonset_plan(n_samples, chunk, MELONSET_HOP, MELONSET_FFT)

    def audio_features(self, wav: np.ndarray, n_frames: int) -> np.ndarray:
        wav = np.ascontiguousarray(wav, dtype=np.float32)
        sess = self.sessions["audio"]
        parts = []
        for c in self._plan(len(wav)):
            f = sess.run(None, {"wav": wav[None, c.start:c.stop]})[0][0]
            parts.append(f if c.keep < 0 else f[c.skip:c.skip + c.keep])
        feats = parts[0] if len(parts) == 1 else np.concatenate(parts, 0)
        return resample_frames(feats, n_frames).astype(np.float32, copy=False)

    def code_distances(self, audio: np.ndarray, words: np.ndarray, speakers: np.ndarray):
        hand, body = self.sessions["generator"].run(None, {
            "audio": np.ascontiguousarray(audio, np.float32), "words": np.ascontiguousarray(words, np.float32),
            "speaker": np.ascontiguousarray(speakers, np.int64)})
        return hand, body

    def decode(self, hand_codes: np.ndarray, body_codes: np.ndarray) -> np.ndarray:
        return self.sessions["decoder"].run(None, {"hand_codes": np.ascontiguousarray(hand_codes, np.int64),
                                                   "body_codes": np.ascontiguousarray(body_codes, np.int64)})[0]

    def synchronize(self) -> None:
        pass
