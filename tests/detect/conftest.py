"""Fixtures of the detection tests: a georeferenced mosaic with known objects, in a real workspace."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import shapely

from skysieve.grid import Cell
from skysieve.models import resolve_model
from skysieve.workspace import Workspace

CRS = "EPSG:4547"
X0, Y0 = 399000.0, 3999000.0  # top-left corner of the mosaic (CGCS2000 GK zone 38, near 112.9 E)


@dataclass(frozen=True)
class Mosaic:
    path: Path
    gsd_m: float
    truth_xyxy: np.ndarray  # map x/y bounds of each true object
    truth_cls: np.ndarray


def render_mosaic(path: Path, gsd_m: float, seed: int = 424242, grid: int = 2, nodata_right: bool = False) -> Mosaic:
    """``grid x grid`` synthetic tiles (from skysieve.datasets, seeds never used in training) stitched into a
    GeoTIFF with an alpha band at ``gsd_m``; tiles are rendered at that GSD, so objects keep their size."""
    import rasterio
    from affine import Affine

    from skysieve.datasets.tiles import random_tile_spec, render_tile

    size = 416
    tiles, boxes = [], []
    i = 0
    while len(tiles) < grid * grid:
        rng = np.random.default_rng([seed, i])
        spec = random_tile_spec(rng, seed * 1000 + i, size, (gsd_m, gsd_m))
        i += 1
        tile = render_tile(spec)
        ok = len(tile.boxes) and np.all((tile.boxes[:, 1:3] > 4) & (tile.boxes[:, 3:5] < size - 4))
        if spec.negative_only or not ok:
            continue  # keep tiles whose objects are whole, so the stitched truth is exact
        tiles.append(tile)
    n = grid * size
    rgb = np.zeros((n, n, 3), np.uint8)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, grid)
        rgb[r * size:(r + 1) * size, c * size:(c + 1) * size] = tile.pixels
        b = tile.boxes.astype(float).copy()
        b[:, [1, 3]] += c * size
        b[:, [2, 4]] += r * size
        boxes.append(b)
    px = np.vstack(boxes)
    alpha = np.full((n, n), 255, np.uint8)
    if nodata_right:
        alpha[:, n // 2:] = 0
        rgb[:, n // 2:] = 0
    transform = Affine(gsd_m, 0, X0, 0, -gsd_m, Y0)
    with rasterio.open(path, "w", driver="GTiff", width=n, height=n, count=4, dtype="uint8", crs=CRS,
                       transform=transform, tiled=True, blockxsize=256, blockysize=256, photometric="RGB",
                       alpha="YES", compress="DEFLATE") as dst:
        dst.write(np.concatenate([np.moveaxis(rgb, 2, 0), alpha[None]]))
    xs0, ys0 = transform * (px[:, 1], px[:, 2])
    xs1, ys1 = transform * (px[:, 3], px[:, 4])
    xyxy = np.column_stack([np.minimum(xs0, xs1), np.minimum(ys0, ys1), np.maximum(xs0, xs1), np.maximum(ys0, ys1)])
    keep = np.ones(len(px), bool) if not nodata_right else (px[:, 3] < n // 2)
    return Mosaic(path, gsd_m, xyxy[keep], px[keep, 0].astype(int))


@pytest.fixture(scope="session")
def make_mosaic():
    """The :func:`render_mosaic` factory, for tests that need another mosaic."""
    return render_mosaic


@pytest.fixture(scope="session")
def model_gsd() -> float:
    return resolve_model().meta.gsd_m


@pytest.fixture(scope="session")
def mosaic(tmp_path_factory, model_gsd) -> Mosaic:
    return render_mosaic(tmp_path_factory.mktemp("mosaic") / "ortho.tif", model_gsd)


@pytest.fixture
def workspace(tmp_path, mosaic) -> Workspace:
    """A workspace with one cell ``c1`` covering the mosaic, whose ortho is the ``mosaic``."""
    import shutil

    ws = Workspace.create(tmp_path / "ws", crs=CRS)
    side = 2 * 416 * mosaic.gsd_m
    ws.add_cells([Cell("c1", shapely.box(X0, Y0 - side, X0 + side, Y0))], source="test")
    ws.cell_dir("c1").mkdir(parents=True, exist_ok=True)
    shutil.copy(mosaic.path, ws.cell_dir("c1") / "ortho.tif")
    return ws
