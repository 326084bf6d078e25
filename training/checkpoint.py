"""Resumable training state: weights, optimizer, RNG, position in the epoch and last logs.

Layout of `<out>/checkpoints/`:

    step-00000300.safetensors   tensors (weights, optimizer moments, RNG) + JSON metadata
    step-00000400.safetensors   the newest KEEP files are kept
    latest.json                 {"file": "step-00000400.safetensors", "position": {...}}

Commit protocol, which is what makes a SIGKILL at any moment harmless:

1. the tensor file is written to a hidden temporary (`.step-00000400.<random>.safetensors`),
   fsynced, then renamed over its final name;
2. `latest.json` is written the same way: a new checkpoint exists only from this rename on;
3. only then are older files deleted, and step files past this one (left by an
   abandoned run in the same directory: counting them would prune the new checkpoint).

So a kill leaves at worst a hidden temporary, which nothing ever reads and
`remove_partial_writes` deletes on the next start, or a complete `step-*` file
that `latest.json` does not name yet. That uncommitted file is ignored (the
resumed run recomputes the same steps bit for bit and rewrites it). With no
`latest.json` at all nothing was committed and a resumed run starts from scratch.

A resumed run restores everything a step depends on (the global torch RNG, Adam's
moments and step counts, the grad scaler, the sampler's place in the epoch, and the
last logged losses), so it ends with the same weights as a run that was never killed.

A damaged checkpoint (truncated, corrupt, missing, or an unreadable `latest.json`;
a kill cannot cause any of these, a full disk or a failing machine can) is *not*
fatal: resuming warns (RuntimeWarning) and falls back to the newest other step
file that reads back, which is exactly why KEEP is 2. Because training is deterministic, resuming
from an older checkpoint only repeats work; it still ends with the same weights.
Only when `latest.json` exists but no checkpoint reads back does resuming stop
with an `InputFileError`: starting over silently would throw away a whole run.
(Damage is found by safetensors' own checks, which catch truncation and broken
headers; flipped bits inside tensor data would go unnoticed, there is no checksum.)

Fault injection for tests: with `SEMGES_FAULT_AT=<site>:<n>` in the environment,
the process kills itself with SIGKILL the n-th time it reaches `<site>` (one of
FAULT_SITES; the loop's sites are in `training.loop`). Unset, it costs one dict lookup.
"""

from __future__ import annotations

import json
import os
import re
import signal
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save as safetensors_bytes
from torch import nn

from semges_core.errors import InputFileError
from semges_core.fileio import atomic_write
from semges_core.formats.tensor_files import META_KEY, load_state, load_tensors, strip_prefix, with_prefix

KEEP = 2
KIND = "semges-training-state"
POINTER = "latest.json"
_STEP_FILE = re.compile(r"step-(\d{8})\.safetensors")
# Temporaries that fileio.atomic_path leaves behind when a write is killed.
_PARTIAL_GLOBS = (".step-*.safetensors", f".{Path(POINTER).stem}.*{Path(POINTER).suffix}")

FAULT_ENV = "SEMGES_FAULT_AT"
FAULT_SITES = frozenset({
    # training.loop
    "step",             # an optimizer step is done, before it is logged or checkpointed
    "epoch_end",        # the last batch of an epoch is done, before validation
    "validate",         # in the middle of validation (after its first batch)
    "fit_done",         # the final checkpoint is written, the stage's output file is not
    # this module, inside save_checkpoint
    "tensors_partial",  # half of the tensor file is in its temporary
    "tensors_written",  # the tensor file is in place, latest.json still names the previous one
    "pointer_partial",  # half of the new latest.json is in its temporary
    "pointer_written",  # latest.json names the new file, older files are not pruned yet
})
_fault_hits: dict[str, int] = {}


def fault_point(site: str) -> None:
    """SIGKILL this process on the n-th arrival at `site` when SEMGES_FAULT_AT="<site>:<n>" (tests only)."""
    if site not in FAULT_SITES:
        raise ValueError(f"unknown fault site {site!r}")
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    want, _, n = spec.rpartition(":")
    if want not in FAULT_SITES or not n.isdigit() or int(n) < 1:
        raise ValueError(f"{FAULT_ENV}={spec!r}: expected <site>:<n> with n >= 1 and site one of "
                         + ", ".join(sorted(FAULT_SITES)))
    if want != site:
        return
    _fault_hits[site] = _fault_hits.get(site, 0) + 1
    if _fault_hits[site] == int(n):
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass
class Position:
    step: int = 0            # optimizer steps taken
    epoch: int = 0           # current epoch
    batch: int = 0           # batches of the current epoch already consumed


@dataclass
class Resumed:
    """What `resume_latest` restored besides the modules and the optimizer."""

    path: Path
    position: Position
    extra: dict[str, Any]
    logs: dict[str, dict[str, float]] = field(default_factory=dict)  # {"train": ..., "val": ...}


def _optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    state = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, entry in state["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{idx}.{key}"] = value
            else:
                scalars.setdefault(str(idx), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _restore_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    for idx, entry in meta["scalars"].items():
        state.setdefault(int(idx), {}).update(entry)
    groups = meta["param_groups"]
    for g in groups:
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
    opt.load_state_dict({"state": state, "param_groups": groups})


def _fsync_dir(directory: Path) -> None:
    """Make the renames durable too (a kill does not need it, a power cut does)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # not possible on every platform; the renames are still atomic
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_in_halves(path: Path, data: bytes | str, site: str) -> None:
    """Atomic write of `data` with a fault point after the first half reached the temporary."""
    binary = isinstance(data, bytes)
    half = len(data) // 2
    with atomic_write(path, "wb" if binary else "w") as f:
        f.write(data[:half])
        f.flush()
        fault_point(site)
        f.write(data[half:])


def step_files(directory: str | Path) -> list[tuple[int, Path]]:
    """Complete (renamed into place) checkpoint files, oldest first; hidden temporaries excluded."""
    found = []
    for p in Path(directory).glob("step-*.safetensors"):
        m = _STEP_FILE.fullmatch(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


def remove_partial_writes(directory: str | Path) -> list[Path]:
    """Delete temporaries that a killed checkpoint write left behind; call only where no write is running."""
    removed = []
    for pattern in _PARTIAL_GLOBS:
        for p in Path(directory).glob(pattern):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def save_checkpoint(directory: str | Path, pos: Position, modules: dict[str, nn.Module],
                    optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None = None,
                    extra: dict[str, Any] | None = None, logs: dict[str, dict[str, float]] | None = None) -> Path:
    directory = Path(directory)
    tensors: dict[str, torch.Tensor] = {}
    for name, module in modules.items():
        tensors.update(with_prefix(f"model.{name}.", module.state_dict()))
    opt_tensors, opt_meta = _optimizer_tensors(optimizer)
    tensors.update(with_prefix("optim.", opt_tensors))
    tensors["rng.cpu"] = torch.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    meta = {
        "kind": KIND,
        "position": vars(pos),
        "optimizer": opt_meta,
        "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
        "logs": logs or {},
        "extra": extra or {},
    }
    # Serialised in memory (one extra copy of the state) so the write can be split for
    # the fault point; clone() because safetensors refuses tensors that share storage.
    flat = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    path = directory / f"step-{pos.step:08d}.safetensors"
    _write_in_halves(path, safetensors_bytes(flat, metadata={META_KEY: json.dumps(meta)}), "tensors_partial")
    fault_point("tensors_written")
    _write_in_halves(directory / POINTER, json.dumps({"file": path.name, "position": vars(pos)}), "pointer_partial")
    _fsync_dir(directory)
    fault_point("pointer_written")
    # Keep the newest KEEP files up to this one; files past it belong to a run that was
    # abandoned (a fresh start in the same directory, or a write latest.json never named).
    older = [p for step, p in step_files(directory) if step <= pos.step]
    newer = [p for step, p in step_files(directory) if step > pos.step]
    for old in older[:-KEEP] + newer:
        old.unlink(missing_ok=True)
    return path


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """All tensors and the metadata of one checkpoint; InputFileError if it is missing, damaged or not ours."""
    tensors, meta = load_tensors(path, device="cpu")
    if meta.get("kind") != KIND:
        raise InputFileError(path, "not a SemGes training checkpoint")
    return tensors, meta


def _pointed_file(directory: Path) -> tuple[Path | None, str | None]:
    """The file latest.json names, or why it names none."""
    pointer = directory / POINTER
    try:
        name = json.loads(pointer.read_text())["file"]
        if not isinstance(name, str) or not _STEP_FILE.fullmatch(name):
            raise ValueError(f"bad file name {name!r}")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        return None, f"{pointer} is unreadable ({e})"
    return directory / name, None


def find_latest(directory: str | Path) -> tuple[Path, dict[str, torch.Tensor], dict[str, Any]] | None:
    """The newest committed checkpoint that reads back, with its contents; None when none was committed.

    See the module docstring for the fallback rules; each fallback is reported with a RuntimeWarning.
    """
    directory = Path(directory)
    if not (directory / POINTER).exists():
        return None
    named, problem = _pointed_file(directory)
    candidates = [p for _, p in reversed(step_files(directory)) if p != named]
    if named is not None:
        candidates.insert(0, named)
    problems = [problem] if problem else []
    for path in candidates:
        try:
            tensors, meta = read_checkpoint(path)
        except InputFileError as e:
            problems.append(str(e))
            continue
        if problems:
            warnings.warn("damaged checkpoint(s) skipped: " + "; ".join(problems) + f"; resuming from {path}",
                          RuntimeWarning, stacklevel=2)
        return path, tensors, meta
    raise InputFileError(directory, "no usable checkpoint to resume from: " + "; ".join(problems)
                         + " (delete the directory to start over)")


def latest_checkpoint(directory: str | Path) -> Path | None:
    """Path of the checkpoint a resume would use (see `find_latest`)."""
    found = find_latest(directory)
    return None if found is None else found[0]


def _restore(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any], modules: dict[str, nn.Module],
             optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None,
             device: str | torch.device) -> Resumed:
    for name, module in modules.items():
        load_state(module, strip_prefix(f"model.{name}.", tensors), path, f"checkpoint part {name!r}")
    _restore_optimizer(optimizer, {k: v.to(device) for k, v in strip_prefix("optim.", tensors).items()}, meta["optimizer"])
    torch.set_rng_state(tensors["rng.cpu"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])
    if scaler is not None and meta.get("scaler"):
        scaler.load_state_dict(meta["scaler"])
    return Resumed(path, Position(**meta["position"]), meta.get("extra", {}), meta.get("logs", {}))


def load_checkpoint(path: str | Path, modules: dict[str, nn.Module], optimizer: torch.optim.Optimizer,
                    scaler: torch.amp.GradScaler | None = None, device: str | torch.device = "cpu") -> tuple[Position, dict[str, Any]]:
    """Restore one given checkpoint into `modules`, `optimizer`, `scaler` and the global RNG."""
    path = Path(path)
    tensors, meta = read_checkpoint(path)
    r = _restore(path, tensors, meta, modules, optimizer, scaler, device)
    return r.position, r.extra


def resume_latest(directory: str | Path, modules: dict[str, nn.Module], optimizer: torch.optim.Optimizer,
                  scaler: torch.amp.GradScaler | None = None, device: str | torch.device = "cpu") -> Resumed | None:
    """Restore the newest usable checkpoint (see `find_latest`); None when there is none to resume."""
    found = find_latest(directory)
    if found is None:
        return None
    return _restore(*found, modules, optimizer, scaler, device)
