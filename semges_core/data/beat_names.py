"""BEAT's take names and the facts encoded in them: speaker, language, emotion, split.

A BEAT take is named `<speaker>_<name>_<type>_<start>_<end>`, e.g. `2_scott_0_1_1`:
speaker id (1-based), the speaker's first name, the take type (0 English speech,
1 English conversation, 2..7 other languages) and the first and last speech or
conversation id the take covers (BEAT's takes cover one id, so start == end).
SynthBEAT uses the same names.

Only English takes (types 0 and 1) are used: the split and the emotion rule below
are defined for them, and the text features are English FastText vectors.
`split_of` raises `DatasetError` for other languages; `dataset.index_dataset`
skips them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from semges_core.formats.annotations import EMOTIONS
from semges_core.errors import DatasetError

__all__ = [
    "BEAT_16H_SPEAKERS", "EMOTIONS", "ENGLISH_CONVERSATION", "ENGLISH_SPEECH", "SPLITS",
    "TakeId", "emotion_of", "is_english", "parse", "split_of",
]

ENGLISH_SPEECH = 0
ENGLISH_CONVERSATION = 1

# Speakers of the "BEAT-16h" benchmark (the paper's table): 4 hours each.
BEAT_16H_SPEAKERS: tuple[int, ...] = (2, 4, 6, 8)

SPLITS: tuple[str, ...] = ("train", "val", "test")

# Inclusive speech-id ranges of each emotion in BEAT's English speech takes.
_EMOTION_RANGES: tuple[tuple[int, int, int], ...] = (
    (0, 64, 0),
    (65, 72, 1),
    (73, 80, 2),
    (81, 86, 3),
    (87, 94, 4),
    (95, 102, 5),
    (103, 110, 6),
    (111, 118, 7),
)

# The English split of the public BEAT benchmark, keyed by (take type, id).
_TEST: frozenset[tuple[int, int]] = frozenset(
    [(0, i) for i in range(1, 9)]
    + [(0, i) for i in (65, 73, 81, 87, 95, 103, 111)]
    + [(1, 1)]
)
_VAL: frozenset[tuple[int, int]] = frozenset(
    [(0, i) for i in range(57, 65)]
    + [(0, i) for i in (72, 80, 86, 94, 102, 110, 118)]
    + [(1, 12)]
)

# The name field holds no underscore (it separates the fields); BEAT's names are
# lower-case letters, but anything alphanumeric (and '-') is accepted.
_STEM = re.compile(r"^(\d+)_([A-Za-z0-9-]+)_(\d+)_(\d+)_(\d+)$")


@dataclass(frozen=True)
class TakeId:
    """The parsed name of one take."""

    speaker_id: int
    speaker_name: str
    take_type: int
    start_id: int
    end_id: int

    @property
    def sort_key(self) -> tuple[int, int, int, int, str]:
        """Speaker, type, then ids numerically (so 0_2 comes before 0_10)."""
        return (self.speaker_id, self.take_type, self.start_id, self.end_id, self.speaker_name)

    @property
    def stem(self) -> str:
        return f"{self.speaker_id}_{self.speaker_name}_{self.take_type}_{self.start_id}_{self.end_id}"

    @classmethod
    def parse(cls, stem: str) -> "TakeId":
        """Parse `2_scott_0_1_1`; a `DatasetError` says what a BEAT name looks like otherwise."""
        m = _STEM.match(stem)
        if m is None:
            raise DatasetError(
                f"take name {stem!r} does not follow BEAT's <speaker>_<name>_<type>_<start>_<end> "
                "(e.g. 2_scott_0_1_1: speaker id, name without '_', take type, first and last id)"
            )
        speaker, name, kind, start, end = m.groups()
        take = cls(
            speaker_id=int(speaker), take_type=int(kind), start_id=int(start), end_id=int(end), speaker_name=name
        )
        if take.stem != stem:
            raise DatasetError(f"take name {stem!r}: write numbers without leading zeros ({take.stem})")
        if take.speaker_id < 1:
            raise DatasetError(f"take name {stem!r}: speaker ids start at 1")
        if take.end_id < take.start_id:
            raise DatasetError(f"take name {stem!r}: the last id ({take.end_id}) is before the first ({take.start_id})")
        return take

    def __str__(self) -> str:
        return self.stem


def parse(stem: str) -> TakeId:
    """Module-level shorthand for `TakeId.parse`."""
    return TakeId.parse(stem)


def is_english(take: TakeId) -> bool:
    return take.take_type in (ENGLISH_SPEECH, ENGLISH_CONVERSATION)


def emotion_of(take: TakeId) -> int:
    """Emotion index (see `EMOTIONS`) that BEAT assigns a take by its speech id.

    Conversations (and other languages, whose ids follow another scheme) are neutral.
    The take's emotion `.csv`, when present, takes precedence frame by frame; this is
    the fallback and the default outside its intervals.
    """
    if take.take_type != ENGLISH_SPEECH:
        return 0
    for lo, hi, emotion in _EMOTION_RANGES:
        if lo <= take.start_id <= hi:
            return emotion
    raise DatasetError(f"take {take.stem}: English speech ids run from 1 to 118, got {take.start_id}")


def split_of(take: TakeId) -> str:
    """"train", "val" or "test" by the BEAT benchmark's English rule (on the take's first id).

    Raises `DatasetError` for a non-English take: the rule does not cover them.
    """
    if not is_english(take):
        raise DatasetError(
            f"take {take.stem}: type {take.take_type} is not English (0 speech, 1 conversation); "
            "the BEAT split covers English takes only"
        )
    key = (take.take_type, take.start_id)
    if key in _TEST:
        return "test"
    if key in _VAL:
        return "val"
    return "train"
