"""`semges align`: a transcript's words timed on its audio, written as a TextGrid or JSON.

The TextGrid opens in Praat, where a person can correct the words' edges and feed the
file back to `semges generate --transcript`; the JSON is the list WhisperX writes
({"words": [{"word", "start", "end"}]}), which `generate` reads as well.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from semges_core.errors import SemgesError
from semges_core.fileio import atomic_write
from semges_core.formats.textgrid import Interval, IntervalTier, TextGrid, Word, write_textgrid
from semges_core.speech.audio import load_audio
from semges_core.speech.transcripts import TimedTranscript, load_timed_transcript

_SUFFIXES = (".textgrid", ".json")


class AlignOutputError(SemgesError):
    """The output of `semges align` names a format it cannot write."""


def _tier(words: list[Word], duration: float) -> IntervalTier:
    """The words as a Praat interval tier: pauses become empty intervals, as Praat expects."""
    intervals: list[Interval] = []
    cursor = 0.0
    for w in words:
        if w.start > cursor:
            intervals.append(Interval(cursor, w.start, ""))
        intervals.append(Interval(w.start, w.end, w.text))
        cursor = w.end
    end = max(duration, cursor)
    if end > cursor:
        intervals.append(Interval(cursor, end, ""))
    return IntervalTier("words", 0.0, end, intervals)


def run_align(audio: str | Path, transcript: str | Path, out: str | Path, language: str = "en") -> TimedTranscript:
    """Align `transcript` to `audio` and write `out` (.TextGrid or .json); returns the timed words written."""
    out = Path(out)
    if out.suffix.lower() not in _SUFFIXES:
        raise AlignOutputError(f"{out}: expected a .TextGrid or .json output, not {out.suffix or 'no suffix'!r}")
    samples = load_audio(audio)
    duration = len(samples) / 16000
    timed = load_timed_transcript(transcript, audio=samples, language=language)
    if out.suffix.lower() == ".json":
        items = ",\n".join(
            "  " + json.dumps({"word": w.text, "start": w.start, "end": w.end}, ensure_ascii=False) for w in timed.words
        )
        with atomic_write(out) as f:  # one word a line, so a person can read and edit it
            f.write(f'{{"aligner": {json.dumps(timed.timing)}, "note": {json.dumps(timed.note, ensure_ascii=False)},\n'
                    f' "words": [\n{items}\n]}}\n')
    else:
        tier = _tier(timed.words, duration)
        write_textgrid(out, TextGrid(0.0, tier.xmax, [tier]))
    return timed


def _cmd_align(args: argparse.Namespace, rest: list[str]) -> int:
    timed = run_align(args.audio, args.transcript, args.out, language=args.language)
    print(f"{args.transcript}: {timed.note}")
    print(f"wrote {args.out}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `semges align` on the subcommands of `semges`."""
    p = sub.add_parser("align", help="time a transcript's words on its audio, as a TextGrid (for Praat) or JSON")
    p.add_argument("--audio", required=True, help="speech: wav, flac, ogg or mp3, any rate, mono or stereo")
    p.add_argument("--transcript", required=True,
                   help="plain text (force-aligned, English), or .srt, .vtt, .json, .TextGrid")
    p.add_argument("--out", required=True, help="words.TextGrid (opens in Praat) or words.json")
    p.add_argument("--language", default="en",
                   help="language of the transcript, e.g. en, en-GB, de (default en): English is force-aligned "
                        "with pocketsphinx, other languages placed by the energy aligner")
    p.set_defaults(func=_cmd_align)
