"""Real-time factor and peak memory of inference, stage by stage, for 60-second and 10-minute inputs.

    python benchmarks/inference_rtf.py [--device cpu|cuda] [--seconds 60 600] [--skip-paper]

Models: the bundled demo model, and a paper-size model (12 fusion layers of width
256, 256 x 512 codebooks, HuBERT base architecture) with random weights, which
costs the same to run as a trained one. Each run goes from files on disk to the
BVH and npz written, as `semges generate` does. Peak memory is the process's
peak resident set during that run (counter reset before it), and on CUDA the
peak allocated device memory. Writes benchmarks/results/inference_<device>.{json,md}.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (long_input, machine, machine_line, markdown_table, paper_bundle, peak_rss_mib,  # noqa: E402
                    reset_peak_rss, rss_mib, write_result)

from semges_core.speech.audio import load_audio  # noqa: E402
from semges_core.bundle import default_bundle_path, load_bundle  # noqa: E402
from semges_core.formats.bvh import write_bvh  # noqa: E402
from semges_core.inference import generate  # noqa: E402
from semges_core.formats.npz import save_motion_npz  # noqa: E402

STAGES = ("load model", "audio load", "audio features", "text", "generator", "decode", "export")


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run(bundle_path: Path, wav: Path, words, device: str, tmp: Path) -> dict:
    """One generation from files to files; seconds per stage and peak memory."""
    reset_peak_rss()
    base_rss = rss_mib()
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    bundle = load_bundle(bundle_path, device=device)
    _sync(device)
    stages = {"load model": time.perf_counter() - t}
    t = time.perf_counter()
    audio = load_audio(wav)
    stages["audio load"] = time.perf_counter() - t
    result = generate(bundle, audio, words, fps=30.0, device=device)
    _sync(device)
    stages.update({k.replace("_", " "): v for k, v in result.timings.items()})
    t = time.perf_counter()
    write_bvh(tmp / "out.bvh", result.motion)
    save_motion_npz(tmp / "out.npz", result.motion)
    stages["export"] = time.perf_counter() - t
    out = {"stages": stages, "peak_rss_mib": peak_rss_mib(), "rss_before_mib": base_rss,
           "frames": result.motion.n_frames, "windows": result.n_windows}
    if device.startswith("cuda"):
        out["peak_cuda_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--seconds", type=float, nargs="+", default=[60.0, 600.0])
    p.add_argument("--skip-paper", action="store_true", help="only the demo model")
    args = p.parse_args(argv)
    info = machine(args.device)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        models = {"demo": default_bundle_path()}
        if not args.skip_paper:
            models["paper-size (random weights)"] = paper_bundle(tmp)
        inputs = {s: long_input(s, tmp) for s in args.seconds}
        for name, path in models.items():
            wav, words = inputs[args.seconds[0]]
            run(path, wav, words[:20], args.device, tmp)  # warm-up: first-call allocations, kernel choice
            for seconds, (wav, words) in inputs.items():
                r = run(path, wav, words, args.device, tmp)
                total = sum(v for k, v in r["stages"].items() if k != "load model")
                rows.append({"model": name, "seconds": seconds, **r, "total": total, "rtf": total / seconds})
                print(f"{name}, {seconds:g} s: total {total:.2f} s, RTF {total / seconds:.4f}, "
                      f"peak RSS {r['peak_rss_mib']:.0f} MiB", flush=True)
    cuda = args.device.startswith("cuda")
    header = ["model", "input"] + list(STAGES) + ["total", "RTF", "peak RSS (MiB)", "growth (MiB)"] + (["peak CUDA (MiB)"] if cuda else [])
    table = []
    for r in rows:
        table.append([r["model"], f"{r['seconds']:g} s"] + [f"{r['stages'][s]:.2f}" for s in STAGES]
                     + [f"{r['total']:.2f}", f"{r['rtf']:.4f}", f"{r['peak_rss_mib']:.0f}",
                        f"{r['peak_rss_mib'] - r['rss_before_mib']:.0f}"]
                     + ([f"{r['peak_cuda_mib']:.0f}"] if cuda else []))
    text = (f"Inference, files in to BVH + npz out, on {machine_line(info)}. Seconds per stage; total excludes "
            "loading the model; RTF = total / audio length; peak RSS is the whole process (libraries included) during the run, growth is that peak minus the resident size before it.\n\n"
            + markdown_table(header, table))
    print(text)
    write_result(f"inference_{args.device.split(':')[0]}", {"machine": info, "runs": rows}, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
