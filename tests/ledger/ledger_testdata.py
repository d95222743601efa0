"""Test data helpers shared by the ledger tests and the processes they spawn (a unique module name, so a
spawned child imports this file and not another ``conftest``)."""

from __future__ import annotations

from typing import Any

from shapely.geometry import box

from skysieve.schema import DETECTIONS
from skysieve.workspace import Workspace


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
