"""Score model bundles on a dataset's test split the way the BEAT baselines do.

    python -m training.evaluate --data data/synthbeat --cache-dir data/cache/synthbeat \
        --fgd-model runs/fgd_ae.safetensors --bundle semges_core/assets/demo_model.safetensors \
        [--bundle NAME=PATH ...] [--ground-truth] [--json results.json]

For every test take it generates motion from the take's audio and TextGrid with the
take's speaker, then computes (conventions in semges_core/evaluation/metrics.py):
- FGD: Frechet distance of motion-autoencoder features, generated vs real test windows;
- BC: beat consistency, right-wrist velocity minima against audio onsets, sigma 0.3 s;
- Diversity: BEAT's L1 deviation from the mean pose (141 Euler degrees);
- SRGR: semantic-weighted rate of joints within 4 degrees, normalised so a perfect match is 1;
- Held-out kw err: for SynthBEAT, mean distance (cm) of both wrists to the real motion
  during held-out keyword synonyms (words the model never saw in training); lower is better.
  It averages occurrences, so frequent words weigh more; a third table gives each held-out
  word's own mean and count (and the JSON holds them), which says which words a model
  gets wrong rather than only how much.
The ground-truth row scores the real motion against itself (FGD 0 and SRGR 1 by construction).

A second table gives the human-likeness statistics (semges_core/evaluation/human_stats.py,
docs/motion-statistics.md) of every row beside the real speaker measured in issue 13: FGD
and BC only say how close a model is to its training data, these say whether that data
and the model move like a person (arms at rest, joint speeds, elbow flexion, balance).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from semges_core.bundle import load_bundle
from semges_core.data.dataset import Cache, DatasetConfig, index_dataset, load_cache
from semges_core.errors import SemgesError
from semges_core.fileio import atomic_write
from semges_core.inference import generate
from semges_core.evaluation.human_stats import REAL_SPEAKER, STATS_FPS, compare, pooled_statistics
from semges_core.evaluation.metrics import beat_consistency, fgd, joint_positions, l1_diversity, srgr
from semges_core.motion.clip import Motion
from semges_core.model.motion_autoencoder import load_motion_autoencoder
from semges_core.formats.textgrid import Word, read_textgrid, words_from_textgrid

COLUMNS = ("FGD", "BC", "Diversity", "SRGR", "Held-out kw err (cm)")


@dataclass
class TestTake:
    stem: str
    speaker_id: int
    audio: np.ndarray        # 16 kHz, cut to the motion's duration
    words: list[Word]
    euler: np.ndarray        # (T, 141) real motion
    sem_score: np.ndarray    # (T,)


@dataclass
class RowResult:
    name: str
    metrics: dict[str, float]
    per_take: dict[str, dict[str, float]] = field(default_factory=dict)
    seconds: float = 0.0
    human: dict[str, float] = field(default_factory=dict)  # human_stats keys, pooled over the takes
    held_out_words: dict[str, dict[str, float]] = field(default_factory=dict)  # word -> {"err_cm", "count"}


def test_takes(root: Path, cache: Cache) -> list[TestTake]:
    sources = {t.stem: t for t in index_dataset(root, cache.config.speakers)}
    takes = []
    for k, entry in enumerate(cache.takes):
        if entry["split"] != "test":
            continue
        src = sources[entry["stem"]]
        words = words_from_textgrid(read_textgrid(src.textgrid), path=src.textgrid)
        takes.append(TestTake(entry["stem"], int(entry["speaker_id"]), np.array(cache.take_array(k, "audio")),
                              words, np.array(cache.take_array(k, "euler")), np.array(cache.take_array(k, "sem_score"))))
    if not takes:
        raise SemgesError(f"{root}: the dataset has no test takes")
    return takes


def held_out_words(root: Path) -> set[str]:
    manifest = root / "synthbeat.json"
    if not manifest.exists():
        return set()
    families = json.loads(manifest.read_text())["held_out_words"]
    return {w for ws in families.values() for w in ws}


def held_out_errors_by_word(gen: np.ndarray, real: np.ndarray, words: list[Word], held_out: set[str],
                            fps: float) -> list[tuple[str, float]]:
    """(word, mean wrist distance in cm while it is spoken) for each held-out word occurrence."""
    if not held_out:
        return []
    g = joint_positions(gen, ("RHand", "LHand"), fps)
    r = joint_positions(real, ("RHand", "LHand"), fps)
    out = []
    for w in words:
        if w.text.lower() in held_out:
            a, b = int(w.start * fps), max(int(w.start * fps) + 1, int(np.ceil(w.end * fps)))
            b = min(b, len(g))
            if a < b:
                out.append((w.text.lower(), float(np.linalg.norm(g[a:b] - r[a:b], axis=-1).mean())))
    return out


def score(name: str, takes: list[TestTake], generated: list[np.ndarray], fgd_model, fps: float,
          held_out: set[str]) -> RowResult:
    per_take: dict[str, dict[str, float]] = {}
    bcs, errs = [], []
    by_word: dict[str, list[float]] = {}
    for take, gen in zip(takes, generated):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            bc = beat_consistency(gen, fps, take.audio, 16000)
            s = srgr(gen, take.euler, take.sem_score)
        e = []
        for word, err in held_out_errors_by_word(gen, take.euler, take.words, held_out, fps):
            by_word.setdefault(word, []).append(err)
            e.append(err)
        errs += e
        bcs.append(bc)
        per_take[take.stem] = {"BC": bc, "Diversity": l1_diversity(gen), "SRGR": s,
                               "FGD": fgd(fgd_model, [gen], [take.euler]) if len(gen) >= 68 else float("nan"),
                               "Held-out kw err (cm)": float(np.mean(e)) if e else float("nan")}
    all_gen, all_real = np.concatenate(generated), np.concatenate([t.euler for t in takes])
    weights = np.concatenate([t.sem_score for t in takes])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        metrics = {
            "FGD": fgd(fgd_model, generated, [t.euler for t in takes]),
            "BC": float(np.nanmean(bcs)),
            "Diversity": l1_diversity(generated),
            "SRGR": srgr(all_gen, all_real, weights),
            "Held-out kw err (cm)": float(np.mean(errs)) if errs else float("nan"),
        }
    words = {w: {"err_cm": float(np.mean(v)), "count": len(v)} for w, v in sorted(by_word.items())}
    return RowResult(name, metrics, per_take, human=human_statistics(generated, fps), held_out_words=words)


def human_statistics(eulers: list[np.ndarray], fps: float) -> dict[str, float]:
    """The human-likeness statistics of (T, 141) pose vectors, pooled over takes (rest pose elsewhere).

    The 141-value vector holds Spine, Neck and Neck1 of the torso and head chains; the
    chains compose to the same rotations with the other joints at rest, so nothing is lost.
    Takes under 3 frames at 15 fps are left out (they have no speed to measure).
    """
    motions = [Motion.from_upper_body_euler(e, fps) for e in eulers]
    motions = [m for m in motions if m.resample(STATS_FPS).n_frames >= 3]
    return pooled_statistics(motions) if motions else {}


def evaluate_bundle(name: str, path: Path, takes: list[TestTake], fgd_model, fps: float, held_out: set[str],
                    device: str = "cpu") -> RowResult:
    t0 = time.perf_counter()
    bundle = load_bundle(path)
    if abs(bundle.fps - fps) > 1e-6:
        raise SemgesError(f"{path}: the model runs at {bundle.fps} fps, the dataset cache at {fps}")
    known = {s["id"] for s in bundle.speakers}
    generated = []
    for take in takes:
        speaker = take.speaker_id if take.speaker_id in known else None
        motion = generate(bundle, take.audio, take.words, speaker, fps=fps, device=device).motion
        gen = motion.upper_body_euler()
        n = min(len(gen), len(take.euler))
        if n < len(take.euler):
            gen = np.concatenate([gen, np.repeat(gen[-1:], len(take.euler) - n, 0)])
        generated.append(gen[: len(take.euler)])
    row = score(name, takes, generated, fgd_model, fps, held_out)
    row.seconds = time.perf_counter() - t0
    return row


def table(rows: list[RowResult], with_held_out: bool) -> str:
    cols = COLUMNS if with_held_out else COLUMNS[:4]
    arrows = {"FGD": "lower better", "BC": "higher", "Diversity": "higher", "SRGR": "higher",
              "Held-out kw err (cm)": "lower better"}
    lines = ["| Method | " + " | ".join(f"{c} ({arrows[c]})" for c in cols) + " |",
             "|---" * (len(cols) + 1) + "|"]
    for r in rows:
        cells = []
        for c in cols:
            v = r.metrics[c]
            cells.append("-" if np.isnan(v) else (f"{v:.3f}" if c not in ("Diversity",) else f"{v:.1f}"))
        lines.append(f"| {r.name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def human_table(rows: list[RowResult]) -> str:
    """The human-likeness statistics of every row beside the real speaker, as in issue 13's table."""
    def num(v: float, digits: int = 0) -> str:
        return "-" if not np.isfinite(v) else f"{v:.{digits}f}"

    lines = ["| Method | both wrists at rest | upper-arm / forearm / hand (deg/s) | left / right activity | "
             "elbow flexion median R / L (deg) | elbow flexion p95 (deg) | fingers (deg/s) | "
             "spine / neck / head (deg/s) | human-like (ratio in [0.5, 2]) |", "|---" * 9 + "|"]
    for name, h in [("Real speaker (issue 13)", REAL_SPEAKER)] + [(r.name, r.human) for r in rows if r.human]:
        checks = compare(h, REAL_SPEAKER)
        lines.append(
            f"| {name} | {num(h['wrists_at_rest_share'], 2)} | "
            f"{num(h['upper_arm_speed'])} / {num(h['forearm_speed'])} / {num(h['hand_speed'])} | "
            f"{num(h['left_right_activity'], 2)} | {num(h['elbow_flexion_median_right'])} / "
            f"{num(h['elbow_flexion_median_left'])} | {num(h['elbow_flexion_p95'])} | {num(h['finger_speed'], 1)} | "
            f"{num(h['spine_speed'], 1)} / {num(h['neck_speed'], 1)} / {num(h['head_speed'], 1)} | "
            f"{sum(c['in_range'] for c in checks)} of {len(checks)} |")
    return "\n".join(lines)


def held_out_word_table(rows: list[RowResult]) -> str:
    """Each held-out word's mean wrist error (cm) per row, with how often the test split says it."""
    words = sorted({w for r in rows for w in r.held_out_words})
    if not words:
        return ""
    counts = {w: next(r.held_out_words[w]["count"] for r in rows if w in r.held_out_words) for w in words}
    lines = ["| Method | " + " | ".join(f"{w} ({counts[w]}x)" for w in words) + " | mean of words |",
             "|---" * (len(words) + 2) + "|"]
    for r in rows:
        errs = [r.held_out_words[w]["err_cm"] if w in r.held_out_words else float("nan") for w in words]
        cells = ["-" if e != e else f"{e:.1f}" for e in errs]
        lines.append(f"| {r.name} | " + " | ".join(cells) + f" | {np.nanmean(errs):.2f} |")
    return "\n".join(lines)


def run(data: Path, cache_dir: Path, fgd_path: Path, bundles: dict[str, Path], ground_truth: bool,
        device: str = "cpu") -> tuple[list[RowResult], bool]:
    cache = load_cache(data, cache_dir, DatasetConfig())
    takes = test_takes(data, cache)
    fgd_model, _ = load_motion_autoencoder(fgd_path)
    held = held_out_words(data)
    rows = []
    if ground_truth:
        rows.append(score("Ground truth", takes, [t.euler for t in takes], fgd_model, cache.config.fps, held))
    for name, path in bundles.items():
        rows.append(evaluate_bundle(name, path, takes, fgd_model, cache.config.fps, held, device))
    return rows, bool(held)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="dataset root (BEAT or SynthBEAT)")
    p.add_argument("--cache-dir", required=True)
    p.add_argument("--fgd-model", required=True, help="motion autoencoder (python -m training.fgd_autoencoder)")
    p.add_argument("--bundle", action="append", default=[], metavar="[NAME=]PATH", help="a model bundle to score")
    p.add_argument("--ground-truth", action="store_true", help="add the real motion scored against itself")
    p.add_argument("--json", help="write every number (and per-take results) here")
    p.add_argument("--device", default="cpu")
    a = p.parse_args(argv)
    bundles = {}
    for item in a.bundle:
        name, sep, path = item.partition("=")
        bundles[name if sep else Path(item).stem] = Path(path if sep else item)
    try:
        rows, held = run(Path(a.data), Path(a.cache_dir), Path(a.fgd_model), bundles, a.ground_truth, a.device)
    except SemgesError as e:
        print(f"evaluate: error: {e}", file=sys.stderr)
        return 1
    print(table(rows, held))
    print()
    print("Human-likeness (docs/motion-statistics.md; the real speaker is issue 13's measurement):")
    print(human_table(rows))
    if held:
        print()
        print("Held-out synonyms, mean wrist error (cm) per word (count = occurrences in the test split):")
        print(held_out_word_table(rows))
    if a.json:
        with atomic_write(a.json) as f:
            json.dump({"rows": [{"name": r.name, "metrics": r.metrics, "per_take": r.per_take, "seconds": r.seconds,
                                 "human": r.human, "held_out_words": r.held_out_words} for r in rows],
                       "human_reference": REAL_SPEAKER}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
