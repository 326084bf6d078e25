"""Per-frame labels at 15 fps, checked against hand-computed frames and a naive loop."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semges_core.formats.annotations import EmotionSegment, SemanticSegment
from semges_core.data.framing import emotion_per_frame, semantic_per_frame, word_index_per_frame, words_per_frame
from semges_core.formats.textgrid import Word

FPS = 15  # frame t is the instant t / 15 s: 0, 0.0667, 0.1333, 0.2, 0.2667, ...

WORDS = [Word(0.2, 0.5, "hello"), Word(0.6, 1.0, "world")]


def test_words_hand_computed() -> None:
    # hello covers [0.2, 0.5): frames 3 (0.2 exactly) to 7 (0.467); frame 8 is 0.533.
    # world covers [0.6, 1.0): frames 9 (0.6 exactly) to 14 (0.933); frame 15 is 1.0, excluded.
    expected = [-1, -1, -1, 0, 0, 0, 0, 0, -1, 1, 1, 1, 1, 1, 1, -1, -1, -1]
    index = word_index_per_frame(WORDS, 18, FPS)
    assert index.dtype == np.int32 and index.shape == (18,)
    assert index.tolist() == expected
    assert words_per_frame(WORDS, 18, FPS) == [None if i < 0 else WORDS[i].text for i in expected]


def test_word_indices_refer_to_the_list_as_given() -> None:
    unsorted = [WORDS[1], WORDS[0]]
    assert word_index_per_frame(unsorted, 18, FPS).tolist()[3:10] == [1, 1, 1, 1, 1, -1, 0]


def test_touching_and_zero_length_words() -> None:
    words = [Word(0.0, 0.2, "a"), Word(0.2, 0.2, "blip"), Word(0.2, 0.4, "b")]
    # Frame 3 (0.2) belongs to "b": "a" has ended and "blip" lasts no time at all.
    assert words_per_frame(words, 7, FPS) == ["a", "a", "a", "b", "b", "b", None]


def test_empty_inputs() -> None:
    assert word_index_per_frame([], 4, FPS).tolist() == [-1] * 4
    assert words_per_frame(WORDS, 0, FPS) == []
    score, type_id = semantic_per_frame([], 3, FPS)
    assert score.tolist() == [0, 0, 0] and type_id.tolist() == [0, 0, 0]
    assert emotion_per_frame([], 3, FPS, default=5).tolist() == [5, 5, 5]


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="overlap"):
        word_index_per_frame([Word(0, 1, "a"), Word(0.5, 2, "b")], 10, FPS)
    with pytest.raises(ValueError, match="fps"):
        word_index_per_frame(WORDS, 10, 0)
    with pytest.raises(ValueError, match="n_frames"):
        semantic_per_frame([], -1, FPS)


def test_semantic_hand_computed_with_overlap() -> None:
    segments = [
        SemanticSegment(1, "beat_align", 0.0, 0.6, 0.1, ""),  # frames 0..8
        SemanticSegment(7, "iconic_h", 0.3, 0.5, 0.7, "relaxing"),  # frames 5..7 (0.333..0.467)
        SemanticSegment(3, "deictic_m", 0.8, 0.9, 0.3, "you"),  # frames 12, 13 (0.8, 0.867)
    ]
    score, type_id = semantic_per_frame(segments, 16, FPS)
    assert score.dtype == np.float32 and type_id.dtype == np.int16
    np.testing.assert_array_equal(
        score, np.float32([0.1, 0.1, 0.1, 0.1, 0.1, 0.7, 0.7, 0.7, 0.1, 0, 0, 0, 0.3, 0.3, 0, 0])
    )
    assert type_id.tolist() == [1, 1, 1, 1, 1, 7, 7, 7, 1, 0, 0, 0, 3, 3, 0, 0]
    # The order of the segments in the file does not matter.
    s2, t2 = semantic_per_frame(segments[::-1], 16, FPS)
    np.testing.assert_array_equal(s2, score)
    np.testing.assert_array_equal(t2, type_id)


def test_semantic_tie_goes_to_the_earlier_segment() -> None:
    segments = [SemanticSegment(4, "deictic_h", 0, 1, 0.5, ""), SemanticSegment(5, "iconic_l", 0, 1, 0.5, "")]
    assert semantic_per_frame(segments, 3, FPS)[1].tolist() == [4, 4, 4]


def test_emotion_hand_computed() -> None:
    segments = [EmotionSegment(0, "neutral", 0.0, 0.4, 0), EmotionSegment(2, "anger", 0.4, 0.6, 0)]
    out = emotion_per_frame(segments, 12, FPS, default=7)
    assert out.dtype == np.int16
    # 0.4 is frame 6 exactly; 0.6 is frame 9 exactly.
    assert out.tolist() == [0, 0, 0, 0, 0, 0, 2, 2, 2, 7, 7, 7]


@st.composite
def _words(draw) -> list[Word]:
    # Times on a millisecond grid, as aligners write them; pauses between some words.
    cuts = sorted(set(draw(st.lists(st.integers(0, 3000), max_size=20))))
    words = []
    for k, (a, b) in enumerate(zip(cuts, cuts[1:])):
        if draw(st.booleans()):
            words.append(Word(a / 1000, b / 1000, f"w{k}"))
    return draw(st.permutations(words))


@settings(max_examples=80, deadline=None)
@given(_words(), st.integers(0, 60), st.sampled_from([15, 30, 120, 12.5]))
def test_words_match_a_naive_loop(words: list[Word], n_frames: int, fps: float) -> None:
    naive = []
    for t in range(n_frames):
        inside = [i for i, w in enumerate(words) if w.start <= t / fps < w.end]
        naive.append(inside[0] if inside else -1)
    assert word_index_per_frame(words, n_frames, fps).tolist() == naive


@st.composite
def _segments(draw) -> list[SemanticSegment]:
    out = []
    for _ in range(draw(st.integers(0, 6))):
        a, b = sorted(draw(st.tuples(st.integers(0, 4000), st.integers(0, 4000))))
        type_id = draw(st.integers(0, 10))
        out.append(SemanticSegment(type_id, "", a / 1000, b / 1000, type_id / 10, ""))
    return out


@settings(max_examples=60, deadline=None)
@given(_segments(), st.integers(0, 70))
def test_semantic_matches_a_naive_loop(segments: list[SemanticSegment], n_frames: int) -> None:
    score, type_id = semantic_per_frame(segments, n_frames, FPS)
    for t in range(n_frames):
        inside = [s for s in segments if s.start <= t / FPS < s.end]
        best = max(inside, key=lambda s: s.score, default=None)  # max keeps the first of equals
        assert score[t] == np.float32(best.score if best else 0)
        assert type_id[t] == (best.type_id if best else 0)
