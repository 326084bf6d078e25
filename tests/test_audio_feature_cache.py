"""Precomputed audio features: inference's features, built once, reused, and what stage 2 trains on.

Inference runs the front end over a whole take (in chunks with context); the feature
cache must hold exactly that, keyed so that a changed front end or dataset rebuilds it,
and stage 2 must read it instead of running the front end per batch.
"""

from __future__ import annotations

import json
import math
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from semges_core.speech.features import AudioFeatureConfig, HubertFeatures, MelOnsetFeatures, make_audio_features
from semges_core.data.dataset import Cache, WindowDataset, open_cache
from semges_core.model.priors import save_priors
from semges_core.formats.tensor_files import read_meta
from training import audio_feature_cache as afc
from training import runtime, stage2
from training.config import load_config
from training.stage1 import build_priors

CPU = runtime.Runtime(0, 1, 0, torch.device("cpu"), amp=False)
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def cache(synth_cache_dir, tmp_path) -> Cache:
    """A private copy of the shared cache: feature folders and edits stay in this test."""
    own = tmp_path / "cache"
    shutil.copytree(synth_cache_dir, own, ignore=shutil.ignore_patterns(afc.FOLDER))
    return open_cache(own)


@pytest.fixture(scope="module")
def tiny_hubert(tmp_path_factory) -> Path:
    """A random HuBERT small enough for tests, with base's 320-sample (50 Hz) frame stride."""
    from transformers import HubertConfig, HubertModel

    torch.manual_seed(0)
    config = HubertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
                          conv_dim=(32, 32), conv_kernel=(10, 64), conv_stride=(5, 64),
                          num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
    path = tmp_path_factory.mktemp("hubert") / "tiny"
    HubertModel(config).save_pretrained(path)
    return path


def _take_reference(cache: Cache, front, k: int) -> np.ndarray:
    """What `semges_core.inference.generate` computes for take k's audio: one front-end call."""
    n = int(cache.frame_offsets[k + 1] - cache.frame_offsets[k])
    wav = torch.from_numpy(np.array(cache.take_array(k, "audio")))
    return front(wav[None], n)[0].numpy()


def test_melonset_features_are_inferences_bit_for_bit(cache):
    config = AudioFeatureConfig(n_mels=16, chunk_seconds=4.0)  # 10-s takes: the chunked path
    front = make_audio_features(config).eval()
    feats = afc.load_features(cache, config, front, CPU, progress=False)
    arr = np.load(feats.path, mmap_mode="r")
    assert arr.dtype == np.float32 and arr.shape == (cache.n_frames, front.dim)
    for k in range(cache.n_takes):
        a, b = cache.frame_offsets[k], cache.frame_offsets[k + 1]
        np.testing.assert_array_equal(arr[a:b], _take_reference(cache, front, k))
    # The dataset serves each window's rows of its take.
    data = WindowDataset(cache, "train", fields=("rot6d",), frame_files={"audio_features": feats.path})
    for i in (0, len(data) - 1):
        item = data[i]
        ref = _take_reference(cache, front, int(item["take"]))
        start = int(item["start"])
        assert item["audio_features"].dtype == torch.float32
        np.testing.assert_array_equal(item["audio_features"].numpy(), ref[start:start + 34])


def test_per_window_features_agree_with_the_takes_away_from_window_edges(cache):
    """The switch changes context, not meaning: inside a window both agree to a few % of the spread
    (log-mels ~4 %, the spiky onset strength ~15 %); the 15-fps frames sit a little differently."""
    config = AudioFeatureConfig(n_mels=16)
    front = make_audio_features(config).eval()
    feats = afc.load_features(cache, config, front, CPU, progress=False)
    data = WindowDataset(cache, "train", fields=("audio",), frame_files={"audio_features": feats.path})
    items = [data[i] for i in range(0, len(data), 5)]
    per_window = front(torch.stack([it["audio"] for it in items]), 34)  # (B, 34, A)
    whole = torch.stack([it["audio_features"] for it in items])
    diff = (per_window - whole).abs()[:, 3:-3].mean((0, 1))
    assert torch.all(diff < 0.2 * whole.std((0, 1))), diff
    assert not torch.equal(per_window, whole)


def test_hubert_features_are_inferences_up_to_float16(cache, tiny_hubert):
    config = AudioFeatureConfig(kind="hubert", hubert_path=str(tiny_hubert), chunk_seconds=4.0)
    front = make_audio_features(config).eval()
    feats = afc.load_features(cache, config, front, CPU, progress=False)
    arr = np.load(feats.path, mmap_mode="r")
    assert arr.dtype == np.float16 and arr.shape == (cache.n_frames, 32)
    for k in (0, cache.n_takes - 1):
        a, b = cache.frame_offsets[k], cache.frame_offsets[k + 1]
        np.testing.assert_array_equal(arr[a:b], _take_reference(cache, front, k).astype(np.float16))


def _mtimes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


def test_reused_unchanged_and_rebuilt_when_the_front_end_changes(cache, tiny_hubert, tmp_path, monkeypatch):
    calls = []
    compute = afc._compute
    monkeypatch.setattr(afc, "_compute", lambda *a, **k: calls.append(1) or compute(*a, **k))
    config = AudioFeatureConfig(n_mels=16)
    first = afc.load_features(cache, config, make_audio_features(config), CPU, progress=False)
    assert first.rebuilt and len(calls) == 1
    before = _mtimes(first.dir)
    again = afc.load_features(cache, config, make_audio_features(config), CPU, progress=False)
    assert not again.rebuilt and again.dir == first.dir and len(calls) == 1
    assert _mtimes(first.dir) == before
    # Another config: another folder; the first stays (another run may train with it).
    other = AudioFeatureConfig(n_mels=20)
    second = afc.load_features(cache, other, make_audio_features(other), CPU, progress=False)
    assert second.rebuilt and second.dir != first.dir and second.dim == 22 and len(calls) == 2
    assert _mtimes(first.dir) == before
    # HuBERT: new weights saved under the same path are a new front end.
    hub = tmp_path / "hubert"
    shutil.copytree(tiny_hubert, hub)
    hconfig = AudioFeatureConfig(kind="hubert", hubert_path=str(hub))
    key_a, _ = afc.feature_key(cache, hconfig, make_audio_features(hconfig))
    model = HubertFeatures(hconfig).model
    with torch.no_grad():
        model.encoder.layers[-1].final_layer_norm.bias.add_(0.5)
    model.save_pretrained(hub)
    key_b, _ = afc.feature_key(cache, hconfig, make_audio_features(hconfig))
    assert key_a != key_b


def test_a_rebuilt_dataset_gets_new_features_and_the_old_ones_go(cache):
    config = AudioFeatureConfig(n_mels=16)
    old = afc.load_features(cache, config, make_audio_features(config), CPU, progress=False)
    manifest = json.loads((cache.dir / "manifest.json").read_text())
    manifest["built_at"] = "later"  # what a rebuild of the dataset cache changes, at the least
    (cache.dir / "manifest.json").write_text(json.dumps(manifest))
    new = afc.load_features(open_cache(cache.dir), config, make_audio_features(config), CPU, progress=False)
    assert new.rebuilt and new.dir != old.dir
    assert not old.dir.exists()


def test_a_killed_build_is_never_read_and_is_cleaned_up(cache):
    config = AudioFeatureConfig(n_mels=16)
    front = make_audio_features(config)
    key, _ = afc.feature_key(cache, config, front)
    root = cache.dir / afc.FOLDER
    # What a SIGKILL may leave: a staging folder, or (a build that crashed elsewhere) a key
    # folder whose manifest was never written. Zeros here would show if they were read.
    for folder in (root / ".staging-killed", root / key):
        folder.mkdir(parents=True)
        np.save(folder / afc.FEATURES, np.zeros((cache.n_frames, front.dim), np.float32))
    feats = afc.load_features(cache, config, front, CPU, progress=False)
    assert feats.rebuilt and feats.dir == root / key
    assert not (root / ".staging-killed").exists()
    assert [p.name for p in root.iterdir() if p.name.startswith(".") and p.name != ".lock"] == []
    assert np.abs(np.load(feats.path)).max() > 0


def test_a_build_killed_before_its_manifest_is_harmless(cache):
    """SIGKILL with every row computed but nothing committed: the next run rebuilds, the lock is free."""
    code = f"""
import os, signal
from semges_core.speech.features import AudioFeatureConfig, make_audio_features
from semges_core.data.dataset import open_cache
from training import audio_feature_cache as afc, runtime
compute = afc._compute
def compute_then_die(*args, **kwargs):
    compute(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)
afc._compute = compute_then_die
config = AudioFeatureConfig(n_mels=16)
afc.load_features(open_cache({str(cache.dir)!r}), config, make_audio_features(config), runtime.start("cpu", False))
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]
    root = cache.dir / afc.FOLDER
    assert [p.name for p in root.iterdir() if not p.name.startswith(".")] == []  # nothing committed
    assert list(root.glob(".staging-*"))
    config = AudioFeatureConfig(n_mels=16)
    feats = afc.load_features(cache, config, make_audio_features(config), CPU, progress=False)
    assert feats.rebuilt and not list(root.glob(".staging-*"))


def _stage2_config(tiny_config, cache: Cache, tmp_path: Path, overrides: list[str]):
    """The tiny config on the private cache, with random stage-1 priors (training them adds nothing here)."""
    base = load_config(tiny_config(out=tmp_path / "run"))
    priors = tmp_path / "priors.safetensors"
    save_priors(priors, build_priors(base), cache, extra={})
    return load_config(tiny_config(out=tmp_path / "run"),
                       [f'data.cache_dir="{cache.dir}"', f'stage2.priors="{priors}"', *overrides])


def _record_audio_lengths(monkeypatch, front_class) -> list[int]:
    """The length in samples of every audio the front end class is run on, from now on."""
    lengths = []
    forward = front_class.forward

    def recording_forward(self, wav, n_frames):
        lengths.append(wav.shape[1])
        return forward(self, wav, n_frames)

    monkeypatch.setattr(front_class, "forward", recording_forward)
    return lengths


def test_stage2_trains_on_the_cache_and_never_runs_hubert_per_batch(tiny_config, cache, tiny_hubert, tmp_path,
                                                                     monkeypatch):
    config = _stage2_config(tiny_config, cache, tmp_path, [
        'stage2.audio.kind="hubert"', f'stage2.audio.hubert_path="{tiny_hubert}"', "stage2.audio.chunk_seconds=4.0"])
    assert config.stage2.precompute_audio  # the default
    lengths = _record_audio_lengths(monkeypatch, HubertFeatures)
    seen = []
    inputs = stage2.Stage2.inputs

    def recording_inputs(self, batch):
        seen.append({k: batch[k].clone() for k in ("take", "start", stage2.AUDIO_FEATURES)})
        return inputs(self, batch)

    monkeypatch.setattr(stage2.Stage2, "inputs", recording_inputs)
    bundle = stage2.train_stage2(config, max_steps=3, progress=False)
    # HuBERT ran once per take (whole takes), never on a 36267-sample window.
    assert sorted(lengths) == sorted(int(n) for n in np.diff(cache.audio_offsets))
    assert len(seen) >= 3
    arr = np.load(next((cache.dir / afc.FOLDER).glob("*/features.npy")), mmap_mode="r")
    for batch in seen[:2]:
        for take, start, feats in zip(batch["take"], batch["start"], batch[stage2.AUDIO_FEATURES]):
            first = int(cache.frame_offsets[take]) + int(start)
            np.testing.assert_array_equal(feats.numpy(), arr[first:first + 34].astype(np.float32))
    final = read_meta(bundle)["training"]["final_train"]
    assert final and all(math.isfinite(v) for v in final.values()), final


def test_stage2_per_window_switch_still_runs_the_front_end_per_batch(tiny_config, cache, tmp_path, monkeypatch):
    config = _stage2_config(tiny_config, cache, tmp_path, ["stage2.precompute_audio=false"])
    lengths = _record_audio_lengths(monkeypatch, MelOnsetFeatures)
    bundle = stage2.train_stage2(config, max_steps=2, progress=False)
    assert lengths and set(lengths) == {36267}  # windows only
    assert not (cache.dir / afc.FOLDER).exists()
    final = read_meta(bundle)["training"]["final_train"]
    assert all(math.isfinite(v) for v in final.values()), final
