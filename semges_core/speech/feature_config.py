"""Which audio front end a model reads, as plain data (no torch), so bundles can be inspected anywhere."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class AudioFeatureConfig:
    kind: str = "melonset"        # "melonset" (no weights) or "hubert"
    sample_rate: int = 16000
    n_mels: int = 64              # melonset only
    hubert_path: str = ""         # hubert only: local directory (or hub id when online)
    hubert_layer: int = -1        # hubert only: which hidden layer; -1 is the last
    chunk_seconds: float = 20.0   # audio longer than this is processed in overlapping chunks

    def __post_init__(self) -> None:
        if self.kind not in ("melonset", "hubert"):
            raise ValueError(f"audio feature kind must be 'melonset' or 'hubert', got {self.kind!r}")
        if self.kind == "hubert" and not self.hubert_path:
            raise ValueError("audio feature kind 'hubert' needs hubert_path (a local HuBERT directory)")

    def to_dict(self) -> dict:
        return asdict(self)
