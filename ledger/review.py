"""Review services: the analyst's queue and decisions on detections (what the napari widget calls).

Every write runs in one ``BEGIN IMMEDIATE`` transaction of the workspace GeoPackage: the current
value is read inside it, so two analysts (two processes) deciding at once are serialised by SQLite
and neither decision is lost. Each decision updates the detection's review columns, is appended
to the ``decisions`` table, and leaves one audit entry per changed field (who, when UTC, old -> new,
note).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from skysieve.errors import LedgerError, NotFoundError
from skysieve.gpkg import GeoPackage
from skysieve.schema import DETECTIONS, REVIEW_STATUSES
from skysieve.workspace import Workspace

from .audit import append_audit, check_actor, utc_now
from .categories import category as check_category
from .suspects import select_rows
from .tables import DECISIONS, ensure_ledger

__all__ = ["review_queue", "decide", "undo_last", "set_note", "set_category", "get_detection"]

log = logging.getLogger(__name__)

_DET = DETECTIONS.name


def _in(column: str, values: Iterable[Any]) -> tuple[str, list[Any]]:
    values = list(values)
    if not values:
        return "0", []
    return f'"{column}" IN ({", ".join("?" for _ in values)})', values


def review_queue(ws: Workspace, cell_id: str | None = None, *, classes: Iterable[str] | None = None,
                 statuses: Iterable[str] | None = None, site_id: str | None = None,
                 min_score: float | None = None) -> list[dict[str, Any]]:
    """Detections to review, highest ``priority`` first (unscored last), then highest ``score``.

    Each row is a dict of the detections layer (geometry: shapely box in the workspace CRS).
    ``None`` for a filter means "any"; ``statuses`` are values of ``REVIEW_STATUSES``.
    """
    if not ws.gpkg.has_layer(_DET):
        return []
    where: list[str] = []
    params: list[Any] = []
    if cell_id is not None:
        where.append("cell_id=?")
        params.append(cell_id)
    if classes is not None:
        clause, vals = _in("class", classes)
        where.append(clause)
        params += vals
    if statuses is not None:
        statuses = list(statuses)
        bad = [s for s in statuses if s not in REVIEW_STATUSES]
        if bad:
            raise LedgerError(f"unknown review status {bad[0]!r}", hint="use " + ", ".join(REVIEW_STATUSES))
        clause, vals = _in("review_status", statuses)
        where.append(clause)
        params += vals
    if site_id is not None:
        where.append("site_id=?")
        params.append(site_id)
    if min_score is not None:
        where.append("score>=?")
        params.append(float(min_score))
    return select_rows(ws.gpkg, _DET, " AND ".join(where) or "1=1", params,
                       order_by="priority IS NULL, priority DESC, score DESC, det_id")


def get_detection(ws: Workspace, det_id: str) -> dict[str, Any]:
    """One detection row; :class:`NotFoundError` if there is none with that id."""
    rows = ws.gpkg.select(_DET, "det_id=?", (det_id,)) if ws.gpkg.has_layer(_DET) else []
    if not rows:
        raise NotFoundError(f"no detection {det_id!r} in this workspace", ref=det_id,
                            hint="list them with review_queue() or `skysieve review`")
    return rows[0]


def _check_status(status: str) -> str:
    if status not in REVIEW_STATUSES:
        raise LedgerError(f"unknown review status {status!r}", ref=status, hint="use " + ", ".join(REVIEW_STATUSES))
    return status


def _refuse_if_pushed(row: dict[str, Any], new_status: str) -> None:
    if row.get("suspect_id") and new_status != row["review_status"]:
        raise LedgerError(
            f"detection {row['det_id']} is evidence of suspect {row['suspect_id']}; its review is closed",
            ref=row["det_id"],
            hint=f"change the suspect instead, e.g. `skysieve suspects WS set-status {row['suspect_id']} verified_cleared`",
        )


def decide(ws: Workspace, det_id: str, status: str, reviewer: str, *, note: str | None = None,
           category: str | None = None) -> dict[str, Any]:
    """Set a detection's review status (``confirmed``/``rejected``/``unsure``/``pending``).

    ``note`` and ``category`` (a ``SUSPECT_CATEGORIES`` code) are changed only when given. Returns
    the detection row as it is after the decision. A detection already pushed to the suspect list
    cannot change status (:class:`LedgerError`).
    """
    reviewer = check_actor(reviewer)
    _check_status(status)
    check_category(category)
    ensure_ledger(ws)
    gp = ws.gpkg
    with gp.transaction():
        row = get_detection(ws, det_id)
        _refuse_if_pushed(row, status)
        now = utc_now()
        new_note = row["note"] if note is None else note
        new_category = row["category"] if category is None else category
        gp.update(_DET, "det_id=?", (det_id,), {"review_status": status, "reviewed_by": reviewer,
                                                "reviewed_at": now, "note": new_note, "category": new_category})
        gp.insert(DECISIONS.name, [{
            "det_id": det_id, "kind": "decide", "undoes": None, "old_status": row["review_status"],
            "new_status": status, "old_note": row["note"], "new_note": new_note,
            "old_category": row["category"], "new_category": new_category, "reviewer": reviewer, "at": now,
        }])
        append_audit(gp, reviewer, "detection", det_id, "decide", field="review_status",
                     old=row["review_status"], new=status, note=note, at=now)
        _audit_changes(gp, reviewer, det_id, row, {"note": new_note, "category": new_category}, now)
        out = get_detection(ws, det_id)
    log.debug("%s: %s -> %s by %s", det_id, row["review_status"], status, reviewer)
    return out


def _audit_changes(gp: GeoPackage, who: str, det_id: str, old: dict[str, Any], new: dict[str, Any],
                   at: str, action_prefix: str = "") -> None:
    for field, value in new.items():
        if value != old[field]:
            append_audit(gp, who, "detection", det_id, action_prefix + field, field=field, old=old[field],
                         new=value, at=at)


def _live_decisions(gp: GeoPackage, det_id: str) -> list[dict[str, Any]]:
    """'decide' rows on ``det_id`` that no undo reverted, oldest first."""
    return gp.select(DECISIONS.name,
                     "det_id=? AND kind='decide' AND fid NOT IN "
                     "(SELECT undoes FROM decisions WHERE kind='undo' AND undoes IS NOT NULL)",
                     (det_id,), order_by="fid")


def undo_last(ws: Workspace, reviewer: str) -> dict[str, Any] | None:
    """Revert ``reviewer``'s most recent decision that is still in effect; ``None`` if there is none.

    A decision is in effect when no undo reverted it and no later decision (by anyone) on the same
    detection replaced it. The detection gets back the status, note and category it had before,
    and the reviewer/time of the decision before that. The undo is itself a ``decisions`` row
    (kind ``undo``) and an audit entry. Returns the detection row after the undo.
    """
    reviewer = check_actor(reviewer)
    if not ws.gpkg.has_layer(DECISIONS.name):
        return None
    gp = ws.gpkg
    with gp.transaction():
        candidates = gp.select(DECISIONS.name,
                               "reviewer=? AND kind='decide' AND fid NOT IN "
                               "(SELECT undoes FROM decisions WHERE kind='undo' AND undoes IS NOT NULL)",
                               (reviewer,), order_by="fid DESC")
        target = None
        for d in candidates:
            live = _live_decisions(gp, d["det_id"])
            if live and live[-1]["fid"] == d["fid"]:
                target, before = d, live[:-1]
                break
        if target is None:
            return None
        det_id = target["det_id"]
        row = get_detection(ws, det_id)
        _refuse_if_pushed(row, target["old_status"] or "pending")
        now = utc_now()
        prev = before[-1] if before else None
        restored = {"review_status": target["old_status"] or "pending", "note": target["old_note"],
                    "category": target["old_category"],
                    "reviewed_by": prev["reviewer"] if prev else None, "reviewed_at": prev["at"] if prev else None}
        gp.update(_DET, "det_id=?", (det_id,), restored)
        gp.insert(DECISIONS.name, [{
            "det_id": det_id, "kind": "undo", "undoes": target["fid"], "old_status": row["review_status"],
            "new_status": restored["review_status"], "old_note": row["note"], "new_note": restored["note"],
            "old_category": row["category"], "new_category": restored["category"], "reviewer": reviewer, "at": now,
        }])
        append_audit(gp, reviewer, "detection", det_id, "undo", field="review_status", old=row["review_status"],
                     new=restored["review_status"], note=f"undo of decision {target['fid']} made at {target['at']}",
                     at=now)
        _audit_changes(gp, reviewer, det_id, row, {"note": restored["note"], "category": restored["category"]},
                       now, action_prefix="undo_")
        out = get_detection(ws, det_id)
    log.debug("%s: undo of decision %s by %s", det_id, target["fid"], reviewer)
    return out


def _set_field(ws: Workspace, det_id: str, field: str, value: str | None, reviewer: str) -> dict[str, Any]:
    reviewer = check_actor(reviewer)
    ensure_ledger(ws)
    gp = ws.gpkg
    with gp.transaction():
        row = get_detection(ws, det_id)
        if row[field] != value:
            now = utc_now()
            gp.update(_DET, "det_id=?", (det_id,), {field: value})
            append_audit(gp, reviewer, "detection", det_id, field, field=field, old=row[field], new=value, at=now)
        return get_detection(ws, det_id)


def set_note(ws: Workspace, det_id: str, note: str | None, reviewer: str) -> dict[str, Any]:
    """Replace a detection's note (``None`` clears it); audited. Returns the detection row."""
    return _set_field(ws, det_id, "note", note, reviewer)


def set_category(ws: Workspace, det_id: str, category: str | None, reviewer: str) -> dict[str, Any]:
    """Set the suspect category the analyst sees (a ``SUSPECT_CATEGORIES`` code, or ``None``); audited."""
    check_category(category)
    return _set_field(ws, det_id, "category", category, reviewer)
