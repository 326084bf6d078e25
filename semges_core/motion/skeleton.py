"""The BEAT skeleton and the joint subsets the model sees.

Everything that needs joint names, parents or the rest pose takes them from
here, so the 75-joint BEAT layout, the 47-joint upper body and its split into
body (9) and hands (38) are defined once.

Conventions used across `semges_core`:
- Units are centimetres, Y is up, the character faces +Z, its right side is -X
  (BEAT's convention).
- Rotations are local to the parent joint. A BVH channel order "ZXY" means
  R = Rz @ Rx @ Ry acting on column vectors (intrinsic rotations in the listed order).
- The rest pose of `BEAT_SKELETON` is a T-pose with the palms facing down.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Channel order of BEAT's BVH files for every joint; files are still read with
# whatever order they declare.
BEAT_ROTATION_ORDER = "ZXY"

_FINGERS = ("M", "R", "P", "I")


def _side_joints(side: str) -> list[str]:
    """One side's arm and hand joints in BEAT order (e.g. RShoulder ... RHandT4)."""
    names = [f"{side}Shoulder", f"{side}Arm", f"{side}Arm1", f"{side}Hand"]
    names += [f"{side}HandM{i}" for i in range(1, 5)]
    for finger in ("R", "P", "I"):
        names += [f"{side}Hand{finger}"] + [f"{side}Hand{finger}{i}" for i in range(1, 5)]
    names += [f"{side}HandT{i}" for i in range(1, 5)]
    return names


def _leg_joints(side: str) -> list[str]:
    return [f"{side}UpLeg", f"{side}Leg", f"{side}Foot", f"{side}FootF", f"{side}ToeBase", f"{side}ToeBaseEnd"]


BEAT_JOINTS: tuple[str, ...] = tuple(
    ["Hips", "Spine", "Spine1", "Spine2", "Spine3", "Neck", "Neck1", "Head", "HeadEnd"]
    + _side_joints("R")
    + _side_joints("L")
    + _leg_joints("R")
    + _leg_joints("L")
)
assert len(BEAT_JOINTS) == 75


def _beat_parents() -> dict[str, str | None]:
    parent: dict[str, str | None] = {"Hips": None}
    chain = ["Hips", "Spine", "Spine1", "Spine2", "Spine3", "Neck", "Neck1", "Head", "HeadEnd"]
    for a, b in zip(chain, chain[1:]):
        parent[b] = a
    for s in ("R", "L"):
        parent[f"{s}Shoulder"] = "Spine3"
        parent[f"{s}Arm"] = f"{s}Shoulder"
        parent[f"{s}Arm1"] = f"{s}Arm"
        parent[f"{s}Hand"] = f"{s}Arm1"
        # Middle finger hangs straight off the wrist; ring, pinky and index have a
        # metacarpal joint first; the thumb chain starts at the wrist.
        parent[f"{s}HandM1"] = f"{s}Hand"
        for finger in ("R", "P", "I"):
            parent[f"{s}Hand{finger}"] = f"{s}Hand"
            parent[f"{s}Hand{finger}1"] = f"{s}Hand{finger}"
        parent[f"{s}HandT1"] = f"{s}Hand"
        for finger in ("M", "R", "P", "I", "T"):
            for i in range(2, 5):
                parent[f"{s}Hand{finger}{i}"] = f"{s}Hand{finger}{i - 1}"
        parent[f"{s}UpLeg"] = "Hips"
        parent[f"{s}Leg"] = f"{s}UpLeg"
        parent[f"{s}Foot"] = f"{s}Leg"
        parent[f"{s}FootF"] = f"{s}Foot"
        parent[f"{s}ToeBase"] = f"{s}FootF"
        parent[f"{s}ToeBaseEnd"] = f"{s}ToeBase"
    return parent


def _right_offsets() -> dict[str, tuple[float, float, float]]:
    """Rest offsets (cm) of the torso and the right side; the left mirrors X."""
    o: dict[str, tuple[float, float, float]] = {
        "Hips": (0.0, 95.0, 0.0),
        "Spine": (0.0, 8.0, -1.0),
        "Spine1": (0.0, 9.0, 0.0),
        "Spine2": (0.0, 9.0, 0.0),
        "Spine3": (0.0, 9.0, 0.0),
        "Neck": (0.0, 11.0, 1.0),
        "Neck1": (0.0, 5.0, 0.5),
        "Head": (0.0, 5.0, 0.5),
        "HeadEnd": (0.0, 16.0, 0.0),
        "RShoulder": (-3.0, 7.0, 0.0),
        "RArm": (-14.0, 0.0, 0.0),
        "RArm1": (-28.0, 0.0, 0.0),
        "RHand": (-25.0, 0.0, 0.0),
        "RHandM1": (-9.5, 0.0, 0.3),
        "RHandM2": (-4.5, 0.0, 0.0),
        "RHandM3": (-2.8, 0.0, 0.0),
        "RHandM4": (-2.2, 0.0, 0.0),
        "RHandR": (-3.0, 0.0, -1.2),
        "RHandR1": (-6.0, 0.0, -0.6),
        "RHandR2": (-4.2, 0.0, 0.0),
        "RHandR3": (-2.7, 0.0, 0.0),
        "RHandR4": (-2.0, 0.0, 0.0),
        "RHandP": (-3.0, 0.0, -2.2),
        "RHandP1": (-5.5, 0.0, -1.3),
        "RHandP2": (-3.3, 0.0, 0.0),
        "RHandP3": (-2.2, 0.0, 0.0),
        "RHandP4": (-1.8, 0.0, 0.0),
        "RHandI": (-3.0, 0.0, 1.2),
        "RHandI1": (-6.2, 0.0, 0.8),
        "RHandI2": (-4.0, 0.0, 0.0),
        "RHandI3": (-2.5, 0.0, 0.0),
        "RHandI4": (-2.0, 0.0, 0.0),
        "RHandT1": (-2.5, -1.0, 2.5),
        "RHandT2": (-3.0, 0.0, 2.2),
        "RHandT3": (-2.6, 0.0, 1.5),
        "RHandT4": (-2.2, 0.0, 1.0),
        "RUpLeg": (-9.0, -3.0, 0.0),
        "RLeg": (0.0, -44.0, 0.0),
        "RFoot": (0.0, -42.0, 0.0),
        "RFootF": (0.0, -5.0, 4.0),
        "RToeBase": (0.0, -2.0, 9.0),
        "RToeBaseEnd": (0.0, 0.0, 5.0),
    }
    return o


def _beat_offsets() -> np.ndarray:
    right = _right_offsets()
    out = np.zeros((len(BEAT_JOINTS), 3))
    for i, name in enumerate(BEAT_JOINTS):
        if name in right:
            out[i] = right[name]
        else:  # a left joint: mirror its right twin across the YZ plane
            x, y, z = right["R" + name[1:]]
            out[i] = (-x, y, z)
    return out


@dataclass(frozen=True)
class Skeleton:
    """A joint hierarchy in depth-first order (every parent precedes its children).

    `offsets[j]` is joint j's rest position relative to its parent (for the root:
    its rest position in the world). `rotation_orders[j]` is the Euler order its
    BVH channels use, e.g. "ZXY". `end_sites[j]` is the End Site offset written
    after a leaf joint in a BVH file (None for joints without one).
    """

    names: tuple[str, ...]
    parents: tuple[int, ...]
    offsets: np.ndarray
    rotation_orders: tuple[str, ...]
    end_sites: tuple[tuple[float, float, float] | None, ...] = field(default=())

    def __post_init__(self) -> None:
        n = len(self.names)
        if len(set(self.names)) != n:
            raise ValueError("skeleton joint names must be unique")
        if len(self.parents) != n or len(self.rotation_orders) != n:
            raise ValueError("names, parents and rotation_orders must have the same length")
        offsets = np.asarray(self.offsets, dtype=np.float64)
        if offsets.shape != (n, 3):
            raise ValueError(f"offsets must have shape ({n}, 3), got {offsets.shape}")
        object.__setattr__(self, "offsets", offsets)
        for j, p in enumerate(self.parents):
            if (j == 0) != (p == -1) or p >= j:
                raise ValueError(
                    f"joint {self.names[j]!r}: parents must list the root first (parent -1) "
                    "and every other joint after its parent"
                )
        for order in self.rotation_orders:
            if sorted(order) != ["X", "Y", "Z"]:
                raise ValueError(f"rotation order must be a permutation of XYZ, got {order!r}")
        if not self.end_sites:
            object.__setattr__(self, "end_sites", (None,) * n)
        elif len(self.end_sites) != n:
            raise ValueError("end_sites must have one entry per joint")

    def __len__(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"joint {name!r} is not in this skeleton") from None

    def indices(self, names: tuple[str, ...] | list[str]) -> np.ndarray:
        """Indices of `names` in this skeleton, in the order given."""
        missing = [n for n in names if n not in self.names]
        if missing:
            raise KeyError(f"joints missing from the skeleton: {', '.join(missing)}")
        return np.array([self.names.index(n) for n in names], dtype=np.int64)

    def children(self, j: int) -> list[int]:
        return [c for c, p in enumerate(self.parents) if p == j]

    def leaves(self) -> list[int]:
        return [j for j in range(len(self)) if not self.children(j)]

    def rest_positions(self) -> np.ndarray:
        """(J, 3) world positions in the rest pose (every rotation the identity): offsets summed down each chain."""
        pos = np.zeros((len(self), 3))
        for j, p in enumerate(self.parents):
            pos[j] = self.offsets[j] if p < 0 else pos[p] + self.offsets[j]
        return pos

    def same_layout(self, other: "Skeleton") -> bool:
        """True when names and parents agree (offsets and channel orders may differ)."""
        return self.names == other.names and self.parents == other.parents


def _make_beat_skeleton() -> Skeleton:
    parents_by_name = _beat_parents()
    names = BEAT_JOINTS
    parents = tuple(-1 if parents_by_name[n] is None else names.index(parents_by_name[n]) for n in names)
    offsets = _beat_offsets()
    end_sites: list[tuple[float, float, float] | None] = []
    for j in range(len(names)):
        is_leaf = j not in parents
        # A short End Site continuing the bone's direction, as BVH exporters write.
        end_sites.append(tuple(float(v) for v in offsets[j] * 0.3) if is_leaf else None)
    return Skeleton(
        names=names,
        parents=parents,
        offsets=offsets,
        rotation_orders=(BEAT_ROTATION_ORDER,) * len(names),
        end_sites=tuple(end_sites),
    )


BEAT_SKELETON: Skeleton = _make_beat_skeleton()

# The 47 upper-body joints the model generates (141 = 47 x 3 Euler values), in order.
BODY_JOINTS: tuple[str, ...] = (
    "Spine", "Neck", "Neck1", "RShoulder", "RArm", "RArm1", "LShoulder", "LArm", "LArm1",
)


def _hand(side: str) -> list[str]:
    names = [f"{side}Hand"] + [f"{side}HandM{i}" for i in range(1, 4)]
    for finger in ("R", "P", "I"):
        names += [f"{side}Hand{finger}"] + [f"{side}Hand{finger}{i}" for i in range(1, 4)]
    names += [f"{side}HandT{i}" for i in range(1, 4)]
    return names


UPPER_BODY_JOINTS: tuple[str, ...] = tuple(
    ["Spine", "Neck", "Neck1", "RShoulder", "RArm", "RArm1"]
    + _hand("R")
    + ["LShoulder", "LArm", "LArm1"]
    + _hand("L")
)
HAND_JOINTS: tuple[str, ...] = tuple(_hand("R") + _hand("L"))

assert len(UPPER_BODY_JOINTS) == 47 and len(BODY_JOINTS) == 9 and len(HAND_JOINTS) == 38
assert set(BODY_JOINTS) | set(HAND_JOINTS) == set(UPPER_BODY_JOINTS)

# Positions of the body and hand joints inside the 47-joint upper-body vector.
BODY_IN_UPPER: np.ndarray = np.array([UPPER_BODY_JOINTS.index(n) for n in BODY_JOINTS])
HAND_IN_UPPER: np.ndarray = np.array([UPPER_BODY_JOINTS.index(n) for n in HAND_JOINTS])
