"""Forward kinematics on the BEAT skeleton: rest pose, a hand-computed arm pose, batching."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from semges_core.motion.kinematics import forward_kinematics
from semges_core.motion.rotations import euler_to_matrix, euler_to_matrix_per_joint, matrix_to_quat
from semges_core.motion.skeleton import BEAT_SKELETON as SKEL

J = len(SKEL)


def rest_world_positions() -> np.ndarray:
    """Cumulative offsets, summed along each joint's chain to the root."""
    out = np.zeros((J, 3))
    for j in range(J):
        k, total = j, np.zeros(3)
        while k >= 0:
            total += SKEL.offsets[k]
            k = SKEL.parents[k]
        out[j] = total
    return out


def naive_fk(local: np.ndarray, root: np.ndarray) -> np.ndarray:
    """One frame, written independently: world transform of each joint from its chain."""
    pos = np.zeros((J, 3))
    for j in range(J):
        chain = []
        k = j
        while k >= 0:
            chain.append(k)
            k = SKEL.parents[k]
        chain.reverse()  # root ... j
        R, p = local[chain[0]], root.copy()
        for k in chain[1:]:
            p = p + R @ SKEL.offsets[k]
            R = R @ local[k]
        pos[j] = p
    return pos


def identity(*batch: int) -> np.ndarray:
    return np.broadcast_to(np.eye(3), batch + (J, 3, 3)).copy()


def test_rest_pose_gives_cumulative_offsets():
    root = SKEL.offsets[0][None]  # (1, 3)
    pos = forward_kinematics(SKEL, identity(1), root)
    assert pos.shape == (1, J, 3)
    np.testing.assert_allclose(pos[0], rest_world_positions(), atol=1e-12)
    # The head is above the hips, the right hand on the -X side.
    assert pos[0, SKEL.index("Head"), 1] > pos[0, 0, 1]
    assert pos[0, SKEL.index("RHand"), 0] < -60


def test_root_offset_is_not_added_twice():
    root = np.array([[10.0, 80.0, -5.0]])
    pos = forward_kinematics(SKEL, identity(1), root)
    np.testing.assert_allclose(pos[0, 0], root[0])
    np.testing.assert_allclose(pos[0], rest_world_positions() - SKEL.offsets[0] + root[0], atol=1e-12)


def test_right_arm_raised_by_minus_90_about_z():
    euler = np.zeros((J, 3))
    arm = SKEL.index("RArm")
    euler[arm] = [-90.0, 0.0, 0.0]  # ZXY: the first angle is about Z
    local = euler_to_matrix_per_joint(euler, SKEL.rotation_orders)
    pos, glob = forward_kinematics(SKEL, local[None], SKEL.offsets[0][None], return_global=True)
    rest = rest_world_positions()

    # Rz(-90) maps -X (along the right arm) to +Y: the arm points straight up.
    shoulder = rest[arm]
    elbow = shoulder + np.array([0.0, 28.0, 0.0])
    wrist = elbow + np.array([0.0, 25.0, 0.0])
    np.testing.assert_allclose(pos[0, arm], shoulder, atol=1e-12)
    np.testing.assert_allclose(pos[0, SKEL.index("RArm1")], elbow, atol=1e-12)
    np.testing.assert_allclose(pos[0, SKEL.index("RHand")], wrist, atol=1e-12)
    rz = euler_to_matrix(np.array([0.0, 0.0, -90.0]), "XYZ")
    np.testing.assert_allclose(glob[0, SKEL.index("RHand")], rz, atol=1e-12)
    np.testing.assert_allclose(glob[0, SKEL.index("LHand")], np.eye(3), atol=1e-12)
    # The left side does not move.
    left = [j for j, n in enumerate(SKEL.names) if n.startswith("L")]
    np.testing.assert_allclose(pos[0, left], rest[left], atol=1e-12)


def random_pose(batch: tuple[int, ...], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    euler = rng.uniform(-60, 60, batch + (J, 3))
    root = rng.normal(size=batch + (3,)) * 20 + SKEL.offsets[0]
    return euler_to_matrix_per_joint(euler, SKEL.rotation_orders), root


def test_matches_naive_implementation_and_quaternions():
    local, root = random_pose((3,))
    pos = forward_kinematics(SKEL, local, root)
    for t in range(3):
        np.testing.assert_allclose(pos[t], naive_fk(local[t], root[t]), atol=1e-9)
    np.testing.assert_allclose(forward_kinematics(SKEL, matrix_to_quat(local), root), pos, atol=1e-9)


def test_batch_dims_and_broadcast_root():
    local, root = random_pose((2, 4), seed=1)
    pos, glob = forward_kinematics(SKEL, local, root, return_global=True)
    assert pos.shape == (2, 4, J, 3) and glob.shape == (2, 4, J, 3, 3)
    flat = forward_kinematics(SKEL, local.reshape(8, J, 3, 3), root.reshape(8, 3))
    np.testing.assert_allclose(pos.reshape(8, J, 3), flat, atol=1e-12)
    one_root = forward_kinematics(SKEL, local, root[0, 0])  # (3,) broadcasts over (2, 4)
    np.testing.assert_allclose(one_root[0, 0], pos[0, 0], atol=1e-12)


def test_torch_and_numpy_agree():
    local, root = random_pose((5,), seed=2)
    ref = forward_kinematics(SKEL, local, root)
    out = forward_kinematics(SKEL, torch.tensor(local), torch.tensor(root))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-12)
    q = torch.tensor(matrix_to_quat(local), dtype=torch.float32, requires_grad=True)
    out32 = forward_kinematics(SKEL, q, torch.tensor(root, dtype=torch.float32))
    assert out32.dtype == torch.float32
    np.testing.assert_allclose(out32.detach().numpy(), ref, atol=1e-3)
    out32.sum().backward()
    assert torch.isfinite(q.grad).all()


def test_bad_shapes():
    with pytest.raises(ValueError, match="local_rotations"):
        forward_kinematics(SKEL, np.zeros((2, J - 1, 3, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="root_positions"):
        forward_kinematics(SKEL, identity(2), np.zeros((2, 2)))


def test_blocks_change_nothing(monkeypatch):
    from semges_core.motion import arrays

    local, root = random_pose((7,), seed=3)
    pos, glob = forward_kinematics(SKEL, local, root, return_global=True)
    one_root = forward_kinematics(SKEL, matrix_to_quat(local), root[0])
    monkeypatch.setattr(arrays, "BLOCK", 1)  # one frame per block
    blocked = forward_kinematics(SKEL, local, root, return_global=True)
    np.testing.assert_array_equal(blocked[0], pos)
    np.testing.assert_array_equal(blocked[1], glob)
    np.testing.assert_array_equal(forward_kinematics(SKEL, matrix_to_quat(local), root[0]), one_root)
