"""BEAT's per-take annotations: semantic gesture segments (.txt) and emotion (.csv).

The semantic score is what SemGes weights its loss with (1 + score per frame), so a
silently misread row changes training; every malformed row is an `AnnotationError`
with the file and 1-based line. We write exactly BEAT's layout so that synthetic
takes and real ones go through the same reader.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from semges_core.errors import AnnotationError
from semges_core.fileio import atomic_write

SEMANTIC_TYPES: dict[int, str] = {
    0: "none",
    1: "beat_align",
    2: "deictic_l",
    3: "deictic_m",
    4: "deictic_h",
    5: "iconic_l",
    6: "iconic_m",
    7: "iconic_h",
    8: "metaphoric_l",
    9: "metaphoric_m",
    10: "metaphoric_h",
    # Labels a few BEAT takes carry beside the ten gesture types.
    11: "habit",
    12: "need_cut",
}
_SEMANTIC_IDS = {name: i for i, name in SEMANTIC_TYPES.items()} | {"beat": 1}
# BEAT writes these two bare, without a number.
_UNNUMBERED = frozenset({"habit", "need_cut"})

EMOTIONS: tuple[str, ...] = (
    "neutral", "happiness", "anger", "sadness", "contempt", "surprise", "fear", "disgust"
)
_EMOTION_IDS = {name: i for i, name in enumerate(EMOTIONS)} | {"netural": 0}  # BEAT's own spelling
_BEAT_EMOTION_SPELLING = {0: "netural"}


@dataclass
class SemanticSegment:
    """A gesture of one semantic type between `start` and `end` seconds."""

    type_id: int
    type_name: str
    start: float
    end: float
    score: float
    keywords: str = ""


@dataclass
class EmotionSegment:
    emotion_id: int
    label: str
    start: float
    end: float
    score: float = 0.0


# ----------------------------------------------------------------------------- shared


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, text) of every non-blank line."""
    if not path.exists():
        raise AnnotationError(path, "no such file")
    if path.is_dir():
        raise AnnotationError(path, "is a directory, expected an annotation file")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise AnnotationError(path, f"cannot be read ({e.strerror or e})") from e
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise AnnotationError(path, f"is not valid UTF-8 (byte {e.start})", line=line) from e
    # Split on "\n" only: str.splitlines would also break at form feeds or U+2028 in keywords.
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if line.strip():
            yield number, line


def _number(path: Path, line: int, column: str, text: str) -> float:
    try:
        x = float(text)
    except ValueError:
        x = math.nan
    if not math.isfinite(x):
        raise AnnotationError(path, f"{column}: expected a number, found {text!r}", line=line)
    return x


def _span(path: Path, line: int, start_text: str, end_text: str) -> tuple[float, float]:
    start = _number(path, line, "start", start_text)
    end = _number(path, line, "end", end_text)
    if start < 0:
        raise AnnotationError(path, f"start {start} is negative", line=line)
    if end < start:
        raise AnnotationError(path, f"end {end} is before start {start}", line=line)
    return start, end


def _label(path: Path, line: int, field: str, ids: dict[str, int], kind: str) -> int:
    """The id of a BEAT label like "07_iconic_h"; the number is optional but must agree."""
    # At most 9 significant digits: a longer number names no label, and int() refuses past 4300.
    m = re.fullmatch(r"(?:0*(\d{1,9})_?)?([A-Za-z][A-Za-z_]*)?", field.strip())
    number, name = (m.group(1), m.group(2)) if m else (None, None)
    if name is not None:
        key = name.lower()
        if key not in ids:
            known = ", ".join(sorted(ids))
            raise AnnotationError(path, f"unknown {kind} {field!r}; expected one of {known}", line=line)
        if number is not None and int(number) != ids[key]:
            raise AnnotationError(
                path, f"{kind} {field!r}: number {number} does not match {name!r} ({ids[key]:02d})", line=line
            )
        return ids[key]
    valid = set(ids.values())
    if number is None or int(number) not in valid:
        raise AnnotationError(
            path, f"unknown {kind} {field!r}; expected a label like '07_iconic_h' or '00_neutral'", line=line
        )
    return int(number)


def _fmt(x: float) -> str:
    """Times as BEAT prints them: up to millisecond-and-below digits, no trailing zeros."""
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"annotation values must be finite, got {x}")
    text = f"{x:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


# ----------------------------------------------------------------------------- semantic


def read_semantic(path: str | Path) -> list[SemanticSegment]:
    """Rows `type  start  end  duration  score  [keywords]`, tab-separated, no header.

    Keywords may contain spaces and may be missing. The duration column is redundant
    (BEAT rounds it) and only checked to be a number.
    """
    path = Path(path)
    segments = []
    for line, text in _lines(path):
        fields = text.split("\t", 5) if "\t" in text else text.split(None, 5)
        if len(fields) < 5:
            raise AnnotationError(
                path,
                f"expected 5 or 6 tab-separated columns (type, start, end, duration, score[, keywords]), "
                f"found {len(fields)}",
                line=line,
            )
        type_id = _label(path, line, fields[0], _SEMANTIC_IDS, "semantic type")
        start, end = _span(path, line, fields[1], fields[2])
        _number(path, line, "duration", fields[3])
        score = _number(path, line, "score", fields[4])
        keywords = fields[5].strip() if len(fields) > 5 else ""
        segments.append(SemanticSegment(type_id, SEMANTIC_TYPES[type_id], start, end, score, keywords))
    return segments


def _semantic_row(seg: SemanticSegment) -> str:
    if seg.type_id not in SEMANTIC_TYPES:
        raise ValueError(f"unknown semantic type id {seg.type_id}; known ids are {sorted(SEMANTIC_TYPES)}")
    if float(seg.end) < float(seg.start):
        raise ValueError(f"semantic segment ends before it starts: {seg}")
    if any(c in seg.keywords for c in "\t\r\n"):
        raise ValueError(f"keywords may not contain tabs or line breaks: {seg.keywords!r}")
    name = SEMANTIC_TYPES[seg.type_id]
    label = name if name in _UNNUMBERED else f"{seg.type_id:02d}_{name}"
    # The score keeps Python's float spelling ("0.1", "1.0"), as in BEAT's files.
    score = repr(float(seg.score))
    cells = [label, _fmt(seg.start), _fmt(seg.end), _fmt(float(seg.end) - float(seg.start)), score]
    if seg.keywords.strip():
        cells.append(seg.keywords.strip())
    return "\t".join(cells)


def write_semantic(path: str | Path, segments: Iterable[SemanticSegment]) -> None:
    """BEAT's semantic .txt, one row per segment, replacing `path` only once complete."""
    rows = [_semantic_row(seg) for seg in segments]
    with atomic_write(path) as f:
        f.write("".join(row + "\n" for row in rows))


# ----------------------------------------------------------------------------- emotion


def read_emotion(path: str | Path) -> list[EmotionSegment]:
    """Rows `name,start,end,duration,score`, e.g. `00_netural,0,63.908,63.908,0`."""
    path = Path(path)
    segments = []
    for line, text in _lines(path):
        fields = [f.strip() for f in text.split(",")]
        if line == 1 and fields[0].lower() == "name":
            continue  # a header some tools add
        if len(fields) != 5:
            raise AnnotationError(
                path,
                f"expected 5 comma-separated columns (name, start, end, duration, score), found {len(fields)}",
                line=line,
            )
        emotion_id = _label(path, line, fields[0], _EMOTION_IDS, "emotion")
        start, end = _span(path, line, fields[1], fields[2])
        _number(path, line, "duration", fields[3])
        score = _number(path, line, "score", fields[4])
        segments.append(EmotionSegment(emotion_id, EMOTIONS[emotion_id], start, end, score))
    return segments


def write_emotion(path: str | Path, segments: Iterable[EmotionSegment], beat_spelling: bool = True) -> None:
    """BEAT's emotion .csv; neutral is spelt "netural" like BEAT's files unless told otherwise."""
    rows = []
    for seg in segments:
        if not 0 <= seg.emotion_id < len(EMOTIONS):
            raise ValueError(f"unknown emotion id {seg.emotion_id}; expected 0..{len(EMOTIONS) - 1}")
        if float(seg.end) < float(seg.start):
            raise ValueError(f"emotion segment ends before it starts: {seg}")
        name = _BEAT_EMOTION_SPELLING.get(seg.emotion_id, EMOTIONS[seg.emotion_id]) if beat_spelling else (
            EMOTIONS[seg.emotion_id]
        )
        cells = [f"{seg.emotion_id:02d}_{name}", _fmt(seg.start), _fmt(seg.end)]
        cells += [_fmt(float(seg.end) - float(seg.start)), _fmt(seg.score)]
        rows.append(",".join(cells))
    with atomic_write(path) as f:
        f.write("".join(row + "\n" for row in rows))
