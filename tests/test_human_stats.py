"""Human-likeness statistics on hand-built motions whose answers are known, and `semges stats` end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from semges_core.evaluation.human_stats import (
    REAL_SPEAKER,
    STATISTICS,
    compare,
    format_table,
    geodesic_angles,
    motion_statistics,
    pooled_statistics,
)
from semges_core.formats.bvh import write_bvh
from semges_core.formats.npz import save_motion_npz
from semges_core.formats.smplx import SMPLX_JOINTS, read_smplx_npz
from semges_core.motion.clip import Motion
from semges_core.motion.rotations import axis_angle_to_quat
from semges_core.motion.skeleton import BEAT_SKELETON as SK
from semges_core.motion.skeleton import Skeleton

FPS = 30.0


def spin(axis, deg_per_s: float, n: int, fps: float = FPS, start_deg: float = 0.0) -> np.ndarray:
    """(n, 4) quaternions turning about `axis` at a constant rate."""
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    angles = np.radians(start_deg + deg_per_s * np.arange(n) / fps)
    return axis_angle_to_quat(angles[:, None] * axis)


def still(n: int = 60, fps: float = FPS) -> Motion:
    return Motion.rest(SK, n, fps)


def test_forearm_rotating_at_90_deg_per_s_reads_90_at_any_frame_rate():
    for fps in (15.0, 30.0, 120.0, 24.0):
        m = still(int(2 * fps), fps)
        m.rotations[:, SK.index("RArm1")] = spin([0, 1, 0], 90.0, m.n_frames, fps)
        s = motion_statistics(m)
        assert s["forearm_speed_right"] == pytest.approx(90.0, rel=1e-9), fps
        assert s["forearm_speed_left"] == 0.0 and s["forearm_speed"] == pytest.approx(45.0)
        assert s["upper_arm_speed"] == 0.0 and s["hand_speed"] == 0.0 and s["spine_speed"] == 0.0


def test_elbow_bent_70_degrees_reads_70_whatever_the_bend_axis():
    m = still()
    m.rotations[:, SK.index("RArm1")] = spin([0, 1, 0], 0.0, m.n_frames, start_deg=70.0)  # forward
    m.rotations[:, SK.index("LArm1")] = spin([0, 0.6, 0.8], 0.0, m.n_frames, start_deg=70.0)
    # A twist about the upper arm's own axis and a shoulder pose do not change the flexion.
    m.rotations[:, SK.index("LArm")] = spin([1, 0, 0], 0.0, m.n_frames, start_deg=50.0)
    m.rotations[:, SK.index("RShoulder")] = spin([0, 0, 1], 0.0, m.n_frames, start_deg=-20.0)
    s = motion_statistics(m)
    assert s["elbow_flexion_median_right"] == pytest.approx(70.0)
    assert s["elbow_flexion_median_left"] == pytest.approx(70.0)
    assert s["elbow_flexion_p95"] == pytest.approx(70.0)
    assert s["wrists_at_rest_share"] == 1.0, "a held pose is at rest, bent or not"


def test_still_arms_are_at_rest_and_a_moving_arm_is_not():
    s = motion_statistics(still())
    assert s["wrists_at_rest_share"] == 1.0
    assert s["elbow_flexion_median_right"] == 0.0 and s["wrist_speed_right"] == 0.0
    m = still()
    m.rotations[:, SK.index("RArm")] = spin([0, 0, 1], 180.0, m.n_frames)  # the wrist sweeps a half circle
    s = motion_statistics(m)
    assert s["wrists_at_rest_share"] < 0.5
    # Fixed bones: the whole arm (28 + 25 cm) swings about the shoulder at pi rad/s.
    assert s["wrist_speed_right"] == pytest.approx(53.0 * np.pi, rel=0.01)


def test_left_arm_twice_as_fast_reads_activity_2():
    m = still(90)
    m.rotations[:, SK.index("RArm")] = spin([0, 0, 1], 10.0, m.n_frames)
    m.rotations[:, SK.index("LArm")] = spin([0, 0, -1], 20.0, m.n_frames)
    s = motion_statistics(m)
    assert s["left_right_activity"] == pytest.approx(2.0, rel=1e-3)
    assert s["upper_arm_speed_left"] == pytest.approx(2 * s["upper_arm_speed_right"])
    assert s["upper_arm_speed"] == pytest.approx(15.0)


def test_torso_and_head_chains_are_composed_and_fingers_averaged():
    m = still()
    for joint in ("Spine", "Spine3"):  # 10 deg/s each about one axis: the torso turns at 20
        m.rotations[:, SK.index(joint)] = spin([0, 1, 0], 10.0, m.n_frames)
    m.rotations[:, SK.index("Neck1")] = spin([1, 0, 0], 6.0, m.n_frames)
    m.rotations[:, SK.index("Head")] = spin([1, 0, 0], 6.0, m.n_frames)
    m.rotations[:, SK.index("Neck")] = spin([0, 0, 1], 3.0, m.n_frames)
    for f in "IMRPT":
        for i in (1, 2, 3):
            m.rotations[:, SK.index(f"RHand{f}{i}")] = spin([0, 0, 1], 60.0, m.n_frames)
        m.rotations[:, SK.index(f"RHand{f}4")] = spin([0, 0, 1], 500.0, m.n_frames)  # tips do not count
    s = motion_statistics(m)
    assert s["spine_speed"] == pytest.approx(20.0)
    assert s["head_speed"] == pytest.approx(12.0)
    assert s["neck_speed"] == pytest.approx(3.0)
    assert s["finger_speed"] == pytest.approx(30.0), "mean over both hands' 30 finger joints"


def test_geodesic_angle_is_exact_for_tiny_and_half_turn_rotations():
    q0 = axis_angle_to_quat(np.zeros(3))
    for angle in (1e-9, 1e-4, 1.0, np.pi - 1e-7):
        q1 = axis_angle_to_quat(np.array([0.0, 0.0, angle]))
        assert geodesic_angles(q0, q1) == pytest.approx(angle, rel=1e-9)
        assert geodesic_angles(q0, -q1) == pytest.approx(angle, rel=1e-9), "q and -q are one rotation"


def test_too_short_or_armless_motions_are_refused():
    with pytest.raises(ValueError, match="at least 3 frames"):
        motion_statistics(still(4))
    torso = Skeleton(("Hips", "Spine"), (-1, 0), np.array([[0.0, 95.0, 0.0], [0.0, 8.0, 0.0]]), ("ZXY", "ZXY"))
    with pytest.raises(KeyError, match="RShoulder, RArm, RArm1, RHand, LShoulder"):
        motion_statistics(Motion.rest(torso, 30, FPS))


def test_compare_gives_ratios_flags_and_a_table():
    generated = dict(REAL_SPEAKER, upper_arm_speed=74.0, forearm_speed=20.0, wrists_at_rest_share=0.6,
                     finger_speed=float("nan"))
    rows = {r["key"]: r for r in compare(generated, REAL_SPEAKER)}
    assert list(rows) == [s.key for s in STATISTICS]
    assert rows["upper_arm_speed"]["ratio"] == pytest.approx(2.0) and rows["upper_arm_speed"]["in_range"]
    assert rows["forearm_speed"]["ratio"] == pytest.approx(20 / 79) and not rows["forearm_speed"]["in_range"]
    assert rows["head_speed"]["ratio"] == pytest.approx(1.0) and rows["head_speed"]["in_range"]
    # The at-rest share has no ratio at 0: judged as within 0.25 of the reference.
    assert rows["wrists_at_rest_share"]["ratio"] is None and not rows["wrists_at_rest_share"]["in_range"]
    assert compare({"wrists_at_rest_share": 0.2}, REAL_SPEAKER)[0]["in_range"]
    assert rows["finger_speed"]["ratio"] is None and not rows["finger_speed"]["in_range"]
    md = format_table(list(rows.values()), "demo", "real")
    assert md.splitlines()[0] == "| statistic | unit | demo | real | ratio | human-like |"
    assert "| forearm_speed | deg/s | 20.0 | 79.0 | 0.25 | NO |" in md
    plain = format_table(list(rows.values()), style="plain")
    assert "|" not in plain and len(plain.splitlines()) == len(rows) + 1


# ---------------------------------------------------------------------- SMPL-X


def smplx_npz(path: Path, n: int = 60, fps: float = 30.0, **joint_poses) -> Path:
    """A BEAT2-style SMPL-X file: poses (T, 165) axis-angle, trans, betas, mocap_frame_rate."""
    poses = np.zeros((n, 55, 3))
    for name, value in joint_poses.items():
        poses[:, SMPLX_JOINTS.index(name)] = value
    np.savez(path, poses=poses.reshape(n, 165), trans=np.tile([0.0, 0.9, 0.0], (n, 1)) + 0.01 * np.arange(n)[:, None],
             betas=np.zeros(300), expressions=np.zeros((n, 100)), mocap_frame_rate=np.array(fps), gender="neutral")
    return path


def test_smplx_file_reads_onto_the_beat_skeleton_with_known_answers(tmp_path):
    n, t = 60, np.arange(60) / 30.0
    elbow = np.radians(90.0) * t[:, None] * np.array([0.0, 1.0, 0.0])  # 90 deg/s
    spine = np.radians(5.0) * t[:, None] * np.array([0.0, 1.0, 0.0])
    path = smplx_npz(tmp_path / "take.npz", n, right_elbow=elbow, left_elbow=np.radians([0.0, 0.0, 70.0]),
                     spine1=spine, spine2=spine, spine3=spine, head=2 * spine, left_index2=4 * spine)
    m = read_smplx_npz(path)
    assert m.skeleton is SK and m.fps == 30.0 and m.n_frames == n
    s = motion_statistics(m)
    assert s["forearm_speed_right"] == pytest.approx(90.0)
    assert s["elbow_flexion_median_left"] == pytest.approx(70.0)
    assert s["spine_speed"] == pytest.approx(15.0), "spine1..3 compose over BEAT's four spine joints"
    assert s["head_speed"] == pytest.approx(10.0) and s["neck_speed"] == 0.0
    assert s["finger_speed"] == pytest.approx(20.0 / 30)
    assert np.allclose(m.root_positions[1] - m.root_positions[0], [1.0, 1.0, 1.0]), "trans in metres -> cm"


def test_smplx_sides_and_axes_match_the_beat_skeleton(tmp_path):
    # SMPL-X's right arm points to -X at rest; +90 deg about Z lowers it, as on BEAT's skeleton.
    path = smplx_npz(tmp_path / "down.npz", 5, right_shoulder=np.radians([0.0, 0.0, 90.0]))
    pos = read_smplx_npz(path).positions()[0]
    arm, hand = pos[SK.index("RArm")], pos[SK.index("RHand")]
    assert hand[1] == pytest.approx(arm[1] - 53.0) and hand[0] == pytest.approx(arm[0])
    rest = SK.rest_positions()
    assert np.allclose(pos[SK.index("LHand")] - pos[0], rest[SK.index("LHand")] - rest[0])


def test_bad_smplx_files_name_the_file_and_the_problem(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, poses=np.zeros((10, 156)), mocap_frame_rate=np.array(30.0))
    with pytest.raises(Exception, match=r"bad\.npz.*\(T, 165\)"):
        read_smplx_npz(bad)
    np.savez(bad, poses=np.zeros((10, 165)))
    with pytest.raises(Exception, match=r"bad\.npz.*mocap_frame_rate"):
        read_smplx_npz(bad)


# ---------------------------------------------------------------------- semges stats


def semges(*args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("semges")
    command = [str(exe)] if exe.is_file() else [sys.executable, "-m", "semges_core.cli"]
    return subprocess.run(command + ["stats", *args], capture_output=True, text=True, timeout=120)


def gesturing(n: int = 90) -> Motion:
    m = still(n)
    m.rotations[:, SK.index("RArm1")] = spin([0, 1, 0], 40.0, n, start_deg=30.0)
    m.rotations[:, SK.index("LArm")] = spin([0, 0, -1], 25.0, n)
    m.rotations[:, SK.index("Spine2")] = spin([0, 1, 0], 8.0, n)
    return m


def test_semges_stats_reads_bvh_and_npz_and_compares(tmp_path):
    m = gesturing()
    write_bvh(tmp_path / "gen.bvh", m)
    save_motion_npz(tmp_path / "gen.npz", m)
    expected = motion_statistics(m)

    done = semges(str(tmp_path / "gen.bvh"), "--json", str(tmp_path / "out.json"))
    assert done.returncode == 0, done.stderr
    assert "| forearm_speed | deg/s |" in done.stdout and "real speaker" in done.stdout
    result = json.loads((tmp_path / "out.json").read_text())
    assert result["generated"]["forearm_speed_right"] == pytest.approx(40.0, rel=1e-3)
    assert result["generated"]["spine_speed"] == pytest.approx(expected["spine_speed"], rel=1e-3)
    assert result["reference_values"] == REAL_SPEAKER
    assert {r["key"] for r in result["rows"]} == set(REAL_SPEAKER)

    done = semges(str(tmp_path / "gen.npz"), "--reference", str(tmp_path / "gen.bvh"), "--plain",
                  "--json", str(tmp_path / "pair.json"))
    assert done.returncode == 0, done.stderr
    rows = json.loads((tmp_path / "pair.json").read_text())["rows"]
    assert all(r["ratio"] == pytest.approx(1.0, rel=1e-3) for r in rows if r["reference"])
    assert "wrist_speed_left" in done.stdout  # per-arm rows appear when both sides have them


def test_semges_stats_reads_smplx_and_names_bad_files(tmp_path):
    n, t = 45, np.arange(45) / 30.0
    path = smplx_npz(tmp_path / "beat2.npz", n, right_elbow=np.radians(60.0) * t[:, None] * np.array([0.0, 1, 0]))
    done = semges(str(path), "--json", str(tmp_path / "s.json"))
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "s.json").read_text())["generated"]["forearm_speed_right"] == pytest.approx(60.0)

    done = semges(str(tmp_path / "missing.bvh"))
    assert done.returncode == 1 and "missing.bvh: file not found" in done.stderr
    (tmp_path / "notes.txt").write_text("hello")
    done = semges(str(tmp_path / "notes.txt"))
    assert done.returncode == 1 and "notes.txt" in done.stderr and ".bvh or .npz" in done.stderr
    save_motion_npz(tmp_path / "short.npz", still(3))
    done = semges(str(path), "--reference", str(tmp_path / "short.npz"))
    assert done.returncode == 1 and "short.npz" in done.stderr and "at least 3 frames" in done.stderr
    assert "Traceback" not in done.stderr


def test_pooled_takes_count_no_jump_between_them():
    a, b = still(30), still(45)
    a.rotations[:, SK.index("RArm1")] = spin([0, 1, 0], 90.0, 30)
    b.rotations[:, SK.index("RArm1")] = spin([0, 1, 0], 90.0, 45, start_deg=40.0)  # a jump if glued on
    s = pooled_statistics([a, b])
    assert s["forearm_speed_right"] == pytest.approx(90.0)
    assert s["elbow_flexion_median_right"] == pytest.approx(
        np.median(np.concatenate([np.arange(15) * 6.0, 40 + np.arange(23) * 6.0])))


def test_stats_run_without_torch_or_scipy(tmp_path):
    """Blender's Python has numpy only: reading every format and measuring must not need more."""
    write_bvh(tmp_path / "gen.bvh", gesturing(30))
    smplx_npz(tmp_path / "beat2.npz", 30)
    code = f"""
import importlib.abc, sys
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "scipy", "librosa"):
            raise ImportError(name + " is blocked in this test")
sys.meta_path.insert(0, Refuse())
from semges_core.evaluation.stats_command import run_stats
result = run_stats({str(tmp_path / "gen.bvh")!r}, {str(tmp_path / "beat2.npz")!r})
print(round(result["generated"]["forearm_speed_right"], 3))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "40.0"
