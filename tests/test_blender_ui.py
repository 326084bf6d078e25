"""The panel's art-direction operators in the real bpy, on a Mixamo rig with the bundled demo model:
New Variant, the Takes list (switch, rename, delete), Apply to Takes, Redo Range, Bake, and
Blender's undo, each checked on what the rig plays (poses evaluated at frames), with the
failures that must leave the scene and the panel's settings as they were."""

from __future__ import annotations

import shutil
import time
from types import SimpleNamespace

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from semges_blender.keyframes import action_fcurves  # noqa: E402
from semges_blender.layers import TRACK_NAME, semges_track  # noqa: E402
from semges_blender.properties import options_from_settings  # noqa: E402
from semges_blender.takes import active_take, list_takes  # noqa: E402
from test_blender_common import EXAMPLE_TG, EXAMPLE_WAV, build_mixamo_rig  # noqa: E402

from test_blender_common import registered_addon, scene_at_30fps  # noqa: E402,F401  (fixtures)

pytestmark = pytest.mark.blender

ARM = ["mixamorig:RightArm", "mixamorig:RightForeArm", "mixamorig:LeftArm", "mixamorig:LeftForeArm",
       "mixamorig:RightHand", "mixamorig:Spine2", "mixamorig:Head"]
FRAMES = list(range(1, 1000, 37))


def settings(rig, **kw):
    s = bpy.context.scene.semges
    s.audio_path = str(EXAMPLE_WAV)
    s.transcript_source = 'FILE'
    s.transcript_path = str(EXAMPLE_TG)
    s.armature = rig
    s.model_path = ""  # the bundled demo model
    s.device = 'cpu'
    s.add_audio = False
    s.variation, s.seed = 0.3, 3
    for k, v in kw.items():
        setattr(s, k, v)
    return s


def poses(rig, frames=FRAMES, bones=ARM) -> np.ndarray:
    """(frames, bones, 4) armature-space rotations as Blender evaluates them."""
    scene = bpy.context.scene
    out = np.zeros((len(frames), len(bones), 4))
    for i, f in enumerate(frames):
        scene.frame_set(f)
        for j, b in enumerate(bones):
            out[i, j] = rig.pose.bones[b].matrix.to_quaternion()
    return out


def angles(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Degrees between two arrays of unit quaternions (either sign)."""
    dot = np.clip(np.abs(np.sum(a * b, axis=-1)), 0.0, 1.0)
    return np.degrees(2 * np.arccos(dot))


def keys(action, rig) -> dict[tuple[str, int], np.ndarray]:
    out = {}
    for fc in action_fcurves(action, rig):
        co = np.zeros(2 * len(fc.keyframe_points), dtype=np.float32)
        fc.keyframe_points.foreach_get("co", co)
        out[(fc.data_path, fc.array_index)] = co.reshape(-1, 2)
    return out


def take_actions() -> set[str]:
    return {a.name for a in bpy.data.actions if "semges_take" in a.keys()}


def walk_action(rig) -> bpy.types.Action:
    """The animator's own work: hips moving up and down, keyed by hand (the active action)."""
    hips = rig.pose.bones["mixamorig:Hips"]
    for f, z in ((1, 0.0), (50, 20.0), (100, 0.0)):
        hips.location = (0.0, 0.0, z)
        hips.keyframe_insert("location", frame=f)
    action = rig.animation_data.action
    action.name = "Walk"
    return action


def test_registers_the_new_operators_and_panels():
    for op in ("new_variant", "redo_range", "take_switch", "take_rename", "take_delete", "bake", "layer_apply",
               "redo_use_preview", "redo_use_playhead"):
        assert hasattr(bpy.ops.semges, op), op
        assert getattr(bpy.types, f"SEMGES_OT_{op}").bl_options == {'REGISTER', 'UNDO'}, op
    for panel in ("layer", "intensity", "redo", "takes"):
        assert getattr(bpy.types, f"VIEW3D_PT_semges_{panel}").bl_parent_id == "VIEW3D_PT_semges"
    assert bpy.types.SEMGES_UL_takes
    assert not bpy.ops.semges.new_variant.poll() and not bpy.ops.semges.bake.poll()


def test_settings_map_onto_generate_options():
    rig = build_mixamo_rig()
    s = settings(rig, blend='ADD', influence=0.25, blend_in=6, blend_out=12, intensity_arms=50.0,
                 intensity_hands=200.0, intensity_torso=0.0, reduce_keys=False, key_tolerance=1.5,
                 redo_start=300, redo_end=200)
    o = options_from_settings(s)
    assert (o.blend, o.influence, o.blend_in, o.blend_out) == ('ADD', 0.25, 6.0, 12.0)
    assert (o.intensity_arms, o.intensity_hands, o.intensity_torso) == (0.5, 2.0, 0.0)
    assert (o.reduce_keys, o.key_tolerance, o.redo_range) == (False, 1.5, None)
    assert options_from_settings(s, redo=True).redo_range == (200, 300)  # in order


def test_new_variant_differs_and_switching_back_restores_the_first(tmp_path):
    rig = build_mixamo_rig()
    s = settings(rig)
    assert bpy.ops.semges.generate() == {'FINISHED'}
    first = poses(rig)
    first_keys = keys(bpy.data.actions["speech"], rig)

    assert bpy.ops.semges.new_variant() == {'FINISHED'}
    assert s.seed == 4, "New Variant moves to the next seed and keeps it"
    takes = list_takes(rig)
    assert [t.name for t in takes] == ["speech", "speech.001"] and takes[1].active
    assert takes[1].meta["seed"] == 4 and takes[0].meta["seed"] == 3
    second = poses(rig)
    assert angles(first, second).max() > 5.0, "another variant: other gestures somewhere"
    assert [st.action.name for st in semges_track(rig).strips] == ["speech.001"]

    assert bpy.ops.semges.take_switch(take="speech") == {'FINISHED'}
    assert active_take(rig).name == "speech"
    np.testing.assert_allclose(poses(rig), first, atol=1e-6)
    again = keys(bpy.data.actions["speech"], rig)
    assert again.keys() == first_keys.keys() and all(np.array_equal(again[k], first_keys[k]) for k in again)

    # Variation 0 (every seed alike): New Variant turns it up so the variant differs.
    s.variation = 0.0
    assert bpy.ops.semges.new_variant() == {'FINISHED'}
    assert s.seed == 5 and abs(s.variation - 0.3) < 1e-6


def test_new_variant_failure_keeps_seed_and_scene():
    rig = build_mixamo_rig()
    s = settings(rig)
    assert bpy.ops.semges.generate() == {'FINISHED'}
    before = (take_actions(), s.seed, s.variation, [st.name for st in semges_track(rig).strips])
    s.speaker = "zed"
    with pytest.raises(RuntimeError, match="unknown speaker 'zed'"):
        bpy.ops.semges.new_variant()
    assert (take_actions(), s.seed, s.variation, [st.name for st in semges_track(rig).strips]) == before


def test_takes_rename_and_delete_leave_no_stray_actions():
    rig = build_mixamo_rig()
    walk = walk_action(rig)
    s = settings(rig)
    assert bpy.ops.semges.generate() == {'FINISHED'}
    assert bpy.ops.semges.new_variant() == {'FINISHED'}
    assert take_actions() == {"speech", "speech.001"}

    assert bpy.ops.semges.take_rename(take="speech.001", new_name="Hero") == {'FINISHED'}
    assert take_actions() == {"speech", "Hero"}
    assert [st.name for st in semges_track(rig).strips] == ["Hero"], "the strip follows the take's name"
    with pytest.raises(RuntimeError, match="already exists"):
        bpy.ops.semges.take_rename(take="Hero", new_name="Walk")
    with pytest.raises(RuntimeError, match="no SemGes take 'nope'"):
        bpy.ops.semges.take_delete(take="nope")
    assert take_actions() == {"speech", "Hero"}

    # The list's highlighted row is what the buttons act on when no take is named.
    s.take_index = bpy.data.actions.find("speech")
    assert bpy.ops.semges.take_delete() == {'FINISHED'}
    assert take_actions() == {"Hero"}
    assert bpy.ops.semges.take_delete(take="Hero") == {'FINISHED'}
    assert take_actions() == set() and len(semges_track(rig).strips) == 0
    assert set(a.name for a in bpy.data.actions) == {"Walk"}, "no stray actions, the animator's own kept"
    assert walk.name == "Walk" and len(action_fcurves(walk, rig)) == 3
    assert not bpy.ops.semges.take_switch.poll()


def test_apply_layer_settings_and_bake_keep_what_plays():
    rig = build_mixamo_rig()
    walk = walk_action(rig)
    walk_keys = keys(walk, rig)
    s = settings(rig)
    assert bpy.ops.semges.generate() == {'FINISHED'}
    assert rig.animation_data.action is None and rig.animation_data.nla_tracks[-1].name == TRACK_NAME
    full = poses(rig)

    s.blend, s.influence = 'REPLACE', 0.5
    assert bpy.ops.semges.layer_apply() == {'FINISHED'}
    strip = semges_track(rig).strips[0]
    assert strip.use_animated_influence
    half = poses(rig)
    assert angles(full, half).max() > 1.0, "half the influence plays less of the gestures"

    hips = []
    for f in (1, 50):
        bpy.context.scene.frame_set(f)
        hips.append(rig.pose.bones["mixamorig:Hips"].location.z)
    assert hips == [0.0, 20.0], "the hips still follow the animator's action under the gestures"

    assert bpy.ops.semges.bake() == {'FINISHED'}
    baked = rig.animation_data.action
    assert baked.name == "Walk + SemGes" and semges_track(rig).mute
    assert angles(half, poses(rig)).max() < 1.0, "the baked action plays what the layer played (0.5 deg keys)"
    assert keys(bpy.data.actions["Walk"], rig).keys() == walk_keys.keys()
    assert all(np.array_equal(keys(bpy.data.actions["Walk"], rig)[k], walk_keys[k]) for k in walk_keys)
    assert take_actions() == {"speech"}, "the take survives the bake"


def test_redo_range_operator_keeps_keys_outside_and_conveniences_set_the_range(tmp_path):
    scene = bpy.context.scene
    rig = build_mixamo_rig()
    s = settings(rig)
    assert bpy.ops.semges.generate() == {'FINISHED'}
    before = keys(bpy.data.actions["speech"], rig)

    scene.use_preview_range = True
    scene.frame_preview_start, scene.frame_preview_end = 200, 320
    assert bpy.ops.semges.redo_use_preview() == {'FINISHED'}
    assert (s.redo_start, s.redo_end) == (200, 320)
    scene.frame_set(400)
    s.redo_margin = 20
    assert bpy.ops.semges.redo_use_playhead() == {'FINISHED'}
    assert (s.redo_start, s.redo_end) == (380, 420)

    s.redo_start, s.redo_end, s.seed = 200, 320, 11
    s.audio_path = str(tmp_path / "other.wav")  # not the take's speech: refused, nothing changes
    shutil.copy(EXAMPLE_WAV, s.audio_path)
    with pytest.raises(RuntimeError, match="take 'speech' was made from .*speech.wav"):
        bpy.ops.semges.redo_range()
    assert keys(bpy.data.actions["speech"], rig).keys() == before.keys()
    assert all(np.array_equal(keys(bpy.data.actions["speech"], rig)[k], before[k]) for k in before)
    s.audio_path = str(EXAMPLE_WAV)
    assert bpy.ops.semges.redo_range() == {'FINISHED'}
    assert take_actions() == {"speech"}, "a redo changes the take, it makes no new one"
    after = keys(bpy.data.actions["speech"], rig)
    changed = False
    for k, old in before.items():
        new = after[k]
        np.testing.assert_array_equal(new[new[:, 0] < 200], old[old[:, 0] < 200])
        np.testing.assert_array_equal(new[new[:, 0] > 320], old[old[:, 0] > 320])
        inside_old, inside_new = old[(old[:, 0] >= 200) & (old[:, 0] <= 320)], new[(new[:, 0] >= 200) & (new[:, 0] <= 320)]
        changed |= inside_old.shape != inside_new.shape or not np.array_equal(inside_old, inside_new)
    assert changed, "the stretch was regenerated with the new seed"


def test_undo_restores_the_scene():
    rig = build_mixamo_rig()
    settings(rig)
    bpy.ops.ed.undo_push(message="set up")
    assert bpy.ops.semges.generate('EXEC_DEFAULT', True) == {'FINISHED'}  # True: push an undo step, as the UI does
    assert take_actions() == {"speech"}
    assert bpy.ops.semges.take_delete('EXEC_DEFAULT', True, take="speech") == {'FINISHED'}
    assert take_actions() == set()

    bpy.ops.ed.undo()
    rig = bpy.data.objects["Mixamo"]  # undo rebuilt the data: fetch it again
    assert take_actions() == {"speech"} and [st.name for st in semges_track(rig).strips] == ["speech"]
    bpy.ops.ed.undo()
    rig = bpy.data.objects["Mixamo"]
    assert take_actions() == set() and len(bpy.data.actions) == 0
    assert rig.animation_data is None or not len(rig.animation_data.nla_tracks)


class _Recorder:
    """Stands in for the window manager and workspace, which the bpy module has no window for."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        return lambda *a, **kw: self.calls.append((name, a)) or name


def _modal(op_class):
    """Run an operator's modal path (what the UI runs) on a stand-in `self` and context until it ends."""
    class Self:
        _options, _succeeded = op_class._options, op_class._succeeded
        _start_modal, modal, _status, _end = op_class._start_modal, op_class.modal, op_class._status, op_class._end
        _running = False

        def __init__(self):
            self.reports = []

        def report(self, kind, text):
            self.reports.append((next(iter(kind)), text))

    op, wm, ws = Self(), _Recorder(), _Recorder()
    ctx = SimpleNamespace(scene=bpy.context.scene, window_manager=wm, workspace=ws, window=None,
                          preferences=bpy.context.preferences)
    assert op._start_modal(ctx, op._options(ctx)) == {'RUNNING_MODAL'}
    result, t0 = {'PASS_THROUGH'}, time.monotonic()
    while result == {'PASS_THROUGH'} and time.monotonic() - t0 < 120:
        time.sleep(0.05)
        result = op.modal(ctx, SimpleNamespace(type='TIMER'))
    assert any("Esc to cancel" in (c[1][0] or "") for c in ws.calls)
    return result, op


def test_new_variant_and_redo_run_the_modal_worker_path():
    from semges_blender.operators import SEMGES_OT_new_variant, SEMGES_OT_redo_range

    rig = build_mixamo_rig()
    s = settings(rig)
    assert bpy.ops.semges.generate() == {'FINISHED'}
    result, op = _modal(SEMGES_OT_new_variant)
    assert result == {'FINISHED'}, op.reports
    assert s.seed == 4 and take_actions() == {"speech", "speech.001"}
    s.redo_start, s.redo_end = 100, 160
    result, op = _modal(SEMGES_OT_redo_range)
    assert result == {'FINISHED'}, op.reports
    assert take_actions() == {"speech", "speech.001"}


class _Layout:
    """Stands in for a panel's layout (the bpy module draws nothing): every `prop` must name a real
    property of its data and every `operator` a registered operator, as Blender's drawing would check."""

    def __init__(self, log):
        self.log = log

    def __getattr__(self, name):  # row, column, box, split, separator, label, ...: nested layouts
        return lambda *a, **kw: self._icon(kw) or _Layout(self.log)

    @staticmethod
    def _icon(kw) -> None:
        icons = bpy.types.UILayout.bl_rna.functions["prop"].parameters["icon"].enum_items.keys()
        assert kw.get("icon", "NONE") in icons, f"no icon {kw['icon']!r} in Blender {bpy.app.version_string}"

    def __setattr__(self, name, value):
        if name == "log":
            object.__setattr__(self, name, value)

    def prop(self, data, name, **kw):
        self._icon(kw)
        assert name in data.bl_rna.properties, f"{type(data).__name__} has no property {name!r}"
        self.log.append(("prop", name))

    def prop_search(self, data, name, *a, **kw):
        self.prop(data, name)

    def operator(self, idname, **kw):
        self._icon(kw)
        module, op = idname.split(".")
        assert hasattr(getattr(bpy.ops, module), op), idname
        self.log.append(("operator", idname))
        return SimpleNamespace()

    def template_list(self, list_type, list_id, data, propname, active_data, active_propname, **kw):
        assert hasattr(bpy.types, list_type) and propname in data.bl_rna.properties
        assert active_propname in active_data.bl_rna.properties
        self.log.append(("list", list_type))


def test_panels_draw_real_properties_and_operators_and_the_list_shows_this_rigs_takes():
    rig = build_mixamo_rig()
    settings(rig)
    assert bpy.ops.semges.generate() == {'FINISHED'}
    other = build_mixamo_rig("Other")
    bpy.data.actions.new("not a take")
    log = []
    ctx = SimpleNamespace(scene=bpy.context.scene)
    for name in ("VIEW3D_PT_semges", "VIEW3D_PT_semges_layer", "VIEW3D_PT_semges_intensity",
                 "VIEW3D_PT_semges_redo", "VIEW3D_PT_semges_takes"):
        panel = getattr(bpy.types, name)
        panel.draw(SimpleNamespace(layout=_Layout(log), _layout=lambda: _Layout(log)), ctx)
    drawn = {what for _, what in log}
    assert {"blend", "influence", "blend_in", "blend_out", "intensity_arms", "intensity_hands", "intensity_torso",
            "reduce_keys", "key_tolerance", "redo_start", "redo_end", "variation", "seed"} <= drawn
    assert {"semges.new_variant", "semges.redo_range", "semges.bake", "semges.take_switch", "semges.take_rename",
            "semges.take_delete", "semges.layer_apply", "SEMGES_UL_takes"} <= drawn

    row = []
    bpy.types.SEMGES_UL_takes.draw_item(None, ctx, _Layout(row), bpy.data, bpy.data.actions["speech"], 0,
                                        bpy.context.scene.semges, "take_index", 0)
    assert row == [("operator", "semges.take_switch")]

    ul = SimpleNamespace(filter_name="", bitflag_filter_item=1 << 30)  # UIList.bitflag_filter_item
    flags, order = bpy.types.SEMGES_UL_takes.filter_items(ul, ctx, bpy.data, "actions")
    assert [a.name for a, f in zip(bpy.data.actions, flags) if f] == ["speech"] and order == []
    bpy.context.scene.semges.armature = other
    flags, _ = bpy.types.SEMGES_UL_takes.filter_items(ul, ctx, bpy.data, "actions")
    assert not any(flags), "another rig has no takes"
