"""Does a motion move like a person? Statistics comparable across skeletons and models.

FGD and BC say whether generated motion resembles its training data; they cannot say
that the training data itself (SynthBEAT's procedural motion) hangs its arms at its
sides while a real speaker keeps the elbows bent and gestures with both hands. These
statistics can, because every one is defined so that it means the same thing for any
BEAT-named motion, whatever its bone lengths or source (definitions:
docs/motion-statistics.md, followed exactly):

- Everything is measured at 15 fps (the model's rate): 30 fps motion keeps every 2nd
  frame, so upsampling neither adds nor hides motion; other rates are slerp-resampled.
- Angular speeds are geodesic angles between consecutive *local* rotations (atan2 form,
  exact for small angles) times the frame rate: no bone lengths, and independent of how
  a joint's frame is defined. Torso = Spine.Spine1.Spine2.Spine3 composed, head =
  Neck1.Head composed, so skeletons that spread a bend over more or fewer joints agree.
- Elbow flexion is the angle between the upper-arm and forearm bone directions
  (0 = straight), the directions taken from the skeleton's rest offsets.
- Wrist positions come from forward kinematics in the chest frame (the frame the
  collar hangs from) with fixed bones, collar 14 cm, upper arm 28 cm, forearm 25 cm,
  along each skeleton's rest bone directions: position statistics compare poses,
  not skeletons, and torso sway does not count as hand motion.

numpy only: `semges stats` and the Blender side may run it without torch or scipy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from semges_core.motion.clip import Motion
from semges_core.motion.rotations import quat_conjugate, quat_multiply, quat_to_matrix

STATS_FPS = 15.0
COLLAR_CM, UPPER_ARM_CM, FOREARM_CM = 14.0, 28.0, 25.0
AT_REST_RADIUS_CM = 5.0
RATIO_RANGE = (0.5, 2.0)
# A share near 0 has no useful ratio (the real speaker's at-rest share is 0.00); the
# issue asks for <= 0.25 there, i.e. within 0.25 of the reference.
SHARE_TOLERANCE = 0.25

_TORSO = ("Spine", "Spine1", "Spine2", "Spine3")
_NECK = ("Neck",)
_HEAD = ("Neck1", "Head")
_FINGERS = tuple(f"Hand{f}{i}" for f in "IMRPT" for i in (1, 2, 3))
_SIDES = {"right": "R", "left": "L"}


@dataclass(frozen=True)
class Statistic:
    """One row of the comparison table: its stable key, what it means, and how it is judged."""

    key: str
    label: str
    unit: str
    kind: str = "ratio"  # "ratio": human-like within RATIO_RANGE x; "share": within SHARE_TOLERANCE


# The table, row by row, in its order (the per-arm values follow, for diagnosis).
STATISTICS: tuple[Statistic, ...] = (
    Statistic("wrists_at_rest_share", "share of frames both wrists within 5 cm of their median", "", "share"),
    Statistic("upper_arm_speed", "upper-arm angular speed, mean of both arms", "deg/s"),
    Statistic("forearm_speed", "forearm angular speed, mean of both arms", "deg/s"),
    Statistic("hand_speed", "hand angular speed, mean of both arms", "deg/s"),
    Statistic("left_right_activity", "left / right wrist speed", ""),
    Statistic("elbow_flexion_median_right", "elbow flexion median, right (0 = straight)", "deg"),
    Statistic("elbow_flexion_median_left", "elbow flexion median, left (0 = straight)", "deg"),
    Statistic("elbow_flexion_p95", "elbow flexion p95, both arms", "deg"),
    Statistic("finger_speed", "finger angular speed (joints 1-3)", "deg/s"),
    Statistic("spine_speed", "torso angular speed (Spine..Spine3 composed)", "deg/s"),
    Statistic("neck_speed", "neck angular speed", "deg/s"),
    Statistic("head_speed", "head angular speed (Neck1.Head composed)", "deg/s"),
)
PER_ARM: tuple[Statistic, ...] = tuple(
    Statistic(f"{base}_{side}", f"{label}, {side}", unit)
    for base, label, unit in (
        ("upper_arm_speed", "upper-arm angular speed", "deg/s"),
        ("forearm_speed", "forearm angular speed", "deg/s"),
        ("hand_speed", "hand angular speed", "deg/s"),
        ("wrist_speed", "wrist speed (chest frame, fixed bones)", "cm/s"),
        ("elbow_flexion_p95", "elbow flexion p95", "deg"),
    )
    for side in ("right", "left")
)

REAL_SPEAKER_LABEL = "real speaker (issue 13's measurement: 64 s of BEAT2 capture, not in this repo)"
# The "real speaker" column, measured with these definitions; the issue gives
# 0.00 for the at-rest share and means of both arms only, so no per-arm values.
REAL_SPEAKER: dict[str, float] = {
    "wrists_at_rest_share": 0.00,
    "upper_arm_speed": 37.0,
    "forearm_speed": 79.0,
    "hand_speed": 64.0,
    "left_right_activity": 1.07,
    "elbow_flexion_median_right": 70.0,
    "elbow_flexion_median_left": 39.0,
    "elbow_flexion_p95": 99.0,
    "finger_speed": 43.0,
    "spine_speed": 16.0,
    "neck_speed": 17.0,
    "head_speed": 16.0,
}


# ---------------------------------------------------------------------- measuring


def at_stats_rate(motion: Motion) -> Motion:
    """The motion at 15 fps: an integer ratio keeps every k-th frame exactly, others slerp."""
    return motion.resample(STATS_FPS)


def cut_to_shorter(a: Motion, b: Motion) -> tuple[Motion, Motion]:
    """Both motions at 15 fps and cut to the shorter one, as the doc compares them."""
    a, b = at_stats_rate(a), at_stats_rate(b)
    n = min(a.n_frames, b.n_frames)
    return a.slice(0, n), b.slice(0, n)


def motion_statistics(motion: Motion) -> dict[str, float]:
    """Every statistic of STATISTICS and PER_ARM for `motion` (BEAT joint names), at 15 fps.

    Arm joints (`?Shoulder`, `?Arm`, `?Arm1`, `?Hand`) are required (KeyError names the
    missing ones); a group the skeleton lacks entirely (fingers, torso, neck, head)
    reads NaN. Needs at least 3 frames at 15 fps (ValueError otherwise).
    """
    return pooled_statistics([motion])


def pooled_statistics(motions: Sequence[Motion]) -> dict[str, float]:
    """The statistics of several takes pooled frame by frame (no jump between takes is counted).

    Means and percentiles run over all takes' frames together; each take's wrists are
    "at rest" relative to that take's own median position.
    """
    if not motions:
        raise ValueError("no motions to measure")
    series = [_series(m) for m in motions]

    def cat(key: str) -> np.ndarray | None:
        parts = [s[key] for s in series]
        return None if any(p is None for p in parts) else np.concatenate([p.reshape(-1) for p in parts])

    def mean(key: str) -> float:
        values = cat(key)
        return float(values.mean()) if values is not None else math.nan

    out: dict[str, float] = {}
    for side in _SIDES:
        for key in ("upper_arm_speed", "forearm_speed", "hand_speed", "wrist_speed"):
            out[f"{key}_{side}"] = mean(f"{key}_{side}")
        out[f"elbow_flexion_p95_{side}"] = float(np.percentile(cat(f"flexion_{side}"), 95))
        out[f"elbow_flexion_median_{side}"] = float(np.median(cat(f"flexion_{side}")))
    for key in ("upper_arm_speed", "forearm_speed", "hand_speed"):
        out[key] = (out[f"{key}_right"] + out[f"{key}_left"]) / 2
    out["wrists_at_rest_share"] = mean("at_rest")
    right = out["wrist_speed_right"]
    out["left_right_activity"] = out["wrist_speed_left"] / right if right > 0 else math.nan
    out["elbow_flexion_p95"] = float(np.percentile(np.concatenate([cat("flexion_right"), cat("flexion_left")]), 95))
    for key in ("finger_speed", "spine_speed", "neck_speed", "head_speed"):
        out[key] = mean(key)
    return {s.key: out[s.key] for s in STATISTICS + PER_ARM}


def _series(motion: Motion) -> dict[str, np.ndarray | None]:
    """One take's per-frame values at 15 fps: angular speeds (deg/s, per step), wrist speeds, flexion, at-rest."""
    m = at_stats_rate(motion)
    if m.n_frames < 3:
        raise ValueError(f"needs at least 3 frames at {STATS_FPS:g} fps (0.2 s), got {m.n_frames}")
    sk, q, fps = m.skeleton, m.rotations, m.fps
    names = set(sk.names)
    missing = [f"{s}{j}" for s in "RL" for j in ("Shoulder", "Arm", "Arm1", "Hand") if f"{s}{j}" not in names]
    if missing:
        raise KeyError(f"the skeleton lacks the arm joints {', '.join(missing)} (BEAT joint names expected)")

    out: dict[str, np.ndarray | None] = {}
    near = []
    for side, s in _SIDES.items():
        for key, joint in (("upper_arm_speed", "Arm"), ("forearm_speed", "Arm1"), ("hand_speed", "Hand")):
            out[f"{key}_{side}"] = _angular_speeds(q[:, sk.index(s + joint)], fps)
        wrist, out[f"flexion_{side}"] = _arm_geometry(m, s)
        out[f"wrist_speed_{side}"] = _speed(wrist, fps)
        near.append(np.linalg.norm(wrist - np.median(wrist, axis=0), axis=-1) < AT_REST_RADIUS_CM)
    out["at_rest"] = (near[0] & near[1]).astype(np.float64)
    fingers = [s + f for s in "RL" for f in _FINGERS if s + f in names]
    out["finger_speed"] = _angular_speeds(q[:, sk.indices(fingers)], fps) if fingers else None  # (T-1, F)
    for key, chain in (("spine_speed", _TORSO), ("neck_speed", _NECK), ("head_speed", _HEAD)):
        present = [j for j in chain if j in names]
        out[key] = _angular_speeds(_compose(q, sk, present), fps) if present else None
    return out


def geodesic_angles(q0: np.ndarray, q1: np.ndarray) -> np.ndarray:
    """Radians between unit quaternions (..., 4): 2 atan2(|v|, |w|) of q0^-1 q1, exact near 0 and pi."""
    rel = quat_multiply(quat_conjugate(q0), q1)
    return 2.0 * np.arctan2(np.linalg.norm(rel[..., 1:], axis=-1), np.abs(rel[..., 0]))


def _angular_speeds(q: np.ndarray, fps: float) -> np.ndarray:
    """(T-1, ...) deg/s: the rotation change of (T, ..., 4) quaternions from each frame to the next."""
    return np.degrees(geodesic_angles(q[:-1], q[1:])) * fps


def _compose(q: np.ndarray, sk, chain: list[str]) -> np.ndarray:
    """(T, 4): the local rotations of a parent-to-child chain multiplied into one."""
    out = q[:, sk.index(chain[0])]
    for name in chain[1:]:
        out = quat_multiply(out, q[:, sk.index(name)])
    return out


def _direction(sk, child: str) -> np.ndarray:
    """Unit rest direction of the bone ending at `child`, in its parent joint's frame."""
    v = sk.offsets[sk.index(child)]
    n = np.linalg.norm(v)
    if n == 0:
        raise ValueError(f"joint {child!r} has a zero rest offset, so its bone has no direction")
    return v / n


def _arm_geometry(m: Motion, s: str) -> tuple[np.ndarray, np.ndarray]:
    """Wrist positions (T, 3) cm in the chest frame with fixed bones, and elbow flexion (T,) degrees."""
    sk = m.skeleton
    R = quat_to_matrix(m.rotations[:, sk.indices([f"{s}Shoulder", f"{s}Arm", f"{s}Arm1"])])  # (T, 3, 3, 3)
    collar, upper, fore = (_direction(sk, f"{s}{j}") for j in ("Arm", "Arm1", "Hand"))
    g_collar = R[:, 0]  # collar's frame in the chest frame
    g_upper = g_collar @ R[:, 1]
    g_fore = g_upper @ R[:, 2]
    wrist = COLLAR_CM * g_collar @ collar + UPPER_ARM_CM * g_upper @ upper + FOREARM_CM * g_fore @ fore
    # Flexion in the upper arm's frame: its bone vs the forearm bone rotated by the elbow.
    fore_in_upper = R[:, 2] @ fore  # (T, 3)
    cross = np.linalg.norm(np.cross(upper, fore_in_upper), axis=-1)
    flex = np.degrees(np.arctan2(cross, fore_in_upper @ upper))
    return wrist, flex


def _speed(p: np.ndarray, fps: float) -> np.ndarray:
    """(T,) norm of the central-difference velocity of positions (T, 3), one-sided at the ends."""
    return np.linalg.norm(np.gradient(p, axis=0), axis=-1) * fps


# ---------------------------------------------------------------------- comparing


def compare(generated: dict[str, float], reference: dict[str, float]) -> list[dict]:
    """One row per statistic both dicts hold, table order: values, ratio and whether it is human-like.

    Row keys: key, label, unit, generated, reference, ratio (generated / reference; None
    when the reference is 0 or either value is NaN), in_range (ratio within [0.5, 2]; for
    the at-rest share, which has no useful ratio at 0, within 0.25 of the reference) and
    rule (which of the two tests applied).
    """
    rows = []
    for stat in STATISTICS + PER_ARM:
        if stat.key not in generated or stat.key not in reference:
            continue
        g, r = float(generated[stat.key]), float(reference[stat.key])
        finite = math.isfinite(g) and math.isfinite(r)
        ratio = g / r if finite and r != 0 else None
        if stat.kind == "share":
            in_range = finite and abs(g - r) <= SHARE_TOLERANCE
            rule = f"|generated - reference| <= {SHARE_TOLERANCE:g}"
        else:
            in_range = ratio is not None and RATIO_RANGE[0] <= ratio <= RATIO_RANGE[1]
            rule = f"ratio in [{RATIO_RANGE[0]:g}, {RATIO_RANGE[1]:g}]"
        rows.append({"key": stat.key, "label": stat.label, "unit": stat.unit, "generated": g,
                     "reference": r, "ratio": ratio, "in_range": bool(in_range), "rule": rule})
    return rows


def _fmt(v: float | None, digits: int = 2) -> str:
    if v is None or not math.isfinite(v):
        return "-"
    return f"{v:.{digits}f}" if abs(v) < 10 else f"{v:.1f}"


def format_table(rows: list[dict], generated_label: str = "generated", reference_label: str = "reference",
                 style: str = "markdown") -> str:
    """The rows of `compare` as a markdown table (style="markdown") or aligned plain text ("plain")."""
    if style not in ("markdown", "plain"):
        raise ValueError(f"style must be 'markdown' or 'plain', got {style!r}")
    header = ["statistic", "unit", generated_label, reference_label, "ratio", "human-like"]
    body = [[r["key"], r["unit"] or "-", _fmt(r["generated"]), _fmt(r["reference"]), _fmt(r["ratio"]),
             "yes" if r["in_range"] else "NO"] for r in rows]
    if style == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(cells) + " |" for cells in body]
        return "\n".join(lines)
    widths = [max(len(c[i]) for c in [header] + body) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip() for cells in [header] + body)

