"""The ledger's part of ``skysieve demo``: a stand-in reviewer, the suspect list, every export, the report.

The stand-in confirms the flags that match an object of the synthetic ground truth (same class, box
centre within ``match_m`` of the object's footprint) and rejects the rest. It is recorded in the
audit trail under :data:`DEMO_REVIEWER`, so nobody mistakes its decisions for an analyst's.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pyproj import CRS
from shapely.geometry import Point, shape

from skysieve.crs import reproject
from skysieve.errors import DatasetError, ExportError
from skysieve.progress import progress
from skysieve.schema import DETECTIONS
from skysieve.workspace import Workspace

from .categories import suggest_category
from .export import DATA_FORMATS, SHEET_FORMATS, export_all
from .lifecycle import assign
from .push import push_confirmed
from .report import make_report
from .review import decide
from .suspects import list_suspects

__all__ = ["DEMO_REVIEWER", "DemoReviewSettings", "demo_ledger", "read_truth"]

log = logging.getLogger(__name__)

DEMO_REVIEWER = "demo-autoreviewer (stand-in for an analyst)"


@dataclass(frozen=True)
class DemoReviewSettings:
    """How the stand-in decides: truth matching distance (metres) or, without truth, a score cut."""

    match_m: float = 1.0
    min_score_without_truth: float = 0.5


def read_truth(path: Path, ws: Workspace) -> list[tuple[str, shapely.Geometry]]:
    """(class, geometry in the workspace CRS) of each truth object of a GeoJSON file.

    The file's ``crs`` member (``urn:ogc:def:crs:EPSG::N``) is honoured; without one, RFC 7946
    WGS 84 lon/lat is assumed.
    """
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DatasetError(f"cannot read the truth file: {e}", path=path, hint="give a GeoJSON FeatureCollection") from e
    name = ((doc.get("crs") or {}).get("properties") or {}).get("name")
    src = CRS.from_user_input(name) if name else CRS.from_epsg(4326)
    dst = ws.require_crs()
    out = []
    for f in doc.get("features", []):
        cls = (f.get("properties") or {}).get("class")
        if not cls or not f.get("geometry"):
            continue
        out.append((str(cls).lower(), shape(f["geometry"])))
    if out:
        moved = reproject(np.array([g for _, g in out], dtype=object), src, dst)
        out = [(c, g) for (c, _), g in zip(out, moved, strict=True)]
    return out


def _stand_in_review(ws: Workspace, truth: list[tuple[str, shapely.Geometry]] | None,
                     s: DemoReviewSettings) -> dict[str, int]:
    gp = ws.gpkg
    pending = gp.select(DETECTIONS.name, "review_status='pending'", order_by="det_id") \
        if gp.has_layer(DETECTIONS.name) else []
    kinds = {r["site_id"]: r["kind"] for r in gp.select("sites")} if gp.has_layer("sites") else {}
    by_class: dict[str, shapely.STRtree] = {}
    geoms: dict[str, list[shapely.Geometry]] = {}
    for cls, g in truth or ():
        geoms.setdefault(cls, []).append(g)
    for cls, gs in geoms.items():
        by_class[cls] = shapely.STRtree(gs)
    counts = {"confirmed": 0, "rejected": 0}
    for d in progress(pending, "stand-in review", total=len(pending)):
        centre = Point(d["x"], d["y"]) if d.get("x") is not None else d["geometry"].centroid
        if truth is None:
            ok = d["score"] >= s.min_score_without_truth
            why = f"score {d['score']:.2f} {'>=' if ok else '<'} {s.min_score_without_truth} (no truth given)"
        else:
            tree = by_class.get(str(d["class"]).lower())
            ok = tree is not None and len(tree.query(centre, predicate="dwithin", distance=s.match_m)) > 0
            why = (f"matches a synthetic truth {d['class']} within {s.match_m:g} m" if ok
                   else f"no synthetic truth {d['class']} within {s.match_m:g} m")
        status = "confirmed" if ok else "rejected"
        decide(ws, d["det_id"], status, DEMO_REVIEWER, note=why,
               category=suggest_category(kinds.get(d.get("site_id"))) if ok else None)
        counts[status] += 1
    return counts


def demo_ledger(ws: Workspace, truth_geojson: Path | None, *, out_dir: Path | None = None,
                settings: DemoReviewSettings | None = None) -> dict[str, Any]:
    """Stand-in review, push to the suspect list, dispatch to township teams, every export, the report.

    ``truth_geojson``: the synthetic world's ``truth/objects.geojson`` (or None: confirm by score).
    Exports go to ``out_dir`` (default ``WORKSPACE/exports``). Returns a summary of what was made.
    A PDF that cannot be drawn (no CJK font installed) is reported in the summary, not raised.
    """
    s = settings or DemoReviewSettings()
    truth = read_truth(Path(truth_geojson), ws) if truth_geojson is not None else None
    counts = _stand_in_review(ws, truth, s)
    pushed = push_confirmed(ws, DEMO_REVIEWER)
    for sus in list_suspects(ws, statuses=["suspected"]):
        team = f"{sus['township']}核查组" if sus.get("township") else "县联合排查组"
        assign(ws, sus["suspect_id"], team, DEMO_REVIEWER, note="demo: dispatched to the township's team")
    out = Path(out_dir) if out_dir is not None else ws.exports_dir
    exports: dict[str, list[str]] = {}
    errors: dict[str, str] = {}
    results = export_all(ws, out, formats=DATA_FORMATS + ("html",))
    try:
        results.update(export_all(ws, out, formats=("pdf",)))
    except ExportError as e:
        errors["pdf"] = str(e)
        log.warning("demo: no PDF dispatch sheets: %s", e)
    for fmt, r in results.items():
        exports[fmt] = [str(p) for p in r.paths]
    report = make_report(ws, out / "report")
    return {
        "reviewer": DEMO_REVIEWER, "truth_objects": len(truth) if truth is not None else None,
        "confirmed": counts["confirmed"], "rejected": counts["rejected"],
        "suspects_created": len(pushed.created), "suspects_extended": len(pushed.extended),
        "suspects": report.stats.county.suspects, "exports": exports, "export_errors": errors,
        "report": {"xlsx": str(report.xlsx), "html": str(report.html)},
        "formats": list(DATA_FORMATS + SHEET_FORMATS),
    }
