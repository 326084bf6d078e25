"""Inference: windowing and stitching, determinism, long inputs, and the `semges generate` command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from semges_core.speech.audio import load_audio, write_wav
from semges_core.bundle import load_bundle
from semges_core.formats.bvh import read_bvh
from semges_core.cli import main as cli
from semges_core.inference import generate, stitch, window_starts
from semges_core.formats.npz import load_motion_npz
from semges_core.formats.textgrid import Word

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_WAV = REPO / "examples" / "speech.wav"
EXAMPLE_TG = REPO / "examples" / "speech.TextGrid"


def test_window_starts_cover_any_length():
    for n in (1, 20, 34, 35, 64, 65, 1000):
        starts = window_starts(n, 34)
        assert starts[0] == 0 and all(b - a == 30 for a, b in zip(starts, starts[1:]))
        assert starts[-1] + 34 >= n and (len(starts) == 1 or starts[-1] + 4 < n)


def test_stitch_blends_overlaps_without_seams():
    # Each window is a ramp plus its own offset: stitching must fade between offsets.
    starts = window_starts(100, 34)
    t = torch.arange(34, dtype=torch.float64)
    offsets = [0.0, 5.0, -5.0, 2.0]
    windows = torch.stack([(t + s)[:, None] * 0.1 + o for s, o in zip(starts, offsets)])
    out = stitch(windows, starts, 100)[:, 0]
    assert out.shape == (100,)
    jumps = (out[1:] - out[:-1]).abs()
    assert float(jumps.max()) <= 0.1 + 10.0 / 5 + 1e-9, "a 10-unit offset change spreads over the overlap"
    np.testing.assert_allclose(out[:30].numpy(), (torch.arange(30) * 0.1).numpy())  # untouched outside overlaps
    # Identical content in both windows: the blend changes nothing.
    same = torch.stack([(t + s)[:, None] * 0.1 for s in starts])
    np.testing.assert_allclose(stitch(same, starts, 100)[:, 0].numpy(), (torch.arange(100) * 0.1).numpy(), atol=1e-12)


def test_generate_is_deterministic_and_covers_the_audio(tiny_bundle):
    bundle = load_bundle(tiny_bundle)
    audio = load_audio(EXAMPLE_WAV)
    words = [Word(0.5, 1.0, "hello"), Word(1.2, 1.8, "big")]
    a = generate(bundle, audio, words, "ben", fps=30, seed=3)
    b = generate(bundle, audio, words, 4, fps=30, seed=3)
    assert np.array_equal(a.motion.rotations, b.motion.rotations)
    n15 = int(round(len(audio) / 16000 * 15))
    assert a.model_motion.n_frames == n15 and a.n_windows == len(window_starts(n15, 34))
    assert abs(a.motion.duration - a.model_motion.duration) < 0.1
    # The legs and hips keep the rest pose.
    legs = [a.motion.skeleton.index(n) for n in ("RUpLeg", "LLeg", "LFoot")]
    assert np.allclose(a.motion.rotations[:, legs], [1, 0, 0, 0])


def test_unknown_speaker_lists_the_known_ones(tiny_bundle):
    bundle = load_bundle(tiny_bundle)
    with pytest.raises(Exception, match=r"2 \(ava\), 4 \(ben\)"):
        generate(bundle, np.zeros(16000, np.float32), [], "zoe")


def test_five_minute_input_runs_in_bounded_memory(tiny_bundle, tmp_path):
    audio = load_audio(EXAMPLE_WAV)
    reps = int(np.ceil(300 * 16000 / len(audio)))
    long = np.tile(audio, reps)[: 300 * 16000]
    wav = tmp_path / "five_minutes.wav"
    write_wav(wav, long, 16000)
    script = f"""
import resource, sys, json
sys.path.insert(0, {str(REPO)!r})
from semges_core.speech.audio import load_audio
from semges_core.bundle import load_bundle
from semges_core.inference import generate
from semges_core.formats.textgrid import Word
b = load_bundle({str(tiny_bundle)!r})
a = load_audio({str(wav)!r})
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
r = generate(b, a, [Word(1.0 + 3 * i, 1.5 + 3 * i, "big") for i in range(90)], fps=30)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"frames": r.motion.n_frames, "before_mb": before / 1024, "after_mb": after / 1024}}))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    stats = json.loads(out.stdout.strip().splitlines()[-1])
    assert stats["frames"] == 9000  # round(300 s x 30 fps): the output covers the whole audio
    # 5 minutes of 16 kHz audio is 19 MB as float32; generation must not blow up with its length.
    assert stats["after_mb"] - stats["before_mb"] < 400, stats


def test_cli_generate_writes_bvh_and_npz(tiny_bundle, tmp_path, capsys):
    out = tmp_path / "result" / "gestures.bvh"
    code = cli(["generate", "--audio", str(EXAMPLE_WAV), "--transcript", str(EXAMPLE_TG), "--out", str(out),
                "--model", str(tiny_bundle), "--speaker", "ava", "--fps", "24", "--quiet"])
    assert code == 0
    summary = capsys.readouterr().out
    assert "real-time factor" in summary and "frames at 24 fps" in summary
    motion = read_bvh(out)
    assert motion.fps == pytest.approx(24.0) and len(motion.skeleton) == 75
    npz = load_motion_npz(out.with_suffix(".npz"))
    assert npz.n_frames == motion.n_frames
    np.testing.assert_allclose(npz.positions(), motion.positions(), atol=0.05)


@pytest.mark.parametrize("case", ["missing_audio", "not_audio", "bad_out", "missing_model", "empty_transcript",
                                  "long_transcript"])
def test_cli_errors_are_one_line_and_write_nothing(case, tiny_bundle, tmp_path, capsys):
    out = tmp_path / "g.bvh"
    audio, transcript, model = str(EXAMPLE_WAV), str(EXAMPLE_TG), str(tiny_bundle)
    if case == "missing_audio":
        audio = str(tmp_path / "nope.wav")
    elif case == "not_audio":
        audio = str(tmp_path / "text.wav")
        Path(audio).write_text("this is not audio")
    elif case == "bad_out":
        out = tmp_path / "g.fbx"
    elif case == "missing_model":
        model = str(tmp_path / "none.safetensors")
    elif case == "empty_transcript":
        transcript = str(tmp_path / "empty.txt")
        Path(transcript).write_text("  \n")
    elif case == "long_transcript":
        transcript = str(tmp_path / "long.srt")
        Path(transcript).write_text("1\n00:00:01,000 --> 00:10:00,000\nfar too long\n")
    code = cli(["generate", "--audio", audio, "--transcript", transcript, "--out", str(out), "--model", model,
                "--quiet"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("semges: error: ") and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists() and not out.with_suffix(".npz").exists()
    assert list(tmp_path.glob(".*tmp")) == []


def test_cli_info(tiny_bundle, capsys):
    assert cli(["info", str(tiny_bundle)]) == 0
    text = capsys.readouterr().out
    assert "2 (ava), 4 (ben)" in text and "15 fps" in text and "3 words x 4 dims" in text
