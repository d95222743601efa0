"""A small, strict GeoPackage (OGC 12-128r18) writer/reader on top of :mod:`sqlite3`.

skysieve keeps every vector table of a survey in one GeoPackage so that county GIS staff open it in
QGIS as it is. We talk to SQLite directly (rather than through OGR) because the ledger needs real
transactions: every review decision is committed at once, and two analysts writing the same file
must both land. ``BEGIN IMMEDIATE`` plus a generous busy timeout gives exactly that.

Geometries are shapely objects on the Python side and GeoPackage binary blobs (``GP`` header with
an XY envelope, then little-endian WKB) on disk. Coordinates are stored in the layer's CRS, x/y
order (easting/northing, or lon/lat for EPSG:4326).
"""

from __future__ import annotations

import contextlib
import sqlite3
import struct
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import shapely
from pyproj import CRS

from skysieve.errors import WorkspaceError

__all__ = ["Column", "LayerSpec", "GeoPackage", "encode_geometry", "decode_geometry"]

_APPLICATION_ID = 0x47504B47  # "GPKG"
_USER_VERSION = 10300  # GeoPackage 1.3
_BUSY_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Column:
    """One attribute column: SQLite name and GeoPackage type (TEXT, INTEGER, REAL, BOOLEAN, DATETIME)."""

    name: str
    type: str = "TEXT"
    constraint: str = ""  # e.g. "NOT NULL", "UNIQUE", "DEFAULT 'pending'"


@dataclass(frozen=True)
class LayerSpec:
    """A table of the survey GeoPackage.

    ``geometry_type`` is a GeoPackage geometry type name (``POLYGON``, ``POINT``, ...) for a feature
    table, or ``None`` for a plain attribute table (decisions, audit). ``indexes`` lists column
    tuples to index for lookups.
    """

    name: str
    columns: tuple[Column, ...]
    geometry_type: str | None = "POLYGON"
    description: str = ""
    indexes: tuple[tuple[str, ...], ...] = field(default_factory=tuple)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


def encode_geometry(geom: shapely.Geometry | None, srs_id: int) -> bytes | None:
    """GeoPackage binary for ``geom`` (standard GP header, XY envelope, little-endian WKB)."""
    if geom is None:
        return None
    if geom.is_empty:
        flags = 0b0001_0001  # empty, no envelope, little endian
        return b"GP" + bytes([0, flags]) + struct.pack("<i", srs_id) + shapely.to_wkb(geom, byte_order=1)
    minx, miny, maxx, maxy = geom.bounds
    flags = 0b0000_0011  # envelope [minx, maxx, miny, maxy], little endian
    header = b"GP" + bytes([0, flags]) + struct.pack("<i", srs_id)
    return header + struct.pack("<4d", minx, maxx, miny, maxy) + shapely.to_wkb(geom, byte_order=1)


_ENVELOPE_BYTES = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}


def decode_geometry(blob: bytes | None) -> shapely.Geometry | None:
    """Shapely geometry from a GeoPackage binary blob (as written by us, GDAL or QGIS)."""
    if blob is None:
        return None
    if blob[:2] != b"GP":
        raise WorkspaceError("geometry blob does not start with the GeoPackage magic 'GP'")
    flags = blob[3]
    envelope = (flags >> 1) & 0b111
    start = 8 + _ENVELOPE_BYTES.get(envelope, 0)
    return shapely.from_wkb(bytes(blob[start:]))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


def _srs_id(crs: CRS) -> int:
    epsg = crs.to_epsg()
    if epsg is None:
        raise WorkspaceError(f"the CRS {crs.name!r} has no EPSG code; pick an EPSG CRS for the workspace")
    return int(epsg)


class GeoPackage:
    """One GeoPackage file. Connections are per thread; writes go through :meth:`transaction`.

    >>> gp = GeoPackage.create(path, CRS.from_epsg(32650))           # doctest: +SKIP
    >>> gp.ensure_layer(LayerSpec("cells", (Column("cell_id", "TEXT", "UNIQUE"),)))  # doctest: +SKIP
    """

    def __init__(self, path: str | Path, crs: CRS | None = None) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise WorkspaceError("no GeoPackage here; run `skysieve init` first", path=self.path)
        self.crs = crs
        self._local = threading.local()

    # -- creation -------------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, crs: CRS | None = None) -> GeoPackage:
        """Create an empty GeoPackage with the mandatory metadata tables (atomically)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.unlink(missing_ok=True)
        con = sqlite3.connect(tmp)
        try:
            con.execute(f"PRAGMA application_id = {_APPLICATION_ID}")
            con.execute(f"PRAGMA user_version = {_USER_VERSION}")
            con.executescript(
                """
                CREATE TABLE gpkg_spatial_ref_sys (
                  srs_name TEXT NOT NULL, srs_id INTEGER NOT NULL PRIMARY KEY,
                  organization TEXT NOT NULL, organization_coordsys_id INTEGER NOT NULL,
                  definition TEXT NOT NULL, description TEXT);
                CREATE TABLE gpkg_contents (
                  table_name TEXT NOT NULL PRIMARY KEY, data_type TEXT NOT NULL,
                  identifier TEXT UNIQUE, description TEXT DEFAULT '',
                  last_change DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
                  min_x DOUBLE, min_y DOUBLE, max_x DOUBLE, max_y DOUBLE, srs_id INTEGER,
                  CONSTRAINT fk_gc_r_srs_id FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys(srs_id));
                CREATE TABLE gpkg_geometry_columns (
                  table_name TEXT NOT NULL, column_name TEXT NOT NULL, geometry_type_name TEXT NOT NULL,
                  srs_id INTEGER NOT NULL, z TINYINT NOT NULL, m TINYINT NOT NULL,
                  CONSTRAINT pk_geom_cols PRIMARY KEY (table_name, column_name),
                  CONSTRAINT fk_gc_tn FOREIGN KEY (table_name) REFERENCES gpkg_contents(table_name),
                  CONSTRAINT fk_gc_srs FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys (srs_id));
                """
            )
            con.executemany(
                "INSERT INTO gpkg_spatial_ref_sys VALUES (?,?,?,?,?,?)",
                [
                    ("Undefined cartesian SRS", -1, "NONE", -1, "undefined", "undefined cartesian coordinate reference system"),
                    ("Undefined geographic SRS", 0, "NONE", 0, "undefined", "undefined geographic coordinate reference system"),
                    ("WGS 84 geodetic", 4326, "EPSG", 4326, CRS.from_epsg(4326).to_wkt("WKT1_GDAL"),
                     "longitude/latitude coordinates in decimal degrees on the WGS 84 spheroid"),
                ],
            )
            con.commit()
        finally:
            con.close()
        tmp.replace(path)
        gp = cls(path, crs)
        if crs is not None:
            gp.register_crs(crs)
        return gp

    def register_crs(self, crs: CRS) -> int:
        """Add ``crs`` to ``gpkg_spatial_ref_sys`` (if missing) and return its srs_id (the EPSG code)."""
        srs_id = _srs_id(crs)
        with self.transaction() as con:
            con.execute(
                "INSERT OR IGNORE INTO gpkg_spatial_ref_sys VALUES (?,?,?,?,?,?)",
                (crs.name, srs_id, "EPSG", srs_id, crs.to_wkt("WKT1_GDAL"), crs.name),
            )
        self.crs = crs
        return srs_id

    # -- connections and transactions ------------------------------------------------------------
    def connection(self) -> sqlite3.Connection:
        """This thread's connection (autocommit mode; use :meth:`transaction` for writes)."""
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
            con.row_factory = sqlite3.Row
            con.execute("PRAGMA foreign_keys = OFF")
            self._local.con = con
        return con

    def close(self) -> None:
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: ``BEGIN IMMEDIATE`` (waits for other writers), commit or roll back.

        Nested use joins the outer transaction.
        """
        con = self.connection()
        depth = getattr(self._local, "depth", 0)
        if depth:
            self._local.depth = depth + 1
            try:
                yield con
            finally:
                self._local.depth = depth
            return
        con.execute("BEGIN IMMEDIATE")
        self._local.depth = 1
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        else:
            con.execute("COMMIT")
        finally:
            self._local.depth = 0

    # -- layers ---------------------------------------------------------------------------------
    def has_layer(self, name: str) -> bool:
        row = self.connection().execute("SELECT 1 FROM gpkg_contents WHERE table_name=?", (name,)).fetchone()
        return row is not None

    def layers(self) -> list[str]:
        return [r[0] for r in self.connection().execute("SELECT table_name FROM gpkg_contents ORDER BY table_name")]

    def ensure_layer(self, spec: LayerSpec) -> None:
        """Create the table for ``spec`` unless it exists; add columns that a newer spec introduced."""
        with self.transaction() as con:
            exists = con.execute("SELECT 1 FROM gpkg_contents WHERE table_name=?", (spec.name,)).fetchone()
            if exists:
                have = {r[1] for r in con.execute(f'PRAGMA table_info("{spec.name}")')}
                for c in spec.columns:
                    if c.name not in have:
                        constraint = c.constraint if "UNIQUE" not in c.constraint.upper() else ""
                        con.execute(f'ALTER TABLE "{spec.name}" ADD COLUMN "{c.name}" {c.type} {constraint}')
                return
            cols = ['"fid" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL']
            if spec.geometry_type:
                cols.append(f'"geom" {spec.geometry_type}')
            cols += [f'"{c.name}" {c.type} {c.constraint}'.rstrip() for c in spec.columns]
            con.execute(f'CREATE TABLE "{spec.name}" ({", ".join(cols)})')
            for idx in spec.indexes:
                con.execute(
                    f'CREATE INDEX "idx_{spec.name}_{"_".join(idx)}" ON "{spec.name}" ({", ".join(idx)})'
                )
            if spec.geometry_type:
                if self.crs is None:
                    raise WorkspaceError(f"cannot create feature layer {spec.name!r} before the workspace has a CRS")
                srs_id = _srs_id(self.crs)
                con.execute(
                    "INSERT INTO gpkg_contents (table_name, data_type, identifier, description, last_change, srs_id)"
                    " VALUES (?, 'features', ?, ?, ?, ?)",
                    (spec.name, spec.name, spec.description, _now(), srs_id),
                )
                con.execute(
                    "INSERT INTO gpkg_geometry_columns VALUES (?, 'geom', ?, ?, 0, 0)",
                    (spec.name, spec.geometry_type, srs_id),
                )
            else:
                con.execute(
                    "INSERT INTO gpkg_contents (table_name, data_type, identifier, description, last_change)"
                    " VALUES (?, 'attributes', ?, ?, ?)",
                    (spec.name, spec.name, spec.description, _now()),
                )

    def _layer_srs(self, con: sqlite3.Connection, layer: str) -> int | None:
        row = con.execute("SELECT srs_id FROM gpkg_geometry_columns WHERE table_name=?", (layer,)).fetchone()
        return None if row is None else int(row[0])

    # -- rows -----------------------------------------------------------------------------------
    def insert(self, layer: str, rows: Iterable[Mapping[str, Any]], *, or_ignore: bool = False) -> list[int]:
        """Insert rows (dicts of column -> value, with ``geometry`` a shapely geometry); returns fids."""
        fids: list[int] = []
        with self.transaction() as con:
            srs = self._layer_srs(con, layer)
            verb = "INSERT OR IGNORE" if or_ignore else "INSERT"
            for row in rows:
                values = dict(row)
                geom = values.pop("geometry", None)
                if srs is not None:
                    values["geom"] = encode_geometry(geom, srs)
                names = ", ".join(f'"{k}"' for k in values)
                marks = ", ".join("?" for _ in values)
                cur = con.execute(f'{verb} INTO "{layer}" ({names}) VALUES ({marks})', tuple(values.values()))
                if cur.rowcount:
                    fids.append(int(cur.lastrowid))
            con.execute("UPDATE gpkg_contents SET last_change=? WHERE table_name=?", (_now(), layer))
        return fids

    def update(self, layer: str, where: str, params: Sequence[Any], values: Mapping[str, Any]) -> int:
        """``UPDATE layer SET values WHERE where``; returns the number of rows changed."""
        values = dict(values)
        with self.transaction() as con:
            if "geometry" in values:
                srs = self._layer_srs(con, layer)
                values["geom"] = encode_geometry(values.pop("geometry"), srs if srs is not None else -1)
            sets = ", ".join(f'"{k}"=?' for k in values)
            cur = con.execute(f'UPDATE "{layer}" SET {sets} WHERE {where}', (*values.values(), *params))
            con.execute("UPDATE gpkg_contents SET last_change=? WHERE table_name=?", (_now(), layer))
            return cur.rowcount

    def delete(self, layer: str, where: str, params: Sequence[Any] = ()) -> int:
        with self.transaction() as con:
            cur = con.execute(f'DELETE FROM "{layer}" WHERE {where}', tuple(params))
            con.execute("UPDATE gpkg_contents SET last_change=? WHERE table_name=?", (_now(), layer))
            return cur.rowcount

    def select(self, layer: str, where: str = "1=1", params: Sequence[Any] = (), *,
               order_by: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Rows as dicts; a feature layer's geometry comes back as shapely under ``geometry``."""
        sql = f'SELECT * FROM "{layer}" WHERE {where}'
        if order_by:
            sql += f" ORDER BY {order_by}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        out = []
        for r in self.connection().execute(sql, tuple(params)):
            d = dict(r)
            if "geom" in d:
                d["geometry"] = decode_geometry(d.pop("geom"))
            out.append(d)
        return out

    def count(self, layer: str, where: str = "1=1", params: Sequence[Any] = ()) -> int:
        return int(self.connection().execute(f'SELECT COUNT(*) FROM "{layer}" WHERE {where}', tuple(params)).fetchone()[0])

    def update_extent(self, layer: str) -> None:
        """Recompute the layer's bounding box in ``gpkg_contents`` (QGIS uses it for 'zoom to layer')."""
        boxes = [g.bounds for g in (r["geometry"] for r in self.select(layer)) if g is not None and not g.is_empty]
        if not boxes:
            return
        minx = min(b[0] for b in boxes)
        miny = min(b[1] for b in boxes)
        maxx = max(b[2] for b in boxes)
        maxy = max(b[3] for b in boxes)
        with self.transaction() as con:
            con.execute(
                "UPDATE gpkg_contents SET min_x=?, min_y=?, max_x=?, max_y=? WHERE table_name=?",
                (minx, miny, maxx, maxy, layer),
            )
