"""The extension's torch-free side (no bpy): its motion reader is a thin layer over semges_core's,
presets and mappings load, save, validate and auto-detect, and nothing Blender-side imports torch."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from semges_blender.errors import MappingError, MotionFileError
from semges_blender.presets import (
    BUILTIN_PRESETS,
    BoneMapping,
    builtin_mapping,
    detect_preset,
    load_mapping,
    resolve_bones,
    save_mapping,
)
from semges_blender.retarget import rotation_between
from semges_blender.source import SourceMotion
from semges_core.formats.npz import save_motion_npz
from semges_core.motion.clip import Motion
from semges_core.motion.kinematics import forward_kinematics
from semges_core.motion.skeleton import BEAT_JOINTS
from test_blender_common import REPO, gesture_motion


@pytest.fixture(scope="module")
def motion():
    return gesture_motion(fps=30.0, seconds=2.0)


def test_source_motion_is_the_semges_core_motion(motion, tmp_path):
    save_motion_npz(tmp_path / "m.npz", motion)
    src = SourceMotion.from_npz(tmp_path / "m.npz")  # float32 on disk
    exact = SourceMotion.from_motion(motion)
    assert isinstance(src, Motion) and exact.rotations is motion.rotations  # shared, not copied
    assert src.names == motion.skeleton.names and src.parents == motion.skeleton.parents
    np.testing.assert_array_equal(src.offsets, motion.skeleton.offsets)
    assert src.index("RHand") == motion.skeleton.index("RHand")
    assert src.children(src.index("RArm")) == [src.index("RArm1")]
    np.testing.assert_allclose(src.rotations, motion.rotations, atol=1e-6)
    pos, glob = forward_kinematics(motion.skeleton, motion.rotations, motion.root_positions, return_global=True)
    np.testing.assert_array_equal(exact.world_rotations(), glob)
    np.testing.assert_array_equal(exact.world_positions(), pos)
    np.testing.assert_allclose(src.world_positions(), pos, atol=1e-3)
    for fps in (24.0, 29.97, 60.0, 15.0):
        ours, theirs = exact.resample(fps), motion.resample(fps)
        assert isinstance(ours, SourceMotion) and ours.fps == fps
        np.testing.assert_array_equal(ours.rotations, theirs.rotations)
        np.testing.assert_array_equal(ours.root_positions, theirs.root_positions)


def test_rest_positions_are_fk_of_the_rest_pose(motion):
    src = SourceMotion.from_motion(motion)
    rest = Motion.rest(motion.skeleton, 1, motion.fps)
    np.testing.assert_allclose(src.rest_positions(), rest.positions()[0], atol=1e-12)


def test_rotation_between():
    for a, b in [((1, 0, 0), (0, 1, 0)), ((1, 0, 0), (-1, 0, 0)), ((0, 0, 1), (0, 0, 1)), ((1, 2, 3), (-3, 1, 0.5))]:
        R = rotation_between(np.array(a, float), np.array(b, float))
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
        np.testing.assert_allclose(R @ (np.array(a) / np.linalg.norm(a)), np.array(b) / np.linalg.norm(b), atol=1e-12)


def test_motion_npz_errors(tmp_path):
    with pytest.raises(MotionFileError, match="not found"):
        SourceMotion.from_npz(tmp_path / "none.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(MotionFileError, match="not a SemGes motion"):
        SourceMotion.from_npz(tmp_path / "other.npz")


def test_builtin_presets_are_valid_and_detected():
    for name in BUILTIN_PRESETS:
        m = builtin_mapping(name)
        assert m.name == name and set(m.bones) <= set(BEAT_JOINTS)
        # Every preset covers both arms down to the fingers.
        for j in ("RArm", "RArm1", "RHand", "LArm", "LArm1", "LHand", "RHandI1", "LHandT3"):
            assert j in m.bones, (name, j)
        assert detect_preset(list(m.bones.values()) + ["root", "foot.L"]) == name
    assert detect_preset(["Bone", "Bone.001"]) is None
    # A generated Rigify rig also has ORG-/MCH-/control bones named like the metarig: DEF- wins.
    meta = list(builtin_mapping("rigify_metarig").bones.values())
    deform = list(builtin_mapping("rigify_deform").bones.values())
    assert detect_preset(deform + ["ORG-" + b for b in meta] + meta[:20]) == "rigify_deform"


def test_mixamo_namespaces_resolve():
    m = builtin_mapping("mixamo")
    plain = [b.split(":", 1)[1] for b in m.bones.values()]
    resolved, missing = resolve_bones(m, plain)
    assert not missing and resolved["RArm"] == "RightArm"
    resolved, missing = resolve_bones(m, ["mixamorig2:" + b for b in plain[:-1]])
    assert missing == [list(m.bones.values())[-1]] and resolved["RArm"] == "mixamorig2:RightArm"
    assert detect_preset(["mixamorig5:" + b for b in plain]) == "mixamo"


def test_custom_mapping_json_roundtrip_and_errors(tmp_path):
    custom = BoneMapping("my_rig", {"RArm": "arm_R", "RArm1": "elbow_R", "RHand": "wrist_R"}, "My rig", "test")
    save_mapping(tmp_path / "my_rig.json", custom)
    assert load_mapping(tmp_path / "my_rig.json") == custom
    data = json.loads((tmp_path / "my_rig.json").read_text())
    assert data["bones"]["RArm1"] == "elbow_R"
    with pytest.raises(MappingError, match="not BEAT joints"):
        BoneMapping("x", {"RightArm": "a"})
    with pytest.raises(MappingError, match="target of both"):
        BoneMapping("x", {"RArm": "a", "LArm": "a"})
    (tmp_path / "bad.json").write_text("{\n  \"bones\": {\"RArm\": \"a\",}\n}")
    with pytest.raises(MappingError, match=r"bad.json:2: not valid JSON"):
        load_mapping(tmp_path / "bad.json")
    with pytest.raises(MappingError, match="not found"):
        load_mapping(tmp_path / "none.json")
    with pytest.raises(MappingError, match="unknown preset"):
        builtin_mapping("maya")


def test_blender_side_never_imports_torch():
    """Blender's own Python has no torch: the modules it loads must not need it."""
    code = ("import sys; sys.modules['torch'] = None\n"
            "import semges_blender, semges_blender.source, semges_blender.retarget, semges_blender.presets, "
            "semges_blender.worker\n"
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
