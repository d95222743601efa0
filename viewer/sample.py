"""A small, realistic-looking review workspace, generated: for tests, the benchmark and demos.

One 3 x 3 block of regular cells; the centre cell has a COG mosaic (tiled, DEFLATE, internal
overviews, workspace CRS) with painted roofs, tanks and drum piles, a known idle factory and
``n_detections`` flags on it, most suspicious first. The east neighbour has flags but no mosaic
(so the viewer's "no mosaic" message can be seen). Deterministic for a given ``seed``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
import shapely
from rasterio.windows import Window

from skysieve.atomic import atomic_path
from skysieve.schema import DETECTIONS, SITES
from skysieve.workspace import Workspace

__all__ = ["SampleSpec", "make_review_sample"]

log = logging.getLogger(__name__)

_CLASSES = ("tank", "chimney", "drum_stockpile")
_BLOCK_ROWS = 1024


@dataclass(frozen=True)
class SampleSpec:
    """Size of the sample: cell side (metres), mosaic GSD (m/px), number of flags in the centre cell."""

    cell_size_m: float = 250.0
    gsd_m: float = 0.25
    n_detections: int = 40
    n_neighbour_detections: int = 5
    seed: int = 0
    crs: str = "EPSG:32650"  # UTM 50N, eastern China
    centre_xy: tuple[float, float] = (500_125.0, 3_300_125.0)  # inside the centre cell (metres)


def _paint_block(x0: float, y_top: float, gsd: float, rows: int, cols: int, boxes: np.ndarray,
                 classes: np.ndarray) -> np.ndarray:
    """RGB uint8 ``(rows, cols, 3)`` for a block whose top-left pixel corner is at (x0, y_top)."""
    xs = x0 + (np.arange(cols) + 0.5) * gsd
    ys = y_top - (np.arange(rows) + 0.5) * gsd
    xx, yy = np.meshgrid(xs, ys)
    field = (np.sin(xx / 23.0) * np.cos(yy / 31.0) + 0.5 * np.sin((xx + yy) / 7.3)) * 12
    fields = (((xx // 40) + (yy // 55)) % 3)[..., None] * np.array([8, 14, -6])
    rgb = np.stack([96 + field, 110 + field, 78 + field * 0.6], axis=-1) + fields
    roads = (np.abs((xx % 120) - 60) < 3) | (np.abs((yy % 160) - 80) < 3)
    rgb[roads] = (150, 148, 140)
    colours = {"tank": (225, 225, 230), "chimney": (70, 60, 60), "drum_stockpile": (40, 90, 170)}
    for (minx, miny, maxx, maxy), cls in zip(boxes, classes, strict=True):
        c0, c1 = max(int((minx - x0) / gsd), 0), min(int(np.ceil((maxx - x0) / gsd)), cols)
        r0, r1 = max(int((y_top - maxy) / gsd), 0), min(int(np.ceil((y_top - miny) / gsd)), rows)
        if c0 >= c1 or r0 >= r1:
            continue
        sx, sy = xx[r0:r1, c0:c1], yy[r0:r1, c0:c1]
        if cls == "tank":
            cx, cy, r = (minx + maxx) / 2, (miny + maxy) / 2, (maxx - minx) / 2
            mask = (sx - cx) ** 2 + (sy - cy) ** 2 <= r * r
        else:
            mask = (sx >= minx) & (sx <= maxx) & (sy >= miny) & (sy <= maxy)
        rgb[r0:r1, c0:c1][mask] = colours[cls]
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _write_cog(path: Path, ws: Workspace, bounds: tuple[float, float, float, float], gsd: float,
               boxes: np.ndarray, classes: np.ndarray) -> None:
    left, bottom, right, top = bounds
    width, height = int(round((right - left) / gsd)), int(round((top - bottom) / gsd))
    transform = rasterio.transform.from_origin(left, top, gsd, gsd)
    profile = {"driver": "GTiff", "width": width, "height": height, "count": 3, "dtype": "uint8",
               "crs": ws.crs.to_wkt(), "transform": transform, "tiled": True, "blockxsize": 512,
               "blockysize": 512, "compress": "DEFLATE", "zlevel": 1, "photometric": "RGB", "BIGTIFF": "IF_SAFER"}
    path.parent.mkdir(parents=True, exist_ok=True)
    plain = path.with_name(path.stem + ".plain.tif")
    with rasterio.open(plain, "w", **profile) as dst:
        for r in range(0, height, _BLOCK_ROWS):
            h = min(_BLOCK_ROWS, height - r)
            block = _paint_block(left, top - r * gsd, gsd, h, width, boxes, classes)
            dst.write(np.moveaxis(block, 2, 0), window=Window(0, r, width, h))
    with atomic_path(path) as tmp:
        rasterio.shutil.copy(plain, tmp, driver="COG", compress="DEFLATE", level=1, blocksize=512,
                             overview_resampling="average", bigtiff="IF_SAFER")
    plain.unlink()


def _detections(ws: Workspace, cell_id: str, cell: shapely.Polygon, n: int, rng: np.random.Generator,
                site: shapely.Polygon | None, prefix: str) -> list[dict]:
    minx, miny, maxx, maxy = cell.bounds
    rows = []
    for i in range(n):
        cls = _CLASSES[int(rng.integers(len(_CLASSES)))]
        side = {"tank": rng.uniform(3, 9), "chimney": rng.uniform(1.5, 3), "drum_stockpile": rng.uniform(3, 8)}[cls]
        w, h = side, side if cls != "drum_stockpile" else side * rng.uniform(0.5, 1.0)
        if site is not None and i % 3 == 0:
            sx0, sy0, sx1, sy1 = site.bounds
            x, y = rng.uniform(sx0 + w, sx1 - w), rng.uniform(sy0 + h, sy1 - h)
        else:
            x, y = rng.uniform(minx + 10, maxx - 10), rng.uniform(miny + 10, maxy - 10)
        geom = shapely.box(x - w / 2, y - h / 2, x + w / 2, y + h / 2)
        in_site = site is not None and site.contains(shapely.Point(x, y))
        score = float(rng.uniform(0.3, 0.98))
        priority = score * (1.6 if in_site else 1.0)
        lon, lat = ws.to_lonlat(x, y)
        rows.append({
            "det_id": f"{prefix}-{i:05d}", "cell_id": cell_id, "class": cls, "score": round(score, 3),
            "model": "sample", "x": x, "y": y, "lon": float(lon), "lat": float(lat), "width_m": w, "height_m": h,
            "site_id": "S001" if in_site else None, "candidate_id": "S001" if in_site else None,
            "priority": round(priority, 3),
            "priority_reason": "inside a known idle factory" if in_site else "score only",
            "review_status": "pending", "created_at": "2026-11-29T00:00:00Z", "geometry": geom,
        })
    return rows


def make_review_sample(root: str | Path, spec: SampleSpec | None = None) -> Workspace:
    """Create the sample workspace at ``root`` (a new folder) and return it opened."""
    spec = spec or SampleSpec()
    rng = np.random.default_rng(spec.seed)
    ws = Workspace.create(root, crs=spec.crs, cell_size_m=spec.cell_size_m)
    cx, cy = spec.centre_xy
    s = spec.cell_size_m
    col, row = math.floor(cx / s), math.floor(cy / s)
    centre = shapely.box(col * s, row * s, (col + 1) * s, (row + 1) * s)
    block = shapely.box(col * s - s / 2, row * s - s / 2, (col + 1) * s + s / 2, (row + 1) * s + s / 2)
    cells = {c.cell_id: c.geometry for c in ws.cells_touching(block)}
    centre_id = next(k for k, g in cells.items() if g.equals(centre))
    east_id = next(k for k, g in cells.items() if g.equals(shapely.affinity.translate(centre, s, 0)))
    minx, miny, _, _ = centre.bounds
    site = shapely.box(minx + 0.55 * s, miny + 0.55 * s, minx + 0.85 * s, miny + 0.8 * s)
    ws.layer(SITES)
    ws.gpkg.insert("sites", [{"site_id": "S001", "kind": "idle_factory", "name": "former dye works (idle)",
                              "source": "sample", "geometry": site}])
    ws.layer(DETECTIONS)
    rows = _detections(ws, centre_id, centre, spec.n_detections, rng, site, "D")
    rows += _detections(ws, east_id, cells[east_id], spec.n_neighbour_detections, rng, None, "E")
    ws.gpkg.insert("detections", rows)
    ws.gpkg.update_extent("detections")
    boxes = np.array([r["geometry"].bounds for r in rows if r["cell_id"] == centre_id]).reshape(-1, 4)
    classes = np.array([r["class"] for r in rows if r["cell_id"] == centre_id])
    _write_cog(ws.cell_dir(centre_id) / "ortho.tif", ws, centre.bounds, spec.gsd_m, boxes, classes)
    log.info("sample review workspace %s: cell %s with %d flags", ws.root, centre_id, spec.n_detections)
    return ws
