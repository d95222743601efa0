"""The ledger: review decisions on detections, the suspect list (清单台账), its audit trail and exports.

Services take the :class:`~skysieve.workspace.Workspace` first and write in one GeoPackage
transaction each, so the napari widget, the CLI and two analysts at once can all call them.
"""

from __future__ import annotations

from .audit import audit_trail
from .categories import SUSPECT_CATEGORIES, SuspectCategory, suggest_category
from .chinese_datums import gcj02_to_bd09, gcj02_to_wgs84, wgs84_to_bd09, wgs84_to_gcj02
from .demo import DEMO_REVIEWER, demo_ledger
from .export import EXPORT_FORMATS, ExportResult, export_all, export_suspects
from .lifecycle import DISPOSAL_MEASURES, STATUSES, TRANSITIONS, assign, set_status, set_suspect_category
from .push import PushResult, PushSettings, push_confirmed, push_to_suspects
from .records import FieldRecord, SuspectFilter, field_records
from .report import campaign_stats, make_report
from .review import decide, get_detection, review_queue, set_category, set_note, undo_last
from .suspects import get_suspect, list_suspects
from .tables import AUDIT, DECISIONS, SUSPECT_OUTLINES, SUSPECTS, ensure_ledger

__all__ = [
    "AUDIT", "DECISIONS", "SUSPECTS", "SUSPECT_OUTLINES", "SUSPECT_CATEGORIES", "SuspectCategory",
    "PushResult", "PushSettings",
    "review_queue", "decide", "undo_last", "set_note", "set_category", "get_detection",
    "push_to_suspects", "push_confirmed", "suggest_category",
    "get_suspect", "list_suspects", "audit_trail", "ensure_ledger",
    "STATUSES", "TRANSITIONS", "DISPOSAL_MEASURES", "set_status", "assign", "set_suspect_category",
    "EXPORT_FORMATS", "ExportResult", "SuspectFilter", "FieldRecord", "field_records", "export_suspects", "export_all",
    "wgs84_to_gcj02", "gcj02_to_wgs84", "gcj02_to_bd09", "wgs84_to_bd09",
    "campaign_stats", "make_report", "demo_ledger", "DEMO_REVIEWER",
]
