"""Fixtures shared by the suite: one small SynthBEAT dataset and its cache per session.

Generating real espeak-ng speech and motion takes seconds, so the suite makes
them once; tests that need different data make their own.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def synth_small(tmp_path_factory) -> Path:
    """2 speakers x 4 takes x 10 s: train, val and test takes, one at 120 fps."""
    from training.synthbeat.generate import SynthConfig, generate

    root = tmp_path_factory.mktemp("synthbeat_small")
    return generate(SynthConfig(root=root, seed=0, speakers=2, takes_per_speaker=4, take_seconds=10.0,
                                fps=30.0, fps_120_takes=1, workers=1, progress=False))


@pytest.fixture(scope="session")
def synth_cache_dir(synth_small, tmp_path_factory) -> Path:
    from semges_core.data.dataset import DatasetConfig, load_cache

    cache_dir = tmp_path_factory.mktemp("synth_cache")
    load_cache(synth_small, cache_dir, DatasetConfig(), progress=False)
    return cache_dir


TINY_CONFIG = """
device = "cpu"
amp = false
checkpoint_every = {checkpoint_every}
log_every = 2
seed = 7

[data]
root = "{root}"
cache_dir = "{cache}"
workers = 0

[stage1]
out = "{out}/stage1"
epochs = {epochs}
batch_size = 8
lr = 1e-3
[stage1.hand]
width = 32
depth = 1
code_dim = 16
codebook_size = 16
restart_after = 5
[stage1.body]
width = 32
depth = 1
code_dim = 16
codebook_size = 16
restart_after = 5

[stage2]
out = "{out}/stage2"
export_onnx = false  # the graphs are tested on the session's tiny bundle; exporting them per run costs ~15 s
epochs = {epochs}
batch_size = 8
lr = 1e-3
[stage2.model]
hidden = 32
layers = 2
heads = 4
dropout = 0.1
[stage2.audio]
kind = "melonset"
n_mels = 16
[stage2.text]
vectors = "{vectors}"
bundle_vocabulary = 200
"""


@pytest.fixture(scope="session")
def tiny_vectors(tmp_path_factory) -> Path:
    """A small GloVe table (the 20000 most frequent words plus the SynthBEAT keywords) as an .npz."""
    from semges_core.speech.word_vectors import bake_vocabulary, load_glove_package
    from training.synthbeat import lexicon

    path = tmp_path_factory.mktemp("vectors") / "glove_small.npz"
    words = [w for ws in lexicon.training_words().values() for w in ws]
    words += [w for ws in lexicon.held_out_words().values() for w in ws]
    bake_vocabulary(load_glove_package(limit=100000), 20000, words).save_npz(path)
    return path


@pytest.fixture
def tiny_config(synth_small, synth_cache_dir, tiny_vectors, tmp_path):
    """Write a tiny training config into tmp_path; returns a function taking overrides."""

    def make(epochs: int = 2, checkpoint_every: int = 1000, out: Path | None = None) -> Path:
        out = out or tmp_path / "run"
        path = tmp_path / f"tiny_{out.name}.toml"
        path.write_text(TINY_CONFIG.format(root=synth_small, cache=synth_cache_dir, out=out, epochs=epochs,
                                           checkpoint_every=checkpoint_every, vectors=tiny_vectors))
        return path

    return make


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory) -> Path:
    """A random 2-speaker (2 ava, 4 ben) bundle at 15 fps: cheap, and exercises every code path."""
    import numpy as np
    import torch

    from semges_core.speech.features import AudioFeatureConfig
    from semges_core.bundle import save_bundle
    from semges_core.model.generator import GeneratorConfig, SemGesGenerator
    from semges_core.model.vqvae import MotionVQVAE, VQVAEConfig
    from semges_core.motion.normalization import NormStats
    from semges_core.speech.word_vectors import TableVectors

    torch.manual_seed(0)
    gen = SemGesGenerator(GeneratorConfig(audio_dim=18, text_dim=4, hidden=32, layers=2, heads=4, n_speakers=2),
                          MotionVQVAE(VQVAEConfig(input_dim=228, width=32, depth=1, code_dim=16, codebook_size=16)),
                          MotionVQVAE(VQVAEConfig(input_dim=54, width=32, depth=1, code_dim=16, codebook_size=16)))
    for vq in (gen.hand_vq, gen.body_vq):  # codes spread like real latents, not a tight ball
        vq.codebook.embed.normal_()
    rng = np.random.default_rng(0)
    words = TableVectors(["hello", "big", "world"], rng.normal(size=(3, 4)))
    path = tmp_path_factory.mktemp("bundle") / "tiny.safetensors"
    save_bundle(path, gen, AudioFeatureConfig(n_mels=16), words, NormStats(np.zeros(282), np.full(282, 0.1)),
                [{"id": 2, "name": "ava"}, {"id": 4, "name": "ben"}], 15.0, 34)
    return path


# ---------------------------------------------------------------- bpy 4.2 and Rigify at exit
# The Blender 4.2 `bpy` module crashes (SIGSEGV) while Python shuts down once the bundled
# Rigify add-on has been enabled, even if it was disabled again (tests/test_blender_rigify.py
# needs it). Everything has run and been reported by then, so after pytest is done the
# process leaves with pytest's own exit status instead of going through that teardown.


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    session.config._semges_exitstatus = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    import sys

    bpy = sys.modules.get("bpy")
    if bpy is not None and "rigify" in sys.modules and bpy.app.version < (4, 3, 0):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(getattr(config, "_semges_exitstatus", 0))
