"""Resumable training state: weights, optimizer, RNG and position in the epoch.

A checkpoint is one safetensors file (tensors) with JSON metadata (step, epoch,
batch within the epoch, optimizer hyper-parameters); `latest.json` is rewritten
atomically after the file is complete, so a kill at any moment leaves the
previous checkpoint usable. Resuming restores everything a step depends on,
so a resumed run continues exactly where the killed one stopped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from semges_core.errors import InputFileError
from semges_core.fileio import atomic_write
from semges_core.tensor_files import load_state, load_tensors, save_tensors, strip_prefix, with_prefix

KEEP = 2


@dataclass
class Position:
    step: int = 0            # optimizer steps taken
    epoch: int = 0           # current epoch
    batch: int = 0           # batches of the current epoch already consumed


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


def save_checkpoint(directory: str | Path, pos: Position, modules: dict[str, nn.Module],
                    optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None = None,
                    extra: dict[str, Any] | None = None) -> Path:
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
        "kind": "semges-training-state",
        "position": vars(pos),
        "optimizer": opt_meta,
        "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
        "extra": extra or {},
    }
    path = directory / f"step-{pos.step:08d}.safetensors"
    save_tensors(path, tensors, meta)
    with atomic_write(directory / "latest.json") as f:
        json.dump({"file": path.name, "position": vars(pos)}, f)
    for old in sorted(directory.glob("step-*.safetensors"))[:-KEEP]:
        old.unlink(missing_ok=True)
    return path


def latest_checkpoint(directory: str | Path) -> Path | None:
    pointer = Path(directory) / "latest.json"
    if not pointer.exists():
        return None
    try:
        name = json.loads(pointer.read_text())["file"]
    except (ValueError, KeyError) as e:
        raise InputFileError(pointer, f"unreadable checkpoint pointer ({e})") from None
    path = pointer.parent / name
    if not path.exists():
        raise InputFileError(pointer, f"points to {name}, which is missing")
    return path


def load_checkpoint(path: str | Path, modules: dict[str, nn.Module], optimizer: torch.optim.Optimizer,
                    scaler: torch.amp.GradScaler | None = None, device: str | torch.device = "cpu") -> tuple[Position, dict[str, Any]]:
    tensors, meta = load_tensors(path, device="cpu")
    if meta.get("kind") != "semges-training-state":
        raise InputFileError(path, "not a SemGes training checkpoint")
    for name, module in modules.items():
        load_state(module, strip_prefix(f"model.{name}.", tensors), path, f"checkpoint part {name!r}")
    _restore_optimizer(optimizer, {k: v.to(device) for k, v in strip_prefix("optim.", tensors).items()}, meta["optimizer"])
    torch.set_rng_state(tensors["rng.cpu"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])
    if scaler is not None and meta.get("scaler"):
        scaler.load_state_dict(meta["scaler"])
    return Position(**meta["position"]), meta.get("extra", {})
