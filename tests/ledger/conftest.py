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
from rasterio.transform import from_origin
from shapely.geometry import box

from skysieve.grid import Cell
from skysieve.schema import DETECTIONS, SITES
from skysieve.workspace import Workspace

CELL = 250.0
LON0, LAT0 = 112.88, 36.12  # Zhangzi county, Shanxi


def add_detection(ws: Workspace, det_id: str, x: float, y: float, *, cls: str = "tank", score: float = 0.8,
                  priority: float | None = 1.0, cell_id: str | None = None, candidate_id: str | None = None,
                  site_id: str | None = None, size_m: float = 4.0, **extra: Any) -> dict[str, Any]:
    """Insert one detection (box of ``size_m`` metres centred on x/y, workspace CRS)."""
    ws.layer(DETECTIONS)
    lon, lat = ws.to_lonlat(x, y)
    if cell_id is None:
        cell_id = [c.cell_id for c in ws.cells() if c.geometry.contains(box(x, y, x, y).centroid)][0]
    row = {"det_id": det_id, "cell_id": cell_id, "class": cls, "score": score, "model": "test-model",
           "x": x, "y": y, "lon": lon, "lat": lat, "width_m": size_m, "height_m": size_m, "site_id": site_id,
           "candidate_id": candidate_id, "priority": priority, "review_status": "pending",
           "created_at": "2026-11-29T00:00:00.000Z",
           "geometry": box(x - size_m / 2, y - size_m / 2, x + size_m / 2, y + size_m / 2), **extra}
    ws.gpkg.insert(DETECTIONS.name, [row])
    return row


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
