"""Rotation conversions: round trips, known values, gimbal lock, torch/numpy parity."""

from __future__ import annotations

import itertools
import math
import multiprocessing
import os

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from semges_core.motion import arrays
from semges_core.motion import rotations as rot

ORDERS = ["".join(p) for p in itertools.permutations("XYZ")]
angle = st.floats(-360.0, 360.0, allow_nan=False, allow_infinity=False)
euler_st = st.tuples(angle, angle, angle).map(np.array)


def random_matrices(n: int, seed: int = 0) -> np.ndarray:
    return Rotation.random(n, random_state=seed).as_matrix()  # (n, 3, 3)


def assert_rotation(R: np.ndarray, atol: float = 1e-10) -> None:
    eye = np.broadcast_to(np.eye(3), R.shape)
    np.testing.assert_allclose(R @ np.swapaxes(R, -1, -2), eye, atol=atol)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=atol)


# ----------------------------------------------------------------------------- Euler


@pytest.mark.parametrize("order", ORDERS)
def test_euler_to_matrix_agrees_with_scipy(order):
    angles = np.random.default_rng(1).uniform(-360, 360, (500, 3))
    expected = Rotation.from_euler(order, angles, degrees=True).as_matrix()  # upper case = intrinsic
    np.testing.assert_allclose(rot.euler_to_matrix(angles, order), expected, atol=1e-12)
    np.testing.assert_allclose(
        rot.euler_to_matrix(np.deg2rad(angles), order.lower(), degrees=False), expected, atol=1e-12
    )


@pytest.mark.parametrize("order", ORDERS)
def test_euler_is_product_of_axis_rotations_in_order(order):
    a = np.array([30.0, -50.0, 70.0])
    single = [rot.euler_to_matrix(np.roll([a[k], 0.0, 0.0], "XYZ".index(order[k])), "XYZ") for k in range(3)]
    np.testing.assert_allclose(rot.euler_to_matrix(a, order), single[0] @ single[1] @ single[2], atol=1e-12)


def test_known_values():
    x, y, z = np.eye(3)
    for order in ORDERS:
        about_z = np.zeros(3)
        about_z[order.index("Z")] = 90.0
        np.testing.assert_allclose(rot.euler_to_matrix(about_z, order) @ x, y, atol=1e-12)
    about_x = np.array([90.0, 0.0, 0.0])
    np.testing.assert_allclose(rot.euler_to_matrix(about_x, "XYZ") @ y, z, atol=1e-12)
    np.testing.assert_allclose(rot.axis_angle_to_matrix(np.array([0, 0, math.pi / 2])) @ x, y, atol=1e-12)
    s = math.sqrt(0.5)
    np.testing.assert_allclose(rot.euler_to_quat(np.array([90.0, 0, 0]), "ZXY"), [s, 0, 0, s], atol=1e-12)
    np.testing.assert_allclose(rot.matrix_to_euler(np.eye(3), "ZXY"), [0, 0, 0], atol=1e-12)


@pytest.mark.parametrize("order", ORDERS)
@settings(max_examples=40, deadline=None)
@given(a=euler_st)
def test_euler_matrix_round_trip(order, a):
    R = rot.euler_to_matrix(a, order)
    assert_rotation(R)
    back = rot.matrix_to_euler(R, order)
    assert np.all(back > -180.0) and np.all(back <= 180.0)
    assert -90.0 <= back[1] <= 90.0
    np.testing.assert_allclose(rot.euler_to_matrix(back, order), R, atol=1e-10)


@pytest.mark.parametrize("order", ORDERS)
def test_matrix_euler_round_trip_keeps_principal_angles(order):
    rng = np.random.default_rng(2)
    a = np.stack([rng.uniform(-179, 179, 300), rng.uniform(-89, 89, 300), rng.uniform(-179, 179, 300)], -1)
    np.testing.assert_allclose(rot.matrix_to_euler(rot.euler_to_matrix(a, order), order), a, atol=1e-9)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_gimbal_lock(order, dtype):
    rng = np.random.default_rng(3)
    a = rng.uniform(-180, 180, (200, 3))
    a[:100, 1] = 90.0
    a[100:, 1] = -90.0
    a[:10, 1] = 90.0 - 1e-5  # almost locked
    R = rot.euler_to_matrix(torch.tensor(a, dtype=dtype), order)
    back = rot.matrix_to_euler(R, order)
    assert back.dtype == dtype and torch.isfinite(back).all()
    atol = 1e-10 if dtype == torch.float64 else 2e-5
    torch.testing.assert_close(rot.euler_to_matrix(back, order), R, atol=atol, rtol=0)
    assert (back > -180).all() and (back <= 180).all()


def test_gimbal_lock_gradient_is_finite():
    R = rot.euler_to_matrix(torch.tensor([[10.0, 90.0, 20.0]], dtype=torch.float64), "ZXY").requires_grad_(True)
    rot.matrix_to_euler(R, "ZXY").sum().backward()
    assert torch.isfinite(R.grad).all()


def test_angle_minus_180_maps_to_180():
    R = rot.euler_to_matrix(np.array([-180.0, 0.0, -180.0]), "XYZ")
    back = rot.matrix_to_euler(R, "XYZ")
    assert np.all(back > -180.0)
    np.testing.assert_allclose(rot.euler_to_matrix(back, "XYZ"), R, atol=1e-12)


def test_bad_order_and_shape():
    with pytest.raises(ValueError, match="permutation"):
        rot.euler_to_matrix(np.zeros(3), "XXY")
    with pytest.raises(ValueError, match="shape"):
        rot.euler_to_matrix(np.zeros(4), "XYZ")
    with pytest.raises(ValueError, match="shape"):
        rot.matrix_to_quat(np.zeros((3, 4)))


def test_per_joint_orders():
    orders = ["ZXY", "XYZ", "yzx", "ZXY", "ZYX"]
    a = np.random.default_rng(4).uniform(-80, 80, (7, 2, 5, 3))
    R = rot.euler_to_matrix_per_joint(a, orders)
    assert R.shape == (7, 2, 5, 3, 3)
    for j, order in enumerate(orders):
        np.testing.assert_allclose(R[..., j, :, :], rot.euler_to_matrix(a[..., j, :], order), atol=1e-12)
    np.testing.assert_allclose(rot.matrix_to_euler_per_joint(R, orders), a, atol=1e-9)
    t = rot.matrix_to_euler_per_joint(torch.tensor(R, dtype=torch.float32), orders)
    assert t.dtype == torch.float32 and t.shape == (7, 2, 5, 3)
    with pytest.raises(ValueError, match="shape"):
        rot.euler_to_matrix_per_joint(a, orders[:4])


# ----------------------------------------------------------------------------- other representations


def test_quaternion_round_trips():
    R = random_matrices(500)
    q = rot.matrix_to_quat(R)
    assert np.all(q[..., 0] >= 0)
    np.testing.assert_allclose(np.linalg.norm(q, axis=-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(rot.quat_to_matrix(q), R, atol=1e-12)
    # scipy stores (x, y, z, w); the sign is only fixed up to q ~ -q.
    sq = Rotation.from_matrix(R).as_quat()
    sq = np.concatenate([sq[:, 3:], sq[:, :3]], axis=1)
    sq *= np.where(sq[:, :1] < 0, -1.0, 1.0)
    np.testing.assert_allclose(q, sq, atol=1e-12)


def test_matrix_to_quat_near_180_degrees():
    # w ~ 0: the trace-based formula alone would divide by ~0.
    axes = np.random.default_rng(5).normal(size=(100, 3))
    axes /= np.linalg.norm(axes, axis=-1, keepdims=True)
    for ang in (math.pi, math.pi - 1e-9):
        R = rot.axis_angle_to_matrix(axes * ang)
        q = rot.matrix_to_quat(R)
        np.testing.assert_allclose(rot.quat_to_matrix(q), R, atol=1e-10)
        Rf = torch.tensor(R, dtype=torch.float32)
        torch.testing.assert_close(rot.quat_to_matrix(rot.matrix_to_quat(Rf)), Rf, atol=1e-5, rtol=0)


@pytest.mark.parametrize("order", ORDERS)
@settings(max_examples=25, deadline=None)
@given(a=euler_st)
def test_euler_quat_round_trip(order, a):
    q = rot.euler_to_quat(a, order)
    assert q[0] >= 0
    np.testing.assert_allclose(rot.quat_to_matrix(q), rot.euler_to_matrix(a, order), atol=1e-12)
    np.testing.assert_allclose(rot.euler_to_matrix(rot.quat_to_euler(q, order), order),
                               rot.euler_to_matrix(a, order), atol=1e-10)


@pytest.mark.parametrize("order", ORDERS)
@settings(max_examples=25, deadline=None)
@given(a=euler_st)
def test_euler_rot6d_round_trip(order, a):
    x = rot.euler_to_rot6d(a, order)
    R = rot.euler_to_matrix(a, order)
    np.testing.assert_array_equal(x, np.concatenate([R[:, 0], R[:, 1]]))
    np.testing.assert_allclose(rot.rot6d_to_matrix(x), R, atol=1e-12)
    np.testing.assert_allclose(rot.euler_to_matrix(rot.rot6d_to_euler(x, order), order), R, atol=1e-10)


def test_rot6d_of_any_vector_is_a_rotation():
    x = np.random.default_rng(6).normal(size=(200, 6)) * 3
    R = rot.rot6d_to_matrix(x)
    assert_rotation(R)
    # Column 0 keeps the direction of the first three values.
    np.testing.assert_allclose(R[:, :, 0], x[:, :3] / np.linalg.norm(x[:, :3], axis=-1, keepdims=True))


def test_axis_angle_round_trips():
    R = random_matrices(500, seed=7)
    v = rot.matrix_to_axis_angle(R)
    assert np.all(np.linalg.norm(v, axis=-1) <= math.pi + 1e-12)
    np.testing.assert_allclose(rot.axis_angle_to_matrix(v), R, atol=1e-12)
    np.testing.assert_allclose(v, Rotation.from_matrix(R).as_rotvec(), atol=1e-9)
    q = rot.axis_angle_to_quat(v)
    np.testing.assert_allclose(rot.quat_to_axis_angle(q), v, atol=1e-12)
    tiny = np.array([[1e-12, -2e-12, 3e-12], [0, 0, 0], [1e-7, 0, 0]])
    np.testing.assert_allclose(rot.quat_to_axis_angle(rot.axis_angle_to_quat(tiny)), tiny, atol=1e-15)


def test_quaternion_algebra():
    R = random_matrices(2 * 100, seed=8).reshape(2, 100, 3, 3)
    a, b = rot.matrix_to_quat(R[0]), rot.matrix_to_quat(R[1])
    np.testing.assert_allclose(rot.quat_to_matrix(rot.quat_multiply(a, b)), R[0] @ R[1], atol=1e-12)
    ident = rot.quat_multiply(a, rot.quat_conjugate(a))
    np.testing.assert_allclose(ident, np.tile([1.0, 0, 0, 0], (100, 1)), atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(rot.quat_normalize(a * 3.5), axis=-1), 1.0)


def test_slerp():
    q0 = rot.euler_to_quat(np.array([0.0, 0.0, 0.0]), "XYZ")
    q1 = rot.euler_to_quat(np.array([0.0, 0.0, 120.0]), "XYZ")
    t = np.linspace(0, 1, 7)
    q = rot.quat_slerp(q0, q1, t)  # q0, q1 broadcast against t
    np.testing.assert_allclose(rot.quat_to_euler(q, "XYZ")[:, 2], 120 * t, atol=1e-9)
    # The short path: -q1 is the same rotation and gives the same result.
    np.testing.assert_allclose(rot.quat_slerp(q0, -q1, t), q, atol=1e-12)
    # From 170 to -170 degrees goes through 180, not through 0.
    a = rot.euler_to_quat(np.array([0.0, 0.0, 170.0]), "XYZ")
    b = rot.euler_to_quat(np.array([0.0, 0.0, -170.0]), "XYZ")
    mid = rot.quat_to_matrix(rot.quat_slerp(a, b, 0.5))
    np.testing.assert_allclose(mid, rot.euler_to_matrix(np.array([0.0, 0.0, 180.0]), "XYZ"), atol=1e-12)
    # Nearly identical rotations do not divide by ~0.
    c = rot.euler_to_quat(np.array([0.0, 0.0, 1e-9]), "XYZ")
    assert np.all(np.isfinite(rot.quat_slerp(q0, c, t)))


# ----------------------------------------------------------------------------- torch / numpy


FUNCS = [
    (lambda x: rot.euler_to_matrix(x, "ZXY"), (4, 5, 3)),
    (lambda x: rot.euler_to_quat(x, "YZX"), (4, 5, 3)),
    (lambda x: rot.euler_to_rot6d(x, "XZY"), (4, 5, 3)),
    (lambda x: rot.matrix_to_euler(rot.euler_to_matrix(x, "ZYX"), "ZYX"), (4, 5, 3)),
    (lambda x: rot.rot6d_to_euler(x, "ZXY"), (4, 5, 6)),
    (rot.rot6d_to_matrix, (4, 5, 6)),
    (lambda x: rot.matrix_to_quat(rot.rot6d_to_matrix(x)), (4, 5, 6)),
    (lambda x: rot.matrix_to_axis_angle(rot.rot6d_to_matrix(x)), (4, 5, 6)),
    (lambda x: rot.matrix_to_rot6d(rot.rot6d_to_matrix(x)), (4, 5, 6)),
    (rot.axis_angle_to_matrix, (4, 5, 3)),
    (rot.axis_angle_to_quat, (4, 5, 3)),
    (rot.quat_to_matrix, (4, 5, 4)),
    (rot.quat_to_axis_angle, (4, 5, 4)),
    (lambda x: rot.quat_to_euler(x, "XYZ"), (4, 5, 4)),
    (rot.quat_normalize, (4, 5, 4)),
    (rot.quat_conjugate, (4, 5, 4)),
    (lambda x: rot.quat_multiply(x, x[..., [3, 2, 1, 0]]), (4, 5, 4)),
    (lambda x: rot.quat_slerp(x[0], x[1], 0.3), (2, 5, 4)),
    (rot.quat_continuous, (4, 5, 4)),
]


@pytest.mark.parametrize("fn, shape", FUNCS)
def test_torch_and_numpy_agree(fn, shape):
    x = np.random.default_rng(9).normal(size=shape) * 40.0
    out_np = fn(x)
    assert isinstance(out_np, np.ndarray) and out_np.dtype == np.float64
    out_64 = fn(torch.tensor(x))
    assert isinstance(out_64, torch.Tensor) and out_64.dtype == torch.float64
    np.testing.assert_allclose(out_64.numpy(), out_np, atol=1e-9)
    out_32 = fn(torch.tensor(x, dtype=torch.float32))
    assert out_32.dtype == torch.float32 and out_32.shape == out_np.shape
    out_f32_np = fn(x.astype(np.float32))  # numpy input is computed in float64
    assert out_f32_np.dtype == np.float64


def test_gradients_are_finite_at_the_identity():
    for fn, x in [
        (rot.matrix_to_quat, torch.eye(3)),
        (rot.matrix_to_axis_angle, torch.eye(3)),
        (rot.axis_angle_to_quat, torch.zeros(3)),
        (rot.rot6d_to_matrix, torch.tensor([1.0, 0, 0, 0, 1, 0])),
    ]:
        x = x.clone().requires_grad_(True)
        fn(x).sum().backward()
        assert torch.isfinite(x.grad).all(), fn.__name__


def test_quat_continuous():
    q = rot.matrix_to_quat(random_matrices(1, seed=10))[0]
    signs = np.where(np.arange(20) % 3 == 0, -1.0, 1.0)  # the same rotation, signs jumping
    flipped = q * signs[:, None]
    out = rot.quat_continuous(flipped)
    np.testing.assert_array_equal(out, np.tile(flipped[0], (20, 1)))
    # Per joint along time (T, J, 4); the first frame keeps its sign, the input is left alone.
    both = np.stack([flipped, -flipped], axis=1)  # (20, 2, 4)
    out = rot.quat_continuous(both)
    np.testing.assert_array_equal(out[:, 0], np.tile(flipped[0], (20, 1)))
    np.testing.assert_array_equal(out[:, 1], np.tile(-flipped[0], (20, 1)))
    assert both[1, 0, 0] == flipped[1, 0]
    t = rot.quat_continuous(torch.tensor(both, dtype=torch.float32))
    assert t.dtype == torch.float32
    np.testing.assert_allclose(t.numpy(), out, atol=1e-7)
    np.testing.assert_array_equal(rot.quat_continuous(q[None]), q[None])


# ----------------------------------------------------------------------------- numpy in blocks


def test_blocks_change_nothing(monkeypatch):
    """Long numpy batches run in blocks: the results are the same as all at once, shapes broadcast alike."""
    rng = np.random.default_rng(11)
    R = random_matrices(6 * 5, seed=12).reshape(6, 5, 3, 3)
    q0, q1 = rot.matrix_to_quat(R), rot.matrix_to_quat(R[::-1])
    t = rng.uniform(size=(6, 1))
    euler = rng.uniform(-180, 180, (6, 5, 3))
    orders = ["ZXY", "XYZ", "ZXY", "YZX", "ZXY"]
    calls = [
        lambda: rot.matrix_to_quat(R),
        lambda: rot.quat_slerp(q0, q1, t),  # t (6, 1) against (6, 5, 4)
        lambda: rot.quat_slerp(q0[0, 0], q1, 0.25),  # a single q0 broadcast over the batch
        lambda: rot.quat_multiply(q0[:1], q1),  # a length-1 leading axis broadcasts
        lambda: rot.matrix_to_euler_per_joint(R, orders),
        lambda: rot.euler_to_matrix_per_joint(euler, orders),
        lambda: rot.rot6d_to_matrix(rot.matrix_to_rot6d(R)),
    ]
    whole = [fn() for fn in calls]
    monkeypatch.setattr(arrays, "BLOCK", 1)  # one row per block
    for fn, expected in zip(calls, whole):
        np.testing.assert_array_equal(fn(), expected)
    with pytest.raises(ValueError, match=r"got \(6, 5, 4\)"):  # the caller's shape, not a block's
        rot.matrix_to_quat(np.zeros((6, 5, 4)))


def _quat_to_matrix_sum(q: np.ndarray) -> float:
    return float(rot.quat_to_matrix(q).sum())


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX only")
def test_blocks_work_in_a_forked_child():
    """A child forked after the block threads started (a dataset build's workers) gets threads of its own."""
    q = np.random.default_rng(13).normal(size=(100_000, 4))  # long enough to run in blocks
    expected = _quat_to_matrix_sum(q)
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.apply_async(_quat_to_matrix_sum, (q,)).get(timeout=60) == expected


def test_gradients_match_finite_differences():
    """The formulas training differentiates through (Euler, slerp, Shepperd, Gram-Schmidt, FK-style products)."""
    rng = np.random.default_rng(14)
    angles = torch.tensor(rng.uniform(-80, 80, (5, 3)), requires_grad=True)
    q0, q1 = (torch.tensor(rot.euler_to_quat(rng.uniform(-80, 80, (5, 3)), "XYZ"), requires_grad=True) for _ in "ab")
    t = torch.tensor(rng.uniform(0, 1, 5), requires_grad=True)
    x6 = torch.tensor(rng.normal(size=(5, 6)), requires_grad=True)
    for order in ("ZXY", "XZY"):
        assert torch.autograd.gradcheck(lambda a: rot.euler_to_matrix(a, order), (angles,))
        assert torch.autograd.gradcheck(lambda a: rot.matrix_to_euler(rot.euler_to_matrix(a, order), order), (angles,))
    assert torch.autograd.gradcheck(rot.quat_slerp, (q0, q1, t))
    assert torch.autograd.gradcheck(lambda x: rot.matrix_to_quat(rot.rot6d_to_matrix(x)), (x6,))
