"""Training throughput (windows per second) of both stages, small and paper-size models.

    python benchmarks/training_throughput.py [--device cpu|cuda] [--steps 10] [--skip-paper]

Trains on a freshly generated SynthBEAT set (real espeak-ng speech) through the
real entry points (`train_stage1` / `train_stage2`): a few warm-up steps, then a
resumed run of `--steps` steps whose own clock (stored in the checkpoint's
metadata as `train_seconds`) gives the rate, so start-up, caching and export
are not counted. "small" is configs/synthbeat_small.toml (the demo model);
"paper" is the paper's setting (configs/beat_paper.toml: 512-wide VQ-VAEs,
batch 256 / 128, 12-layer fusion, HuBERT base with random weights, 300-d
word vectors). Writes benchmarks/results/training_<device>.{json,md}.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, machine, machine_line, markdown_table, random_hubert_base, write_result  # noqa: E402

from semges_core.data.dataset import index_dataset  # noqa: E402
from semges_core.formats.tensor_files import read_meta  # noqa: E402
from training.config import load_config  # noqa: E402
from training.stage1 import train_stage1  # noqa: E402
from training.stage2 import train_stage2  # noqa: E402


def dataset(tmp: Path, takes: int, take_seconds: float) -> Path:
    from training.synthbeat.generate import SynthConfig, generate

    return generate(SynthConfig(root=tmp / "synthbeat", seed=0, speakers=2, takes_per_speaker=takes,
                                take_seconds=take_seconds, fps_120_takes=0, workers=1, progress=False))


def random_vectors(tmp: Path, dim: int) -> Path:
    """A .npz word table of `dim`-d random vectors over the SynthBEAT lexicon (what FastText costs here)."""
    from semges_core.speech.word_vectors import TableVectors
    from training.synthbeat import lexicon

    words = sorted({w for ws in lexicon.training_words().values() for w in ws}
                   | {w for ws in lexicon.held_out_words().values() for w in ws})
    path = tmp / f"vectors{dim}.npz"
    TableVectors(words, np.random.default_rng(0).normal(size=(len(words), dim))).save_npz(path)
    return path


def _train_seconds(meta: dict) -> float:
    for key in ("train_seconds",):
        if key in meta:
            return float(meta[key])
    for v in meta.values():
        if isinstance(v, dict):
            found = _train_seconds(v)
            if found == found:
                return found
    return float("nan")


def measure(config_path: Path, overrides: list[str], steps: int, warmup: int) -> dict:
    """Windows per second of each stage: warm up, then time a resumed run of `steps` steps."""
    out = {}
    for name, train, result in (("stage 1", train_stage1, "stage1.safetensors"), ("stage 2", train_stage2, "model.safetensors")):
        config = load_config(config_path, overrides)
        section = config.stage1 if name == "stage 1" else config.stage2
        train(config, max_steps=warmup, progress=False)
        train(config, resume=True, max_steps=warmup + steps, progress=False)
        seconds = _train_seconds(read_meta(Path(section.out) / result))
        out[name] = {"batch_size": section.batch_size, "steps": steps, "seconds": seconds,
                     "windows_per_second": steps * section.batch_size / seconds}
        print(f"  {name}: {steps} steps of {section.batch_size} windows in {seconds:.2f} s, "
              f"{out[name]['windows_per_second']:.1f} windows/s", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--steps", type=int, default=10, help="timed steps per stage (paper size: a third of it)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--skip-paper", action="store_true")
    p.add_argument("--takes", type=int, default=5, help="SynthBEAT takes per speaker (2 speakers)")
    p.add_argument("--take-seconds", type=float, default=30.0)
    args = p.parse_args(argv)
    info = machine(args.device)
    rows = {}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        root = dataset(tmp, args.takes, args.take_seconds)
        # Stride 1 instead of 10: more windows from a small set (no epoch ends inside the timed steps);
        # it does not change the cost of a step.
        common = [f'device="{args.device}"', f'data.root="{root}"', f'data.cache_dir="{tmp / "cache"}"',
                  "data.stride=1", "data.workers=0", "checkpoint_every=100000", "log_every=1000000"]
        setups = {"small (demo model)": (REPO / "configs" / "synthbeat_small.toml", [], args.steps)}
        if not args.skip_paper:
            setups["paper"] = (REPO / "configs" / "beat_paper.toml", [
                f"data.speakers={sorted({t.id.speaker_id for t in index_dataset(root)})}", f'stage2.audio.hubert_path="{random_hubert_base(tmp / "hubert")}"',
                f'stage2.text.vectors="{random_vectors(tmp, 300)}"', "stage2.text.bundle_vocabulary=1000",
            ], max(1, args.steps // 3))
        for name, (config_path, extra, steps) in setups.items():
            print(f"{name}:", flush=True)
            out = tmp / name.split()[0]
            rows[name] = measure(config_path, common + extra + [f'stage1.out="{out}/stage1"', f'stage2.out="{out}/stage2"'],
                                 steps, args.warmup)
    table = [[name, stage, str(r["batch_size"]), str(r["steps"]), f"{r['seconds']:.2f}", f"{r['windows_per_second']:.1f}"]
             for name, stages in rows.items() for stage, r in stages.items()]
    text = (f"Training throughput on {machine_line(info)}; timed steps after {args.warmup} warm-up steps, "
            "optimiser step and checkpoint included, validation and export not.\n\n"
            + markdown_table(["model", "stage", "batch", "steps", "seconds", "windows/s"], table))
    print(text)
    write_result(f"training_{args.device.split(':')[0]}", {"machine": info, "results": rows}, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
