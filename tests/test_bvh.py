"""BVH reading and writing: round trips, channel orders, speed, errors, atomicity, and Blender's importer."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import numpy as np
import pytest

from semges_core.formats import bvh
from semges_core.formats.bvh import read_bvh, read_bvh_header, write_bvh
from semges_core.errors import BVHFormatError
from semges_core.motion.clip import Motion
from semges_core.motion.rotations import quat_to_matrix
from semges_core.motion.skeleton import BEAT_SKELETON, Skeleton


def smooth_motion(skeleton: Skeleton, n_frames: int, fps: float = 120.0, amplitude: float = 35.0, seed: int = 0) -> Motion:
    """A few random sinusoids per channel: every joint (arms, fingers) moves, smoothly."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_frames)[:, None, None] / fps  # (T, 1, 1)
    J = len(skeleton)
    euler = np.zeros((n_frames, J, 3))
    for _ in range(3):
        amp = rng.uniform(-amplitude, amplitude, (J, 3)) / 3
        freq = rng.uniform(0.2, 2.0, (J, 3))
        phase = rng.uniform(0, 2 * np.pi, (J, 3))
        euler += amp * np.sin(2 * np.pi * freq * t + phase)
    root = skeleton.offsets[0] + 10 * np.sin(np.arange(n_frames)[:, None] / fps * np.array([0.7, 1.3, 0.4]))
    return Motion.from_euler(skeleton, fps, root, euler)


def mixed_order_skeleton(seed: int = 0) -> Skeleton:
    orders = ("XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX")
    rng = np.random.default_rng(seed)
    picked = tuple(orders[i] for i in rng.integers(0, 6, len(BEAT_SKELETON)))
    return dataclasses.replace(BEAT_SKELETON, rotation_orders=picked)


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("skeleton", [BEAT_SKELETON, mixed_order_skeleton()], ids=["beat", "mixed-orders"])
def test_write_read_round_trip(tmp_path: Path, skeleton: Skeleton) -> None:
    motion = smooth_motion(skeleton, 240)
    path = tmp_path / "take.bvh"
    write_bvh(path, motion)
    back = read_bvh(path)

    assert back.skeleton.names == skeleton.names
    assert back.skeleton.parents == skeleton.parents
    assert back.skeleton.rotation_orders == skeleton.rotation_orders
    np.testing.assert_allclose(back.skeleton.offsets, skeleton.offsets, atol=1e-4)
    for ours, theirs in zip(back.skeleton.end_sites, skeleton.end_sites):
        assert (ours is None) == (theirs is None)
        if ours is not None:
            np.testing.assert_allclose(ours, theirs, atol=1e-4)
    assert back.fps == 120.0 and back.n_frames == 240
    np.testing.assert_allclose(back.root_positions, motion.root_positions, atol=1e-4)
    assert np.abs(back.positions() - motion.positions()).max() < 1e-3


def test_header_matches_full_read(tmp_path: Path) -> None:
    path = tmp_path / "take.bvh"
    write_bvh(path, smooth_motion(BEAT_SKELETON, 30, fps=30.0))
    skeleton, n_frames, fps = read_bvh_header(path)
    assert (n_frames, fps) == (30, 30.0)
    assert skeleton.same_layout(BEAT_SKELETON)
    assert skeleton.rotation_orders == BEAT_SKELETON.rotation_orders


def test_beat_style_frame_time_gives_whole_fps(tmp_path: Path) -> None:
    path = tmp_path / "take.bvh"
    write_bvh(path, Motion.rest(BEAT_SKELETON, 3, 120.0))
    text = path.read_text().replace("Frame Time: 0.00833333", "Frame Time: 0.008333")
    path.write_text(text)
    assert read_bvh(path).fps == 120.0


# --------------------------------------------------------------------------- channel orders


def _rot(axis: str, deg: float) -> np.ndarray:
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    return {
        "X": np.array([[1, 0, 0], [0, c, -s], [0, s, c]]),
        "Y": np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]),
        "Z": np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]),
    }[axis]


ODD_FILE = """HIERARCHY
ROOT Hips
{
  OFFSET 1 90 2
  CHANNELS 6 Yrotation Zposition Xrotation Xposition Zrotation Yposition
  JOINT Spine
  {
    OFFSET 0 10 0
    CHANNELS 3 Xrotation Yrotation Zrotation
    JOINT Arm
    {
      OFFSET -20 0 1
      CHANNELS 6 Xposition Yposition Zposition Yrotation Xrotation Zrotation
      End Site
      {
        OFFSET -5 0 0
      }
    }
  }
  JOINT Leg
  {
    OFFSET 5 -40 0
    CHANNELS 3 Zrotation Yrotation Xrotation
  }
}
MOTION
Frames: 2
Frame Time: 0.04
{frames}
"""


def test_per_joint_channel_orders_read_correctly(tmp_path: Path) -> None:
    # Columns: Hips Yrot Zpos Xrot Xpos Zrot Ypos | Spine X Y Z | Arm Xpos Ypos Zpos Yrot Xrot Zrot | Leg Z Y X
    frames = np.array(
        [
            [10, 3, -20, 1.5, 30, 88, 40, -25, 60, -20, 0, 1, 70, 15, -35, 12, -45, 22],
            [-50, -4, 35, 2.5, -10, 91, -15, 80, 5, -20, 0, 1, -65, 30, 50, -33, 18, 70],
        ],
        dtype=float,
    )
    path = tmp_path / "odd.bvh"
    path.write_text(ODD_FILE.replace("{frames}", "\n".join(" ".join(map(str, r)) for r in frames)))
    motion = read_bvh(path)

    sk = motion.skeleton
    assert sk.names == ("Hips", "Spine", "Arm", "Leg")
    assert sk.parents == (-1, 0, 1, 0)
    assert sk.rotation_orders == ("YXZ", "XYZ", "YXZ", "ZYX")
    assert sk.end_sites[2] == (-5.0, 0.0, 0.0) and sk.end_sites[3] is None
    assert motion.fps == 25.0

    for f, row in enumerate(frames):
        root = np.array([row[3], row[5], row[1]])
        R_hips = _rot("Y", row[0]) @ _rot("X", row[2]) @ _rot("Z", row[4])
        R_spine = _rot("X", row[6]) @ _rot("Y", row[7]) @ _rot("Z", row[8])
        spine = root + R_hips @ np.array([0, 10, 0])
        arm = spine + R_hips @ R_spine @ np.array([-20, 0, 1])
        leg = root + R_hips @ np.array([5, -40, 0])
        np.testing.assert_allclose(motion.root_positions[f], root, atol=1e-9)
        np.testing.assert_allclose(motion.positions()[f], np.stack([root, spine, arm, leg]), atol=1e-9)
        # The arm's own rotation (Y X Z) shows in its global rotation.
        R_arm = _rot("Y", row[12]) @ _rot("X", row[13]) @ _rot("Z", row[14])
        np.testing.assert_allclose(quat_to_matrix(motion.rotations[f, 2]), R_arm, atol=1e-9)
        R_leg = _rot("Z", row[15]) @ _rot("Y", row[16]) @ _rot("X", row[17])
        np.testing.assert_allclose(quat_to_matrix(motion.rotations[f, 3]), R_leg, atol=1e-9)


def test_root_without_position_channels_stays_at_offset(tmp_path: Path) -> None:
    text = ODD_FILE.replace(
        "CHANNELS 6 Yrotation Zposition Xrotation Xposition Zrotation Yposition", "CHANNELS 3 Yrotation Xrotation Zrotation"
    )
    row = "0 0 0 10 20 30 -20 0 1 0 0 0 0 0 0"
    path = tmp_path / "noroot.bvh"
    path.write_text(text.replace("{frames}", f"{row}\n{row}"))
    motion = read_bvh(path)
    np.testing.assert_allclose(motion.root_positions, [[1, 90, 2], [1, 90, 2]])


def test_non_root_translation_that_moves_is_rejected(tmp_path: Path) -> None:
    row = "10 3 -20 1.5 30 88 40 -25 60 -20 0 1 70 15 -35 12 -45 22"
    moved = "10 3 -20 1.5 30 88 40 -25 60 -19 0 1 70 15 -35 12 -45 22"  # Arm Xposition -19 != OFFSET -20
    path = tmp_path / "moves.bvh"
    path.write_text(ODD_FILE.replace("{frames}", f"{row}\n{moved}"))
    with pytest.raises(BVHFormatError, match="per-joint translation is not supported") as info:
        read_bvh(path)
    assert info.value.line == 30 and "'Arm'" in str(info.value)


# --------------------------------------------------------------------------- speed


def test_sixty_second_beat_take_reads_fast(tmp_path: Path) -> None:
    path = tmp_path / "long.bvh"
    motion = smooth_motion(BEAT_SKELETON, 60 * 120)
    write_bvh(path, motion)
    start = time.perf_counter()
    back = read_bvh(path)
    elapsed = time.perf_counter() - start
    assert back.n_frames == 7200 and back.rotations.shape == (7200, 75, 4)
    assert elapsed < 5.0, f"reading 7200 frames x 228 channels took {elapsed:.2f} s"


# --------------------------------------------------------------------------- malformed input

GOOD = """HIERARCHY
ROOT Hips
{
\tOFFSET 0 90 0
\tCHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
\tJOINT Head
\t{
\t\tOFFSET 0 20 0
\t\tCHANNELS 3 Zrotation Xrotation Yrotation
\t\tEnd Site
\t\t{
\t\t\tOFFSET 0 10 0
\t\t}
\t}
}
MOTION
Frames: 3
Frame Time: 0.1
0 90 0 0 0 0 0 0 0
1 90 0 10 0 0 5 0 0
2 90 0 20 0 0 10 0 0
"""
# Line numbers in GOOD (1-based): 5 root CHANNELS, 6 JOINT Head, 7 "{", 9 Head CHANNELS,
# 15 "}" closing Hips, 16 MOTION, 17 Frames, 18 Frame Time, 19-21 frames.


def _lines() -> list[str]:
    return GOOD.splitlines()


def _write(tmp_path: Path, lines: list[str] | str | bytes) -> Path:
    path = tmp_path / "bad.bvh"
    if isinstance(lines, bytes):
        path.write_bytes(lines)
    else:
        path.write_text(lines if isinstance(lines, str) else "\n".join(lines) + "\n")
    return path


def _replace(line_no: int, text: str) -> list[str]:
    lines = _lines()
    lines[line_no - 1] = text
    return lines


def test_good_file_reads(tmp_path: Path) -> None:
    motion = read_bvh(_write(tmp_path, GOOD))
    assert motion.n_frames == 3 and motion.fps == 10.0
    np.testing.assert_allclose(motion.positions()[2, 1], [2 - 20 * np.sin(np.radians(20)), 90 + 20 * np.cos(np.radians(20)), 0], atol=1e-6)


def test_trailing_blank_lines_are_allowed(tmp_path: Path) -> None:
    assert read_bvh(_write(tmp_path, GOOD + "\n\n   \n")).n_frames == 3


def test_crlf_line_endings(tmp_path: Path) -> None:
    assert read_bvh(_write(tmp_path, GOOD.replace("\n", "\r\n").encode())).n_frames == 3


MALFORMED = {
    "empty": ("", 1, "empty"),
    "whitespace only": ("  \n\n", 1, "empty"),
    "no HIERARCHY": (_replace(1, "HIERARCH"), 1, "HIERARCHY"),
    "no ROOT": (_replace(2, "JOINT Hips"), 2, "ROOT"),
    "missing MOTION": (_lines()[:15], 15, "MOTION"),
    "missing {": (_replace(7, ""), 8, "'{'"),
    "missing } before MOTION": (_lines()[:13] + _lines()[14:], 15, "closing joint 'Hips'"),
    "extra }": (_lines()[:15] + ["}"] + _lines()[15:], 16, "'}'"),
    "unknown channel": (_replace(9, "\t\tCHANNELS 3 Zrotation Wrotation Yrotation"), 9, "unknown channel 'Wrotation'"),
    "channel count too high": (_replace(9, "\t\tCHANNELS 4 Zrotation Xrotation Yrotation"), 10, "channel"),
    "non-numeric OFFSET": (_replace(8, "\t\tOFFSET 0 abc 0"), 8, "number"),
    "non-numeric frame value": (_replace(20, "1 90 0 10 zero 0 5 0 0"), 20, "'zero'"),
    "nan frame value": (_replace(21, "2 90 0 20 0 nan 10 0 0"), 21, "'nan'"),
    "glued garbage": (_replace(19, "0 90 0 0 0 0 0 0 0x"), 19, "'0x'"),
    "too few values": (_replace(20, "1 90 0 10 0 0 5 0"), 20, "8 values, expected 9"),
    "too many values": (_replace(21, "2 90 0 20 0 0 10 0 0 7"), 21, "10 values, expected 9"),
    "blank line inside frames": (_lines()[:19] + [""] + _lines()[19:], 20, "0 values"),
    "fewer frames than declared": (_replace(17, "Frames: 5"), 17, "only 3 frame line"),
    "more frames than declared": (_replace(17, "Frames: 2"), 21, "more frame lines"),
    "bad Frames line": (_replace(17, "Frames: many"), 17, "Frames: N"),
    "missing Frames line": (_lines()[:16], 16, "Frames"),
    "zero Frame Time": (_replace(18, "Frame Time: 0"), 18, "positive"),
    "negative Frame Time": (_replace(18, "Frame Time: -0.1"), 18, "positive"),
    "bad Frame Time": (_replace(18, "Frame Time: fast"), 18, "Frame Time"),
    "non-UTF-8 header": (("\n".join(_replace(6, "\tJOINT He\xffad")) + "\n").encode("latin-1"), 6, "UTF-8"),
    "non-UTF-8 frames": (("\n".join(_replace(20, "1 90 0 10 0 \xe9 5 0 0")) + "\n").encode("latin-1"), 20, "UTF-8"),
}


@pytest.mark.parametrize("case", list(MALFORMED), ids=list(MALFORMED))
def test_malformed_input_names_file_and_line(tmp_path: Path, case: str) -> None:
    content, line, fragment = MALFORMED[case]
    path = _write(tmp_path, content)
    with pytest.raises(BVHFormatError) as info:
        read_bvh(path)
    err = info.value
    assert err.path == path
    assert err.line == line, str(err)
    assert fragment in err.message, str(err)
    assert str(path) in str(err) and f":{line}:" in str(err)


def test_header_reader_reports_header_errors(tmp_path: Path) -> None:
    with pytest.raises(BVHFormatError) as info:
        read_bvh_header(_write(tmp_path, _replace(18, "Frame Time: 0")))
    assert info.value.line == 18


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(BVHFormatError, match="cannot read"):
        read_bvh(tmp_path / "nope.bvh")


# --------------------------------------------------------------------------- atomic writes


def test_failed_write_leaves_nothing_and_keeps_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "take.bvh"
    motion = smooth_motion(BEAT_SKELETON, 10)

    def fail_halfway(f, values, precision):  # noqa: ANN001 - same signature as bvh._write_frames
        f.write("0 1 2\n")
        raise OSError("disk full")

    monkeypatch.setattr(bvh, "_write_frames", fail_halfway)
    with pytest.raises(OSError, match="disk full"):
        write_bvh(path, motion)
    assert os.listdir(tmp_path) == []

    monkeypatch.undo()
    write_bvh(path, motion)
    before = path.read_bytes()
    monkeypatch.setattr(bvh, "_write_frames", fail_halfway)
    with pytest.raises(OSError):
        write_bvh(path, smooth_motion(BEAT_SKELETON, 10, seed=5))
    assert os.listdir(tmp_path) == ["take.bvh"]
    assert path.read_bytes() == before


# --------------------------------------------------------------------------- Blender


@pytest.mark.blender
@pytest.mark.parametrize(
    "skeleton,rotate_mode",
    [(BEAT_SKELETON, "NATIVE"), (BEAT_SKELETON, "QUATERNION"), (mixed_order_skeleton(3), "NATIVE")],
    ids=["beat-native", "beat-quaternion", "mixed-orders-native"],
)
def test_blender_importer_agrees_with_our_fk(tmp_path: Path, skeleton: Skeleton, rotate_mode: str) -> None:
    """Blender's own BVH importer must pose the skeleton exactly where our FK puts it.

    With axis_forward='-Z', axis_up='Y' (BEAT faces +Z, Y up) Blender maps a file point
    (x, y, z) to (x, -z, y) and multiplies it by global_scale (0.01: cm -> m). With
    use_fps_scale off, file frame i lands on Blender frame frame_start + i.
    """
    bpy = pytest.importorskip("bpy")
    motion = smooth_motion(skeleton, 24, amplitude=60.0, seed=7)
    path = tmp_path / "pose.bvh"
    write_bvh(path, motion)

    bpy.ops.wm.read_factory_settings(use_empty=True)
    result = bpy.ops.import_anim.bvh(
        filepath=str(path),
        target="ARMATURE",
        global_scale=0.01,
        frame_start=1,
        use_fps_scale=False,
        update_scene_fps=False,
        update_scene_duration=True,
        use_cyclic=False,
        rotate_mode=rotate_mode,
        axis_forward="-Z",
        axis_up="Y",
    )
    assert result == {"FINISHED"}
    scene = bpy.context.scene
    armature = next(o for o in scene.objects if o.type == "ARMATURE")
    assert {b.name for b in armature.pose.bones} == set(skeleton.names)

    ours = motion.positions()  # (T, J, 3) cm, Y up
    height = np.ptp(ours[0, :, 1]) * 0.01
    world = np.array(armature.matrix_world)
    for f in (0, 5, 11, 23):
        scene.frame_set(1 + f)
        heads = np.array([tuple(armature.pose.bones[n].head) for n in skeleton.names])  # armature space
        blender = heads @ world[:3, :3].T + world[:3, 3]
        expected = 0.01 * np.stack([ours[f, :, 0], -ours[f, :, 2], ours[f, :, 1]], axis=-1)
        err = np.abs(blender - expected).max()
        assert err < 1e-3 * height, f"frame {f}: Blender differs from our FK by {err * 1000:.3f} mm"
    # The arms and fingers really moved, so the comparison is not of a rest pose.
    hand = skeleton.index("RHandI3")
    assert np.linalg.norm(ours[23, hand] - ours[0, hand]) > 5.0
    bpy.ops.wm.read_factory_settings(use_empty=True)
