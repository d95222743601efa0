"""The ``skysieve`` command: one command, thin subcommands over the library.

Each stage package contributes its subcommands through a ``register(subparsers)`` function in its
own ``cli`` module (listed in :data:`STAGE_CLIS`), so stages never edit each other's code. A handler
is ``handler(args) -> int`` stored as ``func`` on its parser; it parses, calls one library function,
and prints a one-line summary (or JSON with ``--json``). :class:`SkysieveError` becomes a clear
message and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from skysieve import __version__
from skysieve.errors import SkysieveError
from skysieve.log import configure_logging

__all__ = ["main", "build_parser", "emit", "STAGE_CLIS"]

log = logging.getLogger(__name__)

#: modules whose ``register(subparsers)`` adds subcommands; a missing one is skipped (stage not built yet)
STAGE_CLIS = (
    "skysieve.mosaic.cli_ingest",
    "skysieve.mosaic.cli_mosaic",
    "skysieve.datasets.cli",
    "skysieve.detect.cli",
    "skysieve.ledger.cli",
    "skysieve.viewer.cli",
    "skysieve.demo",
)


def emit(args: argparse.Namespace, summary: dict[str, Any], text: str) -> None:
    """Print a command's result: ``text`` for people, or ``summary`` as JSON with ``--json``."""
    if getattr(args, "json", False):
        print(json.dumps(summary, indent=2, ensure_ascii=False, default=str))
    else:
        print(text)


def _cmd_init(args: argparse.Namespace) -> int:
    from skysieve.workspace import Workspace

    ws = Workspace.create(args.workspace, crs=args.crs, grid=args.grid, cell_size_m=args.cell_size)
    n_cells = ws.gpkg.count("cells") if ws.gpkg.has_layer("cells") else 0
    crs = ws.settings.crs or "chosen from the first flight"
    grid = f"{n_cells} cells imported from {Path(args.grid).name}" if args.grid else \
        f"regular {ws.settings.cell_size_m:g} m cells, created as flights touch them"
    emit(args, {"workspace": str(ws.root), "crs": ws.settings.crs, "cells": n_cells, "grid": ws.settings.grid},
         f"workspace {ws.root}: CRS {crs}; {grid}")
    return 0


def add_json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skysieve",
        description="Drone imagery to a suspect list of illegal small chemical workshops (小化工).",
    )
    parser.add_argument("--version", action="version", version=f"skysieve {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("init", help="create a survey workspace (folder + survey.gpkg)")
    p.add_argument("workspace", type=Path)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--grid", type=Path, help="the county's grid cells (GeoJSON, GeoPackage or Shapefile, any CRS)")
    g.add_argument("--cell-size", type=float, help="regular grid cell size in metres (default 250)")
    p.add_argument("--crs", help="projected CRS, e.g. EPSG:4547 (default: from the grid or first flight)")
    add_json_flag(p)
    p.set_defaults(func=_cmd_init)

    for name in STAGE_CLIS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name and (e.name == name or name.startswith(e.name + ".")):
                continue  # stage not present in this build
            raise
        module.register(sub)
    _verbose_everywhere(sub)
    return parser


def _verbose_everywhere(sub: argparse._SubParsersAction) -> None:
    """``-v`` after the command too (``skysieve report WS -v``), as users type it (given on both sides, the
    count after the command is taken)."""
    for p in sub.choices.values():
        if not any("-v" in a.option_strings for a in p._actions):  # noqa: SLF001
            p.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                           help="more logging (-vv for debug)")
        for action in p._actions:  # noqa: SLF001
            if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
                _verbose_everywhere(action)


def _cannot_write(e: BaseException) -> str | None:
    """A one-line message for a workspace (or output) that cannot be written, else None (a bug: keep the
    traceback)."""
    import errno

    if isinstance(e, sqlite3.OperationalError) and "readonly" in str(e):
        return ("the workspace database cannot be written (a read-only folder, disk or mount); "
                "copy the workspace somewhere writable, or fix its permissions")
    if isinstance(e, OSError) and e.errno in (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC):
        where = f" {e.filename}" if e.filename else ""
        if e.errno in (errno.EACCES, errno.EPERM):  # a photo that cannot be read as much as a folder not written
            return f"cannot access{where}: {e.strerror} (fix its permissions, or pick a place you may write to)"
        fix = "free some space" if e.errno == errno.ENOSPC else "copy the workspace somewhere writable"
        return f"cannot write{where}: {e.strerror} ({fix})"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except SkysieveError as e:
        print(f"skysieve: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("skysieve: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except (sqlite3.OperationalError, OSError) as e:  # PermissionError is an OSError
        why = _cannot_write(e)
        if why is None:
            raise
        print(f"skysieve: error: {why}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
