"""The pair of stage-1 motion priors (hands, body) and their file format.

Stage 2 and inference need the priors' weights, their architecture, and the
normalisation statistics the priors were trained with; all three travel in one
safetensors file so they cannot be mixed up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from semges_core.errors import InputFileError
from semges_core.motion.normalization import NormStats
from semges_core.formats.tensor_files import load_state, load_tensors, save_tensors, strip_prefix, with_prefix
from semges_core.model.vqvae import MotionVQVAE, VQVAEConfig

STAGE1_KIND = "semges-stage1"
STAGE1_FORMAT = 1


class MotionPriors(nn.Module):
    def __init__(self, hand: VQVAEConfig, body: VQVAEConfig) -> None:
        super().__init__()
        self.hand = MotionVQVAE(hand)
        self.body = MotionVQVAE(body)


def save_priors(path: str | Path, priors: MotionPriors, cache: Any, extra: dict[str, Any]) -> None:
    stats: NormStats = cache.stats["rot6d"]
    tensors = with_prefix("hand.", priors.hand.state_dict()) | with_prefix("body.", priors.body.state_dict())
    tensors["norm.rot6d.mean"] = torch.as_tensor(np.asarray(stats.mean, np.float32))
    tensors["norm.rot6d.std"] = torch.as_tensor(np.asarray(stats.std, np.float32))
    meta = {
        "kind": STAGE1_KIND, "format": STAGE1_FORMAT,
        "hand": priors.hand.config.to_dict(), "body": priors.body.config.to_dict(),
        "fps": cache.config.fps, "window": cache.config.window,
        **extra,
    }
    save_tensors(path, tensors, meta)


def load_priors(path: str | Path) -> tuple[MotionPriors, NormStats, dict[str, Any]]:
    tensors, meta = load_tensors(path)
    if meta.get("kind") != STAGE1_KIND:
        raise InputFileError(path, f"not a stage-1 checkpoint (kind {meta.get('kind')!r})")
    if meta.get("format") != STAGE1_FORMAT:
        raise InputFileError(path, f"stage-1 format {meta.get('format')} is not the supported {STAGE1_FORMAT}")
    try:
        priors = MotionPriors(VQVAEConfig(**meta["hand"]), VQVAEConfig(**meta["body"]))
    except (TypeError, ValueError) as e:
        raise InputFileError(path, f"invalid prior configuration ({e})") from None
    load_state(priors.hand, strip_prefix("hand.", tensors), path, "hand prior")
    load_state(priors.body, strip_prefix("body.", tensors), path, "body prior")
    stats = NormStats(tensors["norm.rot6d.mean"].numpy().astype(np.float64), tensors["norm.rot6d.std"].numpy().astype(np.float64))
    return priors, stats, meta
