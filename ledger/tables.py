"""The ledger's own tables in ``survey.gpkg``: suspects (+ their outlines), decisions, audit.

Geometries are in the workspace's projected CRS (x/y metres); ``lon``/``lat`` are WGS 84 degrees;
times are ISO 8601 UTC strings (``2026-11-29T01:02:03.45Z``). ``decisions`` and ``audit`` are
append-only: rows are inserted, never updated or deleted.
"""

from __future__ import annotations

import weakref

from skysieve.gpkg import Column, LayerSpec
from skysieve.schema import DETECTIONS
from skysieve.workspace import Workspace

__all__ = ["SUSPECTS", "SUSPECT_OUTLINES", "DECISIONS", "AUDIT", "LEDGER_LAYERS", "APPEND_ONLY", "ensure_ledger"]

SUSPECTS = LayerSpec(
    "suspects",
    (
        Column("suspect_id", "TEXT", "NOT NULL UNIQUE"),  # S00001, S00002, ...
        Column("x", "REAL"),  # the spot, workspace CRS (metres)
        Column("y", "REAL"),
        Column("lon", "REAL"),  # the spot, WGS 84 degrees
        Column("lat", "REAL"),
        Column("cell_id", "TEXT"),
        Column("township", "TEXT"),
        Column("village", "TEXT"),
        Column("site_id", "TEXT"),  # known site (register entry) it lies in, if any
        Column("site_kind", "TEXT"),
        Column("site_name", "TEXT"),
        Column("category", "TEXT"),  # one of SUSPECT_CATEGORIES codes, or NULL until known
        Column("status", "TEXT", "NOT NULL DEFAULT 'suspected'"),  # see lifecycle.STATUSES
        Column("measures", "TEXT"),  # disposal measures taken, comma-separated codes
        Column("team", "TEXT"),  # field team it is dispatched to
        Column("classes", "TEXT"),  # what the evidence shows, e.g. "tank x3, chimney x1"
        Column("n_detections", "INTEGER"),
        Column("max_score", "REAL"),
        Column("priority", "REAL"),
        Column("det_ids", "TEXT"),  # evidence: JSON list of detection ids
        Column("chips", "TEXT"),  # evidence: JSON list of chip paths, relative to the workspace
        Column("note", "TEXT"),
        Column("findings", "TEXT"),  # what the field team found on site
        Column("created_by", "TEXT"),
        Column("created_at", "TEXT"),
        Column("updated_by", "TEXT"),
        Column("updated_at", "TEXT"),
    ),
    "POINT",
    "Suspect list (清单台账): leads for on-site checks, their lifecycle and evidence",
    indexes=(("status",), ("township",), ("team",), ("x", "y")),
)

SUSPECT_OUTLINES = LayerSpec(
    "suspect_outlines",
    (
        Column("suspect_id", "TEXT", "NOT NULL UNIQUE"),
        Column("source", "TEXT"),  # 'site' (the register's polygon) or 'evidence' (hull of the boxes)
    ),
    "POLYGON",
    "Outline of each suspect's site (register polygon, or the hull of its evidence boxes)",
)

DECISIONS = LayerSpec(
    "decisions",
    (
        Column("det_id", "TEXT", "NOT NULL"),
        Column("kind", "TEXT", "NOT NULL"),  # 'decide' or 'undo'
        Column("undoes", "INTEGER"),  # fid of the decision an 'undo' reverted
        Column("old_status", "TEXT"),
        Column("new_status", "TEXT", "NOT NULL"),
        Column("old_note", "TEXT"),
        Column("new_note", "TEXT"),
        Column("old_category", "TEXT"),
        Column("new_category", "TEXT"),
        Column("reviewer", "TEXT", "NOT NULL"),
        Column("at", "TEXT", "NOT NULL"),
    ),
    None,
    "Review decisions on detections (append-only)",
    indexes=(("reviewer",), ("det_id",)),
)

AUDIT = LayerSpec(
    "audit",
    (
        Column("at", "TEXT", "NOT NULL"),  # UTC
        Column("who", "TEXT", "NOT NULL"),
        Column("entity", "TEXT", "NOT NULL"),  # 'detection' or 'suspect'
        Column("ref", "TEXT", "NOT NULL"),  # det_id or suspect_id
        Column("action", "TEXT", "NOT NULL"),  # decide, undo, note, category, create, evidence, status, assign, ...
        Column("field", "TEXT"),
        Column("old_value", "TEXT"),
        Column("new_value", "TEXT"),
        Column("note", "TEXT"),
    ),
    None,
    "Audit trail of the suspect list and the review (append-only)",
    indexes=(("entity", "ref"),),
)

LEDGER_LAYERS = (SUSPECTS, SUSPECT_OUTLINES, DECISIONS, AUDIT)


APPEND_ONLY = (DECISIONS.name, AUDIT.name)


#: GeoPackages whose ledger tables were checked in this process (value: also the detections table)
_READY: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def ensure_ledger(ws: Workspace, *, detections: bool = True) -> None:
    """Create the ledger's tables (and the shared detections table) unless they exist.

    ``decisions`` and ``audit`` get triggers that refuse UPDATE and DELETE (also from QGIS or sqlite3):
    the trail can only grow.
    """
    if _READY.get(ws.gpkg) in (True, detections):
        return  # checked once per open workspace: every decision calls this (3.5 ms of queries each time)
    created = False
    for spec in ((DETECTIONS,) if detections else ()) + LEDGER_LAYERS:
        if not ws.gpkg.has_layer(spec.name):
            ws.layer(spec)
            created = True
    if created:
        with ws.gpkg.transaction() as con:
            for table in APPEND_ONLY:
                for verb in ("UPDATE", "DELETE"):
                    con.execute(f'CREATE TRIGGER IF NOT EXISTS "{table}_no_{verb.lower()}" BEFORE {verb} ON "{table}" '
                                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END")
    _READY[ws.gpkg] = _READY.get(ws.gpkg, False) or detections
