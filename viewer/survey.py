"""What a workspace holds for review: cells with mosaics or detections, their neighbours, sites.

Read-only queries over ``survey.gpkg`` and ``cells/<cell_id>/ortho.tif``; every write goes through
:mod:`skysieve.ledger`. Messages for an empty workspace say which command fills it.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import shapely

from skysieve import ledger
from skysieve.errors import MosaicError, NotFoundError, WorkspaceError
from skysieve.grid import Cell
from skysieve.viewer.cog import MultiscaleMosaic, open_mosaic
from skysieve.viewer.queue import QueueFilter
from skysieve.viewer.world import WorldFrame
from skysieve.workspace import Workspace

__all__ = ["CellSummary", "CellData", "ortho_path", "reviewable_cells", "choose_cell", "cell_problems",
           "neighbour", "sites_near", "frame_for", "load_cell", "review_state", "audit_mark", "changed_since",
           "REVIEW_COLUMNS",
           "DIRECTIONS"]

log = logging.getLogger(__name__)

#: neighbour directions: unit vectors (dx, dy) in the workspace CRS (y = north)
DIRECTIONS: dict[str, tuple[float, float]] = {"west": (-1, 0), "north": (0, 1), "south": (0, -1), "east": (1, 0)}

#: a neighbour must lie within ~40 degrees of the direction (excludes diagonal cells of a square grid)
_MIN_COS = 0.75


@dataclass(frozen=True)
class CellSummary:
    """A cell worth opening: whether it has a mosaic, how many flags, how many still pending."""

    cell_id: str
    has_mosaic: bool
    detections: int
    pending: int

    @property
    def label(self) -> str:
        mosaic = "" if self.has_mosaic else ", no mosaic"
        return f"{self.cell_id}  ({self.pending}/{self.detections} pending{mosaic})"


def ortho_path(ws: Workspace, cell_id: str) -> Path:
    return ws.cell_dir(cell_id) / "ortho.tif"


def _has_detections_table(ws: Workspace) -> bool:
    return ws.gpkg.has_layer("detections")


def reviewable_cells(ws: Workspace) -> list[CellSummary]:
    """Cells with a mosaic or with detections, sorted by id."""
    counts: dict[str, tuple[int, int]] = {}
    if _has_detections_table(ws):
        sql = ("SELECT cell_id, COUNT(*), SUM(COALESCE(review_status, 'pending') = 'pending') "
               "FROM detections GROUP BY cell_id")
        counts = {r[0]: (int(r[1]), int(r[2] or 0)) for r in ws.gpkg.connection().execute(sql)}
    cells_dir = ws.root / "cells"
    with_mosaic = {p.parent.name for p in cells_dir.glob("*/ortho.tif")} if cells_dir.is_dir() else set()
    ids = sorted(with_mosaic | set(counts))
    return [CellSummary(c, c in with_mosaic, *counts.get(c, (0, 0))) for c in ids]


def choose_cell(ws: Workspace, cell_id: str | None = None) -> str:
    """The cell to open: ``cell_id`` if the workspace knows it, else the one with the most pending flags.

    Raises :class:`WorkspaceError` when there is nothing to review at all and
    :class:`NotFoundError` for an unknown ``cell_id``.
    """
    cells = reviewable_cells(ws)
    if cell_id is not None:
        known = {c.cell_id for c in cells} | {c.cell_id for c in ws.cells()}
        if cell_id not in known:
            some = ", ".join(c.cell_id for c in cells[:8]) or "none yet"
            raise NotFoundError(f"no cell {cell_id!r} in this workspace", path=ws.root, ref=cell_id,
                                hint=f"cells with mosaics or detections: {some}")
        return cell_id
    if not cells:
        raise WorkspaceError(
            "nothing to review: the workspace has no mosaics and no detections yet", path=ws.root,
            hint=f"run `skysieve mosaic {ws.root}` and then `skysieve detect {ws.root}`")
    best = max(cells, key=lambda c: (c.pending, c.detections, c.has_mosaic))
    return best.cell_id


def cell_problems(ws: Workspace, cell_id: str) -> list[str]:
    """Readable reasons why a cell cannot be fully reviewed yet (empty when all is there)."""
    problems = []
    if not ortho_path(ws, cell_id).exists():
        problems.append(f"cell {cell_id} has no mosaic yet: run `skysieve mosaic {ws.root} --cell {cell_id}`")
    n = ws.gpkg.count("detections", "cell_id=?", (cell_id,)) if _has_detections_table(ws) else 0
    if n == 0:
        problems.append(f"cell {cell_id} has no detections yet: run `skysieve detect {ws.root} --cell {cell_id}`")
    return problems


def neighbour(cells: list[Cell], current: str, direction: str) -> str | None:
    """The cell touching ``current`` whose centre lies most nearly in ``direction`` (west/north/south/east).

    Works for regular grids and for the irregular village grids counties import.
    """
    dx, dy = DIRECTIONS[direction]
    by_id = {c.cell_id: c for c in cells}
    if current not in by_id:
        return None
    here = by_id[current].geometry
    near = here.buffer(max(math.sqrt(here.area), 1.0) * 1e-6)
    c0 = here.centroid
    best, best_cos = None, _MIN_COS
    for cell in cells:
        if cell.cell_id == current or not cell.geometry.intersects(near):
            continue
        c = cell.geometry.centroid
        vx, vy = c.x - c0.x, c.y - c0.y
        dist = math.hypot(vx, vy)
        cos = (vx * dx + vy * dy) / dist if dist else -1.0
        if cos > best_cos:
            best, best_cos = cell.cell_id, cos
    return best


#: the columns a decision changes (what :func:`review_state` compares)
REVIEW_COLUMNS = ("review_status", "reviewed_by", "reviewed_at", "note", "category", "suspect_id")


def review_state(ws: Workspace, cell_id: str, det_ids: set[str] | None = None) -> dict[str, tuple]:
    """``det_id -> (review_status, reviewed_by, reviewed_at, note, category, suspect_id)`` for a cell
    (only ``det_ids``, if given). A cheap read (no geometry) for noticing decisions made by other analysts.
    """
    if not _has_detections_table(ws):
        return {}
    cols = ", ".join(f'"{c}"' for c in REVIEW_COLUMNS)
    sql = f"SELECT det_id, {cols} FROM detections WHERE cell_id=?"
    con = ws.gpkg.connection()
    if det_ids is None:
        return {r[0]: tuple(r[1:]) for r in con.execute(sql, (cell_id,))}
    ids = sorted(det_ids)
    out: dict[str, tuple] = {}
    for k in range(0, len(ids), 500):  # SQLite's limit on bound parameters
        chunk = ids[k:k + 500]
        q = f"{sql} AND det_id IN ({', '.join('?' * len(chunk))})"
        out.update({r[0]: tuple(r[1:]) for r in con.execute(q, (cell_id, *chunk))})
    return out


def audit_mark(ws: Workspace) -> int:
    """The id of the newest audit entry (0 when none). Every decision, undo, note, category and push
    appends one, so review state changed elsewhere exactly when the mark moved."""
    if not ws.gpkg.has_layer("audit"):
        return 0
    return int(ws.gpkg.connection().execute("SELECT COALESCE(MAX(fid), 0) FROM audit").fetchone()[0])


def changed_since(ws: Workspace, mark: int) -> tuple[int, set[str] | None]:
    """``(newest mark, det_ids touched since mark)``; ``None`` instead of the set when something other
    than a detection was touched (a suspect: its flags' ``suspect_id`` may have changed), so read all."""
    if not ws.gpkg.has_layer("audit"):
        return 0, set()
    rows = ws.gpkg.connection().execute("SELECT fid, entity, ref FROM audit WHERE fid > ?", (mark,)).fetchall()
    if not rows:
        return mark, set()
    newest = max(r[0] for r in rows)
    if any(r[1] != "detection" for r in rows):
        return newest, None
    return newest, {r[2] for r in rows}


def sites_near(ws: Workspace, area: shapely.Geometry) -> list[dict[str, Any]]:
    """Known sites whose outline meets ``area`` (workspace CRS)."""
    if not ws.gpkg.has_layer("sites"):
        return []
    return [r for r in ws.gpkg.select("sites", order_by="site_id")
            if r.get("geometry") is not None and r["geometry"].intersects(area)]


def frame_for(ws: Workspace) -> WorldFrame:
    """The workspace's world frame: origin at the north-west corner of its cells (or mosaics)."""
    boxes = [c.geometry.bounds for c in ws.cells()]
    if not boxes:
        for p in sorted((ws.root / "cells").glob("*/ortho.tif")):
            try:
                boxes.append(open_mosaic(p).bounds_xy)
                break
            except MosaicError:
                continue
    if not boxes:
        return WorldFrame()
    return WorldFrame.around((min(b[0] for b in boxes), min(b[1] for b in boxes),
                              max(b[2] for b in boxes), max(b[3] for b in boxes)))


@dataclass(frozen=True)
class CellData:
    """Everything the viewer shows for one cell, read in a worker thread."""

    cell_id: str
    audit_mark: int  # the newest audit entry when the flags were read (see :func:`changed_since`)
    detections: list[dict[str, Any]]  # every flag of the cell (the map), most suspicious first
    queue: list[dict[str, Any]]  # the flags that pass the filter, in review order
    mosaic: MultiscaleMosaic | None
    cells: list[Cell]  # this cell and those touching it
    neighbour_mosaics: dict[str, MultiscaleMosaic]  # cell_id -> mosaic of touching cells (context at edges)
    sites: list[dict[str, Any]]  # known sites meeting the cell
    problems: list[str]  # readable: what is missing and which command makes it


def load_cell(ws: Workspace, cell_id: str, flt: QueueFilter | None = None) -> CellData:
    """Read one cell for review (no pixels: the mosaic is opened lazily)."""
    flt = flt or QueueFilter()
    problems = cell_problems(ws, cell_id)
    mosaic = None
    if ortho_path(ws, cell_id).exists():
        try:
            mosaic = open_mosaic(ortho_path(ws, cell_id))
        except MosaicError as e:
            problems.insert(0, str(e))
    mark = audit_mark(ws)  # before the read: a decision made meanwhile is picked up by the next check
    detections = ledger.review_queue(ws, cell_id)
    queue = detections if flt == QueueFilter() else ledger.review_queue(ws, cell_id, **flt.as_kwargs())
    all_cells = ws.cells()
    here = next((c for c in all_cells if c.cell_id == cell_id), None)
    if here is not None:
        near = here.geometry.buffer(1.0)
        cells = [c for c in all_cells if c.geometry.intersects(near)]
        area = here.geometry
    else:
        cells = []
        area = shapely.box(*mosaic.bounds_xy) if mosaic is not None else None
        if area is None and detections:
            area = shapely.MultiPoint([(d["x"], d["y"]) for d in detections]).envelope.buffer(10.0)
    sites = sites_near(ws, area) if area is not None else []
    around = {}
    for c in cells:
        if c.cell_id != cell_id and ortho_path(ws, c.cell_id).exists():
            try:
                around[c.cell_id] = open_mosaic(ortho_path(ws, c.cell_id))
            except MosaicError as e:
                log.warning("%s", e)
    return CellData(cell_id, mark, detections, queue, mosaic, cells, around, sites, problems)
