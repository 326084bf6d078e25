"""The bundle's torch modules behind the same interface as the ONNX runtime.

For training-side work, CUDA with mixed precision, HuBERT bundles whose weights are
given by path, and bundles written before graphs existed.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

from semges_core.bundle import Bundle, load_bundle
from semges_core.errors import SemgesError


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise SemgesError("device 'cuda' was asked for, but no CUDA GPU is available (use --device cpu or auto)")
    if device not in ("cpu", "cuda"):
        raise SemgesError(f"device must be auto, cpu or cuda, got {device!r}")
    return torch.device(device)


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


class TorchModel:
    runtime = "torch"

    def __init__(self, bundle: Bundle, device: str = "auto", precision: str = "auto") -> None:
        self.bundle = self.header = bundle
        self.dev = resolve_device(device)
        self.dtype = _precision(precision, self.dev)
        self.device = self.dev.type
        self.generator = bundle.generator.to(self.dev).eval()
        self._front = None

    @classmethod
    def load(cls, path: str | Path, device: str = "auto", precision: str = "auto",
             hubert_path: str | None = None) -> "TorchModel":
        return cls(load_bundle(path, hubert_path=hubert_path), device, precision)

    def _autocast(self):
        return torch.autocast(self.dev.type, dtype=self.dtype) if self.dtype is not None else nullcontext()

    def audio_features(self, wav: np.ndarray, n_frames: int) -> np.ndarray:
        if self._front is None:
            self._front = self.bundle.audio_features(self.dev)
        with torch.no_grad():
            x = torch.from_numpy(np.ascontiguousarray(wav, np.float32))[None].to(self.dev)
            return self._front(x, n_frames)[0].float().cpu().numpy()

    def code_distances(self, audio: np.ndarray, words: np.ndarray, speakers: np.ndarray):
        g = self.generator
        with torch.no_grad(), self._autocast():
            a = torch.from_numpy(np.ascontiguousarray(audio, np.float32)).to(self.dev)
            w = torch.from_numpy(np.ascontiguousarray(words, np.float32)).to(self.dev)
            s = torch.from_numpy(np.ascontiguousarray(speakers, np.int64)).to(self.dev)
            hand, body, _ = g.fuse(a, w, s)
            return (g.hand_vq.codebook.distances(hand).cpu().numpy(),
                    g.body_vq.codebook.distances(body).cpu().numpy())

    def decode(self, hand_codes: np.ndarray, body_codes: np.ndarray) -> np.ndarray:
        g = self.generator
        with torch.no_grad(), self._autocast():
            h = g.hand_vq.codebook.lookup(torch.from_numpy(np.asarray(hand_codes, np.int64)).to(self.dev))
            b = g.body_vq.codebook.lookup(torch.from_numpy(np.asarray(body_codes, np.int64)).to(self.dev))
            return g.decode(h, b).float().cpu().numpy()

    def synchronize(self) -> None:
        if self.dev.type == "cuda":
            torch.cuda.synchronize(self.dev)
