"""``skysieve import-ortho``: an orthophoto made elsewhere, in another CRS, reprojected and cut into cells."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from ortho_scene import CRS, make_ground, truth_window
from rasterio.warp import Resampling, calculate_default_transform, reproject

from skysieve.cli import main
from skysieve.errors import MosaicError
from skysieve.mosaic.accuracy import compare_rasters
from skysieve.mosaic.import_ortho import import_ortho
from skysieve.workspace import Workspace


@pytest.fixture(scope="module")
def ground():
    return make_ground(80.0, 0.1, seed=5)  # 80 m square from (576000, 5188000): 2 x 2 cells of 40 m


@pytest.fixture(scope="module")
def odm_ortho(ground, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ground as an ODM-style RGBA GeoTIFF in WGS 84 longitude/latitude."""
    path = tmp_path_factory.mktemp("odm") / "odm_orthophoto.tif"
    h, w = ground.rgb.shape[:2]
    left, top = ground.transform.c, ground.transform.f
    bounds = (left, top - h * 0.1, left + w * 0.1, top)
    dst_t, dw, dh = calculate_default_transform(CRS, "EPSG:4326", w, h, *bounds)
    out = np.zeros((4, dh, dw), np.uint8)
    for b in range(3):
        reproject(ground.rgb[..., b], out[b], src_transform=ground.transform, src_crs=CRS, dst_transform=dst_t,
                  dst_crs="EPSG:4326", resampling=Resampling.bilinear)
    reproject(np.full((h, w), 255, np.uint8), out[3], src_transform=ground.transform, src_crs=CRS,
              dst_transform=dst_t, dst_crs="EPSG:4326", resampling=Resampling.nearest)
    with rasterio.open(path, "w", driver="GTiff", width=dw, height=dh, count=4, dtype="uint8", crs="EPSG:4326",
                       transform=dst_t, photometric="RGB", alpha="YES") as ds:
        ds.write(out)
    return path


def test_import_cuts_the_orthophoto_into_cells_in_the_workspace_crs(tmp_path: Path, ground, odm_ortho: Path) -> None:
    ws = Workspace.create(tmp_path / "ws", crs=CRS, cell_size_m=40.0)
    reports = import_ortho(ws, odm_ortho, gsd_m=0.1)
    assert sorted(r["cell_id"] for r in reports) == [f"E{576000 + 40 * i}N{5188000 + 40 * j}" for i in range(2)
                                                      for j in range(2)]
    for r in reports:
        assert r["cell_covered"] > 0.95
        with rasterio.open(r["ortho"]) as ds:
            assert ds.crs.to_epsg() == 32615 and ds.res == (0.1, 0.1) and ds.profile["tiled"]
            rgb = np.moveaxis(ds.read([1, 2, 3]), 0, -1)
            valid = ds.read_masks(1) > 0
            b = ds.bounds
        truth = truth_window(ground, (b.left, b.bottom, b.right, b.top), 0.1)
        misfit = compare_rasters(rgb, truth, valid, 0.1, patch_px=64)
        assert misfit.n_patches >= 4 and misfit.mean_offset_m < 0.05 and misfit.local_p90_px < 0.5
        assert json.loads((Path(r["ortho"]).parent / "ortho.json").read_text())["source"].endswith("odm_orthophoto.tif")


def test_import_cli_and_bad_files(tmp_path: Path, odm_ortho: Path, capsys: pytest.CaptureFixture) -> None:
    ws = Workspace.create(tmp_path / "ws", crs=CRS, cell_size_m=250.0)
    assert main(["import-ortho", str(ws.root), str(odm_ortho), "--gsd", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "cut into 1 cells" in out and "E576000N5188000: 10% covered" in out
    plain = tmp_path / "plain.tif"  # no georeferencing
    with rasterio.open(plain, "w", driver="GTiff", width=8, height=8, count=3, dtype="uint8") as ds:
        ds.write(np.zeros((3, 8, 8), np.uint8))
    with pytest.raises(MosaicError, match="no CRS"):
        import_ortho(ws, plain)
    not_tiff = tmp_path / "notes.tif"
    not_tiff.write_text("not a raster")
    assert main(["import-ortho", str(ws.root), str(not_tiff)]) == 1
    assert "cannot open" in capsys.readouterr().err


def _rgb_tif(path: Path, crs: str, left: float, top: float, w: int, h: int, gsd: float) -> Path:
    from affine import Affine

    rng = np.random.default_rng(1)
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=4, dtype="uint8", crs=crs,
                       transform=Affine(gsd, 0, left, 0, -gsd, top), photometric="RGB", alpha="YES") as ds:
        ds.write(np.concatenate([rng.integers(40, 200, (3, h, w), dtype=np.uint8), np.full((1, h, w), 255, np.uint8)]))
    return path


def test_a_sliver_leaves_the_neighbouring_cell_as_it_was(tmp_path: Path, odm_ortho: Path) -> None:
    """An ortho reaching 0.1 m into a cell whose mosaic exists: that mosaic stays (it was overwritten, then
    deleted by the sliver rule, its report still saying "built")."""
    ws = Workspace.create(tmp_path / "ws", crs=CRS, cell_size_m=40.0)
    import_ortho(ws, odm_ortho, gsd_m=0.1)
    cell = ws.cell_dir("E576040N5188000")
    before = (cell / "ortho.tif").read_bytes()
    # 39.9 m wide, ending 0.1 m inside the cell east of x = 576040 (margin 0: no buffer into neighbours)
    sliver = _rgb_tif(tmp_path / "sliver.tif", CRS, 576000.2, 5188039.0, 399, 100, 0.1)  # 1 m² in the east cell
    reports = import_ortho(ws, sliver, gsd_m=0.1, margin_m=0.0)
    assert "E576040N5188000" not in {r["cell_id"] for r in reports}
    assert (cell / "ortho.tif").read_bytes() == before
    assert not list(cell.glob(".ortho.*"))


def test_an_ortho_outside_the_workspace_area_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ws = Workspace.create(tmp_path / "ws", crs="EPSG:4547")  # China, 112.5-115.5 E
    paris = _rgb_tif(tmp_path / "paris.tif", "EPSG:32631", 448000.0, 5412000.0, 64, 64, 0.05)
    assert main(["import-ortho", str(ws.root), str(paris)]) == 1
    err = capsys.readouterr().err
    assert "outside the workspace's area" in err and "skysieve init" in err
    assert ws.cells() == []  # no cell made in the wrong place


def test_mosaic_keeps_an_imported_cell_unless_forced(tmp_path: Path, odm_ortho: Path) -> None:
    from skysieve.mosaic.ortho import _kept

    ws = Workspace.create(tmp_path / "ws", crs=CRS, cell_size_m=40.0)
    r = import_ortho(ws, odm_ortho, gsd_m=0.1)[0]
    cell_dir = Path(r["ortho"]).parent
    assert _kept(cell_dir, "the photos' digest")["source"].endswith("odm_orthophoto.tif")
    (cell_dir / "ortho.tif").unlink()
    assert _kept(cell_dir, "the photos' digest") is None  # the report alone is not an imported mosaic


def test_palette_images_and_odd_pixel_sizes_are_refused(tmp_path: Path, odm_ortho: Path) -> None:
    """A palette TIFF was imported as its colour indices (near black); --gsd 0.0001 ground for minutes."""
    from affine import Affine

    ws = Workspace.create(tmp_path / "ws", crs=CRS, cell_size_m=40.0)
    pal = tmp_path / "palette.tif"
    with rasterio.open(pal, "w", driver="GTiff", width=32, height=32, count=1, dtype="uint8", crs=CRS,
                       transform=Affine(0.1, 0, 576000, 0, -0.1, 5188040), photometric="palette") as ds:
        ds.write(np.zeros((1, 32, 32), np.uint8))
        ds.write_colormap(1, {0: (10, 200, 30, 255), 1: (0, 0, 0, 255)})
    with pytest.raises(MosaicError, match="palette"):
        import_ortho(ws, pal)
    for gsd, needle in ((0.0001, "outside 0.005 to 2 m"), (0.0, "outside 0.005 to 2 m"), (0.01, "4 times finer")):
        with pytest.raises(MosaicError, match=needle):
            import_ortho(ws, odm_ortho, gsd_m=gsd)


def test_an_ortho_without_nodata_or_alpha_is_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Its black border (a rotated export's corners) would count as ground: say how to mark it."""
    from affine import Affine

    ws = Workspace.create(tmp_path / "ws", crs=CRS, cell_size_m=40.0)
    path = tmp_path / "plain_rgb.tif"
    with rasterio.open(path, "w", driver="GTiff", width=200, height=200, count=3, dtype="uint8", crs=CRS,
                       transform=Affine(0.1, 0, 576000, 0, -0.1, 5188040)) as ds:
        ds.write(np.full((3, 200, 200), 120, np.uint8))
    import_ortho(ws, path)
    assert "neither nodata nor alpha" in caplog.text and "gdal_edit.py -a_nodata 0" in caplog.text
