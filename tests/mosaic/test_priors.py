"""The adjustment's yaw and scale priors on a simulated block of tie points (no images: the ties are the true
ground points seen by the true cameras, plus pixel noise), against bounds worked out from the noise.

The block's rotation and scale are what ties cannot see; GPS alone sets them to about
``gps_sigma / sqrt(sum of squared distances from the block's centre)`` (one component, radians or relative
scale). Yaw and altitude priors can only do better where their error averages down over the photos: not the
part a flight's photos share (a compass bias, a take-off point above the surveyed ground).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from skysieve.camera import Camera, Pose
from skysieve.mosaic.adjust import AdjustSettings, adjust
from skysieve.mosaic.matching import TiePair
from skysieve.mosaic.photos import Photo, apply_homography, ground_homography

CAM = Camera(1000, 750, 1000.0)  # at 60 m: 6 cm/px, a 60 x 45 m footprint
HEIGHT = 60.0
GPS = 1.5


def _block(seed: int, nx: int = 8, ny: int = 5, yaw_iid: float = 1.0, z_iid: float = 0.15, yaw_bias: float = 0.0,
           z_bias: float = 0.0, flights: int = 1) -> tuple[list[Photo], list[Photo], list[TiePair]]:
    """(true photos, recorded photos, ties) of a lawnmower block, 80 % forward and ~50 % side overlap.
    Recorded poses: GPS off by ``GPS`` metres (i.i.d.), yaw by ``yaw_iid`` degrees per photo plus ``yaw_bias``
    shared, height by ``z_iid`` metres per photo plus ``z_bias`` shared; with ``flights`` > 1 the lines are
    split among that many flights, flight k's biases multiplied by (-1)^k."""
    rng = np.random.default_rng(seed)
    true, rec = [], []
    for j in range(ny):
        flight = j * flights // ny
        sign = (-1) ** flight
        for i in range(nx):
            pose = Pose(i * 12.0, j * 22.0, HEIGHT, 0.0 if j % 2 == 0 else 180.0, -90.0, 0.0)
            e = rng.normal(0, 1, 4)
            noisy = replace(pose, x=pose.x + GPS * e[0], y=pose.y + GPS * e[1],
                            yaw_deg=pose.yaw_deg + sign * yaw_bias + yaw_iid * e[2], z=HEIGHT + sign * z_bias + z_iid * e[3])
            name = f"p{len(true):03d}"
            true.append(Photo(name, "", CAM, pose, flight_id=f"f{flight}"))
            rec.append(Photo(name, "", CAM, noisy, flight_id=f"f{flight}"))
    to_px = [np.linalg.inv(ground_homography(p)) for p in true]
    half = np.array([30.0, 22.5])
    ties = []
    for a in range(len(true)):
        for b in range(a + 1, len(true)):
            ca, cb = np.array(true[a].centre_xy), np.array(true[b].centre_xy)
            lo, hi = np.maximum(ca, cb) - half + 1, np.minimum(ca, cb) + half - 1
            if np.any(hi - lo < 5):
                continue
            g = lo + rng.random((30, 2)) * (hi - lo)
            ties.append(TiePair(a, b, apply_homography(to_px[a], g) + rng.normal(0, 0.3, (30, 2)),
                                apply_homography(to_px[b], g) + rng.normal(0, 0.3, (30, 2))))
    return true, rec, ties


def _block_error(true: list[Photo], homographies: np.ndarray) -> tuple[float, float]:
    """(rotation in radians, relative scale) of the solved placements against the true ones, fitted over all
    photos as one similarity (shift removed)."""
    uv = np.array([[u, v] for u in (100, 500, 900) for v in (100, 375, 650)], float)
    got = np.concatenate([apply_homography(h, uv) for h in homographies])
    want = np.concatenate([apply_homography(ground_homography(p), uv) for p in true])
    got, want = got - got.mean(0), want - want.mean(0)
    z_got, z_want = got[:, 0] + 1j * got[:, 1], want[:, 0] + 1j * want[:, 1]
    s = np.vdot(z_want, z_got) / np.vdot(z_want, z_want)
    return float(np.angle(s)), float(abs(s) - 1)


def _gps_limit(photos: list[Photo]) -> float:
    """One component's sigma of the block's rotation (radians) or scale that GPS alone gives."""
    c = np.array([p.centre_xy for p in photos])
    return GPS / math.sqrt(((c - c.mean(0)) ** 2).sum())


def _solve(rec: list[Photo], ties: list[TiePair], settings: AdjustSettings):
    return adjust(rec, ties, CAM.gsd_m(HEIGHT), settings)


# the priors before the shared terms: every photo's yaw and scale independent, nothing shared by the flight
PER_PHOTO_ONLY = dict(yaw_bias_sigma_deg=0.0, scale_bias_sigma=0.0)
# a shared yaw and scale per flight, loose: a compass off by degrees, a take-off point metres above the ground
SHARED = dict(yaw_bias_sigma_deg=3.0, scale_bias_sigma=0.05)


def _pull(sigma_gps: float, sigma_prior_block: float) -> float:
    """Fraction of a shared metadata error the block takes on: the prior's weight against GPS's."""
    return sigma_prior_block ** -2 / (sigma_gps ** -2 + sigma_prior_block ** -2)


def test_flight_shared_terms_keep_a_biased_compass_and_altitude_out_of_the_block() -> None:
    # a compass 4 degrees off and a take-off point 6 m above the surveyed ground (scale 10 % off)
    true, rec, ties = _block(seed=3, yaw_bias=4.0, z_bias=6.0)
    sigma = _gps_limit(true)  # ~0.0057 for these 40 photos over ~90 x 90 m
    rot, scale = _block_error(true, _solve(rec, ties, AdjustSettings(gps_sigma_m=GPS, **SHARED)).homographies)
    # the shared terms take the bias: the block is where GPS puts it (3 sigma, plus the shared prior's pull:
    # (sigma / 3 degrees)^2 of 4 degrees and (sigma / 5 %)^2 of 10 %, ~0.001 each)
    assert abs(rot) < 3 * sigma + 0.001 and abs(scale) < 3 * sigma + 0.001, (rot, scale, sigma)
    # per-photo priors alone average the bias in as if it were noise, and the block is dragged towards it
    # (rows on a12, a21 (a11, a22) each: a photo's rotation (scale) prior is sigma / sqrt(2); over 40 photos
    # 3.5 degrees / sqrt(40) pulls ~13 % of 4 degrees, 3.5 % / sqrt(40) ~50 % of 10 %)
    old = _solve(rec, ties, AdjustSettings(gps_sigma_m=GPS, **PER_PHOTO_ONLY))
    rot_old, scale_old = _block_error(true, old.homographies)
    assert abs(scale_old) > 0.03 > 5 * abs(scale)
    assert abs(rot_old) > 0.006 > abs(rot)


def test_default_shared_scale_keeps_most_of_a_high_takeoff_out_of_the_block() -> None:
    # the recorded altitudes all 3 m high (a take-off point above the ground): every photo 5 % too large
    bias = HEIGHT / (HEIGHT + 3.0) - 1
    got: dict[str, list[float]] = {"default": [], "per photo": []}
    for seed in range(4, 8):
        true, rec, ties = _block(seed=seed, z_bias=3.0)
        n, sigma = len(true), _gps_limit(true)
        for name, settings in (("default", AdjustSettings(gps_sigma_m=GPS)),
                               ("per photo", AdjustSettings(gps_sigma_m=GPS, **PER_PHOTO_ONLY))):
            # the block's scale error: the prior's pull towards the recorded altitudes, about GPS's noise
            prior = math.hypot(settings.scale_bias_sigma, settings.scale_sigma / math.sqrt(2 * n))
            expected = _pull(sigma, prior) * -bias  # default ~0.0095, per photo ~0.024
            error = _block_error(true, _solve(rec, ties, settings).homographies)[1]
            assert abs(error - expected) < 3 * sigma * math.sqrt(1 - _pull(sigma, prior)), (name, seed, error, expected)
            got[name].append(error)
    assert np.mean(got["default"]) < 0.6 * np.mean(got["per photo"]), got


def test_trusted_metadata_pins_the_block_better_than_gps() -> None:
    """Where yaw and height errors really are independent per photo (the simulator's), tight per-photo priors
    set the block's rotation and scale to sigma_photo / sqrt(2 n), well inside GPS's limit."""
    yaw_sigma, scale_sigma = 1.0, 0.005  # the recorded yaw's and height's (0.15 m of 60 m: 0.25 %) noise, rounded up
    trusted = AdjustSettings(gps_sigma_m=GPS, yaw_sigma_deg=yaw_sigma, scale_sigma=scale_sigma, **PER_PHOTO_ONLY)
    errs_gps, errs_trusted = [], []
    for seed in range(3):
        true, rec, ties = _block(seed=seed)
        errs_gps.append(_block_error(true, _solve(rec, ties, AdjustSettings(gps_sigma_m=GPS, **SHARED)).homographies))
        errs_trusted.append(_block_error(true, _solve(rec, ties, trusted).homographies))
    n, sigma = len(true), _gps_limit(true)
    expect_rot = 1 / math.sqrt(1 / sigma ** 2 + 2 * n / math.radians(yaw_sigma) ** 2)
    expect_scale = 1 / math.sqrt(1 / sigma ** 2 + 2 * n / scale_sigma ** 2)
    assert expect_rot < 0.4 * sigma and expect_scale < 0.2 * sigma
    rms = np.sqrt(np.mean(np.square(errs_trusted), axis=0))
    assert rms[0] < 2.5 * expect_rot and rms[1] < 2.5 * expect_scale, (rms, expect_rot, expect_scale)
    # loose shared terms leave the block to GPS: errors of the order of sigma, larger than trusted
    rms_gps = np.sqrt(np.mean(np.square(errs_gps), axis=0))
    assert rms_gps.max() < 3 * sigma and np.hypot(*rms) < 0.5 * np.hypot(*rms_gps), (rms, rms_gps)


def test_each_flight_gets_its_own_shared_correction() -> None:
    # two flights over one block, their compasses 3 degrees off either way, heights 2 m off either way
    true, rec, ties = _block(seed=5, yaw_bias=3.0, z_bias=2.0, flights=2)
    sigma = _gps_limit(true)
    adj = _solve(rec, ties, AdjustSettings(gps_sigma_m=GPS, **SHARED))
    assert set(adj.flight_yaw_change_deg) == set(adj.flight_scale_change) == {"f0", "f1"}
    # each flight's correction undoes its own bias: yaw turned back (clockwise degrees), scale
    # HEIGHT / (HEIGHT + bias) - 1; to GPS's limit for the block plus each flight's 1 degree / 0.25 % per-photo
    # noise averaged over its 16 or 24 photos
    for flight, sign in (("f0", 1), ("f1", -1)):
        assert abs(adj.flight_yaw_change_deg[flight] + sign * 3.0) < math.degrees(3 * sigma) + 0.75
        assert abs(adj.flight_scale_change[flight] - (HEIGHT / (HEIGHT + sign * 2.0) - 1)) < 3 * sigma + 0.002
    # the per-photo-only prior pulls each flight's photos towards their recorded values instead
    old = _solve(rec, ties, AdjustSettings(gps_sigma_m=GPS, **PER_PHOTO_ONLY))
    for flight, sign in (("f0", 1), ("f1", -1)):
        want = HEIGHT / (HEIGHT + sign * 2.0) - 1
        assert abs(old.flight_scale_change[flight] - want) > abs(adj.flight_scale_change[flight] - want)


def test_the_shared_terms_are_set_from_skysieve_toml(tmp_path) -> None:
    # a county whose drones take off from rooftops loosens the shared scale in the workspace's settings
    from skysieve.mosaic.ortho import MosaicSettings
    from skysieve.workspace import Workspace

    ws = Workspace.create(tmp_path / "ws", crs="EPSG:4547")
    assert ws.section("mosaic", MosaicSettings).adjustment().scale_bias_sigma == 0.01
    ws.save_section("mosaic", {"scale_bias_sigma": 0.03, "yaw_bias_sigma_deg": 2.0})
    adj = Workspace.open(ws.root).section("mosaic", MosaicSettings).adjustment()
    assert (adj.scale_bias_sigma, adj.yaw_bias_sigma_deg) == (0.03, 2.0)
