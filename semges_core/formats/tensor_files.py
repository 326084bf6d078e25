"""Tensors plus JSON metadata in one safetensors file: our only weight format.

safetensors cannot execute code when read, unlike pickles, so checkpoints and
model bundles a user hands us are safe to open. The JSON metadata (configs,
speaker lists, format versions) rides in the file's header. `load_arrays` reads the
format with numpy alone (it is a JSON header and raw little-endian bytes), so the
torch-free runtime needs neither torch nor the safetensors package.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typing import TYPE_CHECKING

import numpy as np

from semges_core.errors import InputFileError
from semges_core.fileio import atomic_path

if TYPE_CHECKING:  # torch only for the training-side functions; imported inside them
    import torch

META_KEY = "semges"
_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
           "U8": "u1", "BOOL": "?"}


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Write atomically; tensors are made contiguous CPU copies (shared storage is not allowed)."""
    from safetensors.torch import save_file

    flat = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(flat, str(tmp), metadata={META_KEY: json.dumps(meta)})


def _read_header(path: Path) -> tuple[dict[str, Any], int]:
    """The safetensors JSON header and the offset where the tensor bytes start."""
    if not path.is_file():
        raise InputFileError(path, "file not found")
    try:
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            if n <= 0 or n > 100_000_000:
                raise ValueError("header size out of range")
            raw = f.read(n)
            if len(raw) != n:
                raise ValueError("the header is cut short")
            header = json.loads(raw)
        if not isinstance(header, dict):
            raise ValueError("the header is not a JSON object")
        return header, 8 + n
    except (ValueError, UnicodeDecodeError) as e:
        raise InputFileError(path, f"not a safetensors file ({e})") from None


def read_meta(path: str | Path) -> dict[str, Any]:
    """Only the JSON metadata, without loading tensors."""
    path = Path(path)
    header, _ = _read_header(path)
    try:
        meta = header.get("__metadata__", {}) or {}
        return json.loads(meta.get(META_KEY, "null")) or {}
    except (ValueError, AttributeError) as e:
        raise InputFileError(path, f"the metadata in the safetensors header is not valid JSON ({e})") from None


def load_arrays(path: str | Path, names: set[str] | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The file's tensors as numpy arrays (all, or `names`) and its metadata; numpy only.

    Arrays are memory-mapped read-only views, so a bundle's large ONNX graphs cost no copy
    until they are used. Every inconsistency (offsets past the end, a dtype we do not know,
    a size that does not match the shape) is an InputFileError naming the file.
    """
    path = Path(path)
    header, start = _read_header(path)
    meta = read_meta(path)
    size = path.stat().st_size - start
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=start, shape=(size,)) if size > 0 else np.zeros(0, np.uint8)
    out: dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == "__metadata__" or (names is not None and name not in names):
            continue
        try:
            dtype = np.dtype(_DTYPES[info["dtype"]])
            shape = tuple(int(d) for d in info["shape"])
            a, b = (int(o) for o in info["data_offsets"])
        except (KeyError, TypeError, ValueError) as e:
            raise InputFileError(path, f"tensor {name!r} has an invalid or unsupported header entry ({e})") from None
        count = int(np.prod(shape)) if shape else 1
        if not 0 <= a <= b <= size or b - a != count * dtype.itemsize:
            raise InputFileError(path, f"corrupt or truncated safetensors file: tensor {name!r} does not fit the file")
        out[name] = data[a:b].view(dtype).reshape(shape)
    return out, meta


def load_tensors(path: str | Path, device: str | torch.device = "cpu") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

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


def load_state(module: "torch.nn.Module", state: dict[str, torch.Tensor], path: str | Path, what: str) -> None:
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
