"""Errors the Blender side raises on purpose; all are `SemgesError`s, shown to the user as one line."""

from __future__ import annotations

from semges_core.errors import InputFileError, SemgesError  # torch-free


class MotionFileError(InputFileError):
    """A motion .npz is missing or is not one SemGes wrote."""


class MappingError(SemgesError):
    """A bone-mapping preset is unknown, malformed, or does not fit the armature."""


class MissingBonesError(MappingError):
    """Bones a mapping needs are not in the target armature; nothing was changed."""

    def __init__(self, armature: str, preset: str, missing: list[str]) -> None:
        self.armature = armature
        self.preset = preset
        self.missing = list(missing)
        shown = ", ".join(self.missing[:12]) + (f" and {len(self.missing) - 12} more" if len(self.missing) > 12 else "")
        super().__init__(f"armature {armature!r} lacks {len(self.missing)} bone(s) that mapping {preset!r} needs: "
                         f"{shown}; nothing was changed (pick another preset, edit the mapping, or allow missing bones)")


class WorkerError(SemgesError):
    """Generation in the worker process failed; the message is the worker's own one line."""


class RuntimeNotFound(WorkerError):
    """No Python that can import torch and semges_core was found for the worker."""
