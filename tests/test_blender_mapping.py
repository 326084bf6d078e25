"""The custom bone mapping edited in the panel (real bpy): its rows filled from a preset, saved as a
JSON preset and loaded back, and generation with preset Custom keying exactly the rows' bones."""

from __future__ import annotations

import json

import pytest

bpy = pytest.importorskip("bpy")

from semges_blender.keyframes import action_fcurves  # noqa: E402
from semges_blender.takes import active_take  # noqa: E402
from semges_blender.presets import builtin_mapping, load_mapping, mapping_from_rows, mapping_rows  # noqa: E402
from semges_blender.properties import options_from_settings, rows_mapping  # noqa: E402
from test_blender_common import EXAMPLE_TG, EXAMPLE_WAV, build_mixamo_rig, gesture_motion  # noqa: E402

from test_blender_common import registered_addon, scene_at_30fps  # noqa: E402,F401  (fixtures)

pytestmark = pytest.mark.blender


def rows(s) -> list[tuple[str, str]]:
    return [(r.joint, r.bone) for r in s.mapping_rows]


def keyed_bones(rig) -> set[str]:
    return {fc.data_path.split('"')[1] for fc in action_fcurves(active_take(rig), rig)}


def filled_rig(preset: str = "mixamo"):
    rig = build_mixamo_rig()
    s = bpy.context.scene.semges
    s.armature = rig
    s.preset = preset
    assert bpy.ops.semges.fill_mapping() == {'FINISHED'}
    assert s.preset == "custom", "filling switches to the custom mapping"
    return rig, s


def test_rows_from_a_preset_resolve_to_the_rigs_bones():
    mapping = builtin_mapping("mixamo")
    assert dict(mapping_rows(mapping)) == mapping.bones
    resolved = dict(mapping_rows(mapping, ["Spine", "mixamorig1:Head"]))
    assert (resolved["Spine"], resolved["Head"], resolved["Neck"]) == ("Spine", "mixamorig1:Head", "mixamorig:Neck")
    custom = mapping_from_rows([("RArm", "arm_R"), ("RArm1", " "), ("RHand", "")])
    assert custom.bones == {"RArm": "arm_R"}, "an empty target is unmapped"


def test_fill_edit_save_clear_load(tmp_path):
    rig, s = filled_rig()
    names = [b.name for b in rig.data.bones]
    assert rows(s) == mapping_rows(builtin_mapping("mixamo"), names)
    assert all(bone in names for _, bone in rows(s)), "every row names one of the rig's bones"
    assert options_from_settings(s).preset == rows_mapping(s), "Generate uses the rows"

    s.mapping_rows[0].bone = "mixamorig:Spine1"  # edit one row (Spine -> Spine1, Spine2's bone moves away)
    s.mapping_rows[1].bone = ""
    edited = rows(s)
    path = tmp_path / "my_mixamo.json"
    assert bpy.ops.semges.save_preset(filepath=str(path)) == {'FINISHED'}
    data = json.loads(path.read_text())
    assert data["name"] == "my_mixamo" and data["bones"]["Spine"] == "mixamorig:Spine1"
    assert "Spine2" not in data["bones"], "the emptied row is unmapped"
    assert load_mapping(path).bones == rows_mapping(s).bones

    s.mapping_rows.clear()
    assert rows(s) == []
    assert bpy.ops.semges.load_preset(filepath=str(path)) == {'FINISHED'}
    assert rows(s) == [r for r in edited if r[1]]
    assert s.preset == "custom"


def test_load_preset_rejects_a_bad_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"bones": {"NotAJoint": "x"}}))
    s = bpy.context.scene.semges
    with pytest.raises(RuntimeError, match="not BEAT joints"):
        bpy.ops.semges.load_preset(filepath=str(bad))
    assert rows(s) == []


def test_custom_rows_key_exactly_their_bones_and_empty_rows_are_untouched(tmp_path):
    from semges_core.formats.npz import save_motion_npz

    rig, s = filled_rig()
    keep = {"RArm", "RArm1", "RHand", "LArm"}
    for r in s.mapping_rows:
        if r.joint not in keep:
            r.bone = ""
    s.mapping_rows[[r.joint for r in s.mapping_rows].index("LArm")].bone = ""  # unmapped now
    larm = builtin_mapping("mixamo").bones["LArm"]
    rig.pose.bones[larm].rotation_mode = 'XYZ'
    motion = tmp_path / "motion.npz"
    save_motion_npz(motion, gesture_motion())
    assert bpy.ops.semges.apply_motion(filepath=str(motion)) == {'FINISHED'}
    assert keyed_bones(rig) == {"mixamorig:RightArm", "mixamorig:RightForeArm", "mixamorig:RightHand"}
    assert rig.pose.bones[larm].rotation_mode == 'XYZ', "an empty row leaves its bone untouched"


def test_generate_with_custom_rows_keys_exactly_the_mapped_bones(tiny_bundle):
    rig, s = filled_rig()
    for r in s.mapping_rows:
        if r.joint not in ("LArm", "LArm1", "LHand", "Head"):
            r.bone = ""
    s.audio_path = str(EXAMPLE_WAV)
    s.transcript_source = 'FILE'
    s.transcript_path = str(EXAMPLE_TG)
    s.model_path = str(tiny_bundle)
    s.device = 'cpu'
    s.add_audio = False
    assert bpy.ops.semges.generate() == {'FINISHED'}
    assert keyed_bones(rig) == {r.bone for r in s.mapping_rows if r.bone} == {
        "mixamorig:LeftArm", "mixamorig:LeftForeArm", "mixamorig:LeftHand", "mixamorig:Head"}


def test_custom_without_rows_or_file_reports_an_error():
    rig = build_mixamo_rig()
    s = bpy.context.scene.semges
    s.armature = rig
    s.preset = "custom"
    s.audio_path = str(EXAMPLE_WAV)
    with pytest.raises(RuntimeError, match="no mapping"):
        bpy.ops.semges.generate()
    assert rig.animation_data is None or rig.animation_data.action is None
