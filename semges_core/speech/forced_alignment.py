"""Forced alignment of a plain transcript with a phonetic model (pocketsphinx, US English).

The energy aligner (semges_core.speech.alignment) knows only where there is speech; on
real recordings its words land a second or more from where they are said. A forced
aligner knows the sounds of each word and finds them in the audio. pocketsphinx ships
its acoustic model and pronouncing dictionary in the wheel (BSD licence), needs no
torch, and aligns a one-minute take in about a second.

Settings that worked on every clip measured (issue 14): the whole text as one
utterance (`set_align_text`), `full_utt=True`, wide beams, and dither with a fixed
seed (without them some clips fail with "no hypothesis" depending on one bit of a
sample). Word times come from `seg()` at 100 frames per second.

Written words become spoken ones first: "5" -> "five", "3.5" -> "three point five",
"&" -> "and", "well-known" -> "well known". Words missing from the dictionary get a
pronunciation from a small letter-to-sound table: rough, but close enough for the
aligner to place them between their neighbours. Each written word keeps its text as
written and spans its spoken words.

Subtitle cues (`force_align_cues`) time whole lines, loosely (a few tenths of a second
early or late): each cue's words are aligned together with the next cue's, from where
the previous cue's words end to `CUE_MARGIN_S` past the next cue, so the aligner finds
the boundary between them itself; a cue the model cannot align falls back to the energy
aligner within its span, the others keep their forced times.

Takes longer than `CHUNK_S` are aligned in pieces: the energy aligner says roughly
where each sentence is, the text is cut at a long pause near every `CHUNK_S`, and
each piece is aligned within its span widened by `CHUNK_MARGIN_S`, so time and memory
grow linearly with the take's length.
"""

from __future__ import annotations

import re
import unicodedata
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from semges_core.errors import TranscriptError
from semges_core.formats.textgrid import Word
from semges_core.speech.alignment import (
    HOP_S, AlignmentWarning, SpeechActivity, align_plain_text, align_segments, detect_speech, tokenize,
)

SAMPLE_RATE = 16000   # the acoustic model's rate
FRAME_S = 0.01        # pocketsphinx's frame step
CHUNK_S = 90.0        # longer takes are aligned in pieces of about this length
CHUNK_MARGIN_S = 3.0  # each piece may reach this far beyond its rough span
CUE_MARGIN_S = 0.6    # a subtitle cue's words may lie this far outside its span
LANGUAGES = ("en",)   # languages the shipped acoustic model and dictionary are for
# A word said in less than this per phone was squeezed in: the aligner found no sound
# for it (3 HMM states of one 10 ms frame each is the model's minimum).
_SQUEEZED_S_PER_PHONE = 0.035
# Share of squeezed words beyond which the transcript is probably not of this audio.
# Measured: right transcripts of espeak-ng and real speech stay below 0.05.
MISMATCH_SHARE = 0.25
# Speech the aligner had to call silence, beyond this share (and UNWORDED_MIN_S), means
# words are missing from the transcript (half the text, another take).
UNWORDED_SHARE = 0.25
UNWORDED_MIN_S = 2.0


class TranscriptMismatchWarning(AlignmentWarning):
    """The transcript does not seem to be what is said in the audio (another take, missing text)."""


@dataclass(frozen=True)
class SpokenWord:
    """A dictionary word of the aligner, and the written word (index) it belongs to."""

    word: str
    token: int


def available() -> bool:
    """Whether pocketsphinx can be imported here (the forced aligner can run)."""
    try:
        import pocketsphinx  # noqa: F401
    except ImportError:
        return False
    return True


def language_code(language: str) -> str:
    """The primary subtag of a language name or tag, lower case: "en-GB", "en_us", "English" -> "en"."""
    code = re.split(r"[-_]", (language or "").strip().lower())[0]
    return {"english": "en", "eng": "en"}.get(code, code)


def has_model(language: str) -> bool:
    """Whether the forced aligner has a phonetic model for `language` (US English: all English)."""
    return language_code(language) in LANGUAGES


# ----------------------------------------------------------------------------- numbers

_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
         "fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_ORDINAL_SUFFIX = re.compile(r"^(\d+)(st|nd|rd|th)$")
_ORDINALS = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
             "nine": "ninth", "twelve": "twelfth"}


def number_words(n: int) -> list[str]:
    """A whole number as English words: 1905 -> one thousand nine hundred five."""
    if n < 0:
        return ["minus", *number_words(-n)]
    if n < 20:
        return [_ONES[n]]
    if n < 100:
        return [_TENS[n // 10]] + ([_ONES[n % 10]] if n % 10 else [])
    if n < 1000:
        return [_ONES[n // 100], "hundred"] + (number_words(n % 100) if n % 100 else [])
    for scale, name in _SCALES:
        if n >= scale:
            if n // scale >= 1000 and scale == _SCALES[0][0]:  # beyond trillions: say the digits
                return [_ONES[int(d)] for d in str(n)]
            return number_words(n // scale) + [name] + (number_words(n % scale) if n % scale else [])
    raise AssertionError("unreachable")


def _year_words(n: int) -> list[str]:
    """1990 -> nineteen ninety, 2005 -> two thousand five: how years are said."""
    if n % 100 == 0 and n % 1000 != 0:
        return number_words(n // 100) + ["hundred"]
    if 2000 <= n < 2010 or n % 1000 == 0:
        return number_words(n)
    low = n % 100
    return number_words(n // 100) + (number_words(low) if low >= 10 else ["oh", _ONES[low]])


def _ordinal(words: list[str]) -> list[str]:
    last = words[-1]
    if last in _ORDINALS:
        last = _ORDINALS[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return words[:-1] + [last]


_SYMBOLS = {"&": "and", "%": "percent", "+": "plus", "=": "equals", "@": "at", "$": "dollars",
            "€": "euros", "£": "pounds", "°": "degrees", "#": "number"}


def _number_token(core: str) -> list[str] | None:
    """Words for a token made of digits ("5", "1,000", "3.5", "1990s", "21st"), else None."""
    m = _ORDINAL_SUFFIX.match(core)
    if m:
        return _ordinal(number_words(int(m.group(1))))
    plural = core.endswith("s") and core[:-1].isdigit()
    digits = core[:-1] if plural else core
    if re.fullmatch(r"\d{1,3}(,\d{3})+", digits):
        digits = digits.replace(",", "")
    if re.fullmatch(r"\d+", digits):
        n = int(digits)
        if len(digits) > 15:
            words = [_ONES[int(d)] for d in digits]
        elif 1100 <= n <= 2099 and len(digits) == 4:
            words = _year_words(n)
        else:
            words = number_words(n)
        if plural:  # the 1990s -> nineteen nineties
            words = words[:-1] + [words[-1][:-1] + "ies" if words[-1].endswith("y") else words[-1] + "s"]
        return words
    m = re.fullmatch(r"(\d*)\.(\d+)", core)
    if m:
        whole = number_words(int(m.group(1))) if m.group(1) else []
        return whole + ["point"] + [_ONES[int(d)] for d in m.group(2)]
    return None


def spoken_words(written: str) -> list[str]:
    """The words said for one written token, lower case, punctuation gone: "$5" -> five dollars."""
    text = unicodedata.normalize("NFKC", written).lower().replace("’", "'")
    out: list[str] = []
    trailing: list[str] = []
    for piece in re.split(r"[-–—/]+", text):
        core = piece.strip(".,;:!?\"'()[]{}«»“”…")
        if not core:
            continue
        if core[0] in _SYMBOLS and len(core) > 1 and core[1:][:1].isdigit():  # $5 -> five dollars
            trailing.append(_SYMBOLS[core[0]])
            core = core[1:]
        if core[-1] in _SYMBOLS and len(core) > 1:  # 50% -> fifty percent
            trailing.insert(0, _SYMBOLS[core[-1]])
            core = core[:-1]
        number = _number_token(core)
        if number is not None:
            out += number + trailing
        elif core in _SYMBOLS:
            out.append(_SYMBOLS[core])
        else:
            word = "".join(ch for ch in core if ch.isalpha() or ch == "'").strip("'")
            if word:
                out.append(word)
            out += trailing
        trailing = []
    return out


# ----------------------------------------------------------------------------- letters to sounds

# Longest match first; a rough guess of US English, enough to give a word a plausible length
# and sounds for the aligner (CMU phone set, as the pocketsphinx dictionary).
_GRAPHEMES = {
    "tch": "CH", "igh": "AY", "ough": "AO", "augh": "AO", "tion": "SH AH N", "sion": "ZH AH N",
    "ch": "CH", "sh": "SH", "th": "TH", "ph": "F", "ng": "NG", "ck": "K", "qu": "K W", "wh": "W",
    "gh": "", "kn": "N", "wr": "R", "ee": "IY", "ea": "IY", "oo": "UW", "ai": "EY", "ay": "EY",
    "ou": "AW", "ow": "OW", "oi": "OY", "oy": "OY", "au": "AO", "aw": "AO", "ie": "IY", "ei": "EY",
    "ey": "IY", "ue": "UW", "ew": "UW", "oa": "OW", "er": "ER", "ir": "ER", "ur": "ER", "ar": "AA R",
    "or": "AO R",
    "a": "AE", "b": "B", "c": "K", "d": "D", "e": "EH", "f": "F", "g": "G", "h": "HH", "i": "IH",
    "j": "JH", "k": "K", "l": "L", "m": "M", "n": "N", "o": "AA", "p": "P", "q": "K", "r": "R",
    "s": "S", "t": "T", "u": "AH", "v": "V", "w": "W", "x": "K S", "y": "IY", "z": "Z",
}
_LONGEST = max(map(len, _GRAPHEMES))


def letters_to_sounds(word: str) -> str:
    """A rough pronunciation (CMU phones) for a word the dictionary lacks."""
    w = "".join(ch for ch in unicodedata.normalize("NFKD", word.lower()) if "a" <= ch <= "z")
    if len(w) > 3 and w.endswith("e") and w[-2] not in "aeiouy":  # silent final e
        w = w[:-1]
    phones: list[str] = []
    k = 0
    while k < len(w):
        if k and w[k] == w[k - 1] and w[k] not in "aeiou":  # doubled consonants are said once
            k += 1
            continue
        for size in range(min(_LONGEST, len(w) - k), 0, -1):
            piece = w[k : k + size]
            if piece in _GRAPHEMES:
                sound = _GRAPHEMES[piece]
                if piece == "c" and w[k + 1 : k + 2] in ("e", "i", "y"):
                    sound = "S"
                elif piece == "y" and k == 0:
                    sound = "Y"
                phones += sound.split()
                k += size
                break
    return " ".join(phones) or "AH"


# ----------------------------------------------------------------------------- decoding


def _decoder():
    """A fresh decoder (~0.2 s to read the model and dictionary).

    Fresh for every piece: its dither draws from a random stream seeded when it is built,
    so a reused decoder would time the same audio differently the second time.
    """
    from pocketsphinx import Decoder

    return Decoder(lm=None, bestpath=False, dither=True, seed=1, beam=1e-80, wbeam=1e-60, pbeam=1e-80,
                   loglevel="FATAL")


def _dictionary_word(decoder, word: str, guessed: set[str]) -> str:
    """`word` as the dictionary knows it, added with a guessed pronunciation (noted in `guessed`) when missing."""
    if word in guessed:
        return word
    if decoder.lookup_word(word) is None:
        decoder.add_word(word, letters_to_sounds(word), True)
        guessed.add(word)
    return word


def _pcm(audio: np.ndarray, sample_rate: int) -> bytes:
    if sample_rate != SAMPLE_RATE:
        from math import gcd

        from semges_core.speech.audio import resample_poly

        g = gcd(SAMPLE_RATE, sample_rate)
        audio = resample_poly(np.asarray(audio, np.float64), SAMPLE_RATE // g, sample_rate // g)
    return (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def _decode(decoder, spoken: list[str], pcm: bytes, guessed: set[str]) -> list[tuple[int, int]] | None:
    """(first frame, last frame + 1) of each spoken word, or None when the aligner finds no path.

    Spoken words missing from the dictionary are added to it and to `guessed`.
    """
    words = [_dictionary_word(decoder, w, guessed) for w in spoken]
    decoder.set_align_text(" ".join(words))
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    if decoder.hyp() is None:
        return None
    spans = [(s.start_frame, s.end_frame + 1) for s in decoder.seg()
             if not s.word.startswith(("<", "[")) and s.word != "(NULL)"]
    return spans if len(spans) == len(words) else None


@dataclass(frozen=True)
class ForcedAlignment:
    """Timed written words, and the evidence for judging whether the text fits the audio."""

    words: list[Word]
    squeezed: list[str]   # written words the aligner could only squeeze in (no sound found for them)
    failed_pieces: int    # pieces (or cues) where no alignment was found: their words came from the energy aligner
    pieces: int           # pieces (or subtitle cues) the take was aligned in
    speech_s: float       # seconds of speech in the audio (energy detector)
    unworded_s: float     # of which no word covers this many: words missing from the text
    guessed: list[str] = ()  # written words with a spoken word outside the dictionary (letter-to-sound)
    unit: str = "piece"      # what the take was cut into: "piece" or "cue"


@dataclass(frozen=True)
class _Piece:
    """The timed words of one piece, and which of them (indices) were squeezed in or had a guessed pronunciation."""

    words: list[Word]
    squeezed: list[int]
    guessed: list[int]

    def head(self, n: int) -> "_Piece":
        """Only the first `n` words."""
        return _Piece(self.words[:n], [k for k in self.squeezed if k < n], [k for k in self.guessed if k < n])


def _align_piece(tokens: list[str], audio: np.ndarray, offset: float) -> _Piece | None:
    """Written words of one piece of the take timed within `audio` (which starts at `offset` s)."""
    spoken = [SpokenWord(w, k) for k, t in enumerate(tokens) for w in spoken_words(t)]
    if not spoken or len(audio) < SAMPLE_RATE // 10:
        return None
    decoder = _decoder()
    guessed: set[str] = set()
    spans = _decode(decoder, [s.word for s in spoken], _pcm(audio, SAMPLE_RATE), guessed)
    if spans is None:
        return None
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for s, (a, b) in zip(spoken, spans):
        first.setdefault(s.token, a)
        last[s.token] = b
    squeezed: list[int] = []
    for s, (a, b) in zip(spoken, spans):
        phones = len((decoder.lookup_word(s.word) or "AH").split())
        if (b - a) * FRAME_S < _SQUEEZED_S_PER_PHONE * phones:
            squeezed.append(s.token)
    words = _fill_unspoken(tokens, first, last)
    guessed_tokens = list(dict.fromkeys(s.token for s in spoken if s.word in guessed))
    return _Piece([Word(round(offset + a * FRAME_S, 6), round(offset + b * FRAME_S, 6), t) for t, (a, b) in words],
                  squeezed, guessed_tokens)


def _fill_unspoken(tokens: list[str], first: dict[int, int], last: dict[int, int]) -> list[tuple[str, tuple[int, int]]]:
    """Frame spans of all tokens; one without spoken words ("--") takes the instant after its left neighbour."""
    out: list[tuple[str, tuple[int, int]]] = []
    cursor = 0
    for k, t in enumerate(tokens):
        if k in first:
            out.append((t, (first[k], last[k])))
            cursor = last[k]
        else:
            out.append((t, (cursor, cursor)))
    return out


def _pieces(tokens: list[str], rough: list[Word], duration: float) -> list[tuple[int, int, float, float]]:
    """(first token, end token, start s, end s) of pieces of about CHUNK_S, cut at the longest pause."""
    if duration <= CHUNK_S * 1.5:
        return [(0, len(tokens), 0.0, duration)]
    cuts = [0]
    while rough[-1].end - rough[cuts[-1]].start > CHUNK_S * 1.5:
        lo = cuts[-1]
        target = rough[lo].start + CHUNK_S
        candidates = [k for k in range(lo + 1, len(rough)) if abs(rough[k].start - target) < CHUNK_S / 3]
        if not candidates:
            break
        cut = max(candidates, key=lambda k: rough[k].start - rough[k - 1].end)
        cuts.append(cut)
    cuts.append(len(tokens))
    pieces = []
    for a, b in zip(cuts, cuts[1:]):
        start = max(0.0, rough[a].start - CHUNK_MARGIN_S) if a else 0.0
        end = min(duration, rough[b - 1].end + CHUNK_MARGIN_S) if b < len(tokens) else duration
        pieces.append((a, b, start, end))
    return pieces


def force_align(text: str, audio: np.ndarray, sample_rate: int = 16000, *, path: str | Path = "<text>") -> ForcedAlignment:
    """Time every word of `text` within `audio` (mono samples in [-1, 1]) with pocketsphinx.

    Words keep their text as written, punctuation included (as `align_plain_text`).
    A piece the model cannot align falls back to the energy aligner's times.
    """
    tokens = [t.text for t in tokenize(text)]
    if not tokens:
        raise TranscriptError(path, "contains no words to align")
    audio = np.asarray(audio, np.float32)
    if sample_rate != SAMPLE_RATE:
        audio = np.frombuffer(_pcm(audio, sample_rate), "<i2").astype(np.float32) / 32767
    duration = len(audio) / SAMPLE_RATE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AlignmentWarning)  # the energy aligner's doubts are rechecked below
        rough = align_plain_text(text, audio, SAMPLE_RATE, path=path)
    pieces = _pieces(tokens, rough, duration)
    windows = [(tokens[a:b], start, end, rough[a:b]) for a, b, start, end in pieces]
    return _align_windows(windows, audio, detect_speech(audio, SAMPLE_RATE))


def _align_windows(windows: list[tuple[list[str], float, float, list[Word]]], audio: np.ndarray,
                   activity: SpeechActivity) -> ForcedAlignment:
    """Each window's tokens aligned within [start, end] s of `audio` (16 kHz); its fallback words where that fails."""
    pieces: list[_Piece | list[Word]] = []
    for tokens, start, end, fallback in windows:
        lo, hi = int(start * SAMPLE_RATE), int(end * SAMPLE_RATE)
        pieces.append(_align_piece(tokens, audio[lo:hi], lo / SAMPLE_RATE) or fallback)
    return _result(pieces, len(audio) / SAMPLE_RATE, activity, "piece")


def _result(pieces: list["_Piece | list[Word]"], duration: float, activity: SpeechActivity, unit: str
            ) -> ForcedAlignment:
    """The pieces' words in order (forced ones as `_Piece`, fallbacks as plain words), with the evidence of fit."""
    words: list[Word] = []
    squeezed: list[str] = []
    guessed: list[str] = []
    failed = 0
    for piece in pieces:
        if isinstance(piece, _Piece):
            words += piece.words
            squeezed += [piece.words[k].text for k in piece.squeezed]
            guessed += [piece.words[k].text for k in piece.guessed]
        else:
            failed += 1
            words += piece
    # Windows overlap by their margins: keep each word after the previous one.
    ordered: list[Word] = []
    for w in words:
        floor = ordered[-1].end if ordered else 0.0
        start = min(max(w.start, floor), duration)
        ordered.append(Word(start, min(max(w.end, start), duration), w.text))
    speech = activity.speech
    covered = np.zeros(len(speech), bool)
    for w in ordered:
        covered[int(round(w.start / HOP_S)) : int(round(w.end / HOP_S))] = True
    unworded = float((speech & ~covered).sum() * HOP_S)
    return ForcedAlignment(ordered, squeezed, failed, len(pieces), float(speech.sum() * HOP_S), unworded,
                           list(dict.fromkeys(guessed)), unit)


def force_align_cues(cues: Sequence[tuple[float, float, str]], audio: np.ndarray, sample_rate: int = 16000, *,
                     path: str | Path = "<cues>") -> ForcedAlignment:
    """Time the words of each (start, end, text) subtitle cue with pocketsphinx, near the cue's span.

    Cue spans are loose (a few tenths of a second early or late), so a cue's words are
    looked for from where the previous cue's words end to CUE_MARGIN_S past the end of
    the *next* cue, aligned together with the next cue's words: the aligner itself finds
    the boundary between the two, and only this cue's words are kept. A cue the model
    cannot align (no path, no speech there) gets the energy aligner's times within its own
    span; its count is `failed_pieces`.
    """
    audio = np.asarray(audio, np.float32)
    if sample_rate != SAMPLE_RATE:
        audio = np.frombuffer(_pcm(audio, sample_rate), "<i2").astype(np.float32) / 32767
    duration = len(audio) / SAMPLE_RATE
    cues = [(s, e, [t.text for t in tokenize(text)]) for s, e, text in cues]
    cues = [c for c in cues if c[2]]
    if not cues:
        raise TranscriptError(path, "contains no words to align")
    activity = detect_speech(audio, SAMPLE_RATE)
    pieces: list[_Piece | list[Word]] = []
    floor = 0.0  # where the previous cue's words end
    for k, (s, e, tokens) in enumerate(cues):
        lo = min(max(floor, s - CUE_MARGIN_S), s + CUE_MARGIN_S)
        nxt = cues[k + 1] if k + 1 < len(cues) else None
        piece = None
        if nxt is not None:
            piece = _align_span(tokens + nxt[2], audio, lo, min(duration, max(e, nxt[1]) + CUE_MARGIN_S))
            piece = piece.head(len(tokens)) if piece is not None else None
        if piece is None:  # the last cue, or the pair found no path: this cue alone
            piece = _align_span(tokens, audio, lo, min(duration, e + CUE_MARGIN_S))
        if piece is None:
            fallback = align_segments([(s, e, " ".join(tokens))], audio, SAMPLE_RATE, activity=activity)
            pieces.append(fallback)
            floor = max(floor, min(e, nxt[0] if nxt is not None else e) - CUE_MARGIN_S)
        else:
            pieces.append(piece)
            floor = piece.words[-1].end
    return _result(pieces, duration, activity, "cue")


def _align_span(tokens: list[str], audio: np.ndarray, start: float, end: float) -> _Piece | None:
    lo, hi = int(start * SAMPLE_RATE), int(end * SAMPLE_RATE)
    return _align_piece(tokens, audio[lo:hi], lo / SAMPLE_RATE) if hi > lo else None


def check_fit(result: ForcedAlignment, path: str | Path) -> None:
    """Warn, with the evidence, when the alignment says the text is not what the audio says."""
    n = len(result.words)
    share = len(result.squeezed) / n
    if result.failed_pieces:
        warnings.warn(
            f"{path}: the forced aligner found no way to say this text in the audio "
            f"({result.failed_pieces} of {result.pieces} {result.unit}(s)); the words there were placed by speech energy "
            "only. Is this the transcript of this audio?",
            TranscriptMismatchWarning, stacklevel=3,
        )
    elif result.unworded_s > max(UNWORDED_MIN_S, UNWORDED_SHARE * result.speech_s):
        warnings.warn(
            f"{path}: {result.unworded_s:.1f} s of the {result.speech_s:.1f} s of speech has no word of the transcript "
            "(the aligner could only call it silence); is the transcript complete, and of this take?",
            TranscriptMismatchWarning, stacklevel=3,
        )
    elif share > MISMATCH_SHARE:
        examples = ", ".join(repr(w) for w in result.squeezed[:5])
        warnings.warn(
            f"{path}: {len(result.squeezed)} of {n} words ({share:.0%}) could only be squeezed into the audio "
            f"with no sound of their own (e.g. {examples}); is this the transcript of this audio, and all of it?",
            TranscriptMismatchWarning, stacklevel=3,
        )
