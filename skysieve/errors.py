"""One exception root for everything skysieve raises on purpose.

Every subclass also inherits the matching built-in, carries the offending path or id, and its message
says what to do about it. The CLI maps :class:`SkysieveError` to a one-line message and exit code
``exit_code``; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "SkysieveError",
    "UsageError",
    "WorkspaceError",
    "WorkspaceNotFoundError",
    "WorkspaceExistsError",
    "GridError",
    "CRSError",
    "ImageReadError",
    "MetadataError",
    "MosaicError",
    "ModelError",
    "DetectionError",
    "LedgerError",
    "TransitionError",
    "NotFoundError",
    "ExportError",
    "DatasetError",
]


class SkysieveError(Exception):
    """Root of skysieve's own errors. ``path`` or ``ref`` names what was wrong, ``hint`` what to do."""

    exit_code = 1

    def __init__(self, message: str, *, path: str | Path | None = None, ref: str | None = None,
                 hint: str | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.ref = ref
        self.hint = hint
        super().__init__(message)

    def __str__(self) -> str:
        text = str(self.args[0]) if self.args else ""  # not super(): KeyError's __str__ would quote it
        if self.path is not None and str(self.path) not in text:
            text = f"{self.path}: {text}"
        if self.hint:
            text = f"{text} ({self.hint})"
        return text


class UsageError(SkysieveError, ValueError):
    """A command was given arguments that cannot work together."""

    exit_code = 2


class WorkspaceError(SkysieveError, OSError):
    """The survey workspace is missing, damaged or not what a stage expects."""


class WorkspaceNotFoundError(WorkspaceError, FileNotFoundError):
    """No workspace at the given path."""


class WorkspaceExistsError(WorkspaceError, FileExistsError):
    """``init`` found a workspace already there."""


class GridError(SkysieveError, ValueError):
    """A grid file could not be read or holds no usable cells."""


class CRSError(SkysieveError, ValueError):
    """A coordinate reference system is unknown, geographic where a projected one is needed, or missing."""


class ImageReadError(SkysieveError, OSError):
    """An image file cannot be read or decoded."""


class MetadataError(SkysieveError, ValueError):
    """An image lacks metadata a stage needs (GPS, focal length, ...)."""


class MosaicError(SkysieveError, RuntimeError):
    """An orthomosaic cannot be built or read."""


class ModelError(SkysieveError, OSError):
    """A model file is missing, corrupt, or has other classes than expected."""


class DetectionError(SkysieveError, RuntimeError):
    """Detection cannot run on a cell (no mosaic, ...)."""


class LedgerError(SkysieveError, RuntimeError):
    """The suspect list refused a change."""


class TransitionError(LedgerError, ValueError):
    """A status change that the suspect lifecycle does not allow."""


class NotFoundError(SkysieveError, KeyError):
    """An id (cell, detection, suspect, site) does not exist in the workspace: the command named it (exit 2)."""

    exit_code = 2


class ExportError(SkysieveError, OSError):
    """An export could not be written."""


class DatasetError(SkysieveError, ValueError):
    """A synthetic world, flight or training set is missing or malformed."""
