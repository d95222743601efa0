"""The ledger's refinements of :mod:`skysieve.errors`."""

from __future__ import annotations

from skysieve.errors import ExportError, NotFoundError

__all__ = ["ProtectedPathError", "UnknownIdError", "UnknownCellError"]


class ProtectedPathError(ExportError):
    """An output path that is (or lies inside) the workspace's own data: a usage error, nothing written."""

    exit_code = 2


class UnknownIdError(NotFoundError):
    """An id that names nothing in the workspace (a usage error, printed plainly: :class:`NotFoundError`)."""


class UnknownCellError(UnknownIdError):
    """A ``--cell`` given on the command line that is not a cell of the workspace."""
