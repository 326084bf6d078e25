"""Retargeting BEAT-skeleton motion onto any armature, in world space (numpy; bpy only duck-typed).

For every mapped bone b, driven by BEAT joint j:

    W_b(t) = Y @ D_j(t) @ Y^T @ A_b @ W_b(rest)

- W_b: the bone's world orientation (rest: armature object rotation @ bone.matrix_local);
- D_j(t): joint j's world rotation away from its rest in the source (the BEAT rest pose
  is a T-pose whose joints all have identity world rotation, so D_j is j's global
  rotation from forward kinematics), expressed in Blender axes: file (x, y, z) ->
  Blender (x, -z, y), as Blender's BVH importer converts;
- A_b: the rest-pose correction. It turns the target bone, in its rest pose, so that it
  points where the source joint points in the BEAT T-pose (the smallest such rotation),
  so an A-pose rig first stands in a T-pose and then follows the source's world
  rotations: bone directions match the source whatever the rest pose or bone roll;
- Y: a turn about the world up axis (Z) that faces the source the way the target faces,
  read from the target's upper arms (so a rig turned on its object, or imported Y-up
  from FBX with an object rotation, is handled; Y = identity without both arms mapped).

The direction a joint "points" is taken between landmarks both skeletons share: from
the joint to its first mapped descendant along its first-child chain (the shoulder to
the elbow, the wrist to the middle finger's knuckle, the spine to the next mapped spine
joint), and from the target bone's head to that descendant's bone head. Where there is
no mapped descendant, the source uses its first child's offset and the target its own
tail. Bones that are not mapped keep their current pose; parents are taken into account
through the armature's hierarchy, so mapped bones hit their world orientation even when
unmapped bones lie between them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from semges_core.motion.rotations import matrix_to_quat, quat_continuous

from .source import BEAT_TO_BLENDER, SourceMotion


@dataclass
class TargetRig:
    """What retargeting needs to know of an armature, read once (armature space, Blender axes)."""

    name: str
    bones: tuple[str, ...]  # parents before children
    parents: tuple[int, ...]  # -1 for roots
    rest: np.ndarray  # (N, 3, 3) bone.matrix_local rotation (armature space)
    heads: np.ndarray  # (N, 3) bone.head_local
    tails: np.ndarray  # (N, 3) bone.tail_local
    inherit_rotation: np.ndarray  # (N,) bool
    basis: np.ndarray  # (N, 3, 3) current pose rotation (matrix_basis), kept for unmapped bones
    world: np.ndarray  # (3, 3) armature object's world rotation (scale removed)

    def index(self, name: str) -> int:
        return self.bones.index(name)


def _rotation_part(m) -> np.ndarray:
    """3x3 rotation of a (possibly scaled) 4x4 / 3x3 matrix, by polar decomposition."""
    a = np.array([[m[i][j] for j in range(3)] for i in range(3)], dtype=np.float64)
    u, _, vt = np.linalg.svd(a)
    r = u @ vt
    if np.linalg.det(r) < 0:
        u[:, -1] *= -1
        r = u @ vt
    return r


def read_target_rig(obj) -> TargetRig:
    """Read an armature object (bpy.types.Object of type 'ARMATURE')."""
    bones = list(obj.data.bones)
    depth = {}

    def d(b):
        if b.name not in depth:
            depth[b.name] = 0 if b.parent is None else d(b.parent) + 1
        return depth[b.name]

    bones.sort(key=d)  # stable: parents before children
    names = tuple(b.name for b in bones)
    idx = {n: i for i, n in enumerate(names)}
    parents = tuple(-1 if b.parent is None else idx[b.parent.name] for b in bones)
    rest = np.stack([_rotation_part(b.matrix_local) for b in bones]) if bones else np.zeros((0, 3, 3))
    heads = np.array([tuple(b.head_local) for b in bones], dtype=np.float64).reshape(-1, 3)
    tails = np.array([tuple(b.tail_local) for b in bones], dtype=np.float64).reshape(-1, 3)
    inherit = np.array([bool(b.use_inherit_rotation) for b in bones], dtype=bool)
    pose = obj.pose.bones
    basis = np.stack([_rotation_part(pose[n].matrix_basis) for n in names]) if bones else np.zeros((0, 3, 3))
    return TargetRig(obj.name, names, parents, rest, heads, tails, inherit, basis, _rotation_part(obj.matrix_world))


# ---------------------------------------------------------------------- maths


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation (3, 3) taking direction a onto direction b."""
    a = a / max(np.linalg.norm(a), 1e-12)
    b = b / max(np.linalg.norm(b), 1e-12)
    v = np.cross(a, b)
    c = float(np.dot(a, b))
    s = float(np.linalg.norm(v))
    if s < 1e-9:
        if c > 0:
            return np.eye(3)
        # Opposite: half a turn about any axis perpendicular to a.
        axis = np.cross(a, [1.0, 0.0, 0.0] if abs(a[0]) < 0.9 else [0.0, 1.0, 0.0])
        axis /= np.linalg.norm(axis)
        return 2.0 * np.outer(axis, axis) - np.eye(3)
    k = np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])
    return np.eye(3) + k + k @ k * ((1.0 - c) / (s * s))


def _rz(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def facing_turn(rig: TargetRig, source: SourceMotion, bones: dict[str, str]) -> np.ndarray:
    """Y: the turn about world Z that lines the source's shoulders up with the target's."""
    if not {"LArm", "RArm"} <= bones.keys():
        return np.eye(3)
    rest = source.rest_positions() @ BEAT_TO_BLENDER.T
    src = rest[source.index("LArm")] - rest[source.index("RArm")]
    tgt = rig.world @ (rig.heads[rig.index(bones["LArm"])] - rig.heads[rig.index(bones["RArm"])])
    if np.hypot(*tgt[:2]) < 1e-9 or np.hypot(*src[:2]) < 1e-9:
        return np.eye(3)
    return _rz(np.arctan2(tgt[1], tgt[0]) - np.arctan2(src[1], src[0]))


def _landmark(source: SourceMotion, j: int, bones: dict[str, str]) -> int | None:
    """First mapped joint down j's first-child chain, or None."""
    k = j
    while True:
        kids = source.children(k)
        if not kids:
            return None
        k = kids[0]
        if source.names[k] in bones:
            return k


def rest_corrections(rig: TargetRig, source: SourceMotion, bones: dict[str, str], turn: np.ndarray) -> dict[str, np.ndarray]:
    """A_b per mapped joint: world rotation taking the target bone's rest direction onto the source's."""
    rest = source.rest_positions() @ BEAT_TO_BLENDER.T  # (J, 3) Blender axes, cm
    out = {}
    for joint, bone in bones.items():
        j, b = source.index(joint), rig.index(bone)
        k = _landmark(source, j, bones)
        if k is not None:
            src = rest[k] - rest[j]
            tgt = rig.heads[rig.index(bones[source.names[k]])] - rig.heads[b]
        else:
            kids = source.children(j)
            src = (rest[kids[0]] - rest[j]) if kids else BEAT_TO_BLENDER @ source.offsets[j]
            tgt = rig.tails[b] - rig.heads[b]
        if np.linalg.norm(src) < 1e-9 or np.linalg.norm(tgt) < 1e-9:
            out[joint] = np.eye(3)
        else:
            out[joint] = rotation_between(rig.world @ tgt, turn @ src)
    return out


def armature_targets(rig: TargetRig, source: SourceMotion, bones: dict[str, str]) -> dict[int, np.ndarray]:
    """The orientation (T, 3, 3) in armature space each mapped bone must reach, by bone index.

    `bones` maps BEAT joints to bone names that exist in `rig`; `source` is already at
    the frame rate to be keyed.
    """
    C = BEAT_TO_BLENDER
    turn = facing_turn(rig, source, bones)
    corr = rest_corrections(rig, source, bones, turn)
    glob = source.world_rotations()  # (T, J, 3, 3) semges_core axes
    Ro = rig.world
    # Desired armature-space orientation of each mapped bone: P_b = Ro^T Y C G C^T Y^T A_b Ro R_b.
    target: dict[int, np.ndarray] = {}
    for joint, bone in bones.items():
        b = rig.index(bone)
        left = Ro.T @ turn @ C  # (3, 3)
        right = C.T @ turn.T @ corr[joint] @ Ro @ rig.rest[b]  # (3, 3)
        target[b] = left @ glob[:, source.index(joint)] @ right  # (T, 3, 3)
    return target


def pose_quaternions(rig: TargetRig, source: SourceMotion, bones: dict[str, str]) -> dict[str, np.ndarray]:
    """Pose-bone rotation_quaternion (T, 4) per mapped target bone, continuous in sign over time.

    Exact where the bones between mapped ones follow the hierarchy alone; where constraints
    move them (a generated Rigify rig), `semges_blender.constrained` solves through Blender.
    """
    T = source.n_frames
    target = armature_targets(rig, source, bones)
    # Walk the hierarchy: posed orientation P of every bone on a path to a mapped bone.
    needed = set()
    for b in target:
        while b >= 0 and b not in needed:
            needed.add(b)
            b = rig.parents[b]
    posed: dict[int, np.ndarray] = {}
    result: dict[str, np.ndarray] = {}
    for b in sorted(needed):  # parents come first in rig order
        p = rig.parents[b]
        # Without a parent (or without inheriting its rotation): P = R_b B. Else P = P_p R_p^T R_b B.
        frame = rig.rest[b] if p < 0 or not rig.inherit_rotation[b] else posed[p] @ (rig.rest[p].T @ rig.rest[b])
        frame = np.broadcast_to(frame, (T, 3, 3))
        if b in target:
            basis = np.swapaxes(frame, -1, -2) @ target[b]  # (T, 3, 3)
            posed[b] = target[b]
            result[rig.bones[b]] = quat_continuous(matrix_to_quat(basis))
        else:
            posed[b] = frame @ rig.basis[b]
    return result
