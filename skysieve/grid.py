"""Grid cells (网格): the county's own grid imported from a file, or a regular grid.

A regular grid is aligned to round coordinates in the workspace CRS (cell corners at multiples of
the cell size), so cells from different flights and sessions line up, and a cell's id names its
lower-left corner: ``E576500N5188000`` for a cell whose south-west corner is x=576500, y=5188000.
Cells of a regular grid are created on demand, when a footprint first touches them.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
from pyproj import CRS
from shapely.geometry import box

from skysieve.crs import reproject
from skysieve.errors import GridError

__all__ = ["Cell", "regular_cells", "regular_cell_id", "read_grid_file", "CELL_ID_FIELDS"]

log = logging.getLogger(__name__)

CELL_ID_FIELDS = ("cell_id", "grid_id", "gridid", "cellid", "wgbh", "网格编号", "网格编码", "编号", "code", "id", "name")
TOWNSHIP_FIELDS = ("township", "town", "xiangzhen", "xz", "乡镇", "乡镇名称", "街道")
VILLAGE_FIELDS = ("village", "cun", "村", "村名", "行政村", "社区")


@dataclass(frozen=True)
class Cell:
    """One grid cell: id, polygon in the workspace CRS (x/y metres), and where it lies administratively."""

    cell_id: str
    geometry: shapely.Polygon
    township: str | None = None
    village: str | None = None


def regular_cell_id(col: int, row: int, size_m: float) -> str:
    """Id of the regular cell whose lower-left corner is (col*size, row*size)."""
    return f"E{int(round(col * size_m))}N{int(round(row * size_m))}"


def regular_cells(geometry: shapely.Geometry, size_m: float) -> list[Cell]:
    """The regular cells of side ``size_m`` metres that ``geometry`` (workspace CRS) touches."""
    if size_m <= 0:
        raise GridError(f"cell size must be positive metres, got {size_m}")
    minx, miny, maxx, maxy = geometry.bounds
    cells = []
    for col in range(math.floor(minx / size_m), math.ceil(maxx / size_m)):
        for row in range(math.floor(miny / size_m), math.ceil(maxy / size_m)):
            poly = box(col * size_m, row * size_m, (col + 1) * size_m, (row + 1) * size_m)
            if poly.intersection(geometry).area > 0:
                cells.append(Cell(regular_cell_id(col, row, size_m), poly))
    return cells


def _pick(fields: list[str], candidates: tuple[str, ...]) -> str | None:
    lower = {f.lower(): f for f in fields}
    for c in candidates:
        if c.lower() in lower:
            return lower[c.lower()]
    return None


def _text(v) -> str | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    s = str(v).strip()
    return s or None


def read_grid_file(path: str | Path, crs: CRS | None) -> tuple[list[Cell], CRS]:
    """Cells from a GeoJSON / GeoPackage / Shapefile in any CRS, reprojected to ``crs``.

    Returns the cells and the file's own CRS (so a caller without a workspace CRS can choose one).
    Cell ids come from the first present field of :data:`CELL_ID_FIELDS` (else ``cell-<n>``);
    township and village from the usual English, pinyin or Chinese field names.
    """
    import pyogrio  # local: only grid import needs OGR

    path = Path(path)
    if not path.exists():
        raise GridError("grid file not found", path=path)
    try:
        meta, _, geoms, field_data = pyogrio.raw.read(path)
    except Exception as e:
        raise GridError(f"cannot read the grid file: {e}", path=path,
                        hint="give a GeoJSON, GeoPackage or Shapefile with polygon cells") from e
    if geoms is None:  # a table without geometry, e.g. a CSV of sites or points
        raise GridError("the grid file has no geometries", path=path,
                        hint="give polygon cells as GeoJSON, GeoPackage or Shapefile; sites go in with `skysieve sites import`")
    fields = [str(f) for f in meta["fields"]]
    src_crs = CRS.from_user_input(meta["crs"]) if meta.get("crs") else CRS.from_epsg(4326)
    if not meta.get("crs"):
        log.warning("%s has no CRS; assuming WGS 84 longitude/latitude", path)
    shapes = shapely.from_wkb(np.asarray(geoms, dtype=object))
    target = crs or src_crs
    shapes = reproject(shapes, src_crs, target)
    id_f, town_f, vil_f = (_pick(fields, c) for c in (CELL_ID_FIELDS, TOWNSHIP_FIELDS, VILLAGE_FIELDS))
    cells: list[Cell] = []
    seen: set[str] = set()
    for i, g in enumerate(shapes):
        if g is None or g.is_empty or g.geom_type not in ("Polygon", "MultiPolygon"):
            log.warning("%s: feature %d is not a polygon; skipped", path.name, i)
            continue
        if not g.is_valid:
            g = shapely.make_valid(g)
        if g.geom_type == "MultiPolygon":
            g = max(g.geoms, key=lambda p: p.area)
        if g.geom_type != "Polygon":
            continue
        def value(f: str | None, i: int = i) -> str | None:
            return _text(field_data[fields.index(f)][i]) if f else None

        cid = value(id_f) or f"cell-{i + 1}"
        if cid in seen:
            raise GridError(f"cell id {cid!r} appears twice", path=path, hint="cell ids must be unique")
        seen.add(cid)
        cells.append(Cell(cid, g, value(town_f), value(vil_f)))
    if not cells:
        raise GridError("the grid file holds no polygon cells", path=path)
    return cells, src_crs
