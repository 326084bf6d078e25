"""What inference asks of a model, and choosing the runtime that provides it.

`auto` takes ONNX Runtime when the bundle carries graphs and onnxruntime imports,
else torch; it never imports torch when ONNX Runtime will do, so a stock Blender
(numpy only, plus the wheels the extension ships) can generate.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Protocol

import numpy as np

from semges_core.bundle import BundleHeader, bundle_info
from semges_core.errors import SemgesError

RUNTIMES = ("auto", "onnx", "torch")


class GestureModel(Protocol):
    runtime: str             # "onnx" or "torch"
    device: str              # where it runs, in words ("cpu", "cuda", "CUDAExecutionProvider", ...)
    header: BundleHeader

    def audio_features(self, wav: np.ndarray, n_frames: int) -> np.ndarray:
        """(S,) float32 waveform -> (n_frames, A) float32 features at the model's frame rate."""

    def code_distances(self, audio: np.ndarray, words: np.ndarray, speakers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """N windows -> squared distances (N, W', K) of hand and body latents to each codebook entry."""

    def decode(self, hand_codes: np.ndarray, body_codes: np.ndarray) -> np.ndarray:
        """Code indices (N, W') -> normalised rot6d poses (N, W, 282), float32."""

    def synchronize(self) -> None:
        """Wait for queued device work (so stage timings are honest)."""


def _has(module: str) -> bool:
    """Whether `module` can be imported, without importing it (torch alone takes a second)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def load_model(path: str | Path, runtime: str = "auto", device: str = "auto", precision: str = "auto",
               hubert_path: str | None = None) -> GestureModel:
    """The bundle at `path` ready to generate, on the runtime asked for (see module docstring)."""
    if runtime not in RUNTIMES:
        raise SemgesError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    path = Path(path)
    has_graphs = bool(bundle_info(path).get("graphs"))
    if runtime == "auto":
        if has_graphs and _has("onnxruntime") and precision in ("auto", "fp32") and not hubert_path:
            runtime = "onnx"
        elif _has("torch"):
            runtime = "torch"
        elif not has_graphs:
            raise SemgesError(f"{path}: this bundle has no ONNX graphs and this Python has no torch to run it; "
                              f"convert it once with `semges convert {path}` (on a machine with PyTorch)")
        else:
            raise SemgesError("neither onnxruntime nor torch can be imported in this Python; reinstall SemGes "
                              "(the Blender extension ships onnxruntime)")
    if runtime == "onnx":
        if not has_graphs:
            raise SemgesError(f"{path}: this bundle has no ONNX graphs; convert it with `semges convert {path}`, "
                              "or use --runtime torch")
        if not _has("onnxruntime"):
            raise SemgesError("the ONNX runtime was asked for, but onnxruntime is not installed "
                              "(pip install onnxruntime), or use --runtime torch")
        if precision not in ("auto", "fp32"):
            raise SemgesError(f"the ONNX runtime runs in fp32; for {precision} use --runtime torch on a CUDA GPU")
        from semges_core.runtime.onnx_model import OnnxModel

        return OnnxModel.load(path, device)
    if not _has("torch"):
        raise SemgesError("the torch runtime was asked for, but this Python has no torch "
                          "(pip install torch, or use --runtime onnx)")
    from semges_core.runtime.torch_model import TorchModel

    return TorchModel.load(path, device, precision, hubert_path)
