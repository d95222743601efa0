"""Field records: suspects as field teams see them (WGS 84 + GCJ-02 + BD-09, labels), for every export.

Built from the ledger in one pass: the spot and the outline are transformed to WGS 84 in bulk,
GCJ-02/BD-09 computed in bulk (:mod:`.chinese_datums`); nothing is written back.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from skysieve.errors import ExportError
from skysieve.workspace import Workspace

from .categories import SUSPECT_CATEGORIES
from .chinese_datums import wgs84_to_bd09, wgs84_to_gcj02
from .lifecycle import DISPOSAL_MEASURES, STATUS_BY_CODE
from .suspects import list_suspects

__all__ = ["FieldRecord", "field_records", "SuspectFilter", "amap_navigation_uri", "RECORD_COLUMNS",
           "record_values"]

_CATS = {c.code: c for c in SUSPECT_CATEGORIES}
_MEAS = {m.code: m for m in DISPOSAL_MEASURES}


@dataclass(frozen=True)
class SuspectFilter:
    """Which suspects an export takes (``None`` = any)."""

    statuses: tuple[str, ...] | None = None
    team: str | None = None
    townships: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        bad = [s for s in self.statuses or () if s not in STATUS_BY_CODE]
        if bad:
            raise ExportError(f"unknown suspect status {bad[0]!r}", hint="use " + ", ".join(STATUS_BY_CODE))


@dataclass(frozen=True)
class FieldRecord:
    """One suspect for the field. Coordinates in degrees, longitude first in each pair."""

    suspect_id: str
    lon: float  # WGS 84
    lat: float
    gcj_lon: float  # GCJ-02 (Amap / Tencent)
    gcj_lat: float
    bd_lon: float  # BD-09 (Baidu)
    bd_lat: float
    status: str
    status_label: str
    category: str
    category_label: str
    township: str
    village: str
    cell_id: str
    site_name: str
    team: str
    classes: str
    n_detections: int
    max_score: float | None
    priority: float | None
    measures: str  # labels, "; "-separated
    note: str
    findings: str
    created_at: str
    updated_at: str
    det_ids: tuple[str, ...]
    chips: tuple[Path, ...]  # absolute paths of the evidence chips that exist
    outline: shapely.Polygon | None  # WGS 84 lon/lat
    x: float  # workspace CRS (metres), for map chips
    y: float

    @property
    def name(self) -> str:
        """A short placemark name: id, township, village."""
        where = " ".join(p for p in (self.township, self.village) if p)
        return f"{self.suspect_id} {where}".strip()


#: the flat columns of a record, in export order (CSV header, GeoJSON / GeoPackage properties)
RECORD_COLUMNS = ("suspect_id", "lon", "lat", "gcj_lon", "gcj_lat", "bd_lon", "bd_lat", "status", "status_label",
                  "category", "category_label", "township", "village", "cell_id", "site_name", "team", "classes",
                  "n_detections", "max_score", "priority", "measures", "note", "findings", "created_at",
                  "updated_at")


def amap_navigation_uri(r: FieldRecord) -> str:
    """An Amap URI that opens navigation to the spot (GCJ-02, as Amap expects); works in a browser too."""
    from urllib.parse import quote

    return (f"https://uri.amap.com/navigation?to={r.gcj_lon:.6f},{r.gcj_lat:.6f},{quote(r.suspect_id)}"
            "&mode=car&coordinate=gaode&callnative=1")


def _s(value: Any) -> str:
    return "" if value is None else str(value)


def field_records(ws: Workspace, flt: SuspectFilter | None = None, *,
                  rows: Iterable[dict[str, Any]] | None = None) -> list[FieldRecord]:
    """The suspects ``flt`` selects (or the given decoded ``rows``), as field records, by id."""
    flt = flt or SuspectFilter()
    if rows is None:
        rows = list_suspects(ws, statuses=flt.statuses, team=flt.team, townships=flt.townships, outlines=True)
    rows = list(rows)
    if not rows:
        return []
    lon = np.array([r["lon"] for r in rows], dtype=float)
    lat = np.array([r["lat"] for r in rows], dtype=float)
    g_lon, g_lat = wgs84_to_gcj02(lon, lat)
    b_lon, b_lat = wgs84_to_bd09(lon, lat)
    outlines = np.array([r.get("outline") for r in rows], dtype=object)
    have = np.array([o is not None for o in outlines])
    if have.any():

        def to_ll(xy: np.ndarray) -> np.ndarray:
            lo, la = ws.to_lonlat(xy[:, 0], xy[:, 1])
            return np.column_stack([lo, la])

        outlines[have] = shapely.transform(outlines[have], to_ll)
    out = []
    for i, r in enumerate(rows):
        cat = _CATS.get(r.get("category") or "")
        st = STATUS_BY_CODE.get(r["status"])
        out.append(FieldRecord(
            suspect_id=r["suspect_id"], lon=float(lon[i]), lat=float(lat[i]), gcj_lon=float(g_lon[i]),
            gcj_lat=float(g_lat[i]), bd_lon=float(b_lon[i]), bd_lat=float(b_lat[i]), status=r["status"],
            status_label=f"{st.zh} / {st.en}" if st else r["status"], category=_s(r.get("category")),
            category_label=cat.label if cat else "未定 / not yet known", township=_s(r.get("township")),
            village=_s(r.get("village")), cell_id=_s(r.get("cell_id")), site_name=_s(r.get("site_name")),
            team=_s(r.get("team")), classes=_s(r.get("classes")), n_detections=int(r.get("n_detections") or 0),
            max_score=r.get("max_score"), priority=r.get("priority"),
            measures="; ".join(f"{_MEAS[m].zh} / {_MEAS[m].en}" if m in _MEAS else m for m in r["measures"]),
            note=_s(r.get("note")), findings=_s(r.get("findings")), created_at=_s(r.get("created_at")),
            updated_at=_s(r.get("updated_at")), det_ids=tuple(r["det_ids"]),
            chips=tuple(p for p in (ws.root / c for c in r["chips"]) if p.exists()),
            outline=outlines[i], x=float(r["x"]), y=float(r["y"]),
        ))
    return out


def record_values(r: FieldRecord) -> dict[str, Any]:
    """The flat columns of a record (:data:`RECORD_COLUMNS`) as a dict."""
    return {c: getattr(r, c) for c in RECORD_COLUMNS}
