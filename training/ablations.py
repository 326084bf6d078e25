"""The paper's ablation rows, trained on one dataset with one shared stage 1.

    python -m training.ablations --config configs/synthbeat_small.toml --out runs/ablations

trains stage 2 four times (full model, without semantic coherence, without
semantic-relevance weighting, and "VQ-VAE only" with both off) on top of the
config's stage-1 priors (trained first if missing), leaving one bundle per row in
`<out>/<row>/model.safetensors` (rows whose bundle exists are skipped). Then it
trains the FGD motion autoencoder on the training split if missing, scores every
row and the ground truth on the test split (training.evaluate), and writes the
table to benchmarks/results/ablations.md and .json.
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
          "without_relevance": "w/o semantic relevance", "vqvae_only": "VQ-VAE only"}

ROWS: dict[str, list[str]] = {
    "full": [],
    "without_coherence": ["stage2.loss.coherence=false"],
    "without_relevance": ["stage2.loss.relevance=false"],
    "vqvae_only": ["stage2.loss.coherence=false", "stage2.loss.relevance=false"],
}


def train_rows(config_path: str, out: Path, rows: list[str], overrides: list[str]) -> dict[str, Path]:
    from .stage1 import train_stage1
    from .stage2 import priors_path, train_stage2

    base = load_config(config_path, overrides)
    priors = priors_path(base)
    if not priors.exists():
        train_stage1(base)
    bundles = {}
    for row in rows:
        bundle = out / row / "model.safetensors"
        if not bundle.exists():
            t0 = time.perf_counter()
            cfg = load_config(config_path, overrides + ROWS[row] + [f'stage2.out="{out / row}"', f'stage2.priors="{priors}"'])
            train_stage2(cfg)
            print(f"{row}: trained in {time.perf_counter() - t0:.0f} s")
        bundles[row] = bundle
    return bundles


def evaluate_rows(config_path: str, bundles: dict[str, Path], fgd_path: Path, overrides: list[str]) -> str:
    from .evaluate import run, table
    from .fgd_autoencoder import train_fgd_autoencoder

    config = load_config(config_path, overrides)
    if not fgd_path.exists():
        train_fgd_autoencoder(config.data.cache_dir, fgd_path)
    t0 = time.perf_counter()
    rows, held = run(Path(config.data.root), Path(config.data.cache_dir), fgd_path,
                     {LABELS[k]: v for k, v in bundles.items()}, ground_truth=True)
    text = table(rows, held)
    RESULTS.mkdir(parents=True, exist_ok=True)
    with atomic_write(RESULTS / "ablations.md") as f:
        f.write(f"Ablations on {config.data.root} test split ({config_path}); evaluated in "
                f"{time.perf_counter() - t0:.0f} s.\n\n{text}\n")
    with atomic_write(RESULTS / "ablations.json") as f:
        json.dump({"config": config_path, "rows": [{"name": r.name, "metrics": r.metrics, "per_take": r.per_take}
                                                   for r in rows]}, f, indent=2)
    return text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="configs/synthbeat_small.toml")
    p.add_argument("--out", default="runs/ablations")
    p.add_argument("--rows", default=",".join(ROWS), help="comma-separated subset of " + ", ".join(ROWS))
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--fgd-model", default="runs/fgd_ae.safetensors", help="trained here if missing")
    p.add_argument("--no-evaluate", action="store_true")
    a = p.parse_args(argv)
    rows = [r for r in a.rows.split(",") if r]
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        p.error(f"unknown rows {unknown}")
    try:
        bundles = train_rows(a.config, Path(a.out), rows, a.set)
        if not a.no_evaluate:
            print(evaluate_rows(a.config, bundles, Path(a.fgd_model), a.set))
    except SemgesError as e:
        print(f"ablations: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
