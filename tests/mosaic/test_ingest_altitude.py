"""Height above ground: XMP, GPS relative to a proven take-off altitude, the image-based estimate, --altitude;
and flights mixing two camera models."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from ingest_scene import (
    FC300S,
    FC6310,
    GROUND_ASL_M,
    Shot,
    shared_ground,
    survey_shots,
    with_gps_noise,
    write_shot,
)

from skysieve.cli import main
from skysieve.mosaic.altitude import takeoff_altitude
from skysieve.mosaic.ingest import ingest_flight
from skysieve.workspace import Workspace


# -- the GPS-altitude rule, as a pure function -----------------------------------------------------------------
def test_takeoff_from_xmp_calibration() -> None:
    gps = [183.1, 183.3, None, 182.9]
    rel = [60.1, 60.2, 60.0, None]
    alt, evidence = takeoff_altitude(gps, rel)
    assert evidence == "xmp_calibration" and alt == pytest.approx(123.05)


def test_takeoff_from_a_ground_level_start() -> None:
    # first photo on the take-off spot, then the survey 80 m higher
    alt, evidence = takeoff_altitude([412.0, 492.3, 491.8, 492.1], [None] * 4)
    assert evidence == "ground_start" and alt == 412.0


@pytest.mark.parametrize("gps", [
    [492.0, 492.3, 491.8, 492.1],  # constant: above sea level, no sign of the ground
    [492.0, 412.0, 491.8, 492.1],  # the lowest photo is not the first: a dip, not a take-off
    [485.0, 492.3, 491.8, 492.1],  # first photo lowest, but only 7 m below: still climbing, not on the ground
    [492.0],
])
def test_no_evidence_no_gps_relative_height(gps: list[float]) -> None:
    assert takeoff_altitude(gps, [None] * len(gps)) is None


# -- whole flights -----------------------------------------------------------------------------------------------
def _flight(folder: Path, shots: list[Shot]) -> Path:
    g = shared_ground()
    for s in shots:
        write_shot(g, s, folder)
    return folder


def test_no_xmp_and_sea_level_gps_uses_the_image_estimate(tmp_path: Path) -> None:
    # three lines of five, GPS fixes off by 1 m (1 sigma per axis), GPSAltitude above sea level throughout
    shots = with_gps_noise([replace(s, xmp=False, gps_altitude_m=512.0)
                            for s in survey_shots(n_lines=3, per_line=5, height_m=70.0, line_gap_m=40.0)], 1.0)
    folder = _flight(tmp_path / "noxmp", shots)
    ws = Workspace.create(tmp_path / "ws")
    result = ingest_flight(ws, folder)
    assert result.accepted == len(shots) and result.altitude_sources == {"image_estimate": len(shots)}
    for r in ws.gpkg.select("images"):
        assert r["altitude_m"] == pytest.approx(70.0, rel=0.10)
        assert "yaw from the direction of travel" in r["reason"]
        assert abs(abs(r["yaw_deg"]) - 90) < 10.0  # image top faces the direction of travel (noisy GPS)
    manifest = json.loads(result.manifest.read_text())
    assert manifest["altitude"]["image_estimate_m"] == pytest.approx(70.0, rel=0.05)
    assert manifest["altitude"]["takeoff_evidence"] is None


def test_ground_level_start_makes_gps_altitude_relative(tmp_path: Path) -> None:
    survey = [replace(s, xmp=False, index=s.index + 1) for s in survey_shots()]
    on_ground = Shot("DJI_0000.JPG", -40.0, -40.0, height_m=1.5, xmp=False, gps_altitude_m=GROUND_ASL_M, index=0)
    folder = _flight(tmp_path / "groundstart", [on_ground, *survey])
    ws = Workspace.create(tmp_path / "ws")
    result = ingest_flight(ws, folder)
    rows = {Path(r["path"]).name: r for r in ws.gpkg.select("images")}
    assert rows["DJI_0000.JPG"]["status"] == "rejected"
    assert result.accepted == len(survey) and result.altitude_sources == {"gps_relative": len(survey)}
    assert all(r["altitude_m"] == pytest.approx(60.0, abs=0.05) for n, r in rows.items() if n != "DJI_0000.JPG")
    assert json.loads(result.manifest.read_text())["altitude"]["takeoff_evidence"] == "ground_start"


def test_gps_height_contradicted_by_the_images_is_overruled(tmp_path: Path) -> None:
    # the first photo is lowest by 30 m, yet the survey flew 60 m above ground: the take-off was on a hill
    survey = [replace(s, xmp=False, gps_altitude_m=GROUND_ASL_M + 30.0, index=s.index + 1) for s in survey_shots()]
    first = Shot("DJI_0000.JPG", -40.0, -40.0, height_m=30.0, xmp=False, gps_altitude_m=GROUND_ASL_M, index=0)
    folder = _flight(tmp_path / "hill", [first, *survey])
    ws = Workspace.create(tmp_path / "ws")
    result = ingest_flight(ws, folder)
    assert result.altitude_sources.get("image_estimate", 0) >= len(survey)
    for r in ws.gpkg.select("images", "status='accepted' AND image_id != ?", ("hill/DJI_0000.JPG",)):
        assert r["altitude_m"] == pytest.approx(60.0, rel=0.10)
        assert "disagrees with the image estimate" in r["reason"]


def test_user_altitude_is_the_last_resort(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = _flight(tmp_path / "single", [Shot("DJI_0001.JPG", 0, 0, xmp=False, gps_altitude_m=480.0)])
    assert main(["init", str(tmp_path / "ws")]) == 0
    assert main(["ingest", str(tmp_path / "ws"), str(folder), "--json"]) == 0
    capsys.readouterr()
    ws = Workspace.open(tmp_path / "ws")
    (row,) = ws.gpkg.select("images")
    assert row["status"] == "rejected" and row["reason"].startswith("no_altitude:")
    # a rejected photo stays rejected on a rerun (its hash is known); a new folder with --altitude places it
    folder2 = _flight(tmp_path / "single2", [Shot("DJI_0001.JPG", 5, 0, xmp=False, gps_altitude_m=480.0)])
    assert main(["ingest", str(tmp_path / "ws"), str(folder2), "--altitude", "60", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["accepted"] == 1 and summary["altitude_sources"] == {"user": 1}
    assert summary["mean_gsd_m"] == pytest.approx(60 * 6.17 / (3.61 * 1200), rel=1e-3)


@pytest.mark.parametrize("xmp", [True, False], ids=["xmp", "no-xmp"])
def test_two_camera_models_in_one_flight(tmp_path: Path, xmp: bool) -> None:
    shots = survey_shots(n_lines=2, per_line=4)
    shots = [replace(s, camera=FC300S if i < 4 else FC6310, xmp=xmp, gps_altitude_m=None if xmp else 700.0)
             for i, s in enumerate(shots)]
    folder = _flight(tmp_path / "mixed", shots)
    ws = Workspace.create(tmp_path / "ws")
    result = ingest_flight(ws, folder)
    assert result.accepted == 8
    rows = ws.gpkg.select("images", order_by="image_id")
    for r in rows:
        _, w, h, focal, sensor_w, _ = FC300S if r["camera_model"] == "FC300S" else FC6310
        assert (r["width_px"], r["height_px"], r["focal_mm"], r["sensor_width_mm"]) == (w, h, focal, sensor_w)
        assert r["altitude_m"] == pytest.approx(60.0, rel=0.10 if not xmp else 1e-6)
        assert r["gsd_m"] == pytest.approx(r["altitude_m"] * sensor_w / (focal * w), rel=1e-6)
    assert {r["camera_model"] for r in rows} == {"FC300S", "FC6310"}
