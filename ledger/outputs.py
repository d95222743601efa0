"""Where the ledger may write what a user names: anywhere but over the workspace's own files.

An export, a dispatch sheet folder or the report given as ``WS/survey.gpkg``, ``WS/skysieve.toml`` or a
path inside ``WS/cells/``, ``WS/flights/`` (the uploaded photos, the mosaic cache), ``WS/chips/``... would
replace the survey itself; :func:`check_output` refuses such a path before anything is written. Paths
are compared as written and resolved (relative paths, ``..``, symlinks: ``flights/`` holds links to the
uploaded photos, wherever they are) and, where they exist, as the same file on disk (hard links,
case-insensitive file systems). ``WS/exports/`` and any other place are fine.
"""

from __future__ import annotations

import os
from pathlib import Path

from skysieve.errors import ExportError
from skysieve.workspace import GPKG_FILE, INTERNAL_DIRS, SETTINGS_FILE, Workspace

__all__ = ["ProtectedPathError", "INTERNAL_FILES", "INTERNAL_DIRS", "check_output"]

class ProtectedPathError(ExportError):
    """An output path that is (or lies inside) the workspace's own data: a usage error, nothing written."""

    exit_code = 2


#: the workspace's own files (the database with SQLite's side files, the settings)
INTERNAL_FILES = (GPKG_FILE, f"{GPKG_FILE}-wal", f"{GPKG_FILE}-shm", f"{GPKG_FILE}-journal", SETTINGS_FILE)


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _existing_ancestors(p: Path) -> list[Path]:
    return [a for a in (p, *p.parents) if a.exists()]


def _what_it_hits(p: Path, root: Path) -> str | None:
    for name in INTERNAL_FILES:
        own = root / name
        if p == own or (p.exists() and _same(p, own)):
            return f"that is the workspace's {'settings file' if name == SETTINGS_FILE else 'database'} ({name})"
    ancestors = _existing_ancestors(p)
    for name in INTERNAL_DIRS:
        own = root / name
        if p.is_relative_to(own) or any(_same(a, own) for a in ancestors):
            inside = not (p == own or (p.exists() and _same(p, own)))
            return f"that is {'inside ' if inside else ''}the workspace's own folder {name}/"
    return None


def check_output(ws: Workspace, path: str | Path, what: str = "output") -> Path:
    """Return ``path`` (unchanged) if writing there leaves the workspace intact; else raise
    :class:`ProtectedPathError` naming what it would overwrite."""
    given = Path(path).expanduser()
    # the path as written (a link under flights/ to an uploaded photo elsewhere is still inside flights/)
    # and resolved (relative parts, .., symlinks), against the workspace as opened and resolved
    paths = dict.fromkeys((Path(os.path.abspath(given)), given.resolve()))
    roots = dict.fromkeys((Path(os.path.abspath(ws.root)), ws.root.resolve()))
    hit: str | None = None
    for p, root in ((p, r) for p in paths for r in roots):
        hit = _what_it_hits(p, root)
        if hit is not None:
            break
    if hit is not None:
        raise ProtectedPathError(f"refusing to write the {what} to {given}: {hit}",
                                 path=given, hint=f"write it elsewhere, e.g. under {ws.root / 'exports'}")
    return given
