"""BEAT2's SMPL-X motion (`.npz`) read onto the BEAT skeleton, so real captures can be compared.

BEAT2 ships its motion capture as SMPL-X parameters, not BVH: `poses` (T, 165) is the
axis-angle rotation of 55 joints (SMPL-X order below), `trans` (T, 3) the body's
translation in metres, `mocap_frame_rate` 30 (AMASS files spell it `mocap_framerate`).
Each SMPL-X joint is put on its BEAT counterpart (docs/motion-statistics.md): collar ->
`Shoulder`, shoulder -> `Arm`, elbow -> `Arm1`, wrist -> `Hand`, spine1..3 -> `Spine`,
`Spine1`, `Spine2` (`Spine3` stays at rest), neck -> `Neck`, head -> `Head` (`Neck1` stays
at rest), finger joints 1..3 -> `Hand{I,M,R,P,T}1..3`, the legs onto the legs. Jaw, eyes
and the BEAT-only joints (finger metacarpals and tips, `FootF`) keep their rest pose.

Why the rotations are copied unchanged: both skeletons rest in a T-pose, Y up, facing
+Z with the character's left at +X, and in both a joint's local rotation is expressed in
its parent's rest frame, which is world-aligned (SMPL-X poses rotate the template's
joints about world axes; a BVH joint's channels rotate its rest offsets, also world
axes). The rest frames are the same, so the change of frame between them is the
identity and no conjugation is needed.

What is exact and what is not:
- Angular speeds (and anything else computed from the local rotations alone) are
  exact: they do not depend on the joint frames or the bones at all. The torso and head
  speeds compose the chains, so spine1..3 over BEAT's four spine joints and head over
  `Neck1`.`Head` give the SMPL-X values exactly.
- Bone directions come from the BEAT skeleton's rest offsets, not from the SMPL-X
  template (which needs the licensed model file). SMPL-X's rest arm is a T-pose too but
  not perfectly straight and level, so elbow flexion and wrist positions can differ from
  those on the SMPL-X mesh by that rest-pose difference (a few degrees).
- The root: BEAT's `Hips` rest position plus the displacement of `trans` from its first
  frame (SMPL-X places the pelvis relative to a body-shape dependent joint we cannot
  compute without the model); none of the statistics use it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from semges_core.errors import InputFileError
from semges_core.motion.clip import Motion
from semges_core.motion.rotations import axis_angle_to_quat
from semges_core.motion.skeleton import BEAT_SKELETON, Skeleton

_FINGER_NAMES = (("index", "I"), ("middle", "M"), ("pinky", "P"), ("ring", "R"), ("thumb", "T"))

SMPLX_JOINTS: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle",
    "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "jaw", "left_eye_smplhf", "right_eye_smplhf",
) + tuple(f"{side}_{finger}{i}" for side in ("left", "right") for finger, _ in _FINGER_NAMES for i in (1, 2, 3))
assert len(SMPLX_JOINTS) == 55


def _beat_names() -> dict[str, str]:
    """SMPL-X joint name -> BEAT joint name, for every joint that has a counterpart."""
    names = {"pelvis": "Hips", "spine1": "Spine", "spine2": "Spine1", "spine3": "Spine2",
             "neck": "Neck", "head": "Head"}
    for side, s in (("left", "L"), ("right", "R")):
        names.update({f"{side}_collar": f"{s}Shoulder", f"{side}_shoulder": f"{s}Arm",
                      f"{side}_elbow": f"{s}Arm1", f"{side}_wrist": f"{s}Hand",
                      f"{side}_hip": f"{s}UpLeg", f"{side}_knee": f"{s}Leg",
                      f"{side}_ankle": f"{s}Foot", f"{side}_foot": f"{s}ToeBase"})
        for finger, f in _FINGER_NAMES:
            names.update({f"{side}_{finger}{i}": f"{s}Hand{f}{i}" for i in (1, 2, 3)})
    return names


SMPLX_TO_BEAT: dict[str, str] = _beat_names()
_FPS_KEYS = ("mocap_frame_rate", "mocap_framerate")


def is_smplx_npz(path: str | Path) -> bool:
    """True when the `.npz` holds SMPL-X `poses` (BEAT2, AMASS), not our own motion arrays."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return "poses" in z.files and "quaternions" not in z.files
    except (OSError, ValueError):
        return False


def read_smplx_npz(path: str | Path, skeleton: Skeleton = BEAT_SKELETON) -> Motion:
    """A BEAT2 SMPL-X `.npz` as a Motion on `skeleton` (BEAT names); InputFileError names what is wrong."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files if k in ("poses", "trans", *_FPS_KEYS)}
    except FileNotFoundError:
        raise InputFileError(path, "file not found") from None
    except (OSError, ValueError) as e:
        raise InputFileError(path, f"not a readable .npz file ({e})") from None
    if "poses" not in arrays:
        raise InputFileError(path, "not an SMPL-X motion .npz: no 'poses' array")
    poses = np.asarray(arrays["poses"], dtype=np.float64)
    if poses.ndim != 2 or poses.shape[1] != 3 * len(SMPLX_JOINTS):
        raise InputFileError(path, f"'poses' must have shape (T, {3 * len(SMPLX_JOINTS)}) "
                                   f"(55 SMPL-X joints of axis-angle), got {poses.shape}")
    if not np.isfinite(poses).all():
        raise InputFileError(path, "'poses' holds NaN or infinite values")
    fps_key = next((k for k in _FPS_KEYS if k in arrays), None)
    if fps_key is None:
        raise InputFileError(path, "no 'mocap_frame_rate' (frames per second) in the file")
    fps = float(np.asarray(arrays[fps_key]).reshape(-1)[0]) if np.asarray(arrays[fps_key]).size else float("nan")
    if not np.isfinite(fps) or fps <= 0:
        raise InputFileError(path, f"'{fps_key}' must be a positive number, got {arrays[fps_key]!r}")
    n = len(poses)
    trans = np.asarray(arrays.get("trans", np.zeros((n, 3))), dtype=np.float64)
    if trans.shape != (n, 3) or not np.isfinite(trans).all():
        raise InputFileError(path, f"'trans' must be finite with shape ({n}, 3) to match 'poses', got {trans.shape}")

    quats = axis_angle_to_quat(poses.reshape(n, len(SMPLX_JOINTS), 3))  # (T, 55, 4)
    motion = Motion.rest(skeleton, n, fps)
    try:
        src = [SMPLX_JOINTS.index(name) for name in SMPLX_TO_BEAT]
        dst = skeleton.indices(list(SMPLX_TO_BEAT.values()))
    except KeyError as e:
        raise InputFileError(path, f"cannot map SMPL-X onto this skeleton: {e.args[0]}") from None
    motion.rotations[:, dst] = quats[:, src]
    # Displacement only: SMPL-X's pelvis sits at trans + a shape-dependent joint we cannot compute.
    motion.root_positions[:] = skeleton.offsets[0] + 100.0 * (trans - trans[:1] if n else trans)
    return motion
