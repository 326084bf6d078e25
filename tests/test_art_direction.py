"""Intensity scales gestures along the geodesic around a neutral pose; cross-fades join without a seam."""

from __future__ import annotations

import numpy as np
import pytest

from semges_core.motion.art_direction import (
    Intensity,
    chordal_mean,
    crossfade,
    crossfade_weights,
    joint_group,
    scale_intensity,
    scale_rotations,
)
from semges_core.motion.clip import Motion
from semges_core.motion.key_reduction import geodesic_deg
from semges_core.motion.rotations import axis_angle_to_quat, quat_multiply, quat_normalize
from semges_core.motion.skeleton import BEAT_SKELETON


def _motion(T=40, seed=0) -> Motion:
    rng = np.random.default_rng(seed)
    m = Motion.rest(BEAT_SKELETON, T, 30.0)
    base = quat_normalize(np.array([1.0, 0, 0, 0]) + rng.normal(scale=0.3, size=(len(BEAT_SKELETON), 4)))
    wobble = rng.normal(scale=0.15, size=(T, len(BEAT_SKELETON), 4)).cumsum(0) * 0.2
    m.rotations = quat_normalize(base + wobble)
    m.root_positions = m.root_positions + rng.normal(size=(T, 3))
    return m


def test_groups_follow_beat_names():
    assert [joint_group(n) for n in ("RShoulder", "LArm", "RArm1")] == ["arms"] * 3
    assert [joint_group(n) for n in ("LHand", "RHandM2", "LHandT3")] == ["hands"] * 3
    assert [joint_group(n) for n in ("Spine", "Spine3", "Neck1", "Head")] == ["torso"] * 4
    assert [joint_group(n) for n in ("Hips", "RUpLeg", "HeadEnd")] == [None] * 3


def test_full_intensity_is_a_bit_exact_copy():
    m = _motion()
    out = scale_intensity(m, Intensity())
    np.testing.assert_array_equal(out.rotations, m.rotations)
    np.testing.assert_array_equal(out.root_positions, m.root_positions)
    assert out.rotations is not m.rotations


def test_zero_is_the_neutral_pose_and_two_doubles_the_angle():
    m = _motion()
    neutral = chordal_mean(m.rotations)
    zero = scale_intensity(m, Intensity(0.0, 0.0, 0.0))
    for j, name in enumerate(BEAT_SKELETON.names):
        if joint_group(name) is None:
            np.testing.assert_array_equal(zero.rotations[:, j], m.rotations[:, j])
        else:
            assert geodesic_deg(zero.rotations[:, j], neutral[j]).max() < 1e-6
    double = scale_intensity(m, Intensity(2.0, 2.0, 2.0))
    half = scale_intensity(m, Intensity(0.5, 0.5, 0.5))
    j = BEAT_SKELETON.index("RArm")
    d1 = geodesic_deg(m.rotations[:, j], neutral[j])
    np.testing.assert_allclose(geodesic_deg(half.rotations[:, j], neutral[j]), d1 / 2, atol=1e-6)
    small = d1 < 80  # doubled angles past 180 wrap round
    np.testing.assert_allclose(geodesic_deg(double.rotations[small, j], neutral[j]), 2 * d1[small], atol=1e-6)


def test_groups_scale_separately_and_bad_values_fail():
    m = _motion()
    out = scale_intensity(m, Intensity(arms=1.0, hands=0.0, torso=1.0))
    np.testing.assert_array_equal(out.rotations[:, BEAT_SKELETON.index("RArm")], m.rotations[:, BEAT_SKELETON.index("RArm")])
    assert not np.allclose(out.rotations[:, BEAT_SKELETON.index("RHand")], m.rotations[:, BEAT_SKELETON.index("RHand")])
    with pytest.raises(ValueError, match="0-200%"):
        Intensity(arms=2.5)
    with pytest.raises(ValueError, match="neutral"):
        scale_intensity(m, Intensity(0.5), neutral=np.zeros((3, 4)))


def test_scaling_around_a_given_neutral():
    q = quat_normalize(np.array([[1.0, 0.2, 0, 0], [1.0, -0.3, 0.1, 0]]))
    n = np.array([1.0, 0, 0, 0])
    out = scale_rotations(q, n, 0.5)
    np.testing.assert_allclose(geodesic_deg(out, n), geodesic_deg(q, n) / 2, atol=1e-9)


def test_crossfade_is_old_at_the_borders_and_new_inside():
    w = crossfade_weights(21, 6)
    assert w[0] == 0 and w[-1] == 0 and np.all(w[6:15] == 1) and np.all(np.diff(w[:7]) > 0)
    np.testing.assert_array_equal(crossfade_weights(5, 0), np.ones(5))
    rng = np.random.default_rng(2)
    # Two smooth motions (3 joints), each a random start turning steadily about a random axis.
    def smooth():
        start = quat_normalize(rng.normal(size=(3, 4)))
        steps = axis_angle_to_quat(np.linspace(0, 1, 21)[:, None, None] * rng.normal(0, 0.5, (1, 3, 3)))
        return quat_multiply(steps, np.broadcast_to(start, (21, 3, 4)))
    old, new = smooth(), smooth()
    out = crossfade(old, new, w)
    np.testing.assert_array_equal(out[0], old[0])
    np.testing.assert_array_equal(out[-1], old[-1])
    assert geodesic_deg(out[10], new[10]).max() < 1e-9
    mid = geodesic_deg(out[3], old[3])
    assert np.all(mid > 0) and np.all(mid < geodesic_deg(old[3], new[3]))


def test_crossfade_does_not_flip_where_old_and_new_are_opposite():
    """An arm raised in the old take and lowered in the new one: the gap between them passes
    through 180 degrees inside the fade. A per-frame slerp flips to the other way round there
    (a 100+ degree pop in one frame); the crossfade keeps going the same way."""
    n = 41
    t = np.linspace(0.0, 1.0, n)
    old = axis_angle_to_quat(np.zeros((n, 3)))
    # new: a rotation about Z from 170 to 210 degrees over the stretch, past 180 at frame 10,
    # where the weight is 0.5.
    new = axis_angle_to_quat(np.stack([np.zeros(n), np.zeros(n), np.radians(170.0 + 40.0 * t)], -1))
    w = crossfade_weights(n, 20)
    out = crossfade(old, new, w)
    step = geodesic_deg(out[1:], out[:-1])
    assert step.max() < 20.0, step.max()  # smoothstep over 20 frames: at most 1.5 * 210 / 20 per frame
    np.testing.assert_allclose(geodesic_deg(out[20], new[20]), 0.0, atol=1e-6)
    np.testing.assert_array_equal(out[[0, -1]], old[[0, -1]])
    # The per-frame slerp this replaces: its largest step is the flip.
    from semges_core.motion.rotations import quat_slerp
    flip = quat_slerp(old, new, np.broadcast_to(w, old.shape[:-1]))
    assert geodesic_deg(flip[1:], flip[:-1]).max() > 90.0
