"""Ablation rows over several seeds: mean and sample spread per row, and the table that shows them."""

from __future__ import annotations

import math
from pathlib import Path

from training.ablations import run_dir, seed_summary, seed_table
from training.evaluate import COLUMNS, RowResult


def _row(name: str, fgd: float, held: float) -> RowResult:
    return RowResult(name, {"FGD": fgd, "BC": 0.7, "Diversity": 500.0, "SRGR": 0.1, "Held-out kw err (cm)": held})


def test_seeds_are_grouped_per_row_with_mean_and_sample_std(tmp_path):
    rows = [_row("Ground truth", 0.0, 0.0)] + [
        _row(f"SemGes (full) [seed {k}]", fgd, held) for k, (fgd, held) in enumerate([(10, 18), (12, 19), (14, 20)])
    ] + [_row(f"VQ-VAE only [seed {k}]", 20.0, 25.0) for k in range(3)]
    summary = seed_summary(rows)
    assert set(summary) == {"Ground truth", "SemGes (full)", "VQ-VAE only"}
    mean, std, n = summary["SemGes (full)"]["FGD"]
    assert (mean, std, n) == (12.0, 2.0, 3)  # sample std (ddof 1) of 10, 12, 14
    assert summary["VQ-VAE only"]["Held-out kw err (cm)"][1] == 0.0
    assert math.isnan(summary["Ground truth"]["FGD"][1]), "one run has no spread"
    table = seed_table(summary, COLUMNS)
    assert "| SemGes (full) | 3 | 12.000 ± 2.000 |" in table
    assert "| Ground truth | 1 | 0.000 |" in table
    assert run_dir(tmp_path, "full", 2) == tmp_path / "full" / "seed2" and run_dir(tmp_path, "full", None) == tmp_path / "full"


def test_every_row_is_a_valid_configuration_that_differs_as_labelled():
    from training.ablations import LABELS, ROWS
    from training.config import load_config

    assert set(ROWS) == set(LABELS)
    path = Path(__file__).resolve().parents[1] / "configs" / "synthbeat_small.toml"
    configs = {row: load_config(str(path), overrides) for row, overrides in ROWS.items()}
    full = configs["full"]
    assert full.stage2.loss.coherence and full.stage2.loss.relevance and full.stage2.model.coherence_positions
    assert not configs["without_coherence"].stage2.loss.coherence
    assert not configs["without_relevance"].stage2.loss.relevance
    assert not configs["vqvae_only"].stage2.loss.coherence and not configs["vqvae_only"].stage2.loss.relevance
    words_only = configs["coherence_words_only"]
    assert words_only.stage2.loss == full.stage2.loss and not words_only.stage2.model.coherence_positions
