"""The generated motion as the Blender side reads it: a `semges_core` Motion, named for retargeting.

All the maths (slerp resampling, forward kinematics, quaternions) is `semges_core.motion`'s,
which runs on numpy alone, so Blender's own Python needs neither torch nor a second copy.
`SourceMotion` only adds what retargeting asks of a motion by name (joint names, parents,
world rotations, the rest pose) and turns a bad motion file into the Blender side's
`MotionFileError`. When generation runs through the worker, the runner already asks
`semges_core` for the scene's frame rate, so resampling here only happens for motions
made elsewhere.

Axes: semges_core is Y-up, facing +Z, centimetres (BEAT). Blender is Z-up,
facing -Y. Like Blender's BVH importer, a file vector (x, y, z) becomes
(x, -z, y) in Blender; `BEAT_TO_BLENDER` is that change of basis.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from semges_core.errors import InputFileError
from semges_core.formats.npz import load_motion_npz
from semges_core.motion.clip import Motion
from semges_core.motion.kinematics import forward_kinematics

from .errors import MotionFileError

# Blender (x, y, z) = (x_file, -z_file, y_file): columns are where the file's axes go.
BEAT_TO_BLENDER = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


class SourceMotion(Motion):
    """A Motion (local quaternions (w, x, y, z) on a skeleton, semges_core axes) as retargeting reads it."""

    @classmethod
    def from_npz(cls, path: str | Path) -> SourceMotion:
        """Read a motion written by `semges_core.formats.npz.save_motion_npz`."""
        try:
            return cls.from_motion(load_motion_npz(path))
        except InputFileError as e:
            raise MotionFileError(e.path, e.message, e.line) from None

    @classmethod
    def from_motion(cls, motion: Motion) -> SourceMotion:
        """The same motion (arrays shared, not copied)."""
        return cls(motion.skeleton, motion.fps, motion.root_positions, motion.rotations)

    # ------------------------------------------------------------------ the skeleton by name

    @property
    def names(self) -> tuple[str, ...]:
        return self.skeleton.names

    @property
    def parents(self) -> tuple[int, ...]:
        return self.skeleton.parents

    @property
    def offsets(self) -> np.ndarray:
        """(J, 3) cm, rest offset from the parent (root: world position)."""
        return self.skeleton.offsets

    def index(self, name: str) -> int:
        return self.skeleton.index(name)

    def children(self, j: int) -> list[int]:
        return self.skeleton.children(j)

    # ------------------------------------------------------------------ time and space

    def resample(self, fps: float) -> SourceMotion:
        """`Motion.resample` (slerp, linear root), still a SourceMotion."""
        return type(self).from_motion(super().resample(fps))

    def world_rotations(self) -> np.ndarray:
        """(T, J, 3, 3) global joint rotations, semges_core axes: global(j) = global(parent) @ local(j)."""
        return forward_kinematics(self.skeleton, self.rotations, self.root_positions, return_global=True)[1]

    def world_positions(self) -> np.ndarray:
        """(T, J, 3) cm, semges_core axes (the root at `root_positions`)."""
        return self.positions()

    def rest_positions(self) -> np.ndarray:
        """(J, 3) cm, the rest pose (identity rotations), semges_core axes."""
        return self.skeleton.rest_positions()
