"""BEAT names, the dataset index, the window cache and WindowDataset, on a tiny BEAT-format folder.

The folder is written here with the project's own writers (BVH at 120 and 30 fps,
espeak-ng speech, a hand-written Praat TextGrid, semantic .txt, emotion .csv), so the
whole path from files to batches is exercised.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from semges_core.data import dataset as ds
from semges_core.speech.audio import load_audio, write_wav
from semges_core.data.beat_names import BEAT_16H_SPEAKERS, TakeId, emotion_of, is_english, split_of
from semges_core.formats.bvh import read_bvh, write_bvh
from semges_core.data.dataset import (
    DatasetConfig,
    WindowDataset,
    audio_window_samples,
    build_cache,
    index_dataset,
    load_cache,
)
from semges_core.errors import DatasetError
from semges_core.motion.clip import Motion
from semges_core.motion.skeleton import BEAT_SKELETON

FPS = 15.0
WORDS = [(0.3, 0.7, "Hello"), (0.7, 1.2, "big"), (1.5, 2.05, "World"), (2.4, 2.8, "friends")]
SEMANTIC = [
    ("01_beat_align", 0.0, 1.0, 0.1, ""),
    ("07_iconic_h", 1.0, 2.2, 0.7, "world"),
    ("02_deictic_l", 2.2, 2.6, 0.2, "friends"),
]


@dataclass(frozen=True)
class Spec:
    stem: str
    fps: float
    seconds: float
    semantic: bool
    emotion_csv: str | None  # the csv's label, or None for no csv


SPECS = [
    Spec("2_scott_0_1_1", 120, 4.6, True, "00_netural"),  # test
    Spec("2_scott_0_9_9", 120, 5.0, True, None),  # train
    Spec("2_scott_0_57_57", 30, 3.4, False, "00_netural"),  # val
    Spec("4_lawrence_1_2_2", 30, 4.0, False, None),  # train, conversation
    Spec("4_lawrence_0_66_66", 30, 3.0, True, None),  # train, happiness from the speech id
    Spec("4_lawrence_0_65_65", 30, 2.2, True, "03_sadness"),  # test, 33 frames: no window; csv overrides
]


# ----------------------------------------------------------------------------- building the folder


def _motion(fps: float, seconds: float, seed: int) -> Motion:
    n = int(round(fps * seconds))
    rng = np.random.default_rng(seed)
    t = np.arange(n)[:, None, None] / fps
    amp, freq = rng.uniform(-40, 40, (75, 3)), rng.uniform(0.2, 1.5, (75, 3))
    euler = amp * np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi, (75, 3)))  # (T, 75, 3)
    root = BEAT_SKELETON.offsets[0] + np.cumsum(rng.normal(0, 0.1, (n, 3)), axis=0)
    return Motion.from_euler(BEAT_SKELETON, fps, root, euler)


def _textgrid_text(words, xmax: float) -> str:
    intervals, t = [], 0.0
    for start, end, text in words:
        if start > t:
            intervals.append((t, start, ""))
        intervals.append((start, end, text))
        t = end
    intervals.append((t, xmax, ""))
    lines = [
        'File type = "ooTextFile"', 'Object class = "TextGrid"', "", "xmin = 0", f"xmax = {xmax}",
        "tiers? <exists>", "size = 1", "item []:", "    item [1]:", '        class = "IntervalTier"',
        '        name = "words"', "        xmin = 0", f"        xmax = {xmax}",
        f"        intervals: size = {len(intervals)}",
    ]
    for i, (a, b, text) in enumerate(intervals, 1):
        lines += [f"        intervals [{i}]:", f"            xmin = {a}", f"            xmax = {b}"]
        lines += [f'            text = "{text}"']
    return "\n".join(lines) + "\n"


def _speech(path: Path, text: str) -> None:
    if shutil.which("espeak-ng"):
        subprocess.run(["espeak-ng", "-w", str(path), text], check=True, capture_output=True)
    else:  # still a real file in BEAT's format, just not speech
        t = np.arange(32000) / 16000
        write_wav(path, 0.3 * np.sin(2 * np.pi * 220 * t), 16000)


def _write_take(folder: Path, spec: Spec, seed: int, speech: Path) -> Motion:
    folder.mkdir(parents=True, exist_ok=True)
    motion = _motion(spec.fps, spec.seconds, seed)
    write_bvh(folder / f"{spec.stem}.bvh", motion)
    shutil.copy(speech, folder / f"{spec.stem}.wav")
    name = spec.stem.split("_")[1]
    words = WORDS + [(3.0, 3.3, name)]  # a speaker-specific word, beyond the end of the short takes
    (folder / f"{spec.stem}.TextGrid").write_text(_textgrid_text(words, max(spec.seconds, words[-1][1]) + 0.5))
    if spec.semantic:
        rows = [f"{k}\t{a}\t{b}\t{round(b - a, 3)}\t{s}\t{kw}" for k, a, b, s, kw in SEMANTIC]
        (folder / f"{spec.stem}.txt").write_text("\n".join(rows) + "\n")
    if spec.emotion_csv:
        (folder / f"{spec.stem}.csv").write_text(f"{spec.emotion_csv},0,{spec.seconds},{spec.seconds},0\n")
    return motion


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("beat")
    speech = root.parent / "speech.wav"
    _speech(speech, "Hello big world, friends.")
    for i, spec in enumerate(SPECS):
        _write_take(root / spec.stem.split("_")[0], spec, i, speech)
    (root / "2" / "2_scott_2_1_1.bvh").write_text("not English, never read\n")  # skipped by language
    return root


@pytest.fixture(scope="module")
def cache(source, tmp_path_factory) -> ds.Cache:
    return load_cache(source, tmp_path_factory.mktemp("cache"), DatasetConfig(), progress=False)


@pytest.fixture
def own_source(source, tmp_path) -> Path:
    """A private copy (mtimes kept) for tests that change the dataset."""
    root = tmp_path / "beat"
    shutil.copytree(source, root)
    return root


def _n_frames(spec: Spec) -> int:
    n_src = int(round(spec.fps * spec.seconds))
    return (n_src - 1) * 15 // int(spec.fps) + 1


# ----------------------------------------------------------------------------- names, split, emotion


@pytest.mark.parametrize(
    "stem, fields",
    [
        ("2_scott_0_1_1", (2, "scott", 0, 1, 1)),
        ("30_katya_1_12_12", (30, "katya", 1, 12, 12)),
        ("4_lawrence_0_103_104", (4, "lawrence", 0, 103, 104)),
    ],
)
def test_parse_valid_names(stem, fields):
    take = TakeId.parse(stem)
    assert (take.speaker_id, take.speaker_name, take.take_type, take.start_id, take.end_id) == fields
    assert take.stem == stem


@pytest.mark.parametrize(
    "stem",
    [
        "scott_0_1_1", "2_scott_0_1", "2_scott_0_1_1_x", "2_sc_ott_0_1_1", "2_scott_a_1_1", "",
        "0_scott_0_1_1", "2_scott_0_5_4", "02_scott_0_1_1",
    ],
)
def test_parse_rejects_other_names_clearly(stem):
    with pytest.raises(DatasetError, match="take name"):
        TakeId.parse(stem)


@pytest.mark.parametrize(
    "stem, split, emotion",
    [
        ("2_scott_0_1_1", "test", 0), ("2_scott_0_8_8", "test", 0), ("2_scott_0_9_9", "train", 0),
        ("2_scott_0_56_56", "train", 0), ("2_scott_0_57_57", "val", 0), ("2_scott_0_64_64", "val", 0),
        ("2_scott_0_65_65", "test", 1), ("2_scott_0_66_66", "train", 1), ("2_scott_0_72_72", "val", 1),
        ("2_scott_0_73_73", "test", 2), ("2_scott_0_80_80", "val", 2), ("2_scott_0_81_81", "test", 3),
        ("2_scott_0_86_86", "val", 3), ("2_scott_0_87_87", "test", 4), ("2_scott_0_94_94", "val", 4),
        ("2_scott_0_95_95", "test", 5), ("2_scott_0_102_102", "val", 5), ("2_scott_0_103_103", "test", 6),
        ("2_scott_0_110_110", "val", 6), ("2_scott_0_111_111", "test", 7), ("2_scott_0_117_117", "train", 7),
        ("2_scott_0_118_118", "val", 7), ("2_scott_1_1_1", "test", 0), ("2_scott_1_2_2", "train", 0),
        ("2_scott_1_12_12", "val", 0), ("2_scott_1_65_65", "train", 0),
    ],
)
def test_split_and_emotion_rules(stem, split, emotion):
    take = TakeId.parse(stem)
    assert split_of(take) == split
    assert emotion_of(take) == emotion


def test_non_english_and_out_of_range_ids():
    chinese = TakeId.parse("10_kieks_2_1_1")
    assert not is_english(chinese) and is_english(TakeId.parse("2_scott_1_1_1"))
    with pytest.raises(DatasetError, match="not English"):
        split_of(chinese)
    with pytest.raises(DatasetError, match="1 to 118"):
        emotion_of(TakeId.parse("2_scott_0_119_119"))
    assert BEAT_16H_SPEAKERS == (2, 4, 6, 8)


# ----------------------------------------------------------------------------- index


def test_index_pairs_files_sorts_and_skips_other_languages(source):
    takes = index_dataset(source)
    assert [t.stem for t in takes] == [
        "2_scott_0_1_1", "2_scott_0_9_9", "2_scott_0_57_57",
        "4_lawrence_0_65_65", "4_lawrence_0_66_66", "4_lawrence_1_2_2",
    ]
    by = {t.stem: t for t in takes}
    assert [by[s.stem].split for s in SPECS] == ["test", "train", "val", "train", "train", "test"]
    assert by["2_scott_0_57_57"].semantic_txt is None and by["2_scott_0_57_57"].emotion_csv is not None
    assert by["4_lawrence_1_2_2"].semantic_txt is None and by["4_lawrence_1_2_2"].emotion_csv is None
    assert by["2_scott_0_1_1"].textgrid.name == "2_scott_0_1_1.TextGrid"
    assert [t.stem for t in index_dataset(source, speakers=[4])] == [
        "4_lawrence_0_65_65", "4_lawrence_0_66_66", "4_lawrence_1_2_2"
    ]
    with pytest.raises(DatasetError, match="speaker.* 6"):
        index_dataset(source, speakers=[4, 6])


def test_missing_wav_names_the_take(own_source, tmp_path):
    (own_source / "4" / "4_lawrence_0_66_66.wav").unlink()
    with pytest.raises(DatasetError, match=r"4_lawrence_0_66_66 .*no 4_lawrence_0_66_66\.wav"):
        index_dataset(own_source)
    with pytest.raises(DatasetError, match="4_lawrence_0_66_66.wav"):
        load_cache(own_source, tmp_path / "cache", progress=False)


def test_misnamed_bvh_and_inconsistent_speaker_names_are_errors(own_source):
    (own_source / "2" / "scott take one.bvh").write_text("")
    with pytest.raises(DatasetError, match="scott take one"):
        index_dataset(own_source)
    (own_source / "2" / "scott take one.bvh").unlink()
    for suffix in (".bvh", ".wav", ".TextGrid"):
        shutil.copy(own_source / "2" / f"2_scott_0_9_9{suffix}", own_source / "2" / f"2_scot_0_10_10{suffix}")
    with pytest.raises(DatasetError, match="speaker 2 is called 'scott'.*'scot'"):
        index_dataset(own_source)


# ----------------------------------------------------------------------------- cache contents


def test_window_table(cache):
    stems = [t["stem"] for t in cache.takes]
    for k, stem in enumerate(stems):
        spec = next(s for s in SPECS if s.stem == stem)
        n = _n_frames(spec)
        assert cache.takes[k]["n_frames"] == n
        rows = cache.windows[cache.windows[:, 0] == k]
        expected = (n - 34) // 10 + 1 if n >= 34 else 0
        assert len(rows) == expected, stem
        assert rows[:, 1].tolist() == list(range(0, 10 * expected, 10))
        assert np.all(rows[:, 2] == ds.SPLIT_CODES[cache.takes[k]["split"]])
    assert cache.windows.dtype == np.int64 and cache.manifest["n_windows"]["test"] == 4  # 0_65 has none
    assert sum(len(WindowDataset(cache, s)) for s in ("train", "val", "test")) == len(cache.windows)


def test_resampling_takes_every_8th_and_every_2nd_frame(cache, source):
    for stem, step in (("2_scott_0_1_1", 8), ("2_scott_0_57_57", 2)):
        k = [t["stem"] for t in cache.takes].index(stem)
        full = read_bvh(source / "2" / f"{stem}.bvh")
        picked = Motion(full.skeleton, 15.0, full.root_positions[::step], full.rotations[::step])
        np.testing.assert_array_equal(cache.take_array(k, "rot6d"), picked.upper_body_rot6d())
        np.testing.assert_array_equal(cache.take_array(k, "euler"), picked.upper_body_euler())
        assert cache.takes[k]["source_fps"] == (120.0 if step == 8 else 30.0)


def test_labels_line_up_with_the_transcript(cache):
    for k, take in enumerate(cache.takes):
        spec = next(s for s in SPECS if s.stem == take["stem"])
        n = take["n_frames"]
        times = np.arange(n) / FPS
        name = spec.stem.split("_")[1]
        expected_words = [None] * n
        for a, b, text in WORDS + [(3.0, 3.3, name)]:
            for t in np.flatnonzero((times >= a) & (times < b)):
                expected_words[t] = text.lower()
        word = cache.take_array(k, "word")
        assert [cache.vocab[i] if i >= 0 else None for i in word] == expected_words
        score, kind = np.zeros(n, np.float32), np.zeros(n, np.int16)
        if spec.semantic:
            for label, a, b, s, _ in SEMANTIC:
                inside = (times >= a) & (times < b)
                score[inside], kind[inside] = s, int(label[:2])
        np.testing.assert_array_equal(cache.take_array(k, "sem_score"), score)
        np.testing.assert_array_equal(cache.take_array(k, "sem_type"), kind)
        emotion = {"00_netural": 0, "03_sadness": 3}.get(spec.emotion_csv, emotion_of(TakeId.parse(spec.stem)))
        np.testing.assert_array_equal(cache.take_array(k, "emotion"), np.full(n, emotion, np.int16))
    # A boundary at 0.2 s, 0.7 s, ...: frame 21 (1.4 s) is a pause, frame 15 (1.0 s) is "big".
    assert cache.vocab == sorted({"hello", "big", "world", "friends", "scott", "lawrence"})


def test_audio_is_cut_to_the_motion_and_windows_are_exact(cache, source):
    assert audio_window_samples(cache.config) == 36267 == round(34 * 16000 / 15)
    for k, take in enumerate(cache.takes):
        n = take["n_frames"]
        stored = cache.take_array(k, "audio")
        assert len(stored) == -(-n * 16000 // 15)  # ceil
        wav = load_audio(next(source.rglob(take["stem"] + ".wav")))
        m = min(len(wav), len(stored))
        np.testing.assert_array_equal(stored[:m], wav[:m])
        assert not np.any(stored[m:])
    data = WindowDataset(cache, "all", fields=("audio",))
    for i in range(len(data)):
        item = data[i]
        k, start = int(item["take"]), int(item["start"])
        assert item["audio"].shape == (36267,)
        a = start * 16000 // 15
        np.testing.assert_array_equal(item["audio"].numpy(), cache.take_array(k, "audio")[a : a + 36267])


def test_norm_stats_are_numpy_over_the_train_split(cache):
    train = [k for k, t in enumerate(cache.takes) if t["split"] == "train"]
    for name in ("rot6d", "euler"):
        x = np.concatenate([cache.take_array(k, name) for k in train]).astype(np.float64)
        np.testing.assert_allclose(cache.stats[name].mean, x.mean(0), atol=1e-9)
        np.testing.assert_allclose(cache.stats[name].std, np.maximum(x.std(0), 1e-4), rtol=1e-7, atol=1e-9)
    item = WindowDataset(cache, "train", fields=("rot6d",), normalize=True)[0]
    raw = WindowDataset(cache, "train", fields=("rot6d",))[0]
    np.testing.assert_allclose(item["rot6d"].numpy(), cache.stats["rot6d"].normalize(raw["rot6d"].numpy()), atol=1e-5)


def test_only_plain_npy_and_json(cache):
    names = sorted(p.name for p in cache.dir.iterdir())
    assert not [n for n in names if n.startswith(".")], names  # no staging left behind
    for p in cache.dir.glob("*.npy"):
        np.load(p, allow_pickle=False, mmap_mode="r")
    assert json.loads((cache.dir / "speakers.json").read_text())["names"] == ["scott", "lawrence"]


@pytest.mark.parametrize("workers", [0, 2])
def test_dataloader_batches(cache, workers):
    data = WindowDataset(cache, "train", fields=ds.WINDOW_FIELDS)
    loader = DataLoader(data, batch_size=4, shuffle=True, num_workers=workers, drop_last=True)
    batches = list(loader)
    assert len(batches) == len(data) // 4
    b = batches[0]
    assert b["rot6d"].shape == (4, 34, 282) and b["rot6d"].dtype == torch.float32
    assert b["euler"].shape == (4, 34, 141)
    assert b["word"].shape == (4, 34) and b["word"].dtype == torch.int64
    assert b["sem_score"].shape == (4, 34) and b["emotion"].shape == (4, 34)
    assert b["audio"].shape == (4, 36267)
    assert b["speaker"].shape == (4,) and b["take"].shape == (4,) and b["start"].shape == (4,)
    assert set(b["speaker"].tolist()) <= {0, 1}


def test_pickled_cache_carries_no_arrays(cache):
    cache.array("audio")  # opened here
    assert len(pickle.dumps(cache)) < 100_000
    clone = pickle.loads(pickle.dumps(WindowDataset(cache, "val")))
    assert clone[0]["rot6d"].shape == (34, 282)


# ----------------------------------------------------------------------------- reuse and rebuilds


def test_reuse_and_rebuild_triggers(own_source, tmp_path):
    out = tmp_path / "cache"
    first = load_cache(own_source, out, progress=False)
    assert first.rebuilt and "manifest" in first.rebuild_reason
    stamp = (out / "manifest.json").stat().st_mtime_ns

    again = load_cache(own_source, out, progress=False)
    assert not again.rebuilt and (out / "manifest.json").stat().st_mtime_ns == stamp

    wav = own_source / "2" / "2_scott_0_9_9.wav"
    os.utime(wav, ns=(wav.stat().st_atime_ns, wav.stat().st_mtime_ns + 10**9))
    touched = load_cache(own_source, out, progress=False)
    assert touched.rebuilt and "2_scott_0_9_9.wav" in touched.rebuild_reason

    speech = own_source / "2" / "2_scott_0_1_1.wav"
    _write_take(own_source / "4", Spec("4_lawrence_0_12_12", 30, 3.0, False, None), 42, speech)
    added = load_cache(own_source, out, progress=False)
    assert added.rebuilt and "added" in added.rebuild_reason and added.n_takes == 7

    (own_source / "4" / "4_lawrence_0_66_66.txt").unlink()  # an optional file disappears
    assert load_cache(own_source, out, progress=False).rebuilt

    other = load_cache(own_source, out, DatasetConfig(stride=5), progress=False)
    assert other.rebuilt and "stride" in other.rebuild_reason
    assert not load_cache(own_source, out, DatasetConfig(stride=5), progress=False).rebuilt

    (out / "rot6d.npy").unlink()  # a damaged cache is rebuilt too
    assert load_cache(own_source, out, DatasetConfig(stride=5), progress=False).rebuilt


def test_interrupted_build_leaves_no_valid_cache(source, tmp_path, monkeypatch):
    out = tmp_path / "cache"
    build_cache(source, out, progress=False)
    real = ds._process_take
    calls = []

    def failing(take, config, prefix):
        calls.append(take.stem)
        if len(calls) == 3:
            raise KeyboardInterrupt  # what Ctrl-C in the middle of a build looks like
        return real(take, config, prefix)

    monkeypatch.setattr(ds, "_process_take", failing)
    with pytest.raises(KeyboardInterrupt):
        build_cache(source, out, DatasetConfig(stride=7), progress=False)
    monkeypatch.setattr(ds, "_process_take", real)
    assert not (out / "manifest.json").exists()
    assert not list(out.glob(".staging-*"))
    with pytest.raises(DatasetError, match="not a cache"):
        ds.open_cache(out)
    rebuilt = load_cache(source, out, progress=False)
    assert rebuilt.rebuilt and "manifest" in rebuilt.rebuild_reason


def test_parallel_build_matches_serial(source, cache, tmp_path):
    build_cache(source, tmp_path / "par", workers=2, progress=False)
    par = ds.open_cache(tmp_path / "par")
    for name in ds.WINDOW_FIELDS:
        np.testing.assert_array_equal(par.array(name), cache.array(name))
    np.testing.assert_array_equal(par.windows, cache.windows)
    assert par.vocab == cache.vocab
