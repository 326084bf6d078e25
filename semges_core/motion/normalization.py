"""Per-dimension mean/std of a feature over a whole dataset, saved beside a model.

The statistics are computed in one streaming pass (Chan et al.'s parallel
update) so a dataset never has to fit in memory at once, and the std is
floored so a constant dimension (a joint that never moves) maps to 0 rather
than to inf.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, TypeVar

import numpy as np

from semges_core.errors import InputFileError
from semges_core.fileio import atomic_path
from semges_core.motion.arrays import namespace

if TYPE_CHECKING:
    import torch

Array = TypeVar("Array", np.ndarray, "torch.Tensor")


@dataclass
class NormStats:
    """mean and std, both (D,) float64: x_norm = (x - mean) / std."""

    mean: np.ndarray
    std: np.ndarray

    def __post_init__(self) -> None:
        self.mean = np.asarray(self.mean, dtype=np.float64)
        self.std = np.asarray(self.std, dtype=np.float64)
        if self.mean.ndim != 1 or self.mean.shape != self.std.shape:
            raise ValueError(
                f"mean and std must both have shape (D,), got {self.mean.shape} and {self.std.shape}"
            )
        if not (np.all(np.isfinite(self.mean)) and np.all(np.isfinite(self.std)) and np.all(self.std > 0)):
            raise ValueError("mean must be finite and std finite and positive")

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    @classmethod
    def from_arrays(cls, arrays: Iterable[np.ndarray], eps: float = 1e-4) -> NormStats:
        """Statistics over the rows of every (T, D) array, as if they were concatenated.

        std is the population std (numpy's default, ddof=0), floored at `eps`.
        """
        count, dim = 0, -1
        mean = m2 = np.zeros(0)  # m2: sum of squared deviations from the mean
        for i, a in enumerate(arrays):
            a = np.asarray(a, dtype=np.float64)
            if a.ndim != 2:
                raise ValueError(f"array {i} must have shape (T, D), got {a.shape}")
            if dim >= 0 and a.shape[1] != dim:
                raise ValueError(f"array {i} has {a.shape[1]} dimensions, the earlier ones {dim}")
            dim, n = a.shape[1], a.shape[0]
            if n == 0:
                continue
            batch_mean = a.mean(axis=0)
            batch_m2 = ((a - batch_mean) ** 2).sum(axis=0)
            if count == 0:
                count, mean, m2 = n, batch_mean, batch_m2
                continue
            total = count + n
            delta = batch_mean - mean
            mean = mean + delta * (n / total)
            m2 = m2 + batch_m2 + delta**2 * (count * n / total)
            count = total
        if count == 0:
            raise ValueError("no rows to compute normalisation statistics from")
        std = np.maximum(np.sqrt(m2 / count), eps)
        return cls(mean, std)

    def normalize(self, x: Array) -> Array:
        """(..., D) -> (x - mean) / std, in x's type, dtype and device."""
        mean, std = self._like(x)
        return (x - mean) / std

    def denormalize(self, x: Array) -> Array:
        """(..., D) -> x * std + mean, in x's type, dtype and device."""
        mean, std = self._like(x)
        return x * std + mean

    def _like(self, x):
        if x.shape[-1] != self.dim:
            raise ValueError(f"expected (..., {self.dim}) features, got shape {tuple(x.shape)}")
        xp = namespace(x)  # torch for a tensor, without importing torch for numpy
        return xp.asarray(self.mean, like=x), xp.asarray(self.std, like=x)

    def save(self, path: str | Path) -> None:
        """Write an .npz with arrays `mean` and `std`, atomically."""
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            # A file object, so numpy does not append ".npz" to the temporary name.
            np.savez(f, mean=self.mean, std=self.std)

    @classmethod
    def load(cls, path: str | Path) -> NormStats:
        """Read what `save` wrote; a missing, corrupt or wrong-shaped file is an InputFileError."""
        path = Path(path)
        if not path.is_file():
            raise InputFileError(path, "normalisation statistics file not found")
        try:
            with np.load(path, allow_pickle=False) as data:
                missing = [k for k in ("mean", "std") if k not in data.files]
                if missing:
                    raise InputFileError(path, f"not normalisation statistics: missing {', '.join(missing)}")
                mean, std = data["mean"], data["std"]
        except InputFileError:
            raise
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as e:
            raise InputFileError(path, f"not a readable .npz file ({e})") from None
        if mean.ndim != 1 or mean.shape != std.shape:
            raise InputFileError(
                path, f"mean and std must both have shape (D,), got {mean.shape} and {std.shape}"
            )
        if not (np.issubdtype(mean.dtype, np.floating) and np.issubdtype(std.dtype, np.floating)):
            raise InputFileError(path, f"mean and std must be floating point, got {mean.dtype} and {std.dtype}")
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std)) and np.all(std > 0)):
            raise InputFileError(path, "mean must be finite and std finite and positive")
        return cls(mean, std)
