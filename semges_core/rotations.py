"""Conversions between rotation representations, written once in torch.

Every public function takes torch tensors (any float dtype, any leading batch
dims, gradients flow) or numpy arrays; numpy input is computed in float64 and
returned as numpy, so the BVH reader, the dataset and the networks share one
implementation and cannot drift apart.

Conventions (docs/conventions.md):
- Euler angles (..., 3): angles[..., k] is about axis order[k] and
  R = R_{order[0]} @ R_{order[1]} @ R_{order[2]} acting on column vectors
  (intrinsic rotations in the listed order, as BVH channels are read).
- Quaternions are (w, x, y, z), Hamilton product, canonicalised to w >= 0.
- Axis-angle is a rotation vector: unit axis times the angle in radians.
- rot6d is concat(R[..., :, 0], R[..., :, 1]); back with Gram-Schmidt.
"""

from __future__ import annotations

import functools
import math
from typing import Callable, Sequence, TypeVar

import numpy as np
import torch

Array = TypeVar("Array", np.ndarray, torch.Tensor)

_AXIS = {"X": 0, "Y": 1, "Z": 2}


# --------------------------------------------------------------------------- dispatch


def _to_numpy(out):
    if isinstance(out, torch.Tensor):
        return out.detach().cpu().numpy()
    if isinstance(out, tuple):
        return tuple(_to_numpy(o) for o in out)
    return out


def _c(a, dtype=None):
    """Tensors pass; anything else becomes a C-ordered numpy array (torch rejects negative strides)."""
    return a if isinstance(a, torch.Tensor) else np.asarray(a, dtype=dtype, order="C")


def _array_api(n_arrays: int) -> Callable:
    """Let a torch implementation also take numpy: its first `n_arrays` arguments are arrays.

    If any of them is a tensor, the others become tensors of its dtype and device
    and tensors come back; otherwise everything runs in float64 and numpy comes back.
    """

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            arrays, rest = args[:n_arrays], args[n_arrays:]
            ref = next((a for a in arrays if isinstance(a, torch.Tensor)), None)
            if ref is not None:
                dtype = ref.dtype if ref.is_floating_point() else torch.get_default_dtype()
                tensors = [torch.as_tensor(_c(a), dtype=dtype, device=ref.device) for a in arrays]
                return fn(*tensors, *rest, **kwargs)
            tensors = [torch.as_tensor(_c(a, np.float64)) for a in arrays]
            return _to_numpy(fn(*tensors, *rest, **kwargs))

        return wrapper

    return decorate


def _check_order(order: str) -> str:
    up = order.upper() if isinstance(order, str) else ""
    if sorted(up) != ["X", "Y", "Z"]:
        raise ValueError(f"rotation order must be a permutation of 'XYZ', got {order!r}")
    return up


def _check_last(x: torch.Tensor, shape: tuple[int, ...], what: str) -> None:
    if tuple(x.shape[x.ndim - len(shape):]) != shape or x.ndim < len(shape):
        raise ValueError(f"{what} must have shape (..., {', '.join(map(str, shape))}), got {tuple(x.shape)}")


# --------------------------------------------------------------------------- Euler


def _axis_matrix(axis: str, angle: torch.Tensor) -> torch.Tensor:
    """Rotation by `angle` (radians, shape (...)) about one coordinate axis -> (..., 3, 3)."""
    c, s = torch.cos(angle), torch.sin(angle)
    one, zero = torch.ones_like(angle), torch.zeros_like(angle)
    if axis == "X":
        rows = (one, zero, zero, zero, c, -s, zero, s, c)
    elif axis == "Y":
        rows = (c, zero, s, zero, one, zero, -s, zero, c)
    else:
        rows = (c, -s, zero, s, c, zero, zero, zero, one)
    return torch.stack(rows, dim=-1).reshape(angle.shape + (3, 3))


@_array_api(1)
def euler_to_matrix(angles: Array, order: str, degrees: bool = True) -> Array:
    """Euler angles (..., 3) in `order` -> rotation matrices (..., 3, 3)."""
    order = _check_order(order)
    _check_last(angles, (3,), "angles")
    rad = torch.deg2rad(angles) if degrees else angles
    m = [_axis_matrix(order[k], rad[..., k]) for k in range(3)]
    return m[0] @ m[1] @ m[2]


def _safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    """sqrt(max(x, 0)) whose gradient at 0 is 0 rather than inf (which becomes NaN downstream)."""
    positive = x > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, x, torch.ones_like(x))), torch.zeros_like(x))


def _safe_atan2(y: torch.Tensor, x: torch.Tensor, unused: torch.Tensor) -> torch.Tensor:
    """atan2 evaluated at (0, 1) where `unused`, so a discarded atan2(0, 0) leaves no NaN gradient."""
    return torch.atan2(torch.where(unused, torch.zeros_like(y), y), torch.where(unused, torch.ones_like(x), x))


def _wrap_pi(a: torch.Tensor) -> torch.Tensor:
    """Map atan2's -pi onto +pi so angles lie in (-pi, pi]."""
    return torch.where(a <= -math.pi, a + 2 * math.pi, a)


@_array_api(1)
def matrix_to_euler(R: Array, order: str, degrees: bool = True) -> Array:
    """Rotation matrices (..., 3, 3) -> Euler angles (..., 3) in `order`, each in (-180, 180].

    The middle angle lies in [-90, 90]. At gimbal lock (middle angle +-90) only the
    sum/difference of the outer angles is defined; the last angle is then set to 0.
    """
    order = _check_order(order)
    _check_last(R, (3, 3), "R")
    i, j, k = (_AXIS[a] for a in order)
    # +1 when (i, j, k) is a cyclic permutation of (0, 1, 2): e_i x e_j = sign * e_k.
    sign = 1.0 if (j - i) % 3 == 1 else -1.0
    cos_b = _safe_sqrt(R[..., i, i] ** 2 + R[..., i, j] ** 2)
    b = torch.atan2(sign * R[..., i, k], cos_b)
    # Near gimbal lock the outer angles' formulas divide noise by cos_b; with
    # c = 0, R = R_i(a) R_j(b) and column j of R gives a directly.
    eps = math.sqrt(torch.finfo(R.dtype).eps)
    locked = cos_b < eps
    a = torch.where(
        locked,
        _safe_atan2(sign * R[..., k, j], R[..., j, j], ~locked),
        _safe_atan2(-sign * R[..., j, k], R[..., k, k], locked),
    )
    c = torch.where(locked, torch.zeros_like(cos_b), _safe_atan2(-sign * R[..., i, j], R[..., i, i], locked))
    out = torch.stack([_wrap_pi(a), b, _wrap_pi(c)], dim=-1)
    return torch.rad2deg(out) if degrees else out


@_array_api(1)
def euler_to_matrix_per_joint(angles: Array, orders: Sequence[str], degrees: bool = True) -> Array:
    """Euler angles (..., J, 3), joint j in `orders[j]` -> matrices (..., J, 3, 3).

    Joints sharing an order are converted together, so the cost does not grow with
    the number of frames in Python.
    """
    _check_last(angles, (len(orders), 3), "angles")
    out = angles.new_empty(angles.shape[:-1] + (3, 3))
    for order, idx in _group_by_order(orders, angles.device).items():
        out[..., idx, :, :] = euler_to_matrix(angles[..., idx, :], order, degrees)
    return out


@_array_api(1)
def matrix_to_euler_per_joint(R: Array, orders: Sequence[str], degrees: bool = True) -> Array:
    """Matrices (..., J, 3, 3) -> Euler angles (..., J, 3), joint j in `orders[j]`."""
    _check_last(R, (len(orders), 3, 3), "R")
    out = R.new_empty(R.shape[:-2] + (3,))  # (..., J, 3)
    for order, idx in _group_by_order(orders, R.device).items():
        out[..., idx, :] = matrix_to_euler(R[..., idx, :, :], order, degrees)
    return out


def _group_by_order(orders: Sequence[str], device: torch.device) -> dict[str, torch.Tensor]:
    groups: dict[str, list[int]] = {}
    for j, order in enumerate(orders):
        groups.setdefault(_check_order(order), []).append(j)
    return {o: torch.tensor(idx, dtype=torch.long, device=device) for o, idx in groups.items()}


# --------------------------------------------------------------------------- quaternions


def _canonical(q: torch.Tensor) -> torch.Tensor:
    return torch.where(q[..., :1] < 0, -q, q)


@_array_api(1)
def quat_normalize(q: Array) -> Array:
    """Unit quaternions (..., 4), sign kept as given."""
    _check_last(q, (4,), "q")
    return q / torch.linalg.vector_norm(q, dim=-1, keepdim=True).clamp_min(torch.finfo(q.dtype).tiny)


@_array_api(1)
def quat_conjugate(q: Array) -> Array:
    """(w, x, y, z) -> (w, -x, -y, -z): the inverse of a unit quaternion."""
    _check_last(q, (4,), "q")
    return torch.cat([q[..., :1], -q[..., 1:]], dim=-1)


@_array_api(2)
def quat_multiply(a: Array, b: Array) -> Array:
    """Hamilton product a * b (rotate by b, then by a), shapes broadcast -> (..., 4)."""
    _check_last(a, (4,), "a")
    _check_last(b, (4,), "b")
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        dim=-1,
    )


@_array_api(1)
def quat_to_matrix(q: Array) -> Array:
    """Quaternions (..., 4), not necessarily unit -> rotation matrices (..., 3, 3)."""
    _check_last(q, (4,), "q")
    w, x, y, z = q.unbind(-1)
    two_s = 2.0 / (q * q).sum(-1).clamp_min(torch.finfo(q.dtype).tiny)
    m = torch.stack(
        [
            1 - two_s * (y * y + z * z), two_s * (x * y - z * w), two_s * (x * z + y * w),
            two_s * (x * y + z * w), 1 - two_s * (x * x + z * z), two_s * (y * z - x * w),
            two_s * (x * z - y * w), two_s * (y * z + x * w), 1 - two_s * (x * x + y * y),
        ],
        dim=-1,
    )
    return m.reshape(q.shape[:-1] + (3, 3))


@_array_api(1)
def matrix_to_quat(R: Array) -> Array:
    """Rotation matrices (..., 3, 3) -> unit quaternions (..., 4) with w >= 0.

    Shepperd's method: of the four ways to read q off R, use the one whose pivot
    (|w|, |x|, |y| or |z|) is largest, so no near-zero divisor is ever used.
    """
    _check_last(R, (3, 3), "R")
    m = R.reshape(R.shape[:-2] + (9,))
    m00, m01, m02, m10, m11, m12, m20, m21, m22 = m.unbind(-1)
    # 4 * (w^2, x^2, y^2, z^2)
    four_sq = torch.stack(
        [1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], dim=-1
    )
    pivot = _safe_sqrt(four_sq)  # (..., 4): 2 * (|w|, |x|, |y|, |z|)
    # Row r is 4 * q * q[r]; dividing by 2 * pivot[r] = 4 * |q[r]| gives +-q.
    rows = torch.stack(
        [
            torch.stack([four_sq[..., 0], m21 - m12, m02 - m20, m10 - m01], dim=-1),
            torch.stack([m21 - m12, four_sq[..., 1], m10 + m01, m02 + m20], dim=-1),
            torch.stack([m02 - m20, m10 + m01, four_sq[..., 2], m12 + m21], dim=-1),
            torch.stack([m10 - m01, m20 + m02, m21 + m12, four_sq[..., 3]], dim=-1),
        ],
        dim=-2,
    )  # (..., 4, 4)
    candidates = rows / (2.0 * pivot[..., :, None].clamp_min(0.1))
    best = pivot.argmax(dim=-1)  # (...)
    q = torch.gather(candidates, -2, best[..., None, None].expand(best.shape + (1, 4))).squeeze(-2)
    return _canonical(quat_normalize(q))


@_array_api(3)
def quat_slerp(q0: Array, q1: Array, t: Array) -> Array:
    """Spherical interpolation along the shorter arc -> (..., 4), w >= 0.

    `t` broadcasts against the quaternions' batch shape (q0.shape[:-1]); t = 0
    gives q0 and t = 1 gives q1 (up to sign).
    """
    _check_last(q0, (4,), "q0")
    _check_last(q1, (4,), "q1")
    q0, q1 = quat_normalize(q0), quat_normalize(q1)
    t = t[..., None]
    dot = (q0 * q1).sum(-1, keepdim=True)
    q1 = torch.where(dot < 0, -q1, q1)  # the shorter path
    dot = dot.abs().clamp(max=1.0)
    theta = torch.acos(dot)
    sin_theta = torch.sin(theta)
    # Nearly equal rotations: sin(theta) -> 0, where normalised lerp is exact enough.
    close = sin_theta < 1e-6 if q0.dtype == torch.float64 else sin_theta < 1e-3
    safe = torch.where(close, torch.ones_like(sin_theta), sin_theta)
    w0 = torch.where(close, 1 - t, torch.sin((1 - t) * theta) / safe)
    w1 = torch.where(close, t, torch.sin(t * theta) / safe)
    return _canonical(quat_normalize(w0 * q0 + w1 * q1))


@_array_api(1)
def euler_to_quat(angles: Array, order: str, degrees: bool = True) -> Array:
    """Euler angles (..., 3) in `order` -> unit quaternions (..., 4), w >= 0."""
    order = _check_order(order)
    _check_last(angles, (3,), "angles")
    half = 0.5 * (torch.deg2rad(angles) if degrees else angles)
    q = None
    for k in range(3):
        c, s = torch.cos(half[..., k]), torch.sin(half[..., k])
        parts = [c, torch.zeros_like(c), torch.zeros_like(c), torch.zeros_like(c)]
        parts[1 + _AXIS[order[k]]] = s
        qk = torch.stack(parts, dim=-1)
        q = qk if q is None else quat_multiply(q, qk)
    return _canonical(q)


@_array_api(1)
def quat_to_euler(q: Array, order: str, degrees: bool = True) -> Array:
    """Quaternions (..., 4) -> Euler angles (..., 3) in `order` (see matrix_to_euler)."""
    return matrix_to_euler(quat_to_matrix(q), order, degrees)


# --------------------------------------------------------------------------- axis-angle


@_array_api(1)
def axis_angle_to_quat(v: Array) -> Array:
    """Rotation vectors (..., 3), angle = norm in radians -> unit quaternions (..., 4), w >= 0."""
    _check_last(v, (3,), "axis-angle")
    angle = torch.linalg.vector_norm(v, dim=-1, keepdim=True)
    # sin(angle / 2) / angle without a 0/0 at the identity: torch.sinc(x) = sin(pi x) / (pi x).
    scale = 0.5 * torch.sinc(angle / (2 * math.pi))
    return _canonical(torch.cat([torch.cos(0.5 * angle), v * scale], dim=-1))


@_array_api(1)
def quat_to_axis_angle(q: Array) -> Array:
    """Quaternions (..., 4) -> rotation vectors (..., 3) with angle in [0, pi]."""
    q = _canonical(quat_normalize(q))
    xyz = q[..., 1:]
    sin_half = torch.linalg.vector_norm(xyz, dim=-1, keepdim=True)
    half = torch.atan2(sin_half, q[..., :1])
    small = sin_half < 1e-6
    # 2 * half / sin(half) -> 2 * (1 + half^2 / 6) near the identity.
    safe = torch.where(small, torch.ones_like(sin_half), sin_half)
    scale = torch.where(small, 2.0 * (1.0 + half * half / 6.0), 2.0 * half / safe)
    return xyz * scale


@_array_api(1)
def axis_angle_to_matrix(v: Array) -> Array:
    """Rotation vectors (..., 3) -> rotation matrices (..., 3, 3)."""
    return quat_to_matrix(axis_angle_to_quat(v))


@_array_api(1)
def matrix_to_axis_angle(R: Array) -> Array:
    """Rotation matrices (..., 3, 3) -> rotation vectors (..., 3), angle in [0, pi]."""
    return quat_to_axis_angle(matrix_to_quat(R))


# --------------------------------------------------------------------------- rot6d


@_array_api(1)
def matrix_to_rot6d(R: Array) -> Array:
    """Rotation matrices (..., 3, 3) -> (..., 6): column 0 then column 1."""
    _check_last(R, (3, 3), "R")
    return torch.cat([R[..., :, 0], R[..., :, 1]], dim=-1)


@_array_api(1)
def rot6d_to_matrix(x: Array) -> Array:
    """(..., 6) -> rotation matrices (..., 3, 3) by Gram-Schmidt, so any network output is valid."""
    _check_last(x, (6,), "rot6d")
    tiny = torch.finfo(x.dtype).tiny
    a1, a2 = x[..., :3], x[..., 3:]
    b1 = a1 / torch.linalg.vector_norm(a1, dim=-1, keepdim=True).clamp_min(tiny)
    b2 = a2 - (b1 * a2).sum(-1, keepdim=True) * b1
    b2 = b2 / torch.linalg.vector_norm(b2, dim=-1, keepdim=True).clamp_min(tiny)
    b3 = torch.linalg.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)  # columns


@_array_api(1)
def euler_to_rot6d(angles: Array, order: str, degrees: bool = True) -> Array:
    """Euler angles (..., 3) in `order` -> rot6d (..., 6)."""
    return matrix_to_rot6d(euler_to_matrix(angles, order, degrees))


@_array_api(1)
def rot6d_to_euler(x: Array, order: str, degrees: bool = True) -> Array:
    """rot6d (..., 6) -> Euler angles (..., 3) in `order`."""
    return matrix_to_euler(rot6d_to_matrix(x), order, degrees)


__all__ = [
    "euler_to_matrix",
    "matrix_to_euler",
    "euler_to_matrix_per_joint",
    "matrix_to_euler_per_joint",
    "euler_to_quat",
    "quat_to_euler",
    "quat_to_matrix",
    "matrix_to_quat",
    "axis_angle_to_matrix",
    "matrix_to_axis_angle",
    "axis_angle_to_quat",
    "quat_to_axis_angle",
    "matrix_to_rot6d",
    "rot6d_to_matrix",
    "quat_multiply",
    "quat_conjugate",
    "quat_normalize",
    "quat_slerp",
    "euler_to_rot6d",
    "rot6d_to_euler",
]
