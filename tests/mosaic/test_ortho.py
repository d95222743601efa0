"""Per-cell orthomosaics on small generated flights: placement against the true ortho, the COG layout,
the report, and what happens to a single photo, a photo that matches nothing, water, two cameras,
bad inputs and reruns."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import rasterio
from ortho_scene import ORIGIN, Shot, grid_shots, make_ground, make_workspace, truth_window

from skysieve.camera import Camera, Pose
from skysieve.cli import main
from skysieve.mosaic.accuracy import compare_rasters
from skysieve.mosaic.ortho import MosaicSettings, build_mosaics, mosaic_cell

CELL = "E576000N5188000"
CAM = Camera(400, 300, 400.0)  # 30 m up: 7.5 cm/px, 30 x 22.5 m footprint


@pytest.fixture(scope="module")
def ground():
    return make_ground(80.0, 0.05, seed=3)


def _shots(gps_sigma_m: float = 1.5, seed: int = 1) -> list[Shot]:
    return grid_shots(CAM, 30.0, 18, 20, 4, 3, 9.0, 9.0, gps_sigma_m=gps_sigma_m, seed=seed)


def _read(path: Path) -> tuple[np.ndarray, np.ndarray, rasterio.coords.BoundingBox, float]:
    with rasterio.open(path) as ds:
        return np.moveaxis(ds.read([1, 2, 3]), 0, -1), ds.read_masks(1) > 0, ds.bounds, ds.res[0]


def _misfit(ground, ortho: Path):
    rgb, valid, b, gsd = _read(ortho)
    truth = truth_window(ground, (b.left, b.bottom, b.right, b.top), gsd)
    return compare_rasters(rgb, truth, valid, gsd, patch_px=64)


def test_mosaic_sits_on_the_true_ortho_and_is_a_cog(tmp_path: Path, ground) -> None:
    shots = _shots()
    ws = make_workspace(tmp_path / "ws", ground, shots)
    [report] = build_mosaics(ws, workers=1)
    assert report["status"] == "built" and report["cell_id"] == CELL
    assert len(report["images_used"]) == 12 and report["images_flagged"] == []
    # GPS noise of 1.5 m leaves tens of pixels between overlapping photos; the adjustment removes it
    assert report["tie_rms_before_px"] > 5 and report["tie_rms_after_px"] < 1.0
    assert 0.5 < report["mean_shift_from_gps_m"] < 4
    assert report["gsd_m"] == pytest.approx(0.075)
    assert 0.1 < report["cell_covered"] < 0.3  # ~57 x 40 m of a 100 m cell
    on_disk = json.loads((ws.cell_dir(CELL) / "ortho.json").read_text())
    assert on_disk["inputs_digest"] == report["inputs_digest"]

    misfit = _misfit(ground, Path(report["ortho"]))
    assert misfit.n_patches >= 15
    assert misfit.mean_offset_m < 0.5  # where the mosaic sits (the truth: GPS errors average out)
    # ... and it sits where the mean GPS error puts it: a 2-D adjustment cannot see a shared bias
    mean_err = np.mean([s.gps_error for s in shots], axis=0)
    assert np.hypot(misfit.mean_dx_m - mean_err[0], misfit.mean_dy_m - mean_err[1]) < 0.15
    assert misfit.local_p90_px < 3.0  # how well it holds together

    with rasterio.open(report["ortho"]) as ds:
        assert ds.crs.to_epsg() == 32615
        assert ds.profile["tiled"] and ds.profile["blockxsize"] == 512
        assert ds.compression.name == "jpeg" and ds.overviews(1)  # compressed, internal overviews
        assert rasterio.enums.MaskFlags.per_dataset in ds.mask_flag_enums[0]
        assert ds.tags()["SKYSIEVE_CELL"] == CELL
        assert ds.transform.a == pytest.approx(0.075) and ds.transform.c / 0.075 == pytest.approx(round(ds.transform.c / 0.075))
    assert not [p for p in ws.cell_dir(CELL).iterdir() if p.name.startswith(".")]  # no temporaries left

    # views.tif: which photo the mosaic shows where, for placing tall objects' flags at their base; each
    # camera 30 m over the ground, and under each camera the mosaic shows that camera's own photo
    cams = np.array(on_disk["view_cameras"])
    assert cams.shape == (12, 3) and np.allclose(cams[:, 2], 30.0, atol=1.0)
    with rasterio.open(on_disk["views"]) as vt:
        assert vt.crs.to_epsg() == 32615 and vt.nodata == 0 and vt.dtypes[0] == "uint16"
        labels = vt.read(1)
        assert labels.max() <= 12 and (labels > 0).mean() > 0.5
        own = [labels[vt.index(x, y)] == k + 1 for k, (x, y, _) in enumerate(cams)]
    assert sum(own) >= 10, own


def test_single_photo_cell_keeps_its_gps_placement(tmp_path: Path, ground) -> None:
    shot = Shot("f1/ONE.JPG", CAM, Pose(ORIGIN[0] + 40, ORIGIN[1] + 40, 30.0, 30.0))
    ws = make_workspace(tmp_path / "ws", ground, [shot])
    before = cv2.getNumThreads()
    cv2.setNumThreads(3)
    try:
        report = mosaic_cell(ws.root, CELL)
        assert cv2.getNumThreads() == 3  # OpenCV's thread pool, one thread while mosaicking, is given back
    finally:
        cv2.setNumThreads(before)
    assert report["status"] == "built" and report["images_used"] == ["f1/ONE.JPG"]
    assert report["images_flagged"] == [] and report["tie_rms_after_px"] is None
    assert report["mean_shift_from_gps_m"] == 0
    misfit = _misfit(ground, Path(report["ortho"]))
    assert misfit.mean_offset_m < 0.05 and misfit.local_p90_px < 1.0  # exact pose: exact placement


def test_photo_that_matches_nothing_is_flagged_and_kept_at_gps(tmp_path: Path, ground) -> None:
    shots = _shots(gps_sigma_m=0.5)
    stranger = replace(shots[5], image_id="f1/STRANGER.JPG")
    ws = make_workspace(tmp_path / "ws", ground, shots[:5] + shots[6:] + [stranger])
    other = make_ground(80.0, 0.05, seed=99)  # overwrite its pixels with another place entirely
    import cv2
    from ortho_scene import render_photo

    path = ws.flight_dir("f1") / "STRANGER.JPG"
    cv2.imwrite(str(path), cv2.cvtColor(render_photo(other, stranger.camera, stranger.pose), cv2.COLOR_RGB2BGR))
    report = mosaic_cell(ws.root, CELL)
    assert report["status"] == "built"
    assert [f["image_id"] for f in report["images_flagged"]] == ["f1/STRANGER.JPG"]
    assert "GPS placement" in report["images_flagged"][0]["reason"]
    assert "f1/STRANGER.JPG" in report["images_used"]  # still rendered where GPS puts it
    assert report["tie_rms_after_px"] < 1.0


def test_featureless_water_photo_is_flagged_and_the_mosaic_still_covers_it(tmp_path: Path) -> None:
    # a lake over most of the last strip: the photos over it see nothing but water
    water = make_ground(80.0, 0.05, seed=3, water=(12, 24, 75, 75))
    shots = _shots(gps_sigma_m=0.5)
    ws = make_workspace(tmp_path / "ws", water, shots)
    report = mosaic_cell(ws.root, CELL)
    assert report["status"] == "built"
    flagged = {f["image_id"] for f in report["images_flagged"]}
    assert flagged and flagged <= {s.image_id for s in shots[8:]}  # only photos over the lake
    assert len(report["images_used"]) == 12
    rgb, valid, b, gsd = _read(Path(report["ortho"]))
    # the lake is in the mosaic (covered, water-coloured), not a hole
    col = int((ORIGIN[0] + 45 - b.left) / gsd)
    row = int((b.top - (ORIGIN[1] + 40)) / gsd)
    assert valid[row, col]
    assert np.abs(rgb[row, col].astype(int) - [70, 90, 110]).max() < 25


def test_two_cameras_in_one_flight(tmp_path: Path, ground) -> None:
    other_cam = Camera(600, 400, 700.0)  # a second drone: longer lens, higher up (6.4 cm/px at 45 m)
    a = grid_shots(CAM, 30.0, 18, 20, 4, 2, 9.0, 9.0, gps_sigma_m=1.0, seed=4, prefix="f1")
    b = grid_shots(other_cam, 45.0, 20, 34, 3, 1, 12.0, 9.0, gps_sigma_m=1.0, seed=5, prefix="f1")
    mean_err = np.mean([s.gps_error for s in a + b], axis=0)
    b = [replace(s, image_id=s.image_id.replace("IMG_", "B_")) for s in b]
    ws = make_workspace(tmp_path / "ws", ground, a + b)
    report = mosaic_cell(ws.root, CELL, MosaicSettings(gsd_m=0.08))
    assert report["images_flagged"] == [] and len(report["images_used"]) == 11
    assert report["tie_rms_after_px"] < 1.0
    misfit = _misfit(ground, Path(report["ortho"]))
    assert misfit.local_p90_px < 3.0
    # 11 fixes with 1 m noise: the mosaic sits at their mean error (here ~0.5 m), not farther
    assert np.hypot(misfit.mean_dx_m - mean_err[0], misfit.mean_dy_m - mean_err[1]) < 0.15


def test_bad_inputs_are_reported_and_the_batch_goes_on(tmp_path: Path, ground) -> None:
    shots = _shots(gps_sigma_m=0.5)
    ws = make_workspace(tmp_path / "ws", ground, shots)
    (ws.flight_dir("f1") / "IMG_0000.JPG").write_bytes(b"not a jpeg any more")
    reports = build_mosaics(ws, cells=[CELL, "E999N999"], workers=1)
    by_id = {r["cell_id"]: r for r in reports}
    assert by_id["E999N999"]["status"] == "failed" and "no such cell" in by_id["E999N999"]["error"]
    built = by_id[CELL]
    assert built["status"] == "built" and "f1/IMG_0000.JPG" not in built["images_used"]
    [bad] = [f for f in built["images_flagged"] if f["image_id"] == "f1/IMG_0000.JPG"]
    assert "not used" in bad["reason"] and "decode" in bad["reason"]
    with pytest.raises(Exception, match="positive"):
        build_mosaics(ws, gsd_m=-1)


def test_rerun_skips_unchanged_cells_and_rebuilds_changed_ones(tmp_path: Path, ground) -> None:
    ws = make_workspace(tmp_path / "ws", ground, _shots(gps_sigma_m=0.5))
    first = mosaic_cell(ws.root, CELL)
    mtime = Path(first["ortho"]).stat().st_mtime_ns
    assert mosaic_cell(ws.root, CELL)["status"] == "skipped"
    assert Path(first["ortho"]).stat().st_mtime_ns == mtime
    ws.gpkg.update("images", "image_id = ?", ("f1/IMG_0101.JPG",), {"yaw_deg": 181.0})
    again = mosaic_cell(ws.root, CELL)
    assert again["status"] == "built" and again["inputs_digest"] != first["inputs_digest"]


def test_cli_mosaic_prints_a_summary_and_json(tmp_path: Path, ground, capsys: pytest.CaptureFixture) -> None:
    ws = make_workspace(tmp_path / "ws", ground, _shots(gps_sigma_m=0.5)[:4])
    assert main(["mosaic", str(ws.root), "--gsd", "0.15", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert f"{CELL}: built, 4 photos" in out and "1 cells built" in out
    assert main(["mosaic", str(ws.root), "--gsd", "0.15", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["cells"][0]["status"] == "skipped" and summary["cells"][0]["gsd_m"] == 0.15


def _kill_while_writing_the_ortho(root: Path, cell_dir: Path, *args: str) -> None:
    """Run ``skysieve mosaic ROOT ARGS`` in a child and SIGKILL it once it writes the ortho (its COG scratch
    folder appears); 2 cm/px makes the writing long enough to be caught."""
    import os
    import signal
    import subprocess
    import sys
    import time

    env = {**os.environ, "SKYSIEVE_PROGRESS": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "skysieve", "mosaic", str(root), "--gsd", "0.02", "--workers", "1",
                             *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline and not list(cell_dir.glob(".ortho.scratch.*")):
        time.sleep(0.02)
    caught = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert caught, "the run finished before it could be killed"


@pytest.mark.slow
def test_a_killed_run_leaves_no_half_written_ortho_and_the_rerun_builds_it(tmp_path: Path, ground) -> None:
    ws = make_workspace(tmp_path / "ws", ground, _shots(gps_sigma_m=0.5))
    cell_dir = ws.cell_dir(CELL)
    _kill_while_writing_the_ortho(ws.root, cell_dir)
    assert not (cell_dir / "ortho.tif").exists() and not (cell_dir / "ortho.json").exists()
    report = mosaic_cell(ws.root, CELL, MosaicSettings(gsd_m=0.02))
    assert report["status"] == "built"
    with rasterio.open(cell_dir / "ortho.tif") as ds:
        assert ds.read_masks(1).any()
    # stale temporaries gone; dsm.tif: the terrain it was rendered through
    assert sorted(p.name for p in cell_dir.iterdir()) == ["dsm.tif", "ortho.json", "ortho.tif", "views.tif"]


@pytest.mark.slow
def test_a_rebuild_killed_while_writing_the_ortho_leaves_the_old_set_whole(tmp_path: Path, ground) -> None:
    """``mosaic --force --gsd 0.02`` over a 0.15 m mosaic, killed while the ortho is written: the DSM and the
    views of the new build are staged, so the cell keeps the old ortho, DSM and views together, and a plain
    rerun at 0.15 m rightly finds it current. Before, views.tif and dsm.tif were the aborted run's beside the
    old ortho, and the rerun said "unchanged" (chimney flags read views.tif)."""
    from skysieve.mosaic.ortho import raster_inputs

    ws = make_workspace(tmp_path / "ws", ground, _shots(gps_sigma_m=0.5))
    cell_dir = ws.cell_dir(CELL)
    old = mosaic_cell(ws.root, CELL, MosaicSettings(gsd_m=0.15))
    assert {raster_inputs(cell_dir / n) for n in ("ortho.tif", "dsm.tif", "views.tif")} == {old["inputs_digest"]}
    _kill_while_writing_the_ortho(ws.root, cell_dir, "--force")
    assert {raster_inputs(cell_dir / n) for n in ("ortho.tif", "dsm.tif", "views.tif")} == {old["inputs_digest"]}
    assert mosaic_cell(ws.root, CELL, MosaicSettings(gsd_m=0.15))["status"] == "skipped"


def test_a_cell_whose_rasters_are_not_all_from_its_inputs_is_rebuilt(tmp_path: Path, ground) -> None:
    """However a mix came about (an older version's kill, a copied file), a raster whose inputs tag is not the
    report's makes the cell stale; detection then also ignores such a views.tif."""
    from skysieve.detect.ground import ViewCameras
    from skysieve.mosaic.ortho import raster_inputs

    ws = make_workspace(tmp_path / "ws", ground, _shots(gps_sigma_m=0.5)[:4])
    cell_dir = ws.cell_dir(CELL)
    first = mosaic_cell(ws.root, CELL, MosaicSettings(gsd_m=0.15))
    assert ViewCameras.open(cell_dir) is not None
    with rasterio.open(cell_dir / "views.tif", "r+") as ds:
        ds.update_tags(SKYSIEVE_INPUTS="another build")
    assert ViewCameras.open(cell_dir) is None  # labels of another build would index the wrong cameras
    again = mosaic_cell(ws.root, CELL, MosaicSettings(gsd_m=0.15))
    assert again["status"] == "built" and again["inputs_digest"] == first["inputs_digest"]
    assert raster_inputs(cell_dir / "views.tif") == first["inputs_digest"]
    assert ViewCameras.open(cell_dir) is not None


@pytest.mark.slow
def test_two_cells_in_parallel_processes_agree_at_their_border(tmp_path: Path) -> None:
    # a flight across the line between two 100 m cells, mosaicked by two worker processes
    wide = make_ground(140.0, 0.05, seed=8)
    shots = grid_shots(CAM, 30.0, 78, 30, 5, 3, 9.0, 9.0, gps_sigma_m=1.0, seed=6)  # x 78..114 m from ORIGIN
    ws = make_workspace(tmp_path / "ws", wide, shots)
    east = "E576100N5188000"
    reports = {r["cell_id"]: r for r in build_mosaics(ws, workers=2)}
    assert set(reports) == {CELL, east}
    mean_err = np.mean([s.gps_error for s in shots], axis=0)
    for cell_id, r in reports.items():
        assert r["status"] == "built" and r["images_flagged"] == [], cell_id
        assert r["tie_rms_after_px"] < 1.0 and r["photos_solved_together"] == len(shots)
        misfit = _misfit(wide, Path(r["ortho"]))
        assert misfit.n_patches >= 20 and misfit.local_p90_px < 3.0, (cell_id, misfit.as_dict())
        # one solution for the flight: both cells sit at the flight's mean GPS error, not their own photos'
        assert np.hypot(misfit.mean_dx_m - mean_err[0], misfit.mean_dy_m - mean_err[1]) < 0.15, cell_id
    # each photo described once for the flight, whichever process got to it first
    cache = ws.flight_dir("f1") / ".mosaic-cache"
    assert len(list((cache / "features").glob("*.npz"))) == len(shots)
    # the cells overlap by their margins (5 m each side of the border): there they show the same ground
    a, va, ba, gsd = _read(Path(reports[CELL]["ortho"]))
    b, vb, bb, _ = _read(Path(reports[east]["ortho"]))
    x0, x1 = max(ba.left, bb.left), min(ba.right, bb.right)
    y0, y1 = max(ba.bottom, bb.bottom), min(ba.top, bb.top)
    assert x1 - x0 > 8.0  # both reach 5 m beyond the border

    def cut(img, valid, bounds):
        c0, r0 = round((x0 - bounds.left) / gsd), round((bounds.top - y1) / gsd)
        w, h = round((x1 - x0) / gsd), round((y1 - y0) / gsd)
        return img[r0:r0 + h, c0:c0 + w], valid[r0:r0 + h, c0:c0 + w]

    (pa, ma), (pb, mb) = cut(a, va, ba), cut(b, vb, bb)
    both = compare_rasters(pa, pb, ma & mb, gsd, patch_px=64)
    assert both.n_patches >= 3 and both.mean_offset_m < 0.1 and both.local_p90_px < 2.0, both


def test_a_line_with_its_recorded_yaw_turned_around_is_turned_back_and_noted(tmp_path: Path, ground) -> None:
    # DJI flights have been seen with a whole line's XMP yaw 180 degrees off what the pixels show
    shots = _shots(gps_sigma_m=0.5)
    ws = make_workspace(tmp_path / "ws", ground, shots)
    wrong = [s.image_id for s in shots if s.image_id.startswith("f1/IMG_01")]  # the middle line, flown at 180
    for image_id in wrong:
        ws.gpkg.update("images", "image_id = ?", (image_id,), {"yaw_deg": 0.0})
    report = mosaic_cell(ws.root, CELL)
    turned = {f["image_id"] for f in report["images_flagged"] if "yaw" in f["reason"]}
    assert turned == set(wrong)
    assert report["tie_rms_after_px"] < 1.0 and _misfit(ground, Path(report["ortho"])).local_p90_px < 3.0
    rows = {r["image_id"]: r for r in ws.gpkg.select("images")}
    for image_id in wrong:  # the recorded yaw stays; the yaw the pixels show is noted where QGIS shows it
        assert rows[image_id]["yaw_deg"] == 0.0
        assert re.search(r"yaw seen in the pixels: -?180 degrees", rows[image_id]["reason"]), rows[image_id]["reason"]
        assert abs(rows[image_id]["yaw_seen_deg"]) == pytest.approx(180.0, abs=0.5)  # and as a column
    assert not any("yaw seen" in (r["reason"] or "") for k, r in rows.items() if k not in wrong)
    assert all(r["yaw_seen_deg"] is None for k, r in rows.items() if k not in wrong)
    assert mosaic_cell(ws.root, CELL)["status"] == "skipped"  # the note is not an input: no rebuild


def test_a_damaged_cache_entry_is_recomputed(tmp_path: Path, ground) -> None:
    ws = make_workspace(tmp_path / "ws", ground, _shots(gps_sigma_m=0.5)[:6])
    first = mosaic_cell(ws.root, CELL)
    cache = ws.flight_dir("f1") / ".mosaic-cache"
    entries = sorted(cache.rglob("*.npz")) + sorted(cache.rglob("*.json"))
    assert entries
    for path in entries:  # a disk that filled up, a copy cut short
        path.write_bytes(path.read_bytes()[:20])
    again = mosaic_cell(ws.root, CELL, force=True)
    assert again["status"] == "built" and again["images_used"] == first["images_used"]
    assert again["tie_rms_after_px"] == pytest.approx(first["tie_rms_after_px"], abs=0.3)
    assert all(p.stat().st_size > 20 for p in entries)  # rewritten whole


def _masked_half(rgb: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reference 2 x 2 mean under a mask, one pixel at a time."""
    h2, w2 = -(-cov.shape[0] // 2), -(-cov.shape[1] // 2)
    out, valid = np.zeros((h2, w2, 3), np.uint8), np.zeros((h2, w2), bool)
    for r in range(h2):
        for c in range(w2):
            m = cov[2 * r:2 * r + 2, 2 * c:2 * c + 2]
            if m.any():
                px = rgb[2 * r:2 * r + 2, 2 * c:2 * c + 2][m].astype(float)
                out[r, c] = np.floor(px.sum(0) / len(px) + 0.5)
                valid[r, c] = True
    return out, valid


def test_cog_overviews_are_masked_means_of_the_blocks_and_empty_tiles_are_not_stored(tmp_path: Path) -> None:
    from pyproj import CRS

    from skysieve.mosaic.cog import CogSettings, write_cog
    from skysieve.mosaic.render import OutputGrid, windows

    rng = np.random.default_rng(4)

    def raster(grid):
        full = rng.integers(0, 256, (grid.height, grid.width, 3), dtype=np.uint8)
        cov = np.zeros((grid.height, grid.width), bool)
        cov[3:45, 5:40] = True  # partly covered tiles (the edge splits 2 x 2 pairs)
        cov[21:30, 41:60] = True
        full[~cov] = 0
        return full, cov

    def blocks(grid, full, cov, size):
        for w in windows(grid, size):
            c = cov[w.row_off:w.row_off + w.height, w.col_off:w.col_off + w.width]
            if c.any():  # tiles with nothing are never written
                yield w, full[w.row_off:w.row_off + w.height, w.col_off:w.col_off + w.width].copy(), c.copy()

    settings = CogSettings(compress="DEFLATE", blocksize=16)  # lossless: the overviews compare exactly
    grid = OutputGrid(576000.0, 5188000.0, 0.1, 80, 48)  # multiples of the coarsest factor (8)
    full, cov = raster(grid)
    write_cog(tmp_path / "own.tif", grid, CRS.from_epsg(32615), blocks(grid, full, cov, 16), settings)
    expect, valid = full, cov
    with rasterio.open(tmp_path / "own.tif") as ds:
        assert ds.overviews(1) == [2, 4, 8]
        assert np.array_equal(np.moveaxis(ds.read(), 0, -1)[cov], full[cov])
        # a tile that no block reached is not in the file (sparse), and reads as no-data
        assert ds.get_tag_item("BLOCK_OFFSET_1_1", "TIFF", bidx=1)  # col 1, row 1: covered
        assert not ds.get_tag_item("BLOCK_OFFSET_4_0", "TIFF", bidx=1)  # col 4, row 0: nothing
        assert not ds.read_masks(1, window=((0, 16), (64, 80))).any()
        for level in range(3):
            expect, valid = _masked_half(expect, valid)
            with rasterio.open(tmp_path / "own.tif", overview_level=level) as ov:
                got, mask = np.moveaxis(ov.read(), 0, -1), ov.read_masks(1) > 0
            assert np.array_equal(mask, valid)
            assert np.array_equal(got[valid], expect[valid])
    # a grid of another size, or blocks not lined up with the factors: GDAL averages the overviews instead
    # (over the raster's size ratio, 77 / 39 here, which a 2 x 2 mean would not match)
    for name, other, size in (("odd", OutputGrid(576000.0, 5188000.0, 0.1, 77, 53), 16), ("unaligned", grid, 12)):
        full, cov = raster(other)
        write_cog(tmp_path / f"{name}.tif", other, CRS.from_epsg(32615), blocks(other, full, cov, size), settings)
        with rasterio.open(tmp_path / f"{name}.tif") as ds:
            assert ds.overviews(1) == [2, 4, 8]
            assert np.array_equal(np.moveaxis(ds.read(), 0, -1)[cov], full[cov])
            assert ds.read_masks(1, out_shape=(-(-other.height // 8), -(-other.width // 8))).any()


def test_exposure_gains_from_the_feature_thumbnails_match_gains_from_decoding(tmp_path: Path, ground) -> None:
    from skysieve.mosaic.matching import THUMB_PX, match_photos
    from skysieve.mosaic.ortho import _accepted_rows, _photos
    from skysieve.mosaic.photos import ground_homography
    from skysieve.mosaic.render import PlacedPhoto, estimate_gains
    from skysieve.mosaic.seams import BlendSettings

    ws = make_workspace(tmp_path / "ws", ground, _shots(gps_sigma_m=0.0))
    photos = sorted(_photos(_accepted_rows(ws)), key=lambda p: p.image_id)
    for k in (2, 7):  # two photos exposed darker and brighter
        img = cv2.imread(photos[k].path)
        cv2.imwrite(photos[k].path, cv2.convertScaleAbs(img, alpha=0.8 if k == 2 else 1.15), [cv2.IMWRITE_JPEG_QUALITY, 95])
    thumbs = match_photos(photos).thumbs
    assert all(t is not None and max(t.shape[:2]) == THUMB_PX and t.shape[2] == 3 for t in thumbs)
    placed = [PlacedPhoto(p, ground_homography(p)) for p in photos]
    decoded = estimate_gains(placed, BlendSettings())
    from_thumbs = estimate_gains(placed, BlendSettings(), thumbs=thumbs)
    assert decoded[2].mean() > 1.1 and decoded[7].mean() < 0.95  # the test sees the exposures
    assert np.abs(from_thumbs - decoded).max() < 0.01


@pytest.mark.parametrize("bigtiff", [False, True])
def test_jpeg_cog_written_by_opencv_reads_in_gdal_as_a_cog_with_its_overviews_mask_and_tags(
        tmp_path: Path, bigtiff: bool) -> None:
    from pyproj import CRS

    from skysieve.mosaic.cog import overview_factors
    from skysieve.mosaic.cogjpeg import JpegCogWriter, geokeys
    from skysieve.mosaic.render import OutputGrid, windows

    grid = OutputGrid(576000.0, 5188000.0, 0.05, 96, 64)  # 6 x 4 tiles of 16, overviews 2, 4, 8
    yy, xx = np.mgrid[0:grid.height, 0:grid.width]
    full = np.stack([xx * 2, yy * 3, (xx + yy) % 256], -1).astype(np.uint8)
    cov = ((xx - 40) ** 2 + (yy - 30) ** 2 < 26 ** 2) | ((yy > 50) & (xx > 80))
    full[~cov] = 0
    # quality 100 without chroma subsampling: within YCbCr rounding of the pixels, so misplaced ones show
    writer = JpegCogWriter(grid.width, grid.height, overview_factors(grid.width, grid.height, 16), 16, 100, tmp_path,
                           subsample=False)
    for w in windows(grid, 24):  # blocks that straddle tile rows and columns
        sl = (slice(w.row_off, w.row_off + w.height), slice(w.col_off, w.col_off + w.width))
        if cov[sl].any():
            writer.put(w.row_off, w.col_off, full[sl].copy(), cov[sl].copy())
    tags = {"SKYSIEVE_CELL": "E576000N5188000", "NOTE": "a & <b> \"c\""}
    writer.finish(tmp_path / "o.tif", grid.transform, geokeys(CRS.from_epsg(32615)), tags, bigtiff=bigtiff)
    with open(tmp_path / "o.tif", "rb") as f:
        assert f.read(4) == (b"II+\0" if bigtiff else b"II*\0")
    with rasterio.open(tmp_path / "o.tif") as ds:
        assert ds.crs.to_epsg() == 32615 and ds.transform == grid.transform and (ds.width, ds.height) == (96, 64)
        assert ds.tags() == {**tags, "AREA_OR_POINT": "Area"}
        assert ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"  # GDAL recognises its cloud-optimised layout
        assert ds.compression.name == "jpeg" and ds.photometric.name == "ycbcr" and ds.block_shapes[0] == (16, 16)
        assert ds.overviews(1) == [2, 4, 8]
        assert rasterio.enums.MaskFlags.per_dataset in ds.mask_flag_enums[0]
        assert not ds.get_tag_item("BLOCK_OFFSET_5_0", "TIFF", bidx=1)  # nothing there: not stored
        got, mask = np.moveaxis(ds.read(), 0, -1), ds.read_masks(1) > 0
    assert np.array_equal(mask, cov)
    assert np.abs(got[cov].astype(int) - full[cov]).max() <= 3
    expect, valid = full, cov
    for level in range(3):
        expect, valid = _masked_half(expect, valid)
        with rasterio.open(tmp_path / "o.tif", overview_level=level) as ov:
            got, mask = np.moveaxis(ov.read(), 0, -1), ov.read_masks(1) > 0
        assert np.array_equal(mask, valid)
        err = np.abs(got[valid].astype(int) - expect[valid])
        assert err.mean() < 0.8 and err.max() <= 6  # a pixel out of place would be 2-8 off on these ramps
    # blocks must come in row order: a block above the last one is refused, not written wrong
    writer = JpegCogWriter(grid.width, grid.height, [2, 4, 8], 16, 90, tmp_path)
    writer.put(32, 0, full[32:48, :16], cov[32:48, :16])
    with pytest.raises(ValueError, match="row order"):
        writer.put(0, 16, full[:16, 16:32], cov[:16, 16:32])
    writer.close()


def test_cli_mosaic_on_a_workspace_without_photos_says_to_ingest_first(tmp_path: Path, capsys) -> None:
    from skysieve import Workspace

    Workspace.create(tmp_path / "ws", crs="EPSG:4547")
    assert main(["mosaic", str(tmp_path / "ws")]) == 1
    assert "no cell has accepted photos yet" in capsys.readouterr().out
