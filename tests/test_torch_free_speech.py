"""The speech input path runs on numpy alone, as in Blender's own Python.

A fresh interpreter refuses to import torch, scipy, librosa and soundfile (a
sys.meta_path finder raising ImportError), then reads the example's audio and
transcripts the way the Blender extension does. Nothing heavy may be imported, and the
results must match what the full environment computes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from semges_core.speech.audio import load_audio
from semges_core.speech.transcripts import load_transcript

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
BLOCKED = ("torch", "scipy", "librosa", "soundfile")

CHILD = r"""
import importlib.abc, json, sys
from pathlib import Path

BLOCKED = set(sys.argv[1].split(","))
attempts = []

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            attempts.append(name)
            raise ImportError(f"{name} is not available in this test")
        return None

sys.meta_path.insert(0, Refuse())

import numpy as np
import semges_core.speech.audio as audio
from semges_core.speech.audio import audio_duration, load_audio, resample_poly, write_wav
from semges_core.speech.transcripts import load_transcript

examples, out = Path(sys.argv[2]), Path(sys.argv[3])
wav = examples / "speech.wav"
y16 = load_audio(wav)  # the file is 16 kHz: no resampling
y8 = load_audio(wav, sample_rate=8000)
# A 44.1 kHz copy, written without soundfile, read back and resampled to 16 kHz.
write_wav(out / "speech44k.wav", resample_poly(y16.astype(np.float64), 44100, 16000), 44100)
y16_from_44k = load_audio(out / "speech44k.wav")
grid = load_transcript(examples / "speech.TextGrid", audio=y16)
aligned = load_transcript(examples / "speech.txt", audio=y16)
np.savez(out / "result.npz", y16=y16, y8=y8, y16_from_44k=y16_from_44k,
         grid=np.array([(w.start, w.end) for w in grid]), aligned=np.array([(w.start, w.end) for w in aligned]))
print(json.dumps({
    "soundfile_used": audio.sf is not None,
    "duration_44k": audio_duration(out / "speech44k.wav"),
    "grid_words": [w.text for w in grid],
    "aligned_words": [w.text for w in aligned],
    "attempts": sorted(set(a.partition(".")[0] for a in attempts)),
    "imported": sorted(m for m in sys.modules if m.partition(".")[0] in BLOCKED),
}))
"""


@pytest.fixture(scope="module")
def child(tmp_path_factory) -> tuple[dict, dict]:
    out = tmp_path_factory.mktemp("torch_free")
    run = subprocess.run(
        [sys.executable, "-c", CHILD, ",".join(BLOCKED), str(EXAMPLES), str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr
    with np.load(out / "result.npz") as z:
        arrays = {k: z[k] for k in z.files}
    return json.loads(run.stdout.strip().splitlines()[-1]), arrays


def test_nothing_heavy_is_imported(child) -> None:
    report, _ = child
    assert report["imported"] == []
    assert not report["soundfile_used"]  # the WAV reader and writer of semges_core did the work
    assert "soundfile" in report["attempts"]  # audio.py did try, so the blocker was in force


def test_audio_matches_the_full_environment(child) -> None:
    _, arrays = child
    wav = EXAMPLES / "speech.wav"
    np.testing.assert_array_equal(arrays["y16"], load_audio(wav))
    np.testing.assert_allclose(arrays["y8"], load_audio(wav, sample_rate=8000), rtol=0, atol=1e-6)
    y16, back = arrays["y16"], arrays["y16_from_44k"]
    assert abs(len(back) - len(y16)) <= 1  # each resampling rounds its length up
    # 44.1 kHz and back, through a 16-bit file: the speech band survives.
    error = back[800 : len(y16) - 800] - y16[800:-800]
    assert np.sqrt(np.mean(error**2)) < 0.01 * np.sqrt(np.mean(y16**2))


def test_transcripts_match_the_full_environment(child, tmp_path) -> None:
    """Against the same code in a fresh interpreter with nothing blocked (a fresh process: the
    forced aligner's results are compared between like processes, not with this test session's)."""
    report, arrays = child
    run = subprocess.run([sys.executable, "-c", CHILD, "", str(EXAMPLES), str(tmp_path)], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    full = json.loads(run.stdout.strip().splitlines()[-1])
    with np.load(tmp_path / "result.npz") as z:
        full_grid, full_aligned = z["grid"], z["aligned"]
    assert report["grid_words"] == full["grid_words"]
    assert report["aligned_words"] == full["aligned_words"]
    np.testing.assert_allclose(arrays["grid"], full_grid)
    np.testing.assert_allclose(arrays["aligned"], full_aligned, atol=1e-9)
    assert len(report["aligned_words"]) == len(report["grid_words"]) > 40


def test_aligned_words_land_near_the_textgrid(child) -> None:
    """The plain text, aligned without a model, against the example's own word times."""
    _, arrays = child
    error = np.abs(arrays["aligned"] - arrays["grid"])
    print(f"\nplain text vs TextGrid: mean {error.mean():.3f} s, max {error.max():.3f} s")
    assert error.mean() < 0.1
