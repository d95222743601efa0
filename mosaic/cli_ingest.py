"""``skysieve ingest WORKSPACE FLIGHT_DIR [--flight-id ID] [--altitude M]``: a flight's photos into the workspace."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["register"]


def _cmd_ingest(args: argparse.Namespace) -> int:
    from skysieve.cli import emit
    from skysieve.workspace import Workspace

    from .ingest import ingest_flight

    ws = Workspace.open(args.workspace)
    result = ingest_flight(ws, args.flight_dir, flight_id=args.flight_id, altitude_m=args.altitude)
    emit(args, result.summary(), result.text())
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    from skysieve.cli import add_json_flag

    p = subparsers.add_parser(
        "ingest", help="read a flight's photos: metadata, quality checks, footprints, grid cells",
        description="Ingest every JPEG under FLIGHT_DIR: EXIF/DJI XMP, height above ground, footprint, GSD and "
                    "grid cells; bad photos are rejected with a reason. Rerunning resumes (known photos are skipped).")
    p.add_argument("workspace", type=Path, help="the survey workspace (made by `skysieve init`)")
    p.add_argument("flight_dir", type=Path, help="folder with the flight's JPEGs (searched recursively)")
    p.add_argument("--flight-id", help="flight id (default: the nearest folder name that is not generic, card1 for 'card1/DCIM/100MEDIA'; a clash with another folder's flight gets -2, -3 ...)")
    p.add_argument("--altitude", type=float, metavar="M",
                   help="height above ground in metres, for photos where XMP, GPS and the images give none")
    add_json_flag(p)
    p.set_defaults(func=_cmd_ingest)
