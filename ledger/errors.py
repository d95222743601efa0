"""The ledger's refinements of :mod:`skysieve.errors`."""

from __future__ import annotations

from skysieve.errors import ExportError, NotFoundError

__all__ = ["ProtectedPathError", "UnknownIdError", "UnknownCellError"]


class ProtectedPathError(ExportError):
    """An output path that is (or lies inside) the workspace's own data: a usage error, nothing written."""

    exit_code = 2


class UnknownIdError(NotFoundError):
    """An id that names nothing in the workspace, printed plainly: ``str()`` of a ``KeyError`` would show the
    message in quotes (``"no suspect 'S9' ..."``)."""

    def __str__(self) -> str:
        text = str(self.args[0]) if self.args else ""
        if self.path is not None and str(self.path) not in text:
            text = f"{self.path}: {text}"
        if self.hint:
            text = f"{text} ({self.hint})"
        return text


class UnknownCellError(UnknownIdError):
    """A ``--cell`` given on the command line that is not a cell of the workspace (a usage error)."""

    exit_code = 2
