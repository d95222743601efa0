"""A scripted review session on a synthetic world, saved as a picture (``docs/review.png``).

    python -m skysieve.viewer.demo_session docs/review.png [--workspace DIR] [--seed 7]

Builds a workspace from :func:`skysieve.datasets.make_world` (its ortho cut into cells with
:func:`skysieve.mosaic.import_ortho.import_ortho`, its known sites registered, and one flag per true
object plus false alarms on look-alikes), then reviews the busiest cell the way an analyst does:
confirm, reject, mark unsure, note, category, push to the suspect list. For the demo survey made by
``skysieve demo`` use ``skysieve review WS --screenshot PNG`` instead (it decides nothing).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np
import shapely

from skysieve.schema import DETECTIONS, SITES
from skysieve.workspace import Workspace

__all__ = ["build_world_workspace", "record_session"]

log = logging.getLogger(__name__)

_URGENT_SITES = {"idle_factory": 1.6, "closed_enterprise": 1.5, "scrap_yard": 1.3, "farm": 1.2, "idle_house": 1.3}


def _features(path: Path) -> list[tuple[shapely.Geometry, dict]]:
    doc = json.loads(path.read_text())
    return [(shapely.geometry.shape(f["geometry"]), f["properties"]) for f in doc["features"]]


def build_world_workspace(root: str | Path, *, seed: int = 7, size_m: float = 400.0, gsd_m: float = 0.08,
                          cell_size_m: float = 200.0) -> Workspace:
    """A workspace over synthetic world ``seed``: cell COGs, the site register, scored flags."""
    from skysieve.datasets import make_world
    from skysieve.mosaic.import_ortho import import_ortho

    root = Path(root)
    world = make_world(root.parent / f"{root.name}-world", seed=seed, size_m=size_m, gsd_m=gsd_m)
    ws = Workspace.create(root, crs=world.crs, cell_size_m=cell_size_m)
    import_ortho(ws, world.ortho)
    sites = _features(world.root / "truth" / "sites.geojson")
    ws.layer(SITES)
    ws.gpkg.insert("sites", [{"site_id": p["site_id"], "kind": p["kind"], "name": p["name"], "source": "world",
                              "geometry": g} for g, p in sites], or_ignore=True)
    rng = np.random.default_rng(seed)
    kinds = {p["site_id"]: p["kind"] for _, p in sites}
    site_geoms = [(g, p["site_id"]) for g, p in sites]
    rows = []
    found = [(g, p["class"], float(rng.uniform(0.55, 0.97))) for g, p in _features(world.objects)]
    alarms = [(g, "tank", float(rng.uniform(0.3, 0.6))) for g, _ in _features(world.distractors)]
    alarms = [alarms[i] for i in rng.permutation(len(alarms))[: max(3, len(found) // 4)]]
    ws.layer(DETECTIONS)
    for i, (geom, cls, score) in enumerate(found + alarms):
        minx, miny, maxx, maxy = geom.bounds
        c = geom.centroid
        cells = ws.cells_touching(shapely.Point(c.x, c.y).buffer(0.01))
        if not cells:
            continue
        site = next((sid for g, sid in site_geoms if g.contains(c)), None)
        weight = _URGENT_SITES.get(kinds.get(site, ""), 1.0)
        lon, lat = ws.to_lonlat(c.x, c.y)
        rows.append({
            "det_id": f"W{seed}-{i:04d}", "cell_id": cells[0].cell_id, "class": cls, "score": round(score, 3),
            "model": "world-truth", "x": c.x, "y": c.y, "lon": float(lon), "lat": float(lat),
            "width_m": maxx - minx, "height_m": maxy - miny, "site_id": site, "candidate_id": site,
            "priority": round(score * weight, 3),
            "priority_reason": f"score {score:.2f}" + (f" x {weight:g} in a {kinds[site]}" if site else ""),
            "review_status": "pending", "geometry": shapely.box(minx, miny, maxx, maxy),
        })
    ws.gpkg.insert("detections", rows)
    log.info("world review workspace %s: %d flags", ws.root, len(rows))
    return ws


def record_session(ws: Workspace, out_png: str | Path, reviewer: str = "analyst.wang", *,
                   decide: bool = True) -> Path:
    """Review the busiest cell a little (decisions are real ledger writes) and save the window.

    ``decide=False`` only opens the cell and takes the picture (for a workspace reviewed before).
    """
    from qtpy.QtWidgets import QApplication

    from skysieve.viewer import open_review
    from skysieve.viewer.screenshot import save_window, wait_until_open

    widget = open_review(ws, reviewer=reviewer)
    widget.viewer.window.resize(1600, 1000)
    if not wait_until_open(widget):
        raise RuntimeError("the review did not open")
    if decide:
        _decide_some(widget)
    for _ in range(10):
        QApplication.processEvents()
    cell = next(c for c in ws.cells() if c.cell_id == widget.cell_id).geometry
    minx, miny, maxx, maxy = cell.bounds
    widget.viewer.scene.camera.center = tuple(widget.frame.to_world((minx + maxx) / 2, (miny + maxy) / 2)[0])
    widget.viewer.scene.camera.zoom = min(widget.viewer.canvas.size) / (1.02 * max(maxx - minx, maxy - miny))
    path = save_window(widget.viewer, out_png)
    widget.viewer.close()
    return path


def _decide_some(widget) -> None:
    from skysieve.viewer.screenshot import wait_until_open

    rows = widget.queue.rows
    by_site: dict[str, list[str]] = {}
    for r in rows:
        if r.get("site_id"):
            by_site.setdefault(r["site_id"], []).append(r["det_id"])
    site_flags = (max(by_site.values(), key=len) if by_site else [])[:3]
    kinds = {s["site_id"]: s["kind"] for s in widget.data.sites}
    for det in site_flags:  # the site with the most flags: confirm them, file them as one suspect
        widget.select_detection(det)
        site = widget.queue.current.get("site_id")
        widget.choose_category_number(5 if kinds.get(site) == "closed_enterprise" else 4)
        widget.confirm()
    if site_flags:
        widget.push_to_suspects()
        wait_until_open(widget)
    others = [r["det_id"] for r in rows if r["det_id"] not in site_flags]
    for det, status in zip(others[::-1], ("rejected", "unsure"), strict=False):
        if len(others) > 1 or status == "rejected":
            widget.select_detection(det)
            widget.decide(status)
    pending = [r["det_id"] for r in widget.queue.rows if r["review_status"] == "pending"]
    if pending:
        widget.select_detection(pending[0])
        widget.save_note("round white roof next to the drum pile; check on site")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="record a review session picture")
    parser.add_argument("out", type=Path)
    parser.add_argument("--workspace", type=Path, help="where to build the workspace (default: a temp dir)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--decide", action="store_true", help="make the scripted decisions on a reused workspace too")
    args = parser.parse_args(argv)
    import tempfile

    logging.basicConfig(level=logging.INFO)
    root = args.workspace or Path(tempfile.mkdtemp(prefix="review_world_")) / "ws"
    reuse = (root / "survey.gpkg").exists()
    ws = Workspace.open(root) if reuse else build_world_workspace(root, seed=args.seed)
    print(record_session(ws, args.out, decide=args.decide or not reuse))
    return 0


if __name__ == "__main__":
    sys.exit(main())
