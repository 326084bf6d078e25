"""Audio features at the motion frame rate: HuBERT, or a log-mel/onset front end.

SemGes uses frozen HuBERT (768-d at 50 Hz). HuBERT weights cannot always be had
(offline machines, the bundled demo model), so a front end that needs no
downloaded weights is selectable too: log-mel energies plus onset strength and
loudness, the cues that drive beat gestures. Both return (B, n_frames, dim) at
the motion's frame rate, computed in chunks so memory stays bounded for long audio.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .errors import SemgesError


@dataclass
class AudioFeatureConfig:
    kind: str = "melonset"        # "melonset" (no weights) or "hubert"
    sample_rate: int = 16000
    n_mels: int = 64              # melonset only
    hubert_path: str = ""         # hubert only: local directory (or hub id when online)
    hubert_layer: int = -1        # hubert only: which hidden layer; -1 is the last
    chunk_seconds: float = 20.0   # audio longer than this is processed in overlapping chunks

    def __post_init__(self) -> None:
        if self.kind not in ("melonset", "hubert"):
            raise ValueError(f"audio feature kind must be 'melonset' or 'hubert', got {self.kind!r}")
        if self.kind == "hubert" and not self.hubert_path:
            raise ValueError("audio feature kind 'hubert' needs hubert_path (a local HuBERT directory)")

    def to_dict(self) -> dict:
        return asdict(self)


def _to_frames(feats: torch.Tensor, n_frames: int) -> torch.Tensor:
    """Resample features (B, N, D) in time to exactly n_frames by linear interpolation."""
    if feats.shape[1] == n_frames:
        return feats
    return F.interpolate(feats.transpose(1, 2), size=n_frames, mode="linear", align_corners=False).transpose(1, 2)


class MelOnsetFeatures(nn.Module):
    """Log-mel spectrum, onset strength (positive spectral flux) and RMS loudness."""

    hop = 160  # 10 ms at 16 kHz
    n_fft = 512

    def __init__(self, config: AudioFeatureConfig) -> None:
        super().__init__()
        import librosa  # only for the filterbank matrix, computed once

        self.config = config
        mel = librosa.filters.mel(sr=config.sample_rate, n_fft=self.n_fft, n_mels=config.n_mels)
        self.register_buffer("mel", torch.from_numpy(mel).float(), persistent=False)  # (M, F)
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)

    @property
    def dim(self) -> int:
        return self.config.n_mels + 2

    def _frames_100hz(self, wav: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(wav, self.n_fft, self.hop, window=self.window, center=True, return_complex=True)
        power = spec.abs().pow(2)  # (B, F, N)
        logmel = torch.log(self.mel @ power + 1e-6)  # (B, M, N)
        flux = F.relu(logmel[:, :, 1:] - logmel[:, :, :-1]).mean(1)
        onset = F.pad(flux, (1, 0))  # (B, N)
        rms = torch.log(power.mean(1) + 1e-6)  # (B, N)
        # Fixed scaling keeps values O(1) without statistics from a dataset.
        return torch.cat([logmel / 10.0, onset[:, None] * 2.0, rms[:, None] / 10.0], 1).transpose(1, 2)

    @torch.no_grad()
    def forward(self, wav: torch.Tensor, n_frames: int) -> torch.Tensor:
        """wav (B, S) at the configured rate -> (B, n_frames, dim)."""
        wav = wav.float()
        chunk = int(self.config.chunk_seconds * self.config.sample_rate)
        if wav.shape[1] <= chunk:
            feats = self._frames_100hz(wav)
        else:
            # STFT frames are local (32 ms), so chunks cut on hop boundaries join exactly
            # once each chunk carries one FFT of context on both sides.
            ctx = self.hop * math.ceil(self.n_fft / self.hop)
            chunk -= chunk % self.hop
            total = wav.shape[1] // self.hop + 1  # frames of the unchunked STFT (center=True)
            parts, done = [], 0
            for s in range(0, wav.shape[1], chunk):
                a, b = max(0, s - ctx), min(wav.shape[1], s + chunk + ctx)
                f = self._frames_100hz(wav[:, a:b])
                skip = (s - a) // self.hop
                n = min(chunk // self.hop, total - done) if s + chunk < wav.shape[1] else total - done
                parts.append(f[:, skip:skip + n])
                done += n
            feats = torch.cat(parts, 1)
        return _to_frames(feats, n_frames)


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

    def _run(self, wav: torch.Tensor) -> torch.Tensor:
        # HuBERT base was trained on zero-mean, unit-variance waveforms.
        wav = (wav - wav.mean(1, keepdim=True)) / (wav.std(1, keepdim=True) + 1e-7)
        out = self.model(wav, output_hidden_states=self.config.hubert_layer != -1)
        if self.config.hubert_layer == -1:
            return out.last_hidden_state
        return out.hidden_states[self.config.hubert_layer]

    @torch.no_grad()
    def forward(self, wav: torch.Tensor, n_frames: int) -> torch.Tensor:
        wav = wav.float()
        sr = self.config.sample_rate
        chunk = int(self.config.chunk_seconds * sr)
        if wav.shape[1] <= chunk:
            return _to_frames(self._run(wav), n_frames)
        # Attention sees the whole chunk, so chunks overlap by 1 s of context each side
        # and only their centres are kept (HuBERT's frame stride is 320 samples).
        stride = 320
        ctx = sr
        chunk -= chunk % stride
        parts = []
        for s in range(0, wav.shape[1], chunk):
            a, b = max(0, s - ctx), min(wav.shape[1], s + chunk + ctx)
            f = self._run(wav[:, a:b])
            skip = (s - a) // stride
            n = max(1, round(min(chunk, wav.shape[1] - s) / stride))
            parts.append(f[:, skip:skip + n])
        return _to_frames(torch.cat(parts, 1), n_frames)


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
