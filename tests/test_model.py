"""The two-stage model on tiny configurations: shapes, losses, what trains and what stays frozen."""

from __future__ import annotations

import pytest
import torch

from semges_core.model.generator import GeneratorConfig, SemGesGenerator
from semges_core.model.losses import Stage1LossConfig, Stage2LossConfig, stage1_loss, stage2_loss
from semges_core.model.quantizer import Codebook
from semges_core.model.vqvae import MotionVQVAE, VQVAEConfig
from semges_core.motion.rotations import euler_to_rot6d


def tiny_priors(down_t: int = 0):
    torch.manual_seed(0)
    hand = MotionVQVAE(VQVAEConfig(input_dim=228, width=32, depth=1, code_dim=16, codebook_size=16, down_t=down_t))
    body = MotionVQVAE(VQVAEConfig(input_dim=54, width=32, depth=1, code_dim=16, codebook_size=16, down_t=down_t))
    return hand, body


def tiny_generator(down_t: int = 0, **config) -> SemGesGenerator:
    hand, body = tiny_priors(down_t)
    return SemGesGenerator(GeneratorConfig(audio_dim=10, text_dim=8, hidden=32, layers=2, heads=4, n_speakers=3,
                                           **config), hand, body)


def batch(B: int = 3, T: int = 34):
    g = torch.Generator().manual_seed(1)
    return (torch.randn(B, T, 10, generator=g), torch.randn(B, T, 8, generator=g), torch.tensor([0, 2, 1][:B]),
            torch.randn(B, T, 282, generator=g), torch.rand(B, T, generator=g))


@pytest.mark.parametrize("down_t", [0, 1])
def test_vqvae_shapes(down_t):
    hand, body = tiny_priors(down_t)
    x = torch.randn(2, 34, 228)
    out = hand(x)
    assert out.recon.shape == x.shape
    assert out.latents.shape == (2, 34 // 2**down_t, 16)
    assert out.indices.shape == (2, 34 // 2**down_t)
    assert 1.0 <= float(out.perplexity) <= 16.0 and 0.0 < float(out.usage) <= 1.0


def test_vqvae_rejects_bad_input_and_config():
    hand, _ = tiny_priors(1)
    with pytest.raises(ValueError, match="multiple of 2"):
        hand(torch.randn(1, 33, 228))
    with pytest.raises(ValueError, match="expected motion"):
        hand(torch.randn(1, 34, 54))
    with pytest.raises(ValueError, match="down_t"):
        VQVAEConfig(input_dim=54, down_t=7)
    with pytest.raises(ValueError, match="divisible"):
        GeneratorConfig(hidden=30, heads=4)


def test_codebook_restarts_dead_codes_and_reports_usage():
    torch.manual_seed(0)
    cb = Codebook(8, 4, ema=True, restart_after=3)
    data = torch.randn(64, 1, 4)
    cb.train()
    cb(data)  # initialised from data
    cb.embed.data[0] = 100.0  # one code far from everything: never chosen
    for _ in range(4):
        out = cb(data)
    assert float(cb.embed[0].abs().max()) < 10.0, "the dead code was restarted on real latents"
    probs = torch.bincount(out.indices.flatten(), minlength=8).float() / out.indices.numel()
    expected = torch.exp(-(probs * torch.log(probs + 1e-10)).sum())
    assert torch.isclose(out.perplexity, expected)


def test_codebook_straight_through_and_frozen_in_eval():
    cb = Codebook(8, 4, ema=True)
    cb.train()
    cb(torch.randn(32, 1, 4))
    cb.eval()
    before = cb.embed.clone()
    z = torch.randn(5, 2, 4, requires_grad=True)
    out = cb(z)
    out.quantized.sum().backward()
    assert torch.equal(cb.embed, before), "eval mode must not move the codebook"
    assert torch.allclose(z.grad, torch.ones_like(z)), "straight-through: gradient passes unchanged"
    assert torch.allclose(out.quantized.detach(), cb.lookup(out.indices), atol=1e-6)


def test_stage1_loss_terms():
    hand, _ = tiny_priors()
    angles = torch.randn(2, 34, 38, 3) * 30
    x = euler_to_rot6d(angles, "ZXY").reshape(2, 34, 228).float()
    out = hand(x)
    loss = stage1_loss(out, x, Stage1LossConfig())
    assert loss.total.ndim == 0 and all(torch.isfinite(t) for t in loss)
    # A perfect reconstruction leaves only the commitment term.
    perfect = out._replace(recon=x)
    l2 = stage1_loss(perfect, x, Stage1LossConfig())
    assert float(l2.recon) < 1e-6 and float(l2.velocity) == 0.0 and float(l2.acceleration) == 0.0
    assert torch.isclose(l2.total, 0.02 * out.commit_loss, atol=1e-6)


def test_generator_shapes_and_frozen_priors_get_no_gradient():
    g = tiny_generator()
    g.train()
    audio, words, spk, target, score = batch()
    codebooks_before = [g.hand_vq.codebook.embed.clone(), g.body_vq.codebook.embed.clone()]
    out = g(audio, words, spk)
    assert out.motion.shape == (3, 34, 282)
    assert out.hand_latent.shape == (3, 34, 16) and out.text_hand.shape == (3, 34, 16)
    loss = stage2_loss(out, target, score, g.hand_vq, g.body_vq, Stage2LossConfig())
    loss.total.backward()
    for name, p in g.named_parameters():
        if name.startswith(("hand_vq.", "body_vq.")):
            assert p.grad is None and not p.requires_grad, name
    trainable = dict((n, p) for n, p in g.named_parameters() if p.requires_grad)
    assert set(map(id, trainable.values())) == set(map(id, g.trainable_parameters()))
    missing = [n for n, p in trainable.items() if p.grad is None or float(p.grad.abs().sum()) == 0.0]
    assert not missing, f"parameters without gradient: {missing}"
    assert torch.equal(codebooks_before[0], g.hand_vq.codebook.embed), "stage 2 must not update codebooks"
    assert torch.equal(codebooks_before[1], g.body_vq.codebook.embed)
    assert not g.hand_vq.training and not g.body_vq.training


def test_ablation_switches():
    g = tiny_generator()
    audio, words, spk, target, score = batch()
    out = g(audio, words, spk)
    no_coh = stage2_loss(out, target, score, g.hand_vq, g.body_vq, Stage2LossConfig(coherence=False))
    assert float(no_coh.coherence) == 0.0
    no_coh.total.backward()
    assert g.text_to_hand.weight.grad is None, "without coherence the text projection gets no gradient"
    full = stage2_loss(out, target, score, g.hand_vq, g.body_vq, Stage2LossConfig())
    flat = stage2_loss(out, target, score, g.hand_vq, g.body_vq, Stage2LossConfig(relevance=False))
    per_frame = torch.nn.functional.smooth_l1_loss(out.motion, target, beta=0.1, reduction="none").mean(-1)
    assert torch.isclose(flat.relevance, per_frame.mean())
    w = 1 + score
    assert torch.isclose(full.relevance, (per_frame * w).sum() / w.sum())
    assert float(full.coherence.detach()) > 0.0


@pytest.mark.parametrize("positions", [True, False])
def test_coherence_text_with_or_without_positions(positions):
    """The same word said all through a window: the text features the coherence loss scores
    change along the window only through the positional encoding (the words-only ablation
    keeps them constant away from the text encoder's edges); the motion is the same model's."""
    torch.manual_seed(0)
    g = tiny_generator(coherence_positions=positions).eval()
    audio, _, spk, _, _ = batch()
    words = torch.randn(1, 1, 8).expand(3, 34, 8).contiguous()
    with torch.no_grad():
        text = g(audio, words, spk).text_hand  # (3, 34, 16)
    inner = text[:, 5:-5]  # away from the two convolutions' zero padding (4 frames each side)
    spread = float((inner - inner.mean(1, keepdim=True)).abs().max())
    assert (spread > 1e-2) if positions else (spread < 1e-5), spread
    with_pe = tiny_generator(coherence_positions=True)
    with_pe.load_state_dict(g.state_dict())
    with torch.no_grad():
        assert torch.equal(with_pe.eval()(audio, words, spk).motion, g(audio, words, spk).motion)


def test_coherence_is_zero_when_text_matches_motion_latents():
    g = tiny_generator()
    audio, words, spk, target, score = batch()
    out = g(audio, words, spk)
    with torch.no_grad():
        zh = g.hand_vq.encode(target[..., 54:])
        zb = g.body_vq.encode(target[..., :54])
    aligned = out._replace(text_hand=zh * 2.0, text_body=zb * 0.5)  # cosine ignores scale
    loss = stage2_loss(aligned, target, score, g.hand_vq, g.body_vq, Stage2LossConfig())
    assert float(loss.coherence) < 1e-5


def test_generator_rejects_mismatched_inputs():
    g = tiny_generator()
    audio, words, spk, _, _ = batch()
    with pytest.raises(ValueError, match="share"):
        g(audio, words[:, :20], spk)
    with pytest.raises(ValueError, match="speaker index"):
        g(audio, words, torch.tensor([0, 1, 5]))


def test_generator_with_temporal_downsampling():
    g = tiny_generator(down_t=1)
    audio, words, spk, target, score = batch()
    out = g(audio, words, spk)
    assert out.motion.shape == (3, 34, 282) and out.hand_latent.shape == (3, 17, 16)
    stage2_loss(out, target, score, g.hand_vq, g.body_vq, Stage2LossConfig()).total.backward()
