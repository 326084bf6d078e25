"""Writing files so that a failure never leaves a half-written output behind, and refusing pickles unread."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

from semges_core.errors import InputFileError


def _umask_mode() -> int:
    """The mode a plain open() would give a new file (mkstemp's files are owner-only)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside `path` for libraries that write by file name (soundfile, numpy)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as f:  # on disk before the rename, so a crash leaves the old file or the new
            os.fsync(f.fileno())
        os.chmod(tmp, _umask_mode())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


@contextmanager
def atomic_write(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file beside `path`; rename it over `path` only if the block succeeds."""
    binary = "b" in mode
    with atomic_path(path) as tmp:
        with open(tmp, mode, encoding=None if binary else encoding, newline=None if binary else "") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())


def refuse_pickles(path: str | Path) -> None:
    """InputFileError when a model file is a pickle or a torch.save archive, said in those words.

    The commonest wrong file given as a bundle is a pickled checkpoint; safetensors would
    only call it "not a safetensors file".

    Nothing here unpickles: only the first bytes are looked at. Unpickling a file
    from someone else can run any code, which is why bundles are safetensors only.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError:
        return  # the caller's own reading reports it
    if head[8:9] == b"{":
        return  # a safetensors JSON header (whose length may well start with these bytes)
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        kind = "a Python pickle"
    elif head[:4] == b"PK\x03\x04":
        kind = "a zip archive (torch.save writes these; it holds a pickle)"
    else:
        return
    raise InputFileError(path, f"is {kind}, not a safetensors model bundle; SemGes never unpickles files, since "
                               "that can run any code. Export a bundle with `python -m training.export_bundle`")
