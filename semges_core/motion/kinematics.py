"""Forward kinematics: local joint rotations plus the root trajectory -> world joint positions.

Convention (docs/conventions.md): global(j) = global(parent) @ local(j);
pos(j) = pos(parent) + global(parent) @ offset(j); the root's position is
`root_positions` itself (its rest offset is not added again). Like `rotations`,
written once for numpy and torch (`semges_core.motion.arrays`); torch is never imported here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, overload

import numpy as np

from semges_core.motion.arrays import array_function, is_tensor, namespace
from semges_core.motion.rotations import quat_to_matrix
from semges_core.motion.skeleton import Skeleton

if TYPE_CHECKING:
    import torch


@overload
def forward_kinematics(
    skeleton: Skeleton, local_rotations: np.ndarray, root_positions: np.ndarray, return_global: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray]: ...
@overload
def forward_kinematics(
    skeleton: Skeleton, local_rotations: torch.Tensor, root_positions: torch.Tensor, return_global: bool = False
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]: ...


def forward_kinematics(skeleton, local_rotations, root_positions, return_global=False):
    """World joint positions (..., J, 3), plus global rotations (..., J, 3, 3) if `return_global`.

    `local_rotations` is (..., J, 3, 3) matrices or (..., J, 4) quaternions (w, x, y, z);
    `root_positions` is (..., 3) and broadcasts against the rotations' batch shape.
    Torch in gives torch out (differentiable); numpy in gives float64 numpy out.
    """
    n = len(skeleton)
    local, root = (a if is_tensor(a) else np.asarray(a) for a in (local_rotations, root_positions))
    if local.ndim >= 2 and tuple(local.shape[-2:]) == (n, 4):
        local = quat_to_matrix(local)  # (..., J, 3, 3)
    elif not (local.ndim >= 3 and tuple(local.shape[-3:]) == (n, 3, 3)):
        raise ValueError(
            f"local_rotations must have shape (..., {n}, 3, 3) or (..., {n}, 4) for a "
            f"{n}-joint skeleton, got {tuple(local.shape)}"
        )
    if root.ndim < 1 or root.shape[-1] != 3:
        raise ValueError(f"root_positions must have shape (..., 3), got {tuple(root.shape)}")
    return _fk(local, root, skeleton, return_global)


@array_function(3, 1, blocks=False)  # blocks and threads measured no faster: numpy's 3x3 products dominate
def _fk(local, root, skeleton: Skeleton, return_global: bool):
    """forward_kinematics on checked (..., J, 3, 3) matrices and (..., 3) roots."""
    xp = namespace(local)
    n = len(skeleton)
    batch = tuple(xp.broadcast_shapes(tuple(local.shape[:-3]), tuple(root.shape[:-1])))
    local = xp.broadcast_to(local, batch + (n, 3, 3))
    offsets = xp.asarray(skeleton.offsets, like=local)  # (J, 3)

    # Lists, not in-place writes, so autograd sees each joint once. A leaf's global
    # rotation moves no other joint, so it is only formed when asked for.
    parents = set(skeleton.parents)
    glob: list = []
    pos: list = []
    for j, p in enumerate(skeleton.parents):
        if p < 0:
            glob.append(local[..., j, :, :])
            pos.append(xp.broadcast_to(root, batch + (3,)))
        else:
            pos.append(pos[p] + glob[p] @ offsets[j])  # (..., 3, 3) @ (3,) -> (..., 3)
            glob.append(glob[p] @ local[..., j, :, :] if return_global or j in parents else None)
    positions = xp.stack(pos, -2)  # (..., J, 3)
    if return_global:
        return positions, xp.stack(glob, -3)  # (..., J, 3, 3)
    return positions
