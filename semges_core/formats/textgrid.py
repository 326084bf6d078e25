"""Praat TextGrid files: our own reader and writer, and the word list taken from them.

A third-party parser would do, but its errors say neither the file nor the line, and
word alignments are what users most often get wrong (hand-edited in Praat, exported by
another aligner, saved as UTF-16). Both Praat text formats, long ("item [1]:", "xmin =")
and short (bare values), reduce to the same stream of values, so one parser reads both:
in the long format the values are the tokens after "=" and the "<exists>" flag, and the
label before "=" is checked, which catches missing or shuffled lines early.
"""

from __future__ import annotations

import bisect
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, NamedTuple

from semges_core.errors import TranscriptError
from semges_core.fileio import atomic_write


@dataclass
class Interval:
    xmin: float
    xmax: float
    text: str


@dataclass
class Point:
    time: float
    mark: str


@dataclass
class IntervalTier:
    name: str
    xmin: float
    xmax: float
    intervals: list[Interval] = field(default_factory=list)


@dataclass
class PointTier:
    """Praat's "TextTier": marks at instants rather than spans."""

    name: str
    xmin: float
    xmax: float
    points: list[Point] = field(default_factory=list)


Tier = IntervalTier | PointTier


@dataclass
class TextGrid:
    xmin: float
    xmax: float
    tiers: list[Tier] = field(default_factory=list)


@dataclass(frozen=True)
class Word:
    """One spoken word and when it is said, in seconds."""

    start: float
    end: float
    text: str


# ----------------------------------------------------------------------------- reading

_STRING, _FLAG, _BARE, _EQUALS = "string", "flag", "bare", "="


class _Token(NamedTuple):
    kind: str
    text: str
    line: int


class _Value(NamedTuple):
    kind: str  # _STRING, _FLAG or _BARE (a number, if the file is right)
    text: str
    line: int
    label: str | None  # the name before "=" in the long format, None in the short one


def _decode(path: Path, raw: bytes) -> str:
    """UTF-16 when there is a byte-order mark (Praat's choice for non-ASCII), else UTF-8."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding, body = "utf-16", raw
    elif raw.startswith(b"\xef\xbb\xbf"):
        encoding, body = "utf-8", raw[3:]
    else:
        encoding, body = "utf-8", raw
    try:
        text = body.decode(encoding)
    except UnicodeDecodeError as e:
        before = body[: e.start].decode(encoding, errors="replace")
        line = before.replace("\r\n", "\n").replace("\r", "\n").count("\n") + 1
        raise TranscriptError(
            path, f"is not valid {encoding.upper()} (byte {e.start}); save it as UTF-8 or UTF-16", line=line
        ) from e
    return text.replace("\r\n", "\n").replace("\r", "\n")


# A quoted text that swallowed whole "label = value" lines lost its closing quote.
_SWALLOWED_LINE = re.compile(  # [^\S\n]: "\n\s*" would try every split of a run of blank lines
    r"\n[^\S\n]*(?:xmin|xmax|text|mark|number|time|name|class|size|intervals|points|item)\b[^\n]*="
)


# Every character but whitespace starts one of these, so finditer skips only whitespace;
# a quote that opens no complete string is "open".
_TOKEN = re.compile(
    r'(?P<comment>![^\n]*)|(?P<string>"[^"]*(?:""[^"]*)*")|(?P<open>")|(?P<equals>=)|(?P<bare>[^\s="]+)'
)


def _tokens(path: Path, text: str) -> Iterator[_Token]:
    """Quoted strings ("" is a quote inside), <flags>, "=", and bare words; "!" starts a comment."""
    newlines = [m.start() for m in re.finditer("\n", text)]
    for m in _TOKEN.finditer(text):
        kind, chunk = m.lastgroup, m.group()
        line = bisect.bisect_right(newlines, m.start()) + 1
        if kind == "open":
            raise TranscriptError(path, "file ends inside a quoted text (missing closing quote)", line=line)
        if kind == "string":
            if "\n" in chunk and _SWALLOWED_LINE.search(chunk):
                raise TranscriptError(
                    path, "quoted text runs on into the following lines (missing closing quote?)", line=line
                )
            yield _Token(_STRING, chunk[1:-1].replace('""', '"'), line)
        elif kind == "equals":
            yield _Token(_EQUALS, chunk, line)
        elif kind == "bare":
            is_flag = chunk.startswith("<") and chunk.endswith(">")
            yield _Token(_FLAG if is_flag else _BARE, chunk, line)


def _values(tokens: list[_Token], long_format: bool) -> list[_Value]:
    if not long_format:
        return [_Value(t.kind, t.text, t.line, None) for t in tokens]
    values = []
    for k, t in enumerate(tokens):
        if t.kind == _FLAG:
            values.append(_Value(t.kind, t.text, t.line, None))
        elif t.kind == _EQUALS and k + 1 < len(tokens):
            label = tokens[k - 1].text if k > 0 and tokens[k - 1].kind == _BARE else None
            nxt = tokens[k + 1]
            # The line of "=", not of the value: a missing value must not blame the next line.
            values.append(_Value(nxt.kind, nxt.text, t.line, label))
    return values


class _Reader:
    """Walks the value stream, knowing what each value should be, to word errors well."""

    def __init__(self, path: Path, values: list[_Value], last_line: int) -> None:
        self.path, self.values, self.pos, self.last_line = path, values, 0, last_line

    def error(self, message: str, line: int | None = None) -> TranscriptError:
        return TranscriptError(self.path, message, line=line)

    def take(self, what: str, labels: tuple[str, ...]) -> _Value:
        if self.pos >= len(self.values):
            raise self.error(f"file ends early: expected {what}", line=self.last_line)
        v = self.values[self.pos]
        self.pos += 1
        if v.label is not None and v.label.lower() not in labels:
            raise self.error(f"expected {what} ('{labels[0]} = ...'), found '{v.label} = ...'", line=v.line)
        return v

    def number(self, what: str, labels: tuple[str, ...]) -> tuple[float, int]:
        v = self.take(what, labels)
        try:
            x = float(v.text) if v.kind == _BARE else math.nan
        except ValueError:
            x = math.nan
        if not math.isfinite(x):
            shown = f'"{v.text}"' if v.kind == _STRING else v.text
            raise self.error(f"expected a number for {what}, found {shown}", line=v.line)
        return x, v.line

    def count(self, what: str, labels: tuple[str, ...]) -> int:
        v = self.take(what, labels)
        if v.kind != _BARE or not (v.text.isascii() and v.text.isdigit()):
            raise self.error(f"expected a whole number for {what}, found {v.text[:40]!r}", line=v.line)
        if len(v.text) > 18:  # more than any file holds; int() refuses past 4300 digits anyway
            raise self.error(f"{what} is too large ({v.text[:20]}..., {len(v.text)} digits)", line=v.line)
        return int(v.text)

    def string(self, what: str, labels: tuple[str, ...]) -> str:
        v = self.take(what, labels)
        if v.kind != _STRING:
            raise self.error(f"expected a quoted text for {what}, found {v.text!r}", line=v.line)
        return v.text

    def time(self, what: str, labels: tuple[str, ...]) -> tuple[float, int]:
        """A number of seconds from the start of the recording, so never negative."""
        x, line = self.number(what, labels)
        if x < 0:
            raise self.error(f"{what} is negative ({x} s); times count from the start of the recording", line=line)
        return x, line

    def span(self, what: str) -> tuple[float, float, int]:
        """(xmin, xmax, line of xmin)."""
        xmin, line = self.number(f"xmin of {what}", ("xmin",))
        xmax, xmax_line = self.number(f"xmax of {what}", ("xmax",))
        if xmax < xmin:
            raise self.error(f"{what} ends before it starts (xmin {xmin} > xmax {xmax})", line=xmax_line)
        if xmin < 0:
            raise self.error(f"{what} starts at a negative time ({xmin} s)", line=line)
        return xmin, xmax, line


# Aligners print rounded times, so touching intervals may differ in the last digit.
_OVERLAP_TOLERANCE = 1e-6


def _check_no_overlap(r: _Reader, what: str, intervals: list[Interval], lines: list[int]) -> None:
    """Praat's interval tiers never overlap; a file where they do was edited or exported wrongly."""
    order = sorted(range(len(intervals)), key=lambda i: (intervals[i].xmin, intervals[i].xmax))
    for i, k in zip(order, order[1:]):
        a, b = intervals[i], intervals[k]
        if b.xmin < a.xmax - _OVERLAP_TOLERANCE:
            raise r.error(
                f"{what}: intervals overlap: {a.text!r} [{a.xmin}, {a.xmax}] and {b.text!r} [{b.xmin}, {b.xmax}]",
                line=lines[max(i, k)],
            )


def _parse(path: Path, text: str) -> TextGrid:
    tokens = list(_tokens(path, text))
    if not tokens:
        raise TranscriptError(path, "is empty, expected a Praat TextGrid")
    last_line = text.count("\n") + (0 if text.endswith("\n") else 1)

    # Header: File type = "ooTextFile" / Object class = "TextGrid" (same in both formats).
    header = [t for t in tokens[:8] if t.kind == _STRING]
    if len(header) < 2 or not header[0].text.startswith("ooTextFile"):
        binary = header and header[0].text.startswith("ooBinaryFile")
        hint = "binary TextGrids are not supported; save it as a text file in Praat" if binary else (
            'expected a Praat text file starting with File type = "ooTextFile"'
        )
        raise TranscriptError(path, hint, line=tokens[0].line)
    if (header[1].text.split() or [""])[0] != "TextGrid":
        raise TranscriptError(path, f'is a Praat "{header[1].text}", not a TextGrid', line=header[1].line)
    body = tokens[tokens.index(header[1]) + 1 :]
    long_format = bool(body) and body[0].kind == _BARE and len(body) > 1 and body[1].kind == _EQUALS
    r = _Reader(path, _values(body, long_format), last_line)

    xmin, xmax, _ = r.span("the TextGrid")
    exists = r.take("'<exists>' or '<absent>' (tiers?)", ("tiers?",))
    if exists.kind != _FLAG or exists.text not in ("<exists>", "<absent>"):
        raise r.error(f"expected '<exists>' or '<absent>' for the tiers, found {exists.text!r}", exists.line)
    n_tiers = r.count("the number of tiers", ("size",)) if exists.text == "<exists>" else 0

    tiers: list[Tier] = []
    for k in range(1, n_tiers + 1):
        cls_value = r.take(f"the class of tier {k}", ("class",))
        if cls_value.kind != _STRING or cls_value.text not in ("IntervalTier", "TextTier"):
            found = cls_value.text
            raise r.error(f'tier {k}: expected class "IntervalTier" or "TextTier", found {found!r}', cls_value.line)
        name = r.string(f"the name of tier {k}", ("name",))
        what = f"tier {k} ({name!r})"
        t_min, t_max, _ = r.span(what)
        if cls_value.text == "IntervalTier":
            n = r.count(f"the number of intervals in {what}", ("size",))
            intervals, lines = [], []
            for i in range(1, n + 1):
                a, b, line = r.span(f"interval {i} of {what}")
                intervals.append(Interval(a, b, r.string(f"the text of interval {i} of {what}", ("text",))))
                lines.append(line)
            _check_no_overlap(r, what, intervals, lines)
            tiers.append(IntervalTier(name, t_min, t_max, intervals))
        else:
            n = r.count(f"the number of points in {what}", ("size",))
            points = []
            for i in range(1, n + 1):
                time, _ = r.time(f"the time of point {i} of {what}", ("number", "time"))
                points.append(Point(time, r.string(f"the mark of point {i} of {what}", ("mark", "text"))))
            tiers.append(PointTier(name, t_min, t_max, points))

    if r.pos < len(r.values):
        extra = r.values[r.pos]
        raise r.error(
            f"unexpected {extra.text!r} after the last of {n_tiers} tiers (is a count too small?)", extra.line
        )
    return TextGrid(xmin, xmax, tiers)


def read_textgrid(path: str | Path) -> TextGrid:
    """Read a long- or short-format TextGrid in UTF-8 (BOM optional) or UTF-16 with a BOM."""
    path = Path(path)
    if not path.exists():
        raise TranscriptError(path, "no such file")
    if path.is_dir():
        raise TranscriptError(path, "is a directory, expected a TextGrid file")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise TranscriptError(path, f"cannot be read ({e.strerror or e})") from e
    return _parse(path, _decode(path, raw))


# ----------------------------------------------------------------------------- writing


def _num(x: float) -> str:
    """Shortest text that reads back to the same float; "0" rather than "0.0", as Praat writes."""
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"TextGrid times must be finite, got {x}")
    text = repr(x)
    return text[:-2] if text.endswith(".0") else text


def _str(s: str) -> str:
    return '"' + str(s).replace('"', '""') + '"'


def _check_span(what: str, xmin: float, xmax: float) -> None:
    if float(xmax) < float(xmin):
        raise ValueError(f"{what} ends before it starts (xmin {xmin} > xmax {xmax})")


def write_textgrid(path: str | Path, tg: TextGrid) -> None:
    """Write Praat's long text format in UTF-8, replacing `path` only once complete."""
    _check_span("the TextGrid", tg.xmin, tg.xmax)
    out = [
        'File type = "ooTextFile"',
        'Object class = "TextGrid"',
        "",
        f"xmin = {_num(tg.xmin)} ",
        f"xmax = {_num(tg.xmax)} ",
    ]
    if not tg.tiers:
        out.append("tiers? <absent> ")
    else:
        out += ["tiers? <exists> ", f"size = {len(tg.tiers)} ", "item []: "]
    for k, tier in enumerate(tg.tiers, start=1):
        _check_span(f"tier {tier.name!r}", tier.xmin, tier.xmax)
        out.append(f"    item [{k}]:")
        if isinstance(tier, IntervalTier):
            out += [
                '        class = "IntervalTier" ',
                f"        name = {_str(tier.name)} ",
                f"        xmin = {_num(tier.xmin)} ",
                f"        xmax = {_num(tier.xmax)} ",
                f"        intervals: size = {len(tier.intervals)} ",
            ]
            for i, iv in enumerate(tier.intervals, start=1):
                _check_span(f"interval {i} of tier {tier.name!r}", iv.xmin, iv.xmax)
                out += [
                    f"        intervals [{i}]:",
                    f"            xmin = {_num(iv.xmin)} ",
                    f"            xmax = {_num(iv.xmax)} ",
                    f"            text = {_str(iv.text)} ",
                ]
        elif isinstance(tier, PointTier):
            out += [
                '        class = "TextTier" ',
                f"        name = {_str(tier.name)} ",
                f"        xmin = {_num(tier.xmin)} ",
                f"        xmax = {_num(tier.xmax)} ",
                f"        points: size = {len(tier.points)} ",
            ]
            for i, p in enumerate(tier.points, start=1):
                out += [
                    f"        points [{i}]:",
                    f"            number = {_num(p.time)} ",
                    f"            mark = {_str(p.mark)} ",
                ]
        else:
            raise TypeError(f"tier {k} is a {type(tier).__name__}, expected IntervalTier or PointTier")
    with atomic_write(path) as f:
        f.write("\n".join(out) + "\n")


# ----------------------------------------------------------------------------- words

_WORD_TIER_NAMES = ("words", "word")


def _word_tier(tg: TextGrid, path: Path, tier: str | int | None) -> IntervalTier:
    names = [t.name for t in tg.tiers]
    if not tg.tiers:
        raise TranscriptError(path, "has no tiers, expected a word tier")
    if tier is None:
        chosen = next((t for t in tg.tiers if t.name.strip().lower() in _WORD_TIER_NAMES), tg.tiers[0])
    elif isinstance(tier, int):
        if not -len(tg.tiers) <= tier < len(tg.tiers):
            raise TranscriptError(path, f"has {len(tg.tiers)} tiers {names}, no tier number {tier}")
        chosen = tg.tiers[tier]
    else:
        matches = [t for t in tg.tiers if t.name == tier] or [
            t for t in tg.tiers if t.name.strip().lower() == tier.strip().lower()
        ]
        if not matches:
            raise TranscriptError(path, f"has no tier named {tier!r}; its tiers are {names}")
        chosen = matches[0]
    if not isinstance(chosen, IntervalTier):
        raise TranscriptError(
            path, f"tier {chosen.name!r} is a point tier, expected an interval tier of words"
        )
    return chosen


def words_from_textgrid(
    tg: TextGrid, path: str | Path | None = None, tier: str | int | None = None
) -> list[Word]:
    """The spoken words in time order; empty or blank intervals are pauses and are left out.

    The word tier is `tier` when given (name or index), else the tier named "words" or
    "word" (any case), else tier 0, which is where BEAT and Montreal Forced Aligner put it.
    `path` only names the file in errors.
    """
    where = Path(path) if path is not None else Path("<TextGrid>")
    word_tier = _word_tier(tg, where, tier)
    intervals = sorted(word_tier.intervals, key=lambda iv: (iv.xmin, iv.xmax))
    for a, b in zip(intervals, intervals[1:]):
        if b.xmin < a.xmax - _OVERLAP_TOLERANCE:
            raise TranscriptError(
                where,
                f"tier {word_tier.name!r}: intervals overlap: {a.text!r} [{a.xmin}, {a.xmax}] "
                f"and {b.text!r} [{b.xmin}, {b.xmax}]",
            )
    return [Word(iv.xmin, iv.xmax, iv.text.strip()) for iv in intervals if iv.text.strip()]
