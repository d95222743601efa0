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
