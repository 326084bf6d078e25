"""The paper's ablation rows, trained on one dataset with one shared stage 1.

    python -m training.ablations --config configs/synthbeat_small.toml --out runs/ablations

trains stage 2 four times (full model, without semantic coherence, without
semantic-relevance weighting, and "VQ-VAE only" with both off) on top of the
config's stage-1 priors (trained first if missing), and leaves one bundle per row
in `<out>/<row>/model.safetensors`. Rows whose bundle exists are skipped.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from semges_core.errors import SemgesError

from .config import load_config

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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="configs/synthbeat_small.toml")
    p.add_argument("--out", default="runs/ablations")
    p.add_argument("--rows", default=",".join(ROWS), help="comma-separated subset of " + ", ".join(ROWS))
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    a = p.parse_args(argv)
    rows = [r for r in a.rows.split(",") if r]
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        p.error(f"unknown rows {unknown}")
    try:
        for row, bundle in train_rows(a.config, Path(a.out), rows, a.set).items():
            print(f"{row}: {bundle}")
    except SemgesError as e:
        print(f"ablations: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
