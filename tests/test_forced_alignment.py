"""Forced alignment (pocketsphinx) on espeak-ng speech whose word times are known.

Two kinds of reference:
- words said one at a time (as in test_alignment.py), silence trimmed, laid end to end
  with known gaps: every word's true start is known to the sample;
- whole texts said in one go (real coarticulation) through libespeak-ng, whose word
  events give each word's start in the synthesised samples.
The clips differ in voice, rate and pitch; one has no gaps between words at all, one a
disfluency ("we can we can learn") and a number ("5"), one long pauses. The aligner gets
only the text and the samples. Everything is seeded: the errors asserted are the same
on every run.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import math
import re
import shutil
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from semges_core.formats.textgrid import Word, read_textgrid, words_from_textgrid
from semges_core.speech import forced_alignment as fa
from semges_core.speech.alignment import align_plain_text, align_segments
from semges_core.speech.audio import load_audio, resample_poly, write_wav
from semges_core.speech.transcripts import load_timed_transcript

pytest.importorskip("pocketsphinx")
if shutil.which("espeak-ng") is None:
    pytest.skip("espeak-ng is not installed", allow_module_level=True)

SR = 16000


@dataclass(frozen=True)
class Clip:
    name: str
    voice: str
    rate: int
    pitch: int
    word_gap: tuple[float, float]
    sentence_gap: tuple[float, float]
    text: str


CLIPS = [
    Clip("plain", "en-us", 150, 50, (0.03, 0.12), (0.4, 0.6),
         "The quick brown fox jumps over the lazy dog. It was a beautiful morning in the city, "
         "and everybody seemed happy. Why not?"),
    Clip("fast_high_abutting", "en-us+f3", 200, 75, (0.0, 0.0), (0.2, 0.3),
         "Hello there. My name is Alex and I would like to show you something. Look at this big red box! "
         "It is full of small things, like pens and paper."),
    Clip("slow_low_disfluent", "en-us+m3", 120, 25, (0.02, 0.08), (0.3, 0.5),
         "So we can we can learn more from this. I bought 5 apples and um two oranges on Saturday. "
         "Then then we walked home slowly."),
    Clip("long_pauses", "en-gb", 170, 40, (0.05, 0.3), (1.0, 2.0),
         "We went to the market. There were apples everywhere. My sister bought a huge watermelon. "
         "Honestly, nobody expected that."),
]

# Measured here (espeak-ng 1.51): mean onset errors 0.010-0.024 s for pocketsphinx, 0.01-0.09 s
# for the energy aligner on the same clips (docs/transcripts.md); bounds leave room for other
# espeak-ng versions.
MEAN_ONSET_BOUND_S = 0.06
MAX_ONSET_BOUND_S = 0.25


def _say(word: str, clip: Clip, folder: Path, cache: dict) -> np.ndarray:
    """espeak-ng's speech for one word, leading and trailing silence trimmed (-40 dB)."""
    key = (word, clip.voice, clip.rate, clip.pitch)
    if key not in cache:
        wav = folder / "say.wav"
        subprocess.run(["espeak-ng", "-v", clip.voice, "-s", str(clip.rate), "-p", str(clip.pitch), "-w", str(wav),
                        word], check=True, capture_output=True)
        x = load_audio(wav, SR)
        frame = SR // 200
        n = len(x) // frame
        rms = np.sqrt(np.mean(x[: n * frame].reshape(n, frame) ** 2, axis=1))
        loud = np.flatnonzero(rms > rms.max() * 10 ** (-40 / 20))
        cache[key] = x[loud[0] * frame : (loud[-1] + 1) * frame]
    return cache[key]


def synthesise(clip: Clip, folder: Path, seed: int, cache: dict) -> tuple[np.ndarray, list[Word]]:
    """The clip's samples and the true time of every written word."""
    rng = np.random.default_rng(seed)
    pieces, truth, cursor = [], [], 0

    def silence(lo: float, hi: float) -> None:
        nonlocal cursor
        n = int(rng.uniform(lo, hi) * SR)
        pieces.append(np.zeros(n, np.float32))
        cursor += n

    silence(0.3, 0.6)
    for k, word in enumerate(clip.text.split()):
        if k:
            silence(*(clip.sentence_gap if clip.text.split()[k - 1][-1] in ".!?" else clip.word_gap))
        spoken = " ".join(fa.spoken_words(word))  # "5" is said "five"
        x = _say(spoken, clip, folder, cache) * rng.uniform(0.6, 1.0)
        pieces.append(x.astype(np.float32))
        truth.append(Word(cursor / SR, (cursor + len(x)) / SR, word))
        cursor += len(x)
    silence(0.3, 0.6)
    x = np.concatenate(pieces)
    return (x + rng.normal(0, 3e-4, len(x))).astype(np.float32), truth


def onset_errors(words: list[Word], truth: list[Word]) -> np.ndarray:
    assert [w.text for w in words] == [t.text for t in truth]
    return np.abs([w.start - t.start for w, t in zip(words, truth)])


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, tuple[np.ndarray, list[Word]]]:
    folder, cache = tmp_path_factory.mktemp("espeak"), {}
    return {clip.name: synthesise(clip, folder, seed, cache) for seed, clip in enumerate(CLIPS)}


@pytest.mark.parametrize("clip", CLIPS, ids=[c.name for c in CLIPS])
def test_word_onsets_on_espeak_speech(clips, clip, record_property):
    audio, truth = clips[clip.name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the right text must not be called a mismatch
        result = fa.force_align(clip.text, audio, SR)
        fa.check_fit(result, clip.name)
    ours = onset_errors(result.words, truth)
    energy = onset_errors(align_plain_text(clip.text, audio, SR), truth)
    print(f"\n{clip.name}: pocketsphinx mean {ours.mean():.3f} s max {ours.max():.3f} s; "
          f"energy mean {energy.mean():.3f} s max {energy.max():.3f} s")
    record_property("onset_error", {"pocketsphinx": float(ours.mean()), "energy": float(energy.mean())})
    assert result.failed_pieces == 0 and result.squeezed == []
    assert ours.mean() < MEAN_ONSET_BOUND_S and ours.max() < MAX_ONSET_BOUND_S
    for a, b in zip(result.words, result.words[1:]):
        assert a.start <= a.end <= b.start


# ----------------------------------------------------------------------------- continuous speech


class _Event(ctypes.Structure):
    """espeak_EVENT of speak_lib.h."""

    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_char * 8)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))
_EVENT_WORD, _SYNCHRONOUS, _POS_CHARACTER, _CHARS_UTF8, _RATE, _PITCH = 1, 2, 1, 1, 1, 3


@pytest.fixture(scope="module")
def continuous() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each clip's text said in one go: 16 kHz samples, and each written word's start (NaN without an event)."""
    name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        pytest.skip("libespeak-ng is not installed")
    rate = lib.espeak_Initialize(_SYNCHRONOUS, 0, None, 0)
    chunks: list[np.ndarray] = []
    events: list[tuple[int, int]] = []  # (text position, 1-based; sample)

    @_CALLBACK
    def collect(wav, n, event):
        if wav and n > 0:
            chunks.append(np.ctypeslib.as_array(wav, (n,)).copy())
        k = 0
        while event[k].type != 0:
            if event[k].type == _EVENT_WORD and event[k].length > 0:
                events.append((event[k].text_position, event[k].sample))
            k += 1
        return 0

    lib.espeak_SetSynthCallback(collect)
    out = {}
    lead = 0.5  # s of silence before and after
    for clip in CLIPS:
        chunks.clear()
        events.clear()
        lib.espeak_SetVoiceByName(clip.voice.encode())
        lib.espeak_SetParameter(_RATE, clip.rate, 0)
        lib.espeak_SetParameter(_PITCH, clip.pitch, 0)
        text = clip.text.encode()
        lib.espeak_Synth(text, len(text) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        lib.espeak_Synchronize()
        x = resample_poly(np.concatenate(chunks).astype(np.float64) / 32768, SR // math.gcd(SR, rate), rate // math.gcd(SR, rate)).astype(np.float32)
        silence = np.zeros(int(lead * SR), np.float32)
        starts = dict(events)
        truth = np.array([starts[m.start() + 1] / rate + lead if m.start() + 1 in starts else np.nan
                          for m in re.finditer(r"\S+", clip.text)])
        out[clip.name] = np.concatenate([silence, x, silence]), truth
    return out


# Measured here (espeak-ng 1.51): pocketsphinx mean onset error 0.010-0.020 s, max 0.113 s;
# the energy aligner 0.056-0.116 s, max 0.51 s.
CONTINUOUS_MEAN_BOUND_S = 0.05
CONTINUOUS_MAX_BOUND_S = 0.25


@pytest.mark.parametrize("clip", CLIPS, ids=[c.name for c in CLIPS])
def test_word_onsets_on_continuous_espeak_speech(continuous, clip):
    audio, truth = continuous[clip.name]
    known = ~np.isnan(truth)
    assert known.mean() > 0.85  # espeak-ng gives a word event for almost every word
    ours = np.abs(np.array([w.start for w in fa.force_align(clip.text, audio, SR).words]) - truth)[known]
    energy = np.abs(np.array([w.start for w in align_plain_text(clip.text, audio, SR)]) - truth)[known]
    print(f"\n{clip.name} (continuous): pocketsphinx mean {ours.mean():.3f} s max {ours.max():.3f} s; "
          f"energy mean {energy.mean():.3f} s max {energy.max():.3f} s")
    assert ours.mean() < CONTINUOUS_MEAN_BOUND_S and ours.max() < CONTINUOUS_MAX_BOUND_S


def test_a_number_spans_its_spoken_words(clips):
    audio, truth = clips["slow_low_disfluent"]
    words = fa.force_align(CLIPS[2].text, audio, SR).words
    five = next(k for k, t in enumerate(truth) if t.text == "5")
    assert words[five].text == "5"
    assert abs(words[five].start - truth[five].start) < 0.05 and abs(words[five].end - truth[five].end) < 0.1


def test_pieces_match_the_whole(clips, monkeypatch):
    """A take cut into pieces (as long ones are) times its words as the whole does."""
    audio, truth = clips["long_pauses"]
    whole = fa.force_align(CLIPS[3].text, audio, SR)
    monkeypatch.setattr(fa, "CHUNK_S", 4.0)
    cut = fa.force_align(CLIPS[3].text, audio, SR)
    assert cut.pieces > 2 and cut.failed_pieces == 0
    assert onset_errors(cut.words, truth).mean() < MEAN_ONSET_BOUND_S
    assert np.abs(np.array([w.start for w in cut.words]) - [w.start for w in whole.words]).max() < 0.05


@pytest.mark.parametrize("k", range(len(CLIPS)), ids=[c.name for c in CLIPS])
def test_other_speech_warns(continuous, k):
    """Each clip with the next clip's text (the right text never warns: test_word_onsets_on_espeak_speech)."""
    audio, _ = continuous[CLIPS[k].name]
    other = CLIPS[(k + 1) % len(CLIPS)].text
    with pytest.warns(fa.TranscriptMismatchWarning, match="Is this the transcript|squeezed|no word") as caught:
        fa.check_fit(fa.force_align(other, audio, SR), "other.txt")
    assert len(caught) == 1 and "other.txt" in str(caught[0].message)


@pytest.mark.parametrize("k", range(len(CLIPS)), ids=[c.name for c in CLIPS])
def test_half_the_text_warns(continuous, k):
    audio, _ = continuous[CLIPS[k].name]
    words = CLIPS[k].text.split()
    with pytest.warns(fa.TranscriptMismatchWarning, match="has no word of the transcript"):
        fa.check_fit(fa.force_align(" ".join(words[: len(words) // 2]), audio, SR), "half.txt")


@pytest.mark.parametrize("k", range(len(CLIPS)), ids=[c.name for c in CLIPS])
def test_the_right_text_of_continuous_speech_does_not_warn(continuous, k):
    audio, _ = continuous[CLIPS[k].name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fa.check_fit(fa.force_align(CLIPS[k].text, audio, SR), "right.txt")


def test_plain_text_transcripts_say_which_aligner_ran(clips, tmp_path):
    audio, truth = clips["plain"]
    path = tmp_path / "take.txt"
    path.write_text(CLIPS[0].text, encoding="utf-8")
    timed = load_timed_transcript(path, audio=audio, sample_rate=SR)
    assert timed.timing == "pocketsphinx"
    assert onset_errors(timed.words, truth).mean() < MEAN_ONSET_BOUND_S


def test_resampled_audio_gives_the_same_times(clips):
    audio, truth = clips["plain"]
    audio44 = resample_poly(audio.astype(np.float64), 441, 160).astype(np.float32)
    words = fa.force_align(CLIPS[0].text, audio44, 44100).words
    assert onset_errors(words, truth).mean() < MEAN_ONSET_BOUND_S


@pytest.mark.parametrize("written, spoken", [
    ("5", "five"), ("21", "twenty one"), ("1,000", "one thousand"), ("1990", "nineteen ninety"),
    ("2005", "two thousand five"), ("3.5", "three point five"), ("50%", "fifty percent"), ("$5", "five dollars"),
    ("21st", "twenty first"), ("1990s", "nineteen nineties"), ("well-known,", "well known"), ("&", "and"),
    ("don't", "don't"), ("Hello.", "hello"), ("--", ""),
])
def test_written_words_become_spoken_ones(written, spoken):
    assert " ".join(fa.spoken_words(written)) == spoken


def test_words_outside_the_dictionary_get_a_pronunciation():
    assert fa.letters_to_sounds("cuz") == "K AH Z"
    assert fa.letters_to_sounds("semges") == "S EH M G EH S"
    assert fa.letters_to_sounds("") == "AH"


def test_align_command_writes_textgrid_and_json(clips, tmp_path):
    from semges_core.speech.align_command import run_align

    audio, truth = clips["plain"]
    wav, text = tmp_path / "take.wav", tmp_path / "take.txt"
    write_wav(wav, audio, SR)
    text.write_text(CLIPS[0].text, encoding="utf-8")
    grid = tmp_path / "words.TextGrid"
    assert run_align(wav, text, grid).timing == "pocketsphinx"
    words = words_from_textgrid(read_textgrid(grid), grid)
    assert onset_errors(words, truth).mean() < MEAN_ONSET_BOUND_S
    out = tmp_path / "words.json"
    run_align(wav, text, out)
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["aligner"] == "pocketsphinx" and data["note"] == "aligned 23 words with pocketsphinx forced alignment"
    assert [(i["word"], i["start"], i["end"]) for i in data["words"]] == [(w.text, w.start, w.end) for w in words]


# ----------------------------------------------------------------------------- subtitle cues


def loose_cues(clip: Clip, truth: np.ndarray, audio_s: float, words_per_cue: int | None, seed: int
               ) -> list[tuple[float, float, str]]:
    """Cues of a sentence each (or of `words_per_cue` words, cut mid-sentence where speech runs on),
    their edges moved by up to ±0.3 s from the speech they hold, as subtitles are timed."""
    rng = np.random.default_rng(seed)
    words = clip.text.split()
    groups, current = [], []
    for k, w in enumerate(words):
        current.append(k)
        if (w[-1] in ".!?" if words_per_cue is None else len(current) == words_per_cue) or k == len(words) - 1:
            groups.append(current)
            current = []
    known = np.where(np.isnan(truth), np.interp(np.arange(len(truth)), np.flatnonzero(~np.isnan(truth)),
                                                truth[~np.isnan(truth)]), truth)
    cues, last = [], 0.0
    for j, g in enumerate(groups):
        speech_end = known[groups[j + 1][0]] - 0.05 if j + 1 < len(groups) else audio_s - 0.5
        start = max(last, known[g[0]] + rng.uniform(-0.3, 0.3))
        end = max(start + 0.3, speech_end + rng.uniform(-0.3, 0.3))
        cues.append((round(start, 3), round(end, 3), " ".join(words[k] for k in g)))
        last = end
    return cues


# Measured here (espeak-ng 1.51), mean / max onset error with cues loosened by up to ±0.3 s:
# pocketsphinx near each cue 0.011-0.022 / 0.03-0.11 s (sentence cues and 6-word cues alike);
# the energy aligner inside each cue 0.075-0.29 / 0.27-0.80 s.
CUE_MEAN_BOUND_S = 0.05
CUE_MAX_BOUND_S = 0.25


@pytest.mark.parametrize("words_per_cue", [None, 6], ids=["sentence_cues", "six_word_cues"])
@pytest.mark.parametrize("k", range(len(CLIPS)), ids=[c.name for c in CLIPS])
def test_loose_subtitle_cues_are_force_aligned(continuous, k, words_per_cue):
    clip = CLIPS[k]
    audio, truth = continuous[clip.name]
    cues = loose_cues(clip, truth, len(audio) / SR, words_per_cue, seed=k)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = fa.force_align_cues(cues, audio, SR)
        fa.check_fit(result, clip.name)
    known = ~np.isnan(truth)
    ours = np.abs(np.array([w.start for w in result.words]) - truth)[known]
    energy = np.abs(np.array([w.start for w in align_segments(cues, audio, SR)]) - truth)[known]
    print(f"\n{clip.name} cues ({words_per_cue or 'sentence'}): pocketsphinx mean {ours.mean():.3f} s "
          f"max {ours.max():.3f} s; energy within cues mean {energy.mean():.3f} s max {energy.max():.3f} s")
    assert result.failed_pieces == 0 and result.pieces == len(cues) and result.unit == "cue"
    assert ours.mean() < CUE_MEAN_BOUND_S and ours.max() < CUE_MAX_BOUND_S
    for a, b in zip(result.words, result.words[1:]):
        assert a.start <= a.end <= b.start


def test_srt_with_audio_is_force_aligned_and_says_so(continuous, tmp_path):
    audio, truth = continuous["long_pauses"]
    cues = loose_cues(CLIPS[3], truth, len(audio) / SR, None, seed=7)
    stamp = lambda t: f"{int(t // 3600):02d}:{int(t % 3600 // 60):02d}:{int(t % 60):02d},{round(t % 1 * 1000):03d}"  # noqa: E731
    srt = tmp_path / "take.srt"
    srt.write_text("\n".join(f"{k}\n{stamp(s)} --> {stamp(e)}\n{t}\n" for k, (s, e, t) in enumerate(cues, 1)),
                   encoding="utf-8")
    timed = load_timed_transcript(srt, audio=audio, sample_rate=SR)
    assert timed.timing == "cues+pocketsphinx"
    assert timed.note == f"timed {len(CLIPS[3].text.split())} words of {len(cues)} subtitle cues with pocketsphinx forced alignment near each cue"
    known = ~np.isnan(truth)
    assert np.abs(np.array([w.start for w in timed.words]) - truth)[known].mean() < CUE_MEAN_BOUND_S
    # Without a phonetic model for the language: the energy aligner inside each cue, and the note says why.
    timed = load_timed_transcript(srt, audio=audio, sample_rate=SR, language="de")
    assert timed.timing == "cues+energy" and "energy aligner" in timed.note and "'de'" in timed.note


def test_a_cue_with_no_speech_falls_back_alone(continuous):
    """A cue over silence cannot be force-aligned: its words get energy (here: spread) times, the others keep theirs."""
    audio, truth = continuous["plain"]
    audio = np.concatenate([audio, np.zeros(3 * SR, np.float32)])
    end = len(audio) / SR
    cues = loose_cues(CLIPS[0], truth, end - 3, None, seed=3) + [(end - 2.0, end - 0.5, "nothing said here")]
    with pytest.warns(fa.TranscriptMismatchWarning, match=r"1 of 4 cue\(s\)"):
        result = fa.force_align_cues(cues, audio, SR)
        fa.check_fit(result, "silent.srt")
    assert result.failed_pieces == 1
    known = ~np.isnan(truth)
    assert np.abs(np.array([w.start for w in result.words[: len(truth)]]) - truth)[known].mean() < CUE_MEAN_BOUND_S
    assert [w.text for w in result.words[-3:]] == ["nothing", "said", "here"]
    assert all(end - 2.0 <= w.start <= end - 0.5 for w in result.words[-3:])


# ----------------------------------------------------------------------------- language, and saying which aligner ran


@pytest.mark.parametrize("language, code, model", [
    ("en", "en", True), ("en-GB", "en", True), ("EN_us", "en", True), ("English", "en", True),
    ("de", "de", False), ("fr-CA", "fr", False), ("", "", False),
])
def test_languages_with_a_phonetic_model(language, code, model):
    assert fa.language_code(language) == code and fa.has_model(language) is model


def test_other_languages_use_the_energy_aligner_and_say_so(clips, tmp_path):
    audio, truth = clips["plain"]
    path = tmp_path / "take.txt"
    path.write_text(CLIPS[0].text, encoding="utf-8")
    timed = load_timed_transcript(path, audio=audio, sample_rate=SR, language="de")
    assert timed.timing == "energy"
    assert timed.note == ("aligned 23 words with the energy aligner (no phonetic model for language 'de'; "
                          "words placed by speech energy only)")
    assert timed.words == align_plain_text(CLIPS[0].text, audio, SR)
    british = load_timed_transcript(path, audio=audio, sample_rate=SR, language="en-GB")
    assert british.timing == "pocketsphinx" and british.note == "aligned 23 words with pocketsphinx forced alignment"


def test_the_note_names_words_outside_the_dictionary(clips):
    audio, truth = clips["plain"]
    text = CLIPS[0].text.replace("quick", "quikk").replace("lazy", "lazzee")
    result = fa.force_align(text, audio, SR)
    assert result.guessed == ["quikk", "lazzee"]
    assert onset_errors(result.words, [Word(t.start, t.end, w) for t, w in zip(truth, text.split())]).mean() < 0.06
    from semges_core.speech.transcripts import align_text

    note = align_text(text, audio, SR, "t.txt").note
    assert note == ("aligned 23 words with pocketsphinx forced alignment "
                    "(2 not in its dictionary, pronounced by letter-to-sound rules: 'quikk', 'lazzee')")


def test_align_command_prints_which_aligner_ran(clips, tmp_path, capsys):
    from semges_core.cli import main

    audio, _ = clips["plain"]
    wav, text = tmp_path / "take.wav", tmp_path / "take.txt"
    write_wav(wav, audio, SR)
    text.write_text(CLIPS[0].text, encoding="utf-8")
    assert main(["align", "--audio", str(wav), "--transcript", str(text), "--out", str(tmp_path / "w.json")]) == 0
    assert f"{text}: aligned 23 words with pocketsphinx forced alignment\n" in capsys.readouterr().out
    assert main(["align", "--audio", str(wav), "--transcript", str(text), "--out", str(tmp_path / "w.TextGrid"),
                 "--language", "de"]) == 0
    assert "aligned 23 words with the energy aligner (no phonetic model for language 'de'" in capsys.readouterr().out


def test_generate_prints_which_aligner_ran(clips, tmp_path, tiny_bundle, capsys):
    from semges_core.cli import main

    audio, _ = clips["slow_low_disfluent"]
    wav, text = tmp_path / "take.wav", tmp_path / "take.txt"
    write_wav(wav, audio, SR)
    text.write_text(CLIPS[2].text, encoding="utf-8")
    args = ["generate", "--audio", str(wav), "--transcript", str(text), "--model", str(tiny_bundle), "--quiet"]
    assert main(args + ["--out", str(tmp_path / "a.bvh")]) == 0
    n = len(CLIPS[2].text.split())
    assert f"{text}: aligned {n} words with pocketsphinx forced alignment\n" in capsys.readouterr().out
    assert main(args + ["--out", str(tmp_path / "b.bvh"), "--language", "fr"]) == 0
    assert f"{text}: aligned {n} words with the energy aligner (no phonetic model for language 'fr'" \
        in capsys.readouterr().out
