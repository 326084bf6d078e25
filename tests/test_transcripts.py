"""Transcript formats (SRT, WebVTT, JSON, TextGrid, plain text) to timed words, and their errors."""

from __future__ import annotations

import json
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from semges_core.errors import TranscriptError
from semges_core.speech import forced_alignment
from semges_core.speech.forced_alignment import TranscriptMismatchWarning
from semges_core.formats.textgrid import Interval, IntervalTier, TextGrid, Word, write_textgrid
from semges_core.speech.transcripts import (
    check_words,
    load_transcript,
    read_json_words,
    read_plain_text,
    read_srt,
    read_vtt,
)

SR = 16000


def write(folder: Path, name: str, text: str | bytes) -> Path:
    path = folder / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", newline="")
    return path


def texts(words: list[Word]) -> list[str]:
    return [w.text for w in words]


def assert_ordered(words: list[Word]) -> None:
    for w in words:
        assert 0 <= w.start <= w.end
    for a, b in zip(words, words[1:]):
        assert a.end <= b.start + 1e-9


@contextmanager
def raises(path: Path, match: str, line: int | None = None) -> Iterator[pytest.ExceptionInfo]:
    """Expect a TranscriptError that names the file (and line) and says `match`."""
    with pytest.raises(TranscriptError, match=match) as info:
        yield info
    err = info.value
    assert err.path == path
    assert err.line == line, f"line {err.line}, expected {line}: {err}"
    assert str(err).startswith((f"{path}:{line}" if line is not None else str(path)) + ": ")


def bursts(spans: list[tuple[float, float]], duration: float) -> np.ndarray:
    """Speech-like bursts (a 150 Hz buzz with a syllable-rate wobble) in faint noise."""
    t = np.arange(int(duration * SR)) / SR
    x = np.random.default_rng(0).normal(0, 1e-3, len(t))
    for a, b in spans:
        on = (t >= a) & (t < b)
        x[on] += 0.3 * np.sign(np.sin(2 * np.pi * 150 * t[on])) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t[on]))
    return x.astype(np.float32)


# ----------------------------------------------------------------------------- SRT

SRT = """\
1
00:00:01,000 --> 00:00:03,000
<i>Hello</i> there, my
<font color="#ffff00">extraordinary</font> friend.

2
00:00:03,500 --> 00:00:05,250 X1:100 X2:200
[MUSIC] JOHN: Yes.
- Really?

"""


def test_srt_words_share_their_cue(tmp_path):
    words = read_srt(write(tmp_path, "a.srt", SRT))
    assert texts(words) == ["Hello", "there,", "my", "extraordinary", "friend.", "Yes.", "Really?"]
    assert words[0].start == 1.0 and words[4].end == 3.0
    assert words[5].start == 3.5 and words[6].end == 5.25
    assert_ordered(words)
    lengths = {w.text: w.end - w.start for w in words}
    assert lengths["extraordinary"] > lengths["friend."] > lengths["my"]
    assert words[1].start == words[0].end  # words of a cue are end to end


def test_srt_variants(tmp_path):
    """No numbers, "." before milliseconds, no hours, CRLF, a byte-order mark, a number as text."""
    text = "\ufeff00:00:01.5 --> 00:00:02.000\r\nforty\r\n\r\n01:02,000 --> 01:03,000\r\n42\r\n"
    words = read_srt(write(tmp_path, "b.srt", text))
    assert [(w.start, w.end, w.text) for w in words] == [(1.5, 2.0, "forty"), (62.0, 63.0, "42")]


def test_srt_overlapping_cues_are_cut(tmp_path):
    text = "1\n00:00:01,000 --> 00:00:03,000\none two\n\n2\n00:00:02,000 --> 00:00:04,000\nthree\n"
    words = read_srt(write(tmp_path, "c.srt", text))
    assert texts(words) == ["one", "two", "three"]
    assert words[1].end == 2.0 and words[2].start == 2.0
    assert_ordered(words)


def test_srt_cues_at_the_same_time_are_merged(tmp_path):
    text = "1\n00:00:01,000 --> 00:00:02,000\nfirst\n\n2\n00:00:01,000 --> 00:00:03,000\nsecond\n"
    words = read_srt(write(tmp_path, "d.srt", text))
    assert texts(words) == ["first", "second"] and words[-1].end == 3.0


@pytest.mark.parametrize(
    "text, line, match",
    [
        ("1\n00:00:01,000 --> 00:00:0x,000\nhi\n", 2, "bad timestamp '00:00:0x,000'"),
        ("1\n00:00:01,000 -> 00:00:02,000\nhi\n", 2, "bad timing line"),
        ("1\n00:00:01,000 --> 00:00:02,000\nhi\n\n2\n00:00:05,000 --> 00:00:04,000\nho\n", 6, "ends before it starts"),
        ("1\n00:00:01,000 --> 00:01:75,000\nhi\n", 2, "below 60"),
        ("Hello there\n00:00:01,000 --> 00:00:02,000\nhi\n", 1, "expected a cue number or a timing line"),
    ],
)
def test_srt_errors_name_the_line(tmp_path, text, line, match):
    path = write(tmp_path, "bad.srt", text)
    with raises(path, match, line):
        read_srt(path)


def test_srt_without_cues_or_words(tmp_path):
    path = write(tmp_path, "none.srt", "just some text\n")
    with raises(path, "expected a cue number", 1):
        read_srt(path)
    path = write(tmp_path, "empty.srt", "")
    with raises(path, "no subtitle cues"):
        read_srt(path)
    path = write(tmp_path, "music.srt", "1\n00:00:01,000 --> 00:00:02,000\n[music]\n")
    with raises(path, "contains no words"):
        read_srt(path)


# ----------------------------------------------------------------------------- WebVTT

VTT = """\
WEBVTT - a title
Kind: captions

NOTE this is a comment
that spans lines --> and has an arrow

STYLE
::cue { color: yellow }

intro
00:01.000 --> 00:02.000 align:start position:10%
<v Roger>Hello &amp; welcome

01:00:00.000 --> 01:00:01.000
<c.loud>Bye</c> now
"""


def test_vtt_cues_notes_and_styles(tmp_path):
    words = read_vtt(write(tmp_path, "a.vtt", VTT))
    assert texts(words) == ["Hello", "welcome", "Bye", "now"]  # "&" alone is not a word
    assert words[0].start == 1.0 and words[1].end == 2.0
    assert words[2].start == 3600.0 and words[3].end == 3601.0


def test_vtt_inline_timestamps_time_the_words(tmp_path):
    text = "WEBVTT\n\n00:00:01.000 --> 00:00:03.000\nI <00:00:01.200>said <00:00:02.000>yes\n"
    words = read_vtt(write(tmp_path, "b.vtt", text))
    assert [(w.start, w.end, w.text) for w in words] == [(1.0, 1.2, "I"), (1.2, 2.0, "said"), (2.0, 3.0, "yes")]


def test_vtt_youtube_rolling_captions_are_not_repeated(tmp_path):
    text = (
        "WEBVTT\nKind: captions\nLanguage: en\n\n"
        "00:00:01.000 --> 00:00:02.500 align:start position:0%\n \n"
        "hello<00:00:01.500><c> big</c><00:00:02.000><c> world</c>\n\n"
        "00:00:02.500 --> 00:00:02.510 align:start position:0%\nhello big world\n \n\n"
        "00:00:02.510 --> 00:00:04.000 align:start position:0%\nhello big world\n"
        "again<00:00:03.000><c> and</c><00:00:03.500><c> more</c>\n"
    )
    words = read_vtt(write(tmp_path, "yt.vtt", text))
    assert texts(words) == ["hello", "big", "world", "again", "and", "more"]
    assert [w.start for w in words] == [1.0, 1.5, 2.0, 2.51, 3.0, 3.5]


@pytest.mark.parametrize(
    "text, line, match",
    [
        ("1\n00:00:01.000 --> 00:00:02.000\nhi\n", 1, "expected 'WEBVTT'"),
        ("WEBVTT\n\n00:01.000 --> 00:xx.000\nhi\n", 3, "bad timestamp"),
        ("WEBVTT\n\n00:03.000 --> 00:02.000\nhi\n", 3, "ends before it starts"),
        ("WEBVTT\n\nan id\nnot a timing\nhi\n", 3, "expected a cue timing line"),
        ("WEBVTT\n\n00:01.000 --> 00:02.000\nhi\n\nstray text\n", 6, "expected a cue timing line"),
        ("WEBVTT\n\n00:01.000 --> 00:02.000\nhi\nthere <00:05.000>you\n", 5, "inline timestamp <00:05.000>"),
        ("WEBVTT\n\n00:01.000 --> 00:04.000\na <00:03.000>b <00:02.000>c\n", 4, "inline timestamp <00:02.000>"),
    ],
)
def test_vtt_errors_name_the_line(tmp_path, text, line, match):
    path = write(tmp_path, "bad.vtt", text)
    with raises(path, match, line):
        read_vtt(path)


# ----------------------------------------------------------------------------- JSON


@pytest.mark.parametrize(
    "data",
    [
        [{"word": "hi", "start": 0.5, "end": 0.8}, {"word": " there ", "start": 0.9, "end": 1.2}],
        [{"text": "hi", "start": 0.5, "end": 0.8}, {"text": "there", "start": 0.9, "end": 1.2}],
        {"words": [{"word": "hi", "start": 0.5, "end": 0.8}, {"word": "there", "start": 0.9, "end": 1.2}]},
        {  # WhisperX
            "segments": [
                {"start": 0.5, "end": 0.8, "text": " hi", "words": [{"word": "hi", "start": 0.5, "end": 0.8, "score": 0.9}]},
                {"start": 0.9, "end": 1.2, "text": " there", "words": [{"word": "there", "start": 0.9, "end": 1.2}]},
            ],
            "word_segments": [{"word": "ignored", "start": 0.0, "end": 0.1}],
        },
        {"word_segments": [{"word": "hi", "start": 0.5, "end": 0.8}, {"word": "there", "start": 0.9, "end": 1.2}]},
    ],
)
def test_json_shapes(tmp_path, data):
    words = read_json_words(write(tmp_path, "w.json", json.dumps(data)))
    assert [(w.start, w.end, w.text) for w in words] == [(0.5, 0.8, "hi"), (0.9, 1.2, "there")]


def test_json_whisper_segments_without_words_are_spread(tmp_path):
    data = {"text": "Hi there. Bye.", "segments": [{"start": 1.0, "end": 2.0, "text": " Hi there."},
                                                    {"start": 2.5, "end": 3.0, "text": " Bye."}]}
    words = read_json_words(write(tmp_path, "whisper.json", json.dumps(data)))
    assert texts(words) == ["Hi", "there.", "Bye."]
    assert words[0].start == 1.0 and words[1].end == 2.0 and words[2].start == 2.5


def test_json_untimed_words_fill_the_gap(tmp_path):
    """WhisperX gives numbers no times; they share the gap between their neighbours."""
    data = [{"word": "in", "start": 1.0, "end": 1.2}, {"word": "1999"}, {"word": "we", "start": 2.0, "end": 2.2}]
    words = read_json_words(write(tmp_path, "x.json", json.dumps(data)))
    assert texts(words) == ["in", "1999", "we"]
    assert (words[1].start, words[1].end) == (1.2, 2.0)


@pytest.mark.parametrize(
    "text, match, line",
    [
        ('[{"word": "hi", "start": 0.5, "end": 0.8},\n {"word": "x" "start": 1}]', "not valid JSON", 2),
        ('[{"word": "hi", "start": 0.5, "end": 0.8}, "there"]', r"\[1\] is str, expected an object", None),
        ('[{"start": 0.5, "end": 0.8}]', r"\[0\] has neither 'word' nor 'text'", None),
        ('[{"word": 3, "start": 0.5, "end": 0.8}]', r"\[0\] has a int as its text", None),
        ('{"words": [{"word": "a", "start": 0, "end": 1}, {"word": "b", "start": "1.5", "end": 2}]}',
         r"words\[1\]: 'start' must be a number of seconds, found '1.5'", None),
        ('{"segments": [{"words": []}, {"words": [{"word": "a", "start": 2, "end": 1}]}]}',
         r"segments\[1\]\.words\[0\] ends before it starts", None),
        ('[{"word": "a", "start": -1, "end": 1}]', r"\[0\]: 'start' is negative", None),
        ('[{"word": "a", "start": 1}]', r"\[0\] has 'start' but no 'end'", None),
        ('[{"word": "a"}, {"word": "b"}]', "no word has 'start' and 'end' times", None),
        ('{"result": []}', "found keys 'result'", None),
        ('"hello"', "is a JSON str", None),
        ("[]", "contains no words", None),
    ],
)
def test_json_errors_name_the_item(tmp_path, text, match, line):
    path = write(tmp_path, "bad.json", text)
    with raises(path, match, line):
        read_json_words(path)


# ----------------------------------------------------------------------------- TextGrid and plain text


def test_textgrid_via_load_transcript(tmp_path):
    tg = TextGrid(0, 2, [IntervalTier("words", 0, 2, [Interval(0, 0.4, ""), Interval(0.4, 0.9, " hello "),
                                                       Interval(0.9, 1.5, "world"), Interval(1.5, 2, "")])])
    path = tmp_path / "take.TextGrid"
    write_textgrid(path, tg)
    expected = [Word(0.4, 0.9, "hello"), Word(0.9, 1.5, "world")]
    assert load_transcript(path) == expected
    lower = tmp_path / "take.textgrid"
    lower.write_bytes(path.read_bytes())
    assert load_transcript(lower, audio=np.zeros(2 * SR, np.float32)) == expected


def test_plain_text_reading(tmp_path):
    assert read_plain_text(write(tmp_path, "a.txt", "\ufeffHello there.\n")) == "Hello there.\n"
    path = write(tmp_path, "empty.txt", "")
    with raises(path, "is empty"):
        read_plain_text(path)
    path = write(tmp_path, "blank.txt", " \n\t\n")
    with raises(path, "only whitespace"):
        read_plain_text(path)
    path = write(tmp_path, "latin1.txt", "Hello\ncaf\xe9 time".encode("latin-1"))
    with raises(path, r"not valid UTF-8 \(byte 9\)", 2):
        read_plain_text(path)
    with raises(tmp_path / "missing.txt", "no such file"):
        read_plain_text(tmp_path / "missing.txt")


def test_plain_text_is_aligned_to_the_audio(tmp_path):
    audio = bursts([(0.5, 1.2), (1.7, 2.1), (2.8, 3.5)], 4.0)
    path = write(tmp_path, "talk.txt", "Hello. Yes.\nGoodbye!\n")
    words = load_transcript(path, audio=audio, sample_rate=SR)
    assert texts(words) == ["Hello.", "Yes.", "Goodbye!"]
    assert abs(words[0].start - 0.5) < 0.03 and abs(words[2].end - 3.5) < 0.03
    with raises(path, "plain text without times; give the audio"):
        load_transcript(path)
    with raises(path, "no speech found"):
        load_transcript(path, audio=np.zeros(SR, np.float32))


def test_text_block_is_plain_text_or_sniffed(tmp_path):
    audio = bursts([(0.5, 1.2), (1.7, 2.1)], 3.0)
    words = load_transcript("Text", audio=audio, text_block="Hello. Yes.")
    assert texts(words) == ["Hello.", "Yes."]
    srt = load_transcript("Text.001", text_block="1\r\n00:00:00,500 --> 00:00:01,000\r\nhi\r\n")
    assert srt == [Word(0.5, 1.0, "hi")]
    vtt = load_transcript("Text", text_block="WEBVTT\n\n00:00.500 --> 00:01.000\nhi\n")
    assert vtt == [Word(0.5, 1.0, "hi")]
    as_json = load_transcript("Text", text_block='[{"word": "hi", "start": 0.5, "end": 1}]')
    assert as_json == [Word(0.5, 1.0, "hi")]
    with raises(Path("Text"), "only whitespace"):
        load_transcript("Text", audio=audio, text_block="  \n ")
    # A file whose suffix says nothing is sniffed too.
    assert load_transcript(write(tmp_path, "subs.txt", "00:00:00,500 --> 00:00:01,000\nhi\n")) == srt


def test_subtitles_with_audio_are_refined_to_the_speech(tmp_path):
    audio = bursts([(1.2, 1.8), (2.0, 2.9)], 5.0)
    path = write(tmp_path, "a.srt", "1\n00:00:01,000 --> 00:00:03,500\nyes extraordinary\n")
    rough = read_srt(path)
    # Noise bursts are not speech: the forced aligner finds no way to say the words in them, says so,
    # and the energy aligner places them on the bursts instead.
    expect = pytest.warns(TranscriptMismatchWarning, match=r"1 of 1 cue\(s\)")
    with expect if forced_alignment.available() else nullcontext():
        refined = load_transcript(path, audio=audio, sample_rate=SR)
    assert rough[0].start == 1.0 and rough[-1].end == 3.5
    assert abs(refined[0].start - 1.2) < 0.03 and abs(refined[0].end - 1.8) < 0.03
    assert abs(refined[1].start - 2.0) < 0.03 and abs(refined[1].end - 2.9) < 0.03


# ----------------------------------------------------------------------------- rules for every format


def test_transcript_longer_than_audio(tmp_path):
    path = write(tmp_path, "long.json", json.dumps([{"word": "hi", "start": 0.5, "end": 3.0}]))
    with raises(path, r"transcript is longer than its audio \(3.00 s vs 2.00 s\)"):
        load_transcript(path, audio=np.zeros(2 * SR, np.float32), sample_rate=SR)
    words = load_transcript(path, audio=np.zeros(int(2.7 * SR), np.float32), sample_rate=SR)
    assert words == [Word(0.5, 2.7, "hi")]  # a small overrun is cut at the audio's end


def test_check_words_sorts_cuts_and_rejects():
    path = Path("t.json")
    words = check_words([Word(2.0, 2.5, "b"), Word(1.0, 2.2, "a "), Word(3, 3, "  ")], path)
    assert words == [Word(1.0, 2.0, "a"), Word(2.0, 2.5, "b")]
    with raises(path, "both start at 1.0 s and overlap"):
        check_words([Word(1.0, 2.0, "a"), Word(1.0, 1.5, "b")], path)
    with raises(path, r"word 1 \('a'\) starts at a negative time"):
        check_words([Word(-1.0, 2.0, "a")], path)
    with raises(path, r"word 2 \('b'\) ends before it starts"):
        check_words([Word(0.0, 1.0, "a"), Word(2.0, 1.5, "b")], path)
    with raises(path, "not a number"):
        check_words([Word(0.0, float("nan"), "a")], path)
    with raises(path, "contains no words"):
        check_words([Word(0.0, 1.0, " ")], path)


def test_missing_file_and_directory(tmp_path):
    with raises(tmp_path / "nope.srt", "no such file"):
        load_transcript(tmp_path / "nope.srt")
    with raises(tmp_path, "is a directory"):
        load_transcript(tmp_path)
