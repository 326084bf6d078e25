"""Variants: the seed gives other plausible gestures when variation is above 0, the same seed the same ones."""

from __future__ import annotations

import numpy as np
import pytest

from semges_core.bundle import DEMO_BUNDLE
from semges_core.errors import SemgesError
from semges_core.formats.textgrid import read_textgrid, words_from_textgrid
from semges_core.inference import choose_codes, code_noise, generate
from semges_core.runtime import load_model
from semges_core.speech.audio import load_audio
from test_onnx_runtime import EXAMPLE_TG, EXAMPLE_WAV, quat_angle_deg


@pytest.fixture(scope="module")
def runs():
    model = load_model(DEMO_BUNDLE, "onnx")
    audio = load_audio(EXAMPLE_WAV, 16000)[: 16000 * 15]
    words = words_from_textgrid(read_textgrid(EXAMPLE_TG), path=EXAMPLE_TG)
    words = [w for w in words if w.end <= 15.0]

    def run(seed, variation):
        return generate(model, audio, words, fps=30.0, seed=seed, variation=variation).motion.rotations

    return run


def test_seeds_differ_and_repeat_bit_for_bit(runs):
    a, a2, b = runs(0, 0.5), runs(0, 0.5), runs(7, 0.5)
    assert np.array_equal(a, a2)  # same seed: bit for bit
    assert quat_angle_deg(a, b).max() > 5.0  # another seed: other gestures somewhere


def test_variation_zero_is_the_nearest_code_whatever_the_seed(runs):
    assert np.array_equal(runs(0, 0.0), runs(7, 0.0))


def test_small_variation_stays_close_to_the_model(runs):
    base, small, large = runs(0, 0.0), runs(3, 0.05), runs(3, 1.0)
    assert np.median(quat_angle_deg(base, small)) <= np.median(quat_angle_deg(base, large))


def test_sampling_follows_the_distances():
    rng = np.random.default_rng(0)
    d = np.array([0.0, 1.0, 5.0, 9.0])[None].repeat(4000, 0)
    noise = code_noise(4000, 4, seed=1, hold=1)
    picks = np.bincount(choose_codes(d, 1.0, noise), minlength=4) / 4000
    tau = 1.0 * d[0].std()
    want = np.exp(-d[0] / tau) / np.exp(-d[0] / tau).sum()
    assert np.abs(picks - want).max() < 0.03
    assert (choose_codes(d + rng.normal(0, 1e-3, d.shape), 0.0) == 0).all()


def test_variation_out_of_range_is_an_error(runs):
    with pytest.raises(SemgesError, match="variation"):
        runs(0, -1.0)
