"""Both training stages end to end on a small SynthBEAT: train, export, resume, DDP, overfit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from semges_core.bundle import bundle_info, load_bundle
from semges_core.data.dataset import WindowDataset, open_cache
from semges_core.model.generator import GeneratorConfig, SemGesGenerator
from semges_core.model.losses import Stage1LossConfig, Stage2LossConfig, stage1_loss, stage2_loss
from semges_core.model.priors import MotionPriors, load_priors
from semges_core.model.vqvae import VQVAEConfig
from semges_core.formats.tensor_files import load_tensors
from training.config import load_config
from training.stage1 import train_stage1
from training.stage2 import train_stage2

REPO = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    # Same thread count as this process: float sums then run in the same order, bit for bit.
    env["OMP_NUM_THREADS"] = str(torch.get_num_threads())
    return env


def test_both_stages_train_and_export_a_bundle(tiny_config):
    cfg = load_config(tiny_config(epochs=2))
    priors_file = train_stage1(cfg, progress=False)
    priors, stats, meta = load_priors(priors_file)
    assert meta["steps"] > 0 and meta["codebook_usage"]["hand"]["used"] >= 1
    assert stats.mean.shape == (282,)
    bundle_file = train_stage2(cfg, progress=False)
    info = bundle_info(bundle_file)
    cache = open_cache(cfg.data.cache_dir)
    assert info["fps"] == 15.0 and info["window"] == 34
    assert [s["id"] for s in info["speakers"]] == cache.speaker_ids
    assert set(cache.vocab) <= set(info["words"]), "the bundle carries every training word"
    assert info["training"]["steps"] > 0
    # The bundle alone (no training code) reproduces the trained generator's output.
    bundle = load_bundle(bundle_file)
    tensors, _ = load_tensors(Path(cfg.stage2.out) / "checkpoints" / json.loads(
        (Path(cfg.stage2.out) / "checkpoints" / "latest.json").read_text())["file"])
    state = {k[len("model.generator."):]: v for k, v in tensors.items() if k.startswith("model.generator.")}
    from semges_core.bundle import _training_only

    for k, v in bundle.generator.state_dict().items():
        if not _training_only(k):  # encoders and EMA counters stay out of bundles (inference never reads them)
            assert torch.equal(v, state[k]), k
    audio = torch.randn(2, 34, bundle.generator.config.audio_dim)
    words = torch.randn(2, 34, bundle.generator.config.text_dim)
    out = bundle.generator(audio, words, torch.tensor([0, 1]))
    assert out.motion.shape == (2, 34, 282) and torch.isfinite(out.motion).all()


def _train_steps(module_params, loss_fn, steps: int, lr: float) -> tuple[float, float]:
    opt = torch.optim.Adam(module_params, lr=lr)
    first = None
    for _ in range(steps):
        loss = loss_fn()
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    return first, loss_fn().item()


def test_tiny_model_overfits_a_few_synthbeat_windows(synth_cache_dir, tiny_vectors):
    torch.manual_seed(0)
    cache = open_cache(synth_cache_dir)
    ds = WindowDataset(cache, "train", fields=("rot6d", "word", "sem_score", "audio"), normalize=True)
    items = [ds[i] for i in range(0, 4 * 5, 5)]  # 4 windows from different places
    x = torch.stack([it["rot6d"] for it in items])  # (4, 34, 282)
    priors = MotionPriors(VQVAEConfig(input_dim=228, width=64, depth=2, code_dim=32, codebook_size=64, restart_after=20),
                          VQVAEConfig(input_dim=54, width=64, depth=2, code_dim=32, codebook_size=64, restart_after=20))
    w = Stage1LossConfig()

    def loss1():
        return (stage1_loss(priors.body(x[..., :54]), x[..., :54], w).total
                + stage1_loss(priors.hand(x[..., 54:]), x[..., 54:], w).total)

    priors.train()
    first, last = _train_steps(priors.parameters(), loss1, 400, 2e-3)
    assert last < 0.1 * first, (first, last)

    # Stage 2 on the same windows with the priors frozen.
    from semges_core.speech.features import AudioFeatureConfig, MelOnsetFeatures
    from semges_core.speech.word_vectors import load_word_vectors
    from training.stage2 import vocabulary_table

    fe = MelOnsetFeatures(AudioFeatureConfig(n_mels=16))
    audio = fe(torch.stack([it["audio"] for it in items]), 34)
    table = vocabulary_table(cache, load_word_vectors(tiny_vectors))
    word = torch.stack([it["word"] for it in items])
    word[word < 0] = table.shape[0] - 1
    words = table[word]
    spk = torch.stack([it["speaker"] for it in items])
    score = torch.stack([it["sem_score"] for it in items])
    gen = SemGesGenerator(GeneratorConfig(audio_dim=fe.dim, text_dim=table.shape[1], hidden=64, layers=2, heads=4,
                                          dropout=0.0, n_speakers=len(cache.speaker_ids)), priors.hand, priors.body)
    gen.train()

    def loss2():
        out = gen(audio, words, spk)
        return stage2_loss(out, x, score, gen.hand_vq, gen.body_vq, Stage2LossConfig()).total

    first, last = _train_steps(gen.trainable_parameters(), loss2, 300, 2e-3)
    assert last < 0.25 * first, (first, last)
    out = gen(audio, words, spk)
    real = gen.hand_vq.codebook.nearest(gen.hand_vq.encode(x[..., 54:]).flatten(0, 1))
    assert float((out.hand_indices.flatten() == real).float().mean()) > 0.8, "the generator picks the real codes"


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_tensors(path)[0]


def test_resume_after_kill_matches_an_uninterrupted_run(tiny_config, tmp_path):
    # Uninterrupted reference run.
    ref_cfg = load_config(tiny_config(epochs=3, checkpoint_every=3, out=tmp_path / "ref"))
    ref = train_stage1(ref_cfg, progress=False)
    # Same run in a child process, killed with SIGKILL once a mid-epoch checkpoint exists.
    cfg_path = tiny_config(epochs=3, checkpoint_every=3, out=tmp_path / "killed")
    cfg = load_config(cfg_path)
    ckpt_dir = Path(cfg.stage1.out) / "checkpoints"
    proc = subprocess.Popen([sys.executable, "-m", "training.stage1", "--config", str(cfg_path), "--no-progress"],
                            env=_env(), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not (ckpt_dir / "latest.json").exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.time() < deadline, "no checkpoint appeared"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (Path(cfg.stage1.out) / "stage1.safetensors").exists(), "killed before the end"
    resumed = train_stage1(cfg, resume=True, progress=False)
    a, b = _weights(ref), _weights(resumed)
    assert set(a) == set(b)
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs after resume"


def test_stage2_resume_matches_uninterrupted(tiny_config, tmp_path):
    base = tiny_config(epochs=2, checkpoint_every=2, out=tmp_path / "s")
    cfg = load_config(base)
    train_stage1(cfg, progress=False)
    ref_cfg = load_config(base, [f'stage2.out="{tmp_path / "ref2"}"'])
    ref = train_stage2(ref_cfg, progress=False)
    train_stage2(cfg, max_steps=3, progress=False)  # stops mid-epoch, as a kill would
    resumed = train_stage2(cfg, resume=True, progress=False)
    a, b = _weights(ref), _weights(resumed)
    for k in a:
        if k.startswith("generator."):
            assert torch.equal(a[k], b[k]), k


def test_ddp_two_processes_on_cpu(tiny_config, tmp_path):
    cfg_path = tiny_config(epochs=3, out=tmp_path / "ddp")
    cfg = load_config(cfg_path)
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "training.stage1",
           "--config", str(cfg_path), "--no-progress", "--max-steps", "3"]
    done = subprocess.run(cmd, env=_env(), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    priors, _, meta = load_priors(Path(cfg.stage1.out) / "stage1.safetensors")
    assert meta["steps"] == 3
    latest = json.loads((Path(cfg.stage1.out) / "checkpoints" / "latest.json").read_text())
    assert latest["position"]["step"] == 3
