"""Model bundles a user hands us: good ones load, bad ones fail clearly, nothing is unpickled."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from semges_core.bundle import BUNDLE_FORMAT, default_bundle_path, load_bundle
from semges_core.errors import InputFileError


def _rewrite(src: Path, dst: Path, tensors_fn=None, meta_fn=None) -> Path:
    tensors = load_file(str(src))
    with open(src, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        meta = json.loads(json.loads(f.read(n))["__metadata__"]["semges"])
    if tensors_fn:
        tensors = tensors_fn(tensors)
    if meta_fn:
        meta = meta_fn(meta)
    save_file(tensors, str(dst), metadata={"semges": json.dumps(meta)})
    return dst


def test_demo_bundle_round_trips(tmp_path):
    copy = _rewrite(default_bundle_path(), tmp_path / "copy.safetensors")
    b = load_bundle(copy)
    assert b.fps == 15.0 and b.speaker_index("ben") == 1 and b.speaker_index(8) == 3


def test_bundles_leave_out_training_only_state_and_stay_small(tmp_path):
    """Encoders and EMA counters are not shipped; loading rebuilds them and inference is unchanged."""
    import numpy as np

    from semges_core.bundle import save_bundle
    from semges_core.inference import generate
    from semges_core.formats.textgrid import Word

    demo = default_bundle_path()
    assert demo.stat().st_size < 20 * 2**20, "the demo bundle ships inside every extension zip"
    names = set(load_file(str(demo)))
    assert not [n for n in names if ".encoder." in n or ".ema_" in n or "steps_unused" in n]
    b = load_bundle(demo)
    out = tmp_path / "resaved.safetensors"
    save_bundle(out, b.generator, b.audio_config, b.words, b.stats, b.speakers, b.fps, b.window, graphs=False)
    again = load_bundle(out)
    audio = np.random.default_rng(0).normal(0, 0.1, 16000 * 3).astype(np.float32)
    words = [Word(0.5, 1.0, "big"), Word(1.2, 1.8, "idea")]
    one, two = (generate(x, audio, words, speaker="ben", seed=3, variation=0.5).motion for x in (b, again))
    np.testing.assert_array_equal(one.rotations, two.rotations)


@pytest.mark.parametrize("case, message", [
    ("newer_format", "newer than this SemGes reads"),
    ("not_a_bundle", "not a SemGes model bundle"),
    ("missing_tensor", "missing"),
    ("wrong_shape", "shape of"),
    ("missing_words", "missing the tensor 'words.vectors'"),
    ("bad_meta", "metadata is incomplete"),
])
def test_bad_bundles_fail_with_a_clear_error(case, message, tmp_path):
    src, dst = default_bundle_path(), tmp_path / f"{case}.safetensors"
    if case == "newer_format":
        _rewrite(src, dst, meta_fn=lambda m: {**m, "format": BUNDLE_FORMAT + 1})
    elif case == "not_a_bundle":
        _rewrite(src, dst, meta_fn=lambda m: {**m, "kind": "something-else"})
    elif case == "missing_tensor":
        _rewrite(src, dst, tensors_fn=lambda t: {k: v for k, v in t.items() if k != "generator.to_hand.weight"})
    elif case == "wrong_shape":
        _rewrite(src, dst, tensors_fn=lambda t: {**t, "generator.to_hand.bias": torch.zeros(3)})
    elif case == "missing_words":
        _rewrite(src, dst, tensors_fn=lambda t: {k: v for k, v in t.items() if k != "words.vectors"})
    elif case == "bad_meta":
        _rewrite(src, dst, meta_fn=lambda m: {k: v for k, v in m.items() if k != "generator"})
    with pytest.raises(InputFileError, match=message) as err:
        load_bundle(dst)
    assert str(dst) in str(err.value)


class _Boom:
    def __reduce__(self):  # would run code if anything unpickled the file
        return (Path("/tmp/semges-pwned").touch, ())


@pytest.mark.parametrize("kind", ["pickle", "torch_save", "truncated", "empty", "text"])
def test_foreign_or_broken_files_are_refused_without_running_code(kind, tmp_path):
    marker = Path("/tmp/semges-pwned")
    marker.unlink(missing_ok=True)
    path = tmp_path / "model.safetensors"
    if kind == "pickle":
        path.write_bytes(pickle.dumps(_Boom()))
    elif kind == "torch_save":
        torch.save({"x": _Boom()}, path)
    elif kind == "truncated":
        path.write_bytes(default_bundle_path().read_bytes()[:100000])
    elif kind == "empty":
        path.write_bytes(b"")
    else:
        path.write_text("hello, I am not a model")
    with pytest.raises(InputFileError) as err:
        load_bundle(path)
    assert str(path) in str(err.value)
    assert not marker.exists(), "a pickle inside the file was executed"
