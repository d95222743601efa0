"""``skysieve suspects WS export``: the suspect list in each format field teams and GIS staff use.

Data formats (one file each): GeoJSON, KML, KMZ (with evidence chips), GPX, CSV (WGS 84 + GCJ-02 +
BD-09 columns), GeoPackage. Dispatch sheets (``html``, ``pdf``): ``OUT`` is a folder that gets one
sheet per team.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from skysieve.errors import ExportError
from skysieve.workspace import Workspace

from .dispatch import sheet_name, team_sheets, write_dispatch_html, write_dispatch_pdf
from .field_formats import write_csv, write_geojson, write_gpkg, write_gpx
from .kml import write_kml, write_kmz
from .outputs import check_output
from .records import FieldRecord, SuspectFilter, field_records

__all__ = ["EXPORT_FORMATS", "DATA_FORMATS", "SHEET_FORMATS", "ExportResult", "export_suspects", "export_records",
           "export_all"]

log = logging.getLogger(__name__)

_WRITERS: dict[str, Callable[[Sequence[FieldRecord], Path], Path]] = {
    "geojson": write_geojson, "kml": write_kml, "kmz": write_kmz, "gpx": write_gpx, "csv": write_csv,
    "gpkg": write_gpkg,
}
DATA_FORMATS = tuple(_WRITERS)
SHEET_FORMATS = ("html", "pdf")
EXPORT_FORMATS = DATA_FORMATS + SHEET_FORMATS


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote: the format, the files, and how many suspects they hold."""

    format: str
    paths: tuple[Path, ...]
    count: int


def export_records(ws: Workspace, records: Sequence[FieldRecord], fmt: str, out: str | Path) -> ExportResult:
    """Write ``records`` as ``fmt`` to ``out`` (a file; a folder for dispatch sheets).

    ``out`` may not be the workspace's own database, settings or internal folders
    (:class:`~skysieve.ledger.outputs.ProtectedPathError`, nothing written)."""
    fmt = fmt.lower()
    out = Path(out)
    if fmt in _WRITERS or fmt in SHEET_FORMATS:
        check_output(ws, out, f"{fmt} export" if fmt in _WRITERS else f"{fmt} dispatch sheets")
    if fmt in _WRITERS:
        if out.is_dir():
            raise ExportError(f"{out} is a folder; a {fmt} export is one file", path=out,
                              hint=f"give a file name, e.g. {out / ('suspects.' + fmt)}")
        try:
            path = _WRITERS[fmt](records, out)
        except OSError as e:
            raise ExportError(f"cannot write {out}: {e}", path=out, hint="check the folder exists and is writable") from e
        return ExportResult(fmt, (path,), len(records))
    if fmt in SHEET_FORMATS:
        if out.suffix.lower() in (".html", ".pdf"):
            raise ExportError("dispatch sheets go to a folder (one sheet per team)", path=out,
                              hint=f"give a folder, e.g. {out.with_suffix('')}")
        out.mkdir(parents=True, exist_ok=True)
        writer = write_dispatch_html if fmt == "html" else write_dispatch_pdf
        paths: list[Path] = []
        for team, group in team_sheets(records).items():
            target = out / sheet_name(team, fmt)
            n = 1
            while target in paths:  # two team names that make the same file name
                n += 1
                target = out / sheet_name(f"{team}-{n}", fmt)
            check_output(ws, target, f"{fmt} dispatch sheet")
            paths.append(writer(ws, team, group, target))
        if not paths:
            log.warning("no suspects selected: no dispatch sheet written")
        return ExportResult(fmt, tuple(paths), len(records))
    raise ExportError(f"unknown export format {fmt!r}", hint="use one of " + ", ".join(EXPORT_FORMATS))


def export_suspects(ws: Workspace, fmt: str, out: str | Path, flt: SuspectFilter | None = None) -> ExportResult:
    """Export the suspects ``flt`` selects (default: all) as ``fmt`` to ``out``."""
    if fmt.lower() not in EXPORT_FORMATS:
        raise ExportError(f"unknown export format {fmt!r}", hint="use one of " + ", ".join(EXPORT_FORMATS))
    return export_records(ws, field_records(ws, flt), fmt, out)


def export_all(ws: Workspace, out_dir: str | Path, flt: SuspectFilter | None = None, *,
               formats: Sequence[str] = EXPORT_FORMATS, stem: str = "suspects") -> dict[str, ExportResult]:
    """Every format into ``out_dir`` (``suspects.<ext>``, dispatch sheets under ``dispatch/``)."""
    out_dir = Path(out_dir)
    records = field_records(ws, flt)
    results = {}
    for fmt in formats:
        target = out_dir / "dispatch" if fmt in SHEET_FORMATS else out_dir / f"{stem}.{fmt}"
        results[fmt] = export_records(ws, records, fmt, target)
    return results
