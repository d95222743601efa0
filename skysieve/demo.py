"""``skysieve demo``: the whole chain on a generated survey, from flight to field sheet.

A synthetic county (seeded) is made and flown by a simulated drone; its photos then go through the
same commands a real flight goes through: ingest, per-cell orthomosaics, the site register, detection,
a stand-in reviewer (marked as such in the audit trail) that confirms the flags matching the synthetic
truth, the suspect list, every field export and the campaign report. Rerunning resumes: every stage
skips what is already done.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

from skysieve.cli import add_json_flag, emit

__all__ = ["run_demo", "register"]

log = logging.getLogger(__name__)

DEFAULT_WORKSPACE = Path("demo-survey")


def _stage(name: str, timings: dict[str, float]):
    class _Timer:
        def __enter__(self):
            self.t0 = time.perf_counter()
            log.warning("demo: %s ...", name)
            return self

        def __exit__(self, *exc):
            timings[name] = round(time.perf_counter() - self.t0, 1)
            return False

    return _Timer()


def run_demo(workspace: Path = DEFAULT_WORKSPACE, seed: int | None = None) -> dict[str, Any]:
    """Run every stage on a generated survey in ``workspace``; returns a summary of what each made."""
    from skysieve.datasets import demo_inputs
    from skysieve.detect import detect_cells, import_sites
    from skysieve.ledger import demo_ledger
    from skysieve.mosaic import build_mosaics, ingest_flight
    from skysieve.workspace import Workspace

    workspace = Path(workspace)
    timings: dict[str, float] = {}
    summary: dict[str, Any] = {"workspace": str(workspace.resolve())}
    with _stage("generating a synthetic county and flying it", timings):
        inputs = demo_inputs(workspace / "_generated", seed=seed)
    with _stage("creating the workspace", timings):
        ws = Workspace.create(workspace, exist_ok=True)
    with _stage("ingesting the flight", timings):
        summary["ingest"] = ingest_flight(ws, inputs.flight_dir, flight_id="demo-flight").summary()
    with _stage("building per-cell orthomosaics", timings):
        summary["mosaic"] = build_mosaics(ws)
    with _stage("importing the site register", timings):
        summary["sites"] = import_sites(ws, inputs.sites_path)
    with _stage("detecting tanks, chimneys and drum stockpiles", timings):
        summary["detect"] = detect_cells(ws)
    with _stage("stand-in review, suspect list, exports and report", timings):
        summary["ledger"] = demo_ledger(ws, inputs.truth_path)
    summary["timings_s"] = timings
    return summary


def _cmd_demo(args: argparse.Namespace) -> int:
    summary = run_demo(args.workspace, seed=args.seed)
    ws = summary["workspace"]
    text = "\n".join([
        f"demo survey ready in {ws} ({sum(summary['timings_s'].values()):.0f} s)",
        *(f"  {k}: {v} s" for k, v in summary["timings_s"].items()),
        f"field exports and report: {Path(ws) / 'exports'}",
        "review the flags in napari:",
        f"  skysieve review {ws}",
    ])
    emit(args, summary, text)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the whole pipeline on a generated survey")
    p.add_argument("workspace", nargs="?", type=Path, default=DEFAULT_WORKSPACE,
                   help=f"where to put the demo survey (default ./{DEFAULT_WORKSPACE})")
    p.add_argument("--seed", type=int, default=None,
                   help="seed of the synthetic county (default: one whose sites host all three classes)")
    add_json_flag(p)
    p.set_defaults(func=_cmd_demo)
