"""Generated motion as an `.npz` of arrays, for tools that do not read BVH.

Holds local joint rotations as quaternions (w, x, y, z) and as Euler degrees in
each joint's BVH order, the root trajectory, the 141-value BEAT pose vector and
the skeleton (names, parents, offsets), so the motion can be rebuilt exactly.
No pickled objects: strings are stored as fixed-width unicode arrays.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from semges_core.errors import InputFileError
from semges_core.fileio import atomic_path
from semges_core.motion.clip import Motion
from semges_core.motion.skeleton import UPPER_BODY_JOINTS, Skeleton


def save_motion_npz(path: str | Path, motion: Motion, euler: np.ndarray | None = None,
                    with_euler: bool = True) -> None:
    """Quaternions (what SemGes reads back) and, unless `with_euler` is False, Euler angles for other tools.

    `euler`: the motion's `euler_degrees()` when the caller already has them (they cost more
    than the rest of the file). Written uncompressed: rotation floats hardly compress, and
    zlib took longer than generating the motion.
    """
    sk = motion.skeleton
    arrays = {
        "fps": np.float64(motion.fps),
        "joint_names": np.asarray(sk.names, dtype=str),
        "parents": np.asarray(sk.parents, dtype=np.int64),
        "offsets": sk.offsets.astype(np.float64),
        "rotation_orders": np.asarray(sk.rotation_orders, dtype=str),
        "root_positions": motion.root_positions.astype(np.float32),
        "quaternions": motion.rotations.astype(np.float32),
    }
    if with_euler:
        euler = motion.euler_degrees() if euler is None else euler
        arrays["euler_degrees"] = euler.astype(np.float32)
        try:  # the 141-value pose vector: the same continuous angles, upper-body joints only
            idx = sk.indices(UPPER_BODY_JOINTS)
            arrays["upper_body_euler"] = euler[:, idx].reshape(motion.n_frames, -1).astype(np.float32)
        except KeyError:
            pass  # not a BEAT-like skeleton: no 141-value pose vector
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def load_motion_npz(path: str | Path) -> Motion:
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            sk = Skeleton(tuple(str(n) for n in z["joint_names"]), tuple(int(p) for p in z["parents"]),
                          z["offsets"], tuple(str(o) for o in z["rotation_orders"]))
            return Motion(sk, float(z["fps"]), z["root_positions"].astype(np.float64),
                          z["quaternions"].astype(np.float64))
    except FileNotFoundError:
        raise InputFileError(path, "file not found") from None
    except (KeyError, ValueError, OSError) as e:
        raise InputFileError(path, f"not a SemGes motion .npz ({e})") from None
