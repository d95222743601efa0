"""The append-only audit trail: who changed what, when (UTC), from which value to which, and why."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from skysieve.errors import LedgerError
from skysieve.gpkg import GeoPackage
from skysieve.workspace import Workspace

from .tables import AUDIT

__all__ = ["utc_now", "append_audit", "audit_trail", "check_actor"]


def utc_now() -> str:
    """The current time as ISO 8601 UTC with milliseconds, e.g. ``2026-11-29T01:02:03.456Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def check_actor(name: str | None, role: str = "reviewer") -> str:
    """A non-empty person (or team) name, stripped; the audit trail never records an anonymous change."""
    if not isinstance(name, str) or not name.strip():
        raise LedgerError(f"a {role} name is required for the audit trail", hint=f"pass the {role}'s name (--by NAME)")
    return name.strip()


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def append_audit(gpkg: GeoPackage, who: str, entity: str, ref: str, action: str, *, field: str | None = None,
                 old: Any = None, new: Any = None, note: str | None = None, at: str | None = None) -> None:
    """Append one audit entry (joins the caller's transaction if one is open)."""
    gpkg.insert(AUDIT.name, [{
        "at": at or utc_now(), "who": who, "entity": entity, "ref": ref, "action": action, "field": field,
        "old_value": _text(old), "new_value": _text(new), "note": note,
    }])


def audit_trail(ws: Workspace, entity: str | None = None, ref: str | None = None) -> list[dict[str, Any]]:
    """Audit entries, oldest first, optionally for one ``entity`` kind and ``ref`` id."""
    if not ws.gpkg.has_layer(AUDIT.name):
        return []
    where: list[str] = []
    params: list[Any] = []
    for col, value in (("entity", entity), ("ref", ref)):
        if value is not None:
            where.append(f"{col}=?")
            params.append(value)
    return ws.gpkg.select(AUDIT.name, " AND ".join(where) or "1=1", tuple(params), order_by="fid")


