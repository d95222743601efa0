"""A chimney's flag at its base: the geometry of a leaning box, and the flag's point as stored."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine

from skysieve.detect.ground import base_point
from skysieve.detect.pipeline import store_detections
from skysieve.detect.sliced import RasterDetections
from skysieve.schema import DETECTIONS


def _leaning_box(base, radius, nadir, k):
    """Axis-aligned box of a disc of ``radius`` at ``base`` swept to its top at nadir + k (base - nadir)."""
    top = np.asarray(nadir) + k * (np.asarray(base) - np.asarray(nadir))
    lo, hi = np.minimum(base, top) - radius, np.maximum(base, top) + radius
    return (*lo, *hi)


def test_the_base_of_a_leaning_chimney_follows_from_its_box_and_the_nadir():
    rng = np.random.default_rng(7)
    for _ in range(200):
        base = rng.uniform(-60, 60, 2)
        nadir = rng.uniform(-60, 60, 2)
        radius = rng.uniform(0.2, 1.2)
        k = 80 / (80 - rng.uniform(5, 35))  # camera 80 m up, chimney 5-35 m
        if np.linalg.norm(base - nadir) < 3:
            continue
        assert base_point(_leaning_box(base, radius, nadir, k), nadir) == pytest.approx(tuple(base), abs=1e-6)
    # seen from straight above, it does not lean: the box centre
    assert base_point((0, 0, 2, 2), (1, 1.5)) == (1.0, 1.0)
    # leaning east only: the base's y is the box's middle; its x is one radius in from the west edge
    assert base_point(_leaning_box((10, 5), 0.5, (0, 5), 1.5), (0, 5)) == pytest.approx((10, 5))


def test_store_detections_puts_a_chimney_flag_at_its_base_and_leaves_a_tank_at_its_centre(workspace, mosaic):
    """A real views.tif and ortho.json in the cell: the chimney is seen from a camera to its south-west."""
    cell = workspace.cell_dir("c1")
    with rasterio.open(cell / "ortho.tif") as src:
        left, bottom, right, top = src.bounds
        crs = src.crs
    x0, y0 = (left + right) / 2, (bottom + top) / 2
    nadir = (x0 - 30.0, y0 - 20.0)
    cam = [[nadir[0], nadir[1], 80.0]]
    (cell / "ortho.json").write_text(json.dumps({"view_cameras": cam}))
    with rasterio.open(cell / "views.tif", "w", driver="GTiff", width=40, height=40, count=1, dtype="uint16",
                       crs=crs, transform=Affine(1.0, 0, left, 0, -1.0, top), nodata=0) as vt:
        vt.write(np.ones((40, 40), np.uint16), 1)  # every cell shows photo 0 (label 1)
    base = np.array([left + 12.0, top - 12.0])
    chimney = _leaning_box(base, 0.6, nadir, 80 / (80 - 30))
    tank = (base[0] + 8, base[1] - 4, base[0] + 12, base[1])
    found = RasterDetections([shapely.box(*chimney), shapely.box(*tank)], np.zeros((2, 4)), np.array([0.9, 0.9]),
                             np.array([1, 0]), ("tank", "chimney", "drum_stockpile"), crs, 1, 0, 0.0)
    assert store_detections(workspace, "c1", found, "m") == 2
    rows = {r["class"]: r for r in workspace.gpkg.select(DETECTIONS.name)}
    c = rows["chimney"]
    assert (c["x"], c["y"]) == pytest.approx(tuple(base), abs=1e-6)
    box_centre = shapely.box(*chimney).centroid
    assert np.hypot(box_centre.x - base[0], box_centre.y - base[1]) > 5  # what the flag said before
    assert (c["lon"], c["lat"]) == pytest.approx(workspace.to_lonlat(*base))
    t = rows["tank"]
    assert (t["x"], t["y"]) == pytest.approx((base[0] + 10, base[1] - 2))
    # without views (an imported ortho), the chimney's flag stays at its box centre
    (cell / "views.tif").unlink()
    store_detections(workspace, "c1", found, "m")
    c = next(r for r in workspace.gpkg.select(DETECTIONS.name) if r["class"] == "chimney")
    assert (c["x"], c["y"]) == pytest.approx((box_centre.x, box_centre.y))


def test_damaged_or_missing_views_leave_the_flag_at_the_box_centre(tmp_path):
    """views.tif unreadable, ortho.json without cameras or not JSON: no views, never an error."""
    from skysieve.detect.ground import ViewCameras

    assert ViewCameras.open(tmp_path) is None  # nothing there
    (tmp_path / "views.tif").write_bytes(b"not a tiff")
    (tmp_path / "ortho.json").write_text(json.dumps({"view_cameras": [[0.0, 0.0, 80.0]]}))
    assert ViewCameras.open(tmp_path) is None
    (tmp_path / "ortho.json").write_text("{half")
    assert ViewCameras.open(tmp_path) is None
    (tmp_path / "ortho.json").write_text(json.dumps({"status": "built"}))  # a mosaic from before views
    assert ViewCameras.open(tmp_path) is None
    # a label beyond the cameras listed (a stale views.tif beside a newer report) gives no nadir
    views = ViewCameras(np.full((4, 4), 3, np.uint16), Affine(1.0, 0, 0, 0, -1.0, 4), np.zeros((1, 3)))
    assert views.nadir(1.5, 1.5) is None and views.nadir(-10, 2) is None
    views = ViewCameras(np.ones((4, 4), np.uint16), Affine(1.0, 0, 0, 0, -1.0, 4), np.array([[7.0, 8.0, 80.0]]))
    assert views.nadir(1.5, 1.5) == (7.0, 8.0)
