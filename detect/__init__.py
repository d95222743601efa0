"""Detection stage: tiled inference over cell mosaics, georeferenced boxes, site context and triage,
training and evaluation of the detector.

The one call for a pipeline (``skysieve demo``): :func:`detect_cells` ``(ws, cells=None, model=None,
conf=None) -> dict``; for site registers :func:`import_sites` ``(ws, path) -> SiteImport`` (imports,
then re-triages existing detections).
"""

from __future__ import annotations

from pathlib import Path

from skysieve.detect.evaluate import EvalReport, evaluate_world, evaluate_yolo
from skysieve.detect.pipeline import DetectConfig, detect_cells
from skysieve.detect.runtime import Detector, load_detector
from skysieve.detect.sliced import RasterDetections, SliceSettings, detect_raster
from skysieve.detect.triage import WEIGHTS, triage_workspace
from skysieve.sites import POINT_RADIUS_M, SiteImport
from skysieve.workspace import Workspace

__all__ = ["detect_cells", "import_sites", "DetectConfig", "load_detector", "Detector", "detect_raster",
           "SliceSettings", "RasterDetections", "evaluate_yolo", "evaluate_world", "EvalReport",
           "triage_workspace", "WEIGHTS", "SiteImport"]


def import_sites(ws: Workspace, path: str | Path, radius_m: float = POINT_RADIUS_M) -> SiteImport:
    """Import a site register or leads file (:func:`skysieve.sites.import_sites`), then recompute the
    site, candidate and priority of the detections already in the workspace."""
    from skysieve import sites

    result = sites.import_sites(ws, path, radius_m=radius_m)
    if result.imported:
        triage_workspace(ws)
    return result
