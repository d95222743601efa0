"""The height-aware adjustment (``[mosaic] adjust = "terrain"``): the ground's heights on a coarse grid solved
with the placements, and the mosaic rendered through them. A plane adjustment bends the photos to absorb
the relief's parallax; this one recovers the heights and the placements (docs/bundle.md)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import rasterio
from ortho_scene import ORIGIN, grid_shots, make_ground, make_workspace, truth_window

from skysieve.camera import Camera, Pose, project
from skysieve.errors import MosaicError
from skysieve.mosaic.accuracy import compare_rasters
from skysieve.mosaic.adjust import Adjustment, AdjustSettings, _adjust, _cameras, _terrain_verdict, adjust
from skysieve.mosaic.matching import TiePair
from skysieve.mosaic.ortho import MosaicSettings, mosaic_cell
from skysieve.mosaic.photos import Photo, apply_homography, ground_homography
from skysieve.mosaic.solve import FlightSolution
from skysieve.mosaic.terrain import Terrain

CAM = Camera(1000, 750, 800.0)  # a wide lens: at 40 m, 5 cm/px and a 50 x 37.5 m footprint
HEIGHT = 40.0


def _relief(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A park's ground: +-1.2 m of bumps 15-20 m across on a 2 % slope (metres above the take-off plane)."""
    return 1.2 * np.sin(x / 15.0) * np.cos(y / 20.0) + 0.02 * x + 0.5


def _block(seed: int, gps: float = 0.5, relief=_relief, nx: int = 8, ny: int = 4):
    """(recorded photos, ties, the ties' true ground points) of a lawnmower block over ``relief``: 8 m
    between shots, 18 m between lines; recorded poses off by ``gps`` metres, 1 degree of yaw and 0.1 m of
    height per photo; ties are the true 3-D points seen by the true cameras plus 0.3 px of noise."""
    rng = np.random.default_rng(seed)
    true, rec = [], []
    for j in range(ny):
        for i in range(nx):
            pose = Pose(i * 8.0, j * 18.0, HEIGHT, 0.0 if j % 2 == 0 else 180.0)
            e = rng.normal(0, 1, 4)
            true.append(Photo(f"p{len(true):02d}", "", CAM, pose))
            rec.append(Photo(f"p{len(rec):02d}", "", CAM, replace(pose, x=pose.x + gps * e[0], y=pose.y + gps * e[1],
                                                                  yaw_deg=pose.yaw_deg + e[2], z=HEIGHT + 0.1 * e[3])))
    half = 0.85 * np.array([0.5 * CAM.width_px, 0.5 * CAM.height_px]) * HEIGHT / CAM.focal_px
    ties, points = [], []
    for a in range(len(true)):
        for b in range(a + 1, len(true)):
            ca, cb = np.array(true[a].centre_xy), np.array(true[b].centre_xy)
            lo, hi = np.maximum(ca, cb) - half, np.minimum(ca, cb) + half
            if np.any(hi - lo < 5):
                continue
            g = lo + rng.random((40, 2)) * (hi - lo)
            xyz = np.column_stack([g, relief(g[:, 0], g[:, 1])])
            ties.append(TiePair(a, b, project(CAM, true[a].pose, xyz) + rng.normal(0, 0.3, (40, 2)),
                                project(CAM, true[b].pose, xyz) + rng.normal(0, 0.3, (40, 2))))
            points.append(xyz)
    return rec, ties, points


def _ground_points(adj, photos, ties) -> np.ndarray:
    """Where the solution puts every tie end on the ground (lifted through its terrain, if it has one)."""
    cams = _cameras(photos, adj.homographies) if adj.terrain is not None else None
    out = []
    for t in ties:
        for k, uv in ((t.i, t.uv_i), (t.j, t.uv_j)):
            g = apply_homography(adj.homographies[k], uv)
            if cams is not None:
                c, x = cams[k], g
                for _ in range(5):
                    x = c[:2] + (g - c[:2]) * (1 - adj.terrain.sample(x) / c[2])[:, None]
                g = x
            out.append(g)
    return np.concatenate(out)


def _after_similarity_p90(got: np.ndarray, want: np.ndarray) -> float:
    """90th percentile of |got - want| once the best similarity (shift, rotation, scale) is removed: what GPS
    alone cannot fix of a block is left out."""
    c = want - want.mean(0)
    e = got - want
    one, zero = np.ones(len(c)), np.zeros(len(c))
    a = np.vstack([np.column_stack([c[:, 0], -c[:, 1], one, zero]), np.column_stack([c[:, 1], c[:, 0], zero, one])])
    b = np.concatenate([e[:, 0], e[:, 1]])
    coef, *_ = np.linalg.lstsq(a, b, rcond=None)
    return float(np.percentile(np.linalg.norm((b - a @ coef).reshape(2, -1).T, axis=1), 90))


def test_terrain_adjustment_recovers_the_relief_the_plane_adjustment_bends_to() -> None:
    rec, ties, points = _block(seed=1)
    want = np.concatenate([np.concatenate([p[:, :2], p[:, :2]]) for p in points])
    gsd = HEIGHT / CAM.focal_px
    plane = adjust(rec, ties, gsd, AdjustSettings(gps_sigma_m=0.5))
    terrain = adjust(rec, ties, gsd, AdjustSettings(gps_sigma_m=0.5, terrain_cell_m=5.0))
    assert plane.terrain is None and terrain.terrain is not None
    # the plane adjustment leaves decimetres between the photos (the parallax of +-1.5 m of relief) and bends
    # the block half a metre from true; with heights the ties close to their noise (0.3 px = 1.5 cm, per end)
    assert plane.rms_after_m > 0.08 and terrain.rms_after_m < 0.04
    bent = _after_similarity_p90(_ground_points(plane, rec, ties), want)
    held = _after_similarity_p90(_ground_points(terrain, rec, ties), want)
    assert bent > 0.4 and held < 0.08, (bent, held)
    # the heights: shape to a decimetre, level (which only the recorded altitudes set: 0.1 m each) to half a metre
    xyz = np.concatenate(points)
    dh = terrain.terrain.sample(xyz[:, :2]) - xyz[:, 2]
    assert dh.std() < 0.1 and abs(dh.mean()) < 0.5, (dh.mean(), dh.std())


def test_heights_do_not_drift_with_the_gps_error() -> None:
    """GPS fixes 1.5 m off (claimed 0.5 m): scaling every photo about its GPS position while raising the
    ground to match would pull the cameras onto their fixes at no cost to the ties; the corrections are about
    the cameras, so the ground's level and the photos' scale stay where the altitudes put them."""
    rec, ties, points = _block(seed=2, gps=1.5)
    adj = adjust(rec, ties, HEIGHT / CAM.focal_px, AdjustSettings(gps_sigma_m=0.5, terrain_cell_m=8.0))
    xyz = np.concatenate(points)
    dh = adj.terrain.sample(xyz[:, :2]) - xyz[:, 2]
    assert abs(dh.mean()) < 0.6 and dh.std() < 0.15, (dh.mean(), dh.std())  # it was 2.0 m
    assert abs(adj.flight_scale_change[""]) < 0.01  # it was 6 %


def test_flat_ground_stays_flat_and_a_photo_without_ties_keeps_its_gps_placement() -> None:
    rec, ties, _ = _block(seed=3, relief=lambda x, y: np.zeros_like(x))
    lone = Photo("zz", "", CAM, Pose(200.0, 200.0, HEIGHT, 30.0))  # far from the block: no ties
    adj = adjust(rec + [lone], ties, HEIGHT / CAM.focal_px, AdjustSettings(gps_sigma_m=0.5, terrain_cell_m=5.0))
    assert not adj.tied[-1] and adj.tied[:-1].all()
    # its camera where GPS put it, its corners within a centimetre (it follows the flight's shared scale and
    # yaw corrections, 0.03 % here, as any photo does)
    corners = np.array([[0, 0], [1000, 0], [1000, 750], [0, 750]], float)
    moved = apply_homography(adj.homographies[-1], corners) - apply_homography(ground_homography(lone), corners)
    assert adj.shift_m[-1] < 1e-9 and np.abs(moved).max() < 0.01
    # the grid covers the ties only; where the block is, the ground is the plane to the ties' height precision
    xy = np.array([[x, y] for x in range(0, 57, 4) for y in range(0, 55, 4)], float)
    assert np.abs(adj.terrain.sample(xy)).max() < 0.3


def _built_up(roof_m: float, chimney_m: float):
    """Flat ground with flat-roofed buildings ``roof_m`` tall (5 x 4 m, 9 % of the ground) and a chimney
    ``chimney_m`` tall on a corner of each: ties far above the ground, as over the demo's county (chimneys up
    to 35 m under an 80 m flight)."""
    def relief(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        roof = (np.mod(x, 17.0) < 5.0) & (np.mod(y, 13.0) < 4.0)
        chimney = (np.mod(x, 17.0) < 0.8) & (np.mod(y, 13.0) < 0.8)
        return np.where(chimney, chimney_m, np.where(roof, roof_m, 0.0))
    return relief


def _false_pair(true_poses: list[Pose], a: int, b: int, rng: np.random.Generator, n: int = 60) -> TiePair:
    """Photos ``a`` and ``b`` (apart, no overlap) matched on a repeated structure: ground under ``a`` tied to
    the ground the same way under ``b``, one consistent (wrong) homography, tens of metres off at GPS."""
    pa, pb = true_poses[a], true_poses[b]
    g = np.array([pa.x, pa.y]) + rng.uniform(-12, 12, (n, 2))
    off = np.array([pb.x - pa.x, pb.y - pa.y])
    return TiePair(a, b, project(CAM, pa, np.column_stack([g, np.zeros(n)])),
                   project(CAM, pb, np.column_stack([g + off, np.zeros(n)])))


def _true_poses(rec: list[Photo]) -> list[Pose]:
    return [replace(p.pose, x=(k % 8) * 8.0, y=(k // 8) * 18.0, z=HEIGHT, yaw_deg=0.0 if (k // 8) % 2 == 0 else 180.0)
            for k, p in enumerate(rec)]


@pytest.mark.parametrize("seed", [0, 1])
def test_a_built_up_block_with_false_matches_stays_on_gps(seed: int) -> None:
    """The demo flight's failure (adjust = "terrain": heights -50..+14 m, photos 61 m from GPS on average,
    1210 m at most, 84 % of the ties outliers): roofs and chimneys up to 44 % of the flying height, GPS 1.5 m
    off, and three pairs of photos matched on a repeated structure. The false pairs are dropped before
    adjusting, and the terrain's solution is the plane's or as close to GPS and the truth as it."""
    rec, ties, _ = _block(seed, gps=1.5, relief=_built_up(6.0, 17.0))
    true = _true_poses(rec)
    rng = np.random.default_rng(100 + seed)
    bad = [_false_pair(true, 3, 27, rng), _false_pair(true, 4, 30, rng), _false_pair(true, 10, 17, rng)]
    gsd = HEIGHT / CAM.focal_px
    truth = np.array([[p.x, p.y] for p in true])
    plane = adjust(rec, ties + bad, gsd, AdjustSettings(gps_sigma_m=1.5))
    terrain = adjust(rec, ties + bad, gsd, AdjustSettings(gps_sigma_m=1.5, terrain_cell_m=5.0))
    for adj in (plane, terrain):
        assert adj.pairs_rejected == 3 and adj.n_ties == sum(len(t.uv_i) for t in ties)
        err = np.hypot(*(_cameras(rec, adj.homographies)[:, :2] - truth).T)
        assert err.mean() < 0.6 and err.max() < 1.2, (adj.method, err.mean(), err.max())  # GPS: 1.5 m
    assert plane.method == "plane"
    assert terrain.method == "terrain" or terrain.method.startswith("plane (terrain rejected: "), terrain.method
    assert abs(terrain.shift_m.mean() - plane.shift_m.mean()) < 0.3
    assert terrain.shift_m.max() < plane.shift_m.max() + 1.0
    if terrain.terrain is not None:
        assert np.percentile(np.abs(terrain.terrain.heights), 99) < 0.3 * HEIGHT


def test_terrain_steps_never_raise_the_ground_onto_the_cameras() -> None:
    """Taller buildings (30 % of the flight) and chimneys (75 %), more iterations than the default: full
    Gauss-Newton steps used to run away (heights 1e5 m and more after 10 re-linearisations); steps are kept
    only where they lower the objective, measured in the images' pixels (in metres, raising the ground
    towards the cameras shrinks every residual)."""
    rec, ties, _ = _block(0, gps=1.5, relief=_built_up(12.0, 30.0))
    truth = np.array([[p.x, p.y] for p in _true_poses(rec)])
    adj = _adjust(rec, ties, HEIGHT / CAM.focal_px, AdjustSettings(gps_sigma_m=1.5, terrain_cell_m=5.0,
                                                                 outer_iterations=10, scale_sigma=0.01,
                                                                 scale_bias_sigma=0.0))
    err = np.hypot(*(_cameras(rec, adj.homographies)[:, :2] - truth).T)
    assert np.isfinite(adj.terrain.heights).all() and np.abs(adj.terrain.heights).max() < 0.75 * HEIGHT
    assert err.mean() < 1.5 and adj.shift_m.max() < 6.0, (err.mean(), adj.shift_m.max())
    # ... and adjust() would not keep heights this far from a flat ground: the plane's placements instead
    plane = _adjust(rec, ties, HEIGHT / CAM.focal_px, AdjustSettings(gps_sigma_m=1.5))
    assert _terrain_verdict(plane, adj, HEIGHT, AdjustSettings(gps_sigma_m=1.5)) is not None


def _fake(shift_m: float, outliers: int, rms: float, height_m: float | None = None) -> Adjustment:
    n = 10
    terrain = None
    if height_m is not None:
        terrain = Terrain(0.0, 0.0, 5.0, np.full((4, 4), height_m))
    return Adjustment(np.tile(np.eye(3), (n, 1, 1)), np.full(n, shift_m), np.zeros(n), np.zeros(n), np.ones(n, bool),
                      1.0, rms, 1000, outliers, terrain=terrain)


def test_an_implausible_terrain_solution_is_named_and_the_plane_kept() -> None:
    s = AdjustSettings(gps_sigma_m=1.5)
    plane = _fake(1.6, 10, 0.05)
    assert _terrain_verdict(plane, _fake(1.6, 10, 0.045, 0.5), 80.0, s) is None
    # the demo flight's terrain before the fix: heights to -52 m, shifts 61 m, 84 % of the ties outliers
    assert "heights to 52.0 m" in _terrain_verdict(plane, _fake(61.0, 840, 0.1, -52.0), 80.0, s)
    assert "mean shift from GPS 8.0 m" in _terrain_verdict(plane, _fake(8.0, 10, 0.05, 1.0), 80.0, s)
    assert "outliers" in _terrain_verdict(plane, _fake(1.6, 200, 0.05, 1.0), 80.0, s)
    assert "tie rms" in _terrain_verdict(plane, _fake(1.6, 10, 0.1, 1.0), 80.0, s)


def test_terrain_grid_is_bilinear_and_round_trips_through_json() -> None:
    t = Terrain.covering(np.array([[0.0, 0.0], [20.0, 12.0]]), 4.0)
    xs, ys = np.meshgrid(t.x_min + 4.0 * np.arange(t.shape[1]), t.y_max - 4.0 * np.arange(t.shape[0]))
    t = t.with_heights(0.1 * xs - 0.05 * ys + 3)  # a plane: bilinear interpolation is exact
    pts = np.random.default_rng(0).uniform([0, 0], [20, 12], (50, 2))  # the grid covers these
    np.testing.assert_allclose(t.sample(pts), 0.1 * pts[:, 0] - 0.05 * pts[:, 1] + 3, atol=1e-9)
    idx, w = t.weights(pts)
    np.testing.assert_allclose(w.sum(1), 1.0)
    assert (w >= 0).all() and ((idx >= 0) & (idx < t.heights.size)).all()
    back = Terrain.from_json(json.loads(json.dumps(t.to_json())))
    np.testing.assert_allclose(back.sample(pts), t.sample(pts), atol=1e-3)
    assert t.sample(np.array([[-50.0, 6.0]]))[0] == pytest.approx(t.sample(np.array([[t.x_min, 6.0]]))[0])


def test_a_cached_solution_from_before_terrain_reads_as_a_plane_one() -> None:
    d = {"placements": {}, "unreadable": {}, "photos": 0, "pairs_tried": 0, "pairs_matched": 0, "tie_points": 0,
         "tie_outliers": 0, "rms_before_m": 0.0, "rms_after_m": 0.0, "mean_abs_yaw_change_deg": 0.0}
    old = FlightSolution.from_json(d)
    assert old.terrain is None and old.adjust == "plane" and old.pairs_rejected == 0


def test_unknown_adjust_is_an_error_with_a_hint() -> None:
    with pytest.raises(MosaicError, match="adjust"):
        MosaicSettings(adjust="bundle").adjustment()
    with pytest.raises(MosaicError, match="terrain_cell_m"):
        MosaicSettings(adjust="terrain", terrain_cell_m=0).adjustment()


SCENE_CAM = Camera(400, 300, 400.0)  # 30 m up: 7.5 cm/px, a 30 x 22.5 m footprint


def _scene_relief(x, y):
    """+-1.5 m of bumps on a 3 % slope over the scene (metres above the take-off plane)."""
    u, v = x - ORIGIN[0], y - ORIGIN[1]
    return 1.5 * np.sin(u / 12.0) * np.cos(v / 15.0) + 0.03 * (u - 40)


def test_mosaic_over_relief_sits_on_the_true_ortho_with_terrain_and_not_with_the_plane(tmp_path: Path) -> None:
    """Photos rendered over a bumpy, sloping ground (ray against relief): the plane mosaic is bent by the
    relief's parallax, the terrain mosaic sits on the true ortho and its dsm.tif holds the relief."""
    ground = make_ground(100.0, 0.05, seed=5)
    shots = grid_shots(SCENE_CAM, 30.0, 20, 20, 7, 4, 6.0, 10.0, gps_sigma_m=0.5, seed=3)
    ws = make_workspace(tmp_path / "ws", ground, shots, height=_scene_relief)
    cell = "E576000N5188000"
    out = {}
    for name in ("plane", "terrain"):
        report = mosaic_cell(ws.root, cell, MosaicSettings(gps_sigma_m=0.5, adjust=name), force=True)
        with rasterio.open(report["ortho"]) as ds:
            rgb, valid, b, gsd = np.moveaxis(ds.read([1, 2, 3]), 0, -1), ds.read_masks(1) > 0, ds.bounds, ds.res[0]
        truth = truth_window(ground, (b.left, b.bottom, b.right, b.top), gsd)
        out[name] = (report, compare_rasters(rgb, truth, valid, gsd, patch_px=64))
    (plane, bent), (terrain, held) = out["plane"], out["terrain"]
    assert plane["surface"] == "plane" and plane["dsm"] is None
    assert terrain["surface"] == "terrain" and terrain["terrain_cell_m"] == 5.0
    assert bent.n_patches >= 50 and held.n_patches >= 50
    # measured: 12.6 px (after the block's similarity 12.6) against 1.3 px (0.6)
    assert bent.local_p90_px > 8 and bent.local_p90_px_after_similarity > 8
    assert held.local_p90_px < 3 and held.local_p90_px_after_similarity < 1.5, held.as_dict()
    assert terrain["tie_rms_after_px"] < 0.8 * plane["tie_rms_after_px"]
    # dsm.tif: the heights it was rendered through, the relief to a few decimetres where the photos are
    with rasterio.open(terrain["dsm"]) as ds:
        h = ds.read(1)
        rows, cols = np.mgrid[0:ds.height, 0:ds.width]
        x, y = rasterio.transform.xy(ds.transform, rows.ravel(), cols.ravel())
    x, y = np.asarray(x), np.asarray(y)
    inside = (x > ORIGIN[0] + 25) & (x < ORIGIN[0] + 65) & (y > ORIGIN[1] + 25) & (y < ORIGIN[1] + 55)
    err = h.ravel()[inside] - _scene_relief(x[inside], y[inside])
    assert abs(err.mean()) < 0.4 and err.std() < 0.25, (err.mean(), err.std())
