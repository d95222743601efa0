"""npe2 reader: open a survey workspace (its folder or its ``survey.gpkg``) as napari layers.

Layers: the grid cells and known sites as outlines, each cell mosaic as a lazy multiscale image
(the cells with the most flags first, at most :data:`MAX_MOSAICS`), and every detection as one
Points layer. Each layer names the workspace in its metadata, so the review widget opened from the
Plugins menu finds it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import shapely

from skysieve import ledger
from skysieve.errors import MosaicError, WorkspaceError
from skysieve.viewer import layers as L
from skysieve.viewer.cog import open_mosaic
from skysieve.viewer.survey import frame_for, ortho_path, reviewable_cells, sites_near
from skysieve.workspace import GPKG_FILE, Workspace

__all__ = ["napari_get_reader", "read_workspace", "MAX_MOSAICS"]

log = logging.getLogger(__name__)

#: mosaics opened at once by the reader (each is lazy, but every one is a layer to draw)
MAX_MOSAICS = 16


def _workspace_root(path: str | Path) -> Path | None:
    p = Path(path)
    if p.is_dir() and (p / GPKG_FILE).is_file():
        return p
    if p.name == GPKG_FILE and p.is_file():
        return p.parent
    return None


def napari_get_reader(path: str | list[str]):
    """The reader for a workspace folder or ``survey.gpkg``; ``None`` for anything else."""
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    return read_workspace if _workspace_root(path) is not None else None


def read_workspace(path: str | list[str]) -> list[tuple[Any, dict[str, Any], str]]:
    """Layer data for a whole workspace (see the module docstring)."""
    if isinstance(path, list):
        path = path[0]
    root = _workspace_root(path)
    if root is None:
        raise WorkspaceError("not a skysieve workspace (no survey.gpkg)", path=path,
                             hint="open the folder made by `skysieve init`")
    ws = Workspace.open(root)
    ws.require_crs()
    frame = frame_for(ws)
    meta = {L.WORKSPACE_KEY: str(ws.root)}
    out = []
    summaries = reviewable_cells(ws)
    if not summaries:
        raise WorkspaceError("nothing to show: the workspace has no mosaics and no detections yet", path=root,
                             hint=f"run `skysieve mosaic {root}` and then `skysieve detect {root}`")
    ranked = sorted((c for c in summaries if c.has_mosaic), key=lambda c: -c.detections)
    if len(ranked) > MAX_MOSAICS:
        log.warning("%d cells have mosaics; opening the %d with the most flags (use `skysieve review "
                    "--cell ID` for the others)", len(ranked), MAX_MOSAICS)
    for cell in sorted(ranked[:MAX_MOSAICS], key=lambda c: c.cell_id):
        try:
            out.append(L.mosaic_layer(open_mosaic(ortho_path(ws, cell.cell_id)), frame,
                                      f"mosaic {cell.cell_id}", meta))
        except MosaicError as e:
            log.warning("%s", e)
    cells = ws.cells()
    if cells:
        out.append(L.outline_layer([c.geometry for c in cells], [c.cell_id for c in cells], frame,
                                   L.CELLS_LAYER, "white", meta))
        sites = sites_near(ws, shapely.box(*shapely.GeometryCollection([c.geometry for c in cells]).bounds))
        if sites:
            out.append(L.outline_layer([s["geometry"] for s in sites], [f"{s['site_id']} {s['kind']}" for s in sites],
                                       frame, L.SITES_LAYER,
                                       [L.SITE_COLOURS.get(s["kind"], "white") for s in sites], meta))
    detections = ledger.review_queue(ws)
    out.append(L.box_layer(detections, frame, L.BOXES_LAYER, meta))
    out.append(L.detection_layer(detections, frame, L.DETECTIONS_LAYER, meta))
    return out

