"""The synthetic world: reproducible bytes, variety across seeds, truth that lines up with the pixels."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from rasterio.features import rasterize
from rasterio.windows import Window
from shapely.geometry import shape

from skysieve.crs import choose_crs
from skysieve.datasets import CLASSES, load_world, make_world
from skysieve.errors import DatasetError
from skysieve.schema import SITE_KINDS


def _features(path):
    return json.loads(path.read_text())["features"]


def test_same_seed_same_bytes_other_seed_other_world(tmp_path):
    a = make_world(tmp_path / "a", 4, size_m=60, gsd_m=0.1)
    b = make_world(tmp_path / "b", 4, size_m=60, gsd_m=0.1)
    c = make_world(tmp_path / "c", 5, size_m=60, gsd_m=0.1)
    for name in ("ortho.tif", "height.tif", "truth/objects.geojson", "truth/sites.geojson", "sites_register.geojson"):
        assert (a.root / name).read_bytes() == (b.root / name).read_bytes(), name
    with rasterio.open(a.ortho) as sa, rasterio.open(c.ortho) as sc:
        pa, pc = sa.read().astype(float), sc.read().astype(float)
    assert np.abs(pa - pc).mean() > 10  # visibly different: other fields, season, layout
    meta_a, meta_c = (json.loads((w.root / "world.json").read_text()) for w in (a, c))
    assert (meta_a["season"], meta_a["sun"]) != (meta_c["season"], meta_c["sun"])


def test_rasters_are_georeferenced_tiled_and_agree(small_world):
    with rasterio.open(small_world.ortho) as o, rasterio.open(small_world.height) as h:
        assert o.crs.to_epsg() == choose_crs(112.88, 36.12).to_epsg() == 4547
        assert o.count == 3 and o.dtypes[0] == "uint8"
        assert o.profile["tiled"] and o.profile["compress"] in ("jpeg", "deflate")
        assert o.transform == h.transform and o.shape == h.shape
        assert o.transform.a == pytest.approx(0.05) and o.width * 0.05 == pytest.approx(small_world.size_m)
        assert o.transform.c == small_world.origin_xy[0]


def test_object_footprints_match_the_height_raster(small_world):
    """Each labelled object's truth polygon covers exactly the pixels raised to its height (to a pixel)."""
    objs = _features(small_world.objects)
    assert objs, "seed 0 at 120 m holds labelled objects"
    with rasterio.open(small_world.height) as src:
        for feat in objs:
            poly = shape(feat["geometry"])
            h = feat["properties"]["height_m"]
            assert feat["properties"]["class"] in CLASSES
            minx, miny, maxx, maxy = poly.bounds
            row0, col0 = src.index(minx, maxy)
            win = Window(col0 - 4, row0 - 4, int((maxx - minx) / 0.05) + 9, int((maxy - miny) / 0.05) + 9)
            heights = src.read(1, window=win)
            tr = src.window_transform(win)
            inner = rasterize([poly.buffer(-0.05)], heights.shape, transform=tr).astype(bool)
            ring = rasterize([poly.buffer(0.1)], heights.shape, transform=tr).astype(bool) & \
                ~rasterize([poly.buffer(0.05)], heights.shape, transform=tr).astype(bool)
            if feat["properties"]["kind"].startswith(("drum", "ibc")):  # a pile: drums inside its hull, none out
                assert (heights[inner] > 0.5).mean() > 0.2
                assert heights[inner].max() == pytest.approx(h, abs=0.05)
                assert (heights[ring] > 0.5).mean() < 0.05
                continue
            assert (heights[inner] >= h - 0.01).mean() > 0.97, feat["properties"]
            assert (np.abs(heights[ring] - h) < 0.01).mean() < 0.05, feat["properties"]


def test_objects_stand_out_in_the_ortho(small_world):
    with rasterio.open(small_world.ortho) as src:
        for feat in _features(small_world.objects):
            poly = shape(feat["geometry"])
            minx, miny, maxx, maxy = poly.buffer(2.5).bounds
            row0, col0 = src.index(minx, maxy)
            win = Window(col0, row0, int((maxx - minx) / 0.05), int((maxy - miny) / 0.05))
            rgb = src.read(window=win).astype(float)
            tr = src.window_transform(win)
            inside = rasterize([poly.buffer(-0.1)], rgb.shape[1:], transform=tr).astype(bool)
            outside = ~rasterize([poly.buffer(1.0)], rgb.shape[1:], transform=tr).astype(bool)
            if inside.sum() < 3:
                continue
            diff = np.abs(rgb[:, inside].mean(axis=1) - rgb[:, outside].mean(axis=1)).max()
            assert diff > 5, feat["properties"]


def test_sites_truth_and_register(small_world):
    sites = _features(small_world.sites)
    register = _features(small_world.sites_register)
    assert len(sites) == len(register) == small_world.n_sites > 0
    assert any(s["properties"]["illegal"] for s in sites)
    for s, r in zip(sites, register, strict=True):
        assert s["properties"]["kind"] in SITE_KINDS and r["properties"]["kind"] == s["properties"]["kind"]
        assert r["properties"]["name"] and "illegal" not in r["properties"]
        lon, lat = np.asarray(r["geometry"]["coordinates"][0]).mean(axis=0)
        assert abs(lon - 112.88) < 0.01 and abs(lat - 36.12) < 0.01  # WGS 84 lon/lat (RFC 7946)
    hosted = {o["properties"]["site_id"] for o in _features(small_world.objects)}
    illegal = {s["properties"]["site_id"] for s in sites if s["properties"]["illegal"]}
    licensed = {s["properties"]["site_id"] for s in sites if s["properties"]["kind"] == "licensed_chemical"}
    assert illegal <= hosted <= illegal | licensed


def test_scene_rebuilds_from_world_json(small_world):
    world = load_world(small_world.root)
    assert len(world.scene.labelled()) == small_world.n_objects


def test_bad_world_arguments(tmp_path):
    with pytest.raises(DatasetError, match="size"):
        make_world(tmp_path / "x", 1, size_m=5)
    with pytest.raises(DatasetError, match="GSD"):
        make_world(tmp_path / "x", 1, size_m=60, gsd_m=0)
    with pytest.raises(DatasetError, match="synth world"):
        load_world(tmp_path)
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "world.json").write_text(json.dumps({"version": 999, "crs": "EPSG:4547", "origin_xy": [0, 0],
                                                          "size_m": 60, "gsd_m": 0.1, "seed": 1, "n_objects": 0,
                                                          "n_sites": 0}))
    with pytest.raises(DatasetError, match="remake"):
        load_world(tmp_path / "w")


def test_site_register_imports_into_a_workspace(small_world, tmp_path):
    """``skysieve sites import`` reads the world's register as it is: every site, its kind and name."""
    from skysieve.sites import import_sites
    from skysieve.workspace import Workspace

    ws = Workspace.create(tmp_path / "ws", crs=small_world.crs)
    result = import_sites(ws, small_world.sites_register)
    rows = ws.gpkg.select("sites")
    truth = {f["properties"]["name"]: f for f in _features(small_world.sites)}
    assert len(rows) == len(truth) and not result.rejected
    for row in rows:
        t = truth[row["name"]]
        assert row["kind"] == t["properties"]["kind"]
        assert row["geometry"].symmetric_difference(shape(t["geometry"])).area < 0.01 * row["geometry"].area
