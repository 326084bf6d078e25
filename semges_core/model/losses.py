"""The training objectives of both stages, each returned as a named breakdown.

Stage 1 (per body part): reconstruction on rotation matrices, L1 on velocity and
acceleration, plus the commitment (and, without EMA, codebook) term.
Stage 2 (the paper's L = L_coh + L_rel + L_q):
- L_coh = (1 - cos(Z^h, Z^s)) + (1 - cos(Z^b, Z^s)), text features against the
  frozen encoder latents of the real motion;
- L_q = ||Q^h(Z^f) - Q^h(Z^h)||^2 + ||Q^b(Z^f) - Q^b(Z^b)||^2;
- L_rel = Smooth-L1 between generated and real motion, each frame weighted by
  1 + its annotated semantic score.
Switching `coherence` off or `relevance` off (frames weighted equally) gives the
paper's ablation rows; both off is the "VQ-VAE only" row.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F

from semges_core.motion.rotations import rot6d_to_matrix
from semges_core.model.generator import GeneratorOutput
from semges_core.model.vqvae import MotionVQVAE, VQVAEOutput


@dataclass
class Stage1LossConfig:
    recon: float = 1.0
    velocity: float = 1.0
    acceleration: float = 1.0
    commit: float = 0.02
    codebook: float = 1.0

    def to_dict(self) -> dict:
        return asdict(self)


class Stage1Loss(NamedTuple):
    total: torch.Tensor
    recon: torch.Tensor
    velocity: torch.Tensor
    acceleration: torch.Tensor
    commit: torch.Tensor
    codebook: torch.Tensor


def _matrices(rot6d: torch.Tensor) -> torch.Tensor:
    return rot6d_to_matrix(rot6d.reshape(*rot6d.shape[:-1], -1, 6))  # (B, T, J, 3, 3)


def stage1_loss(out: VQVAEOutput, target: torch.Tensor, w: Stage1LossConfig,
                denormalize=None) -> Stage1Loss:
    """`target` and `out.recon` are (normalised) rot6d (B, T, J*6); `denormalize` undoes the normalisation."""
    pred, real = out.recon, target
    if denormalize is not None:
        pred, real = denormalize(pred), denormalize(real)
    recon = F.l1_loss(_matrices(pred), _matrices(real))
    vel_p, vel_r = out.recon.diff(dim=1), target.diff(dim=1)
    velocity = F.l1_loss(vel_p, vel_r)
    acceleration = F.l1_loss(vel_p.diff(dim=1), vel_r.diff(dim=1))
    total = (w.recon * recon + w.velocity * velocity + w.acceleration * acceleration
             + w.commit * out.commit_loss + w.codebook * out.codebook_loss)
    return Stage1Loss(total, recon, velocity, acceleration, out.commit_loss, out.codebook_loss)


@dataclass
class Stage2LossConfig:
    coherence: bool = True       # off: the "w/o coherence" ablation
    relevance: bool = True       # off: every frame weighs the same ("w/o relevance")
    coherence_weight: float = 1.0
    relevance_weight: float = 1.0
    quantization_weight: float = 1.0
    huber_delta: float = 0.1

    def to_dict(self) -> dict:
        return asdict(self)


class Stage2Loss(NamedTuple):
    total: torch.Tensor
    coherence: torch.Tensor
    relevance: torch.Tensor
    quantization: torch.Tensor


def _cosine_gap(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (1.0 - F.cosine_similarity(a, b, dim=-1)).mean()


def stage2_loss(out: GeneratorOutput, target: torch.Tensor, sem_score: torch.Tensor,
                hand_vq: MotionVQVAE, body_vq: MotionVQVAE, w: Stage2LossConfig) -> Stage2Loss:
    """target (B, T, 282) normalised rot6d (body then hands); sem_score (B, T) in [0, 1]."""
    body_dim = body_vq.config.input_dim
    with torch.no_grad():  # the real motion's latents come from the frozen stage-1 encoders
        zb = body_vq.encode(target[..., :body_dim])
        zh = hand_vq.encode(target[..., body_dim:])
        qb = body_vq.codebook.lookup(body_vq.codebook.nearest(zb.reshape(-1, zb.shape[-1]))).view_as(zb)
        qh = hand_vq.codebook.lookup(hand_vq.codebook.nearest(zh.reshape(-1, zh.shape[-1]))).view_as(zh)
    zero = target.new_zeros(())
    coherence = (_cosine_gap(out.text_hand, zh) + _cosine_gap(out.text_body, zb)) if w.coherence else zero
    quantization = F.mse_loss(out.hand_quantized, qh) + F.mse_loss(out.body_quantized, qb)
    per_frame = F.smooth_l1_loss(out.motion, target, beta=w.huber_delta, reduction="none").mean(-1)  # (B, T)
    weights = 1.0 + sem_score if w.relevance else torch.ones_like(sem_score)
    relevance = (per_frame * weights).sum() / weights.sum()
    total = (w.coherence_weight * coherence + w.relevance_weight * relevance
             + w.quantization_weight * quantization)
    return Stage2Loss(total, coherence, relevance, quantization)
