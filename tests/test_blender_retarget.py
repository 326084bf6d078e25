"""Retargeting and keying onto real armatures with the real bpy (Blender 5.0 and 4.2 LTS).

Three kinds of target: the BEAT skeleton (imported from a .bvh written by semges_core, and
built from the skeleton's offsets), a Mixamo-named rig in an A-pose with random bone rolls,
brought in FBX-style (Y-up bones, object rotated and scaled), and Rigify's human metarig.
After keying a motion with clear arm movement, the target's upper-arm and forearm world
directions must follow the source's (tolerance DIRECTION_TOLERANCE; measured: below 0.001
degree, the float32 key values being the only error), with one key per frame.
"""

from __future__ import annotations

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from semges_blender.errors import MappingError, MissingBonesError  # noqa: E402
from semges_blender.keyframes import SLOTTED_ACTIONS, action_fcurves, apply_motion, scene_fps  # noqa: E402
from semges_blender.presets import builtin_mapping, resolve_bones  # noqa: E402
from semges_blender.rigs import create_beat_armature  # noqa: E402
from semges_blender.source import SourceMotion  # noqa: E402
from test_blender_common import build_mixamo_rig, direction_errors, gesture_motion  # noqa: E402

pytestmark = pytest.mark.blender

DIRECTION_TOLERANCE = 1.0  # degrees; the brief allows 10, the maths is exact up to float32 keys
FRAMES = (1, 12, 20, 30, 45, 55, 66, 72)  # at the factory 24 fps: rest, "big" stroke, "up" stroke, ...


@pytest.fixture(autouse=True)
def empty_scene():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    yield
    bpy.ops.wm.read_factory_settings(use_empty=True)


@pytest.fixture(scope="module")
def motion() -> SourceMotion:
    return SourceMotion.from_motion(gesture_motion(fps=30.0, seconds=3.0))


def check_result(obj, result, motion: SourceMotion, start_frame: int = 1):
    """Keys: each mapped bone's rotation in its own mode, first to last frame; the take plays on the SemGes track."""
    from semges_blender.keyframes import rotation_path
    from semges_blender.takes import active_take

    fps = scene_fps(bpy.context.scene)
    at_fps = motion.resample(fps)
    fcurves = action_fcurves(result.action, obj)
    modes = {b: obj.pose.bones[b].rotation_mode for b in result.bones}
    assert len(fcurves) == sum(3 if m not in ("QUATERNION", "AXIS_ANGLE") else 4 for m in modes.values())
    assert result.n_frames == at_fps.n_frames
    for fc in fcurves:
        assert fc.data_path.endswith("." + rotation_path(modes[fc.data_path.split('"')[1]]))
        assert 2 <= len(fc.keyframe_points) <= at_fps.n_frames
        assert tuple(fc.range()) == (start_frame, start_frame + at_fps.n_frames - 1)
    assert result.keys_after == sum(len(fc.keyframe_points) for fc in fcurves) <= result.keys_before
    assert obj.animation_data.nla_tracks["SemGes"].strips[-1].action == result.action
    assert active_take(obj) == result.action
    return at_fps


def import_beat_bvh(tmp_path):
    from semges_core.formats.bvh import write_bvh
    from semges_core.motion.clip import Motion
    from semges_core.motion.skeleton import BEAT_SKELETON

    path = tmp_path / "beat_rest.bvh"
    write_bvh(path, Motion.rest(BEAT_SKELETON, 2, 30.0))
    assert bpy.ops.import_anim.bvh(filepath=str(path), global_scale=0.01) == {'FINISHED'}
    return bpy.context.object


@pytest.mark.parametrize("how", ["bvh_import", "from_skeleton"])
def test_beat_armature_follows_the_source(how, motion, tmp_path):
    obj = import_beat_bvh(tmp_path) if how == "bvh_import" else create_beat_armature()
    imported = obj.animation_data.action if obj.animation_data else None
    result = apply_motion(obj, motion, "auto", action_name="speech.wav")
    assert result.mapping == "beat" and result.action.name == "speech.wav"
    if imported is not None:
        assert obj.animation_data.nla_tracks[imported.name].strips[0].action == imported, \
            "the BVH's own action is pushed down and keeps playing under the take"
    at_fps = check_result(obj, result, motion)
    bones, _ = resolve_bones(builtin_mapping("beat"), [b.name for b in obj.data.bones])
    err = direction_errors(obj, at_fps, bones, FRAMES)
    assert err.max() < DIRECTION_TOLERANCE, err
    # Hand (wrist -> middle knuckle) and head follow too.
    err = direction_errors(obj, at_fps, bones, FRAMES, segments=(("RHand", "RHandM1"), ("Neck", "Head")))
    assert err.max() < DIRECTION_TOLERANCE, err
    # The arms really move (else the test proves little): the right forearm swings > 45 degrees.
    from test_blender_common import angle_deg

    pos = at_fps.world_positions()
    fore = pos[:, at_fps.index("RHand")] - pos[:, at_fps.index("RArm1")]
    assert max(angle_deg(fore[0], fore[f - 1]) for f in FRAMES) > 45.0


def test_mixamo_a_pose_with_rolls_fbx_style(motion):
    obj = build_mixamo_rig()
    result = apply_motion(obj, motion, "auto", start_frame=10, action_name="take")
    assert result.mapping == "mixamo"
    at_fps = check_result(obj, result, motion, start_frame=10)
    bones, missing = resolve_bones(builtin_mapping("mixamo"), [b.name for b in obj.data.bones])
    assert not missing
    err = direction_errors(obj, at_fps, bones, [f + 9 for f in FRAMES], start_frame=10)
    assert err.max() < DIRECTION_TOLERANCE, err
    err = direction_errors(obj, at_fps, bones, [f + 9 for f in FRAMES], start_frame=10,
                           segments=(("RHand", "RHandM1"), ("LHandI1", "LHandI2"), ("RShoulder", "RArm")))
    assert err.max() < DIRECTION_TOLERANCE, err


def test_mixamo_namespace_and_turned_object(motion):
    """A "mixamorig7:" namespace is matched, and a rig turned 90 degrees about Z gets the turned motion."""
    obj = build_mixamo_rig(fbx_style=False)
    for b in obj.data.bones:
        b.name = b.name.replace("mixamorig:", "mixamorig7:")
    obj.rotation_euler = (0.0, 0.0, np.pi / 2)
    bpy.context.view_layer.update()
    result = apply_motion(obj, motion, "mixamo")
    at_fps = check_result(obj, result, motion)
    bones, _ = resolve_bones(builtin_mapping("mixamo"), [b.name for b in obj.data.bones])
    turn = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    err = direction_errors(obj, at_fps, bones, FRAMES, turn=turn)
    assert err.max() < DIRECTION_TOLERANCE, err


METARIG_SCRIPT = """
import os, sys, bpy
bpy.ops.wm.read_factory_settings(use_empty=True)
bpy.ops.preferences.addon_enable(module="rigify")
assert bpy.ops.object.armature_human_metarig_add() == {'FINISHED'}
bpy.ops.wm.save_as_mainfile(filepath=sys.argv[-1])
sys.stdout.flush()
os._exit(0)  # Blender 4.2's bpy module crashes at exit once rigify was enabled
"""


@pytest.fixture(scope="module")
def metarig_blend(tmp_path_factory):
    """Rigify's human metarig, made in a child process so rigify never loads into the test process."""
    import subprocess
    import sys

    path = tmp_path_factory.mktemp("metarig") / "metarig.blend"
    run = subprocess.run([sys.executable, "-c", METARIG_SCRIPT, str(path)], capture_output=True, text=True,
                         timeout=120)
    if run.returncode != 0 or not path.is_file():
        pytest.skip(f"rigify's metarig could not be made in this bpy build: {run.stderr[-500:]}")
    return path


def add_metarig(path):
    with bpy.data.libraries.load(str(path)) as (src, dst):
        dst.objects = ["metarig"]
    obj = dst.objects[0]
    bpy.context.scene.collection.objects.link(obj)
    return obj


@pytest.mark.parametrize("deform", [False, True])
def test_rigify_metarig(deform, motion, metarig_blend):
    obj = add_metarig(metarig_blend)
    if deform:  # a constraint-free armature with Rigify's deform names (DEF-...)
        for b in obj.data.bones:
            b.name = "DEF-" + b.name
    result = apply_motion(obj, motion, "auto")
    assert result.mapping == ("rigify_deform" if deform else "rigify_metarig")
    at_fps = check_result(obj, result, motion)
    bones, _ = resolve_bones(builtin_mapping(result.mapping), [b.name for b in obj.data.bones])
    err = direction_errors(obj, at_fps, bones, FRAMES)
    assert err.max() < DIRECTION_TOLERANCE, err
    err = direction_errors(obj, at_fps, bones, FRAMES, segments=(("RHandI1", "RHandI2"), ("Neck", "Head")))
    assert err.max() < DIRECTION_TOLERANCE, err


def test_missing_bones_are_named_and_nothing_changes(motion):
    lacking = ("mixamorig:LeftHandPinky1", "mixamorig:LeftHandPinky2", "mixamorig:LeftHandPinky3",
               "mixamorig:LeftHandPinky4")
    obj = build_mixamo_rig(without=lacking)
    modes = {pb.name: pb.rotation_mode for pb in obj.pose.bones}
    actions = set(bpy.data.actions)
    with pytest.raises(MissingBonesError) as e:
        apply_motion(obj, motion, "mixamo")
    msg = str(e.value)
    for name in lacking[:3]:
        assert name in msg
    assert "nothing was changed" in msg
    assert set(bpy.data.actions) == actions and obj.animation_data is None
    assert {pb.name: pb.rotation_mode for pb in obj.pose.bones} == modes
    # Allowed on request: the rest is keyed and the skipped bones are reported.
    result = apply_motion(obj, motion, "mixamo", allow_missing=True)
    assert sorted(result.skipped) == sorted(lacking[:3])
    assert len(result.bones) == len(builtin_mapping("mixamo").bones) - 3


def test_not_an_armature_and_unknown_rig(motion):
    mesh = bpy.data.objects.new("Empty", None)
    bpy.context.scene.collection.objects.link(mesh)
    with pytest.raises(MappingError, match="not an armature"):
        apply_motion(mesh, motion)
    arm = bpy.data.objects.new("Odd", bpy.data.armatures.new("Odd"))
    bpy.context.scene.collection.objects.link(arm)
    with pytest.raises(MappingError, match="match none of the presets"):
        apply_motion(arm, motion, "auto")
    assert len(bpy.data.actions) == 0


def test_rerun_adds_an_action_and_keeps_the_old_one(motion):
    obj = create_beat_armature()
    first = apply_motion(obj, motion, "beat", action_name="speech").action
    second = apply_motion(obj, motion, "beat", action_name="speech").action
    assert first.name == "speech" and second.name == "speech.001"
    assert first.use_fake_user and second.use_fake_user
    strips = obj.animation_data.nla_tracks["SemGes"].strips
    assert [s.action for s in strips] == [second], "the new take plays; the old one stays listed"
    if SLOTTED_ACTIONS:
        assert strips[0].action_slot is not None


def test_frame_rate_start_frame_and_rotation_modes(motion):
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 30, 1.001  # 29.97 fps: a real resample
    scene.frame_start, scene.frame_end = 1, 20
    obj = create_beat_armature()
    obj.pose.bones["Hips"].rotation_mode = 'XYZ'
    obj.pose.bones["RArm"].rotation_mode = 'ZXY'
    result = apply_motion(obj, motion, "beat", start_frame=101)
    at_fps = check_result(obj, result, motion, start_frame=101)
    assert at_fps.n_frames == 89  # floor((90 - 1) * 29.97 / 30) + 1
    assert (scene.frame_start, scene.frame_end) == (1, 189)  # extended, not shrunk
    assert obj.pose.bones["Hips"].rotation_mode == 'XYZ', "unmapped bones are untouched"
    assert obj.pose.bones["RArm"].rotation_mode == 'ZXY', "keyed in its own mode, never changed"
    bones, _ = resolve_bones(builtin_mapping("beat"), [b.name for b in obj.data.bones])
    err = direction_errors(obj, at_fps, bones, (101, 130, 160, 189), start_frame=101)
    assert err.max() < DIRECTION_TOLERANCE, err


def test_keys_are_written_in_bulk_fast(motion):
    """60 s at 30 fps onto 51 bones: bulk writes keep it well under a second."""
    import time

    long = SourceMotion(motion.skeleton, 30.0, np.tile(motion.root_positions, (20, 1)),
                        np.tile(motion.rotations, (20, 1, 1)))
    bpy.context.scene.render.fps = 30
    obj = create_beat_armature()
    t = time.perf_counter()
    result = apply_motion(obj, long, "beat")
    assert result.n_frames == 1800
    assert time.perf_counter() - t < 5.0
