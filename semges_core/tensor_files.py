"""Tensors plus JSON metadata in one safetensors file: our only weight format.

safetensors cannot execute code when read, unlike pickles, so checkpoints and
model bundles a user hands us are safe to open. The JSON metadata (configs,
speaker lists, format versions) rides in the file's header.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .errors import InputFileError
from .fileio import atomic_path

META_KEY = "semges"


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Write atomically; tensors are made contiguous CPU copies (shared storage is not allowed)."""
    flat = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(flat, str(tmp), metadata={META_KEY: json.dumps(meta)})


def read_meta(path: str | Path) -> dict[str, Any]:
    """Only the JSON metadata, without loading tensors."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "file not found")
    try:
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            if n <= 0 or n > 100_000_000:
                raise ValueError("header size out of range")
            header = json.loads(f.read(n))
        return json.loads(header.get("__metadata__", {}).get(META_KEY, "null")) or {}
    except (ValueError, UnicodeDecodeError) as e:
        raise InputFileError(path, f"not a safetensors file ({e})") from None


def load_tensors(path: str | Path, device: str | torch.device = "cpu") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    path = Path(path)
    meta = read_meta(path)
    try:
        tensors = load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError) as e:
        raise InputFileError(path, f"corrupt or truncated safetensors file ({e})") from None
    return tensors, meta


def with_prefix(prefix: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"{prefix}{k}": v for k, v in state.items()}


def strip_prefix(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def load_state(module: torch.nn.Module, state: dict[str, torch.Tensor], path: str | Path, what: str) -> None:
    """load_state_dict with an error that names the file and the mismatching tensors."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
        if unexpected:
            parts.append(f"unexpected {', '.join(unexpected[:5])}{' ...' if len(unexpected) > 5 else ''}")
        if wrong:
            k = wrong[0]
            parts.append(f"shape of {k} is {tuple(state[k].shape)}, expected {tuple(own[k].shape)}"
                         + (f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else ""))
        raise InputFileError(path, f"{what} does not match its config: {'; '.join(parts)}")
    module.load_state_dict(state)
