"""Training survives a SIGKILL at any point: a resumed run ends exactly where an uninterrupted one ends.

Each case kills a run with SIGKILL at a named fault point (`SEMGES_FAULT_AT`, see
`training.checkpoint`), resumes it with `--resume` (killing the resumed run again
where a case lists several points), then compares with one uninterrupted reference
run per stage: the output file's tensors and metadata, the final checkpoint
(weights, Adam moments, RNG), which checkpoint files are kept, and the TensorBoard
scalars, all bit for bit. After every kill `latest.json`, if any, must name a
checkpoint that reads back.

Training runs in children of a multiprocessing fork server that has imported
`training` once, so a run costs its steps rather than a fresh interpreter start;
the children call the same `main(argv)` as `python -m training.stageN`. The fork
server never runs torch code, so forking it is safe.
"""

from __future__ import annotations

import importlib
import json
import multiprocessing
import os
import random
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import TINY_CONFIG
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

from semges_core.errors import InputFileError
from semges_core.formats.tensor_files import load_tensors
from training.checkpoint import (FAULT_ENV, FAULT_SITES, Position, fault_point, find_latest, latest_checkpoint,
                                 read_checkpoint, remove_partial_writes, save_checkpoint, step_files)

_CTX = multiprocessing.get_context("forkserver")
# What every run imports, imported once by the fork server: this module for `_cli`, and
# torch._dynamo, which Adam's constructor imports (a second per run otherwise).
_CTX.set_forkserver_preload(["training.stage1", "training.stage2", "training.export_bundle",
                             "torch.utils.tensorboard", "torch._dynamo", __name__])

STAGE1_FILE, STAGE2_FILE = "stage1.safetensors", "model.safetensors"
# Stage 1: 2 epochs of 5 steps, checkpoints at steps 3, 5 (epoch end), 6, 9, 10 (epoch end).
# Stage 2 stops at --max-steps 7: checkpoints at 3, 5 (epoch end), 6, 7 (final).
STAGE2_ARGS = ["--max-steps", "7"]


def _cli(stage: str, argv: list[str], fault: str | None, log: str) -> None:
    """In a fork-server child: one training command line, with at most one fault point armed."""
    with open(log, "a") as f:
        f.write(f"\n--- {stage} {' '.join(argv)} (fault {fault})\n")
        f.flush()
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
    if fault:
        os.environ[FAULT_ENV] = fault
    # One thread in every run: the same float summation order everywhere, and no OpenMP
    # threads spinning against each other on a busy machine.
    torch.set_num_threads(1)
    sys.exit(importlib.import_module(f"training.{stage}").main(argv))


def _start(stage: str, config: Path, out: Path, *, resume: bool, fault: str | None = None,
           extra: list[str] = ()) -> multiprocessing.Process:
    out.mkdir(parents=True, exist_ok=True)
    argv = ["--config", str(config), "--no-progress", "--set", f'{stage}.out="{out}"', *extra]
    proc = _CTX.Process(target=_cli, args=(stage, argv + (["--resume"] if resume else []), fault,
                                           str(out / "log.txt")))
    proc.start()
    return proc


def _finish(proc: multiprocessing.Process, out: Path, expected: int) -> None:
    proc.join(timeout=300)
    log = (out / "log.txt").read_text()[-4000:]
    assert proc.exitcode == expected, f"exit code {proc.exitcode}, expected {expected}:\n{log}"


def _train(stage: str, config: Path, out: Path, *, resume: bool, fault: str | None = None,
           extra: list[str] = ()) -> None:
    expected = -signal.SIGKILL if fault else 0
    _finish(_start(stage, config, out, resume=resume, fault=fault, extra=extra), out, expected)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, synth_small, synth_cache_dir, tiny_vectors):
    """One uninterrupted run of each stage; stage 2 trains on the reference stage-1 priors."""
    root = tmp_path_factory.mktemp("kill")
    config = root / "tiny.toml"
    config.write_text(TINY_CONFIG.format(root=synth_small, cache=synth_cache_dir, out=root / "unused", epochs=2,
                                         checkpoint_every=3, vectors=tiny_vectors))
    warm_up = _CTX.Process(target=os.getpid)  # starts the fork server, so that the timing below is a run's
    warm_up.start()
    warm_up.join()
    t0 = time.perf_counter()
    _train("stage1", config, root / "ref1", resume=False)
    seconds1 = time.perf_counter() - t0
    stage2_args = ["--set", f'stage2.priors="{root / "ref1" / STAGE1_FILE}"', *STAGE2_ARGS]
    _train("stage2", config, root / "ref2", resume=False, extra=stage2_args)
    return {"root": root, "config": config, "stage1": root / "ref1", "stage2": root / "ref2",
            "stage2_args": stage2_args, "stage1_seconds": seconds1}


def _stage(reference, stage: str) -> tuple[Path, list[str], str]:
    """The reference run directory, the extra arguments and the output file name of a stage."""
    if stage == "stage1":
        return reference["stage1"], [], STAGE1_FILE
    return reference["stage2"], reference["stage2_args"], STAGE2_FILE


def _without(meta, keys=("train_seconds", "config")):
    """Metadata minus what may differ between equal runs: wall time and the output directory."""
    if isinstance(meta, dict):
        return {k: _without(v, keys) for k, v in meta.items() if k not in keys}
    if isinstance(meta, list):
        return [_without(v, keys) for v in meta]
    return meta


def _scalars(tb: Path) -> dict[str, list[tuple[int, float]]]:
    """What TensorBoard shows: event files in the order written, a restart's purge_step applied."""
    files = []
    for path in tb.glob("events.out.tfevents.*"):
        events = list(EventFileLoader(str(path)).Load())
        if events:  # a run killed before its writer wrote anything leaves an empty file
            files.append((events[0].wall_time, events))
    shown: dict[str, list[tuple[int, float]]] = {}
    for _, events in sorted(files, key=lambda f: f[0]):
        for e in events:
            if e.HasField("session_log") and e.session_log.status == e.session_log.START:
                shown = {tag: [(s, v) for s, v in pts if s < e.step] for tag, pts in shown.items()}
            for v in e.summary.value:
                shown.setdefault(v.tag, []).append((e.step, v.tensor.float_val[0]))
    return shown


def _assert_same_run(ref: Path, run: Path, output: str) -> None:
    a, meta_a = load_tensors(ref / output)
    b, meta_b = load_tensors(run / output)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{output}: {k} differs after resume"
    assert _without(meta_a) == _without(meta_b), "the final logs differ after resume"
    ckpt_a, ckpt_b = ref / "checkpoints", run / "checkpoints"
    assert sorted(os.listdir(ckpt_a)) == sorted(os.listdir(ckpt_b)), "kept checkpoint files differ"
    latest = json.loads((ckpt_a / "latest.json").read_text())
    assert latest == json.loads((ckpt_b / "latest.json").read_text())
    a, meta_a = load_tensors(ckpt_a / latest["file"])
    b, meta_b = load_tensors(ckpt_b / latest["file"])
    assert a.keys() == b.keys()
    for k in a:  # weights, Adam moments and step counts, RNG state
        assert torch.equal(a[k], b[k]), f"final checkpoint: {k} differs after resume"
    assert _without(meta_a) == _without(meta_b)
    assert _scalars(ref / "tb") == _scalars(run / "tb"), "TensorBoard scalars differ after resume"


def _assert_committed_state_usable(ckpt_dir: Path) -> None:
    """What a kill may leave: latest.json, when present, names a checkpoint that reads back whole."""
    if (ckpt_dir / "latest.json").exists():
        name = json.loads((ckpt_dir / "latest.json").read_text())["file"]
        read_checkpoint(ckpt_dir / name)


# Each case is the list of fault points of successive runs: the first run starts fresh,
# every later one (and a last, unharmed one) is started with --resume. Counts are per run.
STAGE1_KILLS = {
    "before the first checkpoint": ["step:2"],
    "first tensor file written, never committed": ["tensors_written:1"],
    "mid-epoch": ["step:4"],
    "at the epoch boundary": ["epoch_end:1"],
    "during validation": ["validate:1"],
    "halfway through a tensor file": ["tensors_partial:2"],
    "tensor file written, latest.json not yet": ["tensors_written:3"],
    "halfway through latest.json": ["pointer_partial:4"],
    "latest.json written, old files not pruned": ["pointer_written:4"],
    "during the last validation": ["validate:2"],
    "after the final checkpoint, before the output": ["fit_done:1"],
    # mid-epoch (latest: 3); halfway through step 5's file (latest: 3); during the first
    # validation (latest: 3); after step 6 (latest: 5); after the final checkpoint
    "mid-epoch, then again while resuming": ["step:4", "tensors_partial:1", "validate:1", "step:3", "fit_done:1"],
}
STAGE2_KILLS = {
    "before the first checkpoint": ["step:2"],
    "mid-epoch": ["step:4"],
    "at the epoch boundary": ["epoch_end:1"],
    "during validation": ["validate:1"],
    "halfway through a tensor file": ["tensors_partial:3"],
    "halfway through latest.json": ["pointer_partial:2"],
    "after the final checkpoint, before the output": ["fit_done:1"],
    # before any checkpoint; step 3's file written, latest.json never (so fresh again);
    # mid-epoch (latest: 3); step 6's file written (latest: 5)
    "before the first checkpoint, then again while resuming": ["step:2", "tensors_written:1", "step:4",
                                                                "tensors_written:2"],
}


@pytest.mark.parametrize("stage,faults", [("stage1", f) for f in STAGE1_KILLS.values()]
                         + [("stage2", f) for f in STAGE2_KILLS.values()],
                         ids=[f"stage1: {k}" for k in STAGE1_KILLS] + [f"stage2: {k}" for k in STAGE2_KILLS])
def test_kill_at_a_fault_point_then_resume_matches_an_uninterrupted_run(reference, stage, faults):
    ref, extra, output = _stage(reference, stage)
    run = reference["root"] / f"{stage}-{'-'.join(faults).replace(':', '')}"
    ckpt_dir = run / "checkpoints"
    for i, fault in enumerate(faults):
        _train(stage, reference["config"], run, resume=i > 0, fault=fault, extra=extra)
        assert not (run / output).exists()
        _assert_committed_state_usable(ckpt_dir)
        partial = [p.name for p in ckpt_dir.glob(".*")]
        if fault.startswith(("tensors_partial", "pointer_partial")):
            assert partial, "the kill left no partial write behind"
            assert json.loads((ckpt_dir / "latest.json").read_text())["file"] not in partial
    _train(stage, reference["config"], run, resume=True, extra=extra)
    assert not list(ckpt_dir.glob(".*")), "a partial write was left behind"
    _assert_same_run(ref, run, output)


def test_kill_at_random_moments_then_resume_matches(reference):
    """Stage 1 killed from outside three times, at moments drawn at random within a run's length."""
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    run = reference["root"] / f"stage1-random-{seed}"  # the seed is in the test's paths
    for i in range(3):
        proc = _start("stage1", reference["config"], run, resume=i > 0)
        proc.join(timeout=rng.uniform(0.1, 0.9) * reference["stage1_seconds"])
        if proc.exitcode is None:
            proc.kill()  # SIGKILL
        proc.join()
        _assert_committed_state_usable(run / "checkpoints")
    _train("stage1", reference["config"], run, resume=True)
    _assert_same_run(reference["stage1"], run, STAGE1_FILE)


def _copy_run(reference, name: str) -> Path:
    run = reference["root"] / name
    shutil.copytree(reference["stage1"], run)
    (run / STAGE1_FILE).unlink()
    return run


def test_truncated_latest_checkpoint_falls_back_to_the_previous_one(reference):
    run = _copy_run(reference, "truncated")
    (older, _), (newest, path) = step_files(run / "checkpoints")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.warns(RuntimeWarning, match="damaged checkpoint"):
        assert find_latest(run / "checkpoints")[0].name == f"step-{older:08d}.safetensors"
    _train("stage1", reference["config"], run, resume=True)
    assert "damaged checkpoint" in (run / "log.txt").read_text()
    _assert_same_run(reference["stage1"], run, STAGE1_FILE)


def test_unreadable_or_dangling_latest_json_falls_back(reference, tmp_path):
    ckpt = tmp_path / "checkpoints"
    shutil.copytree(reference["stage1"] / "checkpoints", ckpt)
    newest = step_files(ckpt)[-1][1]
    (ckpt / "latest.json").write_text('{"file": "step-000')
    with pytest.warns(RuntimeWarning, match="unreadable"):
        assert find_latest(ckpt)[0] == newest
    (ckpt / "latest.json").write_text(json.dumps({"file": "step-00000099.safetensors"}))
    with pytest.warns(RuntimeWarning, match="step-00000099.safetensors"):
        assert find_latest(ckpt)[0] == newest


def test_no_usable_checkpoint_is_a_clear_error(reference, tmp_path):
    ckpt = tmp_path / "checkpoints"
    shutil.copytree(reference["stage1"] / "checkpoints", ckpt)
    for _, path in step_files(ckpt):
        path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(InputFileError, match="no usable checkpoint"):
        find_latest(ckpt)


def test_partial_writes_are_never_loaded_and_are_removed(reference, tmp_path):
    ckpt = tmp_path / "checkpoints"
    shutil.copytree(reference["stage1"] / "checkpoints", ckpt)
    newest = step_files(ckpt)[-1][1]
    # A newer, complete-looking temporary: only the rename makes a file a checkpoint.
    partial = ckpt / ".step-00000099.k1ll3d.safetensors"
    shutil.copy(newest, partial)
    (ckpt / ".latest.x9.json").write_text('{"file": ".step-00000099.k1ll3d.safetensors"}')
    assert find_latest(ckpt)[0] == newest
    assert sorted(p.name for p in remove_partial_writes(ckpt)) == [".latest.x9.json", partial.name]
    assert not list(ckpt.glob(".*"))


def test_a_fresh_run_in_an_old_run_directory_keeps_its_own_checkpoint(tmp_path):
    """Files past the newest checkpoint belong to an abandoned run; pruning must not count them."""
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.Adam(model.parameters())
    for step in (90, 100, 3):  # an old run's last two checkpoints, then a fresh run's first
        save_checkpoint(tmp_path, Position(step=step), {"m": model}, opt)
    assert [step for step, _ in step_files(tmp_path)] == [3]
    assert latest_checkpoint(tmp_path).name == "step-00000003.safetensors"


def test_fault_points_reject_unknown_sites(monkeypatch):
    monkeypatch.setenv(FAULT_ENV, "nowhere:1")
    with pytest.raises(ValueError, match="expected <site>:<n>"):
        fault_point("step")
    monkeypatch.setenv(FAULT_ENV, "step:1")
    with pytest.raises(ValueError, match="unknown fault site"):
        fault_point("nowhere")
    monkeypatch.setenv(FAULT_ENV, "validate:1")
    for site in sorted(FAULT_SITES - {"validate"}):
        fault_point(site)  # armed elsewhere: returns
