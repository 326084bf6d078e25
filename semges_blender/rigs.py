"""Building armatures from a skeleton: the BEAT rig itself (what Blender's BVH importer makes).

`create_beat_armature` gives a clean target that the "beat" preset drives one to one,
and a reference for tests. Units: semges_core's centimetres times `scale`
(0.01 gives metres); axes converted to Blender's (file (x, y, z) -> (x, -z, y)).
"""

from __future__ import annotations

import bpy
import numpy as np

from semges_core.motion.skeleton import Skeleton

from .source import BEAT_TO_BLENDER


def skeleton_rest_positions(names, parents, offsets) -> np.ndarray:
    """(J, 3) rest positions from bare arrays: `Skeleton.rest_positions` (the Euler orders play no part)."""
    return Skeleton(tuple(names), tuple(parents), offsets, ("XYZ",) * len(names)).rest_positions()


def create_armature_from_joints(name: str, joints: dict[str, tuple[np.ndarray, str | None, np.ndarray | None]],
                                rolls: dict[str, float] | None = None,
                                collection: bpy.types.Collection | None = None) -> bpy.types.Object:
    """An armature object from {bone: (head, parent or None, tail or None)} in armature space.

    A missing tail is put at the head of the bone's first child, or continues the parent
    direction for leaves. Joins nothing (use_connect False) so heads stay exactly where given.
    """
    arm = bpy.data.armatures.new(name)
    obj = bpy.data.objects.new(name, arm)
    (collection or bpy.context.scene.collection).objects.link(obj)
    children: dict[str, list[str]] = {}
    for bone, (_, parent, _) in joints.items():
        if parent is not None:
            children.setdefault(parent, []).append(bone)
    prev_active = bpy.context.view_layer.objects.active
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode='EDIT')
    try:
        ebones = {}
        for bone, (head, parent, tail) in joints.items():
            eb = arm.edit_bones.new(bone)
            head = np.asarray(head, dtype=np.float64)
            if tail is None:
                kids = children.get(bone)
                if kids:
                    tail = np.asarray(joints[kids[0]][0], dtype=np.float64)
                elif parent is not None:
                    d = head - np.asarray(joints[parent][0], dtype=np.float64)
                    tail = head + 0.5 * d
                else:
                    tail = head + np.array([0.0, 0.0, 0.1])
            if np.linalg.norm(np.asarray(tail) - head) < 1e-6:
                tail = head + np.array([0.0, 0.0, 1e-3])
            eb.head, eb.tail = tuple(head), tuple(tail)
            if rolls and bone in rolls:
                eb.roll = rolls[bone]
            ebones[bone] = eb
        for bone, (_, parent, _) in joints.items():
            if parent is not None:
                ebones[bone].parent = ebones[parent]
    finally:
        bpy.ops.object.mode_set(mode='OBJECT')
        bpy.context.view_layer.objects.active = prev_active or obj
    return obj


def create_beat_armature(name: str = "BEAT", scale: float = 0.01) -> bpy.types.Object:
    """The 75-joint BEAT skeleton in its T-pose rest, Blender axes, `scale` units per cm."""
    from semges_core.motion.skeleton import BEAT_SKELETON as sk

    pos = sk.rest_positions() @ BEAT_TO_BLENDER.T * scale
    joints = {}
    for j, n in enumerate(sk.names):
        tail = None
        if sk.end_sites[j] is not None:
            tail = pos[j] + BEAT_TO_BLENDER @ np.asarray(sk.end_sites[j]) * scale
        joints[n] = (pos[j], None if sk.parents[j] < 0 else sk.names[sk.parents[j]], tail)
    return create_armature_from_joints(name, joints)
