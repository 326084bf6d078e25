"""Timing the words of a plain transcript against its speech, without any downloaded model.

Users often have only the text of what they said. A forced aligner (Montreal Forced
Aligner, WhisperX) knows the sounds of each word; we know only where there is
speech, so we solve the part that matters most for gestures: which words fall in
which stretch of speech, with pauses between the right words. Each word gets an
expected length from its letters and syllables, scaled so that all words fill the
detected speech time, and one dynamic programme places every word at once,
trading these costs:

- speech outside every word (expensive) and silence inside a word (cheaper, since
  stop consonants are short silences);
- a word much longer or shorter than expected (squared log ratio);
- a pause after a word without punctuation, or none after a sentence end (pauses
  after ".", "?", "," are free or cheap, so sentence breaks land on the long silences);
- a word edge on a loud frame (edges prefer energy dips).

Within continuous speech the words are split in proportion to their expected
lengths, nudged to energy dips; a word's edges are therefore only as good as that
estimate (see docs/transcripts.md for measured errors).
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from semges_core.errors import TranscriptError
from semges_core.formats.textgrid import Word

HOP_S = 0.01          # one frame of the energy contour
WIN_S = 0.025         # analysis window of a frame, centred on it
MIN_SPEECH_S = 0.08   # shorter bursts are clicks, not speech
MIN_PAUSE_S = 0.15    # shorter silences are closures or word gaps, not pauses
SILENT_PEAK_DB = -55.0  # a recording whose loud frames stay below this holds no speech
MIN_RANGE_DB = 8.0    # nor does one whose loudness hardly varies (steady noise or hum)

# Costs of the dynamic programme, per 10 ms frame unless said otherwise.
_SILENCE_IN_WORD = 1.0     # a silent frame inside a word
_SPEECH_IN_PAUSE = 3.0     # a speech frame between words
_DURATION_WEIGHT = 6.0     # per word, times log(length / expected) squared
_EDGE_WEIGHT = 1.0         # per word edge, times the frame's loudness in [0, 1]
_PAUSE_AFTER = {"sentence": 0.0, "clause": 1.0, "none": 4.0}  # opening a pause after a word
_LONG_PAUSE_AFTER = {"sentence": 0.0, "clause": 0.0, "none": 0.05}  # per pause frame beyond the first
_NO_PAUSE_AFTER = {"sentence": 3.0, "clause": 0.5, "none": 0.0}  # running on into the next word
_FAST_SPEECH_WPS = 7.0     # more words per second of speech than this is suspicious

_SENTENCE_END = set(".!?;:…。！？")
_CLAUSE_END = set(",—–-)\"”’»、，")
_VOWEL_GROUPS = re.compile(r"[aeiouy]+")
_ABBREVIATIONS = {"mr.", "mrs.", "ms.", "dr.", "prof.", "st.", "vs.", "etc.", "e.g.", "i.e.", "no.", "approx."}
_INITIALS = re.compile(r"(?:[A-Za-z]\.){2,}")


class AlignmentWarning(UserWarning):
    """The alignment ran but its result is doubtful (text much longer than the speech)."""


@dataclass(frozen=True)
class Token:
    """A word to place, with what the aligner needs to know about it."""

    text: str       # as written, punctuation included
    units: float    # expected spoken length, arbitrary units
    pause: str      # key of _PAUSE_AFTER: how readily a pause may follow


# ----------------------------------------------------------------------------- text


def _is_wordlike(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "LN"


def _syllables(word: str) -> int:
    """Vowel groups of the Latin letters (accents removed), one per CJK/kana character."""
    plain = "".join(c for c in unicodedata.normalize("NFD", word.lower()) if not unicodedata.combining(c))
    latin = re.sub(r"[^a-z]", "", plain)
    n = len(_VOWEL_GROUPS.findall(latin))
    if n > 1 and latin.endswith("e") and not latin.endswith(("le", "ee")):
        n -= 1  # silent final e: "make", "there"
    n += sum(1 for c in word if "CJK" in unicodedata.name(c, "") or "KANA" in unicodedata.name(c, ""))
    n += sum(1 for c in word if c.isdigit())  # "1999": a few syllables per digit
    return n


def spoken_length(word: str) -> float:
    """Expected spoken length: roughly one unit per letter, more per syllable, a little per word."""
    letters = sum(1 for c in word if _is_wordlike(c))
    letters += 3 * sum(1 for c in word if c.isdigit())  # digits are said as whole words
    syllables = _syllables(word) or max(1, round(letters / 3))  # scripts without Latin vowels
    return letters + 1.5 * syllables + 1.0


def tokenize(text: str) -> list[Token]:
    """Whitespace-separated words; punctuation-only tokens ("-", "...") are not spoken, so they
    only mark how readily a pause may follow the word before them."""
    tokens: list[Token] = []
    for raw in text.split():
        token = _token(raw)
        if token is None:
            if tokens:
                last = tokens[-1]
                pause = _pause_kind(raw)
                stronger = pause if _PAUSE_AFTER[pause] < _PAUSE_AFTER[last.pause] else last.pause
                tokens[-1] = Token(last.text, last.units, stronger)
            continue
        tokens.append(token)
    return tokens


@functools.lru_cache(maxsize=1 << 16)
def _token(raw: str) -> Token | None:
    """One whitespace-separated word as a Token, None when it is punctuation only.

    Cached: texts repeat their words, and a transcript of megabytes (the wrong file,
    a book) would otherwise spend seconds counting the same letters again.
    """
    if not any(_is_wordlike(c) for c in raw):
        return None
    return Token(raw, spoken_length(raw), _pause_kind(raw))


def _pause_kind(token: str) -> str:
    tail = token.rstrip("\"'”’»)]")
    if tail.lower() in _ABBREVIATIONS or _INITIALS.fullmatch(tail):
        return "none"  # "Mr. Smith", "the U.S. army": no sentence ends here
    if tail and tail[-1] in _SENTENCE_END:
        return "sentence"
    if token and token[-1] in _CLAUSE_END or (tail and tail[-1] in _CLAUSE_END):
        return "clause"
    return "none"


# ----------------------------------------------------------------------------- audio


@dataclass(frozen=True)
class SpeechActivity:
    """Per 10 ms frame: loudness in dB, a soft speech probability, and the hard decision."""

    db: np.ndarray          # (T,)
    probability: np.ndarray  # (T,) in [0, 1]
    speech: np.ndarray      # (T,) bool, after hysteresis and minimum durations
    floor_db: float
    peak_db: float

    def window(self, lo: int, hi: int) -> "SpeechActivity":
        """Frames [lo, hi), keeping the thresholds of the whole recording."""
        return SpeechActivity(self.db[lo:hi], self.probability[lo:hi], self.speech[lo:hi], self.floor_db, self.peak_db)


def _butter_bandpass(low: float, high: float, sample_rate: int, order: int = 4) -> tuple[np.ndarray, np.ndarray, float]:
    """Digital Butterworth band-pass as (zeros, poles, gain): scipy's `butter(order, [low, high],
    "bandpass", fs=sample_rate, output="zpk")`, i.e. the analog prototype's poles moved to the
    pre-warped band and through the bilinear transform (written with scipy's fs = 2)."""
    poles = -np.exp(1j * np.pi * np.arange(-order + 1, order, 2) / (2 * order))  # (order,) on the unit circle
    lo, hi = (4.0 * math.tan(math.pi * f / sample_rate) for f in (low, high))
    width, centre = hi - lo, math.sqrt(lo * hi)
    poles = poles * width / 2
    shift = np.sqrt(poles * poles - centre * centre)
    poles = np.r_[poles + shift, poles - shift]  # (2 * order,) low-pass to band-pass
    gain = width**order * float(np.real(4.0**order / np.prod(4.0 - poles)))
    zeros = np.r_[np.ones(order), -np.ones(order)]  # s = 0 maps to z = 1, s = infinity to z = -1
    return zeros, (4.0 + poles) / (4.0 - poles), gain


def _response(zeros: np.ndarray, poles: np.ndarray, gain: float, z: np.ndarray) -> np.ndarray:
    """The filter's transfer function at the points z, one factor at a time (no polynomial loses digits)."""
    out = np.full(z.shape, gain, dtype=complex)
    for a, b in zip(zeros, poles):
        out *= (z - a) / (z - b)
    return out


def _impulse_response(zeros: np.ndarray, poles: np.ndarray, gain: float) -> np.ndarray:
    """Its first samples, until the slowest pole has decayed below 1e-20 twice over."""
    n = 2 * math.ceil(math.log(1e-20) / math.log(float(np.abs(poles).max())))
    size = 1 << (2 * n - 1).bit_length()  # sampling the response this finely leaves no time aliasing
    h = np.fft.irfft(_response(zeros, poles, gain, np.exp(2j * np.pi * np.arange(size // 2 + 1) / size)), size)
    return h[:n]


def _causal_convolve(u: np.ndarray, h: np.ndarray) -> np.ndarray:
    """(u * h)[:len(u)] by FFT overlap-add, in blocks so that hours of audio need little memory."""
    size = 1 << max(15, (4 * len(h) - 1).bit_length())
    step = size - len(h) + 1
    spectrum = np.fft.rfft(h, size)
    out = np.zeros(len(u) + size)
    for s in range(0, len(u), step):
        out[s : s + size] += np.fft.irfft(np.fft.rfft(u[s : s + step], size) * spectrum, size)
    return out[: len(u)]


def _bandpass(x: np.ndarray, sample_rate: int, low: float, high: float) -> np.ndarray:
    """Zero-phase 4th-order Butterworth band-pass of `x` (n > 1), in numpy.

    The same as scipy's `sosfiltfilt(butter(4, [low, high], "bandpass", fs=sample_rate,
    output="sos"), x, padlen=min(n - 1, 39))` to about 1e-13: odd extension by `padlen`
    samples, each pass started in the steady state of its first sample, forward then
    backward. A filter started in the steady state of c responds to u as gain(1) * c plus
    the response from rest to u - c, and that response is a convolution with the
    impulse response, which a stable filter lets us cut where it has died away.
    """
    zeros, poles, gain = _butter_bandpass(low, high, sample_rate)
    h = _impulse_response(zeros, poles, gain)
    dc = float(np.real(_response(zeros, poles, gain, np.ones(1)))[0])  # 0 for a band-pass, up to rounding
    pad = min(len(x) - 1, 39)
    ext = np.r_[2 * x[0] - x[pad:0:-1], x, 2 * x[-1] - x[-2 : -pad - 2 : -1]]  # (n + 2 * pad,)
    y = dc * ext[0] + _causal_convolve(ext - ext[0], h)
    y = y[::-1]
    y = (dc * y[0] + _causal_convolve(y - y[0], h))[::-1]
    return y[pad : len(y) - pad]


def _frame_db(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Band-limited (100 Hz to 4 kHz) RMS level per frame, so hum and hiss count less."""
    x = np.asarray(audio, dtype=np.float64)
    high = min(4000.0, 0.45 * sample_rate)
    if len(x) > 50 and high > 150.0:
        x = _bandpass(x, sample_rate, 100.0, high)
    hop = max(1, round(HOP_S * sample_rate))
    win = max(hop, round(WIN_S * sample_rate))
    n_frames = max(1, math.ceil(len(x) / hop))
    pad = (win - hop) // 2
    padded = np.pad(x, (pad, n_frames * hop + win - len(x) - pad))
    energy = np.r_[0.0, np.cumsum(padded**2)]
    starts = np.arange(n_frames) * hop
    power = (energy[starts + win] - energy[starts]) / win  # (T,)
    return 10.0 * np.log10(np.maximum(power, 0.0) + 1e-12)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of True."""
    edges = np.flatnonzero(np.diff(np.r_[0, mask.astype(np.int8), 0]))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def detect_speech(audio: np.ndarray, sample_rate: int = 16000) -> SpeechActivity:
    """Energy voice-activity detection with an adaptive threshold.

    The noise floor is a low percentile of the frame levels and the speech level a
    high one; a frame enters speech above 40 % of the way between them and leaves
    below 25 % (hysteresis). Pauses shorter than MIN_PAUSE_S are filled and bursts
    shorter than MIN_SPEECH_S dropped.
    """
    db = _frame_db(audio, sample_rate)
    floor, peak = float(np.percentile(db, 5)), float(np.percentile(db, 99))
    if peak < SILENT_PEAK_DB or peak - floor < MIN_RANGE_DB:
        empty = np.zeros(len(db), dtype=bool)
        return SpeechActivity(db, np.zeros(len(db)), empty, floor, peak)
    span = peak - floor
    enter, leave = floor + 0.40 * span, floor + 0.25 * span
    speech = np.zeros(len(db), dtype=bool)
    on = False
    for t, level in enumerate(db):  # hysteresis needs the previous decision
        on = level > (leave if on else enter)
        speech[t] = on
    min_pause, min_speech = round(MIN_PAUSE_S / HOP_S), round(MIN_SPEECH_S / HOP_S)
    runs = _runs(speech)
    for (_, a), (b, _) in zip(runs, runs[1:]):
        if b - a < min_pause:
            speech[a:b] = True
    for a, b in _runs(speech):
        if b - a < min_speech:
            speech[a:b] = False
    # Soft version for the costs: a logistic around the middle threshold, 2 dB wide.
    middle = 0.5 * (enter + leave)
    probability = 1.0 / (1.0 + np.exp(-(db - middle) / 2.0))
    return SpeechActivity(db, probability, speech, floor, peak)


# ----------------------------------------------------------------------------- placing


def _edge_costs(activity: SpeechActivity) -> np.ndarray:
    """Cost of a word edge at frame boundary t (between frames t-1 and t), (T + 1,)."""
    level = np.clip((activity.db - activity.floor_db) / max(activity.peak_db - activity.floor_db, 1e-6), 0, 1)
    padded = np.r_[0.0, level, 0.0]  # the audio's edges count as silence
    return _EDGE_WEIGHT * np.minimum(padded[:-1], padded[1:])


def _windows(expected_end: np.ndarray, dmin: np.ndarray, n_frames: int, half: int) -> np.ndarray:
    """[lo, hi] of each word's end frame: near its expected end, and room for all words."""
    before = np.cumsum(dmin)                      # words 0..i need this many frames
    after = np.r_[np.cumsum(dmin[::-1])[::-1][1:], 0]  # words i+1.. need this many
    lo = np.maximum(expected_end - half, before)
    hi = np.minimum(expected_end + half, n_frames - after)
    return np.stack([lo, np.maximum(hi, lo)], axis=1)  # (N, 2)


@dataclass
class _Column:
    """The programme's table for one word."""

    lo: int                     # first end frame considered
    cost: np.ndarray            # best cost of words 0..i with word i ending at frame lo + k
    length: np.ndarray          # word i's length in frames on that best path
    previous_end: np.ndarray    # (T + 1,) where word i - 1 ends if word i starts at frame s


def _place(tokens: list[Token], activity: SpeechActivity, half_window: int) -> list[tuple[int, int]] | None:
    """Best [start, end) frames of every word, or None when no placement fits the windows."""
    p = activity.probability
    n_frames = len(p)
    frames = np.arange(n_frames + 1)
    in_word = np.r_[0.0, np.cumsum(_SILENCE_IN_WORD * (1.0 - p))]   # (T + 1,) prefix sums
    in_pause = np.r_[0.0, np.cumsum(_SPEECH_IN_PAUSE * p)]
    edge = _edge_costs(activity)

    units = np.array([t.units for t in tokens])
    speech_frames = max(float(p.sum()), float(len(tokens)))
    expected = speech_frames * units / units.sum()                   # (N,) frames
    dmin = np.maximum(1, np.floor(0.25 * expected)).astype(int)
    dmax = np.minimum(n_frames, np.ceil(np.maximum(4.0 * expected, expected + 50))).astype(int)
    if dmin.sum() > n_frames:
        return None
    # Expected end: where the cumulative speech reaches the words' share of it.
    share = speech_frames * np.cumsum(units) / units.sum()
    expected_end = np.minimum(np.searchsorted(np.cumsum(p), share - 1e-9) + 1, n_frames)
    windows = _windows(expected_end, dmin, n_frames, half_window)

    start_cost = in_pause.copy()  # before the first word: leading silence, free to open
    previous_end = np.full(n_frames + 1, -1)
    columns: list[_Column] = []
    for i, tok in enumerate(tokens):
        lo, hi = windows[i]
        ends = np.arange(lo, hi + 1)
        cost = np.full(len(ends), np.inf)
        length = np.zeros(len(ends), dtype=int)
        for d in range(dmin[i], min(dmax[i], hi) + 1):
            k = np.flatnonzero(ends >= d)  # ends whose start e - d is a frame
            s = ends[k] - d
            c = start_cost[s] + in_word[s + d] - in_word[s] + edge[s] + _DURATION_WEIGHT * math.log(d / expected[i]) ** 2
            better = c < cost[k]
            cost[k[better]], length[k[better]] = c[better], d
        cost += edge[ends]
        columns.append(_Column(lo, cost, length, previous_end))

        # Word i + 1 starts at s: either right where word i ends, or after a pause from e to s
        # costing in_pause[s] - in_pause[e] + per_frame * (s - e - 1) + open.
        end_cost = np.full(n_frames + 1, np.inf)
        end_cost[lo : hi + 1] = cost
        per_frame = _LONG_PAUSE_AFTER[tok.pause]
        opened = end_cost - in_pause - per_frame * frames                # a pause opening at e
        best_opened = np.r_[np.inf, np.minimum.accumulate(opened)[:-1]]  # opened strictly before s
        via_pause = best_opened + in_pause + per_frame * (frames - 1) + _PAUSE_AFTER[tok.pause]
        run_on = end_cost + _NO_PAUSE_AFTER[tok.pause]
        start_cost = np.minimum(run_on, via_pause)
        previous_end = np.where(run_on <= via_pause, frames, np.r_[-1, _running_argmin(opened)[:-1]])

    last = columns[-1]
    total = last.cost + in_pause[n_frames] - in_pause[last.lo : last.lo + len(last.cost)]  # trailing silence
    if not np.isfinite(total).any():
        return None
    end = last.lo + int(np.argmin(total))
    spans: list[tuple[int, int]] = []
    for column in reversed(columns):
        start = end - int(column.length[end - column.lo])
        spans.append((start, end))
        end = int(column.previous_end[start])
    return spans[::-1]


def _running_argmin(x: np.ndarray) -> np.ndarray:
    """Index of the minimum of x[:k + 1] for every k."""
    run = np.minimum.accumulate(x)
    is_new = np.r_[True, run[1:] < run[:-1]]
    return np.maximum.accumulate(np.where(is_new, np.arange(len(x)), 0))


def _spread(tokens: list[Token], start: float, end: float) -> list[Word]:
    """Fallback: words end to end over [start, end] in proportion to their expected lengths."""
    units = np.array([t.units for t in tokens])
    edges = (start + (end - start) * np.r_[0.0, np.cumsum(units)] / units.sum()).tolist()  # floats, fast
    return [Word(a, b, t.text) for t, a, b in zip(tokens, edges[:-1], edges[1:])]


def _align(tokens: list[Token], activity: SpeechActivity, start: float, end: float) -> list[Word]:
    """Place `tokens` between `start` and `end` seconds of the activity's timeline."""
    lo = min(len(activity.db), max(0, math.floor(start / HOP_S + 1e-9)))
    hi = min(len(activity.db), math.ceil(end / HOP_S - 1e-9))
    window = activity.window(lo, hi)
    if hi - lo < len(tokens) or window.probability.sum() < MIN_SPEECH_S / HOP_S:
        return _spread(tokens, start, end)  # too short, or silent: nothing to go by but the text
    n_frames = hi - lo
    half = max(round(4.0 / HOP_S), min(round(0.1 * n_frames), round(15.0 / HOP_S)))
    spans = _place(tokens, window, half) or _place(tokens, window, n_frames)
    if spans is None:  # more words than frames: no frame-level placement exists
        return _spread(tokens, start, end)
    to_s = lambda frame: min(end, max(start, (lo + frame) * HOP_S))  # noqa: E731
    return [Word(to_s(a), to_s(b), t.text) for t, (a, b) in zip(tokens, spans)]


def _check_audio(audio: np.ndarray) -> np.ndarray:
    audio = np.asarray(audio)
    if audio.ndim != 1 or len(audio) == 0:
        raise ValueError(f"audio must be mono samples of shape (n,), got shape {audio.shape}")
    if np.issubdtype(audio.dtype, np.integer):  # PCM as read by some libraries
        return audio / float(np.iinfo(audio.dtype).max)
    return audio


def align_plain_text(
    text: str, audio: np.ndarray, sample_rate: int = 16000, *, path: str | Path = "<text>"
) -> list[Word]:
    """Time every word of `text` within `audio` (mono samples in [-1, 1]); `path` names the source in errors.

    Words keep their punctuation as written; punctuation-only tokens are dropped.
    Times are multiples of 10 ms, in order, never overlapping.
    """
    tokens = tokenize(text)
    if not tokens:
        raise TranscriptError(path, "contains no words to align")
    audio = _check_audio(audio)
    duration = len(audio) / sample_rate
    activity = detect_speech(audio, sample_rate)
    if not activity.speech.any():
        raise TranscriptError(path, f"no speech found in the audio ({duration:.2f} s), nothing to align the words to")
    speech_s = activity.speech.sum() * HOP_S
    if len(tokens) > 2 * _FAST_SPEECH_WPS * speech_s:  # not a fast talker: another text, or far too much of it
        raise TranscriptError(
            path, f"has {len(tokens)} words for {speech_s:.1f} s of speech ({len(tokens) / speech_s:.0f} words per "
            f"second; people speak at most about {_FAST_SPEECH_WPS:.0f}): the transcript is longer than its audio. "
            "Is it the transcript of this audio?")
    if len(tokens) > _FAST_SPEECH_WPS * speech_s:
        warnings.warn(
            f"{path}: {len(tokens)} words in {speech_s:.1f} s of speech is faster than anyone speaks; "
            "is this the right transcript for this audio?",
            AlignmentWarning,
            stacklevel=2,
        )
    voiced = np.flatnonzero(activity.speech)
    if len(tokens) > len(activity.db):  # not even one frame per word: spread over the speech
        return _spread(tokens, voiced[0] * HOP_S, min(duration, (voiced[-1] + 1) * HOP_S))
    return _align(tokens, activity, 0.0, duration)


def align_segments(
    segments: Sequence[tuple[float, float, str]], audio: np.ndarray, sample_rate: int = 16000,
    activity: SpeechActivity | None = None,
) -> list[Word]:
    """Time the words of each (start, end, text) within its own span, e.g. subtitle cues.

    A span holding no speech, or too short for its words, gets its words spread in
    proportion to their expected lengths, as without audio. `activity`: the audio's
    `detect_speech`, when the caller has it already.
    """
    if activity is None:
        activity = detect_speech(_check_audio(audio), sample_rate)
    words: list[Word] = []
    for start, end, text in segments:
        tokens = tokenize(text)
        if tokens:
            words += _align(tokens, activity, start, end)
    return words


def spread_words(text: str, start: float, end: float) -> list[Word]:
    """The words of `text` end to end over [start, end], each as long as its expected share."""
    tokens = tokenize(text)
    return _spread(tokens, start, end) if tokens else []
