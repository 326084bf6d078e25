"""Pose tables for SynthBEAT's motion: the rest pose, hand shapes and one target pose per gesture family.

Every entry is an Euler triple in degrees in BEAT's channel order "ZXY" (so the
triple is (Z, X, Y) and R = Rz @ Rx @ Ry, local to the parent joint), written for
the *right* side with the side letter dropped ("Arm" means RArm). `sided` mirrors
a table onto the left side. On BEAT's T-pose skeleton (palms down, right arm
along -X, facing +Z) the right side reads:

- Arm:  Z > 0 lowers the arm towards the body, Y > 0 swings it forwards, X twists it.
- Arm1: Y > 0 bends the elbow (forearm forwards in the T-pose), X twists the upper arm.
- Hand and fingers: Z > 0 flexes towards the palm (curls), Y > 0 spreads towards the thumb.
- Spine, neck, head: X > 0 bends forwards, Y > 0 turns to the left, Z > 0 tilts to the right.

The arm values were found by fitting elbow and wrist positions, the palm normal
and the finger direction to the intended gesture (a small least-squares fit
with joint limits), then rounded; tests/test_synth_gestures.py checks that each
family still reaches what it is meant to.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Euler = tuple[float, float, float]  # degrees, (Z, X, Y) as in BEAT's "ZXY" channels
Pose = dict[str, Euler]

ARM_JOINTS: tuple[str, ...] = ("Shoulder", "Arm", "Arm1", "Hand")
# finger -> (its joints from the palm out, how much each curls relative to the knuckle);
# the metacarpals (HandR, HandP, HandI, HandT1) only cup the palm a little.
FINGER_CHAINS: dict[str, tuple[tuple[str, ...], tuple[float, ...]]] = {
    "M": (("HandM1", "HandM2", "HandM3"), (1.0, 1.2, 0.7)),
    "R": (("HandR", "HandR1", "HandR2", "HandR3"), (0.15, 1.0, 1.2, 0.7)),
    "P": (("HandP", "HandP1", "HandP2", "HandP3"), (0.25, 1.0, 1.2, 0.7)),
    "I": (("HandI", "HandI1", "HandI2", "HandI3"), (0.1, 1.0, 1.2, 0.7)),
    "T": (("HandT1", "HandT2", "HandT3"), (0.4, 1.0, 0.8)),
}


def _curl(mcp: float, pip: float, dip: float, spread: float = 0.0) -> tuple[Euler, Euler, Euler]:
    """One finger's three curl joints (knuckle, middle, tip) with a sideways spread at the knuckle."""
    return (mcp, 0.0, spread), (pip, 0.0, 0.0), (dip, 0.0, 0.0)


def _hand(m, r, p, i, thumb: tuple[Euler, Euler, Euler]) -> Pose:
    """A hand shape from four finger curls (see `_curl`) and the thumb's three joints."""
    pose: Pose = {}
    for letter, (j1, j2, j3) in zip("MRPI", (m, r, p, i)):
        first = "HandM1" if letter == "M" else f"Hand{letter}1"
        pose[first], pose[f"Hand{letter}2"], pose[f"Hand{letter}3"] = j1, j2, j3
    pose["HandT1"], pose["HandT2"], pose["HandT3"] = thumb
    return pose


# Thumb tucked over the curled middle finger (fitted so its tip lands on the middle phalanx).
_THUMB_TUCKED = ((22.0, 3.0, -35.0), (11.0, 0.0, 0.0), (5.0, 0.0, 0.0))
_FIST_M, _FIST_R, _FIST_P = _curl(80, 95, 45), _curl(85, 95, 45, -4), _curl(85, 90, 45, -8)

HAND_SHAPES: dict[str, Pose] = {
    # Relaxed: a loose curl that grows towards the little finger, thumb resting by the index.
    "relaxed": _hand(_curl(12, 16, 8), _curl(15, 18, 10, -2), _curl(18, 20, 10, -5), _curl(8, 12, 6, 3),
                     ((10.0, 0.0, -10.0), (8.0, 0.0, 0.0), (6.0, 0.0, 0.0))),
    # Open: fingers straight and fanned, thumb out; presenting hands ("big", "all", "up").
    "open": _hand(_curl(3, 3, 2), _curl(4, 4, 2, -7), _curl(5, 5, 3, -16), _curl(2, 2, 1, 9),
                  ((-6.0, 0.0, 18.0), (0.0, 0.0, 0.0), (0.0, 0.0, 0.0))),
    # Flat: straight fingers held together, thumb alongside; a hand laid on or pressing something.
    "flat": _hand(_curl(3, 2, 1), _curl(3, 2, 1, 1), _curl(3, 2, 1, 3), _curl(2, 2, 1, -2),
                  ((4.0, 0.0, -6.0), (3.0, 0.0, 0.0), (2.0, 0.0, 0.0))),
    # Point: index straight, the others in a fist under the thumb.
    "point": _hand(_FIST_M, _FIST_R, _FIST_P, _curl(0, 2, 2, 2), _THUMB_TUCKED),
    # Touch: like point but the index a little bent, its tip resting on something (the temple).
    "touch": _hand(_FIST_M, _FIST_R, _FIST_P, _curl(12, 15, 8), _THUMB_TUCKED),
    # Pinch: thumb tip on index tip (fitted), the other fingers curled progressively.
    "pinch": _hand(_curl(40, 50, 25), _curl(55, 60, 30, -3), _curl(65, 65, 30, -6), _curl(50, 55, 30),
                   ((32.0, 3.0, -34.0), (11.0, 0.0, 0.0), (4.0, 0.0, 0.0))),
    # Beat: half open, the loose hand of a speaker marking rhythm.
    "beat": _hand(_curl(18, 20, 10), _curl(22, 24, 12, -3), _curl(26, 26, 12, -7), _curl(10, 12, 6, 4),
                  ((4.0, 0.0, 0.0), (6.0, 0.0, 0.0), (4.0, 0.0, 0.0))),
}


def rest_arm(posture: float) -> Pose:
    """The home position: elbows bent (45-80 degrees), forearms forward, hands in front between waist and chest.

    Speakers do not let their arms hang while they talk (McNeill's "gesture space"
    starts at the belly): between gestures the hands wait in front of the body.
    `posture` (0..1) moves the hands further out from the body and bends the elbows
    more, the two things that tell speakers' rest poses apart at a glance.
    """
    return {
        "Shoulder": (0.0, 0.0, 0.0),
        "Arm": (80.0 - 8.0 * posture, 5.0 - 8.0 * posture, 15.0 + 4.0 * posture),
        "Arm1": (0.0, 10.0, 58.0 + 10.0 * posture),
        "Hand": (0.0, 28.0, 0.0),
    }


# Other home positions a speaker moves between from one gesture unit to the next, as
# offsets from `rest_arm` (Kendon: the hands rest in several places over a talk).
HOME_OFFSETS: dict[str, Pose] = {
    "rest": {},
    "low": {"Arm": (3.0, -2.0, -4.0), "Arm1": (0.0, 0.0, -8.0), "Hand": (0.0, -3.0, 5.0)},
    "together": {"Arm": (-6.0, 10.0, 12.0), "Arm1": (0.0, 15.0, 6.0), "Hand": (5.0, 2.0, -10.0)},
    "chest": {"Arm": (-2.0, 0.0, 7.0), "Arm1": (0.0, 5.0, 22.0), "Hand": (-5.0, 7.0, 0.0)},
    "open": {"Arm": (-8.0, -10.0, 3.0), "Arm1": (0.0, -10.0, -3.0), "Hand": (0.0, -8.0, 0.0)},
}

def rest_torso(posture: float) -> Pose:
    """Upright spine with a slight forward lean and head held level; legs a little apart, toes out."""
    lean = 1.0 + 2.5 * posture
    return {
        "Spine": (0.0, lean * 0.5, 0.0),
        "Spine1": (0.0, lean * 0.3, 0.0),
        "Spine2": (0.0, lean * 0.2, 0.0),
        "Neck": (0.0, -lean * 0.6, 0.0),
        "Head": (0.0, 2.0, 0.0),
        "RUpLeg": (-3.0, 0.0, -6.0),
        "RLeg": (0.0, 0.0, 0.0),
        "RFoot": (3.0, 0.0, 0.0),
        "LUpLeg": (3.0, 0.0, 6.0),
        "LFoot": (-3.0, 0.0, 0.0),
    }


@dataclass(frozen=True)
class FamilyPose:
    """The target of one gesture family, written for a right-handed speaker.

    arm: the leading arm at the stroke. hand: its hand shape (HAND_SHAPES key).
    both: mirrored onto the other arm too (two-handed gestures). contact: the
    hand touches the body or the other hand, so style never scales the pose.
    torso: small spine/neck/head accents, mirrored with the leading side.
    sweep: an arm offset at `start` that decays to zero at the stroke, so the
    hands travel (e.g. from the middle outwards) while preparing.
    wave: an offset (arm or torso joints) that oscillates during the hold, at wave_hz.
    support: for one-handed families, where the other hand goes meanwhile (its own pose,
    written for the right side like `arm`), with `support_hand` its shape: smaller, in
    front of the body, never a mirrored copy of a raised or sideways arm.
    """

    arm: Pose
    hand: str
    both: bool = False
    contact: bool = False
    torso: Pose = field(default_factory=dict)
    sweep: Pose = field(default_factory=dict)
    wave: Pose = field(default_factory=dict)
    wave_hz: float = 0.0
    support: Pose = field(default_factory=dict)
    support_hand: str = "open"


# The other hand's part in one-handed gestures (bimanual asymmetry, Guiard 1987: the
# non-dominant hand frames what the dominant one does). Rise: it comes up in front of the
# chest, palm up, as the leading hand goes up. Present: open, palm up, in front of the waist.
SUPPORT_RISE: Pose = {"Shoulder": (-4, 0, -1), "Arm": (66, -4, 46), "Arm1": (-2, -22, 80), "Hand": (-5, -48, 0)}
SUPPORT_PRESENT: Pose = {"Shoulder": (-2, 0, 0), "Arm": (76, -12, 32), "Arm1": (0, -26, 48), "Hand": (-3, -55, 0)}

FAMILY_POSES: dict[str, FamilyPose] = {
    # Both arms spread wide at shoulder height, palms forwards, fingers fanned.
    "big": FamilyPose(
        arm={"Shoulder": (-6, 0, 0), "Arm": (14, -28, 23), "Arm1": (-4, -28, 18), "Hand": (-10, -36, 7)},
        hand="open", both=True, torso={"Spine2": (0, -3, 0), "Head": (0, -4, 0)},
    ),
    # Both hands close together in front of the chest, thumb and index pinching.
    "small": FamilyPose(
        arm={"Shoulder": (-3, 0, -1), "Arm": (68, 21, 25), "Arm1": (-1, 12, 103), "Hand": (-12, 37, -27)},
        hand="pinch", both=True, contact=True, torso={"Spine2": (0, 3, 0), "Head": (0, 6, 0)},
    ),
    # The leading hand raised above the head, palm up.
    "up": FamilyPose(
        arm={"Shoulder": (-8, 0, -1), "Arm": (-88, 45, 15), "Arm1": (-10, 70, 0), "Hand": (-75, 18, 35)},
        hand="open", torso={"Spine2": (-3, -2, 0), "Head": (0, -10, 0)},
        support=SUPPORT_RISE,
    ),
    # The leading hand pressing down in front of the belly, palm down.
    "down": FamilyPose(
        arm={"Shoulder": (0, 0, 0), "Arm": (68, 21, 19), "Arm1": (-10, 11, 66), "Hand": (-26, 56, 16)},
        hand="flat", torso={"Spine2": (0, 4, 0), "Head": (0, 8, 0)},
        support={"Shoulder": (0, 0, 0), "Arm": (74, 15, 24), "Arm1": (-6, 9, 52), "Hand": (-18, 50, 10)},
        support_hand="flat",
    ),
    # The leading hand laid flat on the chest.
    "self": FamilyPose(
        arm={"Shoulder": (-3, 0, -2), "Arm": (70, 33, 15), "Arm1": (2, 28, 133), "Hand": (18, -25, 10)},
        hand="flat", contact=True, torso={"Spine2": (0, 2, 0), "Head": (0, 4, 0)},
        support=SUPPORT_PRESENT,
    ),
    # Pointing forwards at the listener, index extended, the other fingers curled.
    "you": FamilyPose(
        arm={"Shoulder": (-3, 0, -3), "Arm": (66, 10, 48), "Arm1": (-4, -4, 74), "Hand": (8, 17, -32)},
        hand="point", torso={"Spine2": (0, 3, 0), "Head": (0, -2, 0)},
        support=SUPPORT_PRESENT,
    ),
    # Pointing out to the leading side, arm almost straight; the head turns with it.
    "there": FamilyPose(
        arm={"Shoulder": (0, -1, 0), "Arm": (27, -32, 17), "Arm1": (-7, -31, 15), "Hand": (-13, -20, -7)},
        hand="point", torso={"Spine1": (2, 0, -4), "Head": (0, 0, -22)},
        support=SUPPORT_PRESENT,
    ),
    # The index resting on the temple, head tilted a little towards the hand.
    "think": FamilyPose(
        arm={"Shoulder": (-5, 3, -14), "Arm": (34, 4, 50), "Arm1": (5, 0, 154), "Hand": (-47, -27, -13)},
        hand="touch", contact=True, torso={"Neck1": (4, 3, 0), "Head": (8, 4, -6)},
        support=SUPPORT_PRESENT,
    ),
    # Both hands swept outwards at waist height, palms up; they start close together.
    "all": FamilyPose(
        arm={"Shoulder": (1, 0, 0), "Arm": (68, -27, 22), "Arm1": (3, -32, 56), "Hand": (-3, -67, -4)},
        hand="open", both=True, torso={"Spine2": (0, -2, 0)},
        sweep={"Arm": (46, 38, -6), "Arm1": (0, 0, 27), "Hand": (0, 32, 0)},
    ),
    # Forearm up in front of the shoulder, palm out, waving side to side during the hold (with a head shake).
    "no": FamilyPose(
        arm={"Shoulder": (2, 0, 2), "Arm": (65, -18, 34), "Arm1": (-10, -15, 108), "Hand": (-42, 45, 35)},
        hand="flat", torso={"Head": (0, -3, 0)},
        wave={"Arm1": (18, 0, 0), "Hand": (0, 0, -12), "Head": (0, 0, 5)}, wave_hz=2.5,
        support={"Shoulder": (-4, 0, -1), "Arm": (80, 9, 26), "Arm1": (-3, 5, 62), "Hand": (-8, 40, 0)},
        support_hand="flat",
    ),
}

# Beats happen in a "ready" space in front of the belly (the hand moves there from home,
# partway by intensity): the hand lifts (forearm up, wrist extended) and strikes down so
# that it is lowest and still on the stressed syllable, then rebounds.
BEAT_ARM: Pose = {"Shoulder": (-5, 0, -1), "Arm": (82, 9, 16), "Arm1": (-3, 5, 82), "Hand": (-5, 38, 0)}
BEAT_LIFT: Pose = {"Shoulder": (-2, 0, 0), "Arm": (-7, 0, 6), "Arm1": (0, 14, 24), "Hand": (-18, 12, 0)}
# The strike at its lowest point: the elbow opens and the wrist flexes (scaled by style and intensity).
BEAT_FLICK: Pose = {"Arm1": (0, -4, -16), "Hand": (12, 0, -5)}


def sided(pose: Pose, side: str) -> Pose:
    """Joint names for one side ("R" or "L"); a left copy mirrors X (Z and Y angles flip sign).

    Torso joints (no side) are mirrored too when side is "L", so a head turn
    written towards the right hand turns towards the left one.
    """
    out: Pose = {}
    for name, (z, x, y) in pose.items():
        lateral = name.startswith(("Shoulder", "Arm", "Hand"))
        key = side + name if lateral else name
        out[key] = (z, x, y) if side == "R" else (-z, x, -y)
    return out
