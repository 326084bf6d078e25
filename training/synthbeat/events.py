"""What the speech side tells the motion side: who is speaking and which gestures go where."""

from __future__ import annotations

from dataclasses import dataclass

# Keyword families: each has one distinct gesture shape. The lexicon maps words to
# these names; the motion synthesizer maps these names to poses.
GESTURE_FAMILIES: tuple[str, ...] = (
    "big",    # arms spread wide (iconic)
    "small",  # hands close together, fingers pinching (iconic)
    "up",     # a hand raised high, palm up (iconic / metaphoric)
    "down",   # a hand pressing down, palm down (iconic / metaphoric)
    "self",   # a hand to the chest (deictic)
    "you",    # pointing forward with the index finger (deictic)
    "there",  # pointing out to the side (deictic)
    "think",  # a hand raised to the temple (metaphoric)
    "all",    # both hands sweeping outwards, palms up (metaphoric)
    "no",     # a hand waving side to side, palm out (metaphoric)
)
BEAT = "beat"  # a short rhythmic stroke on a stressed word, not tied to meaning


@dataclass(frozen=True)
class SpeakerStyle:
    """A synthetic speaker: voice for espeak-ng and the personal style of the gestures."""

    speaker_id: int      # BEAT's 1-based speaker id (first field of the file stem)
    name: str            # second field of the file stem
    voice: str           # espeak-ng voice, e.g. "en-us+m3"
    words_per_minute: int
    pitch: int           # espeak-ng -p, 0..99
    handedness: str      # "right", "left" or "both": which hand leads one-handed gestures
    amplitude: float     # scales gesture size, ~0.7..1.3
    tempo: float         # scales how many beat gestures and how fast they move, ~0.7..1.3
    posture: float       # rest pose variation: how far the arms hang from the body, 0..1


@dataclass(frozen=True)
class GestureEvent:
    """One gesture: preparation from `start`, stroke apex at `stroke`, retraction until `end` (seconds)."""

    kind: str            # BEAT or one of GESTURE_FAMILIES
    start: float
    stroke: float
    end: float
    intensity: float     # 0..1, scales the pose and maps to the semantic level l/m/h
    word: str            # the word the stroke is aligned to

    def __post_init__(self) -> None:
        if not (self.start <= self.stroke <= self.end):
            raise ValueError(f"gesture {self.kind!r} on {self.word!r}: need start <= stroke <= end")
        if self.kind != BEAT and self.kind not in GESTURE_FAMILIES:
            raise ValueError(f"unknown gesture kind {self.kind!r}")
