"""`training.evaluate` on a small SynthBEAT: every metric, the ground-truth row, the table and JSON."""

from __future__ import annotations

import json
import math

import pytest

from training.evaluate import main as evaluate_main
from training.fgd_autoencoder import train_fgd_autoencoder


@pytest.fixture(scope="module")
def fgd_model(synth_cache_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("fgd") / "fgd_ae.safetensors"
    return train_fgd_autoencoder(synth_cache_dir, out, epochs=1, batch_size=8, device="cpu", progress=False)


def test_evaluate_prints_the_table_and_writes_json(synth_small, synth_cache_dir, fgd_model, tiny_bundle, tmp_path,
                                                   capsys):
    out = tmp_path / "results.json"
    code = evaluate_main(["--data", str(synth_small), "--cache-dir", str(synth_cache_dir), "--fgd-model",
                          str(fgd_model), "--bundle", f"tiny={tiny_bundle}", "--ground-truth", "--json", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "| Ground truth |" in text and "| tiny |" in text and "SRGR" in text and "Held-out kw err" in text
    rows = {r["name"]: r for r in json.loads(out.read_text())["rows"]}
    gt, tiny = rows["Ground truth"]["metrics"], rows["tiny"]["metrics"]
    assert gt["FGD"] == pytest.approx(0.0, abs=1e-6) and gt["SRGR"] == pytest.approx(1.0)
    assert gt["Held-out kw err (cm)"] == pytest.approx(0.0)
    assert tiny["FGD"] > gt["FGD"] and tiny["SRGR"] < 1.0
    assert 0.0 <= tiny["BC"] <= 1.0 and tiny["Diversity"] >= 0.0
    assert not math.isnan(tiny["Held-out kw err (cm)"]), "test takes contain held-out synonyms"
    assert len(rows["tiny"]["per_take"]) >= 1


def test_evaluate_reports_bad_inputs(synth_small, synth_cache_dir, tmp_path, capsys):
    code = evaluate_main(["--data", str(synth_small), "--cache-dir", str(synth_cache_dir), "--fgd-model",
                          str(tmp_path / "missing.safetensors")])
    assert code == 1 and "missing.safetensors" in capsys.readouterr().err
