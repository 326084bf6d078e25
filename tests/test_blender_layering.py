"""Generated gestures as a layer over the animator's work, checked on evaluated poses in real bpy.

A shot at 1001-1100 with an action keying the hips and a YXZ-keyed arm: after Generate
(the demo model, through the pipeline) the action's keys are untouched, the hips still
follow it, the arm stays YXZ, the gestures play from 1001 and the animation underneath
plays outside the take. Then: Replace vs Add, influence, intensity 0, redoing a range,
key reduction's tolerance, takes, bake, and failures that leave everything as it was.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from semges_blender import layers, takes  # noqa: E402
from semges_blender.keyframes import action_fcurves, apply_motion  # noqa: E402
from semges_blender.pipeline import GenerateOptions, Prepared, finish  # noqa: E402
from semges_blender.source import SourceMotion  # noqa: E402
from semges_blender.worker import GenerationRequest, generate_motion_file, resolve_python  # noqa: E402
from semges_core.motion.key_reduction import geodesic_deg  # noqa: E402
from semges_core.motion.rotations import matrix_to_quat  # noqa: E402
from test_blender_common import EXAMPLE_TG, EXAMPLE_WAV, build_mixamo_rig, gesture_motion  # noqa: E402

from test_blender_common import registered_addon, scene_at_30fps  # noqa: E402,F401  (fixtures)

pytestmark = pytest.mark.blender

ARM, HIPS, FOREARM = "mixamorig:RightArm", "mixamorig:Hips", "mixamorig:LeftForeArm"


@pytest.fixture(scope="module")
def demo_npz(tmp_path_factory):
    """One motion from the demo model for the example speech, at 30 fps, made once for the module."""
    out = tmp_path_factory.mktemp("demo") / "motion.npz"
    req = GenerationRequest(audio=str(EXAMPLE_WAV), transcript=str(EXAMPLE_TG), out=str(out), model="",
                            speaker="", device="cpu", seed=0, variation=0.0, fps=30.0, runtime="auto")
    from semges_blender.pipeline import demo_model_path

    req.model = str(demo_model_path())
    result = generate_motion_file(req, resolve_python(""), timeout=600)
    return result, req


def shot_with_animation():
    """Scene 1001-1100; the rig's active action "Walk" keys the hips' location and a YXZ arm."""
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = 1001, 1100
    scene.frame_set(1001)
    rig = build_mixamo_rig()
    arm, hips = rig.pose.bones[ARM], rig.pose.bones[HIPS]
    arm.rotation_mode = 'YXZ'
    for f, z, e in ((990, 0.0, (0.0, 0.0, 0.0)), (1050, 20.0, (0.6, 1.2, -0.4)), (1100, 20.0, (0.1, -0.5, 0.3))):
        hips.location = (0.0, 0.0, z)
        hips.keyframe_insert("location", frame=f)
        arm.rotation_euler = e
        arm.keyframe_insert("rotation_euler", frame=f)
    rig.animation_data.action.name = "Walk"
    return rig


def key_arrays(action, obj) -> dict:
    out = {}
    for fc in action_fcurves(action, obj):
        co = np.zeros(2 * len(fc.keyframe_points), dtype=np.float32)
        fc.keyframe_points.foreach_get("co", co)
        out[(fc.data_path, fc.array_index)] = co
    return out


def poses(rig, bones, frames) -> dict[int, np.ndarray]:
    """Evaluated local rotations (len(bones), 4) per frame, from matrix_basis, and hips location."""
    out = {}
    for f in frames:
        bpy.context.scene.frame_set(f)
        out[f] = np.array([np.array(rig.pose.bones[b].matrix_basis.to_3x3()) for b in bones])
    return out


def quats(pose: np.ndarray) -> np.ndarray:
    return matrix_to_quat(pose)


def max_angle(a: np.ndarray, b: np.ndarray) -> float:
    return float(geodesic_deg(quats(a), quats(b)).max())


def nla_state(rig):
    anim = rig.animation_data
    if anim is None:
        return None
    return (anim.action.name if anim.action else None,
            [(t.name, t.mute, [(s.name, s.action.name, s.frame_start, s.frame_end, s.blend_type, s.extrapolation)
                               for s in t.strips]) for t in anim.nla_tracks])


def scene_state(rig):
    return (sorted(a.name for a in bpy.data.actions),
            {a.name: {k: v.tolist() for k, v in key_arrays(a, rig).items()} for a in bpy.data.actions},
            nla_state(rig), {pb.name: pb.rotation_mode for pb in rig.pose.bones},
            (bpy.context.scene.frame_start, bpy.context.scene.frame_end))


def finish_with(demo, rig, **kw):
    result, req = demo
    options = GenerateOptions(audio=req.audio, armature=rig.name, transcript=req.transcript, add_audio=False, **kw)
    prepared = Prepared(req, "", None, options, bpy.context.scene.name)
    return finish(prepared, result)


def test_generate_plays_over_the_animation_from_the_shot_start(demo_npz):
    rig = shot_with_animation()
    walk = rig.animation_data.action
    walk_keys = key_arrays(walk, rig)
    mapped = ["mixamorig:Spine", ARM, FOREARM, "mixamorig:RightHand"]
    frames = [995, 1001, 1030, 1070]
    hips_before = {}
    for f in frames:
        bpy.context.scene.frame_set(f)
        hips_before[f] = tuple(rig.pose.bones[HIPS].location)
    before = poses(rig, mapped, frames)

    result = finish_with(demo_npz, rig)
    assert result.frame_start == 1001 and result.pushed_down == "Walk" and result.track == "SemGes"
    assert 0 < result.keys_after < result.keys_before
    anim = rig.animation_data
    assert anim.action is None and [t.name for t in anim.nla_tracks] == ["Walk", "SemGes"]
    assert anim.nla_tracks["Walk"].strips[0].action == walk
    strip = anim.nla_tracks["SemGes"].strips[0]
    assert strip.action == result.action and strip.frame_start == 1001 and strip.extrapolation == 'NOTHING'
    assert {k: v.tolist() for k, v in key_arrays(walk, rig).items()} == {k: v.tolist() for k, v in walk_keys.items()}
    assert rig.pose.bones[ARM].rotation_mode == 'YXZ'
    assert any(fc.data_path.endswith(f'"{ARM}"].rotation_euler') for fc in action_fcurves(result.action, rig))
    assert not any(HIPS in fc.data_path for fc in action_fcurves(result.action, rig)), "only mapped bones"
    after = poses(rig, mapped, frames)
    for f in frames:
        bpy.context.scene.frame_set(f)
        np.testing.assert_allclose(rig.pose.bones[HIPS].location, hips_before[f], atol=1e-6)
    assert max_angle(after[995], before[995]) < 1e-3, "before the take the animation plays"
    for f in (1001, 1030, 1070):
        assert max_angle(after[f], before[f]) > 5.0, f"gestures play at {f}"
    meta = takes.take_meta(result.action)
    assert meta["start_frame"] == 1001 and meta["seed"] == 0 and meta["rig"] == rig.name and meta["below"] == "Walk"


def test_after_the_take_the_animation_plays_again_and_replace_differs_from_add():
    rig = shot_with_animation()
    frames = [1020, 1050, 1095]
    bones = [ARM, FOREARM]
    before = poses(rig, bones, frames)
    motion = SourceMotion.from_motion(gesture_motion())  # 90 frames: 1001-1090
    r = apply_motion(rig, motion, "mixamo", start_frame=1001, action_name="take")
    replace = poses(rig, bones, frames)
    assert max_angle(replace[1095], before[1095]) < 1e-3
    assert max_angle(replace[1050], before[1050]) > 5.0
    layers.set_layer(rig, blend="ADD")
    assert layers.layer_settings(rig).blend == "ADD"
    assert rig.animation_data.nla_tracks["SemGes"].strips[0].blend_type == 'COMBINE'
    add = poses(rig, bones, frames)
    assert max_angle(add[1050], replace[1050]) > 5.0, "Add differs from Replace where the arm is animated"
    # Combine composes quaternions: lower @ take, for the quaternion forearm (at rest underneath: the take itself).
    assert max_angle(add[1050][1:], replace[1050][1:]) < 1e-3
    layers.set_layer(rig, blend="REPLACE", influence=0.0)
    s = layers.layer_settings(rig)
    assert (s.blend, s.influence) == ("REPLACE", 0.0)
    zero = poses(rig, bones, frames)
    for f in frames:
        assert max_angle(zero[f], before[f]) < 1e-3, "influence 0: the pose underneath"
    layers.set_layer(rig, influence=0.5, blend_in=10)
    half = poses(rig, bones, [1001, 1050])
    d_half, d_full = max_angle(half[1050], before[1050]), max_angle(replace[1050], before[1050])
    assert 0.3 * d_full < d_half < 0.7 * d_full
    assert r.action == takes.active_take(rig)


def test_intensity_zero_holds_the_neutral_pose(demo_npz):
    rig = build_mixamo_rig()
    r = finish_with(demo_npz, rig, start_frame=1, intensity_arms=0.0, intensity_hands=0.0, intensity_torso=0.0,
                    reduce_keys=False)
    assert takes.take_meta(r.action)["intensity"] == {"arms": 0.0, "hands": 0.0, "torso": 0.0}
    frames = list(range(1, 300, 7))
    p = poses(rig, r.bones, frames)
    ref = p[frames[0]]
    for f in frames[1:]:
        np.testing.assert_allclose(p[f], ref, atol=1e-4)
    rig2 = build_mixamo_rig("Mixamo2")  # the same take at 100% moves
    r2 = finish_with(demo_npz, rig2, start_frame=1, reduce_keys=False)
    moving = poses(rig2, r2.bones, frames)
    assert max(max_angle(moving[f], moving[frames[0]]) for f in frames) > 10.0


def test_key_reduction_stays_within_tolerance_on_every_frame():
    motion = SourceMotion.from_motion(gesture_motion())
    rigs = {}
    for name, tol in (("Dense", None), ("Reduced", 0.5)):
        rig = build_mixamo_rig(name)
        rig.pose.bones[ARM].rotation_mode = 'YXZ'
        rig.pose.bones[FOREARM].rotation_mode = 'AXIS_ANGLE'
        rig.pose.bones["mixamorig:LeftHand"].rotation_mode = 'ZXY'
        rigs[name] = (rig, apply_motion(rig, motion, "mixamo", start_frame=1, key_tolerance=tol, action_name=name))
    dense, reduced = rigs["Dense"][1], rigs["Reduced"][1]
    assert dense.keys_after == dense.keys_before
    assert reduced.keys_before == dense.keys_before and reduced.keys_after < 0.5 * reduced.keys_before
    bones = reduced.bones
    frames = list(range(1, 91))
    pd, pr = poses(rigs["Dense"][0], bones, frames), poses(rigs["Reduced"][0], bones, frames)
    worst = max(max_angle(pr[f], pd[f]) for f in frames)
    assert worst <= 0.5
    assert rigs["Reduced"][0].pose.bones[FOREARM].rotation_mode == 'AXIS_ANGLE'
    paths = {fc.data_path for fc in action_fcurves(reduced.action, rigs["Reduced"][0])}
    assert f'pose.bones["{FOREARM}"].rotation_axis_angle' in paths


def test_euler_keys_are_continuous():
    rig = build_mixamo_rig()
    rig.pose.bones[ARM].rotation_mode = 'XZY'
    r = apply_motion(rig, SourceMotion.from_motion(gesture_motion()), "mixamo", key_tolerance=None)
    curves = [fc for fc in action_fcurves(r.action, rig) if fc.data_path == f'pose.bones["{ARM}"].rotation_euler']
    for fc in curves:
        co = np.zeros(2 * len(fc.keyframe_points), dtype=np.float32)
        fc.keyframe_points.foreach_get("co", co)
        assert np.abs(np.diff(co[1::2])).max() < np.radians(90), "no 180/360 degree flips between frames"


def test_redo_range_replaces_only_inside_and_joins_at_the_borders(demo_npz):
    rig = shot_with_animation()
    r = finish_with(demo_npz, rig)
    take = r.action
    a, b = 1040, 1080
    before_keys = key_arrays(take, rig)
    bones = [ARM, FOREARM, "mixamorig:Spine", "mixamorig:RightHand"]
    frames = list(range(a - 3, b + 4))
    old = poses(rig, bones, frames)
    res = finish_with(demo_npz, rig, redo_range=(a, b), intensity_arms=2.0, intensity_hands=0.3)
    assert res.action == take and len(takes.list_takes(rig)) == 1
    after_keys = key_arrays(take, rig)
    for k, co in before_keys.items():
        c0, c1 = co.reshape(-1, 2), after_keys[k].reshape(-1, 2)
        out0, out1 = c0[(c0[:, 0] < a) | (c0[:, 0] > b)], c1[(c1[:, 0] < a) | (c1[:, 0] > b)]
        np.testing.assert_array_equal(out0, out1)  # bit for bit
    new = poses(rig, bones, frames)
    for f in frames:
        if f <= a or f >= b:
            assert max_angle(new[f], old[f]) < 1e-3, f"frame {f} plays as before"
    assert max(max_angle(new[f], old[f]) for f in range(a + 6, b - 5)) > 5.0, "the stretch is new"
    for f in (a, b - 1):  # no jump across either border: steps like the take's own
        assert max_angle(new[f + 1], new[f]) < max(3.0 * max_angle(old[f + 1], old[f]), 2.0)
    redone = takes.take_meta(take)["redone"]
    assert redone[-1]["frame_start"] == a and redone[-1]["intensity"]["arms"] == 2.0


def test_takes_list_switch_rename_delete():
    rig = build_mixamo_rig()
    motion = SourceMotion.from_motion(gesture_motion())
    first = apply_motion(rig, motion, "mixamo", start_frame=1, action_name="one", meta={"seed": 1}).action
    second = apply_motion(rig, motion, "mixamo", start_frame=1, action_name="two", meta={"seed": 2}).action
    track = rig.animation_data.nla_tracks["SemGes"]
    assert [s.action for s in track.strips] == [second], "the new take plays where the old one did"
    infos = takes.list_takes(rig)
    assert [t.name for t in infos] == ["one", "two"] and [t.active for t in infos] == [False, True]
    assert first.use_fake_user and infos[0].frame_start == 1 and infos[0].meta["seed"] == 1
    bpy.context.scene.frame_set(10)
    takes.switch_take(rig, "one")
    assert [s.action for s in track.strips] == [first] and takes.active_take(rig) == first
    assert takes.rename_take(rig, "one", "hero") == "hero" and track.strips[0].name == "hero"
    takes.delete_take(rig, "hero")
    assert "hero" not in bpy.data.actions and len(track.strips) == 0
    assert [t.name for t in takes.list_takes(rig)] == ["two"] and takes.active_take(rig) == second


def test_bake_merges_into_a_copy_and_plays_the_same():
    rig = shot_with_animation()
    walk = rig.animation_data.action
    walk_keys = key_arrays(walk, rig)
    r = apply_motion(rig, SourceMotion.from_motion(gesture_motion()), "mixamo", start_frame=1001, blend="ADD")
    frames = [1001, 1030, 1060, 1089, 1095]
    bones = [ARM, FOREARM, "mixamorig:Spine"]
    layered = poses(rig, bones, frames)
    report = layers.bake(rig, bpy.context.scene)
    anim = rig.animation_data
    assert report["from"] == "Walk" and anim.action.name == report["action"] == "Walk + SemGes"
    assert anim.nla_tracks["SemGes"].mute and anim.nla_tracks["Walk"].mute
    assert (report["frame_start"], report["frame_end"]) == (990, 1100) and report["bones"] == len(r.bones)
    baked = poses(rig, bones, frames)
    for f in frames:
        assert max_angle(baked[f], layered[f]) < 1e-3
    assert {k: v.tolist() for k, v in key_arrays(walk, rig).items()} == {k: v.tolist() for k, v in walk_keys.items()}
    assert r.action.name in bpy.data.actions, "the take survives"


def test_failures_leave_everything_as_it_was(monkeypatch):
    rig = shot_with_animation()
    motion = SourceMotion.from_motion(gesture_motion())
    apply_motion(rig, motion, "mixamo", start_frame=1001, action_name="earlier")  # a SemGes track already
    rig.animation_data.action = bpy.data.actions["Walk"].copy()  # a new active action: pushes down again
    rig.animation_data.action.name = "Later"
    if hasattr(rig.animation_data, "action_slot"):
        rig.animation_data.action_slot = rig.animation_data.action.slots[0]
    state = scene_state(rig)
    from semges_blender import errors, keyframes

    short = build_mixamo_rig("Short", without=("mixamorig:RightHandIndex3", "mixamorig:RightHandIndex4"))
    short.pose.bones[ARM].rotation_mode = 'YXZ'
    short_state = scene_state(short)
    with pytest.raises(errors.MissingBonesError, match="RightHandIndex3"):
        apply_motion(short, motion, "mixamo")
    assert scene_state(short) == short_state and short.animation_data is None
    bpy.data.objects.remove(short)
    assert scene_state(rig) == state

    calls = {"n": 0}
    real_write, real_settings = keyframes.write_keys, layers.apply_strip_settings

    def failing_write(*a, **kw):
        calls["n"] += 1
        if calls["n"] == 30:
            raise RuntimeError("injected while writing keys")
        return real_write(*a, **kw)
    monkeypatch.setattr(keyframes, "write_keys", failing_write)
    with pytest.raises(RuntimeError, match="injected while writing"):
        apply_motion(rig, motion, "mixamo", start_frame=1001, action_name="x")
    assert scene_state(rig) == state
    monkeypatch.setattr(keyframes, "write_keys", real_write)

    def failing_settings(strip, s):
        if strip.action and strip.action.name == "y":
            raise RuntimeError("injected after the NLA changed")
        return real_settings(strip, s)
    monkeypatch.setattr(layers, "apply_strip_settings", failing_settings)
    with pytest.raises(RuntimeError, match="injected after"):
        apply_motion(rig, motion, "mixamo", start_frame=1001, action_name="y", scene_range="fit")
    assert scene_state(rig) == state
    assert rig.animation_data.action.name == "Later"
    monkeypatch.setattr(layers, "apply_strip_settings", real_settings)
    ok = apply_motion(rig, motion, "mixamo", start_frame=1001, action_name="z")
    assert [t.name for t in rig.animation_data.nla_tracks] == ["Walk", "Later", "SemGes"]
    assert [s.action.name for s in rig.animation_data.nla_tracks["SemGes"].strips] == [ok.action.name]


def test_take_tag_and_layer_options(demo_npz):
    """The take's tag is JSON a person can read; blend options reach the strip; bad ones fail first."""
    rig = build_mixamo_rig()
    r = finish_with(demo_npz, rig, start_frame=1, blend="ADD", influence=0.7, blend_in=5, blend_out=5)
    raw = r.action[takes.META_KEY]
    meta = json.loads(raw)
    assert {"audio", "seed", "variation", "intensity", "model", "speaker", "start_frame", "fps", "rig"} <= meta.keys()
    s = layers.layer_settings(rig)
    assert (s.blend, s.blend_in, s.blend_out) == ("ADD", 5.0, 5.0) and abs(s.influence - 0.7) < 1e-6
    with pytest.raises(Exception, match="blend must be"):
        finish_with(demo_npz, rig, blend="MULTIPLY")
