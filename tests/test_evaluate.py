"""`training.evaluate` on a small SynthBEAT: every metric, the ground-truth row, the table and JSON."""

from __future__ import annotations

import json
import math

import pytest

from semges_core.evaluation.human_stats import REAL_SPEAKER, pooled_statistics
from semges_core.motion.clip import Motion
from training.evaluate import human_statistics, main as evaluate_main
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
    # Human-likeness beside FGD/BC: a second table with the real speaker, and every value in the JSON.
    assert "| Real speaker (issue 13) |" in text and text.count("| Ground truth |") == 3  # + per word
    assert "| tiny |" in text.split("Human-likeness")[1] and "12 of 12" in text
    assert set(gt_h := rows["Ground truth"]["human"]) >= set(REAL_SPEAKER) and set(rows["tiny"]["human"]) == set(gt_h)
    assert 0.0 <= gt_h["wrists_at_rest_share"] <= 1.0 and gt_h["forearm_speed"] > 0 and gt_h["spine_speed"] >= 0
    assert json.loads(out.read_text())["human_reference"] == REAL_SPEAKER
    # Held-out synonyms word by word: each word's mean and count; occurrences weighted by
    # their counts give back the table's column.
    words = rows["tiny"]["held_out_words"]
    assert words and set(words) == set(rows["Ground truth"]["held_out_words"])
    assert all(v["err_cm"] == pytest.approx(0.0) for v in rows["Ground truth"]["held_out_words"].values())
    weighted = sum(v["err_cm"] * v["count"] for v in words.values()) / sum(v["count"] for v in words.values())
    assert weighted == pytest.approx(tiny["Held-out kw err (cm)"])
    per_word = text.split("per word")[1]
    assert all(f"{w} ({v['count']}x)" in per_word for w, v in words.items()) and "| tiny |" in per_word


def test_evaluate_reports_bad_inputs(synth_small, synth_cache_dir, tmp_path, capsys):
    code = evaluate_main(["--data", str(synth_small), "--cache-dir", str(synth_cache_dir), "--fgd-model",
                          str(tmp_path / "missing.safetensors")])
    assert code == 1 and "missing.safetensors" in capsys.readouterr().err


def test_human_statistics_of_pose_vectors_match_the_motions(synth_small):
    """The 141-value Euler vectors the evaluation holds give the statistics of the takes' own motion."""
    from semges_core.formats.bvh import read_bvh

    takes = [read_bvh(p).resample(15.0) for p in sorted(synth_small.rglob("*.bvh"))[:2]]
    from_vectors = human_statistics([m.upper_body_euler() for m in takes], 15.0)
    # Joints outside the vector (Spine1..3, Head) are left at rest by the vector; put them at rest here too.
    upper = [Motion.from_upper_body_euler(m.upper_body_euler(), 15.0) for m in takes]
    assert from_vectors == pytest.approx(pooled_statistics(upper), rel=1e-4, abs=1e-3)
    assert from_vectors["forearm_speed"] == pytest.approx(pooled_statistics(takes)["forearm_speed"], rel=1e-3)
