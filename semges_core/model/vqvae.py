"""Stage 1: a VQ-VAE motion prior for one body part (hands or body).

Convolutional encoder with dilated residual blocks, one code per frame in the
paper's setting (`down_t = 0`), and a mirrored decoder. Two independent
instances, each with its own codebook, make SemGes' hand and body priors.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
from torch import nn

from semges_core.model.quantizer import Codebook


@dataclass
class VQVAEConfig:
    input_dim: int               # 54 (body, 9 joints x rot6d) or 228 (hands, 38 joints x rot6d)
    width: int = 512             # conv channels
    depth: int = 3               # residual blocks per stage
    code_dim: int = 512          # codebook vector size
    codebook_size: int = 256
    down_t: int = 0              # each code covers 2**down_t frames; the paper uses 0
    ema: bool = True             # codebook learns by moving averages rather than gradients
    ema_decay: float = 0.99
    restart_after: int = 200     # restart an entry unused for this many updates

    def __post_init__(self) -> None:
        for name in ("input_dim", "width", "depth", "code_dim", "codebook_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"VQVAEConfig.{name} must be positive, got {getattr(self, name)}")
        if not 0 <= self.down_t <= 4:
            raise ValueError(f"VQVAEConfig.down_t must be in 0..4, got {self.down_t}")

    def to_dict(self) -> dict:
        return asdict(self)


class ResBlock(nn.Module):
    def __init__(self, width: int, dilation: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.ReLU(),
            nn.Conv1d(width, width, 3, padding=dilation, dilation=dilation),
            nn.ReLU(),
            nn.Conv1d(width, width, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


def _res_stack(width: int, depth: int) -> nn.Sequential:
    # Growing dilation widens the receptive field without downsampling time.
    return nn.Sequential(*[ResBlock(width, 3**i) for i in range(depth)])


class Encoder(nn.Module):
    def __init__(self, c: VQVAEConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv1d(c.input_dim, c.width, 3, padding=1), nn.ReLU()]
        for _ in range(c.down_t):
            layers += [nn.Conv1d(c.width, c.width, 4, stride=2, padding=1), _res_stack(c.width, c.depth)]
        if c.down_t == 0:
            layers.append(_res_stack(c.width, c.depth))
        layers.append(nn.Conv1d(c.width, c.code_dim, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.transpose(1, 2)).transpose(1, 2)  # (B, T, D) -> (B, T', code_dim)


class Decoder(nn.Module):
    def __init__(self, c: VQVAEConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv1d(c.code_dim, c.width, 3, padding=1), nn.ReLU()]
        for _ in range(c.down_t):
            layers += [_res_stack(c.width, c.depth), nn.Upsample(scale_factor=2, mode="nearest"),
                       nn.Conv1d(c.width, c.width, 3, padding=1)]
        if c.down_t == 0:
            layers.append(_res_stack(c.width, c.depth))
        layers += [nn.Conv1d(c.width, c.width, 3, padding=1), nn.ReLU(), nn.Conv1d(c.width, c.input_dim, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.transpose(1, 2)).transpose(1, 2)  # (B, T', code_dim) -> (B, T, D)


class VQVAEOutput(NamedTuple):
    recon: torch.Tensor          # (B, T, input_dim)
    latents: torch.Tensor        # (B, T', code_dim), before quantization
    indices: torch.Tensor        # (B, T')
    commit_loss: torch.Tensor
    codebook_loss: torch.Tensor
    perplexity: torch.Tensor
    usage: torch.Tensor


class MotionVQVAE(nn.Module):
    def __init__(self, config: VQVAEConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.codebook = Codebook(config.codebook_size, config.code_dim, ema=config.ema,
                                 decay=config.ema_decay, restart_after=config.restart_after)
        self.decoder = Decoder(config)

    @property
    def frames_per_code(self) -> int:
        return 2**self.config.down_t

    def _check(self, x: torch.Tensor) -> None:
        if x.ndim != 3 or x.shape[-1] != self.config.input_dim:
            raise ValueError(f"expected motion (B, T, {self.config.input_dim}), got {tuple(x.shape)}")
        if x.shape[1] % self.frames_per_code:
            raise ValueError(f"window length {x.shape[1]} is not a multiple of {self.frames_per_code} frames per code")

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Continuous latents (B, T', code_dim): what stage 2's coherence loss compares text to."""
        self._check(x)
        return self.encoder(x)

    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.codebook.lookup(indices))

    def forward(self, x: torch.Tensor) -> VQVAEOutput:
        z = self.encode(x)
        q = self.codebook(z)
        return VQVAEOutput(self.decoder(q.quantized), z, q.indices, q.commit_loss, q.codebook_loss,
                           q.perplexity, q.usage)
