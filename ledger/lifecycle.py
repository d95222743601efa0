"""The suspect lifecycle: suspected -> dispatched -> verified on site -> disposed -> closed.

Follows the campaign's order of work (疑似从有、先排后核): every lead is checked on the ground by a
field team before it is cleared or disposed of. Each change is audited; a change the lifecycle
does not allow raises :class:`TransitionError` saying which changes are allowed from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from skysieve.errors import LedgerError, TransitionError
from skysieve.workspace import Workspace

from .audit import append_audit, check_actor, utc_now
from .categories import category as check_category
from .suspects import get_suspect
from .tables import SUSPECTS, ensure_ledger

__all__ = ["SuspectStatus", "STATUSES", "STATUS_BY_CODE", "TRANSITIONS", "DisposalMeasure", "DISPOSAL_MEASURES",
           "set_status", "assign", "set_suspect_category", "allowed_next"]


@dataclass(frozen=True)
class SuspectStatus:
    """A lifecycle state: stable ``code``, Chinese/English labels, KML/HTML colour (``#rrggbb``)."""

    code: str
    zh: str
    en: str
    colour: str


STATUSES: tuple[SuspectStatus, ...] = (
    SuspectStatus("suspected", "疑似", "suspected", "#e67e22"),
    SuspectStatus("dispatched", "已派发核查", "dispatched to a field team", "#f1c40f"),
    SuspectStatus("verified_illegal", "核查属实(违法)", "verified on site: illegal", "#c0392b"),
    SuspectStatus("verified_cleared", "核查排除", "verified on site: cleared", "#27ae60"),
    SuspectStatus("disposed", "已处置", "disposed", "#8e44ad"),
    SuspectStatus("closed", "已销号", "closed", "#7f8c8d"),
)
STATUS_BY_CODE = {s.code: s for s in STATUSES}

#: allowed changes; ``disposed -> disposed`` records a further measure, ``closed -> suspected`` reopens
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "suspected": ("dispatched",),
    "dispatched": ("verified_illegal", "verified_cleared", "suspected"),
    "verified_illegal": ("disposed",),
    "verified_cleared": ("closed",),
    "disposed": ("disposed", "closed"),
    "closed": ("suspected",),
}


@dataclass(frozen=True)
class DisposalMeasure:
    """A disposal the work plan prescribes (四、处置措施)."""

    code: str
    zh: str
    en: str


DISPOSAL_MEASURES: tuple[DisposalMeasure, ...] = (
    DisposalMeasure("stop_rectify", "责令停产整顿", "ordered to stop production and rectify"),
    DisposalMeasure("dismantle", "拆除生产储存装置、清理原料产品", "equipment dismantled, materials cleared"),
    DisposalMeasure("shut_down", "关闭取缔(断电断水)", "shut down (power and water cut)"),
    DisposalMeasure("judicial_transfer", "移送公安、司法机关", "handed to the police and prosecutors"),
)
_MEASURES = {m.code: m for m in DISPOSAL_MEASURES}


def allowed_next(status: str) -> tuple[str, ...]:
    """Statuses a suspect in ``status`` may move to."""
    return TRANSITIONS.get(status, ())


_VERIFIED = ("verified_illegal", "verified_cleared")
#: commands worth naming in the hint of a refused move (assign sets the team and dispatches)
_HOW = {("suspected", "dispatched"): "assign ID TEAM", ("closed", "suspected"): "set-status ID suspected --note WHY"}


def _why_not(old: str, new: str) -> str:
    """Why the lifecycle refuses ``old -> new``, in words; '' where the allowed moves say it all."""
    if new == old:
        return f"it is already {old}"
    if old == "closed":
        return "a closed suspect is reopened (back to suspected, with a note) before anything else"
    if old == "suspected" and new in _VERIFIED:
        return "it is verified on site by a field team: assign it to a team first"
    if old in ("suspected", "dispatched") and new in ("disposed", "closed"):
        return "a suspect is verified on site before it is disposed of or closed"
    if old == "verified_illegal" and new == "closed":
        return "an illegal site is disposed of before it is closed"
    if old == "verified_cleared" and new == "disposed":
        return "a site cleared on site has nothing to dispose of"
    if old in (*_VERIFIED, "disposed") and new in _VERIFIED:
        return "it has been verified on site already"
    return ""


def _check_transition(sid: str, old: str, new: str) -> None:
    if new not in STATUS_BY_CODE:
        raise TransitionError(f"unknown suspect status {new!r}", ref=sid,
                              hint="use one of " + ", ".join(STATUS_BY_CODE))
    if new not in allowed_next(old):
        nxt = ", ".join(f"{n} (`{_HOW[old, n].replace('ID', sid)}`)" if (old, n) in _HOW else n
                        for n in allowed_next(old))
        why = _why_not(old, new)
        raise TransitionError(f"suspect {sid} cannot go from {old} to {new}{': ' + why if why else ''}", ref=sid,
                              hint=f"from {old} it can go to: {nxt or 'nothing'}")


def set_status(ws: Workspace, suspect_id: str, status: str, by: str, *, note: str | None = None,
               measure: str | None = None, findings: str | None = None) -> dict[str, Any]:
    """Move a suspect along its lifecycle; returns the suspect after the change.

    ``dispatched`` needs a team (:func:`assign` does both); ``disposed`` needs a ``measure`` (a
    ``DISPOSAL_MEASURES`` code; measures accumulate); reopening a closed suspect needs a ``note``.
    ``findings`` (what the team found on site) is stored with the change.
    """
    by = check_actor(by, "person")
    if measure is not None and measure not in _MEASURES:
        raise LedgerError(f"unknown disposal measure {measure!r}", ref=suspect_id,
                          hint="use one of " + ", ".join(_MEASURES))
    ensure_ledger(ws, detections=False)
    gp = ws.gpkg
    with gp.transaction():
        s = get_suspect(ws, suspect_id)
        old = s["status"]
        _check_transition(suspect_id, old, status)
        if status == "dispatched" and not s["team"]:
            raise TransitionError(f"suspect {suspect_id} has no field team", ref=suspect_id,
                                  hint=f"assign one: skysieve suspects WORKSPACE assign {suspect_id} TEAM")
        if status == "disposed" and measure is None:
            raise TransitionError(f"disposing of suspect {suspect_id} needs the measure taken", ref=suspect_id,
                                  hint="give --measure " + "|".join(_MEASURES))
        if old == "closed" and not (note and note.strip()):
            raise TransitionError(f"reopening closed suspect {suspect_id} needs a note saying why", ref=suspect_id,
                                  hint="give --note")
        now = utc_now()
        values: dict[str, Any] = {"status": status, "updated_by": by, "updated_at": now}
        if status == "disposed":
            values["measures"] = ",".join([*s["measures"], measure])
        if findings is not None:
            values["findings"] = findings
        gp.update(SUSPECTS.name, "suspect_id=?", (suspect_id,), values)
        append_audit(gp, by, "suspect", suspect_id, "status", field="status", old=old, new=status, note=note, at=now)
        if status == "disposed":
            append_audit(gp, by, "suspect", suspect_id, "measure", field="measures", old=",".join(s["measures"]),
                         new=values["measures"], note=note, at=now)
        if findings is not None and findings != s["findings"]:
            append_audit(gp, by, "suspect", suspect_id, "findings", field="findings", old=s["findings"],
                         new=findings, at=now)
        return get_suspect(ws, suspect_id)


def assign(ws: Workspace, suspect_id: str, team: str, by: str, *, note: str | None = None) -> dict[str, Any]:
    """Give a suspect to a field team; a ``suspected`` one becomes ``dispatched``. Returns the suspect."""
    by = check_actor(by, "person")
    team = check_actor(team, "team")
    ensure_ledger(ws, detections=False)
    gp = ws.gpkg
    with gp.transaction():
        s = get_suspect(ws, suspect_id)
        if s["status"] == "closed":
            raise TransitionError(f"suspect {suspect_id} is closed", ref=suspect_id,
                                  hint="reopen it first (set-status ... suspected --note WHY)")
        now = utc_now()
        if team != s["team"]:
            gp.update(SUSPECTS.name, "suspect_id=?", (suspect_id,), {"team": team, "updated_by": by, "updated_at": now})
            append_audit(gp, by, "suspect", suspect_id, "assign", field="team", old=s["team"], new=team, note=note,
                         at=now)
        if s["status"] == "suspected":
            return set_status(ws, suspect_id, "dispatched", by, note=note)
        return get_suspect(ws, suspect_id)


def set_suspect_category(ws: Workspace, suspect_id: str, category: str | None, by: str, *,
                         note: str | None = None) -> dict[str, Any]:
    """Set a suspect's category (a ``SUSPECT_CATEGORIES`` code, or None); audited."""
    by = check_actor(by, "person")
    check_category(category)
    gp = ws.gpkg
    with gp.transaction():
        s = get_suspect(ws, suspect_id)
        if category != s["category"]:
            now = utc_now()
            gp.update(SUSPECTS.name, "suspect_id=?", (suspect_id,),
                      {"category": category, "updated_by": by, "updated_at": now})
            append_audit(gp, by, "suspect", suspect_id, "category", field="category", old=s["category"],
                         new=category, note=note, at=now)
        return get_suspect(ws, suspect_id)
