"""The benchmark scripts keep working: one quick run of all of them, numbers checked for sense.

The numbers themselves are not tested (they depend on the machine); see benchmarks/.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_run_all_quick_writes_every_table_and_leaves_the_real_results_alone():
    kept = {p: p.read_bytes() for p in (REPO / "benchmarks" / "results").glob("*")}
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "run_all.py"), "--quick"], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = Path(re.search(r"results in (\S+)", proc.stdout).group(1))
    assert {p: p.read_bytes() for p in (REPO / "benchmarks" / "results").glob("*")} == kept

    inference = json.loads((results / "inference_cpu.json").read_text())
    (run,) = [r for r in inference["runs"] if r["model"] == "demo"]
    assert run["seconds"] == 10 and run["frames"] == 300 and 0 < run["rtf"] < 1
    assert run["peak_rss_mib"] >= run["rss_before_mib"] > 0

    keyframing = sorted(results.glob("keyframing_blender*.json"))
    assert keyframing, "at least the Blender of .venv"
    for path in keyframing:
        k = json.loads(path.read_text())
        assert k["bones"] == 47 and k["frames"] == 300
        assert k["max_pose_difference_m"] < 1e-4, "our keys and the BVH importer's pose the rig alike"
        assert all(v > 0 for v in k["median_seconds"].values())
        assert k["rigify_fk_bones"] == 43 and k["rigify_fk_seconds"] > 0

    training = json.loads((results / "training_cpu.json").read_text())["results"]["small (demo model)"]
    for stage in ("stage 1", "stage 2"):
        assert training[stage]["steps"] == 2 and training[stage]["windows_per_second"] > 0

    summary = (results / "README.md").read_text()
    for title in ("Inference", "Keyframing in Blender", "Training throughput"):
        assert f"#### {title}" in summary
