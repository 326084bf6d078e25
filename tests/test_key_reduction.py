"""Key reduction keeps what plays within its tolerance in degrees, for every rotation mode, and drops keys."""

from __future__ import annotations

import numpy as np
import pytest

from semges_core.motion.key_reduction import geodesic_deg, max_error_deg, reduce_keys
from semges_core.motion.rotations import euler_to_quat, quat_continuous, quat_normalize, quat_slerp


def _nlerp(ch):
    return quat_normalize(ch)


def _smooth_quats(T=400, seed=0):
    rng = np.random.default_rng(seed)
    keys = quat_normalize(rng.normal(size=(8, 4)))
    t = np.linspace(0, 7, T)
    i = np.minimum(t.astype(int), 6)
    return quat_continuous(quat_slerp(keys[i], keys[i + 1], t - i))


@pytest.mark.parametrize("tol", [0.1, 0.5, 2.0])
def test_quaternion_reduction_within_tolerance_and_fewer_keys(tol):
    q = _smooth_quats()
    kept = reduce_keys(q, _nlerp, tol)
    assert kept[0] == 0 and kept[-1] == len(q) - 1 and np.all(np.diff(kept) > 0)
    assert len(kept) < len(q) / 4
    assert max_error_deg(q, kept, _nlerp) <= tol
    if tol >= 0.5:  # a looser tolerance never needs more keys
        assert len(kept) <= len(reduce_keys(q, _nlerp, 0.1))


def test_euler_channels_measured_as_rotations():
    rng = np.random.default_rng(1)
    t = np.linspace(0, 1, 300)[:, None]
    e = np.sin(2 * np.pi * t * rng.uniform(0.5, 2, 3) + rng.uniform(0, 6, 3)) * 1.2  # radians, (T, 3)

    def to_quat(ch):
        return euler_to_quat(ch, "ZXY", degrees=False)

    kept = reduce_keys(e, to_quat, 0.5)
    assert 2 < len(kept) < 100
    assert max_error_deg(e, kept, to_quat) <= 0.5


def test_off_keeps_every_frame_and_constant_needs_two():
    q = _smooth_quats(50)
    for off in (None, 0, 0.0):
        np.testing.assert_array_equal(reduce_keys(q, _nlerp, off), np.arange(50))
    still = np.tile([0.9, 0.1, 0.3, 0.2], (60, 1))
    np.testing.assert_array_equal(reduce_keys(still, _nlerp, 0.5), [0, 59])
    assert list(reduce_keys(q[:1], _nlerp, 0.5)) == [0]


def test_geodesic_is_sign_blind_and_rejects_bad_tolerance():
    q = quat_normalize(np.array([0.3, 0.5, -0.1, 0.8]))
    assert geodesic_deg(q, -q) < 1e-5
    assert abs(geodesic_deg(np.array([1.0, 0, 0, 0]), np.array([np.cos(0.25), np.sin(0.25), 0, 0])) - 28.6479) < 1e-3
    with pytest.raises(ValueError, match="tolerance"):
        reduce_keys(_smooth_quats(20), _nlerp, -1.0)
