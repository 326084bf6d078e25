"""SynthBEAT's motion side: gesture events plus a speaker style -> a BEAT-skeleton `Motion`.

The motion is built in layers, all vectorised over frames:

1. rest + idle (Euler, per joint and channel): the speaker's rest pose with slow
   breathing, sway, weight shifts and head motion; legs are counter-rotated so
   the feet stay roughly planted.
2. gestures (quaternions): events are applied in order of their start; each
   slerps the arm and hand joints from whatever pose is there (rest or an
   earlier gesture) to its target with an ease-in-out weight that is 1 exactly
   at the stroke, so a later, overlapping gesture takes over. Torso accents
   (a lean, a head tilt, a nod on a beat) are small rotations multiplied on top.
3. finger life (quaternions): a small continuous curl on every finger, so hands
   never freeze, also during a held gesture.

Randomness comes from three independent streams: the speaker's own habits
(seeded by speaker id, so a speaker looks alike across takes), the take's idle
motion and one stream per event, all derived from `seed`.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from semges_core.motion.clip import Motion
from semges_core.motion.rotations import euler_to_quat, quat_multiply, quat_slerp
from semges_core.motion.skeleton import BEAT_ROTATION_ORDER, BEAT_SKELETON

from .events import BEAT, GestureEvent, SpeakerStyle
from .poses import (
    ARM_JOINTS,
    BEAT_ARM,
    BEAT_FLICK,
    FAMILY_POSES,
    FINGER_CHAINS,
    HAND_SHAPES,
    FamilyPose,
    Pose,
    rest_arm,
    rest_torso,
    sided,
)

SKELETON = BEAT_SKELETON
_ORDER = BEAT_ROTATION_ORDER  # every joint of BEAT_SKELETON uses it
_AXIS = {"Z": 0, "X": 1, "Y": 2}  # channel index inside a "ZXY" Euler triple
_LEG_LENGTH = 86.0  # cm, hip joint to ankle
_BEAT_POSE = FamilyPose(arm=BEAT_ARM, hand="beat")
_TORSO = frozenset(("Hips", "Spine", "Spine1", "Spine2", "Spine3", "Neck", "Neck1", "Head"))


def _side_joints(side: str) -> list[str]:
    """Every joint of one arm and hand, shoulder to fingertips."""
    legs = tuple(side + part for part in ("UpLeg", "Leg", "Foot", "Toe"))
    return [n for n in SKELETON.names if n.startswith(side) and not n.startswith(legs)]


_SIDE_JOINTS = {s: _side_joints(s) for s in "RL"}
_SIDE_INDEX = {s: SKELETON.indices(_SIDE_JOINTS[s]) for s in "RL"}


def synthesize_motion(
    events: Sequence[GestureEvent], duration: float, fps: float, style: SpeakerStyle, seed: int
) -> Motion:
    """The take's motion on BEAT_SKELETON: round(duration * fps) frames, deterministic in `seed`."""
    if not np.isfinite(duration) or duration < 0:
        raise ValueError(f"duration must be >= 0 seconds, got {duration!r}")
    if not np.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be positive, got {fps!r}")
    n_frames = int(round(duration * fps))
    t = np.arange(n_frames) / fps  # (T,) seconds
    _leading_side(style.handedness, 0)  # validates it
    events = sorted(events, key=lambda e: (e.start, e.stroke))
    idle_ss, event_ss, finger_ss = np.random.SeedSequence(seed).spawn(3)
    habits = _Habits(style)

    rest = _rest_pose(style, habits)
    euler, root = _idle(t, style, habits, np.random.default_rng(idle_ss), rest)  # (T, J, 3), (T, 3)
    quats = euler_to_quat(euler, _ORDER)  # (T, J, 4)
    rest_q = {s: euler_to_quat(_stack(rest, _SIDE_JOINTS[s]), _ORDER) for s in "RL"}  # (27, 4) each

    one_handed = 0
    for ev, ss in zip(events, event_ss.spawn(len(events))):
        rng = np.random.default_rng(ss)
        spec = _BEAT_POSE if ev.kind == BEAT else FAMILY_POSES[ev.kind]
        if spec.both or (ev.kind == BEAT and style.handedness == "both"):
            sides = "RL"
        else:
            sides = _leading_side(style.handedness, one_handed)
            one_handed += 1
        _apply_event(quats, t, ev, spec, sides, style, rng, rest_q, fps)

    _finger_life(quats, t, habits, np.random.default_rng(finger_ss))
    return Motion(SKELETON, fps, root, quats)


# ---------------------------------------------------------------------- speaker


class _Habits:
    """A speaker's idiosyncrasies that no style field names, constant across their takes."""

    def __init__(self, style: SpeakerStyle) -> None:
        rng = np.random.default_rng([7919, style.speaker_id])  # a stream of its own, not the take's seed
        self.breath_hz = rng.uniform(0.2, 0.3)
        self.sway = rng.uniform(0.7, 1.3) * (0.8 + 0.2 * style.amplitude)
        self.head = rng.uniform(0.7, 1.3)
        self.curl = rng.uniform(0.8, 1.25)  # how curled the relaxed fingers are
        self.fidget = rng.uniform(0.7, 1.3)  # finger motion amplitude


def _leading_side(handedness: str, k: int) -> str:
    if handedness == "right":
        return "R"
    if handedness == "left":
        return "L"
    if handedness == "both":
        return "RL"[k % 2]
    raise ValueError(f"handedness must be 'right', 'left' or 'both', got {handedness!r}")


def _rest_pose(style: SpeakerStyle, habits: _Habits) -> Pose:
    """The speaker's rest pose with every joint named; fingers relaxed by the speaker's curl."""
    pose: Pose = {name: (0.0, 0.0, 0.0) for name in SKELETON.names}
    pose.update(rest_torso(style.posture))
    relaxed = {k: tuple(habits.curl * v for v in e) for k, e in HAND_SHAPES["relaxed"].items()}
    for s in "RL":
        pose.update(sided(rest_arm(style.posture), s))
        pose.update(sided(relaxed, s))
    return pose


def _stack(pose: Pose, names: Sequence[str]) -> np.ndarray:
    """Euler triples of `names` as an (N, 3) array; joints missing from `pose` are 0."""
    return np.array([pose.get(n, (0.0, 0.0, 0.0)) for n in names], dtype=np.float64)


# ---------------------------------------------------------------------- idle


def _noise(t: np.ndarray, rng: np.random.Generator, f_lo: float, f_hi: float) -> np.ndarray:
    """Smooth noise (T,) with unit standard deviation: three sines at random rates and phases."""
    f = rng.uniform(f_lo, f_hi, 3)
    phase = rng.uniform(0.0, 2 * np.pi, 3)
    return np.sin(2 * np.pi * t[:, None] * f + phase).sum(-1) / np.sqrt(1.5)


# (joint, channel, amplitude in degrees, lowest and highest rate in Hz): slow drift of the whole body.
_IDLE_CHANNELS: tuple[tuple[str, str, float, float, float], ...] = (
    ("Spine", "Y", 1.0, 0.03, 0.15), ("Spine1", "X", 0.6, 0.05, 0.2), ("Spine1", "Z", 0.6, 0.05, 0.2),
    ("Spine2", "Y", 0.8, 0.05, 0.2), ("Spine3", "X", 0.5, 0.05, 0.25),
    ("Neck", "X", 1.0, 0.08, 0.3), ("Neck", "Y", 1.5, 0.05, 0.25),
    ("Head", "X", 2.5, 0.1, 0.5), ("Head", "Y", 4.0, 0.05, 0.4), ("Head", "Z", 1.5, 0.08, 0.4),
    ("RArm", "Z", 1.5, 0.05, 0.3), ("RArm", "Y", 2.0, 0.05, 0.3), ("RArm1", "Y", 2.5, 0.05, 0.3),
    ("RHand", "Z", 3.0, 0.1, 0.5), ("RHand", "Y", 2.0, 0.1, 0.5),
    ("LArm", "Z", 1.5, 0.05, 0.3), ("LArm", "Y", 2.0, 0.05, 0.3), ("LArm1", "Y", 2.5, 0.05, 0.3),
    ("LHand", "Z", 3.0, 0.1, 0.5), ("LHand", "Y", 2.0, 0.1, 0.5),
)


def _idle(
    t: np.ndarray, style: SpeakerStyle, habits: _Habits, rng: np.random.Generator, rest: Pose
) -> tuple[np.ndarray, np.ndarray]:
    """Rest pose plus idle motion as Euler degrees (T, J, 3), and the root trajectory (T, 3) in cm."""
    n = len(t)
    euler = np.tile(_stack(rest, SKELETON.names), (n, 1, 1))  # (T, J, 3)

    def add(joint: str, axis: str, values: np.ndarray) -> None:
        euler[:, SKELETON.index(joint), _AXIS[axis]] += values

    for joint, axis, amp, f_lo, f_hi in _IDLE_CHANNELS:
        scale = habits.head if joint in ("Neck", "Head") else habits.sway
        add(joint, axis, amp * scale * _noise(t, rng, f_lo, f_hi))

    # Breathing: the chest lifts and the shoulders rise a little.
    breath = np.sin(2 * np.pi * habits.breath_hz * t + rng.uniform(0, 2 * np.pi))
    add("Spine1", "X", -0.5 * breath)
    add("Spine2", "X", -0.4 * breath)
    add("Neck", "X", 0.6 * breath)
    add("RShoulder", "Z", -0.8 * breath)
    add("LShoulder", "Z", 0.8 * breath)

    # Weight shift: the root wanders sideways; the pelvis rolls with it (the free hip drops)
    # and the spine leans back over it.
    shift = 2.5 * habits.sway * _noise(t, rng, 0.02, 0.1)  # cm along X
    forward = 0.8 * habits.sway * _noise(t, rng, 0.03, 0.12)  # cm along Z
    roll = 0.8 * shift  # degrees per cm
    yaw = 2.0 * habits.sway * _noise(t, rng, 0.03, 0.15)
    add("Hips", "Z", roll)
    add("Hips", "Y", yaw)
    add("Spine", "Z", -0.7 * roll)
    add("Spine1", "Y", -0.5 * yaw)

    # Legs: aim each leg back at its rest ankle, then keep the foot flat (small-angle IK).
    # The pelvis' yaw swings each ankle forwards or back by its distance from the middle.
    tilt_z = -np.degrees(np.arcsin(np.clip(shift / _LEG_LENGTH, -1, 1)))
    for s in "RL":
        ankle_x = SKELETON.offsets[SKELETON.index(f"{s}UpLeg"), 0] * 1.5  # feet stand wider than the hips
        drift_z = forward - ankle_x * np.sin(np.radians(yaw))
        tilt_x = np.degrees(np.arcsin(np.clip(drift_z / _LEG_LENGTH, -1, 1)))
        add(f"{s}UpLeg", "Z", tilt_z - roll)
        add(f"{s}UpLeg", "X", tilt_x)
        add(f"{s}UpLeg", "Y", -yaw)
        add(f"{s}Foot", "Z", -tilt_z)
        add(f"{s}Foot", "X", -tilt_x)

    root = np.tile(SKELETON.offsets[0], (n, 1))
    root[:, 0] += shift
    root[:, 2] += forward
    return euler, root


# ---------------------------------------------------------------------- gestures


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _envelope(t: np.ndarray, start: float, arrive: float, release: float, end: float) -> np.ndarray:
    """Blend weight: eases 0 -> 1 over [start, arrive], holds to `release`, eases back to 0 by `end`.

    Each ramp starts and ends with zero slope, so the hand settles into the pose.
    """
    w = np.ones_like(t) if arrive - start <= 1e-9 else _smoothstep((t - start) / (arrive - start))
    if end > release:
        w = np.where(t > release, 1.0 - _smoothstep((t - release) / (end - release)), w)
    return w


def _apply_event(
    quats: np.ndarray,
    t: np.ndarray,
    ev: GestureEvent,
    spec: FamilyPose,
    sides: str,
    style: SpeakerStyle,
    rng: np.random.Generator,
    rest_q: dict[str, np.ndarray],
    fps: float,
) -> None:
    """Blend one gesture into `quats` (T, J, 4) in place, over the frames inside [start, end]."""
    i0 = max(int(np.ceil(ev.start * fps - 1e-9)), 0)
    i1 = min(int(np.floor(ev.end * fps + 1e-9)) + 1, len(t))
    if i1 <= i0:
        return
    half = _beat_half(ev, style, rng) if ev.kind == BEAT else 0.0
    curves = _curves(t[i0:i1], ev, spec, style, rng, half)
    reach = _reach(ev, spec, style, rng, half)
    jitter_deg = 1.5 if spec.contact else 3.0  # per arm channel; enough to vary, not to blur families
    for side in sides:
        names = _SIDE_JOINTS[side]
        base = _stack({**sided(HAND_SHAPES[spec.hand], side), **sided(spec.arm, side)}, names)  # (N, 3)
        is_arm = np.array([n[1:] in ARM_JOINTS for n in names])
        base += rng.normal(0.0, 1.0, base.shape) * np.where(is_arm, jitter_deg, 2.5)[:, None]
        target = np.broadcast_to(base, (i1 - i0,) + base.shape).copy()  # (L, N, 3)
        for offsets, weight in ((spec.sweep, curves.sweep), (spec.wave, curves.wave)):
            target += weight[:, None, None] * _stack(sided(offsets, side), names)[None]
        target_q = euler_to_quat(target, _ORDER)  # (L, N, 4)
        if reach != 1.0:  # scale the arm's pose about the rest pose
            arm_q = target_q[:, is_arm]  # (L, 4, 4)
            rest_arm_q = np.broadcast_to(rest_q[side][is_arm], arm_q.shape)
            target_q[:, is_arm] = quat_slerp(rest_arm_q, arm_q, np.full(arm_q.shape[:-1], reach))
        if ev.kind == BEAT:  # the flick after scaling, so a low lift still gets a full stroke
            flick = curves.flick[:, None, None] * _stack(sided(BEAT_FLICK, side), names)[None]
            target_q = quat_multiply(target_q, euler_to_quat(flick, _ORDER))
        idx = _SIDE_INDEX[side]
        w = np.broadcast_to(curves.w[:, None], target_q.shape[:-1])  # (L, N)
        quats[i0:i1, idx] = quat_slerp(quats[i0:i1, idx], target_q, w)

    # Torso accents follow the leading side; "both" gestures lean as a right-hander would.
    lead = sides[0]
    accents = [(sided(spec.torso, lead), curves.w), (sided(spec.wave, lead), curves.w * curves.wave)]
    if ev.kind == BEAT:
        accents.append(({"Head": (0.0, 3.0, 0.0)}, curves.flick))  # a small nod on the beat
    for pose, weight in accents:
        torso = [k for k in pose if k in _TORSO]
        if torso:
            extra = euler_to_quat(weight[:, None, None] * _stack(pose, torso)[None], _ORDER)  # (L, n, 4)
            idx = SKELETON.indices(torso)
            quats[i0:i1, idx] = quat_multiply(quats[i0:i1, idx], extra)


class _Curves(NamedTuple):
    """Per-frame weights (L,) over one event: the blend, and the target's moving parts."""

    w: np.ndarray  # blend into the target: 0 -> 1 -> 0
    sweep: np.ndarray  # 1 -> 0 during the preparation
    wave: np.ndarray  # -1..1 oscillation after the stroke
    flick: np.ndarray  # beats: 0 -> peak at the stroke -> 0, scaled by style


def _beat_half(ev: GestureEvent, style: SpeakerStyle, rng: np.random.Generator) -> float:
    """Seconds a beat's flick takes to go down to its lowest point (and as long to come back).

    The arm first lifts during [start, stroke - half]: lifting and striking one after
    the other keeps the stroke the only still moment near `stroke`; retraction starts
    once the hand has bounced back, at stroke + half.
    """
    prep, after = ev.stroke - ev.start, ev.end - ev.stroke
    return min(0.15 / style.tempo * rng.uniform(0.85, 1.15), 0.6 * prep, 0.6 * after)


def _curves(
    tt: np.ndarray, ev: GestureEvent, spec: FamilyPose, style: SpeakerStyle, rng: np.random.Generator, half: float
) -> _Curves:
    """The event's weights at times `tt`; `half` is the beat's flick time (0 for other gestures)."""
    prep, after = ev.stroke - ev.start, ev.end - ev.stroke
    zeros = np.zeros_like(tt)
    if ev.kind == BEAT:
        w = _envelope(tt, ev.start, ev.stroke - half, ev.stroke + half, ev.end)
        flick = zeros
        if half > 1e-3:
            u = np.clip(np.abs(tt - ev.stroke) / half, 0.0, 1.0)
            size = style.amplitude * (0.5 + 0.5 * ev.intensity) * rng.uniform(0.85, 1.15)
            flick = size * 0.5 * (1.0 + np.cos(np.pi * u))  # the hand is lowest exactly at the stroke
        return _Curves(w, zeros, zeros, flick)

    # A short hold, so the retraction gets most of the time (the arm has far to go).
    w = _envelope(tt, ev.start, ev.stroke, ev.stroke + 0.25 * after, ev.end)
    # Sweeps hold their offset through the first half of the preparation, so the hands
    # visibly pass through it, then unwind to 0 by the stroke.
    half_prep = 0.5 * max(prep, 1e-9)
    sweep = 1.0 - _smoothstep((tt - ev.start - half_prep) / half_prep)
    wave = zeros
    if spec.wave_hz > 0:
        hz = spec.wave_hz * style.tempo * rng.uniform(0.85, 1.15)
        since = np.clip(tt - ev.stroke, 0.0, None)
        wave = np.sin(2 * np.pi * hz * since) * _smoothstep(since / 0.15)  # starts still at the stroke
    return _Curves(w, sweep, wave, zeros)


def _reach(
    ev: GestureEvent, spec: FamilyPose, style: SpeakerStyle, rng: np.random.Generator, half: float
) -> float:
    """How far from rest towards the target pose the arm goes (1 = the table's pose).

    Beats lift the hand only partway, and less when there is little time to lift
    (hands do not jump); contact poses are exact; other families grow with the
    speaker's amplitude and the event's intensity.
    """
    if ev.kind == BEAT:
        lift_time = ev.stroke - half - ev.start
        size = np.clip(0.15 + 0.3 * ev.intensity * style.amplitude, 0.1, 0.5)
        return float(size * min(1.0, lift_time / 0.2))
    if spec.contact:
        return 1.0
    size = np.sqrt(style.amplitude) * (0.85 + 0.2 * ev.intensity) * rng.uniform(0.95, 1.05)
    return float(np.clip(size, 0.85, 1.05))


# ---------------------------------------------------------------------- fingers


def _finger_life(quats: np.ndarray, t: np.ndarray, habits: _Habits, rng: np.random.Generator) -> None:
    """Multiply a slow curl (a few degrees, per finger) onto every finger joint, in place."""
    for side in "RL":
        sign = 1.0 if side == "R" else -1.0  # curling is +Z on the right, -Z on the left
        names: list[str] = []
        curls: list[np.ndarray] = []
        for letter, (joints, ratios) in FINGER_CHAINS.items():
            amp = habits.fidget * (3.0 if letter == "T" else 5.0)
            c = amp * _noise(t, rng, 0.15, 0.7)  # (T,)
            for joint, ratio in zip(joints, ratios):
                names.append(side + joint)
                curls.append(sign * ratio * c)
        euler = np.zeros((len(t), len(names), 3))
        euler[..., 0] = np.stack(curls, axis=1)  # (T, n) about Z
        idx = SKELETON.indices(names)
        quats[:, idx] = quat_multiply(quats[:, idx], euler_to_quat(euler, _ORDER))
