"""Real-time factor of inference, stage by stage, for a 60-second input.

    python benchmarks/inference_rtf.py [--device cpu] [--seconds 60]

Models: the bundled demo model, and a paper-size model (12 fusion layers of width
256, 256 x 512 codebooks, HuBERT base architecture) with random weights, which
costs the same to run as a trained one. Prints a table and writes
benchmarks/results/inference_rtf.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from semges_core.audio import load_audio, write_wav  # noqa: E402
from semges_core.audio_features import AudioFeatureConfig  # noqa: E402
from semges_core.bundle import default_bundle_path, load_bundle, save_bundle  # noqa: E402
from semges_core.bvh import write_bvh  # noqa: E402
from semges_core.inference import generate  # noqa: E402
from semges_core.model.generator import GeneratorConfig, SemGesGenerator  # noqa: E402
from semges_core.model.vqvae import MotionVQVAE, VQVAEConfig  # noqa: E402
from semges_core.motion_npz import save_motion_npz  # noqa: E402
from semges_core.normalization import NormStats  # noqa: E402
from semges_core.textgrid import Word, read_textgrid, words_from_textgrid  # noqa: E402
from semges_core.word_vectors import TableVectors  # noqa: E402


def long_input(seconds: float, tmp: Path) -> tuple[Path, list[Word]]:
    """The example speech repeated to `seconds`, with its words shifted along."""
    audio = load_audio(REPO / "examples" / "speech.wav")
    words = words_from_textgrid(read_textgrid(REPO / "examples" / "speech.TextGrid"))
    period = len(audio) / 16000
    reps = int(np.ceil(seconds / period))
    wav = np.tile(audio, reps)[: int(seconds * 16000)]
    all_words = [Word(w.start + k * period, w.end + k * period, w.text) for k in range(reps) for w in words
                 if w.end + k * period <= seconds]
    path = tmp / "input.wav"
    write_wav(path, wav, 16000)
    return path, all_words


def paper_bundle(tmp: Path) -> Path:
    """A paper-size bundle with random weights and a random HuBERT-base-sized model."""
    from transformers import HubertConfig, HubertModel

    torch.manual_seed(0)
    hubert_dir = tmp / "hubert-base-random"
    HubertModel(HubertConfig()).save_pretrained(hubert_dir)
    gen = SemGesGenerator(GeneratorConfig(audio_dim=768, text_dim=300, n_speakers=4),
                          MotionVQVAE(VQVAEConfig(input_dim=228)), MotionVQVAE(VQVAEConfig(input_dim=54)))
    words = TableVectors([f"w{i}" for i in range(1000)], np.random.default_rng(0).normal(size=(1000, 300)))
    path = tmp / "paper.safetensors"
    save_bundle(path, gen, AudioFeatureConfig(kind="hubert", hubert_path=str(hubert_dir)), words,
                NormStats(np.zeros(282), np.ones(282)), [{"id": i, "name": f"s{i}"} for i in (2, 4, 6, 8)], 15.0, 34)
    return path


def run(bundle_path: Path, wav: Path, words: list[Word], device: str, tmp: Path) -> dict[str, float]:
    t = time.perf_counter()
    bundle = load_bundle(bundle_path, device=device)
    load_model = time.perf_counter() - t
    t = time.perf_counter()
    audio = load_audio(wav)
    load_audio_s = time.perf_counter() - t
    result = generate(bundle, audio, words, fps=30.0, device=device)
    t = time.perf_counter()
    write_bvh(tmp / "out.bvh", result.motion)
    save_motion_npz(tmp / "out.npz", result.motion)
    export = time.perf_counter() - t
    stages = {"load model": load_model, "audio load": load_audio_s, **{k.replace("_", " "): v for k, v in result.timings.items()},
              "export": export}
    return stages


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cpu")
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--skip-paper", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    rows = {}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        wav, words = long_input(args.seconds, tmp)
        models = {"demo": default_bundle_path()}
        if not args.skip_paper:
            models["paper-size (random weights)"] = paper_bundle(tmp)
        for name, path in models.items():
            run(path, wav, words[:20], args.device, tmp)  # warm-up (first-call allocations)
            rows[name] = run(path, wav, words, args.device, tmp)
    machine = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}, device {args.device}"
    stages = list(next(iter(rows.values())))
    lines = [f"Inference on a {args.seconds:.0f}-second input ({machine}); seconds per stage, RTF = time / audio length "
             "(model loading excluded from the total).", "",
             "| model | " + " | ".join(stages) + " | total | RTF |", "|---" * (len(stages) + 3) + "|"]
    out = {"seconds": args.seconds, "machine": machine, "models": {}}
    for name, st in rows.items():
        total = sum(v for k, v in st.items() if k != "load model")
        out["models"][name] = {"stages": st, "total": total, "rtf": total / args.seconds}
        lines.append(f"| {name} | " + " | ".join(f"{st[s]:.2f}" for s in stages) + f" | {total:.2f} | {total / args.seconds:.3f} |")
    text = "\n".join(lines)
    print(text)
    res = REPO / "benchmarks" / "results"
    res.mkdir(parents=True, exist_ok=True)
    (res / "inference_rtf.json").write_text(json.dumps(out, indent=2) + "\n")
    (res / "inference_rtf.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
