"""Fewer keys for a rotation curve, with a guarantee in degrees on what the animation system plays.

One key per frame per channel makes files heavy and curves impossible to edit by
hand. Keys are dropped where straight-line interpolation between the kept ones
reproduces the dense curve: a Douglas-Peucker split on the largest *angular* error,
measured on the rotation the player will actually build from the interpolated
channels (`to_quat`). For quaternion channels that is the normalised component-wise
lerp Blender plays; for Euler channels a per-channel lerp turned into a rotation. The
error is the geodesic angle between that rotation and the dense one, so it means the
same for every rotation mode; all channels of a bone keep the same frames, and the
first and last frame are always kept. Keys written with LINEAR interpolation then
play within the tolerance at every frame (checked on float32 values, as keys are stored).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from semges_core.motion.rotations import quat_normalize

# A hair below the user's tolerance, for the float32 rounding of keys and of the player's lerp.
_MARGIN_DEG = 1e-3


def geodesic_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle in degrees between rotations given as quaternions (..., 4), either sign, any norm."""
    a, b = quat_normalize(np.asarray(a, np.float64)), quat_normalize(np.asarray(b, np.float64))
    dot = np.abs(np.sum(a * b, axis=-1))
    return np.degrees(2.0 * np.arccos(np.clip(dot, 0.0, 1.0)))


def reduce_keys(channels: np.ndarray, to_quat: Callable[[np.ndarray], np.ndarray],
                tolerance_deg: float | None) -> np.ndarray:
    """Indices of the frames to key, sorted, first and last always included.

    channels: (T, C) the dense per-frame channel values (what one key per frame would hold).
    to_quat: (N, C) channel values -> (N, 4) quaternions, as the player interprets them.
    tolerance_deg: the largest angle allowed between the rotation played from linear keys
    at the kept frames and the dense one, at every frame; None or 0 keeps every frame.
    """
    channels = np.asarray(channels, dtype=np.float64)
    if channels.ndim != 2:
        raise ValueError(f"channels must have shape (T, C), got {channels.shape}")
    T = len(channels)
    if not tolerance_deg or T <= 2:
        return np.arange(T)
    if not np.isfinite(tolerance_deg) or tolerance_deg < 0:
        raise ValueError(f"tolerance must be a non-negative number of degrees, got {tolerance_deg!r}")
    tol = max(float(tolerance_deg) - _MARGIN_DEG, 0.0)
    stored = channels.astype(np.float32).astype(np.float64)  # what the keys hold
    dense = to_quat(stored)
    keep = np.zeros(T, dtype=bool)
    keep[[0, T - 1]] = True
    segments = np.array([[0, T - 1]])
    while len(segments):  # every open segment of one level of the split at once
        segments = segments[segments[:, 1] - segments[:, 0] >= 2]
        if not len(segments):
            break
        i, j = segments[:, 0], segments[:, 1]
        counts = j - i - 1
        seg = np.repeat(np.arange(len(segments)), counts)  # segment of each interior frame
        frame = i[seg] + 1 + (np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts))
        t = ((frame - i[seg]) / (j[seg] - i[seg]))[:, None]
        lerp = stored[i[seg]] + t * (stored[j[seg]] - stored[i[seg]])
        err = geodesic_deg(to_quat(lerp), dense[frame])
        worst = np.full(len(segments), -1.0)
        np.maximum.at(worst, seg, err)
        split = worst > tol
        # the frame of each splitting segment's largest error (the first one where tied)
        at = np.flatnonzero(err == worst[seg])
        first = np.full(len(segments), -1)
        first[seg[at][::-1]] = frame[at][::-1]
        m = first[split]
        keep[m] = True
        segments = np.concatenate([np.stack([i[split], m], -1), np.stack([m, j[split]], -1)])
    return np.flatnonzero(keep)


def max_error_deg(channels: np.ndarray, kept: np.ndarray, to_quat: Callable[[np.ndarray], np.ndarray]) -> float:
    """The largest angle between linear interpolation through `kept` and the dense curve (a check)."""
    channels = np.asarray(channels, dtype=np.float64)
    frames = np.arange(len(channels))
    played = np.stack([np.interp(frames, kept, channels[kept, c]) for c in range(channels.shape[1])], -1)
    return float(geodesic_deg(to_quat(played), to_quat(channels)).max(initial=0.0))


__all__ = ["geodesic_deg", "reduce_keys", "max_error_deg"]
