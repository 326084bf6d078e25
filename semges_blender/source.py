"""The generated motion as Blender sees it: numpy only, no torch, no bpy.

Blender's own Python usually has no torch, and `semges_core`'s motion and
kinematics modules import it, so the Blender side reads the motion `.npz` that
`semges_core.motion_npz.save_motion_npz` writes (a pickle-free set of arrays)
into a `SourceMotion` and does the little maths it needs here: slerp
resampling and forward kinematics, both following docs/conventions.md to the
letter (tests pin them equal to `Motion.resample` and
`semges_core.kinematics.forward_kinematics`). When generation runs through the
worker, the runner already asks `semges_core` for the scene's frame rate, so
resampling here only happens for motions made elsewhere.

Axes: semges_core is Y-up, facing +Z, centimetres (BEAT). Blender is Z-up,
facing -Y. Like Blender's BVH importer, a file vector (x, y, z) becomes
(x, -z, y) in Blender; `BEAT_TO_BLENDER` is that change of basis.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import MotionFileError

# Blender (x, y, z) = (x_file, -z_file, y_file): columns are where the file's axes go.
BEAT_TO_BLENDER = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


@dataclass
class SourceMotion:
    """Local joint quaternions (w, x, y, z) on a skeleton, at one frame rate (semges_core axes)."""

    names: tuple[str, ...]
    parents: tuple[int, ...]
    offsets: np.ndarray  # (J, 3) cm, rest offset from the parent (root: world position)
    fps: float
    rotations: np.ndarray  # (T, J, 4) float64
    root_positions: np.ndarray  # (T, 3) cm

    def __post_init__(self) -> None:
        self.offsets = np.asarray(self.offsets, dtype=np.float64)
        self.rotations = np.asarray(self.rotations, dtype=np.float64)
        self.root_positions = np.asarray(self.root_positions, dtype=np.float64)
        J = len(self.names)
        if self.rotations.ndim != 3 or self.rotations.shape[1:] != (J, 4):
            raise ValueError(f"rotations must be (T, {J}, 4), got {self.rotations.shape}")
        if self.offsets.shape != (J, 3) or len(self.parents) != J:
            raise ValueError("names, parents and offsets disagree in length")
        if not np.isfinite(self.fps) or self.fps <= 0:
            raise ValueError(f"fps must be positive, got {self.fps!r}")

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_npz(cls, path: str | Path) -> SourceMotion:
        """Read a motion written by `semges_core.motion_npz.save_motion_npz`."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                return cls(tuple(str(n) for n in z["joint_names"]), tuple(int(p) for p in z["parents"]),
                           z["offsets"], float(z["fps"]), z["quaternions"], z["root_positions"])
        except FileNotFoundError:
            raise MotionFileError(path, "file not found") from None
        except (KeyError, ValueError, OSError) as e:
            raise MotionFileError(path, f"not a SemGes motion .npz ({e})") from None

    @classmethod
    def from_motion(cls, motion) -> SourceMotion:
        """From a `semges_core.motion.Motion` (duck-typed, so torch is not imported here)."""
        sk = motion.skeleton
        return cls(tuple(sk.names), tuple(sk.parents), sk.offsets, motion.fps, motion.rotations,
                   motion.root_positions)

    # ------------------------------------------------------------------ basics

    @property
    def n_frames(self) -> int:
        return int(self.rotations.shape[0])

    def index(self, name: str) -> int:
        return self.names.index(name)

    def children(self, j: int) -> list[int]:
        return [c for c, p in enumerate(self.parents) if p == j]

    # ------------------------------------------------------------------ time

    def resample(self, fps: float) -> SourceMotion:
        """Same rule as `Motion.resample`: frame k at time k / fps, slerp, linear root."""
        fps = float(fps)
        if not np.isfinite(fps) or fps <= 0:
            raise ValueError(f"fps must be positive, got {fps!r}")
        if fps == self.fps or self.n_frames == 0:
            return SourceMotion(self.names, self.parents, self.offsets, fps, self.rotations.copy(),
                                self.root_positions.copy())
        ratio = self.fps / fps
        n_out = int(np.floor((self.n_frames - 1) / ratio + 1e-9)) + 1
        src = np.arange(n_out) * ratio
        nearest = np.round(src)
        src = np.where(np.abs(src - nearest) < 1e-9, nearest, src)
        i0 = np.minimum(np.floor(src).astype(np.int64), self.n_frames - 1)
        i1 = np.minimum(i0 + 1, self.n_frames - 1)
        frac = src - i0  # (T_out,)
        q0, q1 = self.rotations[i0], self.rotations[i1]  # (T_out, J, 4)
        rot = quat_slerp(q0, q1, np.broadcast_to(frac[:, None], q0.shape[:-1]))
        on_frame = frac == 0
        rot[on_frame] = q0[on_frame]
        root = (1 - frac)[:, None] * self.root_positions[i0] + frac[:, None] * self.root_positions[i1]
        root[on_frame] = self.root_positions[i0[on_frame]]
        return SourceMotion(self.names, self.parents, self.offsets, fps, rot, root)

    # ------------------------------------------------------------------ space

    def world_rotations(self) -> np.ndarray:
        """(T, J, 3, 3) global joint rotations, semges_core axes: global(j) = global(parent) @ local(j)."""
        local = quat_to_matrix(self.rotations)  # (T, J, 3, 3)
        glob = np.empty_like(local)
        for j, p in enumerate(self.parents):
            glob[:, j] = local[:, j] if p < 0 else glob[:, p] @ local[:, j]
        return glob

    def world_positions(self) -> np.ndarray:
        """(T, J, 3) cm, semges_core axes (the root at `root_positions`)."""
        glob = self.world_rotations()
        pos = np.empty(self.rotations.shape[:2] + (3,))
        for j, p in enumerate(self.parents):
            pos[:, j] = self.root_positions if p < 0 else pos[:, p] + glob[:, p] @ self.offsets[j]
        return pos

    def rest_positions(self) -> np.ndarray:
        """(J, 3) cm, the rest pose (identity rotations), semges_core axes."""
        pos = np.zeros((len(self.names), 3))
        for j, p in enumerate(self.parents):
            pos[j] = self.offsets[j] if p < 0 else pos[p] + self.offsets[j]
        return pos


# ---------------------------------------------------------------------- quaternion helpers (w, x, y, z)


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    w, x, y, z = np.moveaxis(q, -1, 0)
    s = 2.0 / np.maximum((q * q).sum(-1), np.finfo(np.float64).tiny)
    m = np.stack([1 - s * (y * y + z * z), s * (x * y - z * w), s * (x * z + y * w),
                  s * (x * y + z * w), 1 - s * (x * x + z * z), s * (y * z - x * w),
                  s * (x * z - y * w), s * (y * z + x * w), 1 - s * (x * x + y * y)], axis=-1)
    return m.reshape(q.shape[:-1] + (3, 3))


def matrix_to_quat(R: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) -> unit quaternions (..., 4), w >= 0 (Shepperd)."""
    R = np.asarray(R, dtype=np.float64)
    m00, m01, m02 = R[..., 0, 0], R[..., 0, 1], R[..., 0, 2]
    m10, m11, m12 = R[..., 1, 0], R[..., 1, 1], R[..., 1, 2]
    m20, m21, m22 = R[..., 2, 0], R[..., 2, 1], R[..., 2, 2]
    four_sq = np.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1)
    pivot = np.sqrt(np.maximum(four_sq, 0.0))  # 2 * (|w|, |x|, |y|, |z|)
    rows = np.stack([
        np.stack([four_sq[..., 0], m21 - m12, m02 - m20, m10 - m01], -1),
        np.stack([m21 - m12, four_sq[..., 1], m10 + m01, m02 + m20], -1),
        np.stack([m02 - m20, m10 + m01, four_sq[..., 2], m12 + m21], -1),
        np.stack([m10 - m01, m20 + m02, m21 + m12, four_sq[..., 3]], -1),
    ], -2)  # (..., 4, 4)
    best = pivot.argmax(-1)
    q = np.take_along_axis(rows, best[..., None, None], -2)[..., 0, :]
    q = q / (2.0 * np.take_along_axis(pivot, best[..., None], -1))
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    return np.where(q[..., :1] < 0, -q, q)


def quat_slerp(q0: np.ndarray, q1: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Shorter-arc slerp, (..., 4) with t (...), canonical w >= 0 like semges_core's."""
    q0 = q0 / np.linalg.norm(q0, axis=-1, keepdims=True)
    q1 = q1 / np.linalg.norm(q1, axis=-1, keepdims=True)
    t = np.asarray(t, dtype=np.float64)[..., None]
    dot = (q0 * q1).sum(-1, keepdims=True)
    q1 = np.where(dot < 0, -q1, q1)
    dot = np.minimum(np.abs(dot), 1.0)
    theta = np.arccos(dot)
    sin_theta = np.sin(theta)
    close = sin_theta < 1e-6
    safe = np.where(close, 1.0, sin_theta)
    w0 = np.where(close, 1 - t, np.sin((1 - t) * theta) / safe)
    w1 = np.where(close, t, np.sin(t * theta) / safe)
    q = w0 * q0 + w1 * q1
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    return np.where(q[..., :1] < 0, -q, q)


def make_continuous(q: np.ndarray) -> np.ndarray:
    """Flip signs along axis 0 so consecutive quaternions are in the same hemisphere (no long-way blends)."""
    q = np.array(q, dtype=np.float64)
    if len(q) < 2:
        return q
    dots = (q[1:] * q[:-1]).sum(-1)  # (T-1, ...)
    flips = np.cumsum(dots < 0, axis=0) % 2  # (T-1, ...)
    sign = np.concatenate([np.ones((1,) + flips.shape[1:]), 1 - 2 * flips], axis=0)
    return q * sign[..., None]
