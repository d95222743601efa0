"""Work the rendering saves without changing a pixel: photos decoded only for the windows their seams reach
(render._decode_plan), a photo on a border between cells decoded once for the run (render.DecodedPhotos),
and overviews halved with OpenCV's 2 x 2 mean except along the coverage's edge (cog.halve)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import rasterio
from ortho_scene import grid_shots, make_ground, make_workspace

import skysieve.mosaic.render as render
from skysieve.camera import Camera
from skysieve.mosaic.cog import halve
from skysieve.mosaic.ortho import MosaicSettings, build_mosaics

CAM = Camera(400, 300, 400.0)  # 30 m up: 7.5 cm/px, 30 x 22.5 m footprint


def _halve_reference(rgb: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean of the covered pixels of each 2 x 2 (odd edges padded uncovered), rounded halves up."""
    h, w = cov.shape
    h2, w2 = -(-h // 2), -(-w // 2)
    x = np.zeros((2 * h2, 2 * w2, 3), np.int64)
    x[:h, :w] = rgb * cov[..., None]
    m = np.zeros((2 * h2, 2 * w2), np.int64)
    m[:h, :w] = cov
    s, n = x.reshape(h2, 2, w2, 2, 3).sum((1, 3)), m.reshape(h2, 2, w2, 2).sum((1, 3))
    mean = (s + n[..., None] // 2) // np.maximum(n, 1)[..., None]
    return np.where(n[..., None] > 0, mean, 0).astype(np.uint8), n > 0


def test_halve_is_the_covered_mean_of_each_2x2() -> None:
    rng = np.random.default_rng(0)
    for trial in range(150):
        h, w = (int(v) for v in rng.integers(1, 40, 2))
        rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        cov = rng.random((h, w)) < (0.5, 0.97, 1.0)[trial % 3]
        out, covered = halve(rgb, cov)
        ref, ref_cov = _halve_reference(rgb, cov)
        assert np.array_equal(covered, ref_cov) and np.array_equal(out, ref), (h, w)
    # a tile as the COG writer passes it: a strided view of a band, covered up to a slanted edge
    band = rng.integers(0, 256, (512, 1536, 3), dtype=np.uint8)
    yy, xx = np.mgrid[:512, :1536]
    cov = (xx + 0.7 * yy) < 900
    out, covered = halve(band[:, 512:1024], cov[:, 512:1024])
    ref, ref_cov = _halve_reference(band[:, 512:1024], cov[:, 512:1024])
    assert np.array_equal(out, ref) and np.array_equal(covered, ref_cov)
    assert 0 < covered.mean() < 1


def _build(ws, monkeypatch: pytest.MonkeyPatch, saving: bool, budget: int | None = None) -> tuple[dict, Counter]:
    """Every cell built in this process; its pixels, and the photos decoded for rendering (per photo).
    ``budget``: bytes of decoded photos kept between cells (default: the most the rendering held at once)."""
    decodes: Counter = Counter()
    real = render.decode_for_render

    def counted(pp, gsd_m):
        decodes[pp.photo.image_id] += 1
        return real(pp, gsd_m)

    with monkeypatch.context() as m:
        m.setattr(render, "decode_for_render", counted)
        if not saving:  # as before: every photo whose footprint reaches a window, decoded again per cell
            m.setattr(render, "_decode_plan",
                      lambda placed, grid, wins, needs, seams, band_px: (needs, [False] * len(needs)))
            m.setattr(render.DecodedPhotos, "offer", lambda self, key, decoded: None)
        if budget is not None:
            m.setattr(render.DecodedPhotos, "in_flight", lambda self, nbytes: setattr(self, "budget", budget))
        reports = build_mosaics(ws, workers=1, force=True, settings=MosaicSettings(window_px=128))
    out = {}
    for r in reports:
        if r["status"] == "built":
            with rasterio.open(r["ortho"]) as ds:
                out[r["cell_id"]] = (ds.read(), ds.read_masks(1), ds.read(1, out_shape=(ds.height // 2, ds.width // 2)))
    return out, decodes


def test_rendering_decodes_less_and_draws_the_same_pixels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # 4 x 3 photos over 20 m cells: every cell shares photos with its neighbours
    ground = make_ground(80.0, 0.05, seed=3)
    ws = make_workspace(tmp_path / "ws", ground, grid_shots(CAM, 30.0, 18, 20, 4, 3, 9.0, 9.0, gps_sigma_m=1.0),
                        cell_size_m=20.0)
    before, decodes_before = _build(ws, monkeypatch, saving=False)
    after, decodes_after = _build(ws, monkeypatch, saving=True)
    roomy, decodes_roomy = _build(ws, monkeypatch, saving=True, budget=1 << 30)
    assert len(before) >= 4 and before.keys() == after.keys() == roomy.keys()
    for cell in before:  # the same mosaic, overviews included
        for a, b, c in zip(before[cell], after[cell], roomy[cell], strict=True):
            assert np.array_equal(a, b) and np.array_equal(a, c), cell
    # before, border photos were decoded once per cell that they reach (and for windows their seams do not
    # reach); now fewer, and each once per run when the budget allows
    assert max(decodes_before.values()) >= 3
    assert sum(decodes_after.values()) < sum(decodes_before.values())
    assert max(decodes_roomy.values()) == 1 and sum(decodes_roomy.values()) <= sum(decodes_after.values())


def test_jpeg_cog_of_whole_tiles_is_the_file_blocks_of_any_shape_make(tmp_path: Path) -> None:
    """Whole tiles (the renderer's windows) skip the band a level-0 tile row is otherwise copied into; the
    file is the same byte for byte as from blocks that straddle tiles, or from a row mixing both."""
    from pyproj import CRS

    from skysieve.mosaic.cog import overview_factors
    from skysieve.mosaic.cogjpeg import JpegCogWriter, geokeys
    from skysieve.mosaic.render import OutputGrid, windows

    grid = OutputGrid(576000.0, 5188000.0, 0.05, 88, 64)  # 6 x 4 tiles of 16, the last column 8 wide
    yy, xx = np.mgrid[0:grid.height, 0:grid.width]
    full = np.stack([xx * 2, yy * 3, (xx + yy) % 256], -1).astype(np.uint8)
    cov = ((xx - 40) ** 2 + (yy - 30) ** 2 < 26 ** 2) | ((yy > 50) & (xx > 70))
    full[~cov] = 0

    def write(name: str, pieces) -> bytes:
        writer = JpegCogWriter(grid.width, grid.height, overview_factors(grid.width, grid.height, 16), 16, 90,
                               tmp_path)
        for row, col, h, w in pieces:
            sl = (slice(row, row + h), slice(col, col + w))
            if cov[sl].any():
                writer.put(row, col, full[sl].copy(), cov[sl].copy())
        writer.finish(tmp_path / name, grid.transform, geokeys(CRS.from_epsg(32615)), {"K": "v"})
        return (tmp_path / name).read_bytes()

    def blocks(size: int):
        return [(w.row_off, w.col_off, w.height, w.width) for w in windows(grid, size)]

    tiles = write("tiles.tif", blocks(16))
    assert tiles == write("straddling.tif", blocks(24))
    # tile row 1: two whole tiles, then 8-pixel pieces (a band opened after tiles put whole)
    mixed = [b for b in blocks(16) if b[0] != 16]
    mixed += [(16, 0, 16, 16), (16, 16, 16, 16)] + [(16, c, 16, 8) for c in range(32, 88, 8)]
    assert tiles == write("mixed.tif", sorted(mixed))
    with rasterio.open(tmp_path / "tiles.tif") as ds:
        assert ds.overviews(1) == [2, 4, 8] and np.array_equal(ds.read_masks(1) > 0, cov)


def test_jpeg_cog_writer_refuses_a_block_that_reaches_back_to_a_tile_put_whole(tmp_path: Path) -> None:
    """A whole tile is encoded as it comes: a later block left of it in its tile row would be lost or shift
    every tile after it, so the writer says so instead."""
    from skysieve.mosaic.cogjpeg import JpegCogWriter

    writer = JpegCogWriter(64, 32, [2], 16, 90, tmp_path)
    rgb, cov = np.full((16, 16, 3), 7, np.uint8), np.ones((16, 16), bool)
    writer.put(0, 16, rgb, cov)  # tile (0, 1) whole: tile (0, 0) was empty
    with pytest.raises(ValueError, match="tile order"):
        writer.put(0, 0, rgb, cov)
    with pytest.raises(ValueError, match="tile order"):
        writer.put(0, 8, rgb[:, :8], cov[:, :8])
    writer.put(0, 32, rgb, cov)  # onwards in order is fine
    writer.close()
