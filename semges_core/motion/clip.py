"""One take's motion and the conversions between it and the model's pose vectors.

Rotations are stored as local quaternions so that resampling can slerp and
nothing depends on a particular Euler order; Euler angles are produced on the
way out, per joint in the skeleton's own channel orders.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from semges_core.motion.arrays import array_function
from semges_core.motion.kinematics import forward_kinematics
from semges_core.motion.rotations import (
    euler_to_matrix_per_joint,
    matrix_to_euler_per_joint,
    matrix_to_quat,
    matrix_to_rot6d,
    quat_slerp,
    quat_to_matrix,
    rot6d_to_matrix,
)
from semges_core.motion.skeleton import BEAT_SKELETON, BODY_JOINTS, HAND_JOINTS, UPPER_BODY_JOINTS, Skeleton

# The networks' rot6d vector lists the body joints first, then the hands.
_ROT6D_JOINTS: tuple[str, ...] = BODY_JOINTS + HAND_JOINTS


@dataclass
class Motion:
    """A take's motion: local joint rotations plus the root trajectory, at one frame rate."""

    skeleton: Skeleton
    fps: float
    root_positions: np.ndarray  # (T, 3) cm, world position of the root joint
    rotations: np.ndarray  # (T, J, 4) local quaternions (w, x, y, z), float64

    def __post_init__(self) -> None:
        if not isinstance(self.skeleton, Skeleton):
            raise TypeError(f"skeleton must be a Skeleton, got {type(self.skeleton).__name__}")
        fps = float(self.fps)
        if not np.isfinite(fps) or fps <= 0:
            raise ValueError(f"fps must be a positive number, got {self.fps!r}")
        self.fps = fps
        self.rotations = np.asarray(self.rotations, dtype=np.float64)
        self.root_positions = np.asarray(self.root_positions, dtype=np.float64)
        n_joints = len(self.skeleton)
        if self.rotations.ndim != 3 or self.rotations.shape[1:] != (n_joints, 4):
            raise ValueError(
                f"rotations must have shape (T, {n_joints}, 4) for a {n_joints}-joint skeleton, "
                f"got {self.rotations.shape}"
            )
        if self.root_positions.shape != (self.rotations.shape[0], 3):
            raise ValueError(
                f"root_positions must have shape ({self.rotations.shape[0]}, 3) to match the "
                f"rotations, got {self.root_positions.shape}"
            )

    # ------------------------------------------------------------------ basics

    @property
    def n_frames(self) -> int:
        return int(self.rotations.shape[0])

    @property
    def duration(self) -> float:
        """Seconds, n_frames / fps (the time one frame lasts counts for the last frame too)."""
        return self.n_frames / self.fps

    @classmethod
    def rest(cls, skeleton: Skeleton, n_frames: int, fps: float) -> Motion:
        """The rest pose held for `n_frames`, root at its rest offset."""
        if n_frames < 0:
            raise ValueError(f"n_frames must be >= 0, got {n_frames}")
        rotations = np.zeros((n_frames, len(skeleton), 4))
        rotations[..., 0] = 1.0
        root = np.tile(skeleton.offsets[0], (n_frames, 1))
        return cls(skeleton, fps, root, rotations)

    @classmethod
    def from_euler(
        cls, skeleton: Skeleton, fps: float, root_positions: np.ndarray, euler_degrees: np.ndarray
    ) -> Motion:
        """From Euler angles (T, J, 3) in degrees, joint j in skeleton.rotation_orders[j]."""
        euler = np.asarray(euler_degrees, dtype=np.float64)
        if euler.ndim != 3 or euler.shape[1:] != (len(skeleton), 3):
            raise ValueError(f"euler_degrees must have shape (T, {len(skeleton)}, 3), got {euler.shape}")
        R = euler_to_matrix_per_joint(euler, skeleton.rotation_orders)  # (T, J, 3, 3)
        return cls(skeleton, fps, root_positions, matrix_to_quat(R))

    def euler_degrees(self) -> np.ndarray:
        """(T, J, 3) degrees, each joint in its own order, continuous over time."""
        return _continuous_euler(self.rotations, self.skeleton.rotation_orders)

    def positions(self) -> np.ndarray:
        """(T, J, 3) world joint positions in cm."""
        return forward_kinematics(self.skeleton, self.rotations, self.root_positions)

    def copy(self) -> Motion:
        return Motion(self.skeleton, self.fps, self.root_positions.copy(), self.rotations.copy())

    # ------------------------------------------------------------------ time

    def resample(self, fps: float) -> Motion:
        """The motion at another frame rate: slerp for rotations, linear for the root.

        Output frame k is at time k / fps; n_out = floor((T - 1) * fps / self.fps) + 1,
        so the last output frame never lies past the last input frame, and an
        integer ratio (120 -> 15) picks every 8th frame exactly.
        """
        fps = float(fps)
        if not np.isfinite(fps) or fps <= 0:
            raise ValueError(f"fps must be a positive number, got {fps!r}")
        if fps == self.fps or self.n_frames == 0:
            return Motion(self.skeleton, fps, self.root_positions.copy(), self.rotations.copy())
        ratio = self.fps / fps
        # A tiny tolerance so that e.g. (T - 1) * 30 / 120 landing at 2.9999999 still counts 3.
        n_out = int(np.floor((self.n_frames - 1) / ratio + 1e-9)) + 1
        src = np.arange(n_out) * ratio  # (T_out,) fractional source frames
        nearest = np.round(src)
        src = np.where(np.abs(src - nearest) < 1e-9, nearest, src)
        i0 = np.minimum(np.floor(src).astype(np.int64), self.n_frames - 1)
        i1 = np.minimum(i0 + 1, self.n_frames - 1)
        frac = src - i0  # (T_out,)

        q0, q1 = self.rotations[i0], self.rotations[i1]  # (T_out, J, 4)
        rotations = quat_slerp(q0, q1, frac[:, None])
        on_frame = frac == 0
        rotations[on_frame] = q0[on_frame]  # exact copies, not slerp(t=0) round-off
        root = (1 - frac)[:, None] * self.root_positions[i0] + frac[:, None] * self.root_positions[i1]
        root[on_frame] = self.root_positions[i0[on_frame]]
        return Motion(self.skeleton, fps, root, rotations)

    def slice(self, start: int, stop: int) -> Motion:
        """Frames [start, stop) as a new motion (copies)."""
        if not 0 <= start <= stop <= self.n_frames:
            raise ValueError(f"slice [{start}, {stop}) is outside a {self.n_frames}-frame motion")
        return Motion(
            self.skeleton, self.fps, self.root_positions[start:stop].copy(), self.rotations[start:stop].copy()
        )

    # ------------------------------------------------------------------ the model's pose vectors

    def upper_body_euler(self) -> np.ndarray:
        """(T, 141) float32 degrees: UPPER_BODY_JOINTS x 3, each in its joint's order (BEAT's vector)."""
        idx = self.skeleton.indices(UPPER_BODY_JOINTS)
        orders = [self.skeleton.rotation_orders[j] for j in idx]
        euler = _continuous_euler(self.rotations[:, idx], orders)  # (T, 47, 3)
        return euler.reshape(self.n_frames, -1).astype(np.float32)

    def upper_body_rot6d(self) -> np.ndarray:
        """(T, 282) float32: BODY_JOINTS then HAND_JOINTS, 6 values each."""
        idx = self.skeleton.indices(_ROT6D_JOINTS)
        rot6d = matrix_to_rot6d(quat_to_matrix(self.rotations[:, idx]))  # (T, 47, 6)
        return rot6d.reshape(self.n_frames, -1).astype(np.float32)

    @classmethod
    def from_upper_body_rot6d(
        cls,
        pose: np.ndarray,
        fps: float,
        skeleton: Skeleton | None = None,
        base: Motion | None = None,
    ) -> Motion:
        """A motion whose upper body comes from `pose` (T, 282), the rest from `base`.

        `skeleton` defaults to base.skeleton, or BEAT_SKELETON without a base.
        Joints outside the pose and the root come from `base` (its frames repeated
        cyclically or cut to T) or, without one, from the rest pose.
        """
        pose = _check_pose(pose, 6 * len(_ROT6D_JOINTS), "rot6d")
        quats = _rot6d_to_quat(pose.reshape(len(pose), -1, 6))  # (T, 47, 4)
        return _with_upper_body(quats, _ROT6D_JOINTS, fps, skeleton, base)

    @classmethod
    def from_upper_body_euler(
        cls,
        pose: np.ndarray,
        fps: float,
        skeleton: Skeleton | None = None,
        base: Motion | None = None,
    ) -> Motion:
        """Like from_upper_body_rot6d for BEAT's (T, 141) Euler degrees, each joint in its skeleton order."""
        pose = _check_pose(pose, 3 * len(UPPER_BODY_JOINTS), "Euler")
        skel = _pick_skeleton(skeleton, base)
        orders = [skel.rotation_orders[j] for j in skel.indices(UPPER_BODY_JOINTS)]
        R = euler_to_matrix_per_joint(pose.reshape(len(pose), -1, 3), orders)  # (T, 47, 3, 3)
        return _with_upper_body(matrix_to_quat(R), UPPER_BODY_JOINTS, fps, skel, base)


# ---------------------------------------------------------------------- helpers


@array_function(1)
def _rot6d_to_quat(x: np.ndarray) -> np.ndarray:
    """(..., 6) -> (..., 4), both steps in one pass over numpy's blocks (no full-size matrices in between)."""
    return matrix_to_quat(rot6d_to_matrix(x))


def _continuous_euler(quats: np.ndarray, orders) -> np.ndarray:
    """Quaternions (T, J, 4) -> Euler degrees (T, J, 3) without jumps between frames.

    Like Blender's `to_euler(order, compat)`: every frame offers two equivalent
    solutions, (a, b, c) and (a + 180, 180 - b, c + 180); each is shifted by
    multiples of 360 towards the previous frame and the closer one is kept. At
    gimbal lock (b = +-90) only a + k c is defined, so c keeps its previous value.
    """
    euler = matrix_to_euler_per_joint(quat_to_matrix(quats), orders)  # (T, J, 3) in (-180, 180]
    if len(euler) == 0:
        return euler
    alt = euler + np.array([180.0, 0.0, 180.0])
    alt[..., 1] = 180.0 - euler[..., 1]
    # At b = +-90, R_i(a) R_j(b) R_k(c) depends on a + k c only, k = sign(b) * (+1 for cyclic orders).
    cyclic = np.array([1.0 if ("XYZ" * 2).find(o.upper()[:2]) >= 0 else -1.0 for o in orders])  # (J,)
    k = cyclic * np.sign(euler[..., 1])  # (T, J)
    locked = np.abs(euler[..., 1]) > 90.0 - 1e-5  # (T, J)
    locked_frames = locked.any(axis=1)  # (T,)

    out = np.empty_like(euler)
    out[0] = euler[0]
    prev = euler[0]
    for t in range(1, len(euler)):
        a, b = euler[t], alt[t]
        if locked_frames[t]:
            held = a.copy()  # (J, 3)
            held[:, 2] = prev[:, 2]
            held[:, 0] = a[:, 0] + k[t] * (a[:, 2] - prev[:, 2])
            a = np.where(locked[t][:, None], held, a)
            b = np.where(locked[t][:, None], held, b)
        a = a - 360.0 * np.round((a - prev) / 360.0)  # (J, 3)
        b = b - 360.0 * np.round((b - prev) / 360.0)
        use_alt = np.abs(b - prev).sum(-1) < np.abs(a - prev).sum(-1)  # (J,)
        prev = np.where(use_alt[:, None], b, a)
        out[t] = prev
    return out


def _check_pose(pose: np.ndarray, width: int, what: str) -> np.ndarray:
    pose = np.asarray(pose, dtype=np.float64)
    if pose.ndim != 2 or pose.shape[1] != width:
        raise ValueError(f"{what} upper-body pose must have shape (T, {width}), got {pose.shape}")
    return pose


def _pick_skeleton(skeleton: Skeleton | None, base: Motion | None) -> Skeleton:
    if skeleton is None:
        return base.skeleton if base is not None else BEAT_SKELETON
    if base is not None and not skeleton.same_layout(base.skeleton):
        raise ValueError("base motion's skeleton has a different joint layout from `skeleton`")
    return skeleton


def _with_upper_body(
    quats: np.ndarray, names: tuple[str, ...], fps: float, skeleton: Skeleton | None, base: Motion | None
) -> Motion:
    """Fill `names` with `quats` (T, len(names), 4), everything else from base or rest."""
    skel = _pick_skeleton(skeleton, base)
    idx = skel.indices(names)
    n = len(quats)
    if base is None:
        motion = Motion.rest(skel, n, fps)
    else:
        if base.n_frames == 0 and n > 0:
            raise ValueError("base motion has no frames to take the other joints from")
        frames = np.arange(n) % max(base.n_frames, 1)
        motion = Motion(skel, fps, base.root_positions[frames], base.rotations[frames])
    motion.rotations[:, idx] = quats
    return motion
