"""Suspect exports for field teams and GIS: GeoJSON, GPX, CSV, GeoPackage (KML/KMZ in :mod:`.kml`).

Every writer takes :class:`~.records.FieldRecord` s and a target path, writes atomically, and
escapes text for its format: JSON by the encoder, XML by entity escaping (control characters
XML 1.0 cannot hold are dropped), CSV by quoting, with text a spreadsheet would run as a formula
(first character ``= + - @``, tab or CR) prefixed with an apostrophe. Coordinates are WGS 84
(lon, lat order in GeoJSON/GeoPackage, ``lat``/``lon`` attributes in GPX); only the CSV adds GCJ-02
and BD-09 columns, for Amap and Baidu maps.
"""

from __future__ import annotations

import csv
import json
import re
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import numpy as np
import shapely
from pyproj import CRS

from skysieve.atomic import atomic_path
from skysieve.gpkg import Column, GeoPackage, LayerSpec, encode_geometry

from .records import RECORD_COLUMNS, FieldRecord, amap_navigation_uri, record_values

__all__ = ["write_geojson", "write_gpx", "write_csv", "write_gpkg", "neutralise_formula", "xml_text", "xml_attr",
           "xml_cdata"]

_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: columns not carried into GIS formats (GCJ-02/BD-09 are for phone maps only)
_GIS_COLUMNS = tuple(c for c in RECORD_COLUMNS if not c.startswith(("gcj_", "bd_")))
_NUMERIC = {"lon", "lat", "gcj_lon", "gcj_lat", "bd_lon", "bd_lat", "n_detections", "max_score", "priority"}


_XML_SPECIAL = re.compile("[&<>\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def xml_text(value: object) -> str:
    """Text safe inside an XML element: entities escaped, characters XML 1.0 forbids removed."""
    text = "" if value is None else str(value)
    if not _XML_SPECIAL.search(text):  # the common case: nothing to do
        return text
    return escape(_XML_INVALID.sub("", text))


def xml_cdata(text: str) -> str:
    """A CDATA section holding ``text`` (forbidden characters removed, ``]]>`` split)."""
    return "<![CDATA[" + _XML_INVALID.sub("", text).replace("]]>", "]]]]><![CDATA[>") + "]]>"


def xml_attr(value: object) -> str:
    """A quoted XML attribute value (quotes included)."""
    return quoteattr(_XML_INVALID.sub("", "" if value is None else str(value)))


def neutralise_formula(value: str) -> str:
    """Text a spreadsheet would evaluate (``=cmd|...``, ``+1+1``, ``@SUM``, ``-2+3``) made inert with a leading '."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _round(v: float | None, nd: int = 7) -> float | None:
    return None if v is None else round(float(v), nd)


def write_geojson(records: Sequence[FieldRecord], out: Path) -> Path:
    """RFC 7946 FeatureCollection of Point features (WGS 84 lon/lat, 7 decimals = ~1 cm)."""
    feats = []
    for r in records:
        props = {c: v for c, v in record_values(r).items() if c in _GIS_COLUMNS and c not in ("lon", "lat")}
        props["det_ids"] = list(r.det_ids)
        feats.append({"type": "Feature", "id": r.suspect_id,
                      "geometry": {"type": "Point", "coordinates": [_round(r.lon), _round(r.lat)]},
                      "properties": props})
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps({"type": "FeatureCollection", "name": "suspects", "features": feats},
                                  ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    return out


def write_gpx(records: Sequence[FieldRecord], out: Path) -> Path:
    """GPX 1.1 waypoints (WGS 84): name = id + place, desc = category, evidence, status; link = Amap navigation."""
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n',
             '<gpx version="1.1" creator="skysieve" xmlns="http://www.topografix.com/GPX/1/1">\n',
             "<metadata><name>skysieve suspects</name></metadata>\n"]
    for r in records:
        desc = f"{r.category_label}; {r.classes}; {r.status_label}"
        if r.note:
            desc += f"; {r.note}"
        parts.append(f'<wpt lat="{r.lat:.7f}" lon="{r.lon:.7f}"><name>{xml_text(r.name)}</name>'
                     f"<cmt>{xml_text(r.site_name)}</cmt><desc>{xml_text(desc)}</desc>"
                     f"<link href={xml_attr(amap_navigation_uri(r))}><text>高德导航 Amap navigation</text></link>"
                     f"<sym>Flag</sym><type>{xml_text(r.status)}</type></wpt>\n")
    parts.append("</gpx>\n")
    with atomic_path(out) as tmp:
        tmp.write_text("".join(parts), encoding="utf-8")
    return out


def write_csv(records: Sequence[FieldRecord], out: Path) -> Path:
    """CSV (UTF-8 with BOM, so Excel reads Chinese) with WGS 84, GCJ-02 and BD-09 columns (degrees) and an
    Amap navigation link."""
    cols = (*RECORD_COLUMNS, "det_ids", "amap_uri")
    with atomic_path(out) as tmp, tmp.open("w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in records:
            vals = record_values(r)
            vals["det_ids"] = " ".join(r.det_ids)
            vals["amap_uri"] = amap_navigation_uri(r)
            row = []
            for c in cols:
                v = vals[c]
                if c in _NUMERIC:
                    row.append("" if v is None else (f"{v:.7f}" if c.endswith(("lon", "lat")) else v))
                else:
                    row.append(neutralise_formula(str(v)))
            w.writerow(row)
    return out


_GPKG_TYPES = {"n_detections": "INTEGER", "max_score": "REAL", "priority": "REAL", "lon": "REAL", "lat": "REAL"}
_EXPORT_POINTS = LayerSpec("suspects", tuple(Column(c, _GPKG_TYPES.get(c, "TEXT")) for c in _GIS_COLUMNS)
                           + (Column("det_ids", "TEXT"),), "POINT", "Suspects for field checks (WGS 84)")
_EXPORT_OUTLINES = LayerSpec("suspect_outlines", (Column("suspect_id", "TEXT"), Column("status", "TEXT")),
                             "POLYGON", "Site outlines of the suspects (WGS 84)")


def _encode_many(geoms: Sequence[Any], srs_id: int) -> list[bytes | None]:
    """GeoPackage blobs for many geometries: WKB and envelopes computed in vectorised calls."""
    arr = np.array(list(geoms), dtype=object)
    wkb = shapely.to_wkb(arr, byte_order=1)
    bounds = shapely.bounds(arr)
    empty = shapely.is_empty(arr)
    out: list[bytes | None] = []
    for g, w, b, e in zip(arr, wkb, bounds, empty, strict=True):
        if g is None or e:
            out.append(encode_geometry(g, srs_id))
        else:
            out.append(b"GP\x00\x03" + struct.pack("<i4d", srs_id, b[0], b[2], b[1], b[3]) + w)
    return out


def _bulk_insert(gp: GeoPackage, spec: LayerSpec, rows: list[dict[str, Any]], geoms: list[Any]) -> None:
    names = [c.name for c in spec.columns]
    blobs = _encode_many(geoms, 4326)
    cols = ", ".join(f'"{n}"' for n in (*names, "geom"))
    sql = f'INSERT INTO "{spec.name}" ({cols}) VALUES ({", ".join("?" * (len(names) + 1))})'
    con = gp.connection()
    con.executemany(sql, ([r.get(n) for n in names] + [blob] for r, blob in zip(rows, blobs, strict=True)))
    valid = [g for g in geoms if g is not None and not g.is_empty]
    if valid:
        minx, miny, maxx, maxy = shapely.total_bounds(np.array(valid, dtype=object))
        con.execute("UPDATE gpkg_contents SET min_x=?, min_y=?, max_x=?, max_y=? WHERE table_name=?",
                    (minx, miny, maxx, maxy, spec.name))


def write_gpkg(records: Sequence[FieldRecord], out: Path) -> Path:
    """A GeoPackage (EPSG:4326) with a ``suspects`` point layer and a ``suspect_outlines`` layer."""
    with atomic_path(out, suffix=".gpkg") as tmp:
        gp = GeoPackage.create(tmp, CRS.from_epsg(4326))
        try:
            gp.ensure_layer(_EXPORT_POINTS)
            gp.ensure_layer(_EXPORT_OUTLINES)
            points = shapely.points(np.array([[r.lon, r.lat] for r in records], dtype=float).reshape(-1, 2))
            with gp.transaction():
                _bulk_insert(gp, _EXPORT_POINTS, [{**record_values(r), "det_ids": " ".join(r.det_ids)}
                                                  for r in records], list(points))
                with_outline = [r for r in records if r.outline is not None]
                _bulk_insert(gp, _EXPORT_OUTLINES, [{"suspect_id": r.suspect_id, "status": r.status}
                                                    for r in with_outline], [r.outline for r in with_outline])
        finally:
            gp.close()
    return out
