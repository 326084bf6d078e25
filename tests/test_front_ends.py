"""Audio and text front ends with real (tiny, self-built) HuBERT and FastText models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from semges_core.speech.features import AudioFeatureConfig, HubertFeatures, MelOnsetFeatures, make_audio_features
from semges_core.errors import InputFileError, SemgesError
from semges_core.speech.word_vectors import FastTextVectors, bake_vocabulary, load_word_vectors


@pytest.fixture(scope="module")
def tiny_hubert(tmp_path_factory):
    from transformers import HubertConfig, HubertModel

    torch.manual_seed(0)
    cfg = HubertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                       conv_dim=(16, 16, 16, 16, 16, 16, 16), num_conv_pos_embeddings=16,
                       num_conv_pos_embedding_groups=2)
    path = tmp_path_factory.mktemp("hubert")
    HubertModel(cfg).save_pretrained(path)
    return path


def test_hubert_features_from_a_local_directory(tiny_hubert):
    fe = make_audio_features(AudioFeatureConfig(kind="hubert", hubert_path=str(tiny_hubert)))
    assert isinstance(fe, HubertFeatures) and fe.dim == 32
    wav = torch.randn(2, 16000 * 3)
    out = fe(wav, 45)
    assert out.shape == (2, 45, 32) and torch.isfinite(out).all()
    fe.train()
    assert not fe.model.training, "HuBERT stays frozen in eval mode"
    assert all(not p.requires_grad for p in fe.parameters())


def test_hubert_long_audio_in_chunks_matches_whole(tiny_hubert):
    whole = HubertFeatures(AudioFeatureConfig(kind="hubert", hubert_path=str(tiny_hubert), chunk_seconds=60))
    chunked = HubertFeatures(AudioFeatureConfig(kind="hubert", hubert_path=str(tiny_hubert), chunk_seconds=2))
    t = torch.linspace(0, 6, 16000 * 6)
    wav = (torch.sin(2 * np.pi * 220 * t) * (0.5 + 0.5 * torch.sin(2 * np.pi * 0.7 * t)))[None]
    a, b = whole(wav, 90), chunked(wav, 90)
    assert a.shape == b.shape == (1, 90, 32)
    # Attention sees less context per chunk, so values differ a little, not wholesale.
    assert float(torch.nn.functional.cosine_similarity(a, b, dim=-1).mean()) > 0.9


def test_hubert_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(SemgesError, match="could not load HuBERT"):
        HubertFeatures(AudioFeatureConfig(kind="hubert", hubert_path=str(tmp_path / "nothing-here")))


def test_melonset_features_see_onsets():
    fe = MelOnsetFeatures(AudioFeatureConfig())
    wav = torch.zeros(1, 16000 * 2)
    wav[0, 16000:16000 + 1600] = torch.randn(1600)  # a burst at 1.0 s
    feats = fe(wav, 30)  # 15 fps
    onset = feats[0, :, -2]
    assert int(onset.argmax()) in (14, 15, 16)


def test_fasttext_bin_gives_subword_vectors_for_unknown_words(tmp_path):
    import fasttext

    corpus = tmp_path / "corpus.txt"
    corpus.write_text(" ".join(["the big house is huge and the small cat is tiny"] * 200))
    model = fasttext.train_unsupervised(str(corpus), dim=8, epoch=1, minCount=1, minn=2, maxn=4, verbose=0)
    path = tmp_path / "tiny.bin"
    model.save_model(str(path))
    vectors = load_word_vectors(path)
    assert isinstance(vectors, FastTextVectors) and vectors.dim == 8
    assert np.abs(vectors.vector("houses")).sum() > 0, "unknown word gets a subword vector"
    np.testing.assert_allclose(vectors.vector("Big,"), vectors.vector("big"))
    baked = bake_vocabulary(vectors, 3, ["houses"])
    assert "houses" in baked.words and len(baked.words) == 4
    np.testing.assert_allclose(baked.vector("houses"), vectors.vector("houses"), rtol=1e-6)


def test_table_vectors_text_and_npz(tmp_path):
    vec = tmp_path / "v.vec"
    vec.write_text("3 2\nbig 1 0\nhuge 0.9 0.1\nsmall -1 0\n")
    t = load_word_vectors(vec)
    assert t.dim == 2 and t.words == ["big", "huge", "small"]
    np.testing.assert_allclose(t.vector("HUGE!"), [0.9, 0.1])
    assert not t.vector("unknown").any()
    t.save_npz(tmp_path / "v.npz")
    t2 = load_word_vectors(tmp_path / "v.npz")
    assert t2.words == t.words and np.array_equal(t2.vectors, t.vectors)
    bad = tmp_path / "bad.vec"
    bad.write_text("big 1 0\nhuge 0.9\n")
    with pytest.raises(InputFileError, match=r"bad.vec:2: expected 2 values"):
        load_word_vectors(bad)
    with pytest.raises(InputFileError, match="not found"):
        load_word_vectors(tmp_path / "missing.vec")
