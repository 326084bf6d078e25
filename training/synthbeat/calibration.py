"""Does SynthBEAT move like a person? Its ground truth measured against the real speaker.

    python -m training.synthbeat.calibration [--root data/synthbeat] [--speakers 4]
        [--takes-per-speaker 2] [--take-seconds 20] [--seed 0]

SynthBEAT is the only motion the demo model learns from, so its statistics bound the
model's. This prints `semges_core.evaluation.human_stats`'s table for a SynthBEAT set:
an existing one (`--root`, every take's BVH), or else a small one written to a
temporary folder, per speaker and for all takes pooled (`pooled_statistics`: frames
of all takes together, no jump between takes counted), against the real speaker of
issue 13. tests/test_synthbeat_stats.py asserts the ranges on a small set.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Sequence

from semges_core.evaluation.human_stats import REAL_SPEAKER, STATISTICS, compare, pooled_statistics
from semges_core.formats.bvh import read_bvh

from .generate import SynthConfig, generate, load_manifest


def dataset_statistics(root: Path, splits: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    """Per speaker id (as a string) and "all": the statistics of their takes pooled."""
    per: dict[str, list] = {}
    for take in load_manifest(root)["takes"]:
        if splits is not None and take["split"] not in splits:
            continue
        per.setdefault(str(take["speaker_id"]), []).append(
            read_bvh(root / str(take["speaker_id"]) / f"{take['stem']}.bvh"))
    out = {k: pooled_statistics(v) for k, v in sorted(per.items())}
    out["all"] = pooled_statistics([m for v in per.values() for m in v])
    return out


def within_ranges(stats: dict[str, float]) -> dict[str, bool]:
    """Each of the issue's rows: the at-rest share <= 0.25, every other row within [0.5, 2]x the real speaker."""
    keys = {s.key for s in STATISTICS}
    return {row["key"]: row["in_range"] for row in compare(stats, REAL_SPEAKER) if row["key"] in keys}


def format_rows(columns: dict[str, dict[str, float]]) -> str:
    """A markdown table: the real speaker, then each column with its ratio to the real speaker."""
    head = "| statistic | real speaker | " + " | ".join(columns) + " |"
    lines = [head, "|" + "---|" * (2 + len(columns))]
    for s in STATISTICS:
        cells = [f"{REAL_SPEAKER[s.key]:.2f}"]
        for stats in columns.values():
            v = stats[s.key]
            if s.kind == "share":
                cells.append(f"{v:.2f}" + ("" if v <= 0.25 else " !"))
            else:
                r = v / REAL_SPEAKER[s.key]
                cells.append(f"{v:.2f} ({r:.2f}x)" + ("" if 0.5 <= r <= 2.0 else " !"))
        lines.append(f"| {s.key} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.synthbeat.calibration", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", type=Path, default=None, help="an existing SynthBEAT set (else a small one is written)")
    p.add_argument("--speakers", type=int, default=4)
    p.add_argument("--takes-per-speaker", type=int, default=2)
    p.add_argument("--take-seconds", type=float, default=20.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1)
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = a.root
        if root is None:
            root = generate(SynthConfig(root=Path(tmp) / "synthbeat", seed=a.seed, speakers=a.speakers,
                                        takes_per_speaker=a.takes_per_speaker, take_seconds=a.take_seconds,
                                        fps=30.0, fps_120_takes=0, workers=a.workers, progress=False))
        stats = dataset_statistics(root)
    print(format_rows({f"speaker {k}" if k != "all" else "all takes": v for k, v in stats.items()}))
    bad = [k for k, ok in within_ranges(stats["all"]).items() if not ok]
    print("all rows within range" if not bad else f"out of range: {', '.join(bad)}")
    return 0 if not bad else 1


if __name__ == "__main__":
    sys.exit(main())
