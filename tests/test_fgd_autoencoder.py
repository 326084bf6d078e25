"""The FGD motion autoencoder: shapes, training on a small SynthBEAT cache, its file format."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from semges_core.data.dataset import WindowDataset, open_cache
from semges_core.errors import InputFileError
from semges_core.model.motion_autoencoder import (
    MotionAutoencoder,
    MotionAutoencoderConfig,
    load_motion_autoencoder,
    motion_features,
    motion_windows,
    reconstruction_loss,
    save_motion_autoencoder,
)
from semges_core.motion.normalization import NormStats
from semges_core.formats.tensor_files import read_meta, save_tensors
from training import runtime
from training.fgd_autoencoder import main, train_fgd_autoencoder

SMALL = MotionAutoencoderConfig(width=16, latent_dim=32)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="even"):
        MotionAutoencoderConfig(window=33)
    with pytest.raises(ValueError, match="latent_dim"):
        MotionAutoencoderConfig(latent_dim=0)
    with pytest.raises(ValueError, match="unknown"):
        MotionAutoencoderConfig.from_dict({"width": 8, "depth": 3})


def test_shapes_and_normalisation():
    stats = NormStats(np.full(141, 10.0), np.r_[np.full(140, 5.0), 1e-4])
    model = MotionAutoencoder(MotionAutoencoderConfig(), stats)
    x = torch.randn(3, 34, 141)
    out = model(x)
    assert out.latent.shape == (3, 300) and out.recon.shape == (3, 34, 141)
    assert model.norm_std[-1] == 1.0  # the std floor (min_std degrees)
    np.testing.assert_allclose(model.normalize(torch.full((1, 141), 15.0))[0, :140], 1.0)
    with pytest.raises(ValueError, match="34, 141"):
        model.encode(torch.randn(2, 30, 141))
    assert model.embed(np.zeros((0, 34, 141))).shape == (0, 300)


def test_motion_windows():
    clip = np.arange(60 * 2, dtype=float).reshape(60, 2)
    w = motion_windows(clip, 34, 10)
    assert w.shape == (3, 34, 2)  # starts 0, 10, 20
    np.testing.assert_array_equal(w[2, 0], clip[20])
    assert motion_windows(clip[:33], 34, 10).shape == (0, 34, 2)
    model = MotionAutoencoder(SMALL)
    # Clips are windowed separately: 3 + 1 windows, the short clip gives none.
    assert motion_features(model, [np.zeros((60, 141)), np.zeros((34, 141)), np.zeros((20, 141))]).shape == (4, 32)
    with pytest.raises(ValueError, match="at least 34"):
        motion_features(model, [np.zeros((20, 141))])


def _train_loss(model: MotionAutoencoder, cache_dir) -> float:
    ds = WindowDataset(open_cache(cache_dir), "train", fields=("euler",))
    x = model.normalize(torch.stack([ds[i]["euler"] for i in range(len(ds))]))
    with torch.no_grad():
        return float(reconstruction_loss(model(x), x).total)


def test_training_lowers_the_reconstruction_loss(synth_cache_dir, tmp_path):
    cache = open_cache(synth_cache_dir)
    runtime.seed_everything(3)  # what train_fgd_autoencoder does before building its model
    before = _train_loss(MotionAutoencoder(SMALL, cache.stats["euler"]), synth_cache_dir)
    out = train_fgd_autoencoder(synth_cache_dir, tmp_path / "ae.safetensors", epochs=25, batch_size=8, lr=3e-3,
                                seed=3, config=SMALL, device="cpu", progress=False)
    model, meta = load_motion_autoencoder(out)
    after = _train_loss(model, synth_cache_dir)
    assert after < 0.9 * before, (before, after)  # 0.65 -> 0.55 here; SynthBEAT fingers are noisy
    assert meta["steps"] > 0 and meta["train_windows"] == len(WindowDataset(cache, "train"))
    np.testing.assert_allclose(model.norm_mean.numpy(), cache.stats["euler"].mean, rtol=1e-6, atol=1e-5)

    # The same seed gives the same weights.
    again = train_fgd_autoencoder(synth_cache_dir, tmp_path / "again.safetensors", epochs=25, batch_size=8, lr=3e-3,
                                  seed=3, config=SMALL, device="cpu", progress=False)
    other, _ = load_motion_autoencoder(again)
    for (name, a), b in zip(model.state_dict().items(), other.state_dict().values()):
        assert torch.equal(a, b), name


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    stats = NormStats(np.linspace(-5, 5, 141), np.linspace(1, 3, 141))
    model = MotionAutoencoder(MotionAutoencoderConfig(width=8, latent_dim=24), stats)
    path = tmp_path / "ae.safetensors"
    save_motion_autoencoder(path, model, extra={"note": "test"})
    loaded, meta = load_motion_autoencoder(path)
    assert loaded.config == model.config and meta["note"] == "test" and not loaded.training
    windows = np.random.default_rng(0).normal(0, 20, (5, 34, 141))
    np.testing.assert_array_equal(loaded.embed(windows), model.embed(windows))
    np.testing.assert_allclose(loaded.norm_std.numpy(), stats.std, rtol=1e-6)


def test_loading_the_wrong_file_is_a_clear_error(tmp_path):
    other = tmp_path / "stage1.safetensors"
    save_tensors(other, {"w": torch.zeros(2)}, {"kind": "semges-stage1", "format": 1})
    with pytest.raises(InputFileError, match="not an FGD motion autoencoder"):
        load_motion_autoencoder(other)
    text = tmp_path / "notes.safetensors"
    text.write_text("not weights at all")
    with pytest.raises(InputFileError, match="notes.safetensors"):
        load_motion_autoencoder(text)
    with pytest.raises(InputFileError, match="not found"):
        load_motion_autoencoder(tmp_path / "missing.safetensors")
    # A file of the right kind whose tensors do not match its config.
    model = MotionAutoencoder(SMALL)
    bad = tmp_path / "bad.safetensors"
    save_tensors(bad, dict(list(model.state_dict().items())[1:]),
                 {"kind": "semges-fgd-autoencoder", "format": 1, "config": SMALL.to_dict()})
    with pytest.raises(InputFileError, match="does not match its config"):
        load_motion_autoencoder(bad)


def test_command_line(synth_cache_dir, tmp_path, capsys):
    out = tmp_path / "cli.safetensors"
    assert main(["--cache-dir", str(synth_cache_dir), "--out", str(out), "--epochs", "1", "--max-steps", "2",
                 "--batch-size", "8", "--width", "8", "--latent-dim", "16", "--device", "cpu", "--no-progress"]) == 0
    assert read_meta(out)["config"]["latent_dim"] == 16
    assert (tmp_path / "cli.run" / "checkpoints").is_dir()
    assert main(["--cache-dir", str(tmp_path / "nowhere"), "--out", str(out)]) == 1
    assert "fgd_autoencoder: error" in capsys.readouterr().err
