"""Motion: resampling, Euler continuity, the model's pose vectors; NormStats."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from semges_core.errors import InputFileError
from semges_core.motion.clip import Motion
from semges_core.motion.normalization import NormStats
from semges_core.motion.rotations import euler_to_matrix, quat_to_matrix
from semges_core.motion.skeleton import (
    BEAT_SKELETON as SKEL,
    BODY_JOINTS,
    HAND_JOINTS,
    UPPER_BODY_JOINTS,
    Skeleton,
)

J = len(SKEL)


def smooth_motion(n_frames: int = 241, fps: float = 120.0, seed: int = 0, skeleton: Skeleton = SKEL) -> Motion:
    """A few low-frequency sinusoids per joint and channel, up to ~60 degrees in all."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_frames)[:, None, None] / fps  # (T, 1, 1)
    shape = (1, len(skeleton), 3)
    euler = np.zeros((n_frames,) + shape[1:])
    for _ in range(3):
        amp = rng.uniform(0, 20, shape)
        freq = rng.uniform(0.1, 0.5, shape)
        euler += amp * np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi, shape))
    root = skeleton.offsets[0] + 5 * np.sin(2 * np.pi * 0.3 * t[:, 0] + np.array([0.0, 1.0, 2.0]))
    return Motion.from_euler(skeleton, fps, root, euler)


@pytest.fixture(scope="module")
def motion() -> Motion:
    return smooth_motion()


# ----------------------------------------------------------------------------- basics


def test_construction_and_validation():
    m = Motion.rest(SKEL, 10, 30)
    assert m.n_frames == 10 and m.duration == pytest.approx(10 / 30)
    np.testing.assert_array_equal(m.root_positions, np.tile(SKEL.offsets[0], (10, 1)))
    np.testing.assert_array_equal(quat_to_matrix(m.rotations), np.broadcast_to(np.eye(3), (10, J, 3, 3)))
    with pytest.raises(ValueError, match="fps"):
        Motion(SKEL, 0, m.root_positions, m.rotations)
    with pytest.raises(ValueError, match="rotations"):
        Motion(SKEL, 30, m.root_positions, m.rotations[:, :-1])
    with pytest.raises(ValueError, match="root_positions"):
        Motion(SKEL, 30, m.root_positions[:-1], m.rotations)
    with pytest.raises(ValueError, match="euler"):
        Motion.from_euler(SKEL, 30, m.root_positions, np.zeros((10, J, 4)))


def test_from_euler_and_back(motion):
    euler = motion.euler_degrees()
    again = Motion.from_euler(SKEL, motion.fps, motion.root_positions, euler)
    np.testing.assert_allclose(quat_to_matrix(again.rotations), quat_to_matrix(motion.rotations), atol=1e-12)
    np.testing.assert_allclose(again.positions(), motion.positions(), atol=1e-9)


def test_slice(motion):
    part = motion.slice(10, 20)
    assert part.n_frames == 10 and part.fps == motion.fps
    np.testing.assert_array_equal(part.rotations, motion.rotations[10:20])
    np.testing.assert_array_equal(part.root_positions, motion.root_positions[10:20])
    part.rotations[:] = 0  # a copy, not a view
    assert np.all(np.linalg.norm(motion.rotations[10:20], axis=-1) > 0.5)
    with pytest.raises(ValueError, match="outside"):
        motion.slice(5, motion.n_frames + 1)


# ----------------------------------------------------------------------------- resampling


def test_resample_integer_ratio_picks_frames_exactly(motion):
    m15 = motion.resample(15)
    assert m15.fps == 15 and m15.n_frames == (motion.n_frames - 1) // 8 + 1
    np.testing.assert_array_equal(m15.rotations, motion.rotations[::8])
    np.testing.assert_array_equal(m15.root_positions, motion.root_positions[::8])


def test_resample_120_15_30_stays_close(motion):
    m30 = motion.resample(15).resample(30)
    assert m30.n_frames == (motion.n_frames - 1) // 4 + 1
    truth = motion.positions()[::4]  # the 120-fps motion at times k / 30
    err = np.linalg.norm(m30.positions() - truth, axis=-1)  # (T, J) cm
    assert err.max() < 1.0
    np.testing.assert_allclose(m30.positions()[::2], truth[::2], atol=1e-9)  # the 15-fps frames


def test_resample_frame_count_and_same_rate(motion):
    assert motion.resample(50).n_frames == int((motion.n_frames - 1) * 50 / 120) + 1
    same = motion.resample(120)
    np.testing.assert_array_equal(same.rotations, motion.rotations)
    assert same.rotations is not motion.rotations


def one_joint_motion(angles_z: list[float], fps: float = 1.0) -> Motion:
    """RArm turning about Z (the first ZXY channel), everything else at rest."""
    euler = np.zeros((len(angles_z), J, 3))
    euler[:, SKEL.index("RArm"), 0] = angles_z
    euler[:, SKEL.index("RArm"), 1] = 20.0  # an X tilt, so more than one channel matters
    return Motion.from_euler(SKEL, fps, np.tile(SKEL.offsets[0], (len(angles_z), 1)), euler)


def test_resample_slerps_across_180():
    # Halfway from 170 to -170 degrees is 180; a per-channel Euler lerp would give 0.
    m = one_joint_motion([170.0, -170.0]).resample(2.0)
    assert m.n_frames == 3
    arm = SKEL.index("RArm")
    expected = euler_to_matrix(np.array([180.0, 20.0, 0.0]), "ZXY")
    np.testing.assert_allclose(quat_to_matrix(m.rotations[1, arm]), expected, atol=1e-12)
    hand = SKEL.index("RHand")
    expected_pos = one_joint_motion([180.0]).positions()[0, hand]
    np.testing.assert_allclose(m.positions()[1, hand], expected_pos, atol=1e-9)


# ----------------------------------------------------------------------------- Euler continuity


def test_euler_degrees_unwraps_full_turns():
    spin = np.linspace(0.0, 720.0, 73)  # 10 degrees a frame, two full turns about Z
    euler = one_joint_motion(list(spin)).euler_degrees()[:, SKEL.index("RArm")]
    np.testing.assert_allclose(euler[:, 0], spin, atol=1e-9)
    np.testing.assert_allclose(euler[:, 1], 20.0, atol=1e-9)


def test_euler_degrees_passes_through_the_middle_axis_limit():
    # X (middle channel of ZXY) from 0 to 170: the principal solution would flip at 90.
    euler = np.zeros((35, J, 3))
    euler[:, SKEL.index("Spine"), 1] = np.linspace(0.0, 170.0, 35)
    euler[:, SKEL.index("Spine"), 2] = 15.0
    m = Motion.from_euler(SKEL, 30, np.tile(SKEL.offsets[0], (35, 1)), euler)
    out = m.euler_degrees()
    assert np.abs(np.diff(out, axis=0)).max() < 10.0
    np.testing.assert_allclose(out[:, SKEL.index("Spine")], euler[:, SKEL.index("Spine")], atol=1e-6)


@pytest.mark.parametrize("order", ["XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX"])
@pytest.mark.parametrize("direction", [1.0, -1.0])
def test_euler_degrees_through_gimbal_lock(order, direction):
    # The middle angle sweeps through exactly +-90 while the outer ones drift slowly.
    n = 25
    euler = np.stack([np.linspace(10, 20, n), direction * np.linspace(60, 120, n), np.linspace(15, 5, n)], -1)
    skel = Skeleton(("a",), (-1,), np.zeros((1, 3)), (order,))
    m = Motion.from_euler(skel, 30, np.zeros((n, 3)), euler[:, None])
    out = m.euler_degrees()
    np.testing.assert_allclose(euler_to_matrix(out[:, 0], order), quat_to_matrix(m.rotations[:, 0]), atol=1e-9)
    assert np.abs(np.diff(out, axis=0)).max() < 10.0
    # At the locked frame only a +- c is defined: c stays where it was, a takes the rest.
    locked = n // 2
    assert abs(out[locked, 0, 1]) == pytest.approx(90.0)
    np.testing.assert_allclose(out[locked, 0, 2], out[locked - 1, 0, 2])
    np.testing.assert_allclose(np.delete(out[:, 0], locked, axis=0), np.delete(euler, locked, axis=0), atol=1e-6)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_euler_degrees_is_continuous_and_exact(seed):
    # A random walk with steps up to 15 degrees per channel wanders across +-180.
    rng = np.random.default_rng(seed)
    euler = np.cumsum(rng.uniform(-15, 15, (60, 4, 3)), axis=0)
    skel = Skeleton(("a", "b", "c", "d"), (-1, 0, 1, 1), np.ones((4, 3)), ("ZXY", "XYZ", "YZX", "ZYX"))
    m = Motion.from_euler(skel, 30, np.zeros((60, 3)), euler)
    out = m.euler_degrees()
    np.testing.assert_allclose(quat_to_matrix(Motion.from_euler(skel, 30, np.zeros((60, 3)), out).rotations),
                               quat_to_matrix(m.rotations), atol=1e-9)
    # Never a jump bigger than the motion itself makes (generous for the flips near the middle axis limit).
    assert np.abs(np.diff(out, axis=0)).max() < 180.0
    assert np.abs(out[0]).max() <= 180.0


# ----------------------------------------------------------------------------- the model's pose vectors


def test_upper_body_euler_round_trip(motion):
    pose = motion.upper_body_euler()
    assert pose.shape == (motion.n_frames, 141) and pose.dtype == np.float32
    idx = SKEL.indices(UPPER_BODY_JOINTS)
    np.testing.assert_allclose(pose.reshape(-1, 47, 3), motion.euler_degrees()[:, idx], atol=1e-4)
    back = Motion.from_upper_body_euler(pose, motion.fps, base=motion)
    np.testing.assert_allclose(back.positions(), motion.positions(), atol=1e-3)
    alone = Motion.from_upper_body_euler(pose, motion.fps)
    others = np.setdiff1d(np.arange(J), idx)
    np.testing.assert_array_equal(alone.rotations[:, others], np.tile([1.0, 0, 0, 0], (motion.n_frames, len(others), 1)))
    np.testing.assert_array_equal(alone.root_positions, np.tile(SKEL.offsets[0], (motion.n_frames, 1)))
    np.testing.assert_allclose(alone.upper_body_euler(), pose, atol=1e-3)


def test_upper_body_rot6d_round_trip(motion):
    pose = motion.upper_body_rot6d()
    assert pose.shape == (motion.n_frames, 282) and pose.dtype == np.float32
    spine = quat_to_matrix(motion.rotations[:, SKEL.index(BODY_JOINTS[0])])
    np.testing.assert_allclose(pose[:, :6], np.concatenate([spine[:, :, 0], spine[:, :, 1]], -1), atol=1e-6)
    rhand = quat_to_matrix(motion.rotations[:, SKEL.index(HAND_JOINTS[0])])
    np.testing.assert_allclose(pose[:, 54:57], rhand[:, :, 0], atol=1e-6)
    back = Motion.from_upper_body_rot6d(pose, motion.fps, base=motion)
    np.testing.assert_allclose(back.positions(), motion.positions(), atol=1e-3)
    np.testing.assert_allclose(back.upper_body_rot6d(), pose, atol=1e-6)
    with pytest.raises(ValueError, match="282"):
        Motion.from_upper_body_rot6d(pose[:, :141], motion.fps)


def test_base_is_repeated_or_cut_to_length(motion):
    pose = motion.upper_body_rot6d()[:50]
    short = motion.slice(0, 20)
    m = Motion.from_upper_body_rot6d(pose, motion.fps, base=short)
    assert m.n_frames == 50
    np.testing.assert_array_equal(m.root_positions, short.root_positions[np.arange(50) % 20])
    m = Motion.from_upper_body_rot6d(pose, motion.fps, base=motion)
    np.testing.assert_array_equal(m.root_positions, motion.root_positions[:50])


def drop_joints(skel: Skeleton, drop: set[str]) -> Skeleton:
    keep = [j for j, n in enumerate(skel.names) if n not in drop]
    new_index = {old: new for new, old in enumerate(keep)}
    return Skeleton(
        names=tuple(skel.names[j] for j in keep),
        parents=tuple(-1 if skel.parents[j] < 0 else new_index[skel.parents[j]] for j in keep),
        offsets=skel.offsets[keep],
        rotation_orders=tuple(skel.rotation_orders[j] for j in keep),
    )


def reordered_skeleton() -> Skeleton:
    """BEAT's joints with the legs listed right after the hips and mixed channel orders, as a BVH might."""
    legs = [j for j, n in enumerate(SKEL.names) if "Leg" in n or "Foot" in n or "Toe" in n]
    order = [0] + legs + [j for j in range(1, J) if j not in legs]
    new_index = {old: new for new, old in enumerate(order)}
    orders = ("ZXY", "XYZ", "YXZ", "ZYX")
    return Skeleton(
        names=tuple(SKEL.names[j] for j in order),
        parents=tuple(-1 if SKEL.parents[j] < 0 else new_index[SKEL.parents[j]] for j in order),
        offsets=SKEL.offsets[order],
        rotation_orders=tuple(orders[i % 4] for i in range(J)),
    )


def test_upper_body_looks_joints_up_by_name(motion):
    skel = reordered_skeleton()
    perm = [SKEL.index(n) for n in skel.names]
    other = Motion(skel, motion.fps, motion.root_positions, motion.rotations[:, perm])
    np.testing.assert_allclose(other.positions(), motion.positions()[:, perm], atol=1e-9)
    np.testing.assert_array_equal(other.upper_body_rot6d(), motion.upper_body_rot6d())
    pose = other.upper_body_euler()  # in the reordered skeleton's own channel orders
    back = Motion.from_upper_body_euler(pose, motion.fps, skeleton=skel)
    assert back.skeleton is skel
    ub = skel.indices(UPPER_BODY_JOINTS)
    np.testing.assert_allclose(quat_to_matrix(back.rotations[:, ub]), quat_to_matrix(other.rotations[:, ub]), atol=1e-5)


def test_missing_upper_body_joints_are_named(motion):
    skel = drop_joints(SKEL, {"LHandT3", "LHandT4"})
    m = Motion.rest(skel, 3, 30)
    with pytest.raises(KeyError, match="LHandT3"):
        m.upper_body_euler()
    with pytest.raises(KeyError, match="LHandT3"):
        m.upper_body_rot6d()
    with pytest.raises(KeyError, match="LHandT3"):
        Motion.from_upper_body_euler(np.zeros((3, 141)), 30, skeleton=skel)


# ----------------------------------------------------------------------------- NormStats


@settings(max_examples=25, deadline=None)
@given(lengths=st.lists(st.integers(0, 30), min_size=1, max_size=6).filter(lambda ls: sum(ls) > 0),
       seed=st.integers(0, 1000))
def test_norm_stats_streaming_equals_concatenation(lengths, seed):
    rng = np.random.default_rng(seed)
    arrays = [(rng.normal(size=(n, 5)) * [1, 10, 100, 0, 1e-3] + [0, 5, -1e4, 7, 1]).astype(np.float32)
              for n in lengths]
    stats = NormStats.from_arrays(iter(arrays))
    whole = np.concatenate(arrays).astype(np.float64)
    np.testing.assert_allclose(stats.mean, whole.mean(0), rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(stats.std, np.maximum(whole.std(0), 1e-4), rtol=1e-7, atol=1e-9)
    assert stats.std[3] == 1e-4  # constant dimension floored at eps


def test_norm_stats_normalize_both_ways():
    x = np.random.default_rng(0).normal(size=(100, 4)) * 3 + 2
    stats = NormStats.from_arrays([x[:30], x[30:]])
    z = stats.normalize(x)
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(z.std(0), 1, atol=1e-12)
    np.testing.assert_allclose(stats.denormalize(z), x, atol=1e-12)
    zt = stats.normalize(torch.tensor(x, dtype=torch.float32))
    assert zt.dtype == torch.float32
    np.testing.assert_allclose(zt.numpy(), z, atol=1e-5)
    assert stats.normalize(x.astype(np.float32)).dtype == np.float32
    with pytest.raises(ValueError, match="dimensions"):
        NormStats.from_arrays([x, x[:, :3]])
    with pytest.raises(ValueError, match="no rows"):
        NormStats.from_arrays([])


def test_norm_stats_save_load(tmp_path):
    stats = NormStats(np.array([1.0, -2.0, 3.0]), np.array([0.5, 1.0, 2.0]))
    for name in ("stats.npz", "stats_without_suffix"):
        stats.save(tmp_path / name)
        loaded = NormStats.load(tmp_path / name)
        np.testing.assert_array_equal(loaded.mean, stats.mean)
        np.testing.assert_array_equal(loaded.std, stats.std)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stats.npz", "stats_without_suffix"]


def test_norm_stats_bad_files(tmp_path):
    with pytest.raises(InputFileError, match="not found"):
        NormStats.load(tmp_path / "missing.npz")
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 this is not a zip archive")
    with pytest.raises(InputFileError, match="corrupt.npz"):
        NormStats.load(corrupt)
    truncated = tmp_path / "truncated.npz"
    NormStats(np.zeros(50), np.ones(50)).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:-40])
    with pytest.raises(InputFileError):
        NormStats.load(truncated)
    shapes = tmp_path / "shapes.npz"
    np.savez(shapes, mean=np.zeros(3), std=np.ones(4))
    with pytest.raises(InputFileError, match="shape"):
        NormStats.load(shapes)
    two_d = tmp_path / "two_d.npz"
    np.savez(two_d, mean=np.zeros((2, 3)), std=np.ones((2, 3)))
    with pytest.raises(InputFileError, match="shape"):
        NormStats.load(two_d)
    missing_key = tmp_path / "missing_key.npz"
    np.savez(missing_key, mean=np.zeros(3))
    with pytest.raises(InputFileError, match="std"):
        NormStats.load(missing_key)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, mean=np.array([{"a": 1}], dtype=object), std=np.ones(1))
    with pytest.raises(InputFileError):
        NormStats.load(pickled)
    zero_std = tmp_path / "zero_std.npz"
    np.savez(zero_std, mean=np.zeros(3), std=np.zeros(3))
    with pytest.raises(InputFileError, match="positive"):
        NormStats.load(zero_std)
    assert zipfile.is_zipfile(shapes)
