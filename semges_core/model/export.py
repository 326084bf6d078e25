"""The model as ONNX graphs, so inference runs with ONNX Runtime and numpy, without torch.

Three graphs cover everything inference computes with weights:

- `audio`: waveform (1, S) -> front-end features at its own rate (100 Hz log-mel/onset,
  or 50 Hz HuBERT). Chunking and the resampling to motion frames stay outside, in
  `speech.chunking`, shared with the torch front ends.
- `generator`: audio and word features of N windows plus speaker indices -> squared
  distances from each frame's hand and body latents to every codebook entry. Choosing
  the code (nearest, or sampled) is left to the caller.
- `decoder`: hand and body code indices -> the normalised rot6d pose (N, W, 282)
  through the frozen stage-1 decoders.

The graphs ride inside the model bundle as uint8 tensors (`graph.<name>`), so a bundle
stays one safetensors file that cannot execute anything when opened.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from typing import Any

import torch
from torch import nn

from semges_core.model.generator import SemGesGenerator

OPSET = 18
GRAPH_NAMES = ("audio", "generator", "decoder")


class _AudioGraph(nn.Module):
    def __init__(self, front: nn.Module) -> None:
        super().__init__()
        self.front = front

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        return self.front.native(wav)


class _GeneratorGraph(nn.Module):
    def __init__(self, gen: SemGesGenerator) -> None:
        super().__init__()
        self.gen = gen

    def forward(self, audio: torch.Tensor, words: torch.Tensor, speaker: torch.Tensor):
        hand, body, _ = self.gen.fuse_unchecked(audio, words, speaker)
        return (self.gen.hand_vq.codebook.distances(hand), self.gen.body_vq.codebook.distances(body))


class _DecoderGraph(nn.Module):
    def __init__(self, gen: SemGesGenerator) -> None:
        super().__init__()
        self.gen = gen

    def forward(self, hand_codes: torch.Tensor, body_codes: torch.Tensor) -> torch.Tensor:
        return self.gen.decode(self.gen.hand_vq.codebook.lookup(hand_codes),
                               self.gen.body_vq.codebook.lookup(body_codes))


def _export(module: nn.Module, args: tuple, names_in: list[str], names_out: list[str],
            dynamic: dict[str, dict[int, str]]) -> bytes:
    """Trace with torch.export (the dynamo exporter: it handles attention's fused kernel)."""
    from torch.export import Dim

    dims: dict[str, Any] = {}
    shapes = []
    for name in names_in:
        axes = dynamic.get(name, {})
        shapes.append({axis: dims.setdefault(label, Dim(label, min=1)) for axis, label in axes.items()} or None)
    module = module.eval()
    with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # the exporter's progress and deprecation chatter
        program = torch.onnx.export(module, args, input_names=names_in, output_names=names_out,
                                    dynamic_shapes=tuple(shapes), opset_version=OPSET, dynamo=True,
                                    external_data=False, verbose=False, optimize=True)
    return program.model_proto.SerializeToString()


def export_graphs(generator: SemGesGenerator, front: nn.Module, window: int, sample_rate: int) -> dict[str, bytes]:
    """ONNX bytes of the three graphs, traced on the CPU in float32."""
    generator = generator.to("cpu").float().eval()
    front = front.to("cpu").float().eval()
    c = generator.config
    n = 2  # traced with two windows; the window count is a dynamic axis
    codes = window // generator.hand_vq.frames_per_code
    graphs = {
        "audio": _export(_AudioGraph(front), (torch.zeros(1, sample_rate),), ["wav"], ["features"],
                         {"wav": {1: "samples"}, "features": {1: "frames"}}),
        "generator": _export(_GeneratorGraph(generator),
                             (torch.zeros(n, window, c.audio_dim), torch.zeros(n, window, c.text_dim),
                              torch.zeros(n, dtype=torch.long)),
                             ["audio", "words", "speaker"], ["hand_distances", "body_distances"],
                             {k: {0: "windows"} for k in ("audio", "words", "speaker", "hand_distances",
                                                          "body_distances")}),
        "decoder": _export(_DecoderGraph(generator),
                           (torch.zeros(n, codes, dtype=torch.long), torch.zeros(n, codes, dtype=torch.long)),
                           ["hand_codes", "body_codes"], ["motion"],
                           {k: {0: "windows"} for k in ("hand_codes", "body_codes", "motion")}),
    }
    return graphs


def graphs_meta(front_kind: str) -> dict[str, Any]:
    """What a bundle records about its graphs (the runtime checks it before loading them)."""
    return {"opset": OPSET, "names": list(GRAPH_NAMES), "audio_kind": front_kind,
            "exported_with": f"torch {torch.__version__}"}
