"""Stage 2: the semantics-driven generator.

Audio features plus speaker identity go through self-attention, then attend to
the temporal text features (cross-attention); the fused features are projected
into the hand and body latent spaces, quantized with the frozen stage-1
codebooks and decoded by the frozen stage-1 decoders. The text features are
also projected into both latent spaces for the semantic-coherence loss.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
from torch import nn

from semges_core.model.vqvae import MotionVQVAE


@dataclass
class GeneratorConfig:
    audio_dim: int = 768        # HuBERT base; the melonset front end has n_mels + 2
    text_dim: int = 300         # FastText; GloVe-50 for the demo
    hidden: int = 256
    layers: int = 12
    heads: int = 8
    mlp_ratio: int = 4
    dropout: float = 0.1
    n_speakers: int = 30
    text_kernel: int = 5        # temporal context of the text encoder, in frames
    # The text features the semantic-coherence loss scores: with the positional encoding
    # added (the paper's fused text stream), or the words alone (an ablation: with positions
    # the loss can fit where a word falls in the window, not only what it means).
    coherence_positions: bool = True

    def __post_init__(self) -> None:
        if self.hidden % self.heads:
            raise ValueError(f"hidden ({self.hidden}) must be divisible by heads ({self.heads})")
        for name in ("audio_dim", "text_dim", "hidden", "layers", "heads", "n_speakers"):
            if getattr(self, name) < 1:
                raise ValueError(f"GeneratorConfig.{name} must be positive")
        if self.text_kernel % 2 == 0:
            raise ValueError("text_kernel must be odd so the text stays aligned with the frames")

    def to_dict(self) -> dict:
        return asdict(self)


def sinusoidal_positions(n: int, dim: int, device: torch.device | None = None) -> torch.Tensor:
    pos = torch.arange(n, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(n, dim, device=device)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return pe  # (n, dim)


class TextEncoder(nn.Module):
    """Temporal convolutions over per-frame word vectors: a word's gesture spans neighbours."""

    def __init__(self, c: GeneratorConfig) -> None:
        super().__init__()
        k = c.text_kernel
        self.net = nn.Sequential(
            nn.Conv1d(c.text_dim, c.hidden, k, padding=k // 2), nn.GELU(),
            nn.Conv1d(c.hidden, c.hidden, k, padding=k // 2), nn.GELU(),
            nn.Conv1d(c.hidden, c.hidden, 1),
        )

    def forward(self, words: torch.Tensor) -> torch.Tensor:
        return self.net(words.transpose(1, 2)).transpose(1, 2)  # (B, T, text_dim) -> (B, T, hidden)


class FusionLayer(nn.Module):
    """Self-attention over audio+speaker, cross-attention to text, MLP (pre-norm)."""

    def __init__(self, c: GeneratorConfig) -> None:
        super().__init__()
        h = c.hidden
        self.norm1, self.norm2, self.norm3, self.norm_text = (nn.LayerNorm(h) for _ in range(4))
        self.self_attn = nn.MultiheadAttention(h, c.heads, dropout=c.dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(h, c.heads, dropout=c.dropout, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(h, h * c.mlp_ratio), nn.GELU(), nn.Dropout(c.dropout),
                                 nn.Linear(h * c.mlp_ratio, h))
        self.drop = nn.Dropout(c.dropout)

    def forward(self, x: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        y = self.norm1(x)
        x = x + self.drop(self.self_attn(y, y, y, need_weights=False)[0])
        t = self.norm_text(text)
        x = x + self.drop(self.cross_attn(self.norm2(x), t, t, need_weights=False)[0])
        return x + self.drop(self.mlp(self.norm3(x)))


class GeneratorOutput(NamedTuple):
    motion: torch.Tensor          # (B, T, 282) normalised rot6d, body (54) then hands (228)
    hand_latent: torch.Tensor     # (B, T', D_h) Z^f projected to the hand space, before quantization
    body_latent: torch.Tensor     # (B, T', D_b)
    hand_quantized: torch.Tensor  # straight-through quantized latents
    body_quantized: torch.Tensor
    hand_indices: torch.Tensor
    body_indices: torch.Tensor
    text_hand: torch.Tensor       # (B, T', D_h) text features in the hand latent space (coherence)
    text_body: torch.Tensor       # (B, T', D_b)


class SemGesGenerator(nn.Module):
    def __init__(self, config: GeneratorConfig, hand_vq: MotionVQVAE, body_vq: MotionVQVAE) -> None:
        super().__init__()
        if hand_vq.frames_per_code != body_vq.frames_per_code:
            raise ValueError("hand and body priors must use the same temporal downsampling")
        self.config = config
        c = config
        self.audio_in = nn.Sequential(nn.Linear(c.audio_dim, c.hidden), nn.GELU(), nn.Linear(c.hidden, c.hidden))
        self.text_encoder = TextEncoder(c)
        self.speaker = nn.Embedding(c.n_speakers, c.hidden)
        self.speaker_hand = nn.Embedding(c.n_speakers, c.hidden)  # one table per body part
        self.speaker_body = nn.Embedding(c.n_speakers, c.hidden)
        self.layers = nn.ModuleList(FusionLayer(c) for _ in range(c.layers))
        self.norm = nn.LayerNorm(c.hidden)
        dh, db = hand_vq.config.code_dim, body_vq.config.code_dim
        self.to_hand = nn.Linear(c.hidden, dh)
        self.to_body = nn.Linear(c.hidden, db)
        self.text_to_hand = nn.Linear(c.hidden, dh)
        self.text_to_body = nn.Linear(c.hidden, db)
        self.pool = nn.AvgPool1d(hand_vq.frames_per_code) if hand_vq.frames_per_code > 1 else None
        # The stage-1 priors are frozen: only their codebooks and decoders are used.
        self.hand_vq, self.body_vq = hand_vq, body_vq
        for vq in (hand_vq, body_vq):
            vq.requires_grad_(False)
            vq.eval()

    def train(self, mode: bool = True) -> "SemGesGenerator":
        super().train(mode)
        self.hand_vq.eval()
        self.body_vq.eval()
        return self

    def trainable_parameters(self) -> list[nn.Parameter]:
        frozen = {id(p) for p in list(self.hand_vq.parameters()) + list(self.body_vq.parameters())}
        return [p for p in self.parameters() if id(p) not in frozen]

    def _to_code_rate(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool is None:
            return x
        return self.pool(x.transpose(1, 2)).transpose(1, 2)  # (B, T, C) -> (B, T', C)

    def fuse(self, audio: torch.Tensor, words: torch.Tensor, speaker: torch.Tensor):
        """The generator up to the latent projections: (hand latent, body latent, text features)."""
        B, T, _ = audio.shape
        if words.shape[:2] != (B, T):
            raise ValueError(f"audio {tuple(audio.shape)} and words {tuple(words.shape)} must share (B, T)")
        if speaker.shape != (B,):
            raise ValueError(f"speaker must have shape ({B},), got {tuple(speaker.shape)}")
        if int(speaker.max()) >= self.config.n_speakers or int(speaker.min()) < 0:
            raise ValueError(f"speaker index out of range 0..{self.config.n_speakers - 1}")
        return self.fuse_unchecked(audio, words, speaker)

    def fuse_unchecked(self, audio: torch.Tensor, words: torch.Tensor, speaker: torch.Tensor):
        """`fuse` without its data-dependent input checks, so the ONNX exporter can trace it."""
        T = audio.shape[1]
        pe = sinusoidal_positions(T, self.config.hidden, audio.device).to(audio.dtype)
        x = self.audio_in(audio) + pe + self.speaker(speaker)[:, None]  # (B, T, H)
        words_only = self.text_encoder(words)  # (B, T, H)
        text = words_only + pe
        for layer in self.layers:
            x = layer(x, text)
        fused = self._to_code_rate(self.norm(x))  # (B, T', H)
        hand_latent = self.to_hand(fused + self.speaker_hand(speaker)[:, None])
        body_latent = self.to_body(fused + self.speaker_body(speaker)[:, None])
        return hand_latent, body_latent, self._to_code_rate(text if self.config.coherence_positions else words_only)

    def decode(self, hand_quantized: torch.Tensor, body_quantized: torch.Tensor) -> torch.Tensor:
        """Quantized latents through the frozen decoders -> (B, T, 282), body first."""
        return torch.cat([self.body_vq.decoder(body_quantized), self.hand_vq.decoder(hand_quantized)], -1)

    def forward(self, audio: torch.Tensor, words: torch.Tensor, speaker: torch.Tensor) -> GeneratorOutput:
        """audio (B, T, audio_dim), words (B, T, text_dim), speaker (B,) -> gestures."""
        hand_latent, body_latent, text_c = self.fuse(audio, words, speaker)
        hq = self.hand_vq.codebook(hand_latent, update=False)
        bq = self.body_vq.codebook(body_latent, update=False)
        return GeneratorOutput(
            self.decode(hq.quantized, bq.quantized), hand_latent, body_latent, hq.quantized, bq.quantized,
            hq.indices, bq.indices, self.text_to_hand(text_c), self.text_to_body(text_c),
        )
