"""Write a SynthBEAT dataset: BEAT's layout and file formats, made procedurally.

    python -m training.synthbeat.generate --out data/synthbeat [--seed 0] [--speakers 4]
        [--takes-per-speaker 10] [--take-seconds 35] [--fps 30] [--workers 2]

Per take `<root>/<speaker>/<speaker>_<name>_0_<id>_<id>` it writes the .wav (16 kHz
mono, espeak-ng), .TextGrid (exact word times), .bvh (gestures aligned to the words),
.txt (semantic gesture annotation) and .csv (emotion), and at the root
`synthbeat.json` with the configuration, the speakers, the held-out words and each
take's split. Speech ids are chosen so that BEAT's split rule puts takes in train,
val and test; test takes alone contain the held-out synonyms (lexicon.py).

Everything follows from the seed: the same configuration gives byte-identical files,
whatever the number of workers.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm import tqdm

from semges_core.formats.annotations import SEMANTIC_TYPES, EmotionSegment, SemanticSegment, write_emotion, write_semantic
from semges_core.speech.audio import write_wav
from semges_core.data.beat_names import EMOTIONS, ENGLISH_SPEECH, TakeId, emotion_of, split_of
from semges_core.formats.bvh import write_bvh
from semges_core.errors import SemgesError
from semges_core.fileio import atomic_write
from semges_core.formats.textgrid import Interval, IntervalTier, TextGrid, Word, write_textgrid
from training.synthbeat import lexicon
from training.synthbeat.events import BEAT, GestureEvent, SpeakerStyle
from training.synthbeat.gestures import synthesize_motion
from training.synthbeat.speech import (
    EDGE_SILENCE_S,
    SAMPLE_RATE,
    SENTENCE_GAP_S,
    WORD_GAP_S,
    WordSynthesizer,
    espeak_binary,
    stress_times,
    synthesize_speech,
)

FORMAT_VERSION = 2  # 2: SynthBEAT v2 motion (gesture units, home in front, beats on stresses)
MANIFEST = "synthbeat.json"
BEAT_FPS = 120.0

# The first four are BEAT-16h's speaker ids; more speakers take the odd ids.
SPEAKER_PRESETS: tuple[SpeakerStyle, ...] = (
    SpeakerStyle(2, "ava", "en-us+f4", 165, 55, "right", 1.0, 1.0, 0.3),
    SpeakerStyle(4, "ben", "en-us+m3", 160, 40, "left", 1.2, 0.8, 0.6),
    SpeakerStyle(6, "cleo", "en-gb+f2", 175, 62, "right", 0.8, 1.25, 0.2),
    SpeakerStyle(8, "dan", "en-gb-x-rp+m1", 150, 35, "right", 1.1, 0.9, 0.8),
    SpeakerStyle(1, "eve", "en-us+f3", 170, 58, "both", 0.9, 1.1, 0.4),
    SpeakerStyle(3, "finn", "en-gb-scotland+m2", 155, 45, "left", 1.15, 0.85, 0.5),
    SpeakerStyle(5, "gia", "en-029+f1", 168, 60, "right", 0.95, 1.2, 0.1),
    SpeakerStyle(7, "hugo", "en-us-nyc+m4", 158, 38, "right", 1.25, 0.75, 0.7),
)

# Speech ids in the order each split hands them out, alternating neutral and emotional
# takes so that even a few takes per speaker cover several emotions (BEAT's rule in
# beat_names: the id decides both the split and the emotion).
_TEST_IDS = (1, 65, 2, 73, 3, 81, 4, 87, 5, 95, 6, 103, 7, 111, 8)
_VAL_IDS = (57, 72, 58, 80, 59, 86, 60, 94, 61, 102, 62, 110, 63, 118, 64)
_TRAIN_IDS = tuple(
    i
    for pair in zip(
        range(9, 57),
        (66, 74, 82, 88, 96, 104, 112, 67, 75, 83, 89, 97, 105, 113, 68, 76, 84, 90, 98, 106, 114,
         69, 77, 85, 91, 99, 107, 115, 70, 78, 92, 100, 108, 116, 71, 79, 93, 101, 109, 117),
    )
    for i in pair
)

# Gesture timing around a keyword's stroke, seconds.
STROKE_AT = 0.4              # stroke at onset + 40% of the word
KEYWORD_PREP_S = (0.55, 0.8)  # long enough that wide gestures stay near real speeds (1-3 m/s)
KEYWORD_RETRACT_S = (0.6, 0.9)
BEAT_PREP_S = (0.3, 0.45)    # the lift before a beat's strike; strikes take ~0.2 s, as in speech
BEAT_RETRACT_S = (0.3, 0.5)
MIN_PHASE_S = 0.1            # shortest preparation or retraction when gestures are squeezed together
LEVEL_BOUNDS = (0.45, 0.75)  # intensity below the first is "l", below the second "m", else "h"
_TYPE_BASE = {lexicon.DEICTIC: 2, lexicon.ICONIC: 5, lexicon.METAPHORIC: 8}


@dataclass(frozen=True)
class SynthConfig:
    """What to generate. `root`, `workers` and `cache_dir` do not change the files' contents."""

    root: Path
    seed: int = 0
    speakers: int = 4
    takes_per_speaker: int = 10
    take_seconds: float = 35.0
    fps: float = 30.0
    fps_120_takes: int = 2          # this many takes get BEAT's 120 fps BVH instead of `fps`
    workers: int = 2
    held_out_prob: float = 0.5      # chance that a slot of a test take takes a held-out synonym
    beat_prob: float = 0.8          # chance that a content word gets a beat, times the speaker's tempo
    test_fraction: float = 0.2
    val_fraction: float = 0.1
    cache_dir: Path | None = None   # optional disk cache of espeak-ng words
    progress: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))
        if self.cache_dir is not None:
            object.__setattr__(self, "cache_dir", Path(self.cache_dir))
        if not 1 <= self.speakers <= len(SPEAKER_PRESETS):
            raise ValueError(f"speakers must be 1..{len(SPEAKER_PRESETS)}, got {self.speakers}")
        if self.takes_per_speaker < 1:
            raise ValueError(f"takes_per_speaker must be >= 1, got {self.takes_per_speaker}")
        if not (math.isfinite(self.take_seconds) and self.take_seconds >= 3.0):
            raise ValueError(f"take_seconds must be at least 3, got {self.take_seconds}")
        if not (math.isfinite(self.fps) and self.fps > 0):
            raise ValueError(f"fps must be positive, got {self.fps}")
        if self.fps_120_takes < 0 or self.workers < 1:
            raise ValueError("fps_120_takes must be >= 0 and workers >= 1")
        for name in ("held_out_prob", "beat_prob", "test_fraction", "val_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.test_fraction + self.val_fraction > 1.0:
            raise ValueError("test_fraction + val_fraction must not exceed 1")

    def content(self) -> dict:
        """The settings that decide the files' contents (for the manifest)."""
        d = asdict(self)
        for key in ("root", "workers", "cache_dir", "progress"):
            d.pop(key)
        return d


@dataclass(frozen=True)
class TakeSpec:
    style: SpeakerStyle
    speech_id: int
    fps: float
    seed: int

    @property
    def take(self) -> TakeId:
        sid = self.speech_id
        return TakeId(self.style.speaker_id, self.style.name, ENGLISH_SPEECH, sid, sid)

    @property
    def split(self) -> str:
        return split_of(self.take)


# ----------------------------------------------------------------------------- planning


def split_counts(n: int, test_fraction: float = 0.2, val_fraction: float = 0.1) -> tuple[int, int, int]:
    """(train, val, test) takes per speaker: at least one test take from 2 takes on, one
    val take from 3 on, the rest train (10 -> 7, 1, 2)."""
    n_test = max(1, round(test_fraction * n)) if n >= 2 and test_fraction > 0 else 0
    n_val = max(1, round(val_fraction * n)) if n >= 3 and val_fraction > 0 else 0
    n_test = min(n_test, len(_TEST_IDS))
    n_val = min(n_val, len(_VAL_IDS))
    n_train = n - n_test - n_val
    if n_train > len(_TRAIN_IDS):
        raise ValueError(f"at most {len(_TRAIN_IDS) + n_test + n_val} takes per speaker")
    return n_train, n_val, n_test


def plan_takes(config: SynthConfig) -> list[TakeSpec]:
    """Every take to write, ordered by speaker and speech id."""
    n_train, n_val, n_test = split_counts(config.takes_per_speaker, config.test_fraction, config.val_fraction)
    ids = sorted(_TRAIN_IDS[:n_train] + _VAL_IDS[:n_val] + _TEST_IDS[:n_test])
    styles = SPEAKER_PRESETS[: config.speakers]
    # The 120 fps takes: each speaker's first train takes in turn, so they spread over speakers.
    train_ids = sorted(_TRAIN_IDS[:n_train]) or ids
    at_120 = set()
    for k in range(min(config.fps_120_takes, len(styles) * len(train_ids))):
        at_120.add((styles[k % len(styles)].speaker_id, train_ids[k // len(styles)]))
    specs = []
    for style in styles:
        for sid in ids:
            seed = int(np.random.SeedSequence([config.seed, style.speaker_id, sid]).generate_state(1)[0])
            fps = BEAT_FPS if (style.speaker_id, sid) in at_120 else float(config.fps)
            specs.append(TakeSpec(style, sid, fps, seed))
    return specs


def plan_sentences(
    rng: np.random.Generator,
    style: SpeakerStyle,
    seconds: float,
    held_out_prob: float,
    synth: WordSynthesizer,
) -> list[list[lexicon.Token]]:
    """Sentences whose expected spoken length fills `seconds` without passing it.

    With `held_out_prob` > 0 (test takes) the first sentence is drawn from the templates
    that can hold a held-out synonym and uses one, so every test take has at least one.
    """
    mean = lambda lo_hi: (lo_hi[0] + lo_hi[1]) / 2  # noqa: E731
    capable = [t for t in lexicon.TEMPLATES if lexicon.template_can_hold_out(t)]
    total = 2 * mean(EDGE_SILENCE_S)
    sentences: list[list[lexicon.Token]] = []
    used: set[str] = set()  # no template twice in a take until all have been used
    misses = 0
    # Near the end, look a while for a sentence short enough to fit the time left.
    while misses < 40 and seconds - total > 1.5:
        if held_out_prob > 0 and not sentences:
            template, prob = capable[int(rng.integers(len(capable)))], 1.0
        else:
            fresh = [t for t in lexicon.TEMPLATES if t not in used] or list(lexicon.TEMPLATES)
            template, prob = fresh[int(rng.integers(len(fresh)))], held_out_prob
        tokens = lexicon.make_sentence(rng, held_out_prob=prob, template=template)
        length = sum(len(synth(t.text, style.voice, style.words_per_minute, style.pitch)) for t in tokens)
        length = length / SAMPLE_RATE + (len(tokens) - 1) * mean(WORD_GAP_S)
        length += mean(SENTENCE_GAP_S) if sentences else 0.0
        if total + length > seconds and sentences:
            misses += 1
            continue
        sentences.append(tokens)
        used = set() if len(used) + 1 == len(lexicon.TEMPLATES) else used | {template}
        total += length
    return sentences


# ----------------------------------------------------------------------------- gestures


def semantic_type_id(family: str, intensity: float) -> int:
    """BEAT type number of a keyword gesture: the family's category, level by intensity."""
    level = sum(intensity >= b for b in LEVEL_BOUNDS)  # 0 l, 1 m, 2 h
    return _TYPE_BASE[lexicon.SEMANTIC_TYPE[family]] + level


def gesture_events(
    words: Sequence[Word],
    tokens: Sequence[lexicon.Token],
    duration: float,
    style: SpeakerStyle,
    rng: np.random.Generator,
    beat_prob: float = 0.8,
    stresses: Sequence[float] | None = None,
) -> list[GestureEvent]:
    """Keyword gestures stroke 40% into their word; beats stroke on other content words,
    on the word's stressed syllable (`stresses`, one time per word, from the audio;
    the word's onset when not given).

    Keyword gestures never overlap: when two would, the earlier retracts sooner and the
    later prepares later, and a keyword too close to the previous one (strokes within
    2 * MIN_PHASE_S) gets none. Beats go only where no other gesture is.
    """
    if len(words) != len(tokens):
        raise ValueError(f"{len(words)} words but {len(tokens)} tokens")
    keyed: list[GestureEvent] = []
    for w, tok in zip(words, tokens):
        if tok.family is None:
            continue
        stroke = w.start + STROKE_AT * (w.end - w.start)
        start = max(0.0, stroke - rng.uniform(*KEYWORD_PREP_S))
        end = min(duration, stroke + rng.uniform(*KEYWORD_RETRACT_S))
        intensity = float(np.clip(tok.intensity + rng.uniform(-0.1, 0.1), 0.05, 1.0))
        if keyed and keyed[-1].end > start:
            prev = keyed[-1]
            if stroke - prev.stroke < 2 * MIN_PHASE_S:
                continue
            cut = float(np.clip((prev.end + start) / 2, prev.stroke + MIN_PHASE_S, stroke - MIN_PHASE_S))
            keyed[-1] = replace(prev, end=cut)
            start = cut
        keyed.append(GestureEvent(tok.family, start, stroke, end, intensity, tok.text))

    rate = min(1.0, beat_prob * style.tempo)
    beats: list[GestureEvent] = []
    if stresses is not None and len(stresses) != len(words):
        raise ValueError(f"{len(words)} words but {len(stresses)} stress times")
    for i, (w, tok) in enumerate(zip(words, tokens)):
        if tok.family is not None or not lexicon.is_content_word(tok.text):
            continue
        if rng.random() >= rate:
            continue
        stroke = w.start if stresses is None else float(stresses[i])
        start = max(0.0, stroke - rng.uniform(*BEAT_PREP_S) / style.tempo)
        end = min(duration, stroke + rng.uniform(*BEAT_RETRACT_S) / style.tempo)
        if any(start < g.end and g.start < end for g in keyed):
            continue
        if beats and beats[-1].end > start:
            continue
        beats.append(GestureEvent(BEAT, start, stroke, end, float(rng.uniform(0.3, 0.7)), tok.text))
    return sorted(keyed + beats, key=lambda g: g.start)


def semantic_segments(events: Sequence[GestureEvent], duration: float) -> list[SemanticSegment]:
    """BEAT-style rows covering the whole take: a row per keyword gesture, and
    01_beat_align rows for the time between them (as BEAT annotates)."""
    rows: list[SemanticSegment] = []
    t = 0.0
    for g in sorted((g for g in events if g.kind != BEAT), key=lambda g: g.start):
        if g.start - t > 1e-3:
            rows.append(SemanticSegment(1, SEMANTIC_TYPES[1], t, g.start, 0.1))
        type_id = semantic_type_id(g.kind, g.intensity)
        rows.append(SemanticSegment(type_id, SEMANTIC_TYPES[type_id], g.start, g.end, type_id / 10, g.word))
        t = g.end
    if duration - t > 1e-3:
        rows.append(SemanticSegment(1, SEMANTIC_TYPES[1], t, duration, 0.1))
    return rows


def word_textgrid(words: Sequence[Word], duration: float) -> TextGrid:
    """One "words" tier covering [0, duration]; pauses are empty intervals, as in BEAT."""
    intervals: list[Interval] = []
    t = 0.0
    for w in words:
        if w.start > t:
            intervals.append(Interval(t, w.start, ""))
        intervals.append(Interval(w.start, w.end, w.text))
        t = w.end
    if duration > t:
        intervals.append(Interval(t, duration, ""))
    return TextGrid(0.0, duration, [IntervalTier("words", 0.0, duration, intervals)])


# ----------------------------------------------------------------------------- one take

_SYNTH: WordSynthesizer | None = None


def _synth(cache_dir: Path | None) -> WordSynthesizer:
    global _SYNTH
    if _SYNTH is None or _SYNTH.cache_dir != cache_dir:
        _SYNTH = WordSynthesizer(cache_dir)
    return _SYNTH


def make_take(spec: TakeSpec, config: SynthConfig) -> dict:
    """Write one take's five files; return its manifest entry."""
    synth = _synth(config.cache_dir)
    text_seed, speech_seed, event_seed, motion_seed = np.random.SeedSequence(spec.seed).generate_state(4)
    split = spec.split
    held_prob = config.held_out_prob if split == "test" else 0.0
    sentences = plan_sentences(
        np.random.default_rng(text_seed), spec.style, config.take_seconds, held_prob, synth
    )
    tokens = [t for s in sentences for t in s]
    audio, words = synthesize_speech([[t.text for t in s] for s in sentences], spec.style, int(speech_seed), synth)
    duration = len(audio) / SAMPLE_RATE
    stresses = stress_times(audio, words)
    events = gesture_events(
        words, tokens, duration, spec.style, np.random.default_rng(event_seed), config.beat_prob, stresses
    )
    # The head also nods on stressed content words that carry no gesture.
    gestured = {round(g.stroke, 6) for g in events}
    nods = [s for s, tok in zip(stresses, tokens) if lexicon.is_content_word(tok.text) and round(s, 6) not in gestured]
    motion = synthesize_motion(events, duration, spec.fps, spec.style, int(motion_seed), nods)

    take = spec.take
    folder = config.root / str(take.speaker_id)
    stem = folder / take.stem
    emotion = emotion_of(take)
    write_wav(stem.with_suffix(".wav"), audio, SAMPLE_RATE)
    write_textgrid(stem.with_suffix(".TextGrid"), word_textgrid(words, duration))
    write_semantic(stem.with_suffix(".txt"), semantic_segments(events, duration))
    write_emotion(stem.with_suffix(".csv"), [EmotionSegment(emotion, EMOTIONS[emotion], 0.0, duration, 0.0)])
    write_bvh(stem.with_suffix(".bvh"), motion)
    keywords = [g for g in events if g.kind != BEAT]
    return {
        "stem": take.stem,
        "speaker_id": take.speaker_id,
        "speech_id": spec.speech_id,
        "split": split,
        "emotion": EMOTIONS[emotion],
        "fps": spec.fps,
        "duration": round(duration, 6),
        "words": len(words),
        "keyword_gestures": len(keywords),
        "beat_gestures": len(events) - len(keywords),
        "held_out_used": sorted({t.text for t in tokens if t.held_out}),
    }


def _make_take_job(args: tuple[TakeSpec, SynthConfig]) -> dict:
    return make_take(*args)


def _init_worker() -> None:
    # Two processes on two cores: keep torch (if the motion code uses it) to one thread each.
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass


# ----------------------------------------------------------------------------- the dataset


def generate(config: SynthConfig) -> Path:
    """Write the dataset under `config.root` and return the root."""
    espeak_binary()  # fail early, with the install hint, rather than inside a worker
    specs = plan_takes(config)
    jobs = [(spec, config) for spec in specs]
    bar = tqdm(total=len(jobs), desc="SynthBEAT takes", unit="take", disable=not config.progress)
    if config.workers == 1 or len(jobs) == 1:
        entries = []
        for job in jobs:
            entries.append(_make_take_job(job))
            bar.update()
    else:
        ctx = get_context("spawn")  # no fork of a parent that may hold torch threads
        with ProcessPoolExecutor(min(config.workers, len(jobs)), mp_context=ctx, initializer=_init_worker) as pool:
            futures = [pool.submit(_make_take_job, job) for job in jobs]
            for f in futures:
                f.add_done_callback(lambda _: bar.update())
            entries = [f.result() for f in futures]
    bar.close()

    manifest = {
        "format": "synthbeat",
        "version": FORMAT_VERSION,
        "seed": config.seed,
        "config": config.content(),
        "sample_rate": SAMPLE_RATE,
        "speakers": [asdict(s) for s in SPEAKER_PRESETS[: config.speakers]],
        "families": {f: lexicon.SEMANTIC_TYPE[f] for f in lexicon.GESTURE_FAMILIES},
        "training_words": lexicon.training_words(),
        "held_out_words": lexicon.held_out_words(),
        "takes": entries,
    }
    with atomic_write(config.root / MANIFEST) as f:
        f.write(json.dumps(manifest, indent=2) + "\n")
    return config.root


def load_manifest(root: str | Path) -> dict:
    """The `synthbeat.json` of a generated dataset."""
    path = Path(root) / MANIFEST
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m training.synthbeat.generate",
        description="Write SynthBEAT, a procedural dataset in BEAT's layout and file formats.",
    )
    p.add_argument("--out", required=True, type=Path, help="dataset root to write (created if missing)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--speakers", type=int, default=4, help=f"1..{len(SPEAKER_PRESETS)} (default 4: ids 2, 4, 6, 8)")
    p.add_argument("--takes-per-speaker", type=int, default=10)
    p.add_argument("--take-seconds", type=float, default=35.0)
    p.add_argument("--fps", type=float, default=30.0, help="BVH frame rate of most takes")
    p.add_argument("--fps-120-takes", type=int, default=2, help="takes written at BEAT's 120 fps")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--cache-dir", type=Path, default=None, help="keep espeak-ng words here between runs")
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    try:
        config = SynthConfig(
            root=a.out, seed=a.seed, speakers=a.speakers, takes_per_speaker=a.takes_per_speaker,
            take_seconds=a.take_seconds, fps=a.fps, fps_120_takes=a.fps_120_takes, workers=a.workers,
            cache_dir=a.cache_dir, progress=not a.no_progress,
        )
    except ValueError as e:
        p.error(str(e))
    t0 = time.perf_counter()
    try:
        root = generate(config)
    except SemgesError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    took = time.perf_counter() - t0
    takes = load_manifest(root)["takes"]
    splits = {s: sum(t["split"] == s for t in takes) for s in ("train", "val", "test")}
    minutes = sum(t["duration"] for t in takes) / 60
    print(
        f"wrote {len(takes)} takes ({splits['train']} train, {splits['val']} val, {splits['test']} test), "
        f"{minutes:.1f} min of speech, to {root} in {took:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
