"""Every benchmark in one command, and the table the README shows.

    .venv/bin/python benchmarks/run_all.py [--quick] [--no-readme]

Runs each benchmark in its own process (so one's memory does not colour the
next): inference on CPU (and CUDA when torch sees a GPU), keyframing under each
Blender venv that exists (`.venv`: Blender 5.0, `.venv-blender42`: 4.2 LTS) and
training throughput. Then joins their tables into benchmarks/results/README.md
and replaces the block between the benchmark markers in the top-level README.
`--quick` makes every run short and writes to a temporary folder (a smoke test
of the scripts, not numbers to keep).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
START, END = "<!-- benchmarks:start -->", "<!-- benchmarks:end -->"


def _python(venv: str) -> Path:
    return REPO / venv / "bin" / "python"


def plan(quick: bool) -> list[tuple[str, Path, list[str], str]]:
    """(title, interpreter, script + arguments, result file stem) of each run."""
    import torch

    py = Path(sys.executable)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    runs = []
    for dev in devices:
        args = ["--device", dev] + (["--seconds", "10", "--skip-paper"] if quick else [])
        runs.append((f"Inference ({dev})", py, ["inference_rtf.py", *args], f"inference_{dev}"))
    args = ["--seconds", "10", "--repeats", "1"] if quick else []
    runs.append(("Runtimes, ONNX vs torch (CLI and Blender Generate)", py, ["runtimes.py", *args], "runtimes"))
    for venv in (".venv", ".venv-blender42"):
        if _python(venv).exists():
            args = ["--seconds", "10", "--repeats", "1"] if quick else []
            runs.append((f"Keyframing ({venv})", _python(venv), ["keyframing.py", *args], None))
    for dev in devices:
        args = ["--device", dev] + (["--steps", "2", "--warmup", "1", "--skip-paper", "--takes", "3", "--take-seconds", "12"] if quick else [])
        runs.append((f"Training throughput ({dev})", py, ["training_throughput.py", *args], f"training_{dev}"))
    return runs


def summary(results: Path) -> str:
    """The results tables, in a fixed order, from whatever result files exist."""
    parts = []
    for title, pattern in (("Runtimes: ONNX Runtime vs torch", "runtimes.md"), ("Inference", "inference_*.md"), ("Keyframing in Blender", "keyframing_blender*.md"),
                           ("Training throughput", "training_*.md")):
        files = sorted(results.glob(pattern))
        if files:
            parts.append(f"#### {title}\n\n" + "\n\n".join(f.read_text().strip() for f in files))
    return "\n\n".join(parts)


def update_readme(text: str) -> None:
    readme = REPO / "README.md"
    content = readme.read_text()
    if START not in content or END not in content:
        raise SystemExit(f"{readme}: the markers {START} and {END} are missing; add them where the table belongs")
    head, rest = content.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n{text}\n{END}{tail}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="short runs, to check the scripts work")
    p.add_argument("--no-readme", action="store_true", help="leave README.md as it is")
    args = p.parse_args(argv)
    results = Path(tempfile.mkdtemp(prefix="semges-bench-")) if args.quick else RESULTS
    env = os.environ | {"SEMGES_BENCHMARK_RESULTS": str(results)}
    failed = []
    for title, python, cmd, _ in plan(args.quick):
        print(f"=== {title}: {python.relative_to(REPO) if python.is_relative_to(REPO) else python} {' '.join(cmd)}",
              flush=True)
        t = time.perf_counter()
        rc = subprocess.call([str(python), str(HERE / cmd[0]), *cmd[1:]], cwd=REPO, env=env)
        print(f"=== {title}: {'ok' if rc == 0 else f'FAILED (exit {rc})'} in {time.perf_counter() - t:.0f} s", flush=True)
        if rc:
            failed.append(title)
    text = summary(results)
    print(f"results in {results}")
    (results / "README.md").write_text(
        "# Benchmark results\n\nWritten by `benchmarks/run_all.py`; each table names the machine it ran on.\n\n"
        + text + "\n")
    if not args.no_readme and not args.quick:
        update_readme(text)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
