"""Nearest-neighbour vector quantization with a codebook that stays alive.

SemGes' motion priors use one code per frame from a 256-entry codebook. Plain
VQ-VAE training lets most entries die (never chosen, never updated), so the
codebook is updated by exponential moving averages of the vectors assigned to
each entry, and entries unused for a while are restarted on random encoder
outputs. Usage and perplexity are reported so a dead codebook is visible in logs.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


class QuantizerOutput(NamedTuple):
    quantized: torch.Tensor      # (B, T, D), straight-through: gradients reach the input
    indices: torch.Tensor        # (B, T) long
    commit_loss: torch.Tensor    # ||z - sg(q)||^2, pulls the encoder towards its codes
    codebook_loss: torch.Tensor  # ||sg(z) - q||^2, zero when the codebook learns by EMA
    perplexity: torch.Tensor     # exp(entropy of code usage in this batch)
    usage: torch.Tensor          # fraction of codebook entries used in this batch


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def _all_reduce(t: torch.Tensor) -> torch.Tensor:
    if _distributed():
        dist.all_reduce(t)
    return t


def _from_rank0(t: torch.Tensor) -> torch.Tensor:
    """Every replica takes rank 0's tensor, so codebooks stay identical under DDP."""
    t = t.contiguous()
    if _distributed():
        dist.broadcast(t, 0)
    return t


class Codebook(nn.Module):
    """`size` code vectors of `dim` values, learnt by EMA (or by gradient when ema=False)."""

    def __init__(self, size: int, dim: int, ema: bool = True, decay: float = 0.99,
                 restart_after: int = 200, eps: float = 1e-5) -> None:
        super().__init__()
        if size < 2 or dim < 1:
            raise ValueError(f"codebook needs size >= 2 and dim >= 1, got {size} x {dim}")
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.size, self.dim, self.ema, self.decay, self.eps = size, dim, ema, decay, eps
        self.restart_after = restart_after
        embed = torch.randn(size, dim) * 0.1
        if ema:
            self.register_buffer("embed", embed)
            self.register_buffer("ema_count", torch.ones(size))
            self.register_buffer("ema_sum", embed.clone())
        else:
            self.embed = nn.Parameter(embed)
        self.register_buffer("steps_unused", torch.zeros(size, dtype=torch.long))
        self.register_buffer("initialised", torch.tensor(False))

    def distances(self, z: torch.Tensor) -> torch.Tensor:
        """Squared distance from each latent (..., D) to every code: (..., size), in float32."""
        embed = self.embed.float()
        z = z.float()
        return z.pow(2).sum(-1, keepdim=True) - 2 * z @ embed.t() + embed.pow(2).sum(1)

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """Index of the closest code for each row of z (N, D)."""
        return self.distances(z).argmin(dim=-1)

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        return F.embedding(indices, self.embed)

    @torch.no_grad()
    def _init_from(self, flat: torch.Tensor) -> None:
        # k-means++ would be nicer; random encoder outputs already avoid the dead start.
        picks = flat[torch.randint(0, flat.shape[0], (self.size,), device=flat.device)]
        picks = _from_rank0(picks.clone())
        self.embed.data.copy_(picks)
        if self.ema:
            self.ema_sum.copy_(picks)
            self.ema_count.fill_(1.0)
        self.initialised.fill_(True)

    @torch.no_grad()
    def _update(self, flat: torch.Tensor, indices: torch.Tensor) -> None:
        onehot = F.one_hot(indices, self.size).type(flat.dtype)  # (N, K)
        counts = _all_reduce(onehot.sum(0))
        if self.ema:
            sums = _all_reduce(onehot.t() @ flat)  # (K, D)
            self.ema_count.mul_(self.decay).add_(counts, alpha=1 - self.decay)
            self.ema_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
            n = self.ema_count.sum()
            smoothed = (self.ema_count + self.eps) / (n + self.size * self.eps) * n
            self.embed.data.copy_(self.ema_sum / smoothed[:, None])
        self.steps_unused.add_(1)
        self.steps_unused[counts > 0] = 0
        dead = self.steps_unused >= self.restart_after
        if dead.any():
            rows = torch.randint(0, flat.shape[0], (int(dead.sum()),), device=flat.device)
            fresh = _from_rank0(flat[rows].clone())
            self.embed.data[dead] = fresh
            if self.ema:
                self.ema_sum[dead] = fresh
                self.ema_count[dead] = 1.0
            self.steps_unused[dead] = 0

    def forward(self, z: torch.Tensor, update: bool | None = None) -> QuantizerOutput:
        """Quantize z (B, T, D); the codebook learns only in training mode (or when update=True)."""
        if z.shape[-1] != self.dim:
            raise ValueError(f"expected latents with {self.dim} channels, got {z.shape[-1]}")
        update = self.training if update is None else update
        flat = z.reshape(-1, self.dim)  # (B*T, D)
        if update and not bool(self.initialised):
            self._init_from(flat.detach().float())
        indices = self.nearest(flat.detach())
        quantized = self.lookup(indices).view_as(z)
        if update:
            self._update(flat.detach().float(), indices)
        commit = F.mse_loss(z, quantized.detach())
        codebook = F.mse_loss(z.detach(), quantized) if not self.ema else z.new_zeros(())
        probs = torch.bincount(indices, minlength=self.size).float() / max(indices.numel(), 1)
        perplexity = torch.exp(-(probs * torch.log(probs + 1e-10)).sum())
        usage = (probs > 0).float().mean()
        quantized = z + (quantized - z).detach()  # straight-through estimator
        return QuantizerOutput(quantized, indices.view(z.shape[:-1]), commit, codebook, perplexity, usage)
