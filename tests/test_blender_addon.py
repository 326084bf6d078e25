"""The add-on in the real bpy: registration, the Generate Gestures operator run synchronously
(background mode) on a tiny random model, its result equal to the plain function's, and failures
that report one error and leave no new action behind."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from semges_blender.keyframes import action_fcurves  # noqa: E402
from semges_blender.takes import active_take  # noqa: E402
from semges_blender.pipeline import generate_gestures, model_speakers  # noqa: E402
from semges_blender.properties import options_from_settings  # noqa: E402
from semges_blender.rigs import create_beat_armature  # noqa: E402
from test_blender_common import EXAMPLE_TG, EXAMPLE_WAV, REPO, build_mixamo_rig  # noqa: E402

from test_blender_common import registered_addon, scene_at_30fps  # noqa: E402,F401  (fixtures)

pytestmark = pytest.mark.blender


def keys(action, obj) -> dict[tuple[str, int], np.ndarray]:
    out = {}
    for fc in action_fcurves(action, obj):
        co = np.zeros(2 * len(fc.keyframe_points), dtype=np.float32)
        fc.keyframe_points.foreach_get("co", co)
        out[(fc.data_path, fc.array_index)] = co.reshape(-1, 2)
    return out


def settings(rig, bundle, **kw):
    s = bpy.context.scene.semges
    s.audio_path = str(EXAMPLE_WAV)
    s.transcript_source = 'FILE'
    s.transcript_path = str(EXAMPLE_TG)
    s.armature = rig
    s.model_path = str(bundle)
    s.speaker = "ben"
    s.device = 'cpu'
    s.seed = 3
    s.start_at, s.start_frame = 'FRAME', 5
    s.add_audio = True
    for k, v in kw.items():
        setattr(s, k, v)
    return s


def test_registers_panel_operators_and_settings():
    assert hasattr(bpy.types.Scene, "semges")
    assert bpy.types.VIEW3D_PT_semges.bl_category == "SemGes"
    for op in ("generate", "apply_motion", "detect_preset", "save_mapping", "check_runtime"):
        assert hasattr(bpy.ops.semges, op)
    assert bpy.types.SEMGES_OT_generate.bl_options == {'REGISTER', 'UNDO'}
    assert not bpy.ops.semges.generate.poll(), "no audio and no armature yet"


def test_generate_operator_equals_the_plain_function(tiny_bundle):  # noqa: F811
    rig = build_mixamo_rig()
    s = settings(rig, tiny_bundle)
    assert bpy.ops.semges.generate.poll()
    assert bpy.ops.semges.generate() == {'FINISHED'}  # background mode: synchronous
    action = active_take(rig)
    assert action.name == "speech"
    op_keys = keys(action, rig)
    n = round(33.81 * 30)  # the example's 33.8 s at the scene's 30 fps (1 frame of slack below)
    assert len(op_keys) == 4 * 43
    frames = next(iter(op_keys.values()))[:, 0]
    assert frames[0] == 5 and abs(frames[-1] - frames[0] + 1 - n) <= 2 and np.all(np.diff(frames) >= 1)
    strip = rig.animation_data.nla_tracks["SemGes"].strips[0]  # layered, not assigned as the active action
    assert rig.animation_data.action is None and strip.action == action and strip.frame_start == 5

    plain = generate_gestures(options_from_settings(s), bpy.context.scene)
    assert plain.action.name == "speech.001" and active_take(rig) == plain.action
    plain_keys = keys(plain.action, rig)
    assert plain_keys.keys() == op_keys.keys()
    for k in op_keys:
        np.testing.assert_array_equal(op_keys[k], plain_keys[k])
    assert bpy.data.actions["speech"].use_fake_user, "the first take is kept"
    if bpy.app.version >= (5, 0, 0):  # the 4.2 bpy module is built without audio
        strips = bpy.context.scene.sequence_editor.strips
        assert len(strips) == 1 and strips[0].frame_start == 5, "the same sound strip is reused"


def test_text_block_transcript_and_detect(tiny_bundle):  # noqa: F811
    rig = create_beat_armature()
    text = bpy.data.texts.new("speech.TextGrid")
    text.from_string(EXAMPLE_TG.read_text(encoding="utf-8"))
    settings(rig, tiny_bundle, transcript_source='TEXT', transcript_text=text, add_audio=False, preset="mixamo")
    assert bpy.ops.semges.detect_preset() == {'FINISHED'}
    assert bpy.context.scene.semges.preset == "beat"
    assert bpy.ops.semges.generate() == {'FINISHED'}
    assert len(action_fcurves(active_take(rig), rig)) == 4 * 51


def test_plain_text_is_aligned_and_the_report_says_by_what(tiny_bundle):  # noqa: F811
    rig = create_beat_armature()
    text = bpy.data.texts.new("speech.txt")
    text.from_string(EXAMPLE_WAV.with_suffix(".txt").read_text(encoding="utf-8"))
    settings(rig, tiny_bundle, transcript_source='TEXT', transcript_text=text, add_audio=False, preset="beat")
    result = generate_gestures(options_from_settings(bpy.context.scene.semges))
    assert any("pocketsphinx forced alignment" in n for n in result.notes), result.notes
    assert not result.warnings, "the right text for its audio raises no doubt"


def test_failures_report_one_error_and_change_nothing(tiny_bundle, tmp_path):  # noqa: F811
    rig = build_mixamo_rig()
    settings(rig, tiny_bundle, audio_path=str(tmp_path / "missing.wav"))
    before = set(bpy.data.actions)
    with pytest.raises(RuntimeError, match="missing.wav: audio file not found"):
        bpy.ops.semges.generate()
    # Fails inside the worker (after the checks in Blender): still nothing changed.
    settings(rig, tiny_bundle, speaker="zed")
    with pytest.raises(RuntimeError, match="unknown speaker 'zed'"):
        bpy.ops.semges.generate()
    # The rig lacks bones: named before the worker even starts.
    bpy.data.objects.remove(rig)
    rig = build_mixamo_rig(without=("mixamorig:RightHandIndex3", "mixamorig:RightHandIndex4"))
    settings(rig, tiny_bundle)
    with pytest.raises(RuntimeError, match="RightHandIndex3"):
        bpy.ops.semges.generate()
    assert set(bpy.data.actions) == before and rig.animation_data is None
    ed = bpy.context.scene.sequence_editor
    assert ed is None or len(ed.strips if hasattr(ed, "strips") else ed.sequences) == 0


def test_save_mapping_then_use_it_as_custom(tiny_bundle, tmp_path):  # noqa: F811
    rig = create_beat_armature()
    rig.pose.bones["LArm"].rotation_mode = 'XYZ'
    settings(rig, tiny_bundle, preset="beat")
    path = tmp_path / "my_rig.json"
    assert bpy.ops.semges.save_mapping(filepath=str(path)) == {'FINISHED'}
    s = bpy.context.scene.semges
    assert s.preset == "custom" and path.is_file()
    # Edit it as a user would: drive only the right arm.
    import json

    data = json.loads(path.read_text())
    data["bones"] = {k: v for k, v in data["bones"].items() if k in ("RArm", "RArm1", "RHand")}
    path.write_text(json.dumps(data))
    motion = tmp_path / "motion.npz"
    from semges_core.formats.npz import save_motion_npz
    from test_blender_common import gesture_motion

    save_motion_npz(motion, gesture_motion())
    assert bpy.ops.semges.apply_motion(filepath=str(motion)) == {'FINISHED'}
    assert {fc.data_path.split('"')[1] for fc in action_fcurves(active_take(rig), rig)} == {
        "RArm", "RArm1", "RHand"}
    assert rig.pose.bones["LArm"].rotation_mode == 'XYZ', "bones outside the mapping are untouched"


def test_model_speakers_without_torch(tiny_bundle):  # noqa: F811
    assert [s["name"] for s in model_speakers(tiny_bundle)] == ["ava", "ben"]
    assert len(model_speakers(None)) >= 1  # the bundled demo model


def test_blender_side_imports_no_torch():
    code = ("import sys; sys.modules['torch'] = None\n"
            "import bpy, semges_blender\n"
            "semges_blender.register()\n"
            "import semges_blender.batch\n"
            "semges_blender.unregister()\n"
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]


class _Recorder:
    """Stands in for the window manager and workspace, which the bpy module has no window for."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        return lambda *a, **kw: self.calls.append((name, a)) or name


def _modal_harness():
    """The modal operator's own methods on a stand-in `self`, with a stand-in context."""
    from types import SimpleNamespace

    from semges_blender.operators import SEMGES_OT_generate as Op

    class Self:
        _start_modal, modal, _status, _end = Op._start_modal, Op.modal, Op._status, Op._end
        _running = False

        def __init__(self):
            self.reports = []

        def report(self, kind, text):
            self.reports.append((next(iter(kind)), text))

    wm, ws = _Recorder(), _Recorder()
    ctx = SimpleNamespace(scene=bpy.context.scene, window_manager=wm, workspace=ws, window=None,
                          preferences=bpy.context.preferences)
    return Self(), ctx, wm, ws


def test_modal_run_polls_progress_and_keys_once(tiny_bundle):  # noqa: F811
    """What the UI runs (invoke outside background mode): a timer-polled worker, progress, status text."""
    import time
    from types import SimpleNamespace

    rig = build_mixamo_rig()
    settings(rig, tiny_bundle, add_audio=False)
    op, ctx, wm, ws = _modal_harness()
    assert op._start_modal(ctx) == {'RUNNING_MODAL'}
    assert type(op)._running and not rig.animation_data
    assert op.modal(ctx, SimpleNamespace(type='MOUSEMOVE')) == {'PASS_THROUGH'}
    result, t0 = {'PASS_THROUGH'}, time.monotonic()
    while result == {'PASS_THROUGH'} and time.monotonic() - t0 < 120:
        time.sleep(0.05)
        result = op.modal(ctx, SimpleNamespace(type='TIMER'))
    assert result == {'FINISHED'}, op.reports
    assert active_take(rig).name == "speech" and not type(op)._running
    names = [c[0] for c in wm.calls]
    assert names[:2] == ["event_timer_add", "progress_begin"] and names[-2:] == ["event_timer_remove", "progress_end"]
    progress = [c[1][0] for c in wm.calls if c[0] == "progress_update"]
    assert progress == sorted(progress) and progress[-1] == 100
    texts = [c[1][0] for c in ws.calls]
    assert any("Esc to cancel" in (t or "") for t in texts) and texts[-1] is None
    assert not op._prepared.workdir.exists()


def test_modal_esc_cancels_and_changes_nothing(tiny_bundle):  # noqa: F811
    from types import SimpleNamespace

    rig = build_mixamo_rig()
    settings(rig, tiny_bundle, add_audio=False)
    op, ctx, wm, ws = _modal_harness()
    assert op._start_modal(ctx) == {'RUNNING_MODAL'}
    assert op.modal(ctx, SimpleNamespace(type='ESC')) == {'CANCELLED'}
    assert op._job.process.poll() is not None, "the worker is gone"
    assert op._job.state.cancelled and not op._prepared.workdir.exists()
    assert rig.animation_data is None and len(bpy.data.actions) == 0
    assert ("WARNING", "SemGes: generation cancelled; nothing was changed") in op.reports


def test_gestures_start_at_the_shot_not_at_frame_1(tiny_bundle):  # noqa: F811
    """A shot at 1001-1100: keys and sound go to 1001 by default, the shot's start stays; Playhead works."""
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = 1001, 1100
    scene.frame_set(1001)
    rig = build_mixamo_rig()
    s = settings(rig, tiny_bundle)
    s.start_at = 'SCENE'
    assert bpy.ops.semges.generate() == {'FINISHED'}
    frames = next(iter(keys(active_take(rig), rig).values()))[:, 0]
    assert frames[0] == 1001
    assert scene.frame_start == 1001 and scene.frame_end >= frames[-1]  # grown, never moved
    if bpy.app.version >= (5, 0, 0):  # the 4.2 bpy module is built without audio
        assert [st.frame_start for st in scene.sequence_editor.strips] == [1001]
    scene.frame_set(1040)
    s.start_at = 'PLAYHEAD'
    assert bpy.ops.semges.generate() == {'FINISHED'}
    assert next(iter(keys(active_take(rig), rig).values()))[0, 0] == 1040
    assert scene.frame_start == 1001
