"""Importing the county's site registers (and leads) into the ``sites`` layer.

Accepted files: GeoJSON (``.geojson``/``.json``), GeoPackage (``.gpkg``, every layer with geometries;
any CRS the file declares), and CSV (``.csv``, UTF-8 or GBK) with columns ``lon``, ``lat`` (WGS 84
degrees), ``kind``, ``name`` and optionally ``site_id``, ``address``, ``township``, ``village``,
``note``. Chinese headers (经度, 纬度, 类型, 名称, 地址, 乡镇, 村, 备注) and Chinese kind names
(闲置厂房, 关停企业, ...) are understood too.

``kind`` is one of :data:`skysieve.schema.SITE_KINDS`; ``lead`` marks a tip from another source (an
address whose power use jumped, a point where a hazardous-goods truck stopped). Points become circles
of :data:`POINT_RADIUS_M` metres (a small compound), lines are buffered the same, polygons are kept
(the largest part of a multipolygon). Rows without a position or with an unknown kind are rejected one
by one with a reason; the others are imported. A row's ``site_id`` (when the file has none: ``kind``,
the file name and the rounded position) makes re-importing a corrected register replace its rows
rather than duplicate them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pyproj import CRS

from skysieve.crs import crs_area_text, in_crs_area, reproject
from skysieve.errors import SkysieveError, UsageError
from skysieve.schema import SITE_KINDS, SITES
from skysieve.workspace import Workspace

__all__ = ["POINT_RADIUS_M", "KIND_ALIASES", "SiteImport", "SiteImportError", "import_sites", "read_site_file"]

log = logging.getLogger(__name__)
WGS84 = CRS.from_epsg(4326)

#: radius (metres) of the circle a point site becomes: about a small factory compound or a farmyard
POINT_RADIUS_M = 50.0

#: other spellings of the kinds (Chinese register wording, common English variants)
KIND_ALIASES: dict[str, str] = {
    "闲置厂房": "idle_factory", "闲置工厂": "idle_factory", "废弃工厂": "idle_factory", "废弃厂房": "idle_factory",
    "停产工厂": "idle_factory", "idle factory": "idle_factory",
    "废弃养殖场": "farm", "养殖场": "farm", "废弃农场": "farm", "abandoned_farm": "farm", "abandoned farm": "farm",
    "废品收购站": "scrap_yard", "废品站": "scrap_yard", "废品回收站": "scrap_yard", "scrapyard": "scrap_yard", "scrap yard": "scrap_yard",
    "闲置民房": "idle_house", "闲置房屋": "idle_house", "空置房屋": "idle_house", "idle house": "idle_house",
    "关停企业": "closed_enterprise", "关闭企业": "closed_enterprise", "取缔企业": "closed_enterprise",
    "closed": "closed_enterprise", "closed enterprise": "closed_enterprise",
    "持证化工企业": "licensed_chemical", "化工企业": "licensed_chemical", "licensed": "licensed_chemical",
    "licensed chemical": "licensed_chemical", "企业": "enterprise", "线索": "lead", "其他": "other",
}
_CHINESE_KINDS = tuple(k for k in KIND_ALIASES if not k.isascii())
_COLUMN_ALIASES = {
    "经度": "lon", "longitude": "lon", "lng": "lon", "x": "lon", "纬度": "lat", "latitude": "lat", "y": "lat",
    "类型": "kind", "类别": "kind", "type": "kind", "名称": "name", "地址": "address", "乡镇": "township",
    "村": "village", "备注": "note", "id": "site_id", "编号": "site_id",
}


class SiteImportError(SkysieveError, ValueError):
    """A site file cannot be read at all (unknown format, no rows, no CRS)."""


@dataclass(frozen=True)
class SiteImport:
    """Result of one import: rows written, and rows refused with why (``(row label, reason)``)."""

    source: str
    imported: int
    rejected: list[tuple[str, str]] = field(default_factory=list)
    by_kind: dict[str, int] = field(default_factory=dict)

    def __int__(self) -> int:
        return self.imported


def _norm_kind(value: Any) -> str | None:
    text = str(value or "").strip()
    if text in SITE_KINDS:
        return text
    low = text.lower()
    if low in SITE_KINDS:
        return low
    return KIND_ALIASES.get(text) or KIND_ALIASES.get(low)


def _read_csv(path: Path) -> tuple[list[dict[str, Any]], CRS]:
    raw = path.read_bytes()
    for enc in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise SiteImportError("the CSV is neither UTF-8 nor GBK", path=path, hint="save it as UTF-8")
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise SiteImportError("the CSV has no header row", path=path, hint="first row: lon,lat,kind,name")
    rows = []
    for rec in reader:
        row = {}
        for k, v in rec.items():
            if k is None:
                continue
            key = k.strip().lower()
            row[_COLUMN_ALIASES.get(key, _COLUMN_ALIASES.get(k.strip(), key))] = (v or "").strip()
        try:
            row["geometry"] = shapely.Point(float(row["lon"]), float(row["lat"]))
        except (KeyError, ValueError):
            row["geometry"] = None
        rows.append(row)
    if rows and ("lon" not in rows[0] or "lat" not in rows[0]):
        raise SiteImportError(f"the CSV needs lon and lat columns, it has {reader.fieldnames}", path=path,
                              hint="name the columns lon, lat, kind, name (or 经度, 纬度, 类型, 名称)")
    return rows, CRS.from_epsg(4326)


def _read_vector(path: Path) -> list[tuple[list[dict[str, Any]], CRS]]:
    import pyogrio

    try:
        layers = [name for name, gtype in pyogrio.list_layers(path) if gtype is not None]
    except Exception as e:
        raise SiteImportError(f"cannot read the file: {e}", path=path,
                              hint="give GeoJSON, GeoPackage or CSV with lon, lat, kind, name") from e
    out = []
    for layer in layers:
        meta, _, geoms, fields = pyogrio.raw.read(path, layer=layer)
        crs = CRS.from_user_input(meta["crs"]) if meta.get("crs") else CRS.from_epsg(4326)
        names = [_COLUMN_ALIASES.get(str(n).strip().lower(), _COLUMN_ALIASES.get(str(n), str(n).lower()))
                 for n in meta["fields"]]
        rows = []
        for i, wkb in enumerate(geoms):
            row = {n: (None if f[i] is None else str(f[i])) for n, f in zip(names, fields, strict=True)}
            row["geometry"] = shapely.from_wkb(wkb) if wkb is not None else None
            rows.append(row)
        out.append((rows, crs))
    return out


def read_site_file(path: str | Path) -> list[tuple[list[dict[str, Any]], CRS]]:
    """Rows (dicts with ``geometry`` in the file's CRS) and that CRS, per layer of a site file."""
    path = Path(path)
    if not path.exists():
        raise SiteImportError("site file not found", path=path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return [_read_csv(path)]
    if suffix in (".geojson", ".json", ".gpkg", ".shp"):
        return _read_vector(path)
    raise SiteImportError(f"unknown site file type {suffix or '(none)'}", path=path,
                          hint="give a .geojson, .gpkg or .csv file")


def _polygon(geom: shapely.Geometry, radius_m: float) -> shapely.Polygon:
    """A site polygon (workspace metres) from any geometry: points/lines buffered, largest polygon part."""
    if isinstance(geom, (shapely.Polygon, shapely.MultiPolygon)):
        parts = list(geom.geoms) if isinstance(geom, shapely.MultiPolygon) else [geom]
        return max(parts, key=lambda p: p.area)
    return shapely.buffer(geom, radius_m, quad_segs=8)


def import_sites(ws: Workspace, path: str | Path, radius_m: float = POINT_RADIUS_M) -> SiteImport:
    """Import a register (or leads) file into ``ws``'s ``sites`` layer; returns what was imported/rejected.

    The workspace CRS is fixed from the first site if no flight has fixed it yet.
    """
    path = Path(path)
    if radius_m <= 0:
        raise UsageError(f"radius must be positive, got {radius_m}")
    layers = read_site_file(path)
    rows_ll: list[tuple[str, dict[str, Any], shapely.Geometry]] = []
    rejected: list[tuple[str, str]] = []
    for rows, crs in layers:
        for i, row in enumerate(rows, start=1):
            label = f"row {i}" + (f" ({row.get('name')})" if row.get("name") else "")
            geom = row.get("geometry")
            if geom is None or geom.is_empty:
                rejected.append((label, "no position (lon/lat or geometry missing or not a number)"))
                continue
            geom = reproject(geom, crs, WGS84)
            c = geom.centroid
            if not (-180 <= c.x <= 180 and -90 <= c.y <= 90):
                rejected.append((label, f"position {c.x:.4f}, {c.y:.4f} is not WGS 84 lon/lat"))
                continue
            if abs(c.x) < 1e-6 and abs(c.y) < 1e-6:
                rejected.append((label, "position 0, 0 (a blank in the register, not a place)"))
                continue
            kind = _norm_kind(row.get("kind"))
            if kind is None:
                rejected.append((label, f"unknown kind {row.get('kind')!r} (use one of {', '.join(SITE_KINDS)}, "
                                        f"or the register's wording: {', '.join(_CHINESE_KINDS)})"))
                continue
            rows_ll.append((label, {**row, "kind": kind}, geom))
    if not rows_ll:
        if rejected:
            log.warning("%s: all %d rows rejected", path, len(rejected))
        return SiteImport(path.name, 0, rejected)

    centres = np.array([[g.centroid.x, g.centroid.y] for _, _, g in rows_ll])
    lon, lat = np.median(centres, axis=0)  # a stray first row must not fix the CRS of a fresh workspace
    crs = ws.ensure_crs(float(lon), float(lat))
    inside = []  # a site outside the CRS's zone is in another county (or a typo): it would land far off
    for label, row, geom in rows_ll:
        c = geom.centroid
        if in_crs_area(crs, c.x, c.y):
            inside.append((label, row, geom))
        else:
            rejected.append((label, f"position {c.x:.4f}, {c.y:.4f} lies outside the workspace's area "
                                    f"({crs.name}: {crs_area_text(crs)})"))
    rows_ll = inside
    if not rows_ll:
        log.warning("%s: all rows rejected", path)
        return SiteImport(path.name, 0, rejected)
    ws.layer(SITES)
    records = []
    for _label, row, geom in rows_ll:
        g = reproject(geom, WGS84, crs)
        c = geom.centroid
        site_id = row.get("site_id") or _site_id(row["kind"], path.stem, c.x, c.y, row.get("name"))
        records.append({"site_id": str(site_id), "kind": row["kind"], "name": row.get("name") or None,
                        "address": row.get("address") or None, "township": row.get("township") or None,
                        "village": row.get("village") or None, "source": path.name, "note": row.get("note") or None,
                        "geometry": _polygon(g, radius_m)})
    by_id = {r["site_id"]: r for r in records}  # a duplicated id inside one file: the last row wins
    with ws.gpkg.transaction():
        ids = list(by_id)
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            ws.gpkg.delete(SITES.name, f"site_id IN ({','.join('?' * len(chunk))})", chunk)
        ws.gpkg.insert(SITES.name, by_id.values())
    ws.gpkg.update_extent(SITES.name)
    by_kind: dict[str, int] = {}
    for r in by_id.values():
        by_kind[r["kind"]] = by_kind.get(r["kind"], 0) + 1
    for label, reason in rejected:
        log.warning("%s: %s rejected: %s", path.name, label, reason)
    log.info("%s: %d sites imported, %d rows rejected", path.name, len(by_id), len(rejected))
    return SiteImport(path.name, len(by_id), rejected, by_kind)



def _site_id(kind: str, source: str, lon: float, lat: float, name: str | None) -> str:
    digest = hashlib.sha1(f"{kind}|{source}|{lon:.6f}|{lat:.6f}|{name or ''}".encode()).hexdigest()[:10]
    return f"{kind}-{digest}"
