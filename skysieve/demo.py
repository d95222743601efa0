"""``skysieve demo``: the whole chain on a generated survey, from flight to field sheet.

A synthetic county (seeded) is made and flown by a simulated drone; its photos then go through the
same commands a real flight goes through: ingest, per-cell orthomosaics, the site register, detection,
a stand-in reviewer (marked as such in the audit trail) that confirms the flags matching the synthetic
truth, the suspect list, every field export and the campaign report. Rerunning resumes: every stage
skips what is already done.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from skysieve.cli import add_json_flag, emit
from skysieve.workspace import Workspace

__all__ = ["run_demo", "register"]

log = logging.getLogger(__name__)

DEFAULT_WORKSPACE = Path("demo-survey")


class _Stages:
    """Times the demo's stages and tells ``on_stage`` (the CLI prints it) when each starts."""

    def __init__(self, on_stage: Callable[[str], None] | None) -> None:
        self.timings: dict[str, float] = {}
        self._on_stage = on_stage

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        if self._on_stage:
            self._on_stage(name)
        log.info("demo: %s", name)
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round(time.perf_counter() - t0, 1)


def run_demo(workspace: Path = DEFAULT_WORKSPACE, seed: int | None = None,
             on_stage: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run every stage on a generated survey in ``workspace``; returns a summary of what each made.

    ``on_stage(name)`` is called as each stage starts (the CLI prints it).
    """
    from skysieve.datasets import demo_inputs
    from skysieve.detect import detect_cells, import_sites
    from skysieve.ledger import demo_ledger
    from skysieve.mosaic import build_mosaics, ingest_flight

    workspace = Path(workspace)
    stage = _Stages(on_stage)
    summary: dict[str, Any] = {"workspace": str(workspace.resolve())}
    with stage("generating a synthetic county and flying it"):
        inputs = demo_inputs(workspace / "_generated", seed=seed)
    with stage("creating the workspace"):
        ws = Workspace.create(workspace, exist_ok=True)
    with stage("ingesting the flight"):
        summary["ingest"] = ingest_flight(ws, inputs.flight_dir, flight_id="demo-flight").summary()
    with stage("building per-cell orthomosaics"):
        summary["mosaic"] = build_mosaics(ws)
    with stage("importing the site register"):
        summary["sites"] = import_sites(ws, inputs.sites_path)
    with stage("detecting tanks, chimneys and drum stockpiles"):
        summary["detect"] = detect_cells(ws)
    with stage("stand-in review, suspect list, exports and report"):
        summary["ledger"] = demo_ledger(ws, inputs.truth_path)
    summary["timings_s"] = stage.timings
    summary["counts"] = survey_counts(ws)
    return summary


def survey_counts(ws: Workspace) -> dict[str, int]:
    """How many photos, mosaics, sites, flags (by review status) and suspects the workspace holds."""
    g = ws.gpkg
    layers = set(g.layers())

    def count(layer: str, where: str = "1=1") -> int:
        return g.count(layer, where) if layer in layers else 0

    return {
        "photos_accepted": count("images", "status='accepted'"),
        "photos_rejected": count("images", "status='rejected'"),
        "cells_mosaicked": sum(1 for c in ws.cells() if (ws.cell_dir(c.cell_id) / "ortho.tif").exists()),
        "sites": count("sites"),
        "flags": count("detections"),
        "flags_confirmed": count("detections", "review_status='confirmed'"),
        "flags_rejected": count("detections", "review_status='rejected'"),
        "suspects": count("suspects"),
    }


def _cmd_demo(args: argparse.Namespace) -> int:
    def announce(name: str) -> None:
        if not args.json:
            print(f"skysieve demo: {name} ...", file=sys.stderr, flush=True)

    summary = run_demo(args.workspace, seed=args.seed, on_stage=announce)
    ws = summary["workspace"]
    n = summary["counts"]
    text = "\n".join([
        f"demo survey ready in {ws} ({sum(summary['timings_s'].values()):.0f} s): "
        f"{n['photos_accepted']} photos accepted ({n['photos_rejected']} rejected), "
        f"{n['cells_mosaicked']} cell mosaics, {n['sites']} known sites, {n['flags']} flags "
        f"({n['flags_confirmed']} confirmed by the stand-in reviewer, {n['flags_rejected']} rejected), "
        f"{n['suspects']} suspects",
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
