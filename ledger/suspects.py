"""Reading the suspect list: one suspect, a filtered list, evidence decoded from its JSON columns."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import shapely

from skysieve.errors import NotFoundError
from skysieve.gpkg import GeoPackage
from skysieve.workspace import Workspace

from .tables import SUSPECT_OUTLINES, SUSPECTS

__all__ = ["get_suspect", "list_suspects", "next_suspect_id", "decode_suspect", "select_rows", "decode_geometries"]


def decode_suspect(row: dict[str, Any]) -> dict[str, Any]:
    """A suspects row with ``det_ids``/``chips``/``measures`` as lists."""
    out = dict(row)
    out["det_ids"] = json.loads(row["det_ids"]) if row.get("det_ids") else []
    out["chips"] = json.loads(row["chips"]) if row.get("chips") else []
    out["measures"] = [m for m in (row.get("measures") or "").split(",") if m]
    return out


_ENVELOPE_BYTES = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}


def decode_geometries(blobs: Sequence[bytes | None]) -> list[Any]:
    """Shapely geometries from GeoPackage blobs, decoded in one vectorised call (None stays None)."""
    wkb = [None if b is None else bytes(b[8 + _ENVELOPE_BYTES.get((b[3] >> 1) & 0b111, 0):]) for b in blobs]
    return list(shapely.from_wkb(np.array(wkb, dtype=object))) if wkb else []


def select_rows(gp: GeoPackage, table: str, where: str = "1=1", params: Sequence[Any] = (),
                order_by: str | None = None, geometry: bool = True) -> list[dict[str, Any]]:
    """Like ``GeoPackage.select`` but decodes all geometries at once (10x faster on big tables)."""
    sql = f'SELECT * FROM "{table}" WHERE {where}' + (f" ORDER BY {order_by}" if order_by else "")
    rows = [dict(r) for r in gp.connection().execute(sql, tuple(params))]
    blobs = [r.pop("geom", None) for r in rows]
    if geometry:
        for r, g in zip(rows, decode_geometries(blobs), strict=True):
            r["geometry"] = g
    return rows


def _outlines(gp: GeoPackage, ids: list[str]) -> dict[str, Any]:
    if not ids or not gp.has_layer(SUSPECT_OUTLINES.name):
        return {}
    if len(ids) > 500:  # most of the table: read it all rather than in chunks
        wanted = set(ids)
        return {r["suspect_id"]: r["geometry"] for r in select_rows(gp, SUSPECT_OUTLINES.name)
                if r["suspect_id"] in wanted}
    rows = select_rows(gp, SUSPECT_OUTLINES.name, f"suspect_id IN ({','.join('?' * len(ids))})", ids)
    return {r["suspect_id"]: r["geometry"] for r in rows}


def list_suspects(ws: Workspace, *, statuses: Iterable[str] | None = None, team: str | None = None,
                  townships: Iterable[str] | None = None, categories: Iterable[str] | None = None,
                  outlines: bool = False) -> list[dict[str, Any]]:
    """Suspects (decoded), oldest id first; ``None`` filters mean "any".

    ``geometry`` is the spot (shapely Point, workspace CRS); with ``outlines=True`` each row also
    gets ``outline`` (shapely Polygon, workspace CRS, or None).
    """
    if not ws.gpkg.has_layer(SUSPECTS.name):
        return []
    where: list[str] = []
    params: list[Any] = []
    for col, values in (("status", statuses), ("township", townships), ("category", categories)):
        if values is not None:
            values = list(values)
            where.append(f"{col} IN ({','.join('?' * len(values))})" if values else "0")
            params += values
    if team is not None:
        where.append("team=?")
        params.append(team)
    rows = [decode_suspect(r) for r in select_rows(ws.gpkg, SUSPECTS.name, " AND ".join(where) or "1=1", params,
                                                   order_by="suspect_id")]
    if outlines:
        shapes = _outlines(ws.gpkg, [r["suspect_id"] for r in rows])
        for r in rows:
            r["outline"] = shapes.get(r["suspect_id"])
    return rows


def get_suspect(ws: Workspace, suspect_id: str) -> dict[str, Any]:
    """One suspect (decoded, with ``outline``); :class:`~skysieve.errors.NotFoundError` if unknown."""
    rows = ws.gpkg.select(SUSPECTS.name, "suspect_id=?", (suspect_id,)) if ws.gpkg.has_layer(SUSPECTS.name) else []
    if not rows:
        raise NotFoundError(f"no suspect {suspect_id!r} in this workspace", ref=suspect_id,
                            hint=f"list them with `skysieve suspects {ws.root} list`")
    out = decode_suspect(rows[0])
    out["outline"] = _outlines(ws.gpkg, [suspect_id]).get(suspect_id)
    return out


def next_suspect_id(gp: GeoPackage) -> str:
    """The next free id (``S00001``, ...); call inside the write transaction that inserts it."""
    row = gp.connection().execute(
        "SELECT MAX(CAST(substr(suspect_id, 2) AS INTEGER)) FROM suspects WHERE suspect_id LIKE 'S%'").fetchone()
    return f"S{(row[0] or 0) + 1:05d}"
