"""``skysieve review WORKSPACE [--cell ID] [--reviewer NAME]``: open the review in napari."""

from __future__ import annotations

import argparse
from pathlib import Path

from skysieve.cli import add_json_flag, emit

__all__ = ["register"]


def _check_display() -> None:
    """On Linux without a display (an SSH session, a server) Qt aborts the process after a wall of warnings:
    say so first, with the two ways out."""
    import os
    import sys

    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM", "").split(":")[0] in (
            "offscreen", "minimal", "vnc", "eglfs", "linuxfb"):
        return
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        from skysieve.viewer.launch import ViewerError

        raise ViewerError("no display to open the review window on (DISPLAY and WAYLAND_DISPLAY are unset)",
                          hint="run it on a desktop, or under a virtual display: xvfb-run -a skysieve review ... "
                               "--screenshot OUT.png")


def _cmd_review(args: argparse.Namespace) -> int:
    from skysieve.viewer.launch import open_review, plan_review
    from skysieve.viewer.widget import default_reviewer

    plan = plan_review(args.workspace, args.cell)
    reviewer = args.reviewer or default_reviewer()
    missing = "".join(f"\n  note: {p}" for p in plan.problems)
    if args.check:
        emit(args, {"workspace": str(plan.workspace), "cell_id": plan.cell_id, "reviewer": reviewer,
                    "problems": list(plan.problems)},
             f"would review cell {plan.cell_id} of {plan.workspace} as {reviewer}{missing}")
        return 0
    _check_display()
    import napari

    widget = open_review(plan.workspace, plan.cell_id, reviewer=reviewer)
    if args.screenshot:
        from skysieve.viewer.screenshot import save_window, wait_until_open

        if not wait_until_open(widget):
            from skysieve.viewer.launch import ViewerError

            raise ViewerError("the cell did not open within a minute", path=plan.workspace)
        save_window(widget.viewer, args.screenshot)
        widget.viewer.close()
        emit(args, {"workspace": str(plan.workspace), "cell_id": plan.cell_id, "screenshot": str(args.screenshot)},
             f"saved {args.screenshot} (cell {plan.cell_id} of {plan.workspace}){missing}")
        return 0
    emit(args, {"workspace": str(plan.workspace), "cell_id": plan.cell_id, "reviewer": reviewer},
         f"reviewing cell {plan.cell_id} of {plan.workspace} as {reviewer}{missing}")
    napari.run()
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("review", help="review the flags of a cell in napari (confirm, reject, push to suspects)")
    p.add_argument("workspace", type=Path)
    p.add_argument("--cell", help="cell id to open (default: the one with the most pending flags)")
    p.add_argument("--reviewer", help="your name in the audit trail (default $SKYSIEVE_REVIEWER or login)")
    p.add_argument("--check", action="store_true", help="check what would open, without starting napari")
    p.add_argument("--screenshot", type=Path, metavar="PNG",
                   help="open the cell, save a picture of the window to PNG and exit (for reports)")
    add_json_flag(p)
    p.set_defaults(func=_cmd_review)
