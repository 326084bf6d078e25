"""Conversions between rotation representations, written once for numpy and torch.

Every public function takes numpy arrays (computed in float64, numpy comes back)
or torch tensors (any float dtype and device, any leading batch dims, gradients
flow), so the BVH reader, the dataset, Blender and the networks share one
implementation, spelt once through `semges_core.motion.arrays`; torch is never
imported here, so Blender's numpy-only Python runs it.

Conventions (docs/conventions.md):
- Euler angles (..., 3): angles[..., k] is about axis order[k] and
  R = R_{order[0]} @ R_{order[1]} @ R_{order[2]} acting on column vectors
  (intrinsic rotations in the listed order, as BVH channels are read).
- Quaternions are (w, x, y, z), Hamilton product, canonicalised to w >= 0.
- Axis-angle is a rotation vector: unit axis times the angle in radians.
- rot6d is concat(R[..., :, 0], R[..., :, 1]); back with Gram-Schmidt.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence, TypeVar

import numpy as np

from semges_core.motion.arrays import array_function, namespace

if TYPE_CHECKING:
    import torch

Array = TypeVar("Array", np.ndarray, "torch.Tensor")

_AXIS = {"X": 0, "Y": 1, "Z": 2}


def _check_order(order: str) -> str:
    up = order.upper() if isinstance(order, str) else ""
    if sorted(up) != ["X", "Y", "Z"]:
        raise ValueError(f"rotation order must be a permutation of 'XYZ', got {order!r}")
    return up


def _check_last(x, shape: tuple[int, ...], what: str) -> None:
    if tuple(x.shape[x.ndim - len(shape):]) != shape or x.ndim < len(shape):
        raise ValueError(f"{what} must have shape (..., {', '.join(map(str, shape))}), got {tuple(x.shape)}")


# --------------------------------------------------------------------------- Euler


@array_function(1)
def euler_to_matrix(angles: Array, order: str, degrees: bool = True) -> Array:
    """Euler angles (..., 3) in `order` -> rotation matrices (..., 3, 3)."""
    order = _check_order(order)
    _check_last(angles, (3,), "angles")
    xp = namespace(angles)
    rad = xp.deg2rad(angles) if degrees else angles
    i, j, k = (_AXIS[a] for a in order)
    s = 1.0 if (j - i) % 3 == 1 else -1.0  # as in matrix_to_euler
    ca, cb, cc = (xp.cos(rad[..., n]) for n in range(3))
    sa, sb, sc = (xp.sin(rad[..., n]) for n in range(3))
    # R_i(a) @ R_j(b) @ R_k(c) written out, rows and columns in (i, j, k) order: the same
    # products the matrix product forms, for a fraction of the cost of two batched 3x3
    # products (numpy's are slow for tiny matrices).
    entries = {
        (i, i): cb * cc, (i, j): -s * cb * sc, (i, k): s * sb,
        (j, i): s * ca * sc + sa * sb * cc, (j, j): ca * cc - s * sa * sb * sc, (j, k): -s * sa * cb,
        (k, i): sa * sc - s * ca * sb * cc, (k, j): ca * sb * sc + s * sa * cc, (k, k): ca * cb,
    }
    m = xp.stack([entries[r, c] for r in range(3) for c in range(3)], -1)
    return m.reshape(tuple(angles.shape[:-1]) + (3, 3))


def _wrap_pi(a):
    """Map atan2's -pi onto +pi so angles lie in (-pi, pi]."""
    return namespace(a).where(a <= -math.pi, a + 2 * math.pi, a)


@array_function(2)
def matrix_to_euler(R: Array, order: str, degrees: bool = True) -> Array:
    """Rotation matrices (..., 3, 3) -> Euler angles (..., 3) in `order`, each in (-180, 180].

    The middle angle lies in [-90, 90]. At gimbal lock (middle angle +-90) only the
    sum/difference of the outer angles is defined; the last angle is then set to 0.
    """
    order = _check_order(order)
    _check_last(R, (3, 3), "R")
    xp = namespace(R)
    i, j, k = (_AXIS[a] for a in order)
    # +1 when (i, j, k) is a cyclic permutation of (0, 1, 2): e_i x e_j = sign * e_k.
    sign = 1.0 if (j - i) % 3 == 1 else -1.0
    cos_b = xp.safe_sqrt(R[..., i, i] ** 2 + R[..., i, j] ** 2)
    b = xp.arctan2(sign * R[..., i, k], cos_b)
    # Near gimbal lock the outer angles' formulas divide noise by cos_b; with
    # c = 0, R = R_i(a) R_j(b) and column j of R gives a directly.
    eps = math.sqrt(xp.finfo(R.dtype).eps)
    locked = cos_b < eps
    a = xp.safe_atan2(-sign * R[..., j, k], R[..., k, k], locked)
    c = xp.safe_atan2(-sign * R[..., i, j], R[..., i, i], locked)
    # Locked frames are rare, so numpy skips their atan2 when there are none; torch always
    # takes the same path (no device sync on locked.any(), one graph for autograd).
    if xp.is_torch or locked.any():
        a = xp.where(locked, xp.safe_atan2(sign * R[..., k, j], R[..., j, j], ~locked), a)
        c = xp.where(locked, xp.zeros_like(c), c)
    out = xp.stack([_wrap_pi(a), b, _wrap_pi(c)], -1)
    return xp.rad2deg(out) if degrees else out


@array_function(2)
def euler_to_matrix_per_joint(angles: Array, orders: Sequence[str], degrees: bool = True) -> Array:
    """Euler angles (..., J, 3), joint j in `orders[j]` -> matrices (..., J, 3, 3).

    Joints sharing an order are converted together, so the cost does not grow with
    the number of frames in Python.
    """
    _check_last(angles, (len(orders), 3), "angles")
    return _per_joint(euler_to_matrix, angles, orders, degrees, in_axis=-2, out_axis=-3)


@array_function(3)
def matrix_to_euler_per_joint(R: Array, orders: Sequence[str], degrees: bool = True) -> Array:
    """Matrices (..., J, 3, 3) -> Euler angles (..., J, 3), joint j in `orders[j]`."""
    _check_last(R, (len(orders), 3, 3), "R")
    return _per_joint(matrix_to_euler, R, orders, degrees, in_axis=-3, out_axis=-2)


def _per_joint(convert, x, orders: Sequence[str], degrees: bool, in_axis: int, out_axis: int):
    """convert(joints, order, degrees) once per group of joints sharing an order, back in joint order.

    The joint axis is `in_axis` of x and `out_axis` of the result. Concatenated and
    permuted rather than written into an empty array, so autograd sees plain indexing.
    """
    groups: dict[str, list[int]] = {}
    for j, order in enumerate(orders):
        groups.setdefault(_check_order(order), []).append(j)
    if len(groups) == 1:  # the usual case (BEAT's joints are all ZXY): no gathering at all
        return convert(x, next(iter(groups)), degrees)
    parts = [convert(x[(Ellipsis, idx) + (slice(None),) * (-in_axis - 1)], order, degrees)
             for order, idx in groups.items()]
    out = namespace(x).concatenate(parts, out_axis)
    back = np.argsort([j for idx in groups.values() for j in idx]).tolist()  # joint j's place in `out`
    return out[(Ellipsis, back) + (slice(None),) * (-out_axis - 1)]


# --------------------------------------------------------------------------- quaternions


def _canonical(q):
    return namespace(q).negate_where(q, q[..., :1] < 0)


@array_function(1)
def quat_normalize(q: Array) -> Array:
    """Unit quaternions (..., 4), sign kept as given."""
    _check_last(q, (4,), "q")
    xp = namespace(q)
    return xp.scale(q, 1.0 / xp.clamp(xp.norm(q), xp.finfo(q.dtype).tiny))


@array_function(1)
def quat_conjugate(q: Array) -> Array:
    """(w, x, y, z) -> (w, -x, -y, -z): the inverse of a unit quaternion."""
    _check_last(q, (4,), "q")
    return namespace(q).concatenate([q[..., :1], -q[..., 1:]], -1)


@array_function(1, 1)
def quat_multiply(a: Array, b: Array) -> Array:
    """Hamilton product a * b (rotate by b, then by a), shapes broadcast -> (..., 4)."""
    _check_last(a, (4,), "a")
    _check_last(b, (4,), "b")
    aw, ax, ay, az = (a[..., i] for i in range(4))
    bw, bx, by, bz = (b[..., i] for i in range(4))
    return namespace(a).stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        -1,
    )


@array_function(1)
def quat_to_matrix(q: Array) -> Array:
    """Quaternions (..., 4), not necessarily unit -> rotation matrices (..., 3, 3)."""
    _check_last(q, (4,), "q")
    xp = namespace(q)
    w, x, y, z = (q[..., i] for i in range(4))
    two_s = 2.0 / xp.clamp(xp.dot(q, q)[..., 0], xp.finfo(q.dtype).tiny)
    m = xp.stack(
        [
            1 - two_s * (y * y + z * z), two_s * (x * y - z * w), two_s * (x * z + y * w),
            two_s * (x * y + z * w), 1 - two_s * (x * x + z * z), two_s * (y * z - x * w),
            two_s * (x * z - y * w), two_s * (y * z + x * w), 1 - two_s * (x * x + y * y),
        ],
        -1,
    )
    return m.reshape(tuple(q.shape[:-1]) + (3, 3))


@array_function(2)
def matrix_to_quat(R: Array) -> Array:
    """Rotation matrices (..., 3, 3) -> unit quaternions (..., 4) with w >= 0.

    Shepperd's method: of the four ways to read q off R, use the one whose pivot
    (|w|, |x|, |y| or |z|) is largest, so no near-zero divisor is ever used.
    """
    _check_last(R, (3, 3), "R")
    xp = namespace(R)
    m = R.reshape(tuple(R.shape[:-2]) + (9,))
    m00, m01, m02, m10, m11, m12, m20, m21, m22 = (m[..., i] for i in range(9))
    # 4 * (w^2, x^2, y^2, z^2) and the sums and differences of mirrored entries
    ww, xx = 1 + m00 + m11 + m22, 1 + m00 - m11 - m22
    yy, zz = 1 - m00 + m11 - m22, 1 - m00 - m11 + m22
    wx, wy, wz = m21 - m12, m02 - m20, m10 - m01
    xy, xz, yz = m10 + m01, m02 + m20, m12 + m21
    pivot = xp.safe_sqrt(xp.stack([ww, xx, yy, zz], -1))  # (..., 4): 2 * (|w|, |x|, |y|, |z|)
    # Row r is 4 * q * q[r]; dividing by 2 * pivot[r] = 4 * |q[r]| gives +-q.
    rows = xp.stack([ww, wx, wy, wz, wx, xx, xy, xz, wy, xy, yy, yz, wz, xz, yz, zz], -1)
    rows = rows.reshape(tuple(m.shape[:-1]) + (4, 4))  # (..., 4, 4)
    best = xp.argmax(pivot, -1)[..., None]  # (..., 1)
    row = xp.take_along(rows, best[..., None], -2)[..., 0, :]  # (..., 4)
    q = xp.scale(row, 0.5 / xp.clamp(xp.take_along(pivot, best, -1), 0.1))  # the largest pivot is >= 1 for a rotation
    return _canonical(quat_normalize(q))


@array_function(1, 1, 0)
def quat_slerp(q0: Array, q1: Array, t: Array) -> Array:
    """Spherical interpolation along the shorter arc -> (..., 4), w >= 0.

    `t` broadcasts against the quaternions' batch shape (q0.shape[:-1]); t = 0
    gives q0 and t = 1 gives q1 (up to sign).
    """
    _check_last(q0, (4,), "q0")
    _check_last(q1, (4,), "q1")
    xp = namespace(q0, q1, t)
    q0, q1 = quat_normalize(q0), quat_normalize(q1)
    t = t[..., None]
    dot = xp.dot(q0, q1)
    q1 = xp.negate_where(q1, dot < 0)  # the shorter path
    dot = xp.clamp(xp.abs(dot), None, 1.0)
    theta = xp.arccos(dot)
    # Slerp's weights are sin((1 - t) theta) / sin(theta) and sin(t theta) / sin(theta); the
    # common divisor is left out, as the sum is normalised anyway. Nearly equal rotations
    # (theta -> 0, both weights -> 0) take normalised lerp instead, exact enough there.
    close = theta < (1e-6 if q0.dtype == xp.float64 else 1e-3)
    w0 = xp.where(close, 1 - t, xp.sin((1 - t) * theta))
    w1 = xp.where(close, t, xp.sin(t * theta))
    return _canonical(quat_normalize(xp.scale(q0, w0) + xp.scale(q1, w1)))


@array_function(1)
def euler_to_quat(angles: Array, order: str, degrees: bool = True) -> Array:
    """Euler angles (..., 3) in `order` -> unit quaternions (..., 4), w >= 0."""
    order = _check_order(order)
    _check_last(angles, (3,), "angles")
    xp = namespace(angles)
    half = 0.5 * (xp.deg2rad(angles) if degrees else angles)
    q = None
    for k in range(3):
        c, s = xp.cos(half[..., k]), xp.sin(half[..., k])
        parts = [c, xp.zeros_like(c), xp.zeros_like(c), xp.zeros_like(c)]
        parts[1 + _AXIS[order[k]]] = s
        qk = xp.stack(parts, -1)
        q = qk if q is None else quat_multiply(q, qk)
    return _canonical(q)


@array_function(1)
def quat_to_euler(q: Array, order: str, degrees: bool = True) -> Array:
    """Quaternions (..., 4) -> Euler angles (..., 3) in `order` (see matrix_to_euler)."""
    return matrix_to_euler(quat_to_matrix(q), order, degrees)


@array_function(1, blocks=False)
def quat_continuous(q: Array) -> Array:
    """Quaternions (T, ..., 4) with signs flipped so consecutive frames share a hemisphere.

    q and -q are one rotation, but keys that jump between them blend the long way
    round in an animation editor; the first frame keeps its sign.
    """
    _check_last(q, (4,), "q")
    if q.ndim < 2 or q.shape[0] < 2:
        return q * 1  # a copy, like every other result
    xp = namespace(q)
    dots = xp.dot(q[1:], q[:-1])[..., 0]  # (T-1, ...)
    flips = xp.cumsum((dots < 0) * 1, 0) % 2  # sign changes so far, mod 2
    sign = 1 - 2 * xp.concatenate([xp.zeros_like(flips[:1]), flips], 0)  # (T, ...)
    return q * sign[..., None]


# --------------------------------------------------------------------------- axis-angle


@array_function(1)
def axis_angle_to_quat(v: Array) -> Array:
    """Rotation vectors (..., 3), angle = norm in radians -> unit quaternions (..., 4), w >= 0."""
    _check_last(v, (3,), "axis-angle")
    xp = namespace(v)
    angle = xp.norm(v)
    # sin(angle / 2) / angle without a 0/0 at the identity: sinc(x) = sin(pi x) / (pi x).
    scale = 0.5 * xp.sinc(angle / (2 * math.pi))
    return _canonical(xp.concatenate([xp.cos(0.5 * angle), v * scale], -1))


@array_function(1)
def quat_to_axis_angle(q: Array) -> Array:
    """Quaternions (..., 4) -> rotation vectors (..., 3) with angle in [0, pi]."""
    xp = namespace(q)
    q = _canonical(quat_normalize(q))
    xyz = q[..., 1:]
    sin_half = xp.norm(xyz)
    half = xp.arctan2(sin_half, q[..., :1])
    small = sin_half < 1e-6
    # 2 * half / sin(half) -> 2 * (1 + half^2 / 6) near the identity.
    safe = xp.where(small, xp.ones_like(sin_half), sin_half)
    scale = xp.where(small, 2.0 * (1.0 + half * half / 6.0), 2.0 * half / safe)
    return xyz * scale


@array_function(1)
def axis_angle_to_matrix(v: Array) -> Array:
    """Rotation vectors (..., 3) -> rotation matrices (..., 3, 3)."""
    return quat_to_matrix(axis_angle_to_quat(v))


@array_function(2)
def matrix_to_axis_angle(R: Array) -> Array:
    """Rotation matrices (..., 3, 3) -> rotation vectors (..., 3), angle in [0, pi]."""
    return quat_to_axis_angle(matrix_to_quat(R))


# --------------------------------------------------------------------------- rot6d


@array_function(2)
def matrix_to_rot6d(R: Array) -> Array:
    """Rotation matrices (..., 3, 3) -> (..., 6): column 0 then column 1."""
    _check_last(R, (3, 3), "R")
    return namespace(R).concatenate([R[..., :, 0], R[..., :, 1]], -1)


@array_function(1)
def rot6d_to_matrix(x: Array) -> Array:
    """(..., 6) -> rotation matrices (..., 3, 3) by Gram-Schmidt, so any network output is valid."""
    _check_last(x, (6,), "rot6d")
    xp = namespace(x)
    tiny = xp.finfo(x.dtype).tiny
    a1, a2 = x[..., :3], x[..., 3:]
    b1 = xp.scale(a1, 1.0 / xp.clamp(xp.norm(a1), tiny))
    b2 = a2 - xp.scale(b1, xp.dot(b1, a2))
    b2 = xp.scale(b2, 1.0 / xp.clamp(xp.norm(b2), tiny))
    b3 = xp.cross(b1, b2)
    return xp.stack([b1, b2, b3], -1)  # columns


@array_function(1)
def euler_to_rot6d(angles: Array, order: str, degrees: bool = True) -> Array:
    """Euler angles (..., 3) in `order` -> rot6d (..., 6)."""
    return matrix_to_rot6d(euler_to_matrix(angles, order, degrees))


@array_function(1)
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
    "quat_continuous",
    "euler_to_rot6d",
    "rot6d_to_euler",
]
