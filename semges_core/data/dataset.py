"""BEAT (and SynthBEAT) as training windows: the take index, the on-disk cache, the Dataset.

`index_dataset` finds the takes of a BEAT-format folder and their sibling files.
`build_cache` turns them into a folder of plain `.npy` arrays at 15 fps (one array
per field, all takes concatenated, with per-take offsets), so training opens
everything with `np.load(mmap_mode="r")` and a window read touches only its own
rows. `load_cache` reuses a cache while its sources are unchanged and rebuilds it
otherwise. `WindowDataset` serves the 34-frame windows as tensors.

Cache layout (`FORMAT_VERSION` 1), every array little-endian `.npy`, no pickles:

    euler.npy        (N, 141) float32  upper-body Euler degrees (BEAT's pose vector)
    rot6d.npy        (N, 282) float32  body 9 x 6 then hands 38 x 6
    word.npy         (N,)     int32    index into vocab.json, -1 in pauses
    sem_score.npy    (N,)     float32  semantic relevance score (0 outside gestures)
    sem_type.npy     (N,)     int16    semantic type id (annotations.SEMANTIC_TYPES)
    emotion.npy      (N,)     int16    emotion id (annotations.EMOTIONS)
    audio.npy        (S,)     float32  16 kHz mono, each take cut/padded to its motion
    frame_offsets.npy (K+1,)  int64    take k's frames are rows [off[k], off[k+1])
    audio_offsets.npy (K+1,)  int64    take k's samples likewise
    take_speaker.npy (K,)     int64    speaker index (speakers.json) per take
    take_split.npy   (K,)     int8     0 train, 1 val, 2 test
    windows.npy      (W, 3)   int64    (take index, start frame, split code), stride windows
    norm_rot6d.npz, norm_euler.npz     NormStats over the train split
    vocab.json, speakers.json
    manifest.json    written last and atomically; without it the folder is not a cache

Audio of a frame range [f, f + n) is samples [floor(f * sr / fps), ...) of its take;
a take holds ceil(T * sr / fps) samples and a window round(window * sr / fps)
(36267 for 34 frames at 15 fps, 16 kHz), which always fits inside the take.

Only one process should build a given cache folder at a time. `workers` > 1 spawns
processes, so a script calling `build_cache`/`load_cache` with workers needs the usual
`if __name__ == "__main__":` guard.
"""

from __future__ import annotations

import json
import logging
import math
import multiprocessing
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, fields
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch
from numpy.lib.format import open_memmap
from tqdm import tqdm

from semges_core.formats.annotations import read_emotion, read_semantic
from semges_core.speech.audio import load_audio
from semges_core.formats.bvh import read_bvh
from semges_core.data.beat_names import SPLITS, TakeId, emotion_of, is_english, split_of
from semges_core.errors import DatasetError, InputFileError
from semges_core.fileio import atomic_path, atomic_write
from semges_core.data.framing import emotion_per_frame, semantic_per_frame, word_index_per_frame
from semges_core.motion.normalization import NormStats
from semges_core.formats.textgrid import read_textgrid, words_from_textgrid

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SPLIT_CODES: dict[str, int] = {name: i for i, name in enumerate(SPLITS)}

# Per-frame arrays: name -> (trailing shape, dtype).
FRAME_FIELDS: dict[str, tuple[tuple[int, ...], np.dtype]] = {
    "euler": ((141,), np.dtype(np.float32)),
    "rot6d": ((282,), np.dtype(np.float32)),
    "word": ((), np.dtype(np.int32)),
    "sem_score": ((), np.dtype(np.float32)),
    "sem_type": ((), np.dtype(np.int16)),
    "emotion": ((), np.dtype(np.int16)),
}
WINDOW_FIELDS: tuple[str, ...] = tuple(FRAME_FIELDS) + ("audio",)
DEFAULT_FIELDS: tuple[str, ...] = ("rot6d", "word", "sem_score", "sem_type", "emotion", "audio")
NORMALIZED_FIELDS: tuple[str, ...] = ("rot6d", "euler")
_INDEX_ARRAYS: tuple[str, ...] = ("frame_offsets", "audio_offsets", "take_speaker", "take_split", "windows")


# ============================================================================ index


@dataclass(frozen=True)
class Take:
    """One take of the dataset and its files. `semantic_txt` and `emotion_csv` may be absent."""

    id: TakeId
    split: str
    bvh: Path
    wav: Path
    textgrid: Path
    semantic_txt: Path | None = None
    emotion_csv: Path | None = None

    @property
    def stem(self) -> str:
        return self.id.stem

    @property
    def sources(self) -> tuple[Path, ...]:
        """Every file the cache of this take depends on."""
        files = (self.bvh, self.wav, self.textgrid, self.semantic_txt, self.emotion_csv)
        return tuple(p for p in files if p is not None)


def _is_hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def index_dataset(root: str | Path, speakers: Sequence[int] | None = None) -> list[Take]:
    """Every English take under `root` (searched recursively), sorted by speaker, type and id.

    A take is a `<stem>.bvh` with `<stem>.wav` and `<stem>.TextGrid` beside it (required)
    and optionally `<stem>.txt` (semantic) and `<stem>.csv` (emotion); suffixes match in
    any case. Non-English takes are skipped; hidden folders and files are ignored.
    `speakers` keeps only those speaker ids, each of which must have takes.
    Raises `DatasetError` for a misnamed BVH, a take found twice, missing files or no takes.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset root is not a folder")
    wanted = None if speakers is None else {int(s) for s in speakers}

    siblings: dict[Path, dict[str, Path]] = {}  # folder -> lower-case file name -> path
    found: dict[str, Take] = {}
    problems: list[str] = []
    n_other_language = 0
    for bvh in sorted(root.rglob("*")):
        if bvh.suffix.lower() != ".bvh" or _is_hidden(bvh, root) or not bvh.is_file():
            continue
        try:
            take_id = TakeId.parse(bvh.stem)
        except DatasetError as e:
            raise DatasetError(f"{bvh}: {e}") from None
        if not is_english(take_id):
            n_other_language += 1
            continue
        if wanted is not None and take_id.speaker_id not in wanted:
            continue
        if take_id.stem in found:
            raise DatasetError(f"take {take_id.stem} is there twice: {found[take_id.stem].bvh} and {bvh}")
        folder = bvh.parent
        if folder not in siblings:
            siblings[folder] = {p.name.lower(): p for p in folder.iterdir() if p.is_file()}
        names = siblings[folder]

        def sibling(suffix: str) -> Path | None:
            return names.get(f"{bvh.stem}{suffix}".lower())

        wav, textgrid = sibling(".wav"), sibling(".TextGrid")
        missing = [f"{bvh.stem}{s}" for s, p in ((".wav", wav), (".TextGrid", textgrid)) if p is None]
        if missing:
            problems.append(f"take {take_id.stem} in {folder} has no {' and no '.join(missing)}")
            continue
        found[take_id.stem] = Take(
            id=take_id,
            split=split_of(take_id),
            bvh=bvh,
            wav=wav,
            textgrid=textgrid,
            semantic_txt=sibling(".txt"),
            emotion_csv=sibling(".csv"),
        )
    if problems:
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise DatasetError(f"{root}: " + "; ".join(problems[:10]) + more)
    if n_other_language:
        log.info("%s: skipped %d non-English takes", root, n_other_language)
    takes = sorted(found.values(), key=lambda t: t.id.sort_key)
    names: dict[int, TakeId] = {}
    for t in takes:
        other = names.setdefault(t.id.speaker_id, t.id)
        if other.speaker_name != t.id.speaker_name:
            raise DatasetError(
                f"{root}: speaker {t.id.speaker_id} is called {other.speaker_name!r} in {other.stem} "
                f"but {t.id.speaker_name!r} in {t.stem}"
            )
    if wanted is not None:
        absent = sorted(wanted - {t.id.speaker_id for t in takes})
        if absent:
            raise DatasetError(f"{root}: no English takes of speaker(s) {', '.join(map(str, absent))}")
    if not takes:
        raise DatasetError(f"{root}: no English BEAT takes (<speaker>_<name>_<type>_<start>_<end>.bvh) found")
    return takes


def _source_signatures(root: Path, takes: Sequence[Take]) -> dict[str, list[int]]:
    """Relative path -> [size, mtime_ns] of every source file: what the cache depends on."""
    out = {}
    for take in takes:
        for path in take.sources:
            st = path.stat()
            out[path.relative_to(root).as_posix()] = [st.st_size, st.st_mtime_ns]
    return out


# ============================================================================ config and time


@dataclass(frozen=True)
class DatasetConfig:
    """What the cache is built for; a cache built with another config is rebuilt."""

    fps: float = 15.0
    window: int = 34
    stride: int = 10
    speakers: tuple[int, ...] | None = None
    sample_rate: int = 16000

    def __post_init__(self) -> None:
        fps = float(self.fps)
        if not math.isfinite(fps) or fps <= 0:
            raise ValueError(f"fps must be positive, got {self.fps!r}")
        object.__setattr__(self, "fps", fps)
        for name in ("window", "stride", "sample_rate"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
            object.__setattr__(self, name, int(value))
        if self.speakers is not None:
            speakers = tuple(sorted({int(s) for s in self.speakers}))
            if not speakers or speakers[0] < 1:
                raise ValueError(f"speakers must be a non-empty list of ids >= 1, got {self.speakers!r}")
            object.__setattr__(self, "speakers", speakers)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["speakers"] = None if self.speakers is None else list(self.speakers)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DatasetConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown dataset config keys: {', '.join(unknown)}")
        return cls(**d)


def _ratio(config: DatasetConfig) -> Fraction:
    """Audio samples per motion frame, exactly."""
    return Fraction(config.sample_rate) / Fraction(config.fps)


def audio_samples_for_frames(n_frames: int, config: DatasetConfig) -> int:
    """Samples stored for a take of `n_frames` frames: ceil(T * sr / fps)."""
    return math.ceil(n_frames * _ratio(config))


def audio_start_sample(frame: int, config: DatasetConfig) -> int:
    """First sample of frame `frame` within its take: floor(frame * sr / fps)."""
    return math.floor(frame * _ratio(config))


def audio_window_samples(config: DatasetConfig) -> int:
    """Samples in one window: round(window * sr / fps), halves up (36267 by default)."""
    return math.floor(config.window * _ratio(config) + Fraction(1, 2))


def window_starts(n_frames: int, config: DatasetConfig) -> np.ndarray:
    """Start frames of every full window inside a take: floor((T - window) / stride) + 1 of them."""
    if n_frames < config.window:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, n_frames - config.window + 1, config.stride, dtype=np.int64)


# ============================================================================ one take


def _process_take(take: Take, config: DatasetConfig, out_prefix: Path) -> dict[str, Any]:
    """Compute every per-take array, save them as `<out_prefix>.<field>.npy`, return the small facts."""
    motion = read_bvh(take.bvh)
    source_fps, source_frames = motion.fps, motion.n_frames
    motion = motion.resample(config.fps)
    n = motion.n_frames
    try:
        arrays: dict[str, np.ndarray] = {
            "euler": motion.upper_body_euler(),
            "rot6d": motion.upper_body_rot6d(),
        }
    except KeyError as e:  # the skeleton lacks some upper-body joint
        raise InputFileError(take.bvh, f"not a BEAT skeleton: {e.args[0]}") from None

    words = words_from_textgrid(read_textgrid(take.textgrid), path=take.textgrid)
    try:
        arrays["word"] = word_index_per_frame(words, n, config.fps)  # local to `words` for now
    except ValueError as e:
        raise InputFileError(take.textgrid, str(e)) from None

    if take.semantic_txt is not None:
        try:
            arrays["sem_score"], arrays["sem_type"] = semantic_per_frame(
                read_semantic(take.semantic_txt), n, config.fps
            )
        except ValueError as e:
            raise InputFileError(take.semantic_txt, str(e)) from None
    else:
        arrays["sem_score"] = np.zeros(n, dtype=np.float32)
        arrays["sem_type"] = np.zeros(n, dtype=np.int16)

    default_emotion = emotion_of(take.id)
    if take.emotion_csv is not None:
        try:
            arrays["emotion"] = emotion_per_frame(
                read_emotion(take.emotion_csv), n, config.fps, default=default_emotion
            )
        except ValueError as e:
            raise InputFileError(take.emotion_csv, str(e)) from None
    else:
        arrays["emotion"] = np.full(n, default_emotion, dtype=np.int16)

    audio = load_audio(take.wav, config.sample_rate)
    audio_seconds = len(audio) / config.sample_rate
    n_samples = audio_samples_for_frames(n, config)
    fitted = np.zeros(n_samples, dtype=np.float32)
    fitted[: min(n_samples, len(audio))] = audio[:n_samples]
    arrays["audio"] = fitted

    for name, arr in arrays.items():
        expected = FRAME_FIELDS[name] if name in FRAME_FIELDS else ((), np.dtype(np.float32))
        arr = np.ascontiguousarray(arr, dtype=expected[1])
        assert arr.shape[1:] == expected[0], (name, arr.shape)
        np.save(f"{out_prefix}.{name}.npy", arr, allow_pickle=False)
    return {
        "n_frames": n,
        "n_samples": n_samples,
        "source_fps": source_fps,
        "source_frames": source_frames,
        "audio_seconds": round(audio_seconds, 4),
        "words": [w.text.lower() for w in words],
    }


def _one_thread() -> None:
    """Each worker computes on one thread, so `workers` processes use `workers` cores."""
    torch.set_num_threads(1)


def _process_job(job: tuple[Take, DatasetConfig, Path]) -> dict[str, Any]:
    return _process_take(*job)


# ============================================================================ building


@dataclass
class CacheInfo:
    """What a build produced."""

    cache_dir: Path
    n_takes: int
    n_frames: int
    n_windows: dict[str, int]
    vocab_size: int
    seconds: float

    def summary(self) -> str:
        hours = self.n_frames / 15.0 / 3600.0
        windows = ", ".join(f"{self.n_windows.get(s, 0)} {s}" for s in SPLITS)
        return (
            f"{self.n_takes} takes, {self.n_frames} frames (~{hours:.2f} h at 15 fps), "
            f"windows: {windows}, vocabulary {self.vocab_size} words"
        )


def _remove_stale_staging(cache_dir: Path) -> None:
    for p in cache_dir.glob(".staging-*"):
        shutil.rmtree(p, ignore_errors=True)


def _write_npy(path: Path, arr: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, arr, allow_pickle=False)


def _write_json(path: Path, obj: Any) -> None:
    with atomic_write(path) as f:
        json.dump(obj, f, indent=1, ensure_ascii=False)
        f.write("\n")


def _iter_results(
    takes: Sequence[Take], config: DatasetConfig, staging: Path, workers: int, progress: bool
) -> Iterator[dict[str, Any]]:
    jobs = [(t, config, staging / f"{i:06d}") for i, t in enumerate(takes)]
    bar = tqdm(total=len(jobs), desc="caching takes", unit="take", disable=not progress)
    try:
        if workers <= 1:
            for job in jobs:
                yield _process_job(job)
                bar.update()
        else:
            # Spawned, not forked: a fork after numpy/BLAS or torch started their thread
            # pools can deadlock in the child (it did, after an earlier serial build).
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_one_thread) as pool:
                for result in pool.map(_process_job, jobs, chunksize=1):
                    yield result
                    bar.update()
    finally:
        bar.close()


def build_cache(
    root: str | Path,
    cache_dir: str | Path,
    config: DatasetConfig | None = None,
    workers: int = 1,
    progress: bool = True,
) -> CacheInfo:
    """Index `root` and (re)build the cache in `cache_dir` from scratch.

    The old manifest is removed first and the new one written last, so an interrupted
    build never leaves a folder that `load_cache` takes as valid. `workers` > 1 reads
    takes in that many processes.
    """
    t0 = time.perf_counter()
    config = config or DatasetConfig()
    root, cache_dir = Path(root), Path(cache_dir)
    takes = index_dataset(root, config.speakers)
    # Signatures before reading: a file edited during the build makes the next load rebuild.
    sources = _source_signatures(root, takes)

    cache_dir.mkdir(parents=True, exist_ok=True)
    (cache_dir / MANIFEST).unlink(missing_ok=True)
    _remove_stale_staging(cache_dir)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=cache_dir))
    try:
        results = list(_iter_results(takes, config, staging, workers, progress))
        info = _assemble(root, cache_dir, config, takes, results, sources, staging, t0)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("built cache %s in %.1f s: %s", cache_dir, info.seconds, info.summary())
    return info


def _assemble(
    root: Path,
    cache_dir: Path,
    config: DatasetConfig,
    takes: Sequence[Take],
    results: Sequence[dict[str, Any]],
    sources: dict[str, list[int]],
    staging: Path,
    t0: float,
) -> CacheInfo:
    n_frames = np.array([r["n_frames"] for r in results], dtype=np.int64)
    n_samples = np.array([r["n_samples"] for r in results], dtype=np.int64)
    frame_offsets = np.concatenate([[0], np.cumsum(n_frames)]).astype(np.int64)
    audio_offsets = np.concatenate([[0], np.cumsum(n_samples)]).astype(np.int64)
    total = int(frame_offsets[-1])

    # Vocabulary over every take (FastText has a vector for any word), sorted for determinism.
    vocab = sorted({w for r in results for w in r["words"]})
    word_id = {w: i for i, w in enumerate(vocab)}

    # Concatenate the staged per-take arrays into one file per field, take by take.
    for name in (*FRAME_FIELDS, "audio"):
        if name == "audio":
            shape, dtype, offsets = (int(audio_offsets[-1]),), np.dtype(np.float32), audio_offsets
        else:
            trailing, dtype = FRAME_FIELDS[name]
            shape, offsets = (total, *trailing), frame_offsets
        with atomic_path(cache_dir / f"{name}.npy") as tmp:
            out = open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
            for k in range(len(takes)):
                part = staging / f"{k:06d}.{name}.npy"
                arr = np.load(part, allow_pickle=False)
                if name == "word":
                    local_to_vocab = np.array([word_id[w] for w in results[k]["words"]] + [-1], dtype=np.int32)
                    arr = local_to_vocab[arr]  # -1 indexes the trailing -1
                out[offsets[k] : offsets[k + 1]] = arr
                part.unlink()
            out.flush()
            del out

    speaker_ids = sorted({t.id.speaker_id for t in takes})
    speaker_index = {s: i for i, s in enumerate(speaker_ids)}
    speaker_names = {t.id.speaker_id: t.id.speaker_name for t in takes}
    take_speaker = np.array([speaker_index[t.id.speaker_id] for t in takes], dtype=np.int64)
    take_split = np.array([SPLIT_CODES[t.split] for t in takes], dtype=np.int8)

    rows = []
    for k, t in enumerate(takes):
        starts = window_starts(int(n_frames[k]), config)
        rows.append(np.stack([np.full_like(starts, k), starts, np.full_like(starts, take_split[k])], axis=1))
    windows = np.concatenate(rows).astype(np.int64) if rows else np.zeros((0, 3), dtype=np.int64)

    for name, arr in (
        ("frame_offsets", frame_offsets),
        ("audio_offsets", audio_offsets),
        ("take_speaker", take_speaker),
        ("take_split", take_split),
        ("windows", windows),
    ):
        _write_npy(cache_dir / f"{name}.npy", arr)
    _write_json(cache_dir / "vocab.json", {"words": vocab})
    _write_json(
        cache_dir / "speakers.json",
        {
            "ids": speaker_ids,
            "names": [speaker_names[s] for s in speaker_ids],
            "index": {str(s): i for s, i in speaker_index.items()},
        },
    )

    # Normalisation statistics over the train split (all takes if there is none).
    stats_takes = [k for k, t in enumerate(takes) if t.split == "train" and n_frames[k] > 0]
    stats_split = "train"
    if not stats_takes:
        log.warning("%s: no training frames; normalisation statistics are over all takes", root)
        stats_takes, stats_split = [k for k in range(len(takes)) if n_frames[k] > 0], "all"
    if not stats_takes:
        raise DatasetError(f"{root}: every take has zero frames at {config.fps:g} fps")
    for name in NORMALIZED_FIELDS:
        data = np.load(cache_dir / f"{name}.npy", mmap_mode="r")
        stats = NormStats.from_arrays(data[frame_offsets[k] : frame_offsets[k + 1]] for k in stats_takes)
        stats.save(cache_dir / f"norm_{name}.npz")
        del data

    n_windows = {s: int(np.sum(windows[:, 2] == SPLIT_CODES[s])) for s in SPLITS}
    seconds = time.perf_counter() - t0
    manifest = {
        "format_version": FORMAT_VERSION,
        "config": config.to_dict(),
        "root": str(root.resolve()),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "build_seconds": round(seconds, 3),
        "n_takes": len(takes),
        "n_frames": total,
        "n_samples": int(audio_offsets[-1]),
        "n_windows": n_windows,
        "vocab_size": len(vocab),
        "stats_split": stats_split,
        "takes": [
            {
                "stem": t.stem,
                "split": t.split,
                "speaker_id": t.id.speaker_id,
                "n_frames": int(r["n_frames"]),
                "n_samples": int(r["n_samples"]),
                "source_fps": r["source_fps"],
                "source_frames": r["source_frames"],
                "audio_seconds": r["audio_seconds"],
            }
            for t, r in zip(takes, results)
        ],
        "sources": sources,
    }
    _write_json(cache_dir / MANIFEST, manifest)  # last: from here on the folder is a cache
    return CacheInfo(cache_dir, len(takes), total, n_windows, len(vocab), seconds)


# ============================================================================ loading


class Cache:
    """A built cache, opened read-only. Arrays are memory-mapped on first use, per process.

    Pickling (DataLoader workers under spawn) sends the folder, not the arrays.
    """

    def __init__(self, cache_dir: str | Path) -> None:
        self.dir = Path(cache_dir)
        manifest = _read_manifest(self.dir)
        if manifest is None:
            raise DatasetError(f"{self.dir}: not a cache (no valid {MANIFEST})")
        self.manifest: dict[str, Any] = manifest
        self.config = DatasetConfig.from_dict(manifest["config"])
        problem = _check_cache_files(self.dir, manifest)
        if problem:
            raise DatasetError(f"{self.dir}: {problem}")
        self.vocab: list[str] = _read_json(self.dir / "vocab.json")["words"]
        speakers = _read_json(self.dir / "speakers.json")
        self.speaker_ids: list[int] = speakers["ids"]
        self.speaker_names: list[str] = speakers["names"]
        self.takes: list[dict[str, Any]] = manifest["takes"]
        self.frame_offsets: np.ndarray = np.load(self.dir / "frame_offsets.npy")
        self.audio_offsets: np.ndarray = np.load(self.dir / "audio_offsets.npy")
        self.take_speaker: np.ndarray = np.load(self.dir / "take_speaker.npy")
        self.take_split: np.ndarray = np.load(self.dir / "take_split.npy")
        self.windows: np.ndarray = np.load(self.dir / "windows.npy")
        self.stats: dict[str, NormStats] = {n: NormStats.load(self.dir / f"norm_{n}.npz") for n in NORMALIZED_FIELDS}
        self.rebuilt = False
        self.rebuild_reason: str | None = None
        self._arrays: dict[str, np.ndarray] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_arrays"] = {}
        return state

    @property
    def n_takes(self) -> int:
        return len(self.takes)

    @property
    def n_frames(self) -> int:
        return int(self.frame_offsets[-1])

    def array(self, name: str) -> np.ndarray:
        """The whole memory-mapped array of a field (see `WINDOW_FIELDS`)."""
        if name not in WINDOW_FIELDS:
            raise KeyError(f"unknown cache field {name!r}; fields are {', '.join(WINDOW_FIELDS)}")
        arr = self._arrays.get(name)
        if arr is None:
            arr = self._arrays[name] = np.load(self.dir / f"{name}.npy", mmap_mode="r")
        return arr

    def take_array(self, take: int, name: str) -> np.ndarray:
        """One take's rows (frames, or samples for "audio") of a field, memory-mapped."""
        offsets = self.audio_offsets if name == "audio" else self.frame_offsets
        return self.array(name)[offsets[take] : offsets[take + 1]]

    def windows_of(self, split: str) -> np.ndarray:
        """(n, 3) rows (take, start, split code) of one split, or of every split for "all"."""
        if split == "all":
            return self.windows
        if split not in SPLIT_CODES:
            raise ValueError(f"split must be one of {', '.join(SPLITS)} or 'all', got {split!r}")
        return self.windows[self.windows[:, 2] == SPLIT_CODES[split]]

    def summary(self) -> str:
        m = self.manifest
        info = CacheInfo(self.dir, m["n_takes"], m["n_frames"], m["n_windows"], m["vocab_size"], m["build_seconds"])
        return info.summary() + (" (rebuilt: " + self.rebuild_reason + ")" if self.rebuilt else " (reused)")


def _read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _read_manifest(cache_dir: Path) -> dict[str, Any] | None:
    try:
        manifest = _read_json(cache_dir / MANIFEST)
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def _check_cache_files(cache_dir: Path, manifest: dict[str, Any]) -> str | None:
    """Why the arrays beside a manifest cannot be used, or None when they look whole."""
    try:
        n, s, k = int(manifest["n_frames"]), int(manifest["n_samples"]), int(manifest["n_takes"])
        expected = {name: (n, *trailing) for name, (trailing, _) in FRAME_FIELDS.items()}
        expected |= {"audio": (s,), "frame_offsets": (k + 1,), "audio_offsets": (k + 1,)}
        expected |= {"take_speaker": (k,), "take_split": (k,)}
        for name, shape in expected.items():
            arr = np.load(cache_dir / f"{name}.npy", mmap_mode="r")
            if arr.shape != shape:
                return f"{name}.npy has shape {arr.shape}, the manifest says {shape}"
        windows = np.load(cache_dir / "windows.npy", mmap_mode="r")
        if windows.ndim != 2 or windows.shape[1] != 3:
            return f"windows.npy has shape {windows.shape}, expected (W, 3)"
        for name in ("vocab.json", "speakers.json", *(f"norm_{f}.npz" for f in NORMALIZED_FIELDS)):
            if not (cache_dir / name).is_file():
                return f"{name} is missing"
    except FileNotFoundError as e:
        return f"{Path(e.filename).name} is missing"
    except (OSError, ValueError, KeyError, TypeError) as e:
        return f"unreadable ({e})"
    return None


def _why_stale(root: Path, cache_dir: Path, config: DatasetConfig) -> str | None:
    """Why the cache in `cache_dir` does not match `root` and `config`; None when it does."""
    manifest = _read_manifest(cache_dir)
    if manifest is None:
        return f"no valid {MANIFEST}"
    if manifest.get("format_version") != FORMAT_VERSION:
        return f"cache format {manifest.get('format_version')} is not the current {FORMAT_VERSION}"
    old = manifest.get("config")
    new = config.to_dict()
    if old != new:
        changed = sorted(k for k in set(new) | set(old or {}) if (old or {}).get(k) != new.get(k))
        return "config changed (" + ", ".join(f"{k}: {(old or {}).get(k)!r} -> {new.get(k)!r}" for k in changed) + ")"
    takes = index_dataset(root, config.speakers)
    now = _source_signatures(root, takes)
    then = manifest.get("sources", {})
    old_stems = {t["stem"] for t in manifest.get("takes", [])}
    new_stems = {t.stem for t in takes}
    if new_stems - old_stems:
        return "takes added: " + _few(new_stems - old_stems)
    if old_stems - new_stems:
        return "takes removed: " + _few(old_stems - new_stems)
    if set(now) != set(then):
        return "source files added or removed: " + _few(set(now) ^ set(then))
    changed = {p for p in now if list(now[p]) != list(then[p])}
    if changed:
        return "source files changed: " + _few(changed)
    return _check_cache_files(cache_dir, manifest)


def _few(names: set[str], n: int = 5) -> str:
    items = sorted(names)
    return ", ".join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")


def open_cache(cache_dir: str | Path) -> Cache:
    """Open a built cache without looking at the dataset (e.g. where only the cache was copied)."""
    return Cache(cache_dir)


def load_cache(
    root: str | Path,
    cache_dir: str | Path,
    config: DatasetConfig | None = None,
    workers: int = 1,
    progress: bool = True,
) -> Cache:
    """The cache of `root` for `config`, rebuilt first when it is missing or stale.

    Stale means: no manifest (never built, or a build was interrupted), another
    format version or config, a take added or removed, or any source file whose size
    or modification time differs from the build's. `Cache.rebuilt` and
    `Cache.rebuild_reason` say what happened; the reason is also logged.
    """
    config = config or DatasetConfig()
    root, cache_dir = Path(root), Path(cache_dir)
    reason = _why_stale(root, cache_dir, config)
    if reason is not None:
        log.info("rebuilding cache %s: %s", cache_dir, reason)
        build_cache(root, cache_dir, config, workers=workers, progress=progress)
    cache = Cache(cache_dir)
    cache.rebuilt, cache.rebuild_reason = reason is not None, reason
    return cache


# ============================================================================ torch Dataset


class WindowDataset(torch.utils.data.Dataset):
    """The `window`-frame windows of one split as dicts of tensors.

    Each item holds the requested `fields` — per-frame arrays (window, ...) and
    "audio" (audio_window_samples,) — plus "speaker", "take" and "start" (int64
    scalars). Float fields are float32, integer fields int64 (ready for embedding
    lookups). `normalize=True` standardises rot6d and euler with the cache's
    train-split statistics. Only the window's rows are read from the memory maps.

    `frame_files` adds per-frame arrays kept outside the cache (name -> `.npy` with one
    row per cache frame, in the cache's order), such as precomputed audio features;
    they are sliced like the cache's own frame fields and opened per process, so
    pickling the dataset (spawned DataLoader workers) sends paths, not data.
    """

    def __init__(
        self,
        cache: Cache,
        split: str = "train",
        fields: Sequence[str] = DEFAULT_FIELDS,
        normalize: bool = False,
        frame_files: Mapping[str, str | Path] | None = None,
    ) -> None:
        unknown = [f for f in fields if f not in WINDOW_FIELDS]
        if unknown:
            raise ValueError(f"unknown fields {unknown}; available: {', '.join(WINDOW_FIELDS)}")
        self.frame_files = {name: Path(p) for name, p in (frame_files or {}).items()}
        clash = sorted(set(self.frame_files) & {*WINDOW_FIELDS, "speaker", "take", "start"})
        if clash:
            raise ValueError(f"frame_files {clash} would shadow the dataset's own fields")
        for name, path in self.frame_files.items():
            rows = np.load(path, mmap_mode="r").shape[:1]
            if rows != (cache.n_frames,):
                raise ValueError(f"{path}: {rows[0] if rows else 0} rows for {cache.n_frames} cache frames")
        self.cache = cache
        self.split = split
        self.fields = tuple(fields)
        self.normalize = normalize
        self.windows = np.ascontiguousarray(cache.windows_of(split))  # (n, 3)
        self.window = cache.config.window
        self.audio_len = audio_window_samples(cache.config)
        self._frame_arrays: dict[str, np.ndarray] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_frame_arrays"] = {}
        return state

    def _frame_array(self, name: str) -> np.ndarray:
        arr = self._frame_arrays.get(name)
        if arr is None:
            arr = self._frame_arrays[name] = np.load(self.frame_files[name], mmap_mode="r")
        return arr

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        take, start, _ = (int(v) for v in self.windows[index])
        cache = self.cache
        first = int(cache.frame_offsets[take]) + start
        item: dict[str, torch.Tensor] = {}
        for name in self.fields:
            if name == "audio":
                a = int(cache.audio_offsets[take]) + audio_start_sample(start, cache.config)
                x = np.array(cache.array("audio")[a : a + self.audio_len])
            else:
                x = np.array(cache.array(name)[first : first + self.window])  # copy out of the map
                if self.normalize and name in NORMALIZED_FIELDS:
                    x = cache.stats[name].normalize(x).astype(np.float32)
            t = torch.from_numpy(x)
            item[name] = t.long() if not t.is_floating_point() else t
        for name in self.frame_files:
            x = np.array(self._frame_array(name)[first : first + self.window])
            t = torch.from_numpy(x)
            item[name] = t.float() if t.is_floating_point() else t.long()
        item["speaker"] = torch.tensor(int(cache.take_speaker[take]), dtype=torch.int64)
        item["take"] = torch.tensor(take, dtype=torch.int64)
        item["start"] = torch.tensor(start, dtype=torch.int64)
        return item
