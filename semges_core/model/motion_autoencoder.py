"""The motion feature autoencoder behind FGD (Frechet Gesture Distance).

FGD compares generated and real motion in the feature space of a network trained
on real motion only. Like the BEAT baselines' evaluation network, ours encodes a
34-frame window of the 141-d upper-body pose vector (47 joints x 3 Euler degrees),
standardised per dimension, with 1-D convolutions into a 300-d embedding; a
mirrored decoder exists only so the encoder can be trained by reconstruction.

The normalisation statistics are buffers of the module, so they are saved and
loaded with the weights and a feature extractor can never be paired with the
wrong statistics. `embed` takes raw Euler degrees.

File format: one safetensors file, metadata kind "semges-fgd-autoencoder",
format 1, the config, plus whatever the trainer adds (training facts).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from semges_core.errors import InputFileError
from semges_core.motion.normalization import NormStats
from semges_core.formats.tensor_files import load_state, load_tensors, save_tensors

FGD_AE_KIND = "semges-fgd-autoencoder"
FGD_AE_FORMAT = 1


@dataclass
class MotionAutoencoderConfig:
    pose_dim: int = 141        # 47 joints x 3 Euler angles (BEAT's pose vector)
    window: int = 34           # frames per window; even, the encoder halves time once
    latent_dim: int = 300      # embedding size FGD is computed in (BEAT: 300)
    width: int = 64            # conv channels
    # Floor (degrees) on the per-dimension std used to normalise: a dimension that hardly
    # moves in the training data must not blow a small generated deviation up into a huge
    # feature change (the dataset's own floor is 1e-4).
    min_std: float = 1.0

    def __post_init__(self) -> None:
        for name in ("pose_dim", "window", "latent_dim", "width"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"MotionAutoencoderConfig.{name} must be a positive integer, got {value!r}")
        if self.window < 4 or self.window % 2:
            raise ValueError(f"MotionAutoencoderConfig.window must be even and >= 4, got {self.window}")
        if not self.min_std > 0:
            raise ValueError(f"MotionAutoencoderConfig.min_std must be positive, got {self.min_std!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "MotionAutoencoderConfig":
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown motion autoencoder config keys: {', '.join(unknown)}")
        return cls(**d)


def _conv(c_in: int, c_out: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    # No normalisation layer: features must not depend on batch composition or running
    # statistics, and on SynthBEAT GroupNorm only slowed training down.
    pad = (kernel - stride) // 2 if stride > 1 else kernel // 2
    return nn.Sequential(nn.Conv1d(c_in, c_out, kernel, stride=stride, padding=pad), nn.LeakyReLU(0.2))


class AEOutput(NamedTuple):
    recon: torch.Tensor    # (B, W, D) normalised poses
    latent: torch.Tensor   # (B, latent_dim)


class AELoss(NamedTuple):
    total: torch.Tensor
    recon: torch.Tensor     # L1 on normalised poses
    velocity: torch.Tensor  # L1 on frame-to-frame differences of normalised poses


class MotionAutoencoder(nn.Module):
    """(B, window, pose_dim) normalised poses -> (B, latent_dim) -> (B, window, pose_dim)."""

    def __init__(self, config: MotionAutoencoderConfig, stats: NormStats | None = None) -> None:
        super().__init__()
        self.config = c = config
        half, hidden = c.window // 2, 2 * c.latent_dim
        self.encoder_conv = nn.Sequential(
            _conv(c.pose_dim, c.width),
            _conv(c.width, 2 * c.width, kernel=4, stride=2),  # window -> window / 2
            _conv(2 * c.width, 2 * c.width),
            nn.Conv1d(2 * c.width, c.width, 3, padding=1),
        )
        self.encoder_mlp = nn.Sequential(
            nn.Linear(c.width * half, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, c.latent_dim)
        )
        self.decoder_mlp = nn.Sequential(
            nn.Linear(c.latent_dim, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, c.width * half)
        )
        self.decoder_conv = nn.Sequential(
            _conv(c.width, 2 * c.width),
            nn.ConvTranspose1d(2 * c.width, c.width, 4, stride=2, padding=1),  # window / 2 -> window
            nn.LeakyReLU(0.2),
            _conv(c.width, c.width),
            nn.Conv1d(c.width, c.pose_dim, 3, padding=1),
        )
        mean = np.zeros(c.pose_dim) if stats is None else stats.mean
        std = np.ones(c.pose_dim) if stats is None else stats.std
        self.register_buffer("norm_mean", torch.zeros(c.pose_dim))
        self.register_buffer("norm_std", torch.ones(c.pose_dim))
        self.set_stats(NormStats(mean, std))

    # ------------------------------------------------------------------ normalisation

    def set_stats(self, stats: NormStats) -> None:
        """Use `stats` (degrees) to normalise, with the std floored at config.min_std."""
        if stats.dim != self.config.pose_dim:
            raise ValueError(f"statistics have {stats.dim} dimensions, the autoencoder {self.config.pose_dim}")
        std = np.maximum(stats.std, self.config.min_std)
        self.norm_mean.copy_(torch.as_tensor(stats.mean, dtype=torch.float32))
        self.norm_std.copy_(torch.as_tensor(std, dtype=torch.float32))

    def normalize(self, euler: torch.Tensor) -> torch.Tensor:
        return (euler - self.norm_mean) / self.norm_std

    # ------------------------------------------------------------------ network

    def _check(self, x: torch.Tensor) -> None:
        c = self.config
        if x.ndim != 3 or x.shape[1:] != (c.window, c.pose_dim):
            raise ValueError(f"expected windows of shape (B, {c.window}, {c.pose_dim}), got {tuple(x.shape)}")

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised poses (B, W, D) -> (B, latent_dim)."""
        self._check(x)
        h = self.encoder_conv(x.transpose(1, 2))  # (B, width, W / 2)
        return self.encoder_mlp(h.flatten(1))  # (B, latent)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, latent_dim) -> normalised poses (B, W, D)."""
        c = self.config
        h = self.decoder_mlp(z).view(z.shape[0], c.width, c.window // 2)  # (B, width, W / 2)
        return self.decoder_conv(h).transpose(1, 2)  # (B, W, D)

    def forward(self, x: torch.Tensor) -> AEOutput:
        z = self.encode(x)
        return AEOutput(self.decode(z), z)

    @torch.no_grad()
    def embed(self, euler_windows: np.ndarray | torch.Tensor, batch_size: int = 512) -> np.ndarray:
        """FGD features (N, latent_dim) float64 of raw windows (N, W, D) in Euler degrees."""
        if isinstance(euler_windows, torch.Tensor):
            x = euler_windows.detach().float()
        else:
            x = torch.as_tensor(np.asarray(euler_windows, dtype=np.float32))
        if len(x) == 0:
            return np.zeros((0, self.config.latent_dim))
        self._check(x)
        was_training = self.training
        self.eval()
        device = self.norm_mean.device
        out = [self.encode(self.normalize(x[a:a + batch_size].to(device))).double().cpu()
               for a in range(0, len(x), batch_size)]
        self.train(was_training)
        return torch.cat(out).numpy()


def reconstruction_loss(out: AEOutput, target: torch.Tensor, velocity_weight: float = 1.0) -> AELoss:
    """L1 between reconstruction and target (both normalised), plus L1 of their frame differences."""
    recon = F.l1_loss(out.recon, target)
    velocity = F.l1_loss(out.recon[:, 1:] - out.recon[:, :-1], target[:, 1:] - target[:, :-1])
    return AELoss(recon + velocity_weight * velocity, recon, velocity)


# ---------------------------------------------------------------------- windows and features


def motion_windows(euler: np.ndarray, window: int = 34, stride: int = 10) -> np.ndarray:
    """Every full `window`-frame window of a (T, D) clip, starting every `stride` frames: (N, window, D).

    A clip shorter than `window` gives no windows (N = 0), as in the dataset cache.
    """
    euler = np.asarray(euler)
    if euler.ndim != 2:
        raise ValueError(f"expected a (T, D) clip, got shape {euler.shape}")
    if window < 1 or stride < 1:
        raise ValueError(f"window and stride must be positive, got {window} and {stride}")
    starts = np.arange(0, euler.shape[0] - window + 1, stride)
    if len(starts) == 0:
        return np.zeros((0, window, euler.shape[1]), dtype=euler.dtype)
    return np.stack([euler[s:s + window] for s in starts])


def motion_features(model: MotionAutoencoder, clips: np.ndarray | Sequence[np.ndarray], stride: int = 10,
                    batch_size: int = 512) -> np.ndarray:
    """FGD features (N, latent_dim) of every stride-`stride` window of each (T, 141) clip (Euler degrees).

    `clips` is one (T, D) array or a sequence of them; clips are windowed separately,
    so no window straddles two takes.
    """
    if isinstance(clips, np.ndarray) and clips.ndim == 2:
        clips = [clips]
    windows = [motion_windows(c, model.config.window, stride) for c in clips]
    windows = [w for w in windows if len(w)]
    if not windows:
        raise ValueError(f"no clip is at least {model.config.window} frames long; FGD needs full windows")
    return model.embed(np.concatenate(windows), batch_size=batch_size)


# ---------------------------------------------------------------------- file format


def save_motion_autoencoder(path: str | Path, model: MotionAutoencoder, extra: dict[str, Any] | None = None) -> None:
    """Weights, normalisation statistics (as buffers) and config in one safetensors file."""
    meta = {"kind": FGD_AE_KIND, "format": FGD_AE_FORMAT, "config": model.config.to_dict(), **(extra or {})}
    save_tensors(path, model.state_dict(), meta)


def load_motion_autoencoder(path: str | Path,
                            device: str | torch.device = "cpu") -> tuple[MotionAutoencoder, dict[str, Any]]:
    """The autoencoder (in eval mode) and the file's metadata; a wrong or broken file is an InputFileError."""
    tensors, meta = load_tensors(path)
    if meta.get("kind") != FGD_AE_KIND:
        raise InputFileError(
            path, f"not an FGD motion autoencoder (kind {meta.get('kind')!r}, expected {FGD_AE_KIND!r}); "
                  "train one with python -m training.fgd_autoencoder")
    if meta.get("format") != FGD_AE_FORMAT:
        raise InputFileError(path, f"FGD autoencoder format {meta.get('format')} is not the supported {FGD_AE_FORMAT}")
    try:
        config = MotionAutoencoderConfig.from_dict(meta["config"])
    except (KeyError, TypeError, ValueError) as e:
        raise InputFileError(path, f"invalid FGD autoencoder configuration ({e})") from None
    model = MotionAutoencoder(config)
    load_state(model, tensors, path, "FGD autoencoder")
    if not (torch.all(torch.isfinite(model.norm_mean)) and torch.all(model.norm_std > 0)):
        raise InputFileError(path, "FGD autoencoder normalisation statistics are not finite and positive")
    return model.to(device).eval(), meta
