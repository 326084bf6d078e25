"""The paper's ablation rows, trained on one dataset with one shared stage 1.

    python -m training.ablations --config configs/synthbeat_small.toml --out runs/ablations [--seeds 3]

trains stage 2 once per row (full model, without semantic coherence, without
semantic-relevance weighting, "VQ-VAE only" with both off, and one row of our own: the
coherence loss on the words' features without the positional encoding) on top of the
config's stage-1 priors (trained first if missing), leaving one bundle per row in
`<out>/<row>/model.safetensors` (rows whose bundle exists are skipped). Then it
trains the FGD motion autoencoder on the training split if missing, scores every
row and the ground truth on the test split (training.evaluate), and writes the
table to benchmarks/results/ablations.md and .json.

One run per row cannot tell a difference between rows from the spread between
runs, so `--seeds N` trains every row N times with stage-2 seeds 0..N-1 (the
shared stage 1 stays one run: the ablated losses are all stage 2's), in
`<out>/<row>/seed<k>/`, and reports each metric as mean +- standard deviation
over the seeds (sample std, ddof 1) beside the per-seed numbers in the .json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from semges_core.errors import SemgesError

from semges_core.fileio import atomic_write

from .config import load_config

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
LABELS = {"full": "SemGes (full)", "without_coherence": "w/o semantic coherence",
          "without_relevance": "w/o semantic relevance", "vqvae_only": "VQ-VAE only",
          "coherence_words_only": "coherence on words only"}

ROWS: dict[str, list[str]] = {
    "full": [],
    "without_coherence": ["stage2.loss.coherence=false"],
    "without_relevance": ["stage2.loss.relevance=false"],
    "vqvae_only": ["stage2.loss.coherence=false", "stage2.loss.relevance=false"],
    # Not one of the paper's rows: the full model with the coherence loss scoring the text
    # features without the positional encoding (README: does position leak into the target?).
    "coherence_words_only": ["stage2.model.coherence_positions=false"],
}


def run_dir(out: Path, row: str, seed: int | None) -> Path:
    """Where a row's stage 2 trains: `<out>/<row>` for a single run, `<out>/<row>/seed<k>` with --seeds."""
    return out / row if seed is None else out / row / f"seed{seed}"


def train_rows(config_path: str, out: Path, rows: list[str], overrides: list[str],
               seeds: list[int] | None = None) -> dict[tuple[str, int | None], Path]:
    """Train every (row, seed) whose bundle is missing; returns the bundle of each."""
    from .stage1 import train_stage1
    from .stage2 import priors_path, train_stage2

    base = load_config(config_path, overrides)
    priors = priors_path(base)
    if not priors.exists():
        train_stage1(base)
    bundles = {}
    for seed in seeds if seeds is not None else [None]:
        for row in rows:
            where = run_dir(out, row, seed)
            bundle = where / "model.safetensors"
            if not bundle.exists():
                t0 = time.perf_counter()
                extra = [] if seed is None else [f"seed={seed}"]
                cfg = load_config(config_path, overrides + ROWS[row] + extra
                                  + [f'stage2.out="{where}"', f'stage2.priors="{priors}"'])
                train_stage2(cfg)
                print(f"{row}{'' if seed is None else f' seed {seed}'}: trained in {time.perf_counter() - t0:.0f} s")
            bundles[(row, seed)] = bundle
    return bundles


def seed_summary(rows) -> dict[str, dict[str, tuple[float, float, int]]]:
    """Per ablation label, per metric: (mean, sample std, number of seeds) over rows named "LABEL [seed k]"."""
    import numpy as np

    groups: dict[str, list] = {}
    for r in rows:
        label = r.name.split(" [seed ")[0]
        groups.setdefault(label, []).append(r)
    out = {}
    for label, rs in groups.items():
        out[label] = {}
        for metric in rs[0].metrics:
            v = np.array([r.metrics[metric] for r in rs], dtype=np.float64)
            std = float(v.std(ddof=1)) if len(v) > 1 else float("nan")
            out[label][metric] = (float(v.mean()), std, len(v))
    return out


def seed_table(summary: dict[str, dict[str, tuple[float, float, int]]], columns) -> str:
    lines = ["| Method | seeds | " + " | ".join(columns) + " |", "|---" * (len(columns) + 2) + "|"]
    for label, metrics in summary.items():
        n = next(iter(metrics.values()))[2]
        cells = []
        for c in columns:
            mean, std, _ = metrics[c]
            digits = 1 if c == "Diversity" else 3
            cells.append("-" if mean != mean else (f"{mean:.{digits}f}" if std != std else f"{mean:.{digits}f} ± {std:.{digits}f}"))
        lines.append(f"| {label} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def evaluate_rows(config_path: str, bundles: dict[tuple[str, int | None], Path], fgd_path: Path,
                  overrides: list[str]) -> str:
    from .evaluate import COLUMNS, held_out_word_table, run, table
    from .fgd_autoencoder import train_fgd_autoencoder

    config = load_config(config_path, overrides)
    if not fgd_path.exists():
        train_fgd_autoencoder(config.data.cache_dir, fgd_path)
    t0 = time.perf_counter()
    names = {(LABELS[row] if seed is None else f"{LABELS[row]} [seed {seed}]"): path
             for (row, seed), path in bundles.items()}
    rows, held = run(Path(config.data.root), Path(config.data.cache_dir), fgd_path, names, ground_truth=True)
    text = table(rows, held)
    summary = None
    if any(seed is not None for _, seed in bundles):
        summary = seed_summary(rows)
        text = (seed_table(summary, COLUMNS if held else COLUMNS[:4])
                + "\n\nPer seed:\n\n" + text)
    if held:
        text += "\n\nHeld-out synonyms, mean wrist error (cm) per word:\n\n" + held_out_word_table(rows)
    RESULTS.mkdir(parents=True, exist_ok=True)
    with atomic_write(RESULTS / "ablations.md") as f:
        f.write(f"Ablations on {config.data.root} test split ({config_path}); evaluated in "
                f"{time.perf_counter() - t0:.0f} s.\n\n{text}\n")
    with atomic_write(RESULTS / "ablations.json") as f:
        json.dump({"config": config_path,
                   "summary": {label: {m: {"mean": v[0], "std": v[1], "seeds": v[2]} for m, v in ms.items()}
                               for label, ms in (summary or {}).items()},
                   "rows": [{"name": r.name, "metrics": r.metrics, "per_take": r.per_take,
                             "held_out_words": r.held_out_words} for r in rows]},
                  f, indent=2)
    return text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="configs/synthbeat_small.toml")
    p.add_argument("--out", default="runs/ablations")
    p.add_argument("--rows", default=",".join(ROWS), help="comma-separated subset of " + ", ".join(ROWS))
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--fgd-model", default="runs/fgd_ae.safetensors", help="trained here if missing")
    p.add_argument("--no-evaluate", action="store_true")
    p.add_argument("--seeds", type=int, default=None, metavar="N",
                   help="train every row with stage-2 seeds 0..N-1 and report mean +- std (N >= 2)")
    a = p.parse_args(argv)
    if a.seeds is not None and a.seeds < 2:
        p.error("--seeds needs at least 2 seeds to give a spread")
    rows = [r for r in a.rows.split(",") if r]
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        p.error(f"unknown rows {unknown}")
    try:
        seeds = list(range(a.seeds)) if a.seeds is not None else None
        bundles = train_rows(a.config, Path(a.out), rows, a.set, seeds)
        if not a.no_evaluate:
            print(evaluate_rows(a.config, bundles, Path(a.fgd_model), a.set))
    except SemgesError as e:
        print(f"ablations: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
