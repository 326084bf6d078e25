"""The torch-free runtime: ONNX graphs in the bundle, parity with torch, and what goes wrong with bundles.

Parity is checked on the demo model and the example speech. Codebook choices are
argmins over 128-256 distances, and two codes are sometimes nearly equally close
(relative gaps of 1e-7 have been seen): float rounding in another runtime can then pick
the other one and move a joint by a few degrees for the frames that code decodes into.
The test recognises such frames by the distances themselves (the two codes' distances
differ by less than NEAR_TIE relative to their size, in both runtimes' numbers), and
checks everything else to 0.01 degrees, including the decoder on the very same codes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from semges_core.bundle import DEMO_BUNDLE, bundle_info, load_bundle, read_header, save_bundle
from semges_core.errors import InputFileError, SemgesError
from semges_core.formats.textgrid import read_textgrid, words_from_textgrid
from semges_core.inference import generate, stitch, window_starts
from semges_core.runtime import load_model
from semges_core.speech.audio import load_audio

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_WAV = REPO / "examples" / "speech.wav"
EXAMPLE_TG = REPO / "examples" / "speech.TextGrid"
NEAR_TIE = 1e-3        # relative distance gap under which two codes count as tied
DECODER_REACH = 12     # model frames a code influences through the decoder's convolutions (generous)
TOLERANCE_DEG = 0.01


def quat_angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    dot = np.abs(np.sum(a * b, axis=-1)).clip(0, 1)
    return np.degrees(2 * np.arccos(dot))


@pytest.fixture(scope="module")
def example():
    audio = load_audio(EXAMPLE_WAV, 16000)
    words = words_from_textgrid(read_textgrid(EXAMPLE_TG), path=EXAMPLE_TG)
    return audio, words


def test_demo_bundle_carries_graphs():
    meta = bundle_info(DEMO_BUNDLE)
    assert meta["graphs"]["opset"] == 18 and set(meta["graphs"]["sha256"]) == {"audio", "generator", "decoder"}
    assert load_model(DEMO_BUNDLE).runtime == "onnx"


def _tied(d: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per frame: the chosen codes a and b are within NEAR_TIE of each other in distances d (N, W', K)."""
    da = np.take_along_axis(d, a[..., None], -1)[..., 0]
    db = np.take_along_axis(d, b[..., None], -1)[..., 0]
    return np.abs(da - db) <= NEAR_TIE * np.maximum(np.abs(da), np.abs(db)).clip(1e-6)


def test_onnx_matches_torch_on_the_example(example):
    audio, words = example
    onnx, torch_ = load_model(DEMO_BUNDLE, "onnx"), load_model(DEMO_BUNDLE, "torch", device="cpu")
    a = generate(onnx, audio, words, fps=30.0, keep_distances=True)
    b = generate(torch_, audio, words, fps=30.0, keep_distances=True)
    assert (a.runtime, b.runtime) == ("onnx", "torch")

    # 1. The distances agree closely, and every code choice that differs is a near tie in both runtimes.
    for da, db in ((a.hand_distances, b.hand_distances), (a.body_distances, b.body_distances)):
        assert np.abs(da - db).max() <= 1e-3 * np.abs(db).max()
    differ_frames = set()
    for ca, cb, da, db in ((a.hand_codes, b.hand_codes, a.hand_distances, b.hand_distances),
                           (a.body_codes, b.body_codes, a.body_distances, b.body_distances)):
        differ = ca != cb
        assert (_tied(da, ca, cb) | ~differ).all() and (_tied(db, ca, cb) | ~differ).all(), \
            "a code choice differs where the two codes are not nearly tied"
        starts = window_starts(a.model_motion.n_frames, onnx.header.window)
        for w, f in zip(*np.nonzero(differ)):
            differ_frames.add(starts[w] + f)
    assert len(differ_frames) <= 0.02 * a.model_motion.n_frames

    # 2. The motion agrees to 0.01 degrees outside the frames a tied code reaches (output is 30 fps, model 15).
    angle = quat_angle_deg(a.motion.rotations, b.motion.rotations).max(axis=1)  # (frames,)
    mask = np.ones(len(angle), bool)
    for f in differ_frames:
        mask[max(0, 2 * (f - DECODER_REACH)): 2 * (f + DECODER_REACH) + 1] = False
    assert mask.sum() >= 0.9 * len(mask)
    assert angle[mask].max() <= TOLERANCE_DEG, f"{angle[mask].max():.5f} degrees apart outside near ties"

    # 3. On the same codes the ONNX decoder and stitching reproduce torch's motion everywhere.
    same = onnx.decode(b.hand_codes, b.body_codes)
    ref = torch_.decode(b.hand_codes, b.body_codes)
    assert np.abs(same - ref).max() < 1e-3


def test_front_end_graph_matches_torch_features_on_long_audio(example):
    """The ONNX audio graph through the shared chunk plan equals the torch front end (audio longer than a chunk)."""
    audio, _ = example
    long = np.tile(audio, 2)[: 16000 * 45]  # two 20-s chunks and a remainder
    onnx, torch_ = load_model(DEMO_BUNDLE, "onnx"), load_model(DEMO_BUNDLE, "torch", device="cpu")
    fa, fb = onnx.audio_features(long, 675), torch_.audio_features(long, 675)
    assert fa.shape == fb.shape == (675, fb.shape[1])
    # float32 sums in another order: log-mel of near-silent bins moves most (log(1e-6 + tiny))
    assert np.abs(fa - fb).max() < 1e-2 and np.median(np.abs(fa - fb)) < 1e-5


def test_tiny_bundle_runs_on_both_runtimes(tiny_bundle, example):
    audio, words = example
    a = generate(load_model(tiny_bundle, "onnx"), audio[:16000 * 5], words, speaker="ben", fps=24.0)
    b = generate(load_model(tiny_bundle, "torch", device="cpu"), audio[:16000 * 5], words, speaker="ben", fps=24.0)
    assert a.motion.n_frames == b.motion.n_frames == 120
    assert (a.hand_codes == b.hand_codes).mean() > 0.95


@pytest.fixture
def bundle_without_graphs(tiny_bundle, tmp_path) -> Path:
    b = load_bundle(tiny_bundle)
    path = tmp_path / "old.safetensors"
    save_bundle(path, b.generator, b.audio_config, b.words, b.stats, b.speakers, b.fps, b.window, graphs=False)
    return path


def test_old_bundle_runs_on_torch_and_converts(bundle_without_graphs, tmp_path):
    assert load_model(bundle_without_graphs).runtime == "torch"
    with pytest.raises(SemgesError, match="no ONNX graphs.*semges convert"):
        load_model(bundle_without_graphs, "onnx")
    out = tmp_path / "converted.safetensors"
    r = subprocess.run([sys.executable, "-m", "semges_core.cli", "convert", str(bundle_without_graphs), "--out", str(out)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert load_model(out).runtime == "onnx"
    assert bundle_info(out)["speakers"] == bundle_info(bundle_without_graphs)["speakers"]


BLOCK = """
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split('.')[0] in {'torch', 'scipy', 'librosa'}:
            raise ImportError(f'No module named {name!r} (blocked: a stock Blender has none)')
sys.meta_path.insert(0, Block())
"""


def _run_blocked(code: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK + code], capture_output=True, text=True, timeout=timeout,
                          cwd=str(REPO))


def test_bundle_without_graphs_and_without_torch_is_one_clear_line(bundle_without_graphs, tmp_path):
    out = tmp_path / "g.bvh"
    r = _run_blocked("from semges_core.cli import main; sys.exit(main(["
                     f"'generate', '--audio', {str(EXAMPLE_WAV)!r}, '--transcript', {str(EXAMPLE_TG)!r}, "
                     f"'--out', {str(out)!r}, '--model', {str(bundle_without_graphs)!r}, '--quiet']))")
    assert r.returncode == 1, r.stderr
    lines = [ln for ln in r.stderr.strip().splitlines() if ln]
    assert len(lines) == 1 and str(bundle_without_graphs) in lines[0] and "semges convert" in lines[0], r.stderr
    assert not out.exists() and not out.with_suffix(".npz").exists()


def _damage_graph(src: Path, dst: Path, name: str, keep_digest: bool = True) -> None:
    """Copy a bundle and overwrite bytes in the middle of one graph (optionally dropping its digest)."""
    raw = bytearray(src.read_bytes())
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    a, b = header[f"graph.{name}"]["data_offsets"]
    mid = 8 + n + (a + b) // 2
    raw[mid - 200: mid + 200] = b"\xff" * 400
    if not keep_digest:
        meta = json.loads(header["__metadata__"]["semges"])
        meta["graphs"].pop("sha256")
        header["__metadata__"]["semges"] = json.dumps(meta)
        text = json.dumps(header).encode()
        text += b" " * ((8 - len(text) % 8) % 8)
        raw = bytearray(len(text).to_bytes(8, "little")) + text + raw[8 + n:]
    dst.write_bytes(bytes(raw))


@pytest.mark.parametrize("keep_digest", [True, False])
def test_damaged_graph_is_an_error_naming_it(tiny_bundle, tmp_path, keep_digest):
    bad = tmp_path / "bad.safetensors"
    _damage_graph(tiny_bundle, bad, "generator", keep_digest)
    with pytest.raises(InputFileError) as e:
        load_model(bad, "onnx")
    assert str(bad) in str(e.value) and "'generator'" in str(e.value)
    out = tmp_path / "g.bvh"
    r = subprocess.run([sys.executable, "-m", "semges_core.cli", "generate", "--audio", str(EXAMPLE_WAV),
                        "--transcript", str(EXAMPLE_TG), "--out", str(out), "--model", str(bad), "--quiet"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "'generator'" in r.stderr and "Traceback" not in r.stderr
    assert not out.exists() and not out.with_suffix(".npz").exists()


def test_inference_path_imports_no_torch_scipy_or_librosa(tmp_path):
    """`semges generate` on the demo model in a Python where torch, scipy and librosa cannot be imported."""
    out = tmp_path / "g.bvh"
    r = _run_blocked("from semges_core.cli import main\n"
                     f"code = main(['generate', '--audio', {str(EXAMPLE_WAV)!r}, '--transcript', {str(EXAMPLE_TG)!r}, "
                     f"'--out', {str(out)!r}, '--quiet', '--timings'])\n"
                     "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'scipy', 'librosa'})\n"
                     "print('heavy modules:', bad)\n"
                     "sys.exit(code or (3 if bad else 0))\n")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "heavy modules: []" in r.stdout and "runtime onnx" in r.stdout
    assert out.is_file() and out.with_suffix(".npz").is_file()
