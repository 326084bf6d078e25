"""Bad inputs to `semges generate`, one table: every row a real file, and what the user must get.

A row is an error (exit status 1, one line on stderr naming the file and the problem, no
traceback, nothing written and an older output left byte for byte) or a sensible result
(a valid BVH with round(seconds * fps) finite frames, checked against the same speech as
16-bit 16 kHz mono). Most rows run `cli.main` in-process; a few run the installed
`semges` command as a real process.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file, save_file
from scipy.signal import resample_poly

from semges_core.bundle import BUNDLE_FORMAT
from semges_core.formats.bvh import read_bvh
from semges_core.cli import main as cli
from semges_core.motion.clip import Motion
from semges_core.formats.textgrid import read_textgrid, words_from_textgrid

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_WAV = REPO / "examples" / "speech.wav"
EXAMPLE_TG = REPO / "examples" / "speech.TextGrid"
EXAMPLE_TXT = REPO / "examples" / "speech.txt"
FPS = 30
CLIP_S = 6.0  # the sensible-audio rows use the example's first 6 s and its words there
EXAMPLE_SECONDS = sf.info(str(EXAMPLE_WAV)).frames / sf.info(str(EXAMPLE_WAV)).samplerate
PREVIOUS = b"an older take the user wants to keep\n"


# ----------------------------------------------------------------------------- making inputs


class Pickled:
    """Unpickling this creates `marker`: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@dataclass
class Maker:
    """Writes a row's files into `dir`; `good()` is the inputs no row breaks."""

    dir: Path
    tiny_bundle: Path

    @property
    def marker(self) -> Path:
        return self.dir / "code-was-executed"

    def speech(self) -> tuple[np.ndarray, int]:
        data, sr = sf.read(str(EXAMPLE_WAV), dtype="float32")
        return data, sr

    def wav(self, name: str, samples: np.ndarray, rate: int, subtype: str = "PCM_16") -> Path:
        path = self.dir / name
        sf.write(str(path), samples, rate, subtype=subtype)
        return path

    def clip(self, seconds: float = CLIP_S) -> np.ndarray:
        data, sr = self.speech()
        return data[: int(seconds * sr)]

    def file(self, name: str, content: str | bytes) -> Path:
        path = self.dir / name
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
        return path

    def clip_words(self) -> Path:
        """The example's words within the clip, as WhisperX-style JSON."""
        words = words_from_textgrid(read_textgrid(EXAMPLE_TG), path=EXAMPLE_TG)
        return self.file("clip.json", json.dumps([{"word": w.text, "start": w.start, "end": w.end}
                                                  for w in words if w.end <= CLIP_S]))

    def bundle(self, name: str, tensors_fn=None, meta_fn=None) -> Path:
        """The tiny bundle rewritten with safetensors after editing its tensors or metadata."""
        tensors = load_file(str(self.tiny_bundle))
        with open(self.tiny_bundle, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            meta = json.loads(json.loads(f.read(n))["__metadata__"]["semges"])
        if tensors_fn:  # edited torch weights matter to the torch runtime: drop the ONNX graphs (they
            # would run regardless; damaged graphs are tested in test_onnx_runtime.py)
            tensors = {k: v for k, v in tensors_fn(tensors).items() if not k.startswith("graph.")}
            meta = {k: v for k, v in meta.items() if k != "graphs"}
        meta = meta_fn(meta) if meta_fn else meta
        path = self.dir / name
        save_file(tensors, str(path), metadata={"semges": json.dumps(meta)})
        return path

    def good(self) -> dict[str, Path | None]:
        return {"audio": EXAMPLE_WAV, "transcript": EXAMPLE_TG, "model": self.tiny_bundle}

    def with_(self, **changes) -> dict[str, Path | None]:
        return {**self.good(), **changes}


def textgrid(intervals: list[tuple[float, float, str]], xmin: float = 0.0, xmax: float | None = None) -> str:
    """A long-format Praat TextGrid with one word tier, written as given (no checks)."""
    xmax = intervals[-1][1] if xmax is None else xmax
    lines = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", f"xmin = {xmin}", f"xmax = {xmax}",
             "tiers? <exists>", "size = 1", "item []:", "    item [1]:", '        class = "IntervalTier"',
             '        name = "words"', f"        xmin = {xmin}", f"        xmax = {xmax}",
             f"        intervals: size = {len(intervals)}"]
    for k, (a, b, text) in enumerate(intervals, start=1):
        lines += [f"        intervals [{k}]:", f"            xmin = {a}", f"            xmax = {b}",
                  f'            text = "{text}"']
    return "\n".join(lines) + "\n"


def _huge_text(mb: float) -> str:
    words = EXAMPLE_TXT.read_text(encoding="utf-8").split()
    n = int(mb * 1e6 / (sum(map(len, words)) / len(words) + 1))
    return " ".join(words[k % len(words)] for k in range(n)) + "\n"


def _cut_wav(m: Maker, name: str, keep: Callable[[bytes], bytes]) -> Path:
    good = m.wav("good.wav", m.clip(2.0), 16000)
    return m.file(name, keep(good.read_bytes()))


def _bundle_with_pickle_tensor(m: Maker) -> Path:
    payload = np.frombuffer(pickle.dumps(Pickled(m.marker)), dtype=np.uint8).copy()
    return m.bundle("pickle_tensor.safetensors", tensors_fn=lambda t: {**t, "extra.payload": torch.from_numpy(payload)})


# ----------------------------------------------------------------------------- checking results


def angle_speed(motion: Motion) -> np.ndarray:
    """Per frame and joint, how fast each joint turns, in degrees per second, (T - 1, J)."""
    q = motion.rotations
    dot = np.abs(np.sum(q[1:] * q[:-1], axis=-1)).clip(0.0, 1.0)
    return 2.0 * np.degrees(np.arccos(dot)) * motion.fps


def mean_angle_to(a: Motion, b: Motion) -> float:
    """Mean angle between the two motions' joint rotations, in degrees."""
    dot = np.abs(np.sum(a.rotations * b.rotations, axis=-1)).clip(0.0, 1.0)
    return float(np.mean(2.0 * np.degrees(np.arccos(dot))))


def same_speech_as_reference(max_mean_deg: float = 2.0):
    """The speech in another format gives (almost) the gestures of the 16-bit 16 kHz mono file."""

    def check(motion: Motion, err: str, reference: Motion) -> None:
        assert motion.n_frames == reference.n_frames
        assert mean_angle_to(motion, reference) < max_mean_deg

    return check


def calm(motion: Motion, err: str, reference: Motion) -> None:
    """Silence gives motion no faster, and with no wilder jumps, than the same words spoken."""
    speed, ref = angle_speed(motion), angle_speed(reference)
    assert speed.mean() <= 1.1 * ref.mean(), (speed.mean(), ref.mean())
    assert np.percentile(speed, 99) <= 1.2 * np.percentile(ref, 99)


def warns(*words: str):
    def check(motion: Motion, err: str, reference: Motion) -> None:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("semges: warning: "), err
        assert all(w in lines[0] for w in words), err

    return check


# ----------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Row:
    id: str
    make: Callable[[Maker], dict[str, Path | None]]  # the row's --audio, --transcript and --model (None: demo)
    error: tuple[str, ...] = ()  # words the one-line error must hold; empty: the run must succeed
    names: str = ""              # the input the error must name: "audio", "transcript" or "model"
    seconds: float | None = None  # a success's audio length, for the frame count (None: the clip)
    check: Callable[[Motion, str, Motion], None] | None = None  # more checks on a success
    marker: bool = False         # the input holds a pickle: its marker file must never appear


def _sensible(m: Maker, name: str, samples: np.ndarray, rate: int, subtype: str) -> dict:
    return {"audio": m.wav(name, samples, rate, subtype), "transcript": m.clip_words(), "model": None}


def _stereo(x: np.ndarray) -> np.ndarray:
    return np.stack([x, 0.8 * x], axis=1)  # (n, 2): not two copies, so the mixdown matters


def _k48(x: np.ndarray) -> np.ndarray:
    return resample_poly(x, 3, 1).astype(np.float32)


ROWS = [
    # --- audio files
    Row("audio_missing", lambda m: m.with_(audio=m.dir / "nowhere.wav"), ("no such file",), "audio"),
    Row("audio_empty", lambda m: m.with_(audio=m.file("empty.wav", b"")), ("empty",), "audio"),
    Row("audio_truncated_header", lambda m: m.with_(audio=_cut_wav(m, "cut_header.wav", lambda b: b[:30])),
        ("not a readable audio file",), "audio"),
    Row("audio_truncated_data", lambda m: m.with_(audio=_cut_wav(m, "cut_data.wav", lambda b: b[: len(b) // 2])),
        ("truncated",), "audio"),
    Row("audio_text_renamed_wav", lambda m: m.with_(audio=m.file("notes.wav", "Meeting notes, not audio.\n" * 40)),
        ("not a readable audio file",), "audio"),
    Row("audio_binary_renamed_wav", lambda m: m.with_(audio=m.file("model.wav", m.tiny_bundle.read_bytes())),
        ("not a readable audio file",), "audio"),
    Row("audio_0.05s", lambda m: m.with_(audio=m.wav("blip.wav", m.clip(0.05), 16000)),
        ("0.050 s long", "at least 0.1 s"), "audio"),
    Row("audio_8bit", lambda m: _sensible(m, "u8.wav", m.clip(), 16000, "PCM_U8"),
        check=same_speech_as_reference()),
    Row("audio_24bit", lambda m: _sensible(m, "s24.wav", m.clip(), 16000, "PCM_24"),
        check=same_speech_as_reference()),
    Row("audio_48khz", lambda m: _sensible(m, "k48.wav", _k48(m.clip()), 48000, "PCM_16"),
        check=same_speech_as_reference()),
    Row("audio_stereo", lambda m: _sensible(m, "stereo.wav", _stereo(m.clip()), 16000, "PCM_16"),
        check=same_speech_as_reference()),
    Row("audio_silent", lambda m: _sensible(m, "silent.wav", np.zeros_like(m.clip()), 16000, "PCM_16"),
        check=calm),
    Row("audio_silent_plain_text", lambda m: m.with_(audio=m.wav("silent.wav", np.zeros_like(m.clip()), 16000),
                                                     transcript=EXAMPLE_TXT),
        ("no speech found in the audio",), "transcript"),
    Row("audio_0.2s", lambda m: {"audio": m.wav("short.wav", m.speech()[0][8000:11200], 16000),
                                 "transcript": m.file("hello.json", '[{"word": "hello", "start": 0.0, "end": 0.2}]'),
                                 "model": None},
        seconds=0.2),
    # --- transcripts
    Row("transcript_missing", lambda m: m.with_(transcript=m.dir / "nowhere.TextGrid"), ("no such file",),
        "transcript"),
    Row("transcript_empty", lambda m: m.with_(transcript=m.file("empty.txt", b"")), ("is empty",), "transcript"),
    Row("transcript_whitespace", lambda m: m.with_(transcript=m.file("blank.txt", " \n\t \r\n  \n")),
        ("only whitespace",), "transcript"),
    Row("transcript_not_utf8", lambda m: m.with_(transcript=m.file("latin1.txt",
                                                                   "Ça va, naïve café?\n".encode("latin-1"))),
        ("not valid UTF-8",), "transcript"),
    Row("textgrid_not_utf8", lambda m: m.with_(transcript=m.file("latin1.TextGrid", textgrid(
        [(0.0, 0.5, ""), (0.5, 1.1, "café"), (1.1, 2.0, "")]).encode("latin-1"))),
        ("not valid UTF-8",), "transcript"),
    Row("transcript_huge", lambda m: m.with_(transcript=m.file("huge.txt", _huge_text(3.0))),
        ("transcript is longer than its audio", "words per second"), "transcript"),
    Row("transcript_past_audio_end", lambda m: m.with_(audio=m.wav("first10s.wav", m.clip(10.0), 16000)),
        ("transcript is longer than its audio", "10.00 s"), "transcript"),
    Row("transcript_text_too_long_for_audio", lambda m: m.with_(audio=m.wav("short.wav", m.speech()[0][8000:11200],
                                                                            16000),
                                                                transcript=EXAMPLE_TXT, model=None),
        ("transcript is longer than its audio", "words per second"), "transcript"),
    # --- TextGrids
    Row("textgrid_overlapping", lambda m: m.with_(transcript=m.file("overlap.TextGrid", textgrid(
        [(0.0, 0.5, ""), (0.5, 1.4, "hello"), (1.1, 2.0, "world")]))),
        ("overlap", "'hello'", "'world'"), "transcript"),
    Row("textgrid_negative_time", lambda m: m.with_(transcript=m.file("negative.TextGrid", textgrid(
        [(-0.5, -0.2, ""), (-0.2, 0.8, "hello"), (0.8, 2.0, "world")], xmin=-0.5))),
        ("negative time", "-0.5"), "transcript"),
    Row("textgrid_interval_before_tier", lambda m: m.with_(transcript=m.file("before.TextGrid", textgrid(
        [(0.0, 0.8, "hello"), (-0.2, 2.0, "world")], xmax=2.0))),
        ("negative time", "-0.2"), "transcript"),
    Row("textgrid_negative_length", lambda m: m.with_(transcript=m.file("backwards.TextGrid", textgrid(
        [(0.0, 0.5, ""), (0.5, 0.3, "hello"), (0.3, 2.0, "world")]))),
        ("ends before it starts", "0.5", "0.3"), "transcript"),
    # --- model bundles
    Row("bundle_missing_tensor", lambda m: m.with_(model=m.bundle("no_tensor.safetensors", tensors_fn=lambda t: {
        k: v for k, v in t.items() if k != "generator.to_hand.weight"})),
        ("does not match its config", "missing to_hand.weight"), "model"),
    Row("bundle_wrong_shape", lambda m: m.with_(model=m.bundle("bad_shape.safetensors", tensors_fn=lambda t: {
        **t, "generator.to_hand.bias": torch.zeros(3)})),
        ("shape of to_hand.bias is (3,)",), "model"),
    Row("bundle_newer_format", lambda m: m.with_(model=m.bundle("newer.safetensors", meta_fn=lambda meta: {
        **meta, "format": BUNDLE_FORMAT + 1})),
        (f"format {BUNDLE_FORMAT + 1} is newer", "update SemGes"), "model"),
    Row("bundle_is_a_pickle", lambda m: m.with_(model=m.file("model.safetensors", pickle.dumps(Pickled(m.marker)))),
        ("is a Python pickle", "never unpickles"), "model", marker=True),
    Row("bundle_is_torch_save", lambda m: m.with_(model=_torch_save(m)),
        ("torch.save", "never unpickles"), "model", marker=True),
    Row("bundle_pickle_inside_tensor", lambda m: {"audio": m.wav("clip.wav", m.clip(), 16000),
                                                  "transcript": m.clip_words(), "model": _bundle_with_pickle_tensor(m)},
        marker=True),
]


def _torch_save(m: Maker) -> Path:
    path = m.dir / "checkpoint.safetensors"
    torch.save({"generator": Pickled(m.marker)}, path)
    return path


ROW_IDS = [r.id for r in ROWS]
assert len(set(ROW_IDS)) == len(ROW_IDS)


# ----------------------------------------------------------------------------- running


def argv(inputs: dict[str, Path | None], out: Path) -> list[str]:
    args = ["generate", "--audio", str(inputs["audio"]), "--transcript", str(inputs["transcript"]),
            "--out", str(out), "--quiet"]
    return args + (["--model", str(inputs["model"])] if inputs["model"] is not None else [])


@pytest.fixture(scope="module")
def clip_reference(tmp_path_factory) -> Motion:
    """The demo model on the clip as 16-bit 16 kHz mono, with its words: what the format rows must match."""
    m = Maker(tmp_path_factory.mktemp("reference"), Path())
    out = m.dir / "reference.bvh"
    assert cli(argv(_sensible(m, "ref.wav", m.clip(), 16000, "PCM_16"), out)) == 0
    return read_bvh(out)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()} if folder.exists() else {}


def _check_error(row: Row, inputs: dict, code: int, out_text: str, err: str) -> None:
    assert code == 1, (code, err)
    assert "Traceback" not in out_text + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("semges: error: "), err
    assert str(inputs[row.names]) in lines[0], f"the error does not name the {row.names} file: {lines[0]}"
    for word in row.error:
        assert word in lines[0], f"{word!r} not in: {lines[0]}"


def _check_success(row: Row, code: int, out_text: str, err: str, out: Path, reference: Motion) -> None:
    assert code == 0, err
    assert "Traceback" not in out_text + err
    motion = read_bvh(out)
    seconds = CLIP_S if row.seconds is None else row.seconds
    assert motion.n_frames == round(seconds * FPS) and motion.fps == pytest.approx(FPS)
    assert np.isfinite(motion.rotations).all() and np.isfinite(motion.root_positions).all()
    assert out.with_suffix(".npz").is_file()
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".")] == [], "temporary files left"
    if row.check is not None:
        row.check(motion, err, reference)
    elif err.strip():
        pytest.fail(f"unexpected output on stderr: {err}")


@pytest.mark.parametrize("row", ROWS, ids=ROW_IDS)
def test_bad_input(row: Row, tiny_bundle, clip_reference, tmp_path, capsys):
    m = Maker(tmp_path / "in", tiny_bundle)
    m.dir.mkdir()
    inputs = row.make(m)
    capsys.readouterr()
    t0 = time.perf_counter()
    if row.error:
        # Into a folder that does not exist yet: nothing may appear, not even the folder.
        fresh = tmp_path / "fresh" / "gestures.bvh"
        code = cli(argv(inputs, fresh))
        out_text, err = capsys.readouterr()
        _check_error(row, inputs, code, out_text, err)
        assert not fresh.parent.exists()
        # Over an older take: it stays byte for byte, and no temporary file is left beside it.
        kept = tmp_path / "kept"
        kept.mkdir()
        (kept / "gestures.bvh").write_bytes(PREVIOUS)
        (kept / "gestures.npz").write_bytes(PREVIOUS)
        before = _snapshot(kept)
        code = cli(argv(inputs, kept / "gestures.bvh"))
        out_text, err = capsys.readouterr()
        _check_error(row, inputs, code, out_text, err)
        assert _snapshot(kept) == before
    else:
        out = tmp_path / "out" / "gestures.bvh"
        code = cli(argv(inputs, out))
        out_text, err = capsys.readouterr()
        _check_success(row, code, out_text, err, out, clip_reference)
    assert time.perf_counter() - t0 < 30, "bad input must not take long"
    if row.marker:
        assert not m.marker.exists(), "a pickle in the model was executed"


SUBPROCESS_ROWS = ["audio_truncated_data", "transcript_not_utf8", "bundle_is_a_pickle", "audio_stereo"]


@pytest.mark.parametrize("row", [r for r in ROWS if r.id in SUBPROCESS_ROWS], ids=SUBPROCESS_ROWS)
def test_bad_input_as_the_user_runs_it(row: Row, tiny_bundle, clip_reference, tmp_path):
    """The installed `semges` command, as a process: exit status, stderr, files."""
    exe = Path(sys.executable).with_name("semges")
    command = [str(exe)] if exe.is_file() else [sys.executable, "-m", "semges_core.cli"]
    m = Maker(tmp_path / "in", tiny_bundle)
    m.dir.mkdir()
    inputs = row.make(m)
    out = tmp_path / "out" / "gestures.bvh"
    if row.error:
        out.parent.mkdir()
        out.write_bytes(PREVIOUS)
    env = {**os.environ, "PYTHONWARNINGS": ""}
    proc = subprocess.run(command + argv(inputs, out), cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env=env)
    if row.error:
        _check_error(row, inputs, proc.returncode, proc.stdout, proc.stderr)
        assert _snapshot(out.parent) == {"gestures.bvh": PREVIOUS}
    else:
        _check_success(row, proc.returncode, proc.stdout, proc.stderr, out, clip_reference)
    if row.marker:
        assert not m.marker.exists(), "a pickle in the model was executed"


def test_the_pickle_payload_would_run(tmp_path):
    """The rows' pickles are live: unpickling one does create the marker, so its absence means something."""
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(Pickled(marker)))
    assert marker.exists()


def test_every_requirement_row_has_a_test():
    """The requirement's list of bad inputs, each with at least one row above."""
    required = {
        "missing audio": "audio_missing", "empty audio": "audio_empty", "truncated audio": "audio_truncated_data",
        "non-audio file": "audio_text_renamed_wav", "8-bit": "audio_8bit", "24-bit": "audio_24bit",
        "48 kHz": "audio_48khz", "stereo": "audio_stereo", "silent": "audio_silent", "0.2 s": "audio_0.2s",
        "empty transcript": "transcript_empty", "whitespace-only": "transcript_whitespace",
        "non-UTF-8": "transcript_not_utf8", "huge": "transcript_huge", "mismatched": "transcript_past_audio_end",
        "overlapping intervals": "textgrid_overlapping", "negative intervals": "textgrid_negative_time",
        "missing tensor": "bundle_missing_tensor", "wrong shape": "bundle_wrong_shape",
        "newer format": "bundle_newer_format", "pickle inside": "bundle_is_a_pickle",
    }
    assert set(required.values()) <= set(ROW_IDS)
    assert "audio_truncated_header" in ROW_IDS and "textgrid_negative_length" in ROW_IDS
