"""Forward kinematics: local joint rotations plus the root trajectory -> world joint positions.

Convention (docs/conventions.md): global(j) = global(parent) @ local(j);
pos(j) = pos(parent) + global(parent) @ offset(j); the root's position is
`root_positions` itself (its rest offset is not added again).
"""

from __future__ import annotations

from typing import overload

import numpy as np
import torch

from .rotations import _array_api, quat_to_matrix
from .skeleton import Skeleton


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
    return _fk(local_rotations, root_positions, skeleton, return_global)


@_array_api(2)
def _fk(local: torch.Tensor, root: torch.Tensor, skeleton: Skeleton, return_global: bool):
    n = len(skeleton)
    if local.ndim >= 2 and local.shape[-2:] == (n, 4):
        local = quat_to_matrix(local)  # (..., J, 3, 3)
    elif not (local.ndim >= 3 and local.shape[-3:] == (n, 3, 3)):
        raise ValueError(
            f"local_rotations must have shape (..., {n}, 3, 3) or (..., {n}, 4) for a "
            f"{n}-joint skeleton, got {tuple(local.shape)}"
        )
    if root.ndim < 1 or root.shape[-1] != 3:
        raise ValueError(f"root_positions must have shape (..., 3), got {tuple(root.shape)}")
    batch = torch.broadcast_shapes(local.shape[:-3], root.shape[:-1])
    local = local.expand(batch + local.shape[-3:])
    offsets = torch.as_tensor(skeleton.offsets, dtype=local.dtype, device=local.device)  # (J, 3)

    # Lists, not in-place writes, so autograd sees each joint once.
    glob: list[torch.Tensor] = []
    pos: list[torch.Tensor] = []
    for j, p in enumerate(skeleton.parents):
        if p < 0:
            glob.append(local[..., j, :, :])
            pos.append(root.expand(batch + (3,)))
        else:
            glob.append(glob[p] @ local[..., j, :, :])
            pos.append(pos[p] + (glob[p] @ offsets[j, :, None])[..., 0])
    positions = torch.stack(pos, dim=-2)  # (..., J, 3)
    if return_global:
        return positions, torch.stack(glob, dim=-3)  # (..., J, 3, 3)
    return positions
