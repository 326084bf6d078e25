"""A HuBERT bundle exports to ONNX and runs without torch, matching torch (a tiny random HuBERT)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from semges_core.bundle import bundle_info, save_bundle
from semges_core.runtime import load_model
from semges_core.speech.features import AudioFeatureConfig

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hubert_bundle(tmp_path_factory):
    from transformers import HubertConfig, HubertModel

    from semges_core.model.generator import GeneratorConfig, SemGesGenerator
    from semges_core.model.vqvae import MotionVQVAE, VQVAEConfig
    from semges_core.motion.normalization import NormStats
    from semges_core.speech.word_vectors import TableVectors

    torch.manual_seed(0)
    cfg = HubertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
                       conv_dim=(32, 32), conv_kernel=(10, 64), conv_stride=(5, 64),
                       num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
    hub = tmp_path_factory.mktemp("hubert") / "tiny"
    HubertModel(cfg).save_pretrained(hub)
    gen = SemGesGenerator(GeneratorConfig(audio_dim=32, text_dim=4, hidden=32, layers=1, heads=4, n_speakers=1),
                          MotionVQVAE(VQVAEConfig(input_dim=228, width=16, depth=1, code_dim=8, codebook_size=16)),
                          MotionVQVAE(VQVAEConfig(input_dim=54, width=16, depth=1, code_dim=8, codebook_size=16)))
    path = tmp_path_factory.mktemp("bundle") / "hubert.safetensors"
    save_bundle(path, gen, AudioFeatureConfig(kind="hubert", hubert_path=str(hub), chunk_seconds=4.0),
                TableVectors(["hello"], np.ones((1, 4))), NormStats(np.zeros(282), np.full(282, 0.1)),
                [{"id": 1, "name": "a"}], 15.0, 34)
    return path


def test_hubert_bundle_runs_on_onnx_like_torch(hubert_bundle):
    assert bundle_info(hubert_bundle)["graphs"]["audio_kind"] == "hubert"
    onnx, torch_ = load_model(hubert_bundle, "onnx"), load_model(hubert_bundle, "torch", device="cpu")
    wav = np.random.default_rng(0).normal(0, 0.1, 16000 * 9).astype(np.float32)  # 3 chunks of 4 s
    a, b = onnx.audio_features(wav, 135), torch_.audio_features(wav, 135)
    assert a.shape == b.shape == (135, 32)
    assert np.abs(a - b).max() < 1e-3
