"""The survey workspace: one folder that every stage reads and writes.

::

    WORKSPACE/
      skysieve.toml               settings (one table per stage)
      survey.gpkg                 every vector table (cells, sites, images, detections, suspects, ...)
      flights/<flight_id>/        manifest.json (+ links to the uploaded images)
      cells/<cell_id>/ortho.tif   Cloud-Optimized GeoTIFF per cell, with ortho.json beside it
      exports/                    what goes to field teams

The tables that several stages share (cells, sites, images, detections) are declared in
:mod:`skysieve.schema`; a stage's private tables (the ledger's suspects, decisions, audit) are declared
by that stage. Either way a writer calls :meth:`Workspace.layer` first, which creates the table on
first use.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import shapely
from pyproj import CRS

from skysieve import crs as crs_mod
from skysieve.config import read_settings, section, write_settings
from skysieve.errors import UsageError, WorkspaceError, WorkspaceExistsError, WorkspaceNotFoundError
from skysieve.gpkg import GeoPackage, LayerSpec
from skysieve.grid import Cell, read_grid_file, regular_cells
from skysieve.schema import CELLS, SITES

__all__ = ["Workspace", "WorkspaceSettings", "DEFAULT_CELL_SIZE_M"]

log = logging.getLogger(__name__)

SETTINGS_FILE = "skysieve.toml"
GPKG_FILE = "survey.gpkg"
DEFAULT_CELL_SIZE_M = 250.0
CELL_SIZE_RANGE_M = (20.0, 10_000.0)  # a cell is one drone survey: a yard's width up to a township's
#: folders the stages write and read, never a user's output: flights/ (links to the photos, tie cache),
#: cells/ (mosaics, detect records), chips/ (the ledger's image chips), _generated/ (the demo's inputs);
#: exports/ is the user's
INTERNAL_DIRS = ("cells", "flights", "chips", "_generated")

@dataclass
class WorkspaceSettings:
    """``[workspace]`` table of skysieve.toml."""

    crs: str | None = None  # "EPSG:N"; None until the first flight (or grid) fixes it
    grid: str = "regular"  # "regular" or "imported"
    cell_size_m: float = DEFAULT_CELL_SIZE_M

    def check_cell_size(self) -> None:
        """Refuse a cell size no survey could use (checked when a workspace is made or grows regular cells;
        an existing workspace still opens, to export what it holds)."""
        lo, hi = CELL_SIZE_RANGE_M
        if not isinstance(self.cell_size_m, int | float) or not lo <= self.cell_size_m <= hi:
            raise UsageError(f"a grid cell of {self.cell_size_m} m is outside {lo:g} to {hi:g} m",
                             hint=f"cells are what one drone flight surveys; the default is {DEFAULT_CELL_SIZE_M:g} m "
                                  "(--cell-size, or cell_size_m in skysieve.toml's [workspace])")


class Workspace:
    """An opened survey workspace. Use :meth:`create` or :meth:`open`."""

    def __init__(self, root: Path, settings: dict[str, dict[str, Any]]) -> None:
        self.root = Path(root)
        self._settings = settings
        self.settings = section(settings, "workspace", WorkspaceSettings)
        self.crs: CRS | None = CRS.from_user_input(self.settings.crs) if self.settings.crs else None
        self.gpkg = GeoPackage(self.root / GPKG_FILE, self.crs)
        self._cells_cache: tuple[tuple, list[Cell], shapely.STRtree | None] | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    @classmethod
    def create(cls, root: str | Path, *, crs: str | CRS | None = None, grid: str | Path | None = None,
               cell_size_m: float | None = None, exist_ok: bool = False) -> Workspace:
        """Create a workspace folder with ``skysieve.toml`` and ``survey.gpkg``.

        ``grid``: the county's grid file (any CRS); else a regular grid of ``cell_size_m`` metres.
        ``crs``: the projected CRS; else chosen from the grid's or the first flight's position.
        """
        root = Path(root)
        if grid is not None and cell_size_m is not None:
            raise UsageError("give either --grid or --cell-size, not both")
        if cell_size_m is not None:
            WorkspaceSettings(cell_size_m=float(cell_size_m)).check_cell_size()  # before anything is made
        if root.exists() and not root.is_dir():
            raise UsageError(f"{root} is a file, not a folder for a workspace", path=root, hint="pick a new folder name")
        if (root / GPKG_FILE).exists():
            if exist_ok:
                return cls.open(root)
            raise WorkspaceExistsError("a workspace already exists here", path=root,
                                       hint="use it as it is, or pick a new folder")
        chosen = crs_mod.parse_crs(crs) if crs is not None else None
        cells: list[Cell] = []
        if grid is not None:
            cells, file_crs = read_grid_file(grid, chosen)
            if chosen is None:
                centre = shapely.unary_union([c.geometry for c in cells]).centroid
                if file_crs.is_geographic:
                    lon, lat = centre.x, centre.y
                else:
                    lon, lat = crs_mod.to_lonlat(file_crs, centre.x, centre.y)
                chosen = crs_mod.choose_crs(lon, lat)
                cells, _ = read_grid_file(grid, chosen)
        root.mkdir(parents=True, exist_ok=True)
        for sub in ("flights", "cells", "exports"):
            (root / sub).mkdir(exist_ok=True)
        ws_settings = WorkspaceSettings(
            crs=f"EPSG:{chosen.to_epsg()}" if chosen is not None else None,
            grid="imported" if grid is not None else "regular",
            cell_size_m=float(cell_size_m) if cell_size_m is not None else DEFAULT_CELL_SIZE_M,
        )
        settings = {"workspace": asdict(ws_settings)}
        write_settings(root / SETTINGS_FILE, settings)
        GeoPackage.create(root / GPKG_FILE, chosen)
        ws = cls(root, settings)
        if chosen is not None:
            ws._ensure_core_layers()
        if cells:
            ws.add_cells(cells, source=Path(grid).name)
        log.info("created workspace %s (CRS %s, %s grid)", root, ws_settings.crs or "from first flight", ws_settings.grid)
        return ws

    @classmethod
    def open(cls, root: str | Path) -> Workspace:
        root = Path(root)
        if root.name == GPKG_FILE:
            root = root.parent
        if not (root / GPKG_FILE).exists():
            raise WorkspaceNotFoundError("not a skysieve workspace (no survey.gpkg)", path=root,
                                         hint=f"create one with `skysieve init {root}`")
        return cls(root, read_settings(root / SETTINGS_FILE))

    # -- settings -------------------------------------------------------------------------------
    def section(self, name: str, cls: type):
        """Stage settings dataclass ``cls`` from table ``name`` of skysieve.toml."""
        return section(self._settings, name, cls)

    def save_section(self, name: str, values: dict[str, Any]) -> None:
        self._settings = read_settings(self.root / SETTINGS_FILE)
        self._settings[name] = {**self._settings.get(name, {}), **values}
        write_settings(self.root / SETTINGS_FILE, self._settings)
        if name == "workspace":
            self.settings = section(self._settings, "workspace", WorkspaceSettings)

    # -- CRS ------------------------------------------------------------------------------------
    def require_crs(self) -> CRS:
        if self.crs is None:
            raise WorkspaceError("the workspace has no CRS yet", path=self.root,
                                 hint="ingest a flight first, or recreate it with --crs EPSG:N")
        return self.crs

    def ensure_crs(self, lon: float, lat: float) -> CRS:
        """Fix the workspace CRS from a first position (degrees) if none is set yet; return it."""
        if self.crs is None:
            chosen = crs_mod.choose_crs(lon, lat)
            self.save_section("workspace", {"crs": f"EPSG:{chosen.to_epsg()}"})
            self.crs = chosen
            self.gpkg.register_crs(chosen)
            self._ensure_core_layers()
            log.info("workspace CRS set to %s (%s) from the first flight", self.settings.crs, chosen.name)
        return self.crs

    def _ensure_core_layers(self) -> None:
        self.gpkg.crs = self.crs
        self.gpkg.ensure_layer(CELLS)
        self.gpkg.ensure_layer(SITES)

    def layer(self, spec: LayerSpec) -> str:
        """Make sure the table for ``spec`` exists; return its name."""
        if spec.geometry_type:
            self.require_crs()
        self.gpkg.ensure_layer(spec)
        return spec.name

    def to_lonlat(self, x, y):
        """Workspace x/y (metres) to WGS 84 lon/lat (degrees)."""
        return crs_mod.to_lonlat(self.require_crs(), x, y)

    def from_lonlat(self, lon, lat):
        """WGS 84 lon/lat (degrees) to workspace x/y (metres)."""
        return crs_mod.from_lonlat(self.require_crs(), lon, lat)

    # -- cells ----------------------------------------------------------------------------------
    def add_cells(self, cells: list[Cell], source: str) -> int:
        """Insert cells not yet present; returns how many were new."""
        self.layer(CELLS)
        rows = [{"cell_id": c.cell_id, "township": c.township, "village": c.village, "source": source,
                 "geometry": c.geometry} for c in cells]
        n = len(self.gpkg.insert("cells", rows, or_ignore=True))
        if n:
            self.gpkg.update_extent("cells")
        return n

    def cells(self, where: str = "1=1", params=()) -> list[Cell]:
        if not self.gpkg.has_layer("cells"):
            return []
        return [Cell(r["cell_id"], r["geometry"], r["township"], r["village"])
                for r in self.gpkg.select("cells", where, params, order_by="cell_id")]

    def cell_list_hint(self, most: int = 8) -> str:
        """What to tell someone who named a cell that is not here: the cells that are."""
        ids = [c.cell_id for c in self.cells()]
        if not ids:
            return "this workspace has no cells yet: ingest a flight (or init with --grid)"
        shown = ", ".join(ids[:most]) + (f", ... ({len(ids)} in all)" if len(ids) > most else "")
        return f"cells here: {shown}"

    def cells_touching(self, geometry: shapely.Geometry) -> list[Cell]:
        """Cells that ``geometry`` (workspace CRS) overlaps; a regular grid grows cells as needed."""
        if self.settings.grid == "regular":
            self.settings.check_cell_size()  # a typo in skysieve.toml would make millions of cells
            touched = regular_cells(geometry, self.settings.cell_size_m)
            self.add_cells(touched, source="regular")
            return touched
        cells, tree = self._cell_index()
        hits = tree.query(geometry, predicate="intersects") if tree is not None else ()
        return [cells[i] for i in sorted(hits) if cells[i].geometry.intersection(geometry).area > 0]

    def _cell_index(self) -> tuple[list[Cell], shapely.STRtree | None]:
        """The imported grid's cells and an R-tree over them, rebuilt when the cells table changed (its row
        count or newest row id: a grid imported again gets new ids); ingest asks once per photo, and a
        county grid has thousands of cells."""
        n = (tuple(self.gpkg.connection().execute('SELECT COUNT(*), MAX(fid) FROM "cells"').fetchone())
             if self.gpkg.has_layer("cells") else (0, None))
        if self._cells_cache is None or self._cells_cache[0] != n:
            cells = self.cells()
            self._cells_cache = (n, cells, shapely.STRtree([c.geometry for c in cells]) if cells else None)
        return self._cells_cache[1], self._cells_cache[2]

    # -- paths ----------------------------------------------------------------------------------
    def flight_dir(self, flight_id: str) -> Path:
        return self.root / "flights" / flight_id

    def cell_dir(self, cell_id: str) -> Path:
        return self.root / "cells" / cell_id

    @property
    def exports_dir(self) -> Path:
        return self.root / "exports"
