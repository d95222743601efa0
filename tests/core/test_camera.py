"""Pinhole geometry: project and backproject invert each other; yaw, tilt and scale behave physically."""

from __future__ import annotations

import numpy as np
import pytest

from skysieve.camera import Camera, Pose, backproject, footprint, off_nadir_deg, project

FC300S = Camera.from_sensor(4000, 2250, focal_mm=3.61, sensor_width_mm=6.17)


def test_brighton_scale() -> None:
    # 39.8 m above ground: GSD about 1.7 cm/px, footprint about 68 x 38 m (the real flight's figures)
    assert FC300S.gsd_m(39.8) == pytest.approx(0.0170, abs=0.0002)
    fp = footprint(FC300S, Pose(0, 0, 39.8))
    minx, miny, maxx, maxy = fp.bounds
    assert maxx - minx == pytest.approx(68.0, rel=0.01) and maxy - miny == pytest.approx(38.3, rel=0.01)


def test_yaw_turns_the_top_edge() -> None:
    top_centre = np.array([[2000, 0]])
    # yaw 0: image top faces north
    x, y = backproject(FC300S, Pose(0, 0, 40), top_centre)[0]
    assert x == pytest.approx(0, abs=1e-6) and y > 0
    # yaw 90: image top faces east
    x, y = backproject(FC300S, Pose(0, 0, 40, yaw_deg=90), top_centre)[0]
    assert x > 0 and y == pytest.approx(0, abs=1e-6)
    # right edge at yaw 0 is east
    x, y = backproject(FC300S, Pose(0, 0, 40), np.array([[4000, 1125]]))[0]
    assert x > 0 and y == pytest.approx(0, abs=1e-6)


def test_round_trip_with_tilt_and_roll() -> None:
    pose = Pose(500.0, 1000.0, 60.0, yaw_deg=-132.0, pitch_deg=-84.0, roll_deg=2.0)
    uv = np.array([[0, 0], [3999, 0], [1234.5, 987.25], [4000, 2250]], dtype=float)
    ground = backproject(FC300S, pose, uv, ground_z=3.0)
    back = project(FC300S, pose, np.column_stack([ground, np.full(len(ground), 3.0)]))
    np.testing.assert_allclose(back, uv, atol=1e-6)
    assert off_nadir_deg(pose) == pytest.approx(np.degrees(np.arccos(np.cos(np.radians(6)) * np.cos(np.radians(2)))), abs=1e-6)


def test_tilt_moves_centre_forward() -> None:
    # pitch -80 looks 10 degrees towards the image top (north at yaw 0)
    x, y = backproject(FC300S, Pose(0, 0, 50, pitch_deg=-80), np.array([[2000, 1125]]))[0]
    assert y == pytest.approx(50 * np.tan(np.radians(10)), rel=1e-6) and x == pytest.approx(0, abs=1e-6)


def test_horizon_has_no_footprint() -> None:
    with pytest.raises(ValueError, match="horizon"):
        footprint(FC300S, Pose(0, 0, 50, pitch_deg=-10))
