"""``skysieve suspects ...`` and ``skysieve report ...``: thin commands over the ledger."""

from __future__ import annotations

import argparse
import getpass
from pathlib import Path

from skysieve.cli import add_json_flag, emit

__all__ = ["register"]


def _ws(args: argparse.Namespace):
    from skysieve.workspace import Workspace

    return Workspace.open(args.workspace)


def _default_person() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in the environment (containers)
        return ""


def _brief(s: dict) -> str:
    return (f"{s['suspect_id']}  {s['status']:<16} {s.get('category') or '-':<22} {s.get('township') or '-'} "
            f"{s.get('village') or ''}  {s['lat']:.6f} N {s['lon']:.6f} E  team={s.get('team') or '-'}  "
            f"{s.get('classes') or ''}")


def _public(s: dict) -> dict:
    return {k: v for k, v in s.items() if k not in ("geometry", "outline", "fid")}


def _cmd_list(args: argparse.Namespace) -> int:
    from skysieve.ledger.suspects import list_suspects

    rows = list_suspects(_ws(args), statuses=args.status, team=args.team, townships=args.township)
    emit(args, {"count": len(rows), "suspects": [_public(r) for r in rows]},
         "\n".join([_brief(r) for r in rows] + [f"{len(rows)} suspects"]))
    return 0


def _field(entry: dict) -> str:
    return f" {entry['field']}" if entry["field"] and entry["field"] != entry["action"] else ""


def _cmd_show(args: argparse.Namespace) -> int:
    from skysieve.ledger.audit import audit_trail
    from skysieve.ledger.suspects import get_suspect

    ws = _ws(args)
    s = get_suspect(ws, args.id)
    trail = audit_trail(ws, "suspect", args.id)
    lines = [_brief(s), f"  evidence: {', '.join(s['det_ids'])}", f"  chips: {', '.join(s['chips']) or '-'}",
             f"  measures: {', '.join(s['measures']) or '-'}", f"  note: {s.get('note') or '-'}", "  history:"]
    lines += [f"    {a['at']}  {a['who']}: {a['action']}{_field(a)} {a['old_value'] or '-'} -> "
              f"{a['new_value'] or '-'}{'  (' + a['note'] + ')' if a['note'] else ''}" for a in trail]
    emit(args, {**_public(s), "audit": [{k: v for k, v in a.items() if k != "fid"} for a in trail]}, "\n".join(lines))
    return 0


def _cmd_set_status(args: argparse.Namespace) -> int:
    from skysieve.ledger.lifecycle import set_status

    s = set_status(_ws(args), args.id, args.status, args.by, note=args.note, measure=args.measure,
                   findings=args.findings)
    emit(args, _public(s), f"{s['suspect_id']}: now {s['status']} (by {args.by})")
    return 0


def _cmd_assign(args: argparse.Namespace) -> int:
    from skysieve.ledger.lifecycle import assign

    s = assign(_ws(args), args.id, args.team, args.by, note=args.note)
    emit(args, _public(s), f"{s['suspect_id']}: team {s['team']}, {s['status']} (by {args.by})")
    return 0


def _cmd_push(args: argparse.Namespace) -> int:
    from skysieve.ledger.push import push_confirmed

    r = push_confirmed(_ws(args), args.by, det_ids=args.det or None, cell_id=args.cell)
    text = f"{len(r.created)} suspects created, {len(r.extended)} extended, {len(r.skipped)} detections skipped"
    text += "".join(f"\n  skipped {d}: {why}" for d, why in r.skipped.items())
    emit(args, {"created": r.created, "extended": r.extended, "skipped": r.skipped}, text)
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from skysieve.ledger.export import export_suspects
    from skysieve.ledger.records import SuspectFilter

    flt = SuspectFilter(statuses=tuple(args.status) if args.status else None, team=args.team,
                        townships=tuple(args.township) if args.township else None)
    r = export_suspects(_ws(args), args.format, args.out, flt)
    emit(args, {"format": r.format, "count": r.count, "paths": [str(p) for p in r.paths]},
         f"{r.count} suspects exported as {r.format}: " + ", ".join(str(p) for p in r.paths))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from skysieve.ledger.report import make_report

    report = make_report(_ws(args), args.out)
    stats, xlsx, page = report.stats, report.xlsx, report.html
    c = stats.county
    emit(args, {"xlsx": str(xlsx), "html": str(page), "townships": len(stats.townships), "cells": c.cells,
                "cells_flown": c.cells_flown, "coverage_pct": c.coverage_pct, "flags": c.flags,
                "reviewed": c.flags_reviewed, "suspects": c.suspects, "by_status": dict(c.by_status)},
         f"report: {len(stats.townships)} townships, {c.cells_flown}/{c.cells} cells flown "
         f"({c.coverage_pct:.1f}% covered), {c.flags} flags ({c.flags_reviewed} reviewed), {c.suspects} suspects "
         f"-> {xlsx}, {page}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``suspects`` and ``report`` to the ``skysieve`` command."""
    from skysieve.ledger.export import EXPORT_FORMATS
    from skysieve.ledger.lifecycle import DISPOSAL_MEASURES, STATUSES

    statuses = [s.code for s in STATUSES]
    p = subparsers.add_parser("suspects", help="the suspect list (清单台账): list, show, change, export")
    p.add_argument("workspace", type=Path)
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    def status_list(text: str) -> list[str]:
        values = [v.strip() for v in text.split(",") if v.strip()]
        bad = [v for v in values if v not in statuses]
        if bad:
            raise argparse.ArgumentTypeError(f"unknown status {bad[0]!r} (choose from {', '.join(statuses)})")
        return values

    def filters(q: argparse.ArgumentParser) -> None:
        q.add_argument("--status", type=status_list, action="extend",
                       help="only these statuses (comma-separated or repeated): " + ", ".join(statuses))
        q.add_argument("--team", help="only this field team's suspects")
        q.add_argument("--township", type=lambda t: [v.strip() for v in t.split(",") if v.strip()], action="extend",
                       help="only these townships (comma-separated or repeated)")

    q = sub.add_parser("list", help="list suspects")
    filters(q)
    add_json_flag(q)
    q.set_defaults(func=_cmd_list)

    q = sub.add_parser("show", help="one suspect with its evidence and history")
    q.add_argument("id")
    add_json_flag(q)
    q.set_defaults(func=_cmd_show)

    q = sub.add_parser("set-status", help="move a suspect along its lifecycle")
    q.add_argument("id")
    q.add_argument("status", choices=statuses)
    q.add_argument("--by", required=True, help="who makes the change (recorded in the audit trail)")
    q.add_argument("--note")
    q.add_argument("--measure", choices=[m.code for m in DISPOSAL_MEASURES], help="disposal measure (for disposed)")
    q.add_argument("--findings", help="what the field team found on site")
    add_json_flag(q)
    q.set_defaults(func=_cmd_set_status)

    q = sub.add_parser("assign", help="give a suspect to a field team (suspected -> dispatched)")
    q.add_argument("id")
    q.add_argument("team")
    q.add_argument("--by", default=_default_person(), help="who assigns it (default: the login name)")
    q.add_argument("--note")
    add_json_flag(q)
    q.set_defaults(func=_cmd_assign)

    q = sub.add_parser("push", help="turn confirmed detections into suspects")
    q.add_argument("--by", required=True, help="the analyst")
    q.add_argument("--cell", help="only this grid cell")
    q.add_argument("--det", nargs="+", help="only these detection ids")
    add_json_flag(q)
    q.set_defaults(func=_cmd_push)

    q = sub.add_parser("export", help="export for field teams: " + ", ".join(EXPORT_FORMATS))
    q.add_argument("--format", "-f", required=True, choices=EXPORT_FORMATS)
    filters(q)
    q.add_argument("out", type=Path, help="output file (a folder for html/pdf dispatch sheets, one per team)")
    add_json_flag(q)
    q.set_defaults(func=_cmd_export)

    r = subparsers.add_parser("report", help="campaign report for the county office (XLSX + HTML with a map)")
    r.add_argument("workspace", type=Path)
    r.add_argument("--out", type=Path, help="output folder (default WORKSPACE/exports/report)")
    add_json_flag(r)
    r.set_defaults(func=_cmd_report)
