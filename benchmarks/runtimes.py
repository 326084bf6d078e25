"""ONNX Runtime vs torch, side by side in one run: the whole `semges generate` command, and Generate -> keys in Blender.

    python benchmarks/runtimes.py [--seconds 60] [--repeats 5]

Both measurements are whole processes, the way users meet them, alternating the two
runtimes run by run so the machine's background load falls on both alike; medians are
reported. 1. The CLI: `semges generate` on `--seconds` of speech (the example speech
repeated) with the demo model, from start to the BVH and npz written, with the process's
peak RSS. 2. Blender: the Generate operator's path (`semges_blender.pipeline`: checks,
the worker process started from this interpreter, the model, the motion file, retargeting
and keys on a BEAT rig) in the `bpy` of this venv, with the worker's own peak RSS.
Writes benchmarks/results/runtimes.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, long_input, machine, machine_line, markdown_table, write_result  # noqa: E402

RUNTIMES = ("onnx", "torch")

BLENDER_RUN = r"""
import json, sys, time
import bpy
from semges_blender import pipeline
from semges_blender.rigs import create_beat_armature
from semges_blender.worker import generate_motion_file
audio, transcript, runtime = sys.argv[1:4]
rig = create_beat_armature("BEAT")
t0 = time.perf_counter()
options = pipeline.GenerateOptions(audio=audio, transcript=transcript, armature=rig.name, preset="beat",
                                   runtime=runtime, add_audio=False)
prepared = pipeline.prepare(options)
try:
    out = generate_motion_file(prepared.request, prepared.python)
    t1 = time.perf_counter()
    result = pipeline.finish(prepared, out)
finally:
    prepared.cleanup()
t2 = time.perf_counter()
print(json.dumps({"total": t2 - t0, "worker": t1 - t0, "keys": t2 - t1, "worker_peak_rss_mib": out.get("peak_rss_mib"),
                  "runtime": out["runtime"], "frames": result.frame_end - result.frame_start + 1}))
"""


def run_cli(runtime: str, wav: Path, tg: Path, tmp: Path) -> dict:
    cmd = [str(Path(sys.executable).parent / "semges"), "generate", "--audio", str(wav), "--transcript", str(tg),
           "--out", str(tmp / f"{runtime}.bvh"), "--runtime", runtime, "--quiet"]
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t
    err = proc.stderr.read()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"semges generate --runtime {runtime} failed: {err}")
    return {"seconds": seconds, "peak_rss_mib": usage.ru_maxrss / 1024}


def run_blender(runtime: str, wav: Path, tg: Path) -> dict:
    r = subprocess.run([sys.executable, "-c", BLENDER_RUN, str(wav), str(tg), runtime], capture_output=True,
                       text=True, cwd=str(REPO), timeout=600)
    if r.returncode:
        raise RuntimeError(f"Blender generate ({runtime}) failed: {r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    from semges_core.formats.textgrid import write_textgrid
    from training.synthbeat.generate import word_textgrid

    cli = {r: [] for r in RUNTIMES}
    blender = {r: [] for r in RUNTIMES}
    with tempfile.TemporaryDirectory(prefix="semges_bench_") as d:
        tmp = Path(d)
        wav, words = long_input(args.seconds, tmp)
        tg = tmp / "speech.TextGrid"
        write_textgrid(tg, word_textgrid(words, args.seconds))
        for rt in RUNTIMES:  # warm the disk cache and the kernels' one-time costs, unmeasured
            run_cli(rt, wav, tg, tmp)
        for i in range(args.repeats):
            for rt in (RUNTIMES if i % 2 == 0 else RUNTIMES[::-1]):
                cli[rt].append(run_cli(rt, wav, tg, tmp))
                blender[rt].append(run_blender(rt, wav, tg))
                print(f"run {i + 1}/{args.repeats} {rt}: CLI {cli[rt][-1]['seconds']:.2f} s, "
                      f"Blender {blender[rt][-1]['total']:.2f} s", flush=True)

    def med(rows, key):
        vals = [r[key] for r in rows if r.get(key) is not None]
        return round(statistics.median(vals), 3) if vals else None

    rows = []
    for rt in RUNTIMES:
        rows.append({"runtime": rt, "cli_s": med(cli[rt], "seconds"), "cli_peak_rss_mib": med(cli[rt], "peak_rss_mib"),
                     "blender_total_s": med(blender[rt], "total"), "blender_worker_s": med(blender[rt], "worker"),
                     "blender_keys_s": med(blender[rt], "keys"),
                     "worker_peak_rss_mib": med(blender[rt], "worker_peak_rss_mib")})
    info = machine("cpu")
    import bpy

    info["blender"] = bpy.app.version_string
    table = markdown_table(
        ["runtime", "`semges generate` (s)", "its peak RSS (MiB)", "Blender Generate -> keys (s)",
         "of which worker (s)", "of which keys (s)", "worker peak RSS (MiB)"],
        [[str(r[k]) for k in ("runtime", "cli_s", "cli_peak_rss_mib", "blender_total_s", "blender_worker_s",
                              "blender_keys_s", "worker_peak_rss_mib")] for r in rows])
    text = (f"Runtimes side by side, {args.seconds:g} s of speech, demo model, medians of {args.repeats} "
            f"alternating runs (whole processes)\n\n{table}\n\n{machine_line(info)}, Blender {info['blender']}\n")
    write_result("runtimes", {"machine": info, "seconds": args.seconds, "repeats": args.repeats,
                                        "rows": rows, "raw": {"cli": cli, "blender": blender}}, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
