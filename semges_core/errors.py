"""Errors a user can act on.

Every failure caused by a user's file is an `InputFileError` that names the file,
the line when there is one, and what was expected, so the command line and the
Blender panel can show it as it is, without a traceback.
"""

from __future__ import annotations

from pathlib import Path


class SemgesError(Exception):
    """Base class of every error this project raises on purpose."""


class InputFileError(SemgesError):
    """A file given to us is missing, unreadable or malformed."""

    def __init__(self, path: str | Path, message: str, line: int | None = None) -> None:
        self.path = Path(path)
        self.line = line
        self.message = message
        where = f"{self.path}:{line}" if line is not None else f"{self.path}"
        super().__init__(f"{where}: {message}")


class BVHFormatError(InputFileError):
    """A BVH file does not follow the format."""


class AudioFileError(InputFileError):
    """An audio file is missing, unreadable, empty or not audio."""


class TranscriptError(InputFileError):
    """A transcript or TextGrid is missing, empty, undecodable or malformed."""


class AnnotationError(InputFileError):
    """A BEAT semantic (.txt) or emotion (.csv) annotation is malformed."""


class DatasetError(SemgesError):
    """A dataset directory is missing takes, has misnamed files or an unusable cache."""
