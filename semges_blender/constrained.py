"""Retargeting onto bones whose parents follow constraints (a generated Rigify rig), solved by Blender.

`retarget.pose_quaternions` assumes a bone's parent moves only through the hierarchy.
A generated Rigify rig breaks that: its FK controls hang from MCH bones that copy
rotations from elsewhere, with influences set by sliders. Rather than model every kind
of constraint, we let Blender evaluate them. Per frame, temporary empties hold the
world orientation each mapped bone must reach (what `retarget.armature_targets` asks
for), Copy Rotation constraints pull the mapped bones onto them, and after the
evaluation each bone's local rotation is read back with `Object.convert_space`, which
takes the evaluated parents into account. Then everything temporary is removed, the
armature is as it was, and those rotations become ordinary keys. It costs about 1 ms
a frame, against well under 0.1 ms for the direct solution, so it is used only where a
constraint sits between mapped bones and the root.
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

import bpy
import numpy as np

from semges_core.motion.rotations import matrix_to_quat, quat_continuous

from .retarget import TargetRig

SOLVER_TAG = "SemGes solve"


def constrained_ancestors(obj: bpy.types.Object, bones: Iterable[str]) -> list[str]:
    """Unmapped bones above the mapped ones that a live constraint can move (unmuted, influence > 0)."""
    mapped = set(bones)
    seen: set[str] = set()
    out = []
    for name in mapped:
        bone = obj.data.bones[name].parent
        while bone is not None and bone.name not in seen:
            seen.add(bone.name)
            if bone.name not in mapped and any(not c.mute and c.influence > 0
                                               for c in obj.pose.bones[bone.name].constraints):
                out.append(bone.name)
            bone = bone.parent
    return sorted(out)


def solve_through_constraints(obj: bpy.types.Object, rig: TargetRig, targets: dict[int, np.ndarray],
                              on_frame: Callable[[int, int], None] | None = None,
                              properties: Sequence[tuple[str, str, float]] = ()) -> dict[str, np.ndarray]:
    """Pose-bone rotation_quaternion (T, 4) per mapped bone that puts it at `targets` (armature space).

    Bones that are not mapped keep their current pose, as in `retarget.pose_quaternions`;
    the armature's own action is set aside while solving, and `properties` (bone, custom
    property, value) hold the values the keys will be played with (Rigify's IK/FK switch
    decides which chain the hands, and so the fingers' parents, follow). Whatever happens,
    the armature, its properties, constraints and action are left as they were and the
    temporary objects removed. `on_frame(done, total)` is called as frames are solved
    (it may raise to cancel).
    """
    names = [rig.bones[b] for b in sorted(targets)]  # parents first
    T = next(iter(targets.values())).shape[0]
    world = [matrix_to_quat(rig.world @ targets[b]) for b in sorted(targets)]  # (T, 4) world orientation each
    anim = obj.animation_data
    old_action = anim.action if anim is not None else None
    old_slot = getattr(anim, "action_slot", None) if anim is not None else None
    view_layer = bpy.context.view_layer
    collection = bpy.context.scene.collection
    empties: list[bpy.types.Object] = []
    added: list[tuple[str, bpy.types.Constraint]] = []
    out = {n: np.empty((T, 4)) for n in names}
    old_props = [(b, p, obj.pose.bones[b][p]) for b, p, _ in properties]
    try:
        for b, p, v in properties:
            obj.pose.bones[b][p] = v
        if anim is not None and old_action is not None:
            anim.action = None  # the new action replaces it: unmapped bones keep their current pose
        for n in names:
            empty = bpy.data.objects.new(f"{SOLVER_TAG} {n}", None)
            empty.rotation_mode = 'QUATERNION'
            collection.objects.link(empty)
            empties.append(empty)
            con = obj.pose.bones[n].constraints.new('COPY_ROTATION')
            con.name = SOLVER_TAG
            con.target = empty
            con.target_space = con.owner_space = 'WORLD'
            added.append((n, con))
        for t in range(T):
            for empty, q in zip(empties, world):
                empty.rotation_quaternion = q[t]
            view_layer.update()
            for n in names:
                pb = obj.pose.bones[n]
                local = obj.convert_space(pose_bone=pb, matrix=pb.matrix, from_space='POSE', to_space='LOCAL')
                out[n][t] = tuple(local.to_quaternion())
            if on_frame is not None:
                on_frame(t + 1, T)
    finally:
        for b, p, v in old_props:
            obj.pose.bones[b][p] = v
        for n, con in added:
            obj.pose.bones[n].constraints.remove(con)
        for empty in empties:
            bpy.data.objects.remove(empty)
        if anim is not None and old_action is not None:
            anim.action = old_action
            if old_slot is not None:
                anim.action_slot = old_slot
        view_layer.update()
    return {n: quat_continuous(q) for n, q in out.items()}
