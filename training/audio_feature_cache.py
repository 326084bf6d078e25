"""The frozen audio front end's features of every take, computed once and kept on disk.

Stage 2 used to run the front end (HuBERT, or the log-mel/onset features) on each
batch's 2.27-s windows: nearly all of a paper-size step's time, and not what the
model sees at inference, where `semges_core.inference.generate` runs the front end
once over the whole audio (HuBERT in 20-s chunks with 1 s of context) and slices
windows out of that. Here each take goes through that same call,
`front(wav[None], n_frames)`, once; stage 2 then reads window slices through
`WindowDataset(frame_files=...)`, so training sees inference's features.

Layout, beside the dataset cache it belongs to:

    <cache_dir>/audio_features/.lock           held (flock) by whoever builds
    <cache_dir>/audio_features/<key>/features.npy   (N, dim), one row per cache frame
    <cache_dir>/audio_features/<key>/manifest.json  written last

`<key>` hashes everything the features depend on: the front end's config, its
weights and buffers (HuBERT's, or the mel filterbank), the model's architecture,
the torch/transformers versions, and the dataset cache's own manifest (which changes
whenever that cache is rebuilt). A changed config or dataset therefore gets a new
folder; folders of a dataset cache that no longer exists are removed. A build
happens in a `.staging-*` folder renamed to `<key>` when complete, so a build killed
at any moment leaves nothing that is ever read.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from numpy.lib.format import open_memmap
from torch import nn
from tqdm import tqdm

from semges_core.speech.features import AudioFeatureConfig
from semges_core.data.dataset import MANIFEST as DATASET_MANIFEST
from semges_core.data.dataset import Cache
from semges_core.errors import DatasetError

from . import runtime

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
FOLDER = "audio_features"
FEATURES = "features.npy"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class AudioFeatureFile:
    """A finished feature file: `path` holds (cache.n_frames, dim) rows in the cache's frame order."""

    dir: Path
    key: str
    dim: int
    dtype: np.dtype
    rebuilt: bool

    @property
    def path(self) -> Path:
        return self.dir / FEATURES


def _storage_dtype(config: AudioFeatureConfig) -> np.dtype:
    # HuBERT's 768-d states would take 1.5 GB in float32 for BEAT's 16 h; its layer-normed
    # outputs are O(1)-O(10), where float16 keeps ~3 significant digits (relative error
    # <= 2^-11), far below the differences the fusion transformer can use. The melonset
    # features are ~66-d, so they stay float32 and match inference bit for bit.
    return np.dtype(np.float16 if config.kind == "hubert" else np.float32)


def _tensor_digest(module: nn.Module) -> str:
    """sha256 over every parameter and buffer (names, shapes, dtypes, bytes) of the front end."""
    h = hashlib.sha256()
    tensors = dict(module.named_parameters())
    tensors |= dict(module.named_buffers())  # the mel filterbank is a (non-persistent) buffer
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def front_end_identity(config: AudioFeatureConfig, front: nn.Module) -> dict[str, Any]:
    """What the front end's output depends on, as JSON: config, weights, architecture, versions."""
    ident: dict[str, Any] = {
        "config": config.to_dict(),
        "module": type(front).__name__,
        "tensors_sha256": _tensor_digest(front),
        "torch": torch.__version__,
    }
    model = getattr(front, "model", None)  # HubertFeatures wraps a transformers model
    if model is not None:
        import transformers

        arch = model.config.to_dict()
        for volatile in ("_name_or_path", "transformers_version"):
            arch.pop(volatile, None)
        ident["model_config"] = arch
        ident["transformers"] = transformers.__version__
    return ident


def dataset_identity(cache: Cache) -> str:
    """sha256 of the dataset cache's manifest: it changes on every rebuild (build time, sources)."""
    return hashlib.sha256((cache.dir / DATASET_MANIFEST).read_bytes()).hexdigest()


def feature_key(cache: Cache, config: AudioFeatureConfig, front: nn.Module) -> tuple[str, dict[str, Any]]:
    """The folder name for these features, and the identity it hashes."""
    ident = {"format_version": FORMAT_VERSION, "front_end": front_end_identity(config, front),
             "dataset": dataset_identity(cache)}
    blob = json.dumps(ident, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:20], ident


def _open(folder: Path, cache: Cache, key: str, dim: int, dtype: np.dtype, rebuilt: bool) -> AudioFeatureFile | None:
    """The feature file in `folder` if it is whole and fits the cache, else None."""
    try:
        with open(folder / MANIFEST, encoding="utf-8") as f:
            manifest = json.load(f)
        arr = np.load(folder / FEATURES, mmap_mode="r")
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("key") != key:
        return None
    if arr.shape != (cache.n_frames, dim) or arr.dtype != dtype:
        return None
    return AudioFeatureFile(folder, key, dim, dtype, rebuilt)


@contextmanager
def _build_lock(root: Path) -> Iterator[None]:
    """One builder per feature folder at a time, across processes; released by the OS if killed."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _clean(root: Path, keep: str, dataset: str) -> None:
    """Under the lock: drop killed builds' staging folders and folders of a replaced dataset cache."""
    for p in root.glob(".staging-*"):
        shutil.rmtree(p, ignore_errors=True)
    for p in root.iterdir():
        if not p.is_dir() or p.name.startswith(".") or p.name == keep:
            continue
        try:
            other = json.loads((p / MANIFEST).read_text(encoding="utf-8")).get("identity", {}).get("dataset")
        except (OSError, ValueError, AttributeError):
            other = None  # no readable manifest: nothing says whose it is, so it stays
        if other is not None and other != dataset:
            log.info("removing audio features %s: built for an earlier build of the dataset cache", p)
            shutil.rmtree(p, ignore_errors=True)


@torch.no_grad()
def _compute(cache: Cache, front: nn.Module, out: np.ndarray, device: torch.device, progress: bool) -> None:
    """Each take's features, exactly as inference computes them: the whole take in one front-end call."""
    sr = cache.config.sample_rate
    seconds = [len(cache.take_array(k, "audio")) / sr for k in range(cache.n_takes)]
    bar = tqdm(total=round(sum(seconds)), desc="audio features", unit="s", disable=not progress)
    try:
        for k in range(cache.n_takes):
            a, b = int(cache.frame_offsets[k]), int(cache.frame_offsets[k + 1])
            if b > a:
                wav = torch.from_numpy(np.array(cache.take_array(k, "audio")))  # (S,)
                feats = front(wav[None].to(device), b - a)[0]  # (T, dim)
                x = feats.float().cpu().numpy().astype(out.dtype)
                if not np.isfinite(x).all():
                    raise DatasetError(f"{cache.takes[k]['stem']}: audio features overflow {out.dtype}")
                out[a:b] = x
            bar.update(round(sum(seconds[: k + 1])) - bar.n)
    finally:
        bar.close()


def build_features(cache: Cache, config: AudioFeatureConfig, front: nn.Module, device: torch.device,
                   progress: bool = True) -> AudioFeatureFile:
    """The feature file of `cache` for this front end, computed now unless a whole one exists."""
    key, ident = feature_key(cache, config, front)
    return _build(cache, config, front, key, ident, device, progress)


def _build(cache: Cache, config: AudioFeatureConfig, front: nn.Module, key: str, ident: dict[str, Any],
           device: torch.device, progress: bool) -> AudioFeatureFile:
    dim, dtype = int(front.dim), _storage_dtype(config)
    root = cache.dir / FOLDER
    with _build_lock(root):
        found = _open(root / key, cache, key, dim, dtype, rebuilt=False)
        if found is not None:  # built by another process while this one waited for the lock
            return found
        _clean(root, key, ident["dataset"])
        shutil.rmtree(root / key, ignore_errors=True)  # an unusable folder under this key
        t0 = time.perf_counter()
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
        try:
            out = open_memmap(staging / FEATURES, mode="w+", dtype=dtype, shape=(cache.n_frames, dim))
            _compute(cache, front.eval(), out, device, progress)
            out.flush()
            del out
            manifest = {"format_version": FORMAT_VERSION, "key": key, "identity": ident,
                        "shape": [cache.n_frames, dim], "dtype": dtype.name, "device": str(device),
                        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                        "build_seconds": round(time.perf_counter() - t0, 3)}
            with open(staging / MANIFEST, "w", encoding="utf-8") as f:  # last
                json.dump(manifest, f, indent=1)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            staging.rename(root / key)  # the folder appears whole or not at all
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    log.info("built audio features %s in %.1f s", root / key, time.perf_counter() - t0)
    found = _open(root / key, cache, key, dim, dtype, rebuilt=True)
    assert found is not None, root / key
    return found


def load_features(cache: Cache, config: AudioFeatureConfig, front: nn.Module, rt: runtime.Runtime,
                  progress: bool = True) -> AudioFeatureFile:
    """Reuse or build the feature file; under torchrun rank 0 builds while the others wait."""
    key, ident = feature_key(cache, config, front)  # hashes HuBERT's weights: ~0.5 s, once
    dim, dtype = int(front.dim), _storage_dtype(config)
    found = _open(cache.dir / FOLDER / key, cache, key, dim, dtype, rebuilt=False)
    if found is None and rt.is_main:
        found = _build(cache, config, front, key, ident, rt.device, progress)
    rt.barrier()
    if found is None:
        found = _open(cache.dir / FOLDER / key, cache, key, dim, dtype, rebuilt=False)
        if found is None:
            raise DatasetError(f"{cache.dir / FOLDER / key}: rank 0 did not leave whole audio features")
    return found
