"""A generated Rigify rig, the rig most Blender animators use, keyed through its FK controls.

Its FK controls hang from MCH bones that follow constraints, so the keys are solved by
Blender's own evaluation (semges_blender.constrained). What the animator sees is the
deform (DEF-) bones: they must point where the source's limbs point, on every frame.
"""

from __future__ import annotations

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from semges_blender.constrained import SOLVER_TAG, constrained_ancestors  # noqa: E402
from semges_blender.keyframes import action_fcurves, apply_motion  # noqa: E402
from semges_blender.takes import active_take  # noqa: E402
from semges_blender.presets import builtin_mapping  # noqa: E402
from semges_blender.source import SourceMotion  # noqa: E402
from test_blender_common import (EXAMPLE_TG, EXAMPLE_WAV, direction_errors, gesture_motion,  # noqa: E402,F401
                                 registered_addon, scene_at_30fps)

pytestmark = pytest.mark.blender

FRAMES = (1, 12, 20, 30, 45, 55, 66, 72, 90)
# What the animator sees: source joint -> the deform bone whose head sits on it.
DEFORM = {"Spine3": "DEF-spine.003", "Neck": "DEF-spine.004", "Head": "DEF-spine.006",
          **{f"{s}{j}": f"DEF-{b}.{s}" for s in "RL" for j, b in (
              ("Shoulder", "shoulder"), ("Arm", "upper_arm"), ("Arm1", "forearm"), ("Hand", "hand"),
              ("HandI1", "f_index.01"), ("HandI2", "f_index.02"), ("HandI3", "f_index.03"),
              ("HandP1", "f_pinky.01"), ("HandP2", "f_pinky.02"),
              ("HandT1", "thumb.01"), ("HandT2", "thumb.02"), ("HandT3", "thumb.03"))}}
SEGMENTS = tuple((f"{s}{a}", f"{s}{b}") for s in "RL" for a, b in (
    ("Shoulder", "Arm"), ("Arm", "Arm1"), ("Arm1", "Hand"), ("HandI1", "HandI2"), ("HandI2", "HandI3"),
    ("HandP1", "HandP2"), ("HandT1", "HandT2"), ("HandT2", "HandT3"))) + (("Spine3", "Neck"),)


@pytest.fixture
def rigify_rig(scene_at_30fps):
    bpy.ops.preferences.addon_enable(module="rigify")
    try:
        bpy.ops.object.armature_human_metarig_add()
        bpy.ops.pose.rigify_generate()
        rig = bpy.context.view_layer.objects.active
        assert rig.name == "rig" and "upper_arm_fk.L" in rig.pose.bones
        yield rig
    finally:
        bpy.ops.preferences.addon_disable(module="rigify")  # (the 4.2 module's exit crash: see conftest)


@pytest.fixture(scope="module")
def motion():
    return SourceMotion.from_motion(gesture_motion(fps=30.0, seconds=3.0))


def _constraint_counts(rig):
    return {pb.name: len(pb.constraints) for pb in rig.pose.bones}


def test_deform_bones_follow_the_source_through_the_fk_controls(rigify_rig, motion):
    rig = rigify_rig
    mapping = builtin_mapping("rigify_fk")
    assert constrained_ancestors(rig, mapping.bones.values()), "why the solver is needed at all"
    objects, constraints, frame = len(bpy.data.objects), _constraint_counts(rig), bpy.context.scene.frame_current
    assert rig.pose.bones["upper_arm_parent.L"]["IK_FK"] == 0.0  # Rigify's default: arms in IK

    result = apply_motion(rig, motion, "auto", action_name="speech", key_tolerance=None)  # exact keys

    assert result.mapping == "rigify_fk" and set(result.bones) == set(mapping.bones.values())
    assert result.warnings == []
    # Arms switched to FK, and keyed so that the action carries the switch.
    paths = {fc.data_path: fc for fc in action_fcurves(result.action, rig)}
    for side in "LR":
        assert rig.pose.bones[f"upper_arm_parent.{side}"]["IK_FK"] == 1.0
        fc = paths[f'pose.bones["upper_arm_parent.{side}"]["IK_FK"]']
        assert fc.evaluate(1) == 1.0
    # Nothing temporary is left, and the scene stayed on its frame.
    assert len(bpy.data.objects) == objects and not [o for o in bpy.data.objects if o.name.startswith(SOLVER_TAG)]
    assert _constraint_counts(rig) == constraints
    assert bpy.context.scene.frame_current == frame

    err = direction_errors(rig, motion, DEFORM, FRAMES, segments=SEGMENTS)
    assert err.max() < 0.05, np.round(err, 3)  # measured: below 0.001 degrees
    # The arms really move, so the comparison is not of a rest pose.
    pos = motion.world_positions()
    fore = pos[:, motion.index("RHand")] - pos[:, motion.index("RArm1")]
    cos = (fore @ fore[0]) / np.linalg.norm(fore, axis=1) / np.linalg.norm(fore[0])
    assert np.degrees(np.arccos(np.clip(cos, -1, 1))).max() > 45.0


def test_the_numpy_solution_alone_would_miss_on_this_rig(rigify_rig, motion):
    """Why the evaluation exists: ignoring the MCH constraints puts the arms elsewhere."""
    from semges_blender.keyframes import resolve_bones
    from semges_blender.retarget import pose_quaternions, read_target_rig

    rig = rigify_rig
    for side in "LR":
        rig.pose.bones[f"upper_arm_parent.{side}"]["IK_FK"] = 1.0
    bones, _ = resolve_bones(builtin_mapping("rigify_fk"), [b.name for b in rig.data.bones])
    quats = pose_quaternions(read_target_rig(rig), motion, bones)
    for frame in FRAMES:
        bpy.context.scene.frame_set(frame)
        for name, q in quats.items():
            rig.pose.bones[name].rotation_mode = 'QUATERNION'
            rig.pose.bones[name].rotation_quaternion = q[frame - 1]
        bpy.context.view_layer.update()
        err = direction_errors(rig, motion, DEFORM, [frame], segments=SEGMENTS)
        if err.max() > 5.0:
            return
    pytest.fail("the direct solution matched on every frame: the constraint solve would be unnecessary")


def test_a_failure_while_solving_leaves_the_rig_as_it_was(rigify_rig, motion):
    rig = rigify_rig
    before = {pb.name: (tuple(pb.rotation_quaternion), pb.rotation_mode) for pb in rig.pose.bones}
    objects, actions, constraints = len(bpy.data.objects), len(bpy.data.actions), _constraint_counts(rig)

    def fail(done: int, total: int) -> None:
        if done == 10:
            raise KeyboardInterrupt("cancelled")

    with pytest.raises(KeyboardInterrupt):
        apply_motion(rig, motion, "rigify_fk", on_solve_frame=fail)
    assert len(bpy.data.objects) == objects and len(bpy.data.actions) == actions
    assert _constraint_counts(rig) == constraints
    assert rig.pose.bones["upper_arm_parent.L"]["IK_FK"] == 0.0
    assert {pb.name: (tuple(pb.rotation_quaternion), pb.rotation_mode) for pb in rig.pose.bones} == before


def test_generate_gestures_on_a_rigify_rig(registered_addon, rigify_rig, tiny_bundle):
    """The button an animator presses, on the rig they have: speech in, FK keys out."""
    rig = rigify_rig
    s = bpy.context.scene.semges
    s.audio_path, s.transcript_source, s.transcript_path = str(EXAMPLE_WAV), 'FILE', str(EXAMPLE_TG)
    s.armature, s.model_path, s.device, s.add_audio = rig, str(tiny_bundle), 'cpu', False
    assert s.preset == "auto"
    objects = len(bpy.data.objects)
    assert bpy.ops.semges.generate() == {'FINISHED'}  # background mode: synchronous
    action = active_take(rig)
    assert action.name == "speech"
    paths = {fc.data_path for fc in action_fcurves(action, rig)}
    assert 'pose.bones["upper_arm_fk.R"].rotation_quaternion' in paths
    assert 'pose.bones["upper_arm_parent.R"]["IK_FK"]' in paths
    assert len(bpy.data.objects) == objects


def test_editing_the_rigify_presets_rows_keeps_its_fk_switch(registered_addon, rigify_rig, tmp_path):
    """Fill from Preset, edit, save, load: the rows carry the preset's pose properties along."""
    import json

    from semges_blender.properties import custom_mapping

    rig = rigify_rig
    s = bpy.context.scene.semges
    s.armature = rig
    assert bpy.ops.semges.fill_mapping(preset="rigify_fk") == {'FINISHED'}
    assert s.preset == "custom"
    expected = builtin_mapping("rigify_fk").properties
    assert custom_mapping(s).properties == expected
    path = tmp_path / "my_rigify.json"
    assert bpy.ops.semges.save_preset(filepath=str(path)) == {'FINISHED'}
    assert json.loads(path.read_text())["properties"] == expected
    s.mapping_rows.clear()
    assert bpy.ops.semges.load_preset(filepath=str(path)) == {'FINISHED'}
    result = apply_motion(rig, SourceMotion.from_motion(gesture_motion(fps=30.0, seconds=0.5)), custom_mapping(s))
    assert rig.pose.bones["upper_arm_parent.R"]["IK_FK"] == 1.0 and result.warnings == []
