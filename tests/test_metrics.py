"""The evaluation metrics against hand-computed values and independent computations."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from semges_core.speech.audio import load_audio, write_wav
from semges_core.evaluation.metrics import (
    BC_JOINT_SETS,
    audio_beats,
    beat_alignment,
    beat_consistency,
    feature_statistics,
    fgd,
    fgd_from_features,
    frechet_distance,
    joint_positions,
    l1_diversity,
    motion_beats,
    random_pair_diversity,
    srgr,
    srgr_hits,
    srgr_raw,
    wrap_degrees,
)
from semges_core.model.motion_autoencoder import MotionAutoencoder, MotionAutoencoderConfig
from semges_core.motion.skeleton import UPPER_BODY_JOINTS

# ============================================================================ FGD


def _random_cov(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.standard_normal((d, 2 * d))
    return a @ a.T / (2 * d) + 0.1 * np.eye(d)


def _psd_sqrt(s: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def _frechet_by_eigh(mu1, s1, mu2, s2) -> float:
    """Independent: Tr sqrt(S1 S2) = Tr sqrt(S1^1/2 S2 S1^1/2), a symmetric PSD matrix."""
    r1 = _psd_sqrt(s1)
    inner = np.linalg.eigvalsh(r1 @ s2 @ r1)
    root_trace = np.sum(np.sqrt(np.clip(inner, 0, None)))
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * root_trace)


def test_frechet_distance_matches_an_eigendecomposition():
    rng = np.random.default_rng(0)
    for d in (1, 3, 8):
        mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
        s1, s2 = _random_cov(rng, d), _random_cov(rng, d)
        expected = _frechet_by_eigh(mu1, s1, mu2, s2)
        assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8, abs=1e-10)


def test_frechet_distance_closed_forms():
    # Diagonal covariances: |mu1 - mu2|^2 + sum (sqrt(a) - sqrt(b))^2.
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    expected = 1 + 4 + (1 + 1 + 0)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-12)
    # One dimension, scalars accepted: N(0, 1) vs N(1, 4) -> 1 + 1 + 4 - 2 * 2 = 2.
    assert frechet_distance(0.0, 1.0, 1.0, 4.0) == pytest.approx(2.0, rel=1e-12)


def test_frechet_distance_of_identical_inputs_is_zero():
    rng = np.random.default_rng(1)
    f = rng.standard_normal((50, 6))
    mu, s = feature_statistics(f)
    assert frechet_distance(mu, s, mu, s) == pytest.approx(0.0, abs=1e-9)
    assert fgd_from_features(f, f.copy()) == pytest.approx(0.0, abs=1e-9)


def test_singular_covariances_stay_finite():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((4, 10)), rng.standard_normal((4, 10)) + 1.0  # 4 samples in 10-d: rank 3
    value = fgd_from_features(a, b)
    assert np.isfinite(value) and value > 0
    assert fgd_from_features(a, a) == pytest.approx(0.0, abs=1e-6)
    # All-zero covariances (every feature vector equal): only the means differ.
    z1, z2 = np.zeros((5, 3)), np.ones((5, 3))
    assert fgd_from_features(z1, z2) == pytest.approx(3.0, abs=1e-5)


def test_frechet_distance_rejects_bad_input():
    with pytest.raises(ValueError, match="shapes"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="imaginary"):
        frechet_distance(np.zeros(2), np.diag([1.0, -1.0]), np.zeros(2), np.eye(2))  # not a covariance
    with pytest.raises(ValueError, match="at least 2"):
        feature_statistics(np.zeros((1, 3)))


def test_feature_statistics_by_hand():
    mu, s = feature_statistics(np.array([[0.0, 0.0], [2.0, 4.0]]))
    np.testing.assert_allclose(mu, [1.0, 2.0])
    np.testing.assert_allclose(s, [[2.0, 4.0], [4.0, 8.0]])  # ddof 1


def _smooth_clips(rng: np.random.Generator, n: int, frames: int) -> list[np.ndarray]:
    t = np.linspace(0, 1, frames)[:, None]
    return [10 * np.sin(2 * np.pi * (rng.uniform(0.5, 2, 141) * t + rng.uniform(0, 1, 141))) for _ in range(n)]


def test_fgd_of_identical_motion_is_zero_and_of_different_motion_positive():
    torch.manual_seed(0)
    model = MotionAutoencoder(MotionAutoencoderConfig(width=8, latent_dim=16)).eval()
    rng = np.random.default_rng(3)
    real = _smooth_clips(rng, 6, 64)  # 4 windows each at stride 10
    assert fgd(model, real, [c.copy() for c in real]) == pytest.approx(0.0, abs=1e-6)
    other = [c * 2 + 5 for c in real]
    assert fgd(model, other, real) > 1e-3


# ============================================================================ SRGR


def test_srgr_by_hand():
    gen = np.zeros((2, 6))
    real = np.array([
        [1.0, 1.0, 1.0, 2.0, 2.0, 0.0],     # joint 0: error 3 (hit); joint 1: error 4 (not below 4: miss)
        [359.0, 0.0, 0.0, 0.0, 0.0, 0.0],   # joint 0: 359 wraps to -1, error 1 (hit); joint 1: hit
    ])
    w = np.array([0.5, 1.0])
    np.testing.assert_array_equal(srgr_hits(gen, real), [[True, False], [True, True]])
    assert srgr_raw(gen, real, w) == pytest.approx((0.5 + 1.0 + 1.0) / (2 * 2))
    assert srgr(gen, real, w) == pytest.approx(2.5 / (2 * 1.5))
    assert srgr(gen, real, w, threshold=4.5) == pytest.approx(1.0)


def test_srgr_of_identical_motion_is_one():
    rng = np.random.default_rng(4)
    x = rng.uniform(-180, 180, (40, 141))
    w = rng.uniform(0, 1, 40)
    assert srgr(x, x.copy(), w) == pytest.approx(1.0)
    assert srgr_raw(x, x, w) == pytest.approx(w.mean())
    # The same rotation written 360 degrees apart is a hit.
    assert srgr(x, x + 360.0, w) == pytest.approx(1.0)


def test_srgr_without_semantic_frames_is_nan_with_a_warning():
    x = np.zeros((3, 6))
    with pytest.warns(RuntimeWarning, match="semantic weight"):
        assert np.isnan(srgr(x, x, np.zeros(3)))
    with pytest.raises(ValueError, match="one value per frame"):
        srgr(x, x, np.ones(2))


def test_wrap_degrees():
    np.testing.assert_allclose(wrap_degrees([-180.0, 180.0, 190.0, -190.0, 540.0, 0.0]),
                               [180.0, 180.0, -170.0, 170.0, 180.0, 0.0])


# ============================================================================ Diversity


def test_l1_diversity_by_hand():
    x = np.array([[0.0, 0.0], [2.0, 4.0]])  # mean (1, 2): deviations sum to 6 over 2 frames
    assert l1_diversity(x) == pytest.approx(3.0)
    still = np.full((3, 2), 5.0)
    assert l1_diversity([x, still]) == pytest.approx(6.0 / 5)  # pooled over every frame


def test_random_pair_diversity_by_hand():
    f = np.array([[0.0, 0.0], [1.0, 2.0], [3.0, 3.0]])  # pair distances 3, 6, 3
    assert random_pair_diversity(f, n_pairs=None) == pytest.approx(4.0)
    sampled = random_pair_diversity(f, n_pairs=500, seed=5)
    assert sampled == random_pair_diversity(f, n_pairs=500, seed=5)  # seeded
    assert 3.0 < sampled < 6.0 and sampled == pytest.approx(4.0, abs=0.4)  # never a clip with itself
    assert random_pair_diversity(np.array([[0.0], [2.0]]), n_pairs=10) == pytest.approx(2.0)


# ============================================================================ BC

SR, FPS, SECONDS = 16000, 15.0, 10.0
CLICKS = np.array([1.0, 2.2, 3.6, 4.6, 6.0, 7.4, 8.4])  # uneven, so a shifted motion misses them all


def _click_wav(path) -> np.ndarray:
    rng = np.random.default_rng(0)
    y = 1e-4 * rng.standard_normal(int(SECONDS * SR))  # a faint noise floor
    n = int(0.01 * SR)
    for t in CLICKS:
        s = int(round(t * SR))
        y[s:s + n] += 0.8 * rng.standard_normal(n) * np.hanning(n)
    write_wav(path, y, SR)
    return load_audio(path, SR)


def _arm_motion(speed_minima: np.ndarray, rate: float = 60.0) -> np.ndarray:
    """(T, 141): the right upper arm swings about Z with angular speed rate * (distance to the
    nearest of `speed_minima`), reversing there, so the wrist's speed has minima exactly there."""
    dt = 1 / 1500
    t = np.arange(0, SECONDS, dt)
    dist = np.min(np.abs(t[:, None] - speed_minima[None]), axis=1)
    direction = np.where(np.searchsorted(speed_minima, t) % 2 == 0, 1.0, -1.0)
    theta = np.cumsum(direction * rate * dist) * dt  # degrees
    frames = np.round(np.arange(int(SECONDS * FPS)) / FPS / dt).astype(int)
    euler = np.zeros((len(frames), 141))
    euler[:, 3 * UPPER_BODY_JOINTS.index("RArm")] = theta[frames]  # first angle of ZXY: about Z
    return euler


@pytest.fixture(scope="module")
def clicks(tmp_path_factory) -> np.ndarray:
    return _click_wav(tmp_path_factory.mktemp("bc") / "clicks.wav")


def test_audio_beats_find_the_clicks(clicks):
    beats = audio_beats(clicks, SR)
    assert len(beats) == len(CLICKS)
    # Backtracking to the RMS minimum moves an onset up to a few 32 ms hops earlier.
    assert np.all(beats <= CLICKS + 0.04) and np.all(beats >= CLICKS - 0.2)


def test_motion_beats_are_the_speed_minima():
    (beats,) = motion_beats(joint_positions(_arm_motion(CLICKS), ["RHand"], FPS), FPS)
    np.testing.assert_allclose(beats, CLICKS, atol=1e-9)
    # The wrist stays on a circle around the shoulder joint while the arm swings.
    pos = joint_positions(_arm_motion(CLICKS), ["RArm", "RHand"], FPS)
    radius = np.linalg.norm(pos[:, 1] - pos[:, 0], axis=-1)
    np.testing.assert_allclose(radius, radius[0], rtol=1e-9)


def test_beat_alignment_by_hand():
    expected = (np.exp(-0.3**2 / (2 * 0.3**2)) + np.exp(-0.7**2 / (2 * 0.3**2))) / 2
    assert beat_alignment([1.0, 2.0], [1.3], sigma=0.3) == pytest.approx(expected)
    assert beat_alignment([1.0, 2.0], [1.0, 2.0, 5.0]) == pytest.approx(1.0)
    assert beat_alignment([1.0], []) == 0.0
    with pytest.warns(RuntimeWarning, match="no audio beats"):
        assert np.isnan(beat_alignment([], [1.0]))


def test_beat_consistency_with_real_onsets(clicks):
    aligned = beat_consistency(_arm_motion(CLICKS), FPS, clicks, SR)
    shifted = beat_consistency(_arm_motion(CLICKS + 0.5), FPS, clicks, SR)
    assert aligned > 0.9
    assert shifted < 0.4 and shifted < aligned - 0.5
    # Upper body (EMAGE): BC per joint, averaged; only RArm1 and RHand move here, the rest score 0.
    upper = beat_consistency(_arm_motion(CLICKS), FPS, clicks, SR, joints="upper_body")
    per_joint = beat_consistency(_arm_motion(CLICKS), FPS, clicks, SR, joints=["RArm1", "RHand"])
    assert upper == pytest.approx(per_joint * 2 / len(BC_JOINT_SETS["upper_body"]))


def test_beat_consistency_edge_cases(clicks):
    still = np.zeros((150, 141))
    assert beat_consistency(still, FPS, clicks, SR) == 0.0  # no motion beats at all
    silence = np.zeros(int(SECONDS * SR), dtype=np.float32)
    with pytest.warns(RuntimeWarning, match="no audio beats"):
        assert np.isnan(beat_consistency(_arm_motion(CLICKS), FPS, silence, SR))
    with pytest.raises(ValueError, match="joint set"):
        beat_consistency(still, FPS, clicks, SR, joints="left_pinky")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # min_speed only drops minima; no warning for an ordinary take
        slow = beat_consistency(_arm_motion(CLICKS), FPS, clicks, SR, min_speed=1e6)
    assert slow == 0.0
