"""The TextGrid reader and writer: both Praat formats, encodings, word extraction, errors with lines."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semges_core.errors import TranscriptError
from semges_core.formats.textgrid import (
    Interval,
    IntervalTier,
    Point,
    PointTier,
    TextGrid,
    Word,
    read_textgrid,
    words_from_textgrid,
    write_textgrid,
)

# Exactly what Praat writes (trailing spaces included); line numbers are used below.
LONG = """\
File type = "ooTextFile"
Object class = "TextGrid"

xmin = 0 
xmax = 2.3 
tiers? <exists> 
size = 2 
item []: 
    item [1]:
        class = "IntervalTier" 
        name = "words" 
        xmin = 0 
        xmax = 2.3 
        intervals: size = 3 
        intervals [1]:
            xmin = 0 
            xmax = 0.5 
            text = "" 
        intervals [2]:
            xmin = 0.5 
            xmax = 1.2 
            text = "say ""hi""\" 
        intervals [3]:
            xmin = 1.2 
            xmax = 2.3 
            text = "there" 
    item [2]:
        class = "TextTier" 
        name = "bell" 
        xmin = 0 
        xmax = 2.3 
        points: size = 1 
        points [1]:
            number = 1.5 
            mark = "ding" 
"""

SHORT = """\
File type = "ooTextFile"
Object class = "TextGrid"

0
2.3
<exists>
2
"IntervalTier"
"words"
0
2.3
3
0
0.5
""
0.5
1.2
"say ""hi""\"
1.2
2.3
"there"
"TextTier"
"bell"
0
2.3
1
1.5
"ding"
"""

EXPECTED = TextGrid(
    0.0,
    2.3,
    [
        IntervalTier(
            "words",
            0.0,
            2.3,
            [Interval(0.0, 0.5, ""), Interval(0.5, 1.2, 'say "hi"'), Interval(1.2, 2.3, "there")],
        ),
        PointTier("bell", 0.0, 2.3, [Point(1.5, "ding")]),
    ],
)


def _write(tmp_path: Path, text: str | bytes, name: str = "take.TextGrid") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


@pytest.mark.parametrize("text", [LONG, SHORT], ids=["long", "short"])
def test_both_formats_read_the_same(tmp_path: Path, text: str) -> None:
    assert read_textgrid(_write(tmp_path, text)) == EXPECTED


def test_writer_reproduces_praat_long_format_exactly(tmp_path: Path) -> None:
    out = tmp_path / "out.TextGrid"
    write_textgrid(out, read_textgrid(_write(tmp_path, SHORT)))
    assert out.read_text(encoding="utf-8") == LONG
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # atomic: no temp left


def test_utf16_with_bom_and_crlf_as_praat_writes_non_ascii(tmp_path: Path) -> None:
    text = LONG.replace('"there"', '"café naïve"').replace("\n", "\r\n")
    tg = read_textgrid(_write(tmp_path, text.encode("utf-16")))  # Python's "utf-16" writes a BOM
    assert tg.tiers[0].intervals[2].text == "café naïve"
    assert tg.tiers[0].intervals[1].text == 'say "hi"'
    assert read_textgrid(_write(tmp_path, text.encode("utf-16-be").join([b"\xfe\xff", b""]))) == tg


def test_utf8_with_bom(tmp_path: Path) -> None:
    assert read_textgrid(_write(tmp_path, b"\xef\xbb\xbf" + LONG.encode())) == EXPECTED


def test_multiline_text_and_comments(tmp_path: Path) -> None:
    text = SHORT.replace('"there"', '"two\nlines" ! a Praat comment')
    tg = read_textgrid(_write(tmp_path, text))
    assert tg.tiers[0].intervals[2].text == "two\nlines"
    assert tg.tiers[1].points == [Point(1.5, "ding")]


def test_no_tiers(tmp_path: Path) -> None:
    tg = TextGrid(0.0, 1.0, [])
    write_textgrid(tmp_path / "empty.TextGrid", tg)
    assert "tiers? <absent>" in (tmp_path / "empty.TextGrid").read_text()
    assert read_textgrid(tmp_path / "empty.TextGrid") == tg


# ----------------------------------------------------------------------------- words


def _grid(*tiers: IntervalTier | PointTier) -> TextGrid:
    return TextGrid(0.0, 3.0, list(tiers))


WORDS = IntervalTier(
    "words",
    0.0,
    3.0,
    [
        Interval(0.0, 0.4, ""),
        Interval(0.4, 0.9, "hello"),
        Interval(0.9, 1.3, "   "),  # a pause written as blanks
        Interval(1.3, 2.0, " world "),
        Interval(2.0, 3.0, ""),
    ],
)
PHONES = IntervalTier(
    "phones", 0.0, 3.0, [Interval(0.0, 0.4, ""), Interval(0.4, 0.6, "HH"), Interval(0.6, 3.0, "AH")]
)
HELLO_WORLD = [Word(0.4, 0.9, "hello"), Word(1.3, 2.0, "world")]


def test_words_drop_pauses_with_or_without_phones_tier() -> None:
    assert words_from_textgrid(_grid(WORDS)) == HELLO_WORLD
    assert words_from_textgrid(_grid(WORDS, PHONES)) == HELLO_WORLD


def test_word_tier_found_by_name_before_tier_zero() -> None:
    renamed = IntervalTier("Word", WORDS.xmin, WORDS.xmax, WORDS.intervals)
    assert words_from_textgrid(_grid(PHONES, renamed)) == HELLO_WORLD
    assert words_from_textgrid(_grid(PHONES, WORDS), tier=1) == HELLO_WORLD
    assert words_from_textgrid(_grid(PHONES, WORDS), tier="WORDS") == HELLO_WORLD
    assert [w.text for w in words_from_textgrid(_grid(PHONES, WORDS), tier="phones")] == ["HH", "AH"]
    # Without a tier called words, tier 0 is the word tier (BEAT's layout).
    transcript = IntervalTier("transcript", 0, 3, WORDS.intervals)
    assert words_from_textgrid(_grid(transcript, PHONES)) == HELLO_WORLD


def test_words_are_sorted() -> None:
    shuffled = IntervalTier("words", 0, 3, list(reversed(WORDS.intervals)))
    assert words_from_textgrid(_grid(shuffled)) == HELLO_WORLD


@pytest.mark.parametrize(
    "grid, tier, words",
    [
        (_grid(IntervalTier("words", 0, 3, [Interval(0, 1, "a"), Interval(0.8, 2, "b")])), None, "overlap"),
        (_grid(WORDS), "syllables", "no tier named 'syllables'"),
        (_grid(WORDS), 4, "no tier number 4"),
        (_grid(PointTier("words", 0, 3, [Point(1, "x")])), None, "point tier"),
        (_grid(), None, "no tiers"),
    ],
)
def test_word_tier_problems_name_the_file(grid: TextGrid, tier: str | int | None, words: str) -> None:
    with pytest.raises(TranscriptError) as err:
        words_from_textgrid(grid, path="take.TextGrid", tier=tier)
    assert str(err.value).startswith("take.TextGrid: ") and words in str(err.value)


# ----------------------------------------------------------------------------- errors


def _replace_line(text: str, line: int, new: str) -> str:
    lines = text.split("\n")
    lines[line - 1] = new
    return "\n".join(lines)


@pytest.mark.parametrize(
    "text, line, words",
    [
        (_replace_line(LONG, 20, "            xmin = abc "), 20, "expected a number for xmin of interval 2"),
        (_replace_line(LONG, 21, "            xmax = 0.4 "), 21, "ends before it starts"),
        (_replace_line(LONG, 5, "xmax = -1 "), 5, "ends before it starts"),
        (_replace_line(LONG, 14, "        intervals: size = 4 "), 28, "expected xmin of interval 4"),
        (_replace_line(LONG, 14, "        intervals: size = 2 "), 24, "expected the class of tier 2"),
        (_replace_line(LONG, 7, "size = 1 "), 28, "unexpected"),
        (_replace_line(LONG, 14, "        intervals: size = three "), 14, "whole number"),
        (_replace_line(LONG, 21, ""), 22, "expected xmax of interval 2"),  # a missing line
        (_replace_line(LONG, 22, '            text = "say hi '), 22, "missing closing quote"),
        ("\n".join(LONG.split("\n")[:25]), 25, "file ends early"),  # truncated
        ("\n".join(LONG.split("\n")[:26]) + "\n", 26, "file ends early"),
        (_replace_line(SHORT, 17, "1.2x"), 17, "expected a number for xmax of interval 2"),
        (_replace_line(SHORT, 12, "4"), 22, "expected a number for xmin of interval 4"),
        (_replace_line(SHORT, 8, '"PolygonTier"'), 8, "IntervalTier"),
        (_replace_line(LONG, 6, "tiers? <maybe> "), 6, "<exists>"),
        ("hello world\n", 1, "ooTextFile"),
        ('File type = "ooBinaryFile"\nObject class = "TextGrid"\n', 1, "binary"),
        ('File type = "ooTextFile"\nObject class = "Sound"\n', 2, "not a TextGrid"),
    ],
)
def test_malformed_input_names_file_and_line(tmp_path: Path, text: str, line: int, words: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(TranscriptError) as err:
        read_textgrid(path)
    assert err.value.path == path
    assert err.value.line == line, str(err.value)
    assert words in err.value.message
    assert str(err.value).startswith(f"{path}:{line}: ")


def test_non_utf8_bytes_give_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, LONG.replace('"there"', '"caf\u00e9"').encode("latin-1"))
    with pytest.raises(TranscriptError) as err:
        read_textgrid(path)
    assert err.value.line == 26 and "UTF-8" in err.value.message


@pytest.mark.parametrize("make", ["missing", "empty", "directory"])
def test_unusable_files(tmp_path: Path, make: str) -> None:
    path = tmp_path / "x.TextGrid"
    if make == "empty":
        path.write_text("  \n")
    elif make == "directory":
        path.mkdir()
    with pytest.raises(TranscriptError) as err:
        read_textgrid(path)
    assert err.value.path == path


# ----------------------------------------------------------------------------- round trip

_times = st.floats(min_value=0.0, max_value=1e4, allow_nan=False, allow_infinity=False)
# Any text Praat could hold; carriage returns excepted, as line endings are normalised on reading.
_text = st.text(st.characters(codec="utf-8", exclude_characters="\r"), max_size=12)


@st.composite
def _interval_tier(draw) -> IntervalTier:
    bounds = sorted(draw(st.lists(_times, min_size=1, max_size=8)))
    intervals = [Interval(a, b, draw(_text)) for a, b in zip(bounds, bounds[1:])]
    return IntervalTier(draw(_text), bounds[0], bounds[-1], intervals)


@st.composite
def _point_tier(draw) -> PointTier:
    times = sorted(draw(st.lists(_times, max_size=5)))
    lo, hi = sorted(draw(st.tuples(_times, _times)))
    return PointTier(draw(_text), lo, hi, [Point(t, draw(_text)) for t in times])


@st.composite
def _textgrids(draw) -> TextGrid:
    lo, hi = sorted(draw(st.tuples(_times, _times)))
    return TextGrid(lo, hi, draw(st.lists(st.one_of(_interval_tier(), _point_tier()), max_size=4)))


@settings(max_examples=60, deadline=None)
@given(_textgrids())
def test_round_trip_of_random_textgrids(tg: TextGrid) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "rt.TextGrid"
        write_textgrid(path, tg)
        assert read_textgrid(path) == tg
