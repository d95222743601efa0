"""A small survey on disk for the ledger tests: EPSG:4547 workspace near Zhangzi county (长子县),
two grid cells in two townships, a known site, a real GeoTIFF mosaic for one cell, and detections
inserted with the shared DETECTIONS schema."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from ledger_testdata import add_detection  # tests/ledger is on sys.path (conftest folder)
from rasterio.transform import from_origin
from shapely.geometry import box

from skysieve.grid import Cell
from skysieve.schema import SITES
from skysieve.workspace import Workspace

CELL = 250.0
LON0, LAT0 = 112.88, 36.12  # Zhangzi county, Shanxi


@pytest.fixture
def survey(tmp_path: Path) -> dict[str, Any]:
    """Workspace with cells A (丹朱镇) and B (大堡头镇), a site in A, and a mosaic of cell A."""
    ws = Workspace.create(tmp_path / "ws", crs="EPSG:4547", cell_size_m=CELL)
    x0, y0 = ws.from_lonlat(LON0, LAT0)
    x0, y0 = float(np.floor(x0 / CELL) * CELL), float(np.floor(y0 / CELL) * CELL)
    a = Cell(f"E{int(x0)}N{int(y0)}", box(x0, y0, x0 + CELL, y0 + CELL), "丹朱镇", "东关村")
    b = Cell(f"E{int(x0 + CELL)}N{int(y0)}", box(x0 + CELL, y0, x0 + 2 * CELL, y0 + CELL), "大堡头镇", "韩村")
    ws.add_cells([a, b], source="test")
    ws.layer(SITES)
    site = box(x0 + 100, y0 + 100, x0 + 160, y0 + 150)
    ws.gpkg.insert(SITES.name, [{"site_id": "F001", "kind": "idle_factory", "name": "原化肥厂 (idle)",
                                 "township": "丹朱镇", "village": "东关村", "geometry": site}])
    ortho = ws.cell_dir(a.cell_id) / "ortho.tif"
    ortho.parent.mkdir(parents=True, exist_ok=True)
    gsd = 0.5
    n = int(CELL / gsd)
    rng = np.random.default_rng(7)
    img = rng.integers(60, 120, (3, n, n), dtype=np.uint8)
    img[0, 200:210, 200:210] = 250  # a red "tank" at (x0 + 100..105, y0 + 145..150)
    with rasterio.open(ortho, "w", driver="GTiff", width=n, height=n, count=3, dtype="uint8", crs=ws.crs,
                       transform=from_origin(x0, y0 + CELL, gsd, gsd), tiled=True, blockxsize=256,
                       blockysize=256, compress="deflate") as dst:
        dst.write(img)
    return {"ws": ws, "x0": x0, "y0": y0, "a": a.cell_id, "b": b.cell_id, "site": site}


@pytest.fixture
def detection_factory(survey: dict[str, Any]) -> Callable[..., dict[str, Any]]:
    return lambda det_id, x, y, **kw: add_detection(survey["ws"], det_id, x, y, **kw)
