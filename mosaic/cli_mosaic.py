"""``skysieve mosaic`` and ``skysieve import-ortho``: thin commands over :mod:`skysieve.mosaic.ortho`."""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict
from pathlib import Path

from skysieve.cli import add_json_flag, emit
from skysieve.mosaic.tiecache import MAX_AGE_DAYS, MAX_BYTES

__all__ = ["register"]


def _fmt(v, spec: str = ".2f") -> str:
    return "-" if v is None else format(v, spec)


def _cmd_mosaic(args: argparse.Namespace) -> int:
    from skysieve.mosaic.ortho import build_mosaics
    from skysieve.mosaic.tiecache import prune

    started = time.time() - 2.0  # file times may be coarser than the clock
    reports = build_mosaics(args.workspace, cells=args.cell or None, gsd_m=args.gsd, workers=args.workers,
                            force=args.force)
    built = [r for r in reports if r["status"] == "built"]
    skipped = [r for r in reports if r["status"] == "skipped"]
    failed = [r for r in reports if r["status"] == "failed"]
    empty = [r for r in reports if r["status"] == "empty"]
    lines = []
    for r in reports:
        if r["status"] in ("built", "skipped"):
            lines.append(f"  {r['cell_id']}: {r['status']}, {len(r['images_used'])} photos "
                         f"({len(r['images_flagged'])} flagged), ties {_fmt(r.get('tie_rms_before_px'))} -> "
                         f"{_fmt(r.get('tie_rms_after_px'))} px, shift from GPS {_fmt(r.get('mean_shift_from_gps_m'))} m, "
                         f"{100 * r['cell_covered']:.0f}% covered at {r['gsd_m'] * 100:.1f} cm/px")
        elif r["status"] == "failed":
            lines.append(f"  {r['cell_id']}: FAILED: {r['error']}")
    cache = prune(args.workspace, max_age_days=args.cache_days, max_bytes=int(args.cache_gb * (1 << 30)),
                  keep_since=started)
    lines.append(f"mosaic cache: {cache.kept_bytes / 1e6:.0f} MB kept"
                 + (f", {cache.removed_files} unused entries ({cache.removed_bytes / 1e6:.0f} MB) pruned"
                    if cache.removed_files else ""))
    lines.append(f"mosaic: {len(built)} cells built, {len(skipped)} unchanged, {len(failed)} failed, "
                 f"{len(empty)} with no photos to mosaic; "
                 f"orthos in {Path(args.workspace) / 'cells'}/<cell>/ortho.tif")
    if not reports:
        lines.append("  nothing to mosaic: no cell has accepted photos yet "
                     f"(ingest a flight first: `skysieve ingest {args.workspace} FLIGHT_FOLDER`)")
    emit(args, {"cells": reports, "cache": asdict(cache)}, "\n".join(lines))
    return 1 if (failed and not built and not skipped) or not reports else 0


def _cmd_import(args: argparse.Namespace) -> int:
    from skysieve.mosaic.import_ortho import import_ortho

    reports = import_ortho(args.workspace, args.ortho, gsd_m=args.gsd)
    lines = [f"  {r['cell_id']}: {100 * r['cell_covered']:.0f}% covered at {r['gsd_m'] * 100:.1f} cm/px"
             for r in reports]
    lines.append(f"import-ortho: {Path(args.ortho).name} cut into {len(reports)} cells")
    emit(args, {"cells": reports}, "\n".join(lines))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("mosaic", help="build one orthomosaic (COG) per grid cell from the accepted photos")
    p.add_argument("workspace", type=Path)
    p.add_argument("--cell", action="append", metavar="ID", help="only this cell (repeatable); default: every cell with photos")
    p.add_argument("--gsd", type=float, metavar="M", help="output pixel size in metres (default: the photos' native GSD)")
    p.add_argument("--workers", type=int, help="parallel processes (default: one per 4 CPUs, each rendering with 4 threads)")
    p.add_argument("--force", action="store_true", help="rebuild cells whose inputs did not change")
    p.add_argument("--cache-days", type=float, default=MAX_AGE_DAYS, metavar="N",
                   help=f"prune feature and tie cache entries unused for N days ({MAX_AGE_DAYS:g})")
    p.add_argument("--cache-gb", type=float, default=MAX_BYTES / (1 << 30), metavar="G",
                   help=f"prune each flight's cache to G GiB, least recently used first; what this run used stays "
                        f"({MAX_BYTES / (1 << 30):g})")
    add_json_flag(p)
    p.set_defaults(func=_cmd_mosaic)

    p = subparsers.add_parser("import-ortho", help="cut an orthophoto made elsewhere (ODM, DJI Terra, Pix4D) into cells")
    p.add_argument("workspace", type=Path)
    p.add_argument("ortho", type=Path, help="a georeferenced GeoTIFF (any CRS)")
    p.add_argument("--gsd", type=float, metavar="M", help="output pixel size in metres (default: the file's own)")
    add_json_flag(p)
    p.set_defaults(func=_cmd_import)
