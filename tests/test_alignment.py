"""Plain-text alignment on real (espeak-ng) speech whose word times are known.

Each word is synthesised on its own, its silence trimmed, and the words are laid
end to end with known gaps (50-150 ms inside a sentence, 400-600 ms between
sentences), so every word's true start and end is known to the sample. The
aligner is then given only the text and the samples.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semges_core.speech.alignment import (
    AlignmentWarning,
    _bandpass,
    align_plain_text,
    align_segments,
    detect_speech,
    tokenize,
)
from semges_core.speech.audio import load_audio
from semges_core.errors import TranscriptError
from semges_core.formats.textgrid import Word

SR = 16000

TEXTS = [
    "The quick brown fox jumps over the lazy dog. It was a beautiful morning in the city, "
    "and everybody seemed happy. Why not?",
    "Hello there. My name is Alex and I would like to show you something. Look at this big red box! "
    "It is full of small things, like pens and paper. Do you want one?",
    "We went to the market on Saturday. There were apples, oranges and bananas everywhere. "
    "My sister bought a huge watermelon. Then we walked home slowly.",
]

# Measured here: mean 0.012 s, max 0.053 s with gaps between words (other seeds: up to 0.42 s,
# a short word's edge given to its neighbour); mean 0.12 s, max 0.43 s without gaps.
# The bounds leave headroom for other espeak-ng versions (docs/transcripts.md).
MEAN_BOUND_S = 0.06
MAX_BOUND_S = 0.6
ABUTTING_MEAN_BOUND_S = 0.2

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")


def _say(text: str, folder: Path) -> np.ndarray:
    """espeak-ng's speech for `text` at 16 kHz, leading and trailing silence trimmed (-40 dB)."""
    wav = folder / "say.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), text], check=True, capture_output=True)
    x = load_audio(wav, SR)
    frame = SR // 200
    n = len(x) // frame
    rms = np.sqrt(np.mean(x[: n * frame].reshape(n, frame) ** 2, axis=1))
    loud = np.flatnonzero(rms > rms.max() * 10 ** (-40 / 20))
    return x[loud[0] * frame : (loud[-1] + 1) * frame]


def _sentences(text: str) -> list[list[str]]:
    return [s.split() for s in re.split(r"(?<=[.!?])\s+", text.strip())]


class Speech:
    """Words said one at a time, with known gaps; `truth` holds their exact times."""

    def __init__(self, text: str, folder: Path, seed: int, word_gap=(0.05, 0.15), sentence_gap=(0.4, 0.6)):
        rng = np.random.default_rng(seed)
        pieces, self.truth, self.sentence_sizes, cursor = [], [], [], 0

        def silence(lo: float, hi: float) -> None:
            nonlocal cursor
            n = int(rng.uniform(lo, hi) * SR)
            pieces.append(np.zeros(n, np.float32))
            cursor += n

        silence(0.3, 0.6)
        for i, sentence in enumerate(_sentences(text)):
            if i:
                silence(*sentence_gap)
            for j, word in enumerate(sentence):
                if j and word_gap[1] > 0:
                    silence(*word_gap)
                clip = _say(word.strip(".,!?"), folder) * rng.uniform(0.7, 1.0)
                pieces.append(clip.astype(np.float32))
                self.truth.append(Word(cursor / SR, (cursor + len(clip)) / SR, word))
                cursor += len(clip)
            self.sentence_sizes.append(len(sentence))
        silence(0.3, 0.6)
        x = np.concatenate(pieces)
        self.audio = (x + rng.normal(0, 3e-4, len(x))).astype(np.float32)  # a faint noise floor


def _errors(words: list[Word], truth: list[Word]) -> np.ndarray:
    assert [w.text for w in words] == [t.text for t in truth]
    return np.abs(np.r_[[w.start - t.start for w, t in zip(words, truth)], [w.end - t.end for w, t in zip(words, truth)]])


def _assert_well_formed(words: list[Word], duration: float) -> None:
    for w in words:
        assert 0 <= w.start <= w.end <= duration + 1e-9
    for a, b in zip(words, words[1:]):
        assert a.end <= b.start + 1e-9, (a, b)


@pytest.fixture(scope="module")
def speeches(tmp_path_factory) -> list[Speech]:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    folder = tmp_path_factory.mktemp("espeak")
    return [Speech(text, folder, seed) for seed, text in enumerate(TEXTS)]


@needs_espeak
def test_word_times_on_espeak_speech(speeches, record_property):
    errors = []
    for speech, text in zip(speeches, TEXTS):
        words = align_plain_text(text, speech.audio, SR)
        _assert_well_formed(words, len(speech.audio) / SR)
        errors.append(_errors(words, speech.truth))
    e = np.concatenate(errors)
    record_property("mean_error_s", float(e.mean()))
    record_property("max_error_s", float(e.max()))
    print(f"\nword start/end error on espeak speech: mean {e.mean():.3f} s, max {e.max():.3f} s, {len(e)} edges")
    assert e.mean() < MEAN_BOUND_S
    assert e.max() < MAX_BOUND_S


@needs_espeak
def test_sentence_pauses_fall_between_the_right_words(speeches):
    for speech, text in zip(speeches, TEXTS):
        words = align_plain_text(text, speech.audio, SR)
        last = np.cumsum(speech.sentence_sizes)[:-1] - 1  # index of each sentence's last word
        for k in last:
            pause = (speech.truth[k].end, speech.truth[k + 1].start)
            assert words[k].end <= pause[0] + 0.05, (words[k], pause)
            assert words[k + 1].start >= pause[1] - 0.05, (words[k + 1], pause)


@needs_espeak
def test_words_without_gaps_are_split_by_their_length(tmp_path):
    """No silence between the words of a sentence: only the expected lengths place them."""
    errors = []
    for seed, text in enumerate(TEXTS[:2]):
        speech = Speech(text, tmp_path, seed, word_gap=(0, 0))
        words = align_plain_text(text, speech.audio, SR)
        _assert_well_formed(words, len(speech.audio) / SR)
        errors.append(_errors(words, speech.truth))
    e = np.concatenate(errors)
    print(f"\nwithout gaps between words: mean {e.mean():.3f} s, max {e.max():.3f} s")
    assert e.mean() < ABUTTING_MEAN_BOUND_S


@needs_espeak
def test_continuous_sentences_keep_their_words(tmp_path):
    """Each sentence said in one go (real coarticulation): sentence edges land on the pauses."""
    rng = np.random.default_rng(3)
    text = TEXTS[1]
    pieces, edges, cursor = [np.zeros(SR // 2, np.float32)], [], SR // 2
    for sentence in _sentences(text):
        clip = _say(" ".join(sentence), tmp_path)
        edges.append((cursor / SR, (cursor + len(clip)) / SR, len(sentence)))
        gap = int(rng.uniform(0.4, 0.6) * SR)
        pieces += [clip, np.zeros(gap, np.float32)]
        cursor += len(clip) + gap
    audio = np.concatenate(pieces)
    words = align_plain_text(text, audio, SR)
    k = 0
    for start, end, n in edges:
        assert abs(words[k].start - start) < 0.1
        assert abs(words[k + n - 1].end - end) < 0.1
        k += n


def _bursts(spans: list[tuple[float, float]], duration: float, seed: int = 0) -> np.ndarray:
    """Speech-like bursts (a 150 Hz buzz with a syllable-rate wobble) in faint noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(duration * SR)) / SR
    x = rng.normal(0, 1e-3, len(t))
    for a, b in spans:
        on = (t >= a) & (t < b)
        x[on] += 0.3 * np.sign(np.sin(2 * np.pi * 150 * t[on])) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t[on]))
    return x.astype(np.float32)


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100, 48000])
@pytest.mark.parametrize("n", [51, 1000, 40000])
def test_bandpass_matches_scipy_sosfiltfilt(rate, n):
    """The numpy filter is scipy's 4th-order Butterworth sosfiltfilt, the detector's former front end."""
    signal = pytest.importorskip("scipy.signal")
    x = np.random.default_rng(n).normal(0.1, 0.3, n)  # an offset too: each pass starts in its steady state
    high = min(4000.0, 0.45 * rate)
    sos = signal.butter(4, [100.0, high], btype="bandpass", fs=rate, output="sos")
    expected = signal.sosfiltfilt(sos, x, padlen=39)
    np.testing.assert_allclose(_bandpass(x, rate, 100.0, high), expected, rtol=0, atol=1e-11 * np.abs(expected).max())


def test_bandpass_keeps_speech_and_drops_hum_and_hiss():
    t = np.arange(2 * SR) / SR
    tone = lambda hz: np.sin(2 * np.pi * hz * t)  # noqa: E731
    middle = slice(SR // 2, -SR // 2)  # away from the edges
    y = _bandpass(tone(1000) + tone(30) + tone(7000), SR, 100.0, 4000.0)
    np.testing.assert_allclose(y[middle], tone(1000)[middle], atol=0.01)  # zero phase: no delay
    assert np.abs(_bandpass(tone(30), SR, 100.0, 4000.0)[middle]).max() < 0.02


def test_detect_speech_finds_the_bursts():
    spans = [(0.5, 1.2), (1.6, 2.0), (2.9, 3.5)]
    activity = detect_speech(_bursts(spans, 4.0), SR)
    edges = np.flatnonzero(np.diff(np.r_[0, activity.speech.astype(int), 0])) / 100
    assert np.allclose(edges, np.ravel(spans), atol=0.03)


def test_bursts_get_their_words():
    spans = [(0.5, 1.2), (1.6, 2.0), (2.9, 3.5)]
    words = align_plain_text("Hello. Yes. Goodbye!", _bursts(spans, 4.0), SR)
    assert [w.text for w in words] == ["Hello.", "Yes.", "Goodbye!"]
    for w, (a, b) in zip(words, spans):
        assert abs(w.start - a) < 0.03 and abs(w.end - b) < 0.03


def test_a_single_word_covers_the_speech():
    [word] = align_plain_text("  hello  ", _bursts([(1.0, 1.5)], 3.0), SR)
    assert word.text == "hello"
    assert abs(word.start - 1.0) < 0.03 and abs(word.end - 1.5) < 0.03


@pytest.mark.parametrize("audio", [np.zeros(SR, np.float32), np.random.default_rng(0).normal(0, 0.05, 2 * SR)])
def test_silence_or_steady_noise_is_no_speech(audio):
    with pytest.raises(TranscriptError, match="no speech found") as info:
        align_plain_text("hello there", audio, SR, path="talk.txt")
    assert str(info.value).startswith("talk.txt: ")


def test_text_without_words_is_an_error():
    with pytest.raises(TranscriptError, match="no words"):
        align_plain_text(" -- ... ", _bursts([(0.5, 1.0)], 2.0), SR)


def test_very_fast_speech_warns_and_still_gives_ordered_words():
    audio = _bursts([(0.2, 0.6)], 1.0)  # 0.4 s of speech: 4 words is fast, 5 faster than anyone speaks
    with pytest.warns(AlignmentWarning, match="faster than anyone speaks"):
        words = align_plain_text("one two three four five", audio, SR)
    assert len(words) == 5
    _assert_well_formed(words, 1.0)


def test_far_more_words_than_the_audio_can_hold_is_an_error_naming_the_file():
    audio = _bursts([(0.2, 0.6)], 1.0)
    for n in (60, 400):  # fewer and more words than there are 10 ms frames
        with pytest.raises(TranscriptError, match=r"talk\.txt.*longer than its audio"):
            align_plain_text(" ".join(["word"] * n), audio, SR, path="talk.txt")


def test_tokenize_drops_punctuation_and_marks_pauses():
    tokens = tokenize("Well , I think -- yes. “Quite so!” he said")
    assert [t.text for t in tokens] == ["Well", "I", "think", "yes.", "“Quite", "so!”", "he", "said"]
    assert [t.pause for t in tokens] == ["clause", "none", "clause", "sentence", "none", "sentence", "none", "none"]
    assert tokenize("extraordinary")[0].units > tokenize("a")[0].units


def test_segments_are_aligned_within_their_spans():
    audio = _bursts([(0.5, 1.0), (1.4, 2.0), (3.0, 3.4)], 4.0)
    words = align_segments([(0.3, 2.2, "one two"), (2.2, 4.0, "three")], audio, SR)
    assert [w.text for w in words] == ["one", "two", "three"]
    assert abs(words[0].start - 0.5) < 0.03 and abs(words[1].end - 2.0) < 0.03
    assert abs(words[2].start - 3.0) < 0.03 and abs(words[2].end - 3.4) < 0.03


@settings(max_examples=25, deadline=None)
@given(
    n_words=st.integers(1, 30),
    spans=st.lists(st.tuples(st.floats(0, 2.8), st.floats(0.12, 0.6)), min_size=1, max_size=5),
    seed=st.integers(0, 3),
)
def test_any_text_on_any_speech_gives_ordered_words(n_words, spans, seed):
    audio = _bursts([(a, a + d) for a, d in spans], 3.5, seed)
    text = " ".join(["a", "word.", "extraordinary,", "the"][(k + seed) % 4] for k in range(n_words))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AlignmentWarning)
        try:
            words = align_plain_text(text, audio, SR)
        except TranscriptError as e:  # refused only when the words could not be spoken in the bursts
            assert "longer than its audio" in str(e)
            assert n_words > 7 * _union_seconds([(a, min(a + d, 3.5)) for a, d in spans])
            return
    assert len(words) == n_words
    _assert_well_formed(words, 3.5)


def _union_seconds(spans: list[tuple[float, float]]) -> float:
    total, end = 0.0, 0.0
    for a, b in sorted(spans):
        total += max(0.0, b - max(a, end))
        end = max(end, b)
    return total
