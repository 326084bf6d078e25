"""How close the shipped aligners put word onsets, on speech whose word times are known.

    .venv/bin/python benchmarks/alignment_accuracy.py [--clips 10] [--no-write]

Real recordings with reference times cannot be shipped (docs/transcripts.md quotes the
issue-14 measurement on four real takes); this measures what we can reproduce anywhere.
Each clip is English text said by libespeak-ng in one go per phrase (real
coarticulation), phrases joined by scripted pauses, with a voice, rate (120-220 wpm) and
pitch (30-70) drawn from a seeded generator; the texts hold repetitions ("we can we can
learn"), fillers ("um", "uh"), numbers and abbreviations. espeak-ng's word events give
each word's onset in the samples. Both aligners get only the samples and the text:

- plain text (lower case, no punctuation) and the text as punctuated;
- the fillers left out of the text (transcripts often drop them), every 10th word left out;
- subtitle cues of a sentence or so whose spans are padded and shifted by up to 0.3 s;
- a wrong transcript: another clip's text, and the first half of the right one, to see
  whether a TranscriptMismatchWarning fires (and that it does not for the right text).

Writes benchmarks/results/alignment.{md,json}.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import math
import platform
import re
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import markdown_table, write_result  # noqa: E402  (also puts the repository on sys.path)
from semges_core.speech import forced_alignment as fa  # noqa: E402
from semges_core.speech.alignment import AlignmentWarning, align_plain_text, align_segments  # noqa: E402
from semges_core.speech.audio import resample_poly  # noqa: E402

SR = 16000

# Phrases are said one at a time; "|" in a text marks a scripted pause between phrases.
TEXTS = [
    "So, we can we can learn a lot from this. | Um, the first thing is the data. | "
    "I bought 5 apples and two oranges on Saturday, | and then then we walked home slowly.",
    "Hello there! My name is Alex, and I would like to show you something. | Look at this big red box. | "
    "It is full of small things, like pens, paper and uh rubber bands.",
    "The meeting starts at 10 in the morning. | Dr. Smith will talk about the budget, | "
    "which grew by 50% last year. | Honestly, nobody expected that.",
    "I think I think the main problem is time. | We have we have three weeks left, | "
    "and um the report is not even half done.",
    "My grandmother lived in a tiny village by the sea. | Every summer we visited her, | "
    "and she baked the most wonderful bread. | I still remember the smell.",
    "You take the first left, uh, then the second right. | The station is just past the bridge. | "
    "If you reach the river, you have gone too far.",
    "Climate change is one of the biggest challenges of our time. | The oceans are warming, | "
    "the ice is melting, and um the weather is getting more extreme.",
    "Our team won the game on Sunday, 3 to 1. | It was it was an amazing match. | "
    "The crowd went wild when we scored the last goal.",
    "Please open your books at page 42. | Today we are going to learn about volcanoes, | "
    "how they form, and uh why they erupt.",
    "The new phone has a bigger screen and a better camera. | But but the battery is smaller, | "
    "so you have to charge it every night.",
    "When I was young I wanted to be a pilot. | I I loved airplanes. | "
    "Later I studied biology instead, and I never regretted it.",
    "First, mix the flour and the sugar. | Then add two eggs, um, and a cup of milk. | "
    "Bake it for 30 minutes at 180 degrees.",
]
VOICES = ["en-us", "en-gb", "en-us+f3", "en-us+m3", "en-gb+f2", "en-us+f4", "en-gb-x-rp", "en-gb-scotland+m5"]
FILLERS = {"um", "uh", "um,", "uh,"}
CUE_JITTER_S = 0.3
RIGHT, OTHER, HALF = "right text", "another clip's text", "first half of the text"


@dataclass
class Clip:
    name: str
    voice: str
    rate: int
    pitch: int
    text: str            # as written, punctuated, phrases joined by spaces
    audio: np.ndarray    # 16 kHz
    onsets: np.ndarray   # each written word's true onset (NaN where espeak-ng gave no event)
    ends: np.ndarray     # each word's end: the next word's onset, or the end of its phrase's speech


# ----------------------------------------------------------------------------- espeak-ng with word events


class _Event(ctypes.Structure):
    """espeak_EVENT of speak_lib.h."""

    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_char * 8)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))
_EVENT_WORD, _SYNCHRONOUS, _POS_CHARACTER, _CHARS_UTF8, _RATE, _PITCH = 1, 2, 1, 1, 1, 3


class Espeak:
    """libespeak-ng in this process: a phrase's samples and the sample where each of its words starts."""

    def __init__(self) -> None:
        name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
        self.lib = ctypes.CDLL(name)
        self.rate = self.lib.espeak_Initialize(_SYNCHRONOUS, 0, None, 0)
        self.chunks: list[np.ndarray] = []
        self.events: list[tuple[int, int]] = []

        @_CALLBACK
        def collect(wav, n, event):
            if wav and n > 0:
                self.chunks.append(np.ctypeslib.as_array(wav, (n,)).copy())
            k = 0
            while event[k].type != 0:
                if event[k].type == _EVENT_WORD and event[k].length > 0:
                    self.events.append((event[k].text_position, event[k].sample))
                k += 1
            return 0

        self._collect = collect  # kept alive as long as espeak may call it
        self.lib.espeak_SetSynthCallback(collect)

    def say(self, text: str, voice: str, rate: int, pitch: int) -> tuple[np.ndarray, list[float]]:
        """16 kHz samples of `text`, and each whitespace-separated word's onset in seconds (NaN if unknown)."""
        self.chunks.clear()
        self.events.clear()
        self.lib.espeak_SetVoiceByName(voice.encode())
        self.lib.espeak_SetParameter(_RATE, rate, 0)
        self.lib.espeak_SetParameter(_PITCH, pitch, 0)
        raw = text.encode()
        self.lib.espeak_Synth(raw, len(raw) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        self.lib.espeak_Synchronize()
        g = math.gcd(SR, self.rate)
        x = resample_poly(np.concatenate(self.chunks).astype(np.float64) / 32768, SR // g, self.rate // g)
        starts = dict(self.events)  # text positions are 1-based characters (ASCII texts here)
        onsets = [starts[m.start() + 1] / self.rate if m.start() + 1 in starts else math.nan
                  for m in re.finditer(r"\S+", text)]
        return x.astype(np.float32), onsets


def _speech_end(x: np.ndarray) -> float:
    """Seconds to the end of the last frame above -40 dB of the loudest (espeak-ng pads phrases with silence)."""
    frame = SR // 100
    n = len(x) // frame
    rms = np.sqrt(np.mean(x[: n * frame].reshape(n, frame) ** 2, axis=1) + 1e-12)
    loud = np.flatnonzero(rms > rms.max() * 0.01)
    return (loud[-1] + 1) * frame / SR if len(loud) else len(x) / SR


def make_clips(n: int, seed: int = 0) -> list[Clip]:
    rng = np.random.default_rng(seed)
    espeak = Espeak()
    clips = []
    for k in range(n):
        text = TEXTS[k % len(TEXTS)]
        voice, rate, pitch = VOICES[k % len(VOICES)], int(rng.integers(120, 221)), int(rng.integers(30, 71))
        pieces = [np.zeros(int(rng.uniform(0.3, 0.8) * SR), np.float32)]
        cursor = len(pieces[0]) / SR
        onsets: list[float] = []
        ends: list[float] = []
        for phrase in (p.strip() for p in text.split("|")):
            x, starts = espeak.say(phrase, voice, rate, pitch)
            x *= rng.uniform(0.5, 1.0)
            onsets += [cursor + s for s in starts]
            known = [cursor + s for s in starts[1:]] + [cursor + _speech_end(x)]
            ends += known
            pieces.append(x)
            cursor += len(x) / SR
            pause = np.zeros(int(rng.uniform(0.2, 1.5) * SR), np.float32)  # the scripted pause
            pieces.append(pause)
            cursor += len(pause) / SR
        audio = np.concatenate(pieces)
        audio = (audio + rng.normal(0, 3e-4, len(audio))).astype(np.float32)  # a faint noise floor
        clips.append(Clip(f"{k:02d}", voice, rate, pitch, " ".join(p.strip() for p in text.split("|")), audio,
                          np.array(onsets), np.array(ends)))
    return clips


# ----------------------------------------------------------------------------- conditions


def plain(text: str) -> str:
    """Lower case, no punctuation (apostrophes and digits kept; "50%" -> "50")."""
    return " ".join(w for w in (re.sub(r"[^\w']", "", t).lower() for t in text.split()) if w)


def onset_errors(starts: list[float], truth: np.ndarray) -> np.ndarray:
    err = np.abs(np.asarray(starts) - truth)
    return err[~np.isnan(err)]


def _kept(clip: Clip, keep) -> tuple[str, np.ndarray]:
    words = clip.text.split()
    idx = [k for k, w in enumerate(words) if keep(k, w)]
    return " ".join(words[k] for k in idx), clip.onsets[idx]


def cues_of(clip: Clip, rng: np.random.Generator) -> list[tuple[float, float, str]]:
    """Subtitle cues of about a sentence (cut at . , ! ? and every 12 words), spans padded/shifted by up to 0.3 s."""
    words = clip.text.split()
    groups, current = [], []
    for k, w in enumerate(words):
        current.append(k)
        if w[-1] in ".,!?" or len(current) >= 12:
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    cues, last_end = [], 0.0
    onsets = np.where(np.isnan(clip.onsets), clip.ends, clip.onsets)
    for g in groups:
        start = onsets[g[0]] + rng.uniform(-CUE_JITTER_S, CUE_JITTER_S)
        end = clip.ends[g[-1]] + rng.uniform(-CUE_JITTER_S, CUE_JITTER_S)
        start = max(start, last_end, 0.0)
        end = max(end, start + 0.2)
        cues.append((round(start, 3), round(end, 3), " ".join(words[k] for k in g)))
        last_end = end
    return cues


def _forced(text: str, audio: np.ndarray) -> list[float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AlignmentWarning)
        return [w.start for w in fa.force_align(text, audio, SR).words]


def _energy(text: str, audio: np.ndarray) -> list[float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AlignmentWarning)
        return [w.start for w in align_plain_text(text, audio, SR)]


def warns(text: str, clip: Clip) -> bool:
    """Whether the forced aligner's fit check calls `text` a wrong transcript of `clip`."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fa.check_fit(fa.force_align(text, clip.audio, SR), clip.name)
    return any(issubclass(w.category, fa.TranscriptMismatchWarning) for w in caught)


def energy_warns(text: str, clip: Clip) -> bool:
    """Whether the energy aligner objects at all (it can only count words per second of speech)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            align_plain_text(text, clip.audio, SR)
        except Exception:
            return True
    return any(issubclass(w.category, AlignmentWarning) for w in caught)


def summary(errors: list[np.ndarray]) -> dict:
    e = np.concatenate(errors)
    return {"words": int(len(e)), "mean_s": float(e.mean()), "median_s": float(np.median(e)),
            "within_0.1_s": float((e <= 0.1).mean()), "within_0.5_s": float((e <= 0.5).mean()),
            "max_s": float(e.max()), "per_clip_mean_s": [round(float(x.mean()), 4) for x in errors]}


def run(n_clips: int) -> dict:
    t0 = time.perf_counter()
    clips = make_clips(n_clips)
    synth_s = time.perf_counter() - t0
    rng = np.random.default_rng(1)
    rows: dict[str, list[np.ndarray]] = {}
    seconds: dict[str, float] = {}

    def measure(name: str, fn) -> None:
        t = time.perf_counter()
        rows[name] = [fn(c) for c in clips]
        seconds[name] = time.perf_counter() - t

    no_fillers = lambda c: _kept(c, lambda k, w: w.lower().strip(",.") not in {"um", "uh"})  # noqa: E731
    tenth = lambda c: _kept(c, lambda k, w: k % 10 != 9)  # noqa: E731
    measure("energy aligner, plain text", lambda c: onset_errors(_energy(plain(c.text), c.audio), c.onsets))
    measure("energy aligner, punctuated text", lambda c: onset_errors(_energy(c.text, c.audio), c.onsets))
    measure("pocketsphinx, plain text", lambda c: onset_errors(_forced(plain(c.text), c.audio), c.onsets))
    measure("pocketsphinx, punctuated text", lambda c: onset_errors(_forced(c.text, c.audio), c.onsets))
    measure("pocketsphinx, fillers left out of the text",
            lambda c: onset_errors(_forced(plain(no_fillers(c)[0]), c.audio), no_fillers(c)[1]))
    measure("pocketsphinx, every 10th word left out",
            lambda c: onset_errors(_forced(plain(tenth(c)[0]), c.audio), tenth(c)[1]))
    cues = {c.name: cues_of(c, rng) for c in clips}
    cue_truth = lambda c: c.onsets[: len(c.text.split())]  # noqa: E731
    measure("subtitle cues ±0.3 s, as written (cue spans shared by word length)",
            lambda c: onset_errors([w.start for s, e, t in cues[c.name] for w in _spread(t, s, e)], cue_truth(c)))
    measure("subtitle cues ±0.3 s, energy aligner within each cue",
            lambda c: onset_errors([w.start for w in align_segments(cues[c.name], c.audio, SR)], cue_truth(c)))
    measure("subtitle cues ±0.3 s, pocketsphinx near each cue",
            lambda c: onset_errors([w.start for w in fa.force_align_cues(cues[c.name], c.audio, SR).words],
                                   cue_truth(c)))

    t = time.perf_counter()
    checks = {RIGHT: [], OTHER: [], HALF: []}
    energy_checks = {k: [] for k in checks}
    for k, c in enumerate(clips):
        other = clips[(k + 1) % len(clips)].text
        words = c.text.split()
        for name, text in ((RIGHT, c.text), (OTHER, other), (HALF, " ".join(words[: len(words) // 2]))):
            checks[name].append(warns(text, c))
            energy_checks[name].append(energy_warns(text, c))
    seconds["wrong-transcript checks"] = time.perf_counter() - t
    return {
        "clips": [{"name": c.name, "voice": c.voice, "rate_wpm": c.rate, "pitch": c.pitch,
                   "seconds": round(len(c.audio) / SR, 2), "words": len(c.text.split()),
                   "words_with_reference": int((~np.isnan(c.onsets)).sum())} for c in clips],
        "audio_seconds": round(sum(len(c.audio) for c in clips) / SR, 1),
        "synthesis_seconds": round(synth_s, 1),
        "rows": {name: summary(errs) for name, errs in rows.items()},
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
        "mismatch_warnings": {name: sum(v) for name, v in checks.items()},
        "energy_aligner_warnings": {name: sum(v) for name, v in energy_checks.items()},
        "espeak_ng": _espeak_version(),
        "machine": f"{platform.processor() or platform.machine()}, {_cores()} cores, Python {platform.python_version()}",
    }


def _spread(text: str, start: float, end: float):
    from semges_core.speech.alignment import spread_words

    return spread_words(text, start, end)


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _espeak_version() -> str:
    import subprocess

    try:
        out = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, timeout=10).stdout
        return out.split(":")[1].split()[0] if ":" in out else out.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def report(data: dict) -> str:
    n = len(data["clips"])
    header = ["aligner, condition", "mean onset error", "median", "within 0.1 s", "within 0.5 s", "max"]
    rows = [[name, f"{r['mean_s']:.3f} s", f"{r['median_s']:.3f} s", f"{r['within_0.1_s']:.0%}",
             f"{r['within_0.5_s']:.0%}", f"{r['max_s']:.2f} s"] for name, r in data["rows"].items()]
    voices = ", ".join(sorted({c["voice"] for c in data["clips"]}))
    rates = [c["rate_wpm"] for c in data["clips"]]
    pitches = [c["pitch"] for c in data["clips"]]
    words = data["rows"]["pocketsphinx, plain text"]["words"]
    m, e = data["mismatch_warnings"], data["energy_aligner_warnings"]
    lines = [
        f"Word-onset error on {n} espeak-ng {data['espeak_ng']} clips ({data['audio_seconds']:g} s, {words} words "
        f"with a reference onset; voices {voices}; {min(rates)}-{max(rates)} wpm; pitch {min(pitches)}-{max(pitches)}; "
        "scripted pauses, repetitions and fillers), against espeak-ng's own word events. "
        f"`benchmarks/alignment_accuracy.py`, {data['machine']}.",
        "",
        markdown_table(header, rows),
        "",
        f"Wrong transcripts (TranscriptMismatchWarning from the forced aligner, out of {n}): another clip's text "
        f"{m[OTHER]}/{n}, the first half of the text {m[HALF]}/{n}, the right text {m[RIGHT]}/{n}. "
        f"The energy aligner objects to {e[OTHER]}/{n}, {e[HALF]}/{n} and {e[RIGHT]}/{n}.",
        "",
        "Seconds per condition (all clips): " + ", ".join(f"{k} {v:g}" for k, v in data["seconds"].items()) + ".",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=2 * len(TEXTS), help=f"how many clips (default {2 * len(TEXTS)}: each text twice)")
    ap.add_argument("--no-write", action="store_true", help="print only; leave benchmarks/results alone")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    data = run(args.clips)
    data["total_seconds"] = round(time.perf_counter() - t0, 1)
    text = report(data)
    print(text)
    if not args.no_write:
        write_result("alignment", data, "#### Word alignment\n\n" + text)
    print(f"\n{data['total_seconds']:g} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
