"""``detect_cells``: run the detector over the workspace's cell mosaics and store georeferenced boxes.

For each cell with ``cells/<cell_id>/ortho.tif``: sliced inference (:mod:`skysieve.detect.sliced`),
boxes mapped to the workspace CRS, kept when their centre lies in the cell (neighbouring mosaics may
overlap), then written to the ``detections`` layer in one transaction per cell that first deletes this
model's *pending* boxes of the cell. Reviewed boxes (confirmed, rejected, unsure) are kept, and a new
box of the same class overlapping a reviewed one (IoU >= 0.5) is not added again: the analyst already
decided about that object. Then triage (:mod:`skysieve.detect.triage`) recomputes sites, candidates and
priorities. A cell without a mosaic is reported with its reason and the others go on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import shapely
from pyproj import CRS

from skysieve.atomic import write_json
from skysieve.crs import reproject
from skysieve.detect.ground import TALL_CLASSES, ViewCameras, base_point
from skysieve.detect.merge import MergeSettings
from skysieve.detect.refine import LookSettings
from skysieve.detect.runtime import Detector, load_detector
from skysieve.detect.sliced import RasterDetections, SliceSettings, detect_raster
from skysieve.detect.thresholds import class_thresholds
from skysieve.detect.triage import triage_workspace
from skysieve.errors import DetectionError, NotFoundError, UsageError
from skysieve.schema import DETECTIONS
from skysieve.workspace import Workspace

__all__ = ["DetectConfig", "detect_cells", "store_detections", "ortho_path"]

log = logging.getLogger(__name__)

_REVIEW_IOU = 0.5


@dataclass
class DetectConfig:
    """``[detect]`` table of skysieve.toml (command-line flags override it)."""

    model: str | None = None  # name or path; None = the shipped default
    conf: float | None = None  # None: the model's recommended thresholds (``class_conf``/``conf``), else 0.25
    overlap: float = 0.25  # fraction of a slice shared with its neighbour
    batch: int = 8
    backend: str | None = None  # openvino | onnxruntime | torch; None = fastest available
    pile_gap_m: float = 1.5  # drum-pile boxes this close on the ground are one stockpile; 0: keep them apart
    pile_join_share: float = 0.5  # a drum-pile box under its threshold but over this share of it may only widen a pile
    look_views: int = 4  # second look at each tank and chimney flag: 0 (off) to 4 mirror images (detect/refine.py)

    def __post_init__(self) -> None:
        if not 0.0 <= self.pile_join_share < 1.0:
            raise UsageError(f"[detect] pile_join_share must be in [0, 1), got {self.pile_join_share}",
                             hint="a share of the drum-pile threshold, e.g. 0.5; 0 turns the join off")
        if self.pile_gap_m < 0:
            raise UsageError(f"[detect] pile_gap_m must be 0 or more metres, got {self.pile_gap_m}",
                             hint="e.g. 1.5; 0 keeps drum-pile boxes apart")
        if type(self.look_views) is not int or not 0 <= self.look_views <= 4:
            raise UsageError(f"[detect] look_views must be a whole number from 0 to 4, got {self.look_views}",
                             hint="4 (the default) re-scores each tank and chimney in four mirror images; 0 is off")


def ortho_path(ws: Workspace, cell_id: str):
    return ws.cell_dir(cell_id) / "ortho.tif"


def _det_id(cell_id: str, model: str, cls: str, x: float, y: float) -> str:
    h = hashlib.sha1(f"{cell_id}|{model}|{cls}|{x:.2f}|{y:.2f}".encode()).hexdigest()[:8]
    return f"{cell_id}-{h}"


def _iou(a: shapely.Geometry, b: shapely.Geometry) -> float:
    inter = a.intersection(b).area
    return inter / max(a.area + b.area - inter, 1e-9)


def _same_object(reviewed: shapely.Geometry, box: shapely.Geometry) -> bool:
    """Whether a new box is an object already reviewed: IoU >= 0.5, or each box holds the other's centre (a
    small object boxed a little differently on a rebuilt or imported mosaic: a chimney 0.2 m off had IoU
    under 0.5 and came back as a pending duplicate of a confirmed flag)."""
    if _iou(reviewed, box) >= _REVIEW_IOU:
        return True
    similar = min(reviewed.area, box.area) >= 0.5 * max(reviewed.area, box.area)  # not a pile around a drum
    return similar and reviewed.covers(box.centroid) and box.covers(reviewed.centroid)


def store_detections(ws: Workspace, cell_id: str, found: RasterDetections, model: str) -> int:
    """Replace ``model``'s pending boxes of ``cell_id`` with ``found``; returns how many were written."""
    crs = ws.require_crs()
    ws.layer(DETECTIONS)
    polys = found.polygons
    if found.crs is not None:
        polys = list(reproject(np.asarray(polys, dtype=object), CRS.from_user_input(found.crs), crs))
    cell = ws.cells("cell_id=?", (cell_id,))
    cell_geom = cell[0].geometry if cell else None
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    views = ViewCameras.open(ws.cell_dir(cell_id))  # None for an imported ortho or one without views
    rows: list[dict[str, Any]] = []
    with ws.gpkg.transaction():
        reviewed = ws.gpkg.select(DETECTIONS.name, "cell_id=? AND review_status<>'pending'", (cell_id,))
        ws.gpkg.delete(DETECTIONS.name, "cell_id=? AND model=? AND review_status='pending'", (cell_id, model))
        taken = {r["det_id"] for r in ws.gpkg.select(DETECTIONS.name, "cell_id=?", (cell_id,))}
        for poly, score, c in zip(polys, found.score, found.cls, strict=True):
            centre = poly.centroid
            if cell_geom is not None and not cell_geom.covers(centre):
                continue
            cls = found.classes[int(c)]
            if any(r["class"] == cls and r["geometry"] is not None and _same_object(r["geometry"], poly)
                   for r in reviewed):
                continue
            det_id = _det_id(cell_id, model, cls, centre.x, centre.y)
            while det_id in taken:
                det_id += "x"
            taken.add(det_id)
            x, y = centre.x, centre.y  # the flag's point: the box centre, a tall object's base
            nadir = views.nadir(x, y) if views is not None and cls in TALL_CLASSES else None
            if nadir is not None:
                x, y = base_point(poly.bounds, nadir)
            lon, lat = ws.to_lonlat(x, y)
            (x0, y0), (x1, y1), (x2, y2) = poly.exterior.coords[:3]
            rows.append({"det_id": det_id, "cell_id": cell_id, "class": cls, "score": round(float(score), 4),
                         "model": model, "x": x, "y": y, "lon": lon, "lat": lat,
                         "width_m": float(np.hypot(x1 - x0, y1 - y0)), "height_m": float(np.hypot(x2 - x1, y2 - y1)),
                         "review_status": "pending", "created_at": now, "geometry": poly})
        ws.gpkg.insert(DETECTIONS.name, rows)
    return len(rows)


#: per cell, what its pending detections were made from (``cells/<id>/detect.json``): a rerun with the same
#: mosaic, model and settings keeps them rather than running the model again
DETECT_RECORD = "detect.json"
#: raise when what detection makes of the same mosaic and model changes (post-processing), so that cells
#: detected by an older skysieve are run again
DETECT_FORMAT = 2


def _weights_digest(det: Detector) -> str:
    """SHA-256 of the model's weight files (.pt and .onnx, whichever exist): a retrained ``best.pt`` under
    the same name, or a replaced file beside a stale JSON, is another model."""
    h = hashlib.sha256()
    for path in (det.ref.pt, det.ref.onnx):
        if path is not None and path.exists():
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()


def _run_key(ws: Workspace, cell_id: str, det: Detector, weights: str, settings: SliceSettings) -> dict[str, Any]:
    st = ortho_path(ws, cell_id).stat()
    return {"format": DETECT_FORMAT, "model": det.name, "weights": weights, "backend": det.backend_name,
            "settings": repr(settings), "ortho": f"{st.st_size}:{st.st_mtime_ns}"}


def _unchanged(ws: Workspace, cell_id: str, key: dict[str, Any]) -> bool:
    """Whether the cell's detections were made from this mosaic with this model and these settings (and are
    still in the workspace)."""
    try:
        record = json.loads((ws.cell_dir(cell_id) / DETECT_RECORD).read_text())
    except (OSError, ValueError):
        return False
    if record.get("key") != key:
        return False
    return not record.get("stored") or ws.gpkg.count(DETECTIONS.name, "cell_id=? AND model=?", (cell_id, key["model"])) > 0


def _cells_to_run(ws: Workspace, cells: list[str] | None) -> tuple[list[str], list[tuple[str, str]]]:
    rejected: list[tuple[str, str]] = []
    if cells is None:
        return sorted(p.parent.name for p in (ws.root / "cells").glob("*/ortho.tif")), rejected
    known_ids = {c.cell_id for c in ws.cells()}
    run = []
    for cid in cells:
        if cid not in known_ids and not ortho_path(ws, cid).exists():
            rejected.append((cid, "no such cell in the workspace"))
        elif not ortho_path(ws, cid).exists():
            rejected.append((cid, f"no mosaic ({ortho_path(ws, cid)} is missing); run `skysieve mosaic` first"))
        else:
            run.append(cid)
    return run, rejected


def detect_cells(ws: Workspace, cells: list[str] | None = None, model: str | None = None,
                 conf: float | None = None, *, backend: str | None = None,
                 detector: Detector | None = None, force: bool = False) -> dict[str, Any]:
    """Detect tanks, chimneys and drum stockpiles in the given cells (default: every cell with a mosaic).

    ``model``: name or path (default: ``[detect] model`` of skysieve.toml, else the shipped model);
    ``conf``: one score threshold for every class (default ``[detect] conf``, else the model's per-class
    ones: :mod:`skysieve.detect.thresholds`); ``backend``: force a runtime; ``detector``: an
    already loaded model (reused across calls). A cell whose mosaic, model and settings are those of its
    last run keeps its detections (``unchanged``) unless ``force``. Returns a summary dict: cells done (run
    or unchanged), boxes per class, rejected cells with reasons, model, runtime and seconds. Raises :class:`DetectionError` when
    no requested cell has a mosaic, :class:`~skysieve.errors.ModelError` for a bad model.
    """
    t0 = time.perf_counter()
    cfg: DetectConfig = ws.section("detect", DetectConfig)
    run, rejected = _cells_to_run(ws, cells)
    if not run:
        if cells is not None and all(r[1] == "no such cell in the workspace" for r in rejected):
            raise NotFoundError(f"no such cell: {', '.join(cells)}", ref=",".join(cells),
                                hint=ws.cell_list_hint())
        why = "; ".join(f"{c}: {r}" for c, r in rejected) or "no cell has a mosaic yet"
        raise DetectionError(f"nothing to detect on: {why}", path=ws.root,
                             hint="build the mosaics first with `skysieve mosaic WORKSPACE`")
    det = detector or load_detector(model or cfg.model, backend=backend or cfg.backend)
    thresholds = class_thresholds(det.meta, conf if conf is not None else cfg.conf)
    settings = SliceSettings(conf=float(thresholds.min()), overlap=cfg.overlap, batch=cfg.batch,
                             class_conf=tuple(float(t) for t in thresholds),
                             merge=MergeSettings(pile_gap_m=cfg.pile_gap_m, pile_join_share=cfg.pile_join_share),
                             look=LookSettings(views=cfg.look_views))
    by_class = dict.fromkeys(det.meta.classes, 0)
    done: list[str] = []
    unchanged: list[str] = []
    weights = _weights_digest(det)
    for cid in run:
        key = _run_key(ws, cid, det, weights, settings)
        if not force and _unchanged(ws, cid, key):
            log.info("cell %s: mosaic, model and settings unchanged; detections kept", cid)
            unchanged.append(cid)
            done.append(cid)
            continue
        try:
            found = detect_raster(ortho_path(ws, cid), det, settings, desc=f"detect {cid}")
        except DetectionError as e:
            rejected.append((cid, str(e)))
            log.warning("cell %s skipped: %s", cid, e)
            continue
        stored = store_detections(ws, cid, found, det.name)
        write_json(ws.cell_dir(cid) / DETECT_RECORD, {"key": key, "stored": stored,
                                                      "created_at": datetime.now(UTC).isoformat(timespec="seconds")})
        done.append(cid)
    triage_workspace(ws)
    marks = ",".join("?" * len(done))
    for cls in by_class:
        by_class[cls] = ws.gpkg.count(DETECTIONS.name, f"model=? AND class=? AND cell_id IN ({marks})",
                                      (det.name, cls, *done)) if done else 0
    summary = {"cells": done, "unchanged": unchanged, "rejected": rejected, "detections": sum(by_class.values()), "by_class": by_class,
               "model": det.name, "backend": det.backend_name, "gsd_m": det.meta.gsd_m,
               "conf": {c: round(float(t), 3) for c, t in zip(det.meta.classes, thresholds, strict=True)},
               "seconds": round(time.perf_counter() - t0, 1)}
    log.info("detect: %d cells, %d boxes (%s), %d rejected, %.1f s", len(done), summary["detections"],
             ", ".join(f"{k} {v}" for k, v in by_class.items()), len(rejected), summary["seconds"])
    return summary
