"""BEAT semantic (.txt) and emotion (.csv) annotations: BEAT's own rows, round trips, errors."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semges_core.formats.annotations import (
    EMOTIONS,
    SEMANTIC_TYPES,
    EmotionSegment,
    SemanticSegment,
    read_emotion,
    read_semantic,
    write_emotion,
    write_semantic,
)
from semges_core.errors import AnnotationError

# The example rows of docs/semges-reference.md, section 3, byte for byte.
BEAT_SEMANTIC = (
    "01_beat_align\t0\t3.119\t3.119\t0.1\n"
    "07_iconic_h\t3.119\t4.785\t1.666\t0.7\trelaxing\n"
    "10_metaphoric_h\t13.494\t15.358\t1.864\t1.0\tMonday through Friday\n"
    "02_deictic_l\t29.389\t30.494\t1.105\t0.2\tfriends\n"
)
BEAT_SEGMENTS = [
    SemanticSegment(1, "beat_align", 0.0, 3.119, 0.1, ""),
    SemanticSegment(7, "iconic_h", 3.119, 4.785, 0.7, "relaxing"),
    SemanticSegment(10, "metaphoric_h", 13.494, 15.358, 1.0, "Monday through Friday"),
    SemanticSegment(2, "deictic_l", 29.389, 30.494, 0.2, "friends"),
]
BEAT_EMOTION = "00_netural,0,63.908,63.908,0\n"


def _write(tmp_path: Path, text: str, name: str) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def test_tables() -> None:
    names = [SEMANTIC_TYPES[i] for i in (0, 1, 4, 5, 10)]
    assert names == ["none", "beat_align", "deictic_h", "iconic_l", "metaphoric_h"]
    assert EMOTIONS.index("disgust") == 7


def test_beat_semantic_rows_read_and_write_back_exactly(tmp_path: Path) -> None:
    assert read_semantic(_write(tmp_path, BEAT_SEMANTIC, "a.txt")) == BEAT_SEGMENTS
    write_semantic(tmp_path / "b.txt", BEAT_SEGMENTS)
    assert (tmp_path / "b.txt").read_bytes() == BEAT_SEMANTIC.encode()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]  # no temporary left


def test_semantic_variants_are_tolerated(tmp_path: Path) -> None:
    text = (
        "\ufeff05_iconic_l\t1\t2\t1\t0.5\t\r\n"  # BOM, CRLF and an empty keyword column
        "\n"
        "habit\t2\t2.5\t0.5\t0.3\tscratching the head\n"  # BEAT's extra labels, score kept as given
        "12_need_cut\t3\t4\t1\t0\n"
        "04_deictic_h  5  6  1  0.4  over there\n"  # spaces instead of tabs
    )
    segs = read_semantic(_write(tmp_path, text, "v.txt"))
    assert segs == [
        SemanticSegment(5, "iconic_l", 1.0, 2.0, 0.5, ""),
        SemanticSegment(11, "habit", 2.0, 2.5, 0.3, "scratching the head"),
        SemanticSegment(12, "need_cut", 3.0, 4.0, 0.0, ""),
        SemanticSegment(4, "deictic_h", 5.0, 6.0, 0.4, "over there"),
    ]


def test_empty_semantic_file_has_no_segments(tmp_path: Path) -> None:
    assert read_semantic(_write(tmp_path, "", "e.txt")) == []


@pytest.mark.parametrize(
    "row, words",
    [
        ("07_iconic_h\t3.119\t4.785\t1.666", "found 4"),
        ("07_iconic_h\tthree\t4.785\t1.666\t0.7", "start: expected a number"),
        ("07_iconic_h\t3.119\t4.785\t1.666\thigh", "score: expected a number"),
        ("07_iconic_h\t3.119\t4.785\tnan\t0.7", "duration: expected a number"),
        ("07_iconic_h\t4.785\t3.119\t-1.666\t0.7", "before start"),
        ("07_iconic_h\t-1\t3.119\t4.119\t0.7", "negative"),
        ("07_ironic_h\t3.119\t4.785\t1.666\t0.7", "unknown semantic type"),
        ("13_gesture\t3.119\t4.785\t1.666\t0.7", "unknown semantic type"),
        ("42\t3.119\t4.785\t1.666\t0.7", "unknown semantic type"),
        ("05_iconic_h\t3.119\t4.785\t1.666\t0.7", "does not match"),
    ],
)
def test_semantic_errors_name_file_and_line(tmp_path: Path, row: str, words: str) -> None:
    path = _write(tmp_path, BEAT_SEMANTIC.replace("\n", "\n\n", 1) + row + "\n", "bad.txt")
    with pytest.raises(AnnotationError) as err:
        read_semantic(path)
    assert err.value.path == path and err.value.line == 6  # 4 good rows and a blank line before it
    assert words in err.value.message
    assert str(err.value).startswith(f"{path}:6: ")


def test_non_utf8_semantic_file(tmp_path: Path) -> None:
    path = tmp_path / "latin.txt"
    path.write_bytes(BEAT_SEMANTIC.encode() + "07_iconic_h\t1\t2\t1\t0.7\tcaf\u00e9\n".encode("latin-1"))
    with pytest.raises(AnnotationError) as err:
        read_semantic(path)
    assert err.value.line == 5


def test_missing_annotation_file(tmp_path: Path) -> None:
    with pytest.raises(AnnotationError, match="no such file"):
        read_semantic(tmp_path / "none.txt")
    with pytest.raises(AnnotationError, match="no such file"):
        read_emotion(tmp_path / "none.csv")


def test_writer_rejects_what_the_format_cannot_hold(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_semantic(tmp_path / "x.txt", [SemanticSegment(7, "iconic_h", 1, 2, 0.7, "two\tcells")])
    with pytest.raises(ValueError):
        write_semantic(tmp_path / "x.txt", [SemanticSegment(99, "?", 1, 2, 0.7, "")])
    with pytest.raises(ValueError):
        write_semantic(tmp_path / "x.txt", [SemanticSegment(7, "iconic_h", 2, 1, 0.7, "")])
    assert not (tmp_path / "x.txt").exists()


_ms = st.integers(min_value=0, max_value=600_000).map(lambda ms: ms / 1000)
_keywords = st.text(st.characters(codec="utf-8", exclude_characters="\t\r\n"))


@st.composite
def _segment(draw) -> SemanticSegment:
    type_id = draw(st.sampled_from(sorted(SEMANTIC_TYPES)))
    a, b = sorted((draw(_ms), draw(_ms)))
    score = draw(st.sampled_from([type_id / 10, 0.0, 0.35, 1.0]))
    return SemanticSegment(type_id, SEMANTIC_TYPES[type_id], a, b, score, draw(_keywords).strip())


@settings(max_examples=40, deadline=None)
@given(st.lists(_segment(), max_size=6))
def test_semantic_round_trip(segments: list[SemanticSegment]) -> None:
    with tempfile.TemporaryDirectory() as d:
        write_semantic(Path(d) / "rt.txt", segments)
        assert read_semantic(Path(d) / "rt.txt") == segments


# ----------------------------------------------------------------------------- emotion


def test_beat_emotion_row_with_its_misspelling(tmp_path: Path) -> None:
    segs = read_emotion(_write(tmp_path, BEAT_EMOTION, "a.csv"))
    assert segs == [EmotionSegment(0, "neutral", 0.0, 63.908, 0.0)]
    write_emotion(tmp_path / "b.csv", segs)
    assert (tmp_path / "b.csv").read_text() == BEAT_EMOTION
    write_emotion(tmp_path / "c.csv", segs, beat_spelling=False)
    assert (tmp_path / "c.csv").read_text() == "00_neutral,0,63.908,63.908,0\n"
    assert read_emotion(tmp_path / "c.csv") == segs


def test_emotion_labels_and_header(tmp_path: Path) -> None:
    text = "name,start,end,duration,score\n03_sadness,0,10.5,10.5,1\nfear,10.5,20,9.5,0.5\n"
    assert read_emotion(_write(tmp_path, text, "e.csv")) == [
        EmotionSegment(3, "sadness", 0.0, 10.5, 1.0),
        EmotionSegment(6, "fear", 10.5, 20.0, 0.5),
    ]
    segs = [EmotionSegment(i, name, i, i + 1.25, 0) for i, name in enumerate(EMOTIONS)]
    write_emotion(tmp_path / "all.csv", segs)
    assert read_emotion(tmp_path / "all.csv") == segs


@pytest.mark.parametrize(
    "row, words",
    [
        ("00_netural,0,63.908,63.908", "found 4"),
        ("00_netural,0,63.908,63.908,0,extra", "found 6"),
        ("00_netural,zero,63.908,63.908,0", "start: expected a number"),
        ("00_netural,10,5,-5,0", "before start"),
        ("09_boredom,0,63.908,63.908,0", "unknown emotion"),
        ("03_anger,0,63.908,63.908,0", "does not match"),
    ],
)
def test_emotion_errors_name_file_and_line(tmp_path: Path, row: str, words: str) -> None:
    path = _write(tmp_path, BEAT_EMOTION + row + "\n", "bad.csv")
    with pytest.raises(AnnotationError) as err:
        read_emotion(path)
    assert err.value.path == path and err.value.line == 2
    assert words in err.value.message
