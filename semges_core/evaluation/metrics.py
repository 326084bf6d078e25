"""The evaluation metrics of the BEAT baselines: FGD, BC, Diversity (L1div) and SRGR.

Each metric is a plain function on numpy arrays, computed the way the BEAT
baselines compute it (docs: /work/shared/docs/semges-reference.md section 4), so our
numbers can stand next to the paper's table. Where we deviate, it is said here.

Motion is BEAT's pose vector: (T, 141) = 47 upper-body joints (skeleton.UPPER_BODY_JOINTS)
x 3 Euler angles in degrees, each joint in its skeleton's rotation order, at `fps`.

FGD (lower is better)
    Frechet distance ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)) between the
    feature statistics (mean, covariance with ddof 1) of generated and real motion;
    features come from `MotionAutoencoder` (34-frame windows at stride 10 -> 300-d),
    trained on the real training split (`python -m training.fgd_autoencoder`).
    The matrix square root is scipy's `sqrtm`; when the product is singular (fewer
    windows than feature dimensions, say) or the root is not finite or not accurate,
    eps * I is added to both covariances and the distance between those regularised
    Gaussians is returned (so identical inputs still give exactly 0). A tiny imaginary
    part is dropped; a large one raises ValueError. Round-off below 0 is clamped to 0.

BC, beat consistency (higher is better)
    Audio beats: librosa onset detection (onset strength, hop 512) with the onsets
    backtracked to the preceding minimum of the RMS energy, converted to seconds
    with the audio's real sample rate (BEAT's code assumes 22050 Hz there; a bug).
    Onsets that backtrack to the same frame count once (BEAT counts them twice).
    Motion beats: local minima (scipy argrelextrema, np.less, `order` frames each
    side, default 2) of a joint's speed, the norm of the velocity of its world
    POSITION from forward kinematics of the motion on the BEAT skeleton (root fixed).
    Velocity is the central difference (p[t+1] - p[t-1]) / 2dt, one-sided at the
    ends, so a minimum at frame t is at time t / fps with no half-frame bias (BEAT
    uses the forward difference p[t+1] - p[t] at time t / fps).
    BC = mean over audio beats a of exp(-min_m (m - a)^2 / (2 sigma^2)), sigma 0.3 s.
    Joint sets: "right_wrist" (BEAT's: the RHand joint; the default and what we report)
    or "upper_body" (EMAGE's: 13 joints, spine to wrists, BC per joint then averaged).
    No motion beats for a joint: its BC is 0 (no beat is infinitely far away).
    No audio beats: BC is undefined; `nan` is returned with a RuntimeWarning, and
    a test-set BC is then the mean over takes ignoring nan (np.nanmean), as the BEAT
    code averages per-take values.

Diversity (higher is better)
    `l1_diversity` is BEAT's L1div and what we report as "Diversity":
    sum_t sum_d |x_td - mean_t x_d| / T on the 141-d Euler degrees, the mean taken
    per clip, pooled over every frame of a set of clips.
    `random_pair_diversity` is the other papers' form: mean L1 distance between the
    features of random pairs of different clips (seeded).

SRGR, semantic-relevant gesture recall (higher is better)
    hit_tj = 1 when sum over joint j's 3 angles of |generated - real| (each difference
    wrapped to (-180, 180], degrees) is below 4 degrees.
    `srgr_raw` is BEAT's formula sum_t sum_j hit_tj w_t / (T J) (BEAT's code then
    multiplies by 1/0.165, the mean semantic score of its test set).
    `srgr` (what we report) divides by sum_t w_t / T instead, a semantic-weighted hit
    rate: a perfect match scores exactly 1 on any data. w_t is the frame's semantic
    relevance score (the cache's `sem_score`, 0 outside annotated gestures), as BEAT.
    For a test set, concatenate the frames of every take (BEAT accumulates per frame).
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
from scipy import linalg
from scipy.signal import argrelextrema

from semges_core.model.motion_autoencoder import MotionAutoencoder, motion_features
from semges_core.motion.clip import Motion
from semges_core.motion.skeleton import BEAT_SKELETON, Skeleton

# ============================================================================ FGD


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and covariance (D, D) (ddof 1, as the BEAT code's np.cov) of (N, D) features."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2:
        raise ValueError(f"features must have shape (N, D), got {f.shape}")
    if f.shape[0] < 2:
        raise ValueError(f"need at least 2 feature vectors for a covariance, got {f.shape[0]}")
    if not np.all(np.isfinite(f)):
        raise ValueError("features contain NaN or infinite values")
    return f.mean(axis=0), np.atleast_2d(np.cov(f, rowvar=False))


def _sqrtm(a: np.ndarray) -> tuple[np.ndarray, bool]:
    """scipy's sqrtm, and whether it is trustworthy (finite, accurate, not flagged singular)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        root = linalg.sqrtm(a)
    flagged = any("singular" in str(w.message).lower() for w in caught)
    if flagged or not np.all(np.isfinite(root)):
        return root, False
    scale = max(np.linalg.norm(a), np.finfo(float).tiny)
    return root, bool(np.linalg.norm(root @ root - a) / scale < 1e-6)


def frechet_distance(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray, eps: float = 1e-6,
                     imag_tol: float = 1e-3) -> float:
    """Frechet distance between N(mu1, s1) and N(mu2, s2); see the module docstring for the stabilisation."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(s1, np.float64)), np.atleast_2d(np.asarray(s2, np.float64))
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(f"shapes do not match: mu1 {mu1.shape}, s1 {s1.shape}, mu2 {mu2.shape}, s2 {s2.shape}")
    if not all(np.all(np.isfinite(x)) for x in (mu1, mu2, s1, s2)):
        raise ValueError("means and covariances must be finite")
    diff = mu1 - mu2
    covmean, ok = _sqrtm(s1 @ s2)
    if not ok:
        # Regularise both Gaussians and measure the distance between those, consistently.
        s1, s2 = s1 + eps * np.eye(d), s2 + eps * np.eye(d)
        covmean, _ = _sqrtm(s1 @ s2)
        if not np.all(np.isfinite(covmean)):
            raise ValueError("the matrix square root of the covariance product is not finite even with eps * I added")
    if np.iscomplexobj(covmean):
        imag = np.max(np.abs(covmean.imag)) if covmean.size else 0.0
        if imag > imag_tol * max(1.0, float(np.max(np.abs(covmean.real)))):
            raise ValueError(f"the matrix square root has a large imaginary component ({imag:.3g}); "
                             "are the covariances positive semi-definite?")
        covmean = covmean.real
    value = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))
    return max(value, 0.0)


def fgd_from_features(generated: np.ndarray, real: np.ndarray) -> float:
    """Frechet distance between the statistics of two (N, D) feature sets."""
    return frechet_distance(*feature_statistics(generated), *feature_statistics(real))


def fgd(model: MotionAutoencoder, generated: np.ndarray | Sequence[np.ndarray],
        real: np.ndarray | Sequence[np.ndarray], stride: int = 10) -> float:
    """FGD of generated vs real clips ((T, 141) Euler degrees each), windows at `stride` frames."""
    return fgd_from_features(motion_features(model, generated, stride), motion_features(model, real, stride))


# ============================================================================ BC

# EMAGE's upper-body set (SMPL-X joints 3, 6, 9, 12-21) under BEAT's names: spine, neck,
# head, collars, shoulders, elbows and wrists. Hips is fixed in our 141-d vector, so
# Spine itself never moves and is left out (SMPL-X's pelvis child spine1 ~ Spine1 here).
BC_JOINT_SETS: dict[str, tuple[str, ...]] = {
    "right_wrist": ("RHand",),
    "upper_body": ("Spine1", "Spine2", "Spine3", "Neck", "Head", "RShoulder", "LShoulder",
                   "RArm", "LArm", "RArm1", "LArm1", "RHand", "LHand"),
}


def audio_beats(audio: np.ndarray, sample_rate: int, hop_length: int = 512) -> np.ndarray:
    """Onset times in seconds (sorted, distinct): librosa onset detection, backtracked on the RMS energy."""
    import librosa  # slow to import; only BC needs it

    y = np.asarray(audio, dtype=np.float32)
    if y.ndim != 1:
        raise ValueError(f"audio must be mono with shape (n,), got {y.shape}")
    if len(y) == 0:
        return np.zeros(0)
    envelope = librosa.onset.onset_strength(y=y, sr=sample_rate, hop_length=hop_length)
    onsets = librosa.onset.onset_detect(onset_envelope=envelope, sr=sample_rate, hop_length=hop_length,
                                        backtrack=False)
    if len(onsets) == 0:
        return np.zeros(0)
    rms = librosa.feature.rms(S=np.abs(librosa.stft(y=y, hop_length=hop_length)), hop_length=hop_length)[0]
    onsets = np.unique(librosa.onset.onset_backtrack(onsets, rms))  # two onsets of one sound meet here
    return librosa.frames_to_time(onsets, sr=sample_rate, hop_length=hop_length)


def joint_positions(euler: np.ndarray, joints: Sequence[str], fps: float = 15.0,
                    skeleton: Skeleton | None = None) -> np.ndarray:
    """World positions (T, J, 3), cm, of `joints` for a (T, 141) upper-body Euler motion.

    Joints outside the 141-d vector keep their rest rotation and the root stays at its
    rest position (BEAT's pose vector has no root motion).
    """
    motion = Motion.from_upper_body_euler(np.asarray(euler, dtype=np.float64), fps,
                                          skeleton=skeleton or BEAT_SKELETON)
    return motion.positions()[:, motion.skeleton.indices(tuple(joints))]


def joint_speed(positions: np.ndarray, fps: float) -> np.ndarray:
    """Speed (T, J) in units per second of positions (T, J, 3): central differences, one-sided at the ends."""
    p = np.asarray(positions, dtype=np.float64)
    if p.ndim != 3 or p.shape[-1] != 3:
        raise ValueError(f"positions must have shape (T, J, 3), got {p.shape}")
    if p.shape[0] < 2:
        return np.zeros(p.shape[:2])
    return np.linalg.norm(np.gradient(p, 1.0 / fps, axis=0), axis=-1)


def motion_beats(positions: np.ndarray, fps: float, order: int = 2, min_speed: float = 0.0) -> list[np.ndarray]:
    """Per joint, the times (s) of the local minima of its speed (argrelextrema, `order` frames each side).

    `min_speed` (units/s, default 0: off) drops minima slower than it, i.e. pauses
    rather than changes of direction (EMAGE's threshold); BEAT has none.
    """
    if order < 1:
        raise ValueError(f"order must be >= 1, got {order}")
    speed = joint_speed(positions, fps)
    beats = []
    for j in range(speed.shape[1]):
        (frames,) = argrelextrema(speed[:, j], np.less, order=order)
        frames = frames[speed[frames, j] >= min_speed] if min_speed > 0 else frames
        beats.append(frames / fps)
    return beats


def beat_alignment(audio_beat_times: np.ndarray, motion_beat_times: np.ndarray, sigma: float = 0.3) -> float:
    """Mean over audio beats a of exp(-min_m (m - a)^2 / (2 sigma^2)), times in seconds.

    0 without motion beats; nan (with a RuntimeWarning) without audio beats.
    """
    a = np.asarray(audio_beat_times, dtype=np.float64).reshape(-1)
    m = np.asarray(motion_beat_times, dtype=np.float64).reshape(-1)
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    if len(a) == 0:
        warnings.warn("no audio beats: beat consistency is undefined (nan)", RuntimeWarning, stacklevel=2)
        return float("nan")
    if len(m) == 0:
        return 0.0
    nearest = np.min(np.abs(a[:, None] - m[None, :]), axis=1)  # (n_audio,)
    return float(np.mean(np.exp(-nearest**2 / (2 * sigma**2))))


def beat_consistency(euler: np.ndarray, fps: float, audio: np.ndarray, sample_rate: int,
                     joints: str | Sequence[str] = "right_wrist", order: int = 2, sigma: float = 0.3,
                     min_speed: float = 0.0, skeleton: Skeleton | None = None) -> float:
    """BC of one take: (T, 141) Euler-degree motion and its mono audio, sample 0 at frame 0.

    `joints` is a key of BC_JOINT_SETS or a list of joint names; with several joints
    BC is computed per joint and averaged (EMAGE).
    """
    names = BC_JOINT_SETS[joints] if isinstance(joints, str) and joints in BC_JOINT_SETS else joints
    if isinstance(names, str):
        raise ValueError(f"unknown joint set {joints!r}; use one of {', '.join(BC_JOINT_SETS)} or a list of joints")
    onsets = audio_beats(audio, sample_rate)
    if len(onsets) == 0:
        warnings.warn("no audio beats: beat consistency is undefined (nan)", RuntimeWarning, stacklevel=2)
        return float("nan")
    beats = motion_beats(joint_positions(euler, names, fps, skeleton), fps, order, min_speed)
    return float(np.mean([beat_alignment(onsets, b, sigma) for b in beats]))


# ============================================================================ Diversity


def l1_diversity(motion: np.ndarray | Sequence[np.ndarray]) -> float:
    """BEAT's L1div: sum_t sum_d |x_td - mean_t x_d| / T, for one (T, D) clip or pooled over clips.

    For several clips each is centred on its own mean and the sums are divided by the
    total number of frames (what BEAT's L1div accumulator does take by take).
    """
    clips = [motion] if isinstance(motion, np.ndarray) and motion.ndim == 2 else list(motion)
    total, frames = 0.0, 0
    for i, clip in enumerate(clips):
        x = np.asarray(clip, dtype=np.float64)
        if x.ndim != 2:
            raise ValueError(f"clip {i} must have shape (T, D), got {x.shape}")
        if len(x):
            total += float(np.abs(x - x.mean(axis=0)).sum())
            frames += len(x)
    if frames == 0:
        raise ValueError("no frames to compute the diversity of")
    return total / frames


def random_pair_diversity(features: np.ndarray, n_pairs: int | None = 1000, seed: int = 0) -> float:
    """Mean L1 distance sum_d |f_id - f_jd| between features of random pairs i != j of clips.

    `n_pairs` pairs are drawn (with replacement, each pair of two different clips)
    from a generator seeded with `seed`; `n_pairs=None` averages over every unordered pair.
    """
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"features must have shape (N, D) with N >= 2, got {f.shape}")
    n = f.shape[0]
    if n_pairs is None:
        i, j = np.triu_indices(n, k=1)
    else:
        if n_pairs < 1:
            raise ValueError(f"n_pairs must be positive or None, got {n_pairs}")
        rng = np.random.default_rng(seed)
        i = rng.integers(0, n, size=n_pairs)
        j = (i + rng.integers(1, n, size=n_pairs)) % n  # uniform over the other clips
    return float(np.abs(f[i] - f[j]).sum(axis=1).mean())


# ============================================================================ SRGR


def _pose_pair(generated: np.ndarray, real: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    g, r = np.asarray(generated, dtype=np.float64), np.asarray(real, dtype=np.float64)
    if g.shape != r.shape or g.ndim != 2 or g.shape[1] % 3:
        raise ValueError(f"generated and real must both be (T, 3J) Euler degrees, got {g.shape} and {r.shape}")
    return g, r


def wrap_degrees(angle: np.ndarray) -> np.ndarray:
    """Angles (degrees) wrapped to (-180, 180]."""
    a = np.mod(np.asarray(angle, dtype=np.float64), 360.0)  # [0, 360)
    return np.where(a > 180.0, a - 360.0, a)


def srgr_hits(generated: np.ndarray, real: np.ndarray, threshold: float = 4.0) -> np.ndarray:
    """(T, J) bool: summed absolute (wrapped) Euler error of joint j at frame t below `threshold` degrees."""
    g, r = _pose_pair(generated, real)
    error = np.abs(wrap_degrees(g - r)).reshape(len(g), -1, 3).sum(axis=-1)  # (T, J)
    return error < threshold


def _weights(weights: np.ndarray, n: int) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.shape != (n,):
        raise ValueError(f"weights must have one value per frame ({n}), got {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("weights must be finite and non-negative")
    return w


def srgr_raw(generated: np.ndarray, real: np.ndarray, weights: np.ndarray, threshold: float = 4.0) -> float:
    """BEAT's formula without its 1/0.165 rescale: sum_t sum_j hit_tj w_t / (T J)."""
    hits = srgr_hits(generated, real, threshold)
    w = _weights(weights, len(hits))
    if hits.size == 0:
        raise ValueError("no frames to compute SRGR on")
    return float((hits * w[:, None]).sum() / hits.size)


def srgr(generated: np.ndarray, real: np.ndarray, weights: np.ndarray, threshold: float = 4.0) -> float:
    """SRGR normalised so a perfect match is 1: sum_t sum_j hit_tj w_t / (J sum_t w_t).

    nan with a RuntimeWarning when every weight is 0 (no semantic frames).
    """
    hits = srgr_hits(generated, real, threshold)
    w = _weights(weights, len(hits))
    if hits.size == 0:
        raise ValueError("no frames to compute SRGR on")
    if w.sum() <= 0:
        warnings.warn("SRGR: every semantic weight is 0; SRGR is undefined (nan)", RuntimeWarning, stacklevel=2)
        return float("nan")
    return float((hits * w[:, None]).sum() / (hits.shape[1] * w.sum()))
