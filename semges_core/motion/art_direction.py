"""Turning generated gestures up or down, and blending a regenerated stretch into a take.

An animator's first notes on generated motion are "smaller" and "bigger", per part of
the body. Scaling Euler angles would distort rotations, so intensity acts on the
rotation group itself: each joint's local rotation q is moved along the geodesic from
a neutral rotation n, q' = n (n^-1 q)^s. s = 0 holds the neutral pose, s = 1 is the
model's motion (returned bit for bit), s = 2 doubles every excursion from neutral.
The neutral pose defaults to the clip's own per-joint mean rotation (the chordal L2
mean: the principal eigenvector of sum q q^T), so turning a clip down calms it around
where it usually is rather than snapping it to the T-pose.

Redoing a stretch of a take must not leave a seam, so `crossfade` turns the old
rotations into the new ones with smoothstep weights that are 0 at both borders, the
same way round from frame to frame (no flip where the two are 180 degrees apart).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from semges_core.motion.clip import Motion
from semges_core.motion.rotations import (
    axis_angle_to_quat,
    quat_conjugate,
    quat_continuous,
    quat_multiply,
    quat_normalize,
    quat_to_axis_angle,
)

GROUPS = ("arms", "hands", "torso")


@dataclass(frozen=True)
class Intensity:
    """Scale factors (0 = neutral pose, 1 = as generated, 2 = twice as big) per part of the body."""

    arms: float = 1.0
    hands: float = 1.0
    torso: float = 1.0  # spine, neck and head

    def __post_init__(self) -> None:
        for name in GROUPS:
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not np.isfinite(v) or not 0.0 <= v <= 2.0:
                raise ValueError(f"intensity {name} must lie in [0, 2] (0-200%), got {v!r}")

    @property
    def is_identity(self) -> bool:
        return all(getattr(self, name) == 1.0 for name in GROUPS)


def joint_group(name: str) -> str | None:
    """The intensity group of a BEAT joint name, or None (hips, legs, end sites)."""
    bare = name[1:] if name[:1] in ("L", "R") else name
    if name[:1] in ("L", "R") and bare in ("Shoulder", "Arm", "Arm1"):
        return "arms"
    if name[:1] in ("L", "R") and bare.startswith("Hand"):
        return "hands"
    if name.startswith(("Spine", "Neck")) or name == "Head":
        return "torso"
    return None


def chordal_mean(q: np.ndarray) -> np.ndarray:
    """The chordal L2 mean of quaternions (T, ..., 4) over axis 0 -> (..., 4), w >= 0 (sign-blind)."""
    q = quat_normalize(np.asarray(q, dtype=np.float64))
    if len(q) == 0:
        raise ValueError("the mean of no rotations is undefined")
    m = np.einsum("t...i,t...j->...ij", q, q)  # (..., 4, 4)
    _, vecs = np.linalg.eigh(m)
    mean = vecs[..., :, -1]  # eigenvector of the largest eigenvalue
    return np.where(mean[..., :1] < 0, -mean, mean)


def scale_rotations(q: np.ndarray, neutral: np.ndarray, s: float) -> np.ndarray:
    """n (n^-1 q)^s for quaternions q (T, ..., 4) around neutral (..., 4); sign continuous over T."""
    q = np.asarray(q, dtype=np.float64)
    if s == 1.0:
        return q.copy()
    n = np.broadcast_to(quat_normalize(np.asarray(neutral, dtype=np.float64)), q.shape)
    if s == 0.0:
        return n.copy()
    delta = quat_multiply(quat_conjugate(n), quat_normalize(q))
    delta = np.where(delta[..., :1] < 0, -delta, delta)  # the shorter way from neutral
    out = quat_multiply(n, axis_angle_to_quat(s * quat_to_axis_angle(delta)))
    return quat_continuous(out)


def scale_intensity(motion: Motion, intensity: Intensity, neutral: np.ndarray | None = None) -> Motion:
    """The motion with each joint's excursions from `neutral` (J, 4) scaled by its group's factor.

    neutral defaults to the clip's per-joint chordal mean rotation. Joints outside the
    groups (hips, legs) and the root trajectory are kept; intensity 1 everywhere returns
    an exact copy. The result has the type of `motion` (a SourceMotion stays one).
    """
    rotations = motion.rotations.copy()
    if not intensity.is_identity and motion.n_frames:
        names = motion.skeleton.names
        if neutral is None:
            neutral = chordal_mean(motion.rotations)
        neutral = np.asarray(neutral, dtype=np.float64)
        if neutral.shape != (len(names), 4):
            raise ValueError(f"neutral must have shape ({len(names)}, 4), got {neutral.shape}")
        for j, name in enumerate(names):
            group = joint_group(name)
            if group is None:
                continue
            s = float(getattr(intensity, group))
            if s != 1.0:
                rotations[:, j] = scale_rotations(motion.rotations[:, j], neutral[j], s)
    return type(motion)(motion.skeleton, motion.fps, motion.root_positions.copy(), rotations)


def smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def crossfade_weights(n: int, fade: int, fade_out: int | None = None) -> np.ndarray:
    """(n,) weight of the new motion over a stretch of n frames: 0 at both ends, 1 after `fade` frames.

    Frame k gets smoothstep(k / fade) at the start and smoothstep((n - 1 - k) / fade_out) at
    the end (the smaller one; fade_out defaults to fade), so the first and last frames keep
    the old motion exactly and the stretch joins its neighbours without a jump. A fade of 0
    at either end: the new motion from (or up to) that end.
    """
    fade_out = fade if fade_out is None else fade_out
    if n < 0 or fade < 0 or fade_out < 0:
        raise ValueError(f"n and the fades must be >= 0, got {n}, {fade} and {fade_out}")
    k = np.arange(n, dtype=np.float64)
    w_in = smoothstep(k / fade) if fade else np.ones(n)
    w_out = smoothstep((n - 1 - k) / fade_out) if fade_out else np.ones(n)
    return np.minimum(w_in, w_out)


def fade_frames_for(angle_deg: float, fps: float, shortest: int = 6, speed_deg_s: float = 60.0) -> int:
    """Frames a smoothstep cross-fade needs to turn `angle_deg` at no more than `speed_deg_s` extra.

    A smoothstep over f frames turns at most 1.5 * angle / f per frame, so a border where the
    old and the new motion are far apart (a whole arm swung elsewhere) gets a long fade
    instead of a whip; never shorter than `shortest`.
    """
    per_frame = speed_deg_s / max(float(fps), 1e-9)
    return max(int(shortest), int(np.ceil(1.5 * max(float(angle_deg), 0.0) / per_frame)))


def crossfade(old: np.ndarray, new: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """From `old` to `new` by `weights` per frame, quaternions (T, ..., 4); w = 0 gives old exactly, w = 1 new.

    Each frame turns old by the weighted part of the rotation d = new old^-1 that leads to
    new. Slerping each frame on its own would take the shorter way round every frame, and
    where old and new are about 180 degrees apart (an arm raised in one take and lowered in
    the other) the shorter way flips from one side to the other between two frames: a pop.
    So d keeps its sign from frame to frame (the same way round, even past 180 degrees),
    anchored at each end of the stretch, where d takes the shorter way; the two anchors meet
    where the weight is largest, and at w = 1 both ways give `new`.
    """
    old, new = np.asarray(old, dtype=np.float64), np.asarray(new, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if old.shape != new.shape or old.shape[-1] != 4 or w.shape != old.shape[:1]:
        raise ValueError(f"old {old.shape} and new {new.shape} must match (T, ..., 4) and weights be ({len(old)},)")
    d = quat_normalize(quat_multiply(quat_normalize(new), quat_conjugate(quat_normalize(old))))
    if len(d):
        split = int(np.argmax(w))
        d[: split + 1] = _shorter_way_then_continuous(d[: split + 1])
        d[split + 1:] = _shorter_way_then_continuous(d[split + 1:][::-1])[::-1]
    # d's angle, 0..2 pi: past pi when keeping the sign goes the long way round.
    half = np.arctan2(np.linalg.norm(d[..., 1:], axis=-1, keepdims=True), d[..., :1])
    axis = d[..., 1:] / np.maximum(np.linalg.norm(d[..., 1:], axis=-1, keepdims=True), 1e-12)
    wb = w.reshape((-1,) + (1,) * (old.ndim - 2))
    out = quat_normalize(quat_multiply(axis_angle_to_quat(wb[..., None] * 2.0 * half * axis), old))
    out = np.where(np.sum(out * old, -1, keepdims=True) < 0, -out, out)  # the sign of the old keys
    w_full = np.broadcast_to(wb, old.shape[:-1])[..., None]
    out = np.where(w_full == 0.0, old, out)
    return np.where(w_full == 1.0, np.where(np.sum(new * out, -1, keepdims=True) < 0, -new, new), out)


def _shorter_way_then_continuous(d: np.ndarray) -> np.ndarray:
    """Quaternions (T, ..., 4): the first frame with its scalar part >= 0, then no sign flip
    from frame to frame (`quat_continuous`)."""
    return quat_continuous(np.where(d[:1, ..., :1] < 0, -d, d))


__all__ = ["Intensity", "GROUPS", "joint_group", "chordal_mean", "scale_rotations", "scale_intensity",
           "smoothstep", "crossfade_weights", "fade_frames_for", "crossfade"]
