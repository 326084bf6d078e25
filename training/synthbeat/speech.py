"""Speech for SynthBEAT with exact word timings, from espeak-ng one word at a time.

Each word is synthesised on its own, its leading and trailing silence trimmed by
energy, resampled to 16 kHz, and the words are laid end to end with short seeded
gaps (longer between sentences). A word's [start, end] is therefore known to the
sample, which a forced aligner could not give us. The cost is prosody: every word
is said in citation form. For gesture timing and for HuBERT features that is enough.

A synthesis depends only on (voice, rate, pitch, word), and the lexicon is small,
so each one is cached in memory for the life of the process (and, optionally, as a
.npy file in a cache folder).
"""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
from math import gcd
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from semges_core.errors import SemgesError
from semges_core.fileio import atomic_path
from semges_core.formats.textgrid import Word
from training.synthbeat.events import SpeakerStyle

SAMPLE_RATE = 16000

WORD_GAP_S = (0.03, 0.12)       # between words of a sentence
SENTENCE_GAP_S = (0.25, 0.6)    # between sentences
EDGE_SILENCE_S = (0.3, 0.6)     # before the first and after the last word
NOISE_STD = 3e-4                # a faint noise floor, as in a real recording (about -70 dB)
PEAK = 0.6                      # each take is scaled to this peak

_FRAME_S = 0.005                # energy frames for trimming
_TRIM_DB = -40.0                # frames this far below the word's loudest frame are silence
_FADE_S = 0.004                 # fade in/out so cut edges do not click


class SpeechSynthesisError(SemgesError):
    """espeak-ng is missing or failed."""


def espeak_binary() -> str:
    """Path of espeak-ng, or a SpeechSynthesisError that says how to install it."""
    path = shutil.which("espeak-ng")
    if path is None:
        raise SpeechSynthesisError(
            "espeak-ng was not found on PATH; SynthBEAT needs it for speech "
            "(Debian/Ubuntu: `apt-get install espeak-ng`, macOS: `brew install espeak-ng`)"
        )
    return path


def trim_silence(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """Cut leading and trailing frames whose RMS is more than 40 dB below the loudest frame."""
    frame = max(1, int(round(_FRAME_S * sample_rate)))
    n = len(x) // frame
    if n == 0:
        return x
    rms = np.sqrt(np.mean(x[: n * frame].reshape(n, frame) ** 2, axis=1))  # (n,)
    loud = np.flatnonzero(rms > rms.max() * 10 ** (_TRIM_DB / 20))
    if len(loud) == 0:
        return x[:0]
    return x[loud[0] * frame : (loud[-1] + 1) * frame]


def _fade(x: np.ndarray, sample_rate: int) -> np.ndarray:
    k = min(len(x) // 2, int(round(_FADE_S * sample_rate)))
    if k > 0:
        ramp = np.linspace(0.0, 1.0, k, endpoint=False)
        x = x.copy()
        x[:k] *= ramp
        x[len(x) - k :] *= ramp[::-1]
    return x


class WordSynthesizer:
    """espeak-ng, one word at a time, with a cache keyed by (voice, rate, pitch, word)."""

    def __init__(self, cache_dir: str | Path | None = None) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._memory: dict[tuple[str, int, int, str], np.ndarray] = {}

    def __call__(self, word: str, voice: str, words_per_minute: int, pitch: int) -> np.ndarray:
        """The word's samples: float32, 16 kHz mono, silence trimmed. Read-only (shared by the cache)."""
        key = (voice, int(words_per_minute), int(pitch), word)
        clip = self._memory.get(key)
        if clip is None:
            clip = self._from_disk(key)
            if clip is None:
                clip = self._synthesize(*key)
                self._to_disk(key, clip)
            clip.setflags(write=False)
            self._memory[key] = clip
        return clip

    def _file(self, key: tuple[str, int, int, str]) -> Path | None:
        if self.cache_dir is None:
            return None
        digest = hashlib.sha1(repr(key).encode("utf-8")).hexdigest()[:16]
        return self.cache_dir / f"{digest}.npy"

    def _from_disk(self, key: tuple[str, int, int, str]) -> np.ndarray | None:
        path = self._file(key)
        if path is None or not path.exists():
            return None
        try:
            return np.load(path, allow_pickle=False).astype(np.float32, copy=False)
        except (OSError, ValueError):
            return None  # a damaged cache entry is simply made again

    def _to_disk(self, key: tuple[str, int, int, str], clip: np.ndarray) -> None:
        path = self._file(key)
        if path is not None:
            with atomic_path(path) as tmp:
                with open(tmp, "wb") as f:
                    np.save(f, clip, allow_pickle=False)

    @staticmethod
    def _synthesize(voice: str, words_per_minute: int, pitch: int, word: str) -> np.ndarray:
        if not word or word.startswith("-") or any(c.isspace() for c in word):
            raise ValueError(f"expected one word, got {word!r}")
        cmd = [espeak_binary(), "-v", voice, "-s", str(words_per_minute), "-p", str(pitch), "--stdout", word]
        try:
            done = subprocess.run(cmd, capture_output=True, check=True, timeout=30)
        except subprocess.CalledProcessError as e:
            raise SpeechSynthesisError(
                f"espeak-ng failed on {word!r} with voice {voice!r}: {e.stderr.decode(errors='replace').strip()}"
            ) from e
        except subprocess.TimeoutExpired as e:
            raise SpeechSynthesisError(f"espeak-ng did not finish on {word!r} within 30 s") from e
        try:
            data, rate = sf.read(io.BytesIO(done.stdout), dtype="float64", always_2d=True)
        except (sf.SoundFileError, RuntimeError, ValueError) as e:
            raise SpeechSynthesisError(f"espeak-ng gave no readable audio for {word!r} (voice {voice!r})") from e
        mono = data.mean(axis=1)  # (n,)
        if rate != SAMPLE_RATE:
            g = gcd(int(rate), SAMPLE_RATE)
            mono = resample_poly(mono, SAMPLE_RATE // g, int(rate) // g)
        clip = trim_silence(mono, SAMPLE_RATE)
        if len(clip) == 0:
            raise SpeechSynthesisError(f"espeak-ng produced only silence for {word!r} (voice {voice!r})")
        return _fade(clip, SAMPLE_RATE).astype(np.float32)


_DEFAULT = WordSynthesizer()


def synthesize_speech(
    sentences: Sequence[Sequence[str]],
    style: SpeakerStyle,
    seed: int,
    synthesizer: WordSynthesizer | None = None,
) -> tuple[np.ndarray, list[Word]]:
    """Say `sentences` (lists of words) in the speaker's voice.

    Returns float32 samples at 16 kHz mono and the words with their exact times in
    seconds. The same inputs give the same samples.
    """
    synth = synthesizer if synthesizer is not None else _DEFAULT
    rng = np.random.default_rng(seed)
    sentences = [list(s) for s in sentences if len(s)]
    if not sentences:
        raise ValueError("nothing to say: no words given")

    pieces: list[np.ndarray] = []
    words: list[Word] = []
    cursor = 0  # samples so far

    def silence(lo_hi: tuple[float, float]) -> None:
        nonlocal cursor
        n = int(round(rng.uniform(*lo_hi) * SAMPLE_RATE))
        pieces.append(np.zeros(n, np.float32))
        cursor += n

    silence(EDGE_SILENCE_S)
    for i, sentence in enumerate(sentences):
        if i > 0:
            silence(SENTENCE_GAP_S)
        for j, word in enumerate(sentence):
            if j > 0:
                silence(WORD_GAP_S)
            clip = synth(word, style.voice, style.words_per_minute, style.pitch)
            # A little loudness variation between words, as in speech.
            pieces.append(clip * np.float32(rng.uniform(0.75, 1.0)))
            words.append(Word(cursor / SAMPLE_RATE, (cursor + len(clip)) / SAMPLE_RATE, word))
            cursor += len(clip)
    silence(EDGE_SILENCE_S)

    audio = np.concatenate(pieces).astype(np.float64)
    audio *= PEAK / max(float(np.abs(audio).max()), 1e-9)
    audio += rng.normal(0.0, NOISE_STD, len(audio))
    return np.clip(audio, -1.0, 1.0).astype(np.float32), words


def word_duration(word: str, style: SpeakerStyle, synthesizer: WordSynthesizer | None = None) -> float:
    """Seconds the speaker takes to say `word` (trimmed), for planning a take's length."""
    synth = synthesizer if synthesizer is not None else _DEFAULT
    return len(synth(word, style.voice, style.words_per_minute, style.pitch)) / SAMPLE_RATE


def stress_times(audio: np.ndarray, words: Sequence[Word], sample_rate: int = SAMPLE_RATE) -> list[float]:
    """Per word, the time (seconds) of its loudest 40 ms: the stressed syllable's vowel.

    Beats land on stressed syllables (McNeill), and in espeak-ng's citation forms the
    stressed vowel is the energy peak of the word, so the peak of a short-time energy
    envelope inside the word's span finds it from the audio alone.
    """
    x = np.asarray(audio, dtype=np.float64)
    hop = max(1, int(round(0.01 * sample_rate)))
    win = max(hop, int(round(0.04 * sample_rate)))
    out = []
    for w in words:
        a = max(0, int(round(w.start * sample_rate)))
        b = min(len(x), int(round(w.end * sample_rate)))
        seg = x[a:b]
        if len(seg) < win:
            out.append((w.start + w.end) / 2)
            continue
        starts = np.arange(0, len(seg) - win + 1, hop)
        csum = np.concatenate([[0.0], np.cumsum(seg**2)])
        energy = csum[starts + win] - csum[starts]
        k = int(np.argmax(energy))
        out.append((a + starts[k] + win / 2) / sample_rate)
    return out
