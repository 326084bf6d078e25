"""Audio features at the motion frame rate: HuBERT, or a log-mel/onset front end.

SemGes uses frozen HuBERT (768-d at 50 Hz). HuBERT weights cannot always be had
(offline machines, the bundled demo model), so a front end that needs no
downloaded weights is selectable too: log-mel energies plus onset strength and
loudness, the cues that drive beat gestures. Both return (B, n_frames, dim) at
the motion's frame rate, computed in chunks so memory stays bounded for long audio.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from semges_core.errors import SemgesError
from semges_core.speech.chunking import hubert_plan, melonset_plan
from semges_core.speech.feature_config import AudioFeatureConfig  # noqa: F401  (re-exported)


def _to_frames(feats: torch.Tensor, n_frames: int) -> torch.Tensor:
    """Resample features (B, N, D) in time to exactly n_frames by linear interpolation."""
    if feats.shape[1] == n_frames:
        return feats
    return F.interpolate(feats.transpose(1, 2), size=n_frames, mode="linear", align_corners=False).transpose(1, 2)


def _chunked(front: nn.Module, wav: torch.Tensor, n_frames: int) -> torch.Tensor:
    """A front end's `native` over the chunks of its `plan`, joined and resampled to n_frames."""
    parts = []
    for c in front.plan(wav.shape[1]):
        f = front.native(wav[:, c.start:c.stop])
        parts.append(f if c.keep < 0 else f[:, c.skip:c.skip + c.keep])
    return _to_frames(parts[0] if len(parts) == 1 else torch.cat(parts, 1), n_frames)


class MelOnsetFeatures(nn.Module):
    """Log-mel spectrum, onset strength (positive spectral flux) and RMS loudness.

    The STFT is a strided convolution with a windowed Fourier basis rather than
    `torch.stft`: the same numbers (to 1e-5), and it exports to ONNX as a plain Conv,
    which ONNX Runtime runs several times faster than its STFT operator.
    """

    hop = 160  # 10 ms at 16 kHz
    n_fft = 512

    def __init__(self, config: AudioFeatureConfig) -> None:
        super().__init__()
        import librosa  # only for the filterbank matrix, computed once

        self.config = config
        mel = librosa.filters.mel(sr=config.sample_rate, n_fft=self.n_fft, n_mels=config.n_mels)
        self.register_buffer("mel", torch.from_numpy(mel).float(), persistent=False)  # (M, F)
        window = torch.hann_window(self.n_fft, dtype=torch.float64)
        k = torch.arange(self.n_fft, dtype=torch.float64)
        f = torch.arange(self.n_fft // 2 + 1, dtype=torch.float64)
        phase = 2 * math.pi * f[:, None] * k[None] / self.n_fft
        basis = torch.cat([torch.cos(phase), -torch.sin(phase)]) * window  # (2F, n_fft)
        self.register_buffer("basis", basis.float()[:, None], persistent=False)  # (2F, 1, n_fft)

    @property
    def dim(self) -> int:
        return self.config.n_mels + 2

    def native(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, S) -> (B, S // hop + 1, dim) at 100 Hz: what the exported ONNX graph computes."""
        pad = self.n_fft // 2
        x = F.pad(wav[:, None], (pad, pad), mode="reflect")  # torch.stft(center=True)'s framing
        spec = F.conv1d(x, self.basis, stride=self.hop)  # (B, 2F, N): real parts, then imaginary
        n_bins = self.n_fft // 2 + 1
        power = spec[:, :n_bins].pow(2) + spec[:, n_bins:].pow(2)  # (B, F, N)
        logmel = torch.log(self.mel @ power + 1e-6)  # (B, M, N)
        flux = F.relu(logmel[:, :, 1:] - logmel[:, :, :-1]).mean(1)
        onset = F.pad(flux, (1, 0))  # (B, N)
        rms = torch.log(power.mean(1) + 1e-6)  # (B, N)
        # Fixed scaling keeps values O(1) without statistics from a dataset.
        return torch.cat([logmel / 10.0, onset[:, None] * 2.0, rms[:, None] / 10.0], 1).transpose(1, 2)

    def plan(self, n_samples: int):
        return melonset_plan(n_samples, int(self.config.chunk_seconds * self.config.sample_rate), self.hop, self.n_fft)

    @torch.no_grad()
    def forward(self, wav: torch.Tensor, n_frames: int) -> torch.Tensor:
        """wav (B, S) at the configured rate -> (B, n_frames, dim)."""
        return _chunked(self, wav.float(), n_frames)


class HubertFeatures(nn.Module):
    """Frozen HuBERT (`transformers.HubertModel`) hidden states, 50 Hz -> motion rate."""

    def __init__(self, config: AudioFeatureConfig) -> None:
        super().__init__()
        try:
            from transformers import HubertModel
        except ImportError as e:  # pragma: no cover - transformers is a dependency
            raise SemgesError(f"HuBERT features need the transformers package: {e}") from e
        path = config.hubert_path
        local = Path(path).expanduser()
        try:
            if local.exists():
                self.model = HubertModel.from_pretrained(str(local), local_files_only=True)
            else:
                self.model = HubertModel.from_pretrained(path)
        except (OSError, ValueError) as e:
            raise SemgesError(f"could not load HuBERT from {path!r}: {e}") from e
        self.model.eval().requires_grad_(False)
        self.config = config

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    def train(self, mode: bool = True) -> "HubertFeatures":
        super().train(mode)
        self.model.eval()  # frozen: dropout stays off even while the generator trains
        return self

    def native(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, S) -> (B, ~S / 320, dim) hidden states at 50 Hz: what the exported ONNX graph computes."""
        # HuBERT base was trained on zero-mean, unit-variance waveforms.
        wav = (wav - wav.mean(1, keepdim=True)) / (wav.std(1, keepdim=True) + 1e-7)
        out = self.model(wav, output_hidden_states=self.config.hubert_layer != -1)
        if self.config.hubert_layer == -1:
            return out.last_hidden_state
        return out.hidden_states[self.config.hubert_layer]

    def plan(self, n_samples: int):
        return hubert_plan(n_samples, int(self.config.chunk_seconds * self.config.sample_rate),
                           self.config.sample_rate)

    @torch.no_grad()
    def forward(self, wav: torch.Tensor, n_frames: int) -> torch.Tensor:
        """wav (B, S) at the configured rate -> (B, n_frames, dim)."""
        return _chunked(self, wav.float(), n_frames)


def make_audio_features(config: AudioFeatureConfig) -> nn.Module:
    return HubertFeatures(config) if config.kind == "hubert" else MelOnsetFeatures(config)


def samples_for_frames(n_frames: int, fps: float, sample_rate: int = 16000) -> int:
    """Audio samples that span n_frames motion frames (the window's audio length)."""
    return int(round(n_frames * sample_rate / fps))


def fit_length(wav: np.ndarray, n_samples: int) -> np.ndarray:
    """Trim or zero-pad audio to n_samples."""
    if len(wav) >= n_samples:
        return wav[:n_samples]
    return np.pad(wav, (0, n_samples - len(wav)))
