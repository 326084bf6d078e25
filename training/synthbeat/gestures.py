"""SynthBEAT's motion side: gesture events plus a speaker style -> a BEAT-skeleton `Motion`.

Version 2 follows what gesture research describes (McNeill 1992, Kendon 2004) rather
than blending poses onto hanging arms, because a model trained on the motion can only
move as the motion does:

- Each arm has a home position in front of the body (elbows bent, hands between waist
  and chest) and several variants of it; a speaker changes home between gesture units.
- A gesture is a sequence of phases, written as key poses on the arm's own timeline:
  preparation (from wherever the hand is), stroke (the key pose, reached and still at
  the stroke time), post-stroke hold (drifting a little back), retraction. Gestures
  close together form a unit: the hand goes from one stroke to the next, through a
  partial retraction when there is time, and returns home only when the unit ends.
- Key poses are Euler angles per joint, joined by cubic Hermite curves (zero velocity
  at strokes, holds and home, Catmull-Rom through passing poses), so paths are round
  and have no seams; fingers ride on the same keys, so each gesture type has its hand
  shape (point, open palm, pinch, fist) and hands relax in between.
- Beats: the hand lifts and strikes down onto the stressed syllable (lowest and still
  there), by the dominant hand, both hands, or with an echo in the other hand.
- The other hand joins one-handed gestures: it moves part of the way into its family's
  support pose (up in front of the chest for "up", palm up in front of the waist for a
  point, a smaller press for "down"), the non-dominant hand of bimanual asymmetry
  (Guiard 1987). A speaker's share of it is a habit, so it follows the gesture rather
  than chance, and a model can learn it.
- On top: relaxed finger drift, slow arm drift, breathing, sway and weight shifts,
  torso lean and twist with the gestures, head nods on stressed words and head turns.

Randomness comes from independent streams: the speaker's habits (seeded by speaker
id, so a speaker looks alike across takes), and per take the idle motion, the events,
the home changes and the fingers, all derived from `seed`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from semges_core.motion.clip import Motion
from semges_core.motion.rotations import euler_to_quat
from semges_core.motion.skeleton import BEAT_ROTATION_ORDER, BEAT_SKELETON

from .events import BEAT, GestureEvent, SpeakerStyle
from .poses import (
    ARM_JOINTS,
    BEAT_ARM,
    BEAT_FLICK,
    BEAT_LIFT,
    FAMILY_POSES,
    FINGER_CHAINS,
    HAND_SHAPES,
    HOME_OFFSETS,
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
_TORSO = frozenset(("Hips", "Spine", "Spine1", "Spine2", "Spine3", "Neck", "Neck1", "Head"))

# Gesture units: a hand goes home only when the next gesture of that arm is further
# away than this (seconds, divided by the speaker's tempo); with more than PARTIAL_S
# between them it passes through a partial retraction on the way.
UNIT_GAP_S = 1.6
PARTIAL_S = 0.7
RETRACT_S = (0.45, 0.75)  # duration of a retraction to home
_MIN_KEY_GAP = 0.05  # seconds between keys of one arm; a later key replaces closer earlier ones
# Mean joint speed (deg/s) a preparation may ask of the arm; a cubic segment peaks at 1.5x.
# When a stroke comes too soon after the previous gesture's hold, the hold is cut.
_MAX_ARM_SPEED = 300.0


def _side_joints(side: str) -> list[str]:
    """Every joint of one arm and hand, shoulder to fingertips."""
    legs = tuple(side + part for part in ("UpLeg", "Leg", "Foot", "Toe"))
    return [n for n in SKELETON.names if n.startswith(side) and not n.startswith(legs)]


_SIDE_JOINTS = {s: _side_joints(s) for s in "RL"}
_SIDE_INDEX = {s: SKELETON.indices(_SIDE_JOINTS[s]) for s in "RL"}
_IS_ARM = np.array([n[1:] in ARM_JOINTS for n in _SIDE_JOINTS["R"]])  # (27,) the same order on both sides


def synthesize_motion(
    events: Sequence[GestureEvent],
    duration: float,
    fps: float,
    style: SpeakerStyle,
    seed: int,
    stresses: Sequence[float] = (),
) -> Motion:
    """The take's motion on BEAT_SKELETON: round(duration * fps) frames, deterministic in `seed`.

    `stresses` are times (seconds) of stressed syllables without a gesture of their
    own; the head nods on some of them (it always nods on beats and keyword strokes).
    """
    if not np.isfinite(duration) or duration < 0:
        raise ValueError(f"duration must be >= 0 seconds, got {duration!r}")
    if not np.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be positive, got {fps!r}")
    n_frames = int(round(duration * fps))
    t = np.arange(n_frames) / fps  # (T,) seconds
    _leading_side(style.handedness, 0)  # validates it
    events = sorted(events, key=lambda e: (e.start, e.stroke))
    idle_ss, event_ss, home_ss, finger_ss, head_ss = np.random.SeedSequence(seed).spawn(5)
    habits = _Habits(style)

    rest = _rest_pose(style, habits)
    euler, root = _idle(t, style, habits, np.random.default_rng(idle_ss), rest)  # (T, J, 3), (T, 3)

    # Which arm does what, then each arm's timeline of key poses.
    plans = _assign(events, style, habits, event_ss)
    home_rng = np.random.default_rng(home_ss)
    for side in "RL":
        arm = _ArmTimeline(side, style, habits, rest, home_rng)
        for ev, role, rng in plans[side]:
            arm.add(ev, role, rng, duration)
        arm.finish(duration)
        euler[:, _SIDE_INDEX[side]] = arm.evaluate(t)  # replaces the rest pose on the arm
        _add_waves(euler, t, plans[side], side, style)

    _arm_drift(euler, t, plans, habits, np.random.default_rng(idle_ss.spawn(1)[0]))
    _torso_accents(euler, t, plans, style, habits)
    _head(euler, t, events, stresses, style, habits, np.random.default_rng(head_ss))
    _finger_life(euler, t, habits, np.random.default_rng(finger_ss))
    _onto_generated_joints(euler, _stack(rest, SKELETON.names))
    quats = euler_to_quat(euler, _ORDER)
    return Motion(SKELETON, fps, root, quats)


# ---------------------------------------------------------------------- speaker


class _Habits:
    """A speaker's idiosyncrasies that no style field names, constant across their takes."""

    def __init__(self, style: SpeakerStyle) -> None:
        rng = np.random.default_rng([7919, style.speaker_id])  # a stream of its own, not the take's seed
        self.breath_hz = rng.uniform(0.2, 0.3)
        self.sway = rng.uniform(0.8, 1.25) * (0.8 + 0.2 * style.amplitude)
        self.head = rng.uniform(0.8, 1.25)
        self.curl = rng.uniform(0.8, 1.25)  # how curled the relaxed fingers are
        self.fidget = rng.uniform(0.8, 1.25)  # finger motion amplitude
        self.two_handed_beats = rng.uniform(0.6, 0.75)  # share of beats made with both hands
        self.echo = rng.uniform(0.8, 0.95)  # how much the other hand joins a one-handed beat
        # Home positions this speaker uses, most liked first.
        names = list(HOME_OFFSETS)
        self.homes = [names[0]] + list(rng.permutation(names[1:]))
        self.home_weights = np.array([0.35, 0.25, 0.18, 0.12, 0.10])
        self.support = rng.uniform(0.65, 0.85)  # how far the other hand joins a one-handed gesture


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
    for s in "RL":
        pose.update(sided(rest_arm(style.posture), s))
        pose.update(sided(_relaxed(habits), s))
    return pose


def _relaxed(habits: _Habits) -> Pose:
    return {k: tuple(habits.curl * v for v in e) for k, e in HAND_SHAPES["relaxed"].items()}


def _stack(pose: Pose, names: Sequence[str]) -> np.ndarray:
    """Euler triples of `names` as an (N, 3) array; joints missing from `pose` are 0."""
    return np.array([pose.get(n, (0.0, 0.0, 0.0)) for n in names], dtype=np.float64)


# ---------------------------------------------------------------------- planning


def _assign(
    events: Sequence[GestureEvent], style: SpeakerStyle, habits: _Habits, event_ss: np.random.SeedSequence
) -> dict[str, list[tuple[GestureEvent, str, np.random.Generator]]]:
    """Per arm, its events with a role: "lead" (the gesture), "both" (two-handed), "echo" (a weaker
    copy of the other hand's beat) or "support" (the other hand joins a one-handed gesture, smaller)."""
    plans: dict[str, list] = {"R": [], "L": []}
    one_handed = 0
    for ev, ss in zip(events, event_ss.spawn(len(events))):
        rng = np.random.default_rng(ss)
        side_rng = np.random.default_rng(ss.spawn(1)[0])
        if ev.kind == BEAT:
            share = 0.6 if style.handedness == "both" else habits.two_handed_beats
            if side_rng.random() < share:
                for s in "RL":
                    plans[s].append((ev, "both", rng))
                continue
            lead = _leading_side(style.handedness, one_handed)
            one_handed += 1
            other = "L" if lead == "R" else "R"
            plans[lead].append((ev, "lead", rng))
            plans[other].append((ev, "echo", np.random.default_rng(side_rng.integers(2**32))))
            continue
        spec = FAMILY_POSES[ev.kind]
        if spec.both:
            for s in "RL":
                plans[s].append((ev, "both", rng))
        else:
            lead = _leading_side(style.handedness, one_handed)
            one_handed += 1
            plans[lead].append((ev, "lead", rng))
            # The other hand does not wait still: it joins in, smaller (see _ArmTimeline._support).
            plans["L" if lead == "R" else "R"].append((ev, "support", np.random.default_rng(side_rng.integers(2**32))))
    return plans


class _ArmTimeline:
    """Key poses of one arm (27 joints, Euler degrees) in time, and their smooth interpolation."""

    def __init__(self, side: str, style: SpeakerStyle, habits: _Habits, rest: Pose, rng: np.random.Generator):
        self.side, self.style, self.habits, self.rng = side, style, habits, rng
        self.names = _SIDE_JOINTS[side]
        self.rest = _stack(rest, self.names)  # (27, 3)
        if style.handedness != "both" and side != _leading_side(style.handedness, 0):
            # The other arm waits lower, its elbow less bent (Y bends the elbow, mirrored on the left).
            self.rest[self.names.index(side + "Arm1"), _AXIS["Y"]] += 8.0 if side == "L" else -8.0
        self.home = self._new_home(first=True)
        self.times: list[float] = []
        self.poses: list[np.ndarray] = []
        self.still: list[bool] = []  # zero velocity at the key (else Catmull-Rom)
        self.kinds: list[str] = []  # "stroke", "hold", "home" or "via"
        self.last_end = 0.0  # when the last gesture's retraction would end
        self._key(0.0, self.home, True, "home")

    # --- keys

    def _key(self, time: float, pose: np.ndarray, still: bool, kind: str = "via") -> None:
        """Append a key; keys closer than _MIN_KEY_GAP before it give way (a later gesture takes over)."""
        while len(self.times) > 1 and self.times[-1] > time - _MIN_KEY_GAP:
            self._pop()
        if self.times and self.times[-1] > time - _MIN_KEY_GAP:  # only the first key is left, too close
            self.times[-1], self.poses[-1], self.still[-1] = min(self.times[-1], time), pose, still
            self.kinds[-1] = kind
            return
        self.times.append(float(time))
        self.poses.append(pose)
        self.still.append(still)
        self.kinds.append(kind)

    def _pop(self) -> None:
        self.times.pop(), self.poses.pop(), self.still.pop(), self.kinds.pop()

    def _make_room(self, time: float, pose: np.ndarray) -> None:
        """Cut the previous gesture's hold (and passing keys) while the arm could not reach `pose` by `time`."""
        while len(self.times) > 1 and self.kinds[-1] in ("hold", "via"):
            distance = float(np.abs(pose[_IS_ARM] - self.poses[-1][_IS_ARM]).max())
            if (time - self.times[-1]) * _MAX_ARM_SPEED >= distance:
                break
            self._pop()

    def _shrink_to_reach(self, time: float, target: np.ndarray) -> None:
        """Still too far to go in the time left (a stroke right after another): the arm part of
        `target` is made smaller, in place, as a speaker in a hurry does, rather than faster."""
        reachable = 0.8 * _MAX_ARM_SPEED * max(time - self.times[-1], 0.0)
        distance = float(np.abs(target[_IS_ARM] - self.poses[-1][_IS_ARM]).max())
        if distance > reachable:
            target[_IS_ARM] = self._blend(self.poses[-1][_IS_ARM], target[_IS_ARM], reachable / distance)

    def _new_home(self, first: bool = False) -> np.ndarray:
        h = self.habits
        name = h.homes[0] if first else h.homes[int(self.rng.choice(len(h.homes), p=h.home_weights))]
        pose = self.rest + _stack(sided(HOME_OFFSETS[name], self.side), self.names)
        jitter = self.rng.normal(0.0, 1.0, pose.shape) * np.where(_IS_ARM, 3.0, 0.0)[:, None]
        return pose + jitter

    def _blend(self, a: np.ndarray, b: np.ndarray, w: float) -> np.ndarray:
        return a + w * (b - a)

    # --- events

    def add(self, ev: GestureEvent, role: str, rng: np.random.Generator, duration: float) -> None:
        tempo = self.style.tempo
        current = self.poses[-1]
        gap = ev.start - self.times[-1]
        if len(self.times) > 1 and gap > UNIT_GAP_S / tempo:
            # The unit ends: retract home (maybe a new home), wait there.
            back = min(self.last_end, ev.start - 0.3)
            back = max(back, self.times[-1] + rng.uniform(*RETRACT_S))
            if back < ev.start - 0.1:
                self.home = self._new_home()
                self._key(back, self.home, True, "home")
        elif len(self.times) > 1 and gap > PARTIAL_S:
            # Partial retraction: halfway home, passing through, then on to the next stroke.
            mid = self.times[-1] + 0.5 * gap
            self._key(mid, self._blend(current, self.home, rng.uniform(0.35, 0.6)), False)
        if role == "support":
            self._support(ev, rng)
        elif ev.kind == BEAT:
            self._beat(ev, role, rng)
        else:
            self._keyword(ev, role, rng)
        self.last_end = max(ev.end, self.times[-1] + 0.1)

    def _keyword(self, ev: GestureEvent, role: str, rng: np.random.Generator) -> None:
        spec = FAMILY_POSES[ev.kind]
        target = _stack({**sided(HAND_SHAPES[spec.hand], self.side), **sided(spec.arm, self.side)}, self.names)
        jitter_deg = 1.5 if spec.contact else 3.0  # per arm channel; enough to vary, not to blur families
        target = target + rng.normal(0.0, 1.0, target.shape) * np.where(_IS_ARM, jitter_deg, 2.5)[:, None]
        reach = _reach(ev, spec, self.style, rng)
        target[_IS_ARM] = self.home[_IS_ARM] + reach * (target[_IS_ARM] - self.home[_IS_ARM])
        prep = ev.stroke - ev.start
        self._make_room(ev.stroke, target)
        self._shrink_to_reach(ev.stroke, target)
        if spec.sweep and prep > 0.2:  # the hands pass through the sweep's start on the way
            via = target + _stack(sided(spec.sweep, self.side), self.names)
            self._key(ev.start + 0.5 * prep, via, False)
        self._key(ev.stroke, target, True, "stroke")
        after = ev.end - ev.stroke
        hold = float(np.clip(rng.uniform(0.3, 0.45) * after, 0.1, 0.6))
        # Post-stroke hold: the hand stays, relaxing a little towards home.
        held = target.copy()
        if not spec.contact:
            held[_IS_ARM] = self._blend(target[_IS_ARM], self.home[_IS_ARM], rng.uniform(0.08, 0.18))
        self._key(ev.stroke + hold, held, True, "hold")

    def _support(self, ev: GestureEvent, rng: np.random.Generator) -> None:
        """The other hand's part in a one-handed gesture: its family's support pose (in front of
        the body, smaller than the stroke), a share of the way from home (the speaker's habit,
        larger for intense words), on the same stroke time."""
        spec = FAMILY_POSES[ev.kind]
        goal = _stack({**sided(HAND_SHAPES[spec.support_hand], self.side),
                       **sided(spec.support or BEAT_ARM, self.side)}, self.names)
        share = float(np.clip(self.habits.support * (0.8 + 0.4 * ev.intensity) * rng.uniform(0.9, 1.1), 0.4, 1.0))
        current = self.poses[-1]
        target = self._blend(self.home, goal, share)
        target[~_IS_ARM] = self._blend(current[~_IS_ARM], goal[~_IS_ARM], 0.5 * share)
        target += rng.normal(0.0, 1.0, target.shape) * np.where(_IS_ARM, 2.0, 1.5)[:, None]
        stroke = ev.stroke + rng.uniform(0.0, 0.06)  # the other hand trails a little
        self._make_room(stroke, target)
        self._shrink_to_reach(stroke, target)
        # It strikes with the stroke: lifted a little just before, like a beat (a co-stroke).
        half = min(0.18 / self.style.tempo, 0.5 * max(stroke - self.times[-1], 0.0))
        if half > 0.05:
            lift = 0.45 * self.style.amplitude * _stack(sided(BEAT_LIFT, self.side), self.names)
            self._key(stroke - half, target + lift, True, "stroke")
        self._key(stroke, target, True, "stroke")
        hold = float(np.clip(rng.uniform(0.25, 0.4) * (ev.end - ev.stroke), 0.1, 0.5))
        self._key(stroke + hold, self._blend(target, self.home, rng.uniform(0.15, 0.3)), True, "hold")

    def _beat(self, ev: GestureEvent, role: str, rng: np.random.Generator) -> None:
        style = self.style
        gain = self.habits.echo * rng.uniform(0.7, 1.1) if role == "echo" else 1.0
        prep, after = ev.stroke - ev.start, ev.end - ev.stroke
        half = min(0.2 / style.tempo * rng.uniform(0.85, 1.15), 0.6 * prep, 0.6 * after)
        # Where the beat happens: between home and the ready space, varied per beat.
        base = self.home.copy()
        ready = _stack(sided(BEAT_ARM, self.side), self.names)
        toward = float(np.clip(0.2 + 0.6 * ev.intensity * style.amplitude, 0.1, 0.8)) * gain
        base[_IS_ARM] = self._blend(self.home[_IS_ARM], ready[_IS_ARM], toward)
        wander = {"Arm": (6.0, 6.0, 8.0), "Arm1": (0.0, 8.0, 10.0), "Hand": (8.0, 10.0, 8.0)}
        base += gain * rng.normal(0.0, 1.0, base.shape) * _stack(sided(wander, self.side), self.names)
        size = style.amplitude * (0.6 + 0.6 * ev.intensity) * rng.uniform(0.85, 1.15) * gain
        shapes = HAND_SHAPES["beat"], HAND_SHAPES["open"]
        open_hand = _stack(sided({k: tuple(0.5 * (a + b) for a, b in zip(shapes[0][k], shapes[1][k]))
                                  for k in shapes[0]}, self.side), self.names)
        beat_hand = _stack(sided(HAND_SHAPES["beat"], self.side), self.names)
        fingers = ~_IS_ARM
        top = base + size * _stack(sided(BEAT_LIFT, self.side), self.names)
        low = base + size * _stack(sided(BEAT_FLICK, self.side), self.names)
        mix = 0.8 * gain
        top[fingers] = self._blend(base[fingers], open_hand[fingers], mix)
        low[fingers] = self._blend(base[fingers], beat_hand[fingers], mix)
        self._make_room(ev.stroke - half, top)
        if half > 1e-3:
            self._key(ev.stroke - half, top, True, "stroke")
        self._key(ev.stroke, low, True, "stroke")
        rebound = base + 0.35 * size * _stack(sided(BEAT_LIFT, self.side), self.names)
        self._key(ev.stroke + max(half, 0.08) * 1.3, rebound, False)

    def finish(self, duration: float) -> None:
        if len(self.times) > 1:
            back = max(self.last_end, self.times[-1] + RETRACT_S[0])
            if back < duration:
                self._key(back, self.home, True, "home")

    # --- interpolation

    def evaluate(self, t: np.ndarray) -> np.ndarray:
        """(T, 27, 3) Euler degrees: cubic Hermite through the keys, held before the first and after the last."""
        times = np.array(self.times)
        poses = np.stack(self.poses)  # (K, 27, 3)
        k = len(times)
        tangents = np.zeros_like(poses)
        for i in range(1, k - 1):
            if not self.still[i]:
                tangents[i] = (poses[i + 1] - poses[i - 1]) / (times[i + 1] - times[i - 1])
        seg = np.clip(np.searchsorted(times, t, side="right") - 1, 0, max(k - 2, 0))
        if k == 1:
            return np.broadcast_to(poses[0], (len(t),) + poses.shape[1:]).copy()
        h = times[seg + 1] - times[seg]
        u = np.clip((t - times[seg]) / h, 0.0, 1.0)[:, None, None]
        h = h[:, None, None]
        h00 = 2 * u**3 - 3 * u**2 + 1
        h10 = u**3 - 2 * u**2 + u
        h01 = -2 * u**3 + 3 * u**2
        h11 = u**3 - u**2
        return h00 * poses[seg] + h10 * h * tangents[seg] + h01 * poses[seg + 1] + h11 * h * tangents[seg + 1]


def _reach(ev: GestureEvent, spec: FamilyPose, style: SpeakerStyle, rng: np.random.Generator) -> float:
    """How far from home towards the target pose the arm goes (1 = the table's pose).

    Contact poses are exact; other families grow with the speaker's amplitude and
    the event's intensity, within a range that keeps each family recognisable.
    """
    if spec.contact:
        return 1.0
    size = np.sqrt(style.amplitude) * (0.85 + 0.2 * ev.intensity) * rng.uniform(0.95, 1.05)
    return float(np.clip(size, 0.85, 1.05))


def _envelope(t: np.ndarray, start: float, arrive: float, release: float, end: float) -> np.ndarray:
    """Blend weight: eases 0 -> 1 over [start, arrive], holds to `release`, eases back to 0 by `end`."""
    w = np.ones_like(t) if arrive - start <= 1e-9 else _smoothstep((t - start) / (arrive - start))
    w = np.where(t < start, 0.0, w)
    if end > release:
        w = np.where(t > release, 1.0 - _smoothstep((t - release) / (end - release)), w)
    return w


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _add_waves(euler: np.ndarray, t: np.ndarray, plan, side: str, style: SpeakerStyle) -> None:
    """Families that oscillate during the hold (a "no" wave): an offset on top of the keys."""
    idx = _SIDE_INDEX[side]
    for ev, role, rng in plan:
        if role not in ("lead", "both") or ev.kind == BEAT or not FAMILY_POSES[ev.kind].wave_hz:
            continue
        spec = FAMILY_POSES[ev.kind]
        hz = spec.wave_hz * style.tempo
        since = np.clip(t - ev.stroke, 0.0, None)
        w = _envelope(t, ev.stroke, ev.stroke + 0.15, ev.stroke + 0.6 * (ev.end - ev.stroke), ev.end)
        wave = np.sin(2 * np.pi * hz * since) * w  # (T,)
        offsets = _stack(sided({k: v for k, v in spec.wave.items() if k not in _TORSO}, side), _SIDE_JOINTS[side])
        euler[:, idx] += wave[:, None, None] * offsets[None]
        head = {k: v for k, v in sided(spec.wave, side).items() if k in _TORSO}
        for name, e in head.items():
            euler[:, SKELETON.index(name)] += wave[:, None] * np.array(e)[None]


# ---------------------------------------------------------------------- idle and drift


def _noise(t: np.ndarray, rng: np.random.Generator, f_lo: float, f_hi: float) -> np.ndarray:
    """Smooth noise (T,) with unit standard deviation: three sines at random rates and phases."""
    f = rng.uniform(f_lo, f_hi, 3)
    phase = rng.uniform(0.0, 2 * np.pi, 3)
    return np.sin(2 * np.pi * t[:, None] * f + phase).sum(-1) / np.sqrt(1.5)


# (joint, channel, amplitude in degrees, lowest and highest rate in Hz): drift of the whole body.
_IDLE_CHANNELS: tuple[tuple[str, str, float, float, float], ...] = (
    ("Spine", "Y", 3.5, 0.05, 0.3), ("Spine1", "X", 2.5, 0.1, 0.5), ("Spine1", "Z", 2.5, 0.1, 0.5),
    ("Spine2", "Y", 3.0, 0.1, 0.5), ("Spine3", "X", 1.5, 0.1, 0.6), ("Spine3", "Z", 1.2, 0.1, 0.6),
    ("Neck", "X", 4.0, 0.15, 0.7), ("Neck", "Y", 5.0, 0.1, 0.6), ("Neck", "Z", 2.5, 0.15, 0.7),
    ("Neck1", "X", 1.0, 0.1, 0.5), ("Neck1", "Y", 1.5, 0.1, 0.5),
    ("Head", "X", 2.0, 0.15, 0.6), ("Head", "Y", 2.5, 0.1, 0.5), ("Head", "Z", 1.5, 0.1, 0.5),
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
        scale = habits.head if joint in ("Neck", "Neck1", "Head") else habits.sway
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


# (joint, channel, amplitude in degrees, rates in Hz): the arms never freeze, also at home.
_ARM_DRIFT: tuple[tuple[str, str, float, float, float], ...] = (
    ("Arm", "Z", 3.0, 0.1, 0.6), ("Arm", "Y", 4.0, 0.1, 0.6), ("Arm", "X", 4.0, 0.1, 0.6),
    ("Arm1", "Y", 9.0, 0.2, 0.9), ("Arm1", "X", 11.0, 0.2, 0.9),
    ("Hand", "Z", 5.0, 0.15, 0.7), ("Hand", "Y", 4.0, 0.15, 0.7), ("Hand", "X", 8.0, 0.15, 0.7),
)


def _arm_drift(euler: np.ndarray, t: np.ndarray, plans, habits: _Habits, rng: np.random.Generator) -> None:
    """Slow wandering of each arm between gestures; it fades during a gesture, so strokes land
    where they are aimed (and still on the stressed syllable), and vanishes while a hand
    touches the body (contact gestures stay exact)."""
    for side in "RL":
        free = np.ones_like(t)
        for ev, role, _ in plans[side]:
            depth = 1.0 if ev.kind != BEAT and FAMILY_POSES[ev.kind].contact else 0.85
            w = _envelope(t, ev.start, ev.stroke, ev.stroke + 0.3 * (ev.end - ev.stroke), ev.end)
            free = np.minimum(free, 1.0 - depth * w)
        for joint, axis, amp, f_lo, f_hi in _ARM_DRIFT:
            sign = -1.0 if side == "L" and axis in "ZY" else 1.0
            drift = sign * amp * habits.sway * _noise(t, rng, f_lo, f_hi)
            euler[:, SKELETON.index(side + joint), _AXIS[axis]] += drift * free


# ---------------------------------------------------------------------- torso and head


def _torso_accents(euler: np.ndarray, t: np.ndarray, plans, style: SpeakerStyle, habits: _Habits) -> None:
    """Each gesture's torso accent (its family's lean, tilt or head turn), plus a twist
    towards the gesturing hand and a forward pulse on beats, spread over the spine."""
    seen: set[int] = set()
    for side in "RL":
        for ev, role, rng in plans[side]:
            if role in ("echo", "support"):
                continue
            key = id(ev)
            both = role == "both"
            if both and key in seen:
                continue
            seen.add(key)
            if ev.kind == BEAT:
                w = _envelope(t, ev.start, ev.stroke, ev.stroke + 0.05, ev.end)
                pulse = style.amplitude * (7.0 + 7.0 * ev.intensity) * habits.sway
                for name, share in (("Spine1", 0.3), ("Spine2", 0.4), ("Spine3", 0.3)):
                    euler[:, SKELETON.index(name), 1] += w * pulse * share
                if not both:
                    twist = (-1.0 if side == "R" else 1.0) * 2.5 * style.amplitude
                    euler[:, SKELETON.index("Spine2"), 2] += w * twist
                continue
            spec = FAMILY_POSES[ev.kind]
            w = _envelope(t, ev.start, ev.stroke, ev.stroke + 0.4 * (ev.end - ev.stroke), ev.end)
            lead = "R" if both else side
            for name, e in sided(spec.torso, lead).items():
                if name in _TORSO:
                    euler[:, SKELETON.index(name)] += w[:, None] * np.array(e)[None]
            lean = style.amplitude * (3.0 + 4.0 * ev.intensity)
            for name, share in (("Spine", 0.2), ("Spine1", 0.3), ("Spine2", 0.3), ("Spine3", 0.2)):
                euler[:, SKELETON.index(name), 1] += w * lean * share
            if not both:
                twist = (-1.0 if side == "R" else 1.0) * 4.0 * style.amplitude
                euler[:, SKELETON.index("Spine1"), 2] += w * 0.5 * twist
                euler[:, SKELETON.index("Spine2"), 2] += w * 0.5 * twist


_NOD_SHARES = (("Neck", 0.6), ("Neck1", 0.15), ("Head", 0.3))


def _head(
    euler: np.ndarray,
    t: np.ndarray,
    events: Sequence[GestureEvent],
    stresses: Sequence[float],
    style: SpeakerStyle,
    habits: _Habits,
    rng: np.random.Generator,
) -> None:
    """Nods on strokes and stressed syllables, and the head turning between listeners."""
    nods = [(ev.stroke, 0.6 + 0.6 * ev.intensity) for ev in events]
    nods += [(float(s), 0.5) for s in stresses if rng.random() < 0.6]
    pitch = np.zeros_like(t)
    for when, size in nods:
        amp = 11.0 * size * habits.head * rng.uniform(0.7, 1.3)
        u = (t - when + 0.2) / 0.5  # down over 0.2 s to the stress, back up over 0.3 s
        inside = (u > 0) & (u < 1)
        pitch += np.where(inside, amp * np.sin(np.pi * np.clip(u, 0, 1)) ** 2, 0.0)
    # Turns: the gaze moves to a new direction every few seconds (min-jerk-like transitions).
    yaw = np.zeros_like(t)
    roll = np.zeros_like(t)
    if len(t):
        when, y0, r0 = 0.0, 0.0, 0.0
        while when < t[-1]:
            hold = rng.uniform(1.2, 3.5) / style.tempo
            move = rng.uniform(0.35, 0.7)
            y1 = rng.uniform(-14.0, 14.0) * habits.head
            r1 = rng.uniform(-4.0, 4.0)
            s = _smoothstep((t - when - hold) / move)
            yaw += np.where(t >= when, (y1 - y0) * s, 0.0)
            roll += np.where(t >= when, (r1 - r0) * s, 0.0)
            y0, r0, when = y1, r1, when + hold + move
    for name, share in _NOD_SHARES:
        j = SKELETON.index(name)
        euler[:, j, 1] += share * pitch
        euler[:, j, 2] += share * yaw
        euler[:, j, 0] += share * roll


# Joints whose motion moves onto the nearest joint the model generates (BEAT's 47-joint upper
# body has Spine, Neck and Neck1 but not Spine1-3 or Head): motion left there is motion no
# model trained on the upper body can learn, and the torso and head would look keyed.
_MERGED_INTO = {"Spine1": "Spine", "Spine2": "Spine", "Spine3": "Spine", "Head": "Neck1"}


def _onto_generated_joints(euler: np.ndarray, rest: np.ndarray) -> None:
    """Add each merged joint's motion (its Euler offset from rest) to its target joint, in place.

    The offsets are a few degrees, where adding Euler angles composes the rotations
    closely; the merged joints keep their rest pose.
    """
    for src, dst in _MERGED_INTO.items():
        i, j = SKELETON.index(src), SKELETON.index(dst)
        euler[:, j] += euler[:, i] - rest[i]
        euler[:, i] = rest[i]


# ---------------------------------------------------------------------- fingers


def _finger_life(euler: np.ndarray, t: np.ndarray, habits: _Habits, rng: np.random.Generator) -> None:
    """Relaxed finger drift: a curl (and a little spread) per finger, never frozen, also during holds.

    Most of it is shared by the fingers of a hand (a relaxed hand opens and closes as a
    whole, the synergy that dominates real finger motion), a smaller part is each finger's own.
    The wrist moves with the shared part (it extends as the fingers curl: the tenodesis
    coupling of a relaxed hand), which also lets a hand prior encode wrist and fingers as one.
    """
    for side in "RL":
        sign = 1.0 if side == "R" else -1.0  # curling is +Z on the right, -Z on the left
        shared = habits.fidget * 11.0 * _noise(t, rng, 0.3, 1.2)  # (T,)
        wrist = SKELETON.index(side + "Hand")
        euler[:, wrist, 0] -= sign * 0.8 * shared  # extension (-Z on the right) with the curl
        euler[:, wrist, 1] += 0.4 * shared  # and a little turn of the palm
        for letter, (joints, ratios) in FINGER_CHAINS.items():
            amp = habits.fidget * (4.0 if letter == "T" else 6.0)
            curl = amp * _noise(t, rng, 0.3, 1.3) + (0.6 if letter == "T" else 1.0) * shared  # (T,)
            spread = 0.5 * amp * _noise(t, rng, 0.2, 0.8)
            for joint, ratio in zip(joints, ratios):
                j = SKELETON.index(side + joint)
                euler[:, j, 0] += sign * ratio * curl
                euler[:, j, 2] += sign * 0.3 * ratio * spread
