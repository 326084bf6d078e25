"""What is said in a recording, in whatever form the user has it, as timed words.

Users come with a Praat TextGrid (Montreal Forced Aligner), subtitles (.srt, .vtt),
an ASR tool's JSON (WhisperX, Whisper) or just the text. Each reader keeps the file
and line (or JSON item) of every value, so a bad file is reported where it is bad;
`load_transcript` then applies one set of rules to all of them:

- words are stripped of surrounding whitespace, and empty ones dropped;
- negative or non-finite times, and words that end before they start, are errors;
- words are sorted by start; a word that runs past the start of the next one is
  cut to end there (subtitle cues and ASR words often overlap by a few ms); two
  overlapping words starting at the same instant are an error, as their order is
  unknown;
- with the audio, a transcript ending more than 0.5 s after the audio is an error
  (the wrong file, most likely), and smaller overruns are cut at the audio's end.

Subtitle cues time whole lines, not words, and loosely: without audio a cue's words
share its span in proportion to their expected spoken length; with audio each cue's
words are force-aligned near the cue (semges_core.speech.forced_alignment).

Plain text is force-aligned with pocketsphinx's US English model. The energy aligner
(semges_core.speech.alignment), which knows only where speech is, stays the fallback
for languages without a phonetic model and where pocketsphinx does not import;
`load_timed_transcript` says which ran, in a line a person can read.
"""

from __future__ import annotations

import html
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from semges_core.speech import forced_alignment
from semges_core.speech.alignment import align_plain_text, align_segments, spoken_length, spread_words
from semges_core.errors import TranscriptError
from semges_core.formats.textgrid import Word, _decode, _parse, words_from_textgrid

AUDIO_OVERRUN_S = 0.5  # how far the words may run past the end of the audio

_SUFFIXES = {".textgrid": "textgrid", ".srt": "srt", ".vtt": "vtt", ".json": "json"}


@dataclass(frozen=True)
class Cue:
    """A stretch of subtitle (or ASR segment) text with its span in seconds."""

    start: float
    end: float
    text: str


# ----------------------------------------------------------------------------- files


def _read_text(path: Path) -> str:
    """The file's text: UTF-8 (BOM optional) or UTF-16 with a BOM, newlines made "\\n"."""
    if not path.exists():
        raise TranscriptError(path, "no such file")
    if path.is_dir():
        raise TranscriptError(path, "is a directory, expected a transcript file")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise TranscriptError(path, f"cannot be read ({e.strerror or e})") from e
    return _decode(path, raw)


def read_plain_text(path: str | Path) -> str:
    """The words of a plain-text transcript, as written."""
    path = Path(path)
    return _check_plain_text(_read_text(path), path)


def _check_plain_text(text: str, path: Path) -> str:
    if not text:
        raise TranscriptError(path, "is empty, expected the words that are spoken")
    if not text.strip():
        raise TranscriptError(path, "contains only whitespace, expected the words that are spoken")
    return text


# ----------------------------------------------------------------------------- timestamps

_TIMESTAMP = re.compile(r"(?:(\d+):)?(\d{1,2}):(\d{1,2})(?:[.,](\d{1,3}))?")
_TIMING_LIKE = re.compile(r"^\s*\d+:[\d:.,]*\s*-+>")  # catches "-->" lines with broken times too
_TIMING = re.compile(r"^\s*(\S+)\s*-->\s*(\S+)(?:\s.*)?$")


def _timestamp(text: str, path: Path, line: int) -> float:
    """[hh:]mm:ss[.,]ttt in seconds (hours optional, as in WebVTT; "," as in SRT)."""
    m = _TIMESTAMP.fullmatch(text)
    if m is None:
        raise TranscriptError(path, f"bad timestamp {text!r}, expected hh:mm:ss,mmm or mm:ss.mmm", line=line)
    hours, minutes, seconds, millis = m.groups()
    if hours is not None and len(hours) > 6:  # a million hours; beyond that int + float overflows
        raise TranscriptError(path, f"bad timestamp {text[:20]!r}...: the hours are not a plausible number", line=line)
    if int(minutes) >= 60 or int(seconds) >= 60:
        raise TranscriptError(path, f"bad timestamp {text!r}: minutes and seconds must be below 60", line=line)
    fraction = int(millis) / 10 ** len(millis) if millis else 0.0
    return int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds) + fraction


def _timing(text: str, path: Path, line: int) -> tuple[float, float]:
    m = _TIMING.match(text)
    if m is None:
        raise TranscriptError(
            path, f"bad timing line {text.strip()!r}, expected '00:00:01,000 --> 00:00:02,500'", line=line
        )
    start, end = _timestamp(m.group(1), path, line), _timestamp(m.group(2), path, line)
    if end < start:
        raise TranscriptError(path, f"cue ends before it starts ({m.group(1)} --> {m.group(2)})", line=line)
    return start, end


# ----------------------------------------------------------------------------- subtitle text

# The bracket classes exclude the opening bracket too: "<<<<..." without a ">" would
# otherwise be scanned to the end of the line from every "<", quadratic in its length.
_TAG = re.compile(r"<[^<>]*>")
_INLINE_TIME = re.compile(r"<((?:\d+:)?\d{1,2}:\d{1,2}[.,]\d{1,3})>")
_ASS_OVERRIDE = re.compile(r"\{\\[^{}]*\}")            # {\an8}, {\i1}: SSA styling left in SRT files
_SOUND = re.compile(r"\[[^\[\]]*\]|\([^()]*\)|[♪♫]")    # [music], (laughs): not words anyone says
_SPEAKER = re.compile(r"^\s*(?:-\s*)?[A-Z][A-Z0-9 .'-]*:\s")  # "JOHN: ...", "- MARY: ..."


def _clean(text: str, line_start: bool = True) -> str:
    """Only the spoken words of (a piece of) a subtitle line: no tags, entities, sound notes, speaker label."""
    text = html.unescape(_TAG.sub("", _ASS_OVERRIDE.sub("", text)))
    text = _SOUND.sub(" ", _SOUND.sub(" ", text))  # twice: "(laughs (quietly))" is nested once
    if line_start:
        text = _SPEAKER.sub(" ", text)
    return " ".join(text.split())


def _split_inline(cue_start: float, cue_end: float, lines: list[tuple[int, str]], path: Path) -> list[Cue]:
    """A WebVTT cue cut at its <00:00:01.500> timestamps: each piece runs to the next one."""
    pieces: list[tuple[float, list[str]]] = [(cue_start, [])]
    for number, text in lines:
        for k, part in enumerate(_INLINE_TIME.split(text)):
            if k % 2 == 0:
                pieces[-1][1].append(_clean(part, line_start=k == 0))
                continue
            t = _timestamp(part, path, number)
            if not pieces[-1][0] <= t <= cue_end:
                low = pieces[-1][0]
                raise TranscriptError(
                    path, f"inline timestamp <{part}> is not between {low:.3f} s and the cue's end {cue_end:.3f} s",
                    line=number,
                )
            pieces.append((t, []))
    ends = [p[0] for p in pieces[1:]] + [cue_end]
    return [Cue(start, end, " ".join(p for p in parts if p)) for (start, parts), end in zip(pieces, ends)]


def _tidy(cues: list[Cue]) -> list[Cue]:
    """Sorted by start; cues starting together merged; a cue cut where the next one starts."""
    merged: list[Cue] = []
    for cue in sorted((c for c in cues if c.text), key=lambda c: c.start):
        if merged and cue.start == merged[-1].start:
            last = merged[-1]
            merged[-1] = Cue(last.start, max(last.end, cue.end), f"{last.text} {cue.text}")
        else:
            merged.append(cue)
    return [
        Cue(c.start, min(c.end, nxt.start), c.text) for c, nxt in zip(merged, merged[1:])
    ] + merged[-1:]


# ----------------------------------------------------------------------------- SRT


def parse_srt(text: str, path: str | Path) -> list[Cue]:
    """SubRip cues, read leniently: numbering optional, stray blank lines inside a cue kept as text."""
    path = Path(path)
    cues: list[tuple[float, float, list[tuple[int, str]]]] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if _TIMING_LIKE.match(line):
            start, end = _timing(line, path, number)
            cues.append((start, end, []))
        elif cues:
            cues[-1][2].append((number, line))
        elif line.strip() and not line.strip().isdigit():
            raise TranscriptError(
                path, f"expected a cue number or a timing line like '00:00:01,000 --> 00:00:02,500', "
                f"found {line.strip()[:60]!r}", line=number,
            )
    if not cues:
        raise TranscriptError(path, "has no subtitle cues (no '00:00:01,000 --> 00:00:02,500' lines)")
    result = []
    for k, (start, end, lines) in enumerate(cues):
        body = list(lines)
        while body and not body[-1][1].strip():
            body.pop()
        # The next cue's number sits at the end of this one's lines, after a blank line.
        if k + 1 < len(cues) and len(body) >= 1 and body[-1][1].strip().isdigit():
            if len(body) == 1 or not body[-2][1].strip():
                body.pop()
        result.append(Cue(start, end, " ".join(filter(None, (_clean(s) for _, s in body)))))
    return result


# ----------------------------------------------------------------------------- WebVTT

_SKIPPED_BLOCKS = re.compile(r"^(NOTE|STYLE|REGION)(\s|$)")


def parse_vtt(text: str, path: str | Path) -> list[Cue]:
    """WebVTT cues; NOTE, STYLE and REGION blocks skipped; inline timestamps split cues.

    YouTube's automatic captions repeat each line in the next cue as plain text while
    the new line gets its word timestamps; in files with inline timestamps a line equal
    to one of the previous cue's is therefore left out.
    """
    path = Path(path)
    lines = text.split("\n")
    if not lines[0].startswith("WEBVTT"):
        raise TranscriptError(path, f"expected 'WEBVTT' on the first line, found {lines[0][:40]!r}", line=1)
    has_inline = _INLINE_TIME.search(text) is not None
    blocks: list[list[tuple[int, str]]] = [[]]
    for number, line in enumerate(lines, start=1):
        if line == "":  # only an empty line ends a block; " " belongs to the cue (YouTube writes it)
            if blocks[-1]:
                blocks.append([])
        else:
            blocks[-1].append((number, line))
    cues: list[Cue] = []
    previous_lines: set[str] = set()
    for block in blocks[1:]:  # blocks[0] is the header
        if not block or _SKIPPED_BLOCKS.match(block[0][1]):
            continue
        timing_at = next((k for k, (_, s) in enumerate(block) if "-->" in s), None)
        if timing_at is None or timing_at > 1:  # at most a cue identifier comes before the timing
            number, found = block[0] if timing_at is None else block[1]
            raise TranscriptError(
                path, f"expected a cue timing line like '00:01.000 --> 00:02.500', found {found.strip()[:60]!r}",
                line=number,
            )
        number, timing = block[timing_at]
        start, end = _timing(timing, path, number)
        body = block[timing_at + 1 :]
        if has_inline:
            body = [(n, s) for n, s in body if _clean(s) not in previous_lines or _INLINE_TIME.search(s)]
            previous_lines = {_clean(s) for _, s in block[timing_at + 1 :]}
        cues += _split_inline(start, end, body, path)
    if not cues:
        raise TranscriptError(path, "has no cues")
    return cues


# ----------------------------------------------------------------------------- JSON


def _where(parts: list[str | int]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".")


def _json_time(item: dict, key: str, where: str, path: Path) -> float | None:
    value = item.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value):
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "..."
        raise TranscriptError(path, f"{where}: '{key}' must be a number of seconds, found {shown}")
    if value < 0:
        raise TranscriptError(path, f"{where}: '{key}' is negative ({value})")
    return float(value)


def _finite(value: int | float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond any float
        return False


def _json_item(item: object, where: str, path: Path) -> tuple[str, float | None, float | None]:
    """(text, start, end) of a word or segment object; times None when the tool gave none."""
    if not isinstance(item, dict):
        raise TranscriptError(
            path, f'{where} is {type(item).__name__}, expected an object like {{"word": "hi", "start": 0.5, "end": 0.7}}'
        )
    text = item.get("word", item.get("text"))
    if not isinstance(text, str):
        found = "neither 'word' nor 'text'" if text is None else f"a {type(text).__name__} as its text"
        raise TranscriptError(path, f"{where} has {found}, expected the word as a string")
    start, end = _json_time(item, "start", where, path), _json_time(item, "end", where, path)
    if (start is None) != (end is None):
        raise TranscriptError(path, f"{where} has '{'start' if end is None else 'end'}' but no "
                              f"'{'end' if end is None else 'start'}'")
    if start is not None and end < start:
        raise TranscriptError(path, f"{where} ends before it starts (start {start}, end {end})")
    return text, start, end


def _untimed_filled(items: list[tuple[str, float | None, float | None]], lo: float, hi: float | None) -> list[Word]:
    """Words without times (WhisperX leaves numbers untimed) share the gap between their neighbours."""
    words: list[Word] = []
    k = 0
    while k < len(items):
        text, start, end = items[k]
        if start is not None:
            words.append(Word(start, end, text))
            k += 1
            continue
        run_end = k
        while run_end < len(items) and items[run_end][1] is None:
            run_end += 1
        left = words[-1].end if words else lo
        right = items[run_end][1] if run_end < len(items) else (hi if hi is not None else left)
        right = max(left, right)
        lengths = np.array([spoken_length(t) for t, _, _ in items[k:run_end]])
        edges = left + (right - left) * np.r_[0.0, np.cumsum(lengths)] / lengths.sum()
        words += [Word(float(a), float(b), t) for (t, _, _), a, b in zip(items[k:run_end], edges[:-1], edges[1:])]
        k = run_end
    return words


def _json_words(items: object, where: list[str | int], path: Path, lo: float, hi: float | None) -> list[Word]:
    if not isinstance(items, list):
        raise TranscriptError(path, f"{_where(where)} is {type(items).__name__}, expected a list of words")
    parsed = [_json_item(item, _where(where + [k]), path) for k, item in enumerate(items)]
    if parsed and all(start is None for _, start, _ in parsed) and hi is None:
        raise TranscriptError(path, f"{_where(where)}: no word has 'start' and 'end' times")
    return _untimed_filled(parsed, lo, hi)


def parse_json(text: str, path: str | Path) -> tuple[list[Word], list[Cue]]:
    """Timed words, and segments that have text but no words (Whisper without word timestamps)."""
    path = Path(path)
    if not text.strip():
        raise TranscriptError(path, "is empty, expected JSON words like [{\"word\": \"hi\", \"start\": 0.5, \"end\": 0.7}]")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise TranscriptError(path, f"is not valid JSON ({e.msg})", line=e.lineno) from e
    except ValueError as e:  # an integer of thousands of digits
        raise TranscriptError(path, f"is not usable JSON ({e})") from None
    except RecursionError:
        raise TranscriptError(path, "is not usable JSON: lists or objects nested too deeply") from None
    if isinstance(data, list):
        return _json_words(data, [], path, 0.0, None), []
    if not isinstance(data, dict):
        raise TranscriptError(path, f"is a JSON {type(data).__name__}, expected a list of words or an object")
    segments = data.get("segments")
    if isinstance(segments, list):
        words: list[Word] = []
        cues: list[Cue] = []
        for j, seg in enumerate(segments):
            where = f"segments[{j}]"
            if isinstance(seg, dict) and "words" in seg:
                lo, hi = _json_time(seg, "start", where, path), _json_time(seg, "end", where, path)
                if lo is not None and hi is not None and hi < lo:
                    raise TranscriptError(path, f"{where} ends before it starts (start {lo}, end {hi})")
                words += _json_words(seg["words"], ["segments", j, "words"], path, lo or 0.0, hi)
            else:
                text_, start, end = _json_item(seg, where, path)
                if start is None:
                    raise TranscriptError(path, f"{where} has neither 'words' nor 'start' and 'end'")
                cues.append(Cue(start, end, text_))
        return words, cues
    for key in ("word_segments", "words"):
        if key in data:
            return _json_words(data[key], [key], path, 0.0, None), []
    keys = ", ".join(repr(k) for k in list(data)[:8])
    raise TranscriptError(
        path, f"expected a list of words, or an object with 'words' or 'segments' (as WhisperX writes); found keys {keys}"
    )


# ----------------------------------------------------------------------------- readers


def _words_of_cues(cues: list[Cue]) -> list[Word]:
    """Without audio: each cue's words share its span by their expected lengths."""
    return [w for c in _tidy(cues) for w in spread_words(c.text, c.start, c.end)]


def read_srt(path: str | Path) -> list[Word]:
    """Words of a SubRip file, each cue's span shared among its words by their length."""
    path = Path(path)
    return check_words(_words_of_cues(parse_srt(_read_text(path), path)), path)


def read_vtt(path: str | Path) -> list[Word]:
    """Words of a WebVTT file, timed by inline timestamps where present, else by length."""
    path = Path(path)
    return check_words(_words_of_cues(parse_vtt(_read_text(path), path)), path)


def read_json_words(path: str | Path) -> list[Word]:
    """Words of a JSON list of {"word", "start", "end"}, or WhisperX's {"segments": [{"words"}]}."""
    path = Path(path)
    words, cues = parse_json(_read_text(path), path)
    return check_words(words + _words_of_cues(cues), path)


# ----------------------------------------------------------------------------- rules for all


def check_words(words: list[Word], path: str | Path, audio_duration: float | None = None) -> list[Word]:
    """Apply the module's rules (stripped, valid, sorted, overlaps cut, within the audio)."""
    path = Path(path)
    # New Words only where needed: a transcript may hold a million words (the wrong file, a book).
    words = [w if w.text == w.text.strip() else Word(w.start, w.end, w.text.strip()) for w in words if w.text.strip()]
    if not words:
        raise TranscriptError(path, "contains no words")
    for k, w in enumerate(words, start=1):
        if math.isfinite(w.start) and math.isfinite(w.end) and 0 <= w.start <= w.end:
            continue
        what = f"word {k} ({w.text!r})"
        if not (math.isfinite(w.start) and math.isfinite(w.end)):
            raise TranscriptError(path, f"{what} has a time that is not a number ({w.start}, {w.end})")
        if w.start < 0:
            raise TranscriptError(path, f"{what} starts at a negative time ({w.start} s)")
        raise TranscriptError(path, f"{what} ends before it starts ({w.start} s to {w.end} s)")
    words.sort(key=lambda w: w.start)  # stable: equal starts keep the file's order
    for k in range(len(words) - 1):
        a, b = words[k], words[k + 1]
        if b.start < a.end:
            if b.start == a.start:
                raise TranscriptError(
                    path, f"words {a.text!r} and {b.text!r} both start at {a.start} s and overlap; "
                    "their order is ambiguous"
                )
            words[k] = Word(a.start, b.start, a.text)
    if audio_duration is not None:
        last = max(w.end for w in words)
        if last > audio_duration + AUDIO_OVERRUN_S:
            raise TranscriptError(
                path, f"transcript is longer than its audio ({last:.2f} s vs {audio_duration:.2f} s)"
            )
        if last > audio_duration:
            words = [Word(min(w.start, audio_duration), min(w.end, audio_duration), w.text) for w in words]
    return words


def _sniff(text: str) -> str:
    """The format of text that came without a telling suffix."""
    head = text.lstrip("\ufeff \t\n")
    if head.startswith("WEBVTT"):
        return "vtt"
    if head.startswith("File type") and "ooTextFile" in head[:60]:
        return "textgrid"
    first = [line.strip() for line in head.split("\n")[:2]]
    if any(_TIMING_LIKE.match(line) for line in first):
        return "srt"
    if head[:1] in "[{":
        try:
            json.loads(text)
            return "json"
        except json.JSONDecodeError:
            pass
        except (ValueError, RecursionError):  # JSON, but too deep or too long a number: parse_json says so
            return "json"
    return "text"


class TimedTranscript(NamedTuple):
    """The timed words, where their times came from, and that said in a line for people."""

    words: list[Word]
    # "file" (times as written), "pocketsphinx", "pocketsphinx+energy" (some pieces by energy), "energy";
    # subtitle cues: "cues+pocketsphinx", "cues+pocketsphinx+energy", "cues+energy"
    timing: str
    # e.g. "aligned 412 words with pocketsphinx forced alignment (2 not in its dictionary, ...)"
    note: str = ""


def energy_reason(language: str = "en") -> str | None:
    """Why plain text would go to the energy aligner instead of the forced aligner; None when it would not."""
    if not forced_alignment.has_model(language):
        return f"no phonetic model for language {language!r}; words placed by speech energy only"
    if not forced_alignment.available():
        return "pocketsphinx is not installed; words placed by speech energy only"
    return None


def _forced_details(result: forced_alignment.ForcedAlignment) -> str:
    details = []
    if result.guessed:
        shown = ", ".join(repr(w) for w in result.guessed[:3]) + (", ..." if len(result.guessed) > 3 else "")
        details.append(f"{len(result.guessed)} not in its dictionary, pronounced by letter-to-sound rules: {shown}")
    if result.failed_pieces:
        details.append(f"{result.failed_pieces} of {result.pieces} {result.unit}s placed by the energy aligner")
    return f" ({'; '.join(details)})" if details else ""


class _Timing(NamedTuple):
    words: list[Word]
    timing: str
    note: str  # begins with "{n}" or a verb and "{n}", the number of words kept


def _with_count(note: str, n: int) -> str:
    return note.replace("{n}", str(n), 1)


def _align_text(text: str, audio: np.ndarray, sample_rate: int, path: str | Path, language: str) -> _Timing:
    reason = energy_reason(language)
    if reason is not None:
        words = align_plain_text(text, audio, sample_rate, path=path)
        return _Timing(words, "energy", f"aligned {{n}} words with the energy aligner ({reason})")
    result = forced_alignment.force_align(text, audio, sample_rate, path=path)
    forced_alignment.check_fit(result, path)
    return _Timing(result.words, "pocketsphinx+energy" if result.failed_pieces else "pocketsphinx",
                   "aligned {n} words with pocketsphinx forced alignment" + _forced_details(result))


def _align_cues(cues: list[Cue], audio: np.ndarray, sample_rate: int, path: str | Path, language: str) -> _Timing:
    cues = _tidy(cues)
    spans = [(c.start, c.end, c.text) for c in cues]
    what = f"timed {{n}} words of {len(cues)} subtitle cue{'s' if len(cues) != 1 else ''}"
    reason = energy_reason(language)
    if reason is not None:
        return _Timing(align_segments(spans, audio, sample_rate), "cues+energy",
                       f"{what} with the energy aligner within each cue ({reason})")
    result = forced_alignment.force_align_cues(spans, audio, sample_rate, path=path)
    forced_alignment.check_fit(result, path)
    return _Timing(result.words, "cues+pocketsphinx+energy" if result.failed_pieces else "cues+pocketsphinx",
                   f"{what} with pocketsphinx forced alignment near each cue"
                   + _forced_details(result))


def align_text(text: str, audio: np.ndarray, sample_rate: int, path: str | Path, language: str = "en") -> TimedTranscript:
    """Plain text timed on `audio`: forced alignment for English where pocketsphinx imports, else the energy aligner.

    Warns (TranscriptMismatchWarning) when the alignment says the text is not what is said.
    """
    t = _align_text(text, audio, sample_rate, path, language)
    return TimedTranscript(t.words, t.timing, _with_count(t.note, len(t.words)))


def load_transcript(
    path: str | Path,
    audio: np.ndarray | None = None,
    sample_rate: int = 16000,
    text_block: str | None = None,
    language: str = "en",
) -> list[Word]:
    """Timed words from a .TextGrid, .srt, .vtt, .json or plain-text transcript (see load_timed_transcript)."""
    return load_timed_transcript(path, audio, sample_rate, text_block, language).words


def load_timed_transcript(
    path: str | Path,
    audio: np.ndarray | None = None,
    sample_rate: int = 16000,
    text_block: str | None = None,
    language: str = "en",
) -> TimedTranscript:
    """Timed words from a .TextGrid, .srt, .vtt, .json or plain-text transcript, and which timing ran.

    The suffix picks the format; other suffixes (and `text_block`, text given directly,
    e.g. from a Blender text block, with `path` naming it in messages) are sniffed for
    subtitles, TextGrid or JSON, and are otherwise plain text, which is aligned to
    `audio` (mono samples at `sample_rate`, needed then). With `audio`, subtitle cues
    are refined to word times on the speech and the words must fit the audio.
    `language` (a tag such as "en", "en-GB", "de") picks the aligner: the forced
    aligner for English, the energy aligner for languages it has no model for.
    """
    path = Path(path)
    kind = _SUFFIXES.get(path.suffix.lower())
    if text_block is not None:
        text = text_block.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    else:
        text = _read_text(path)
    text = _check_plain_text(text, path)  # an empty file says so, whatever its format
    if kind is None:
        kind = _sniff(text)
    duration = None if audio is None else len(audio) / sample_rate

    timing, note = "file", f"{{n}} words timed as written in {path.name}"
    if kind == "textgrid":
        words = words_from_textgrid(_parse(path, text), path)
    elif kind in ("srt", "vtt", "json"):
        if kind == "json":
            timed, cues = parse_json(text, path)
        else:
            timed, cues = [], parse_srt(text, path) if kind == "srt" else parse_vtt(text, path)
        if duration is not None and cues:
            # Judge the cues as written, before their words are fitted onto the speech.
            check_words([Word(c.start, c.end, "x") for c in cues], path, duration)
        if cues and audio is not None:
            cue_words, timing, note = _align_cues(cues, audio, sample_rate, path, language)
            if timed:
                note += f", and {len(timed)} words timed as written"
        else:
            cue_words = _words_of_cues(cues)
            if cues:
                timing, note = "cues", f"{{n}} words spread over the spans of {len(_tidy(cues))} subtitle cues"
        words = timed + cue_words
    else:
        if audio is None:
            raise TranscriptError(
                path, "is plain text without times; give the audio to align it to, "
                "or a TextGrid, .srt, .vtt or WhisperX .json with times"
            )
        words, timing, note = _align_text(text, audio, sample_rate, path, language)
    words = check_words(words, path, duration)
    return TimedTranscript(words, timing, _with_count(note, len(words)))
