"""The real DJI Phantom 3 flight over Brighton Beach (Duluth, MN): 18 nadir photos, FC300S in its 16:9 mode."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ingest_scene import top_edge_heading_deg

from skysieve.mosaic.exif import read_meta
from skysieve.mosaic.heading import grid_yaw_deg, wrap_deg
from skysieve.mosaic.ingest import ingest_flight
from skysieve.mosaic.quality import reduced_decode
from skysieve.workspace import Workspace

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def brighton_ws(brighton: Path, tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    ws = Workspace.create(tmp_path_factory.mktemp("brighton") / "ws")
    ingest_flight(ws, brighton / "images")
    return ws


def test_all_accepted_at_the_published_scale(brighton_ws: Workspace) -> None:
    rows = brighton_ws.gpkg.select("images", order_by="image_id")
    assert len(rows) == 18 and all(r["status"] == "accepted" for r in rows)
    assert brighton_ws.crs.to_epsg() == 32615  # UTM 15N, where the reference point cloud lives
    assert all(r["altitude_source"] == "xmp_relative" and r["reason"] is None for r in rows)
    mean_gsd = sum(r["gsd_m"] for r in rows) / len(rows)
    assert mean_gsd == pytest.approx(0.0171, rel=0.10)
    for r in rows:
        (x0, y0), (x1, y1), (x2, y2) = list(r["geometry"].exterior.coords)[:3]
        assert ((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5 == pytest.approx(68.0, rel=0.03)  # image width on the ground
        assert ((x2 - x1) ** 2 + (y2 - y1) ** 2) ** 0.5 == pytest.approx(38.3, rel=0.03)
        assert (r["sensor_width_mm"], r["camera_model"], r["width_px"], r["height_px"]) == (6.17, "FC300S", 4000, 2250)
    # the reference point cloud spans x 576662-576768, y 5188114-5188212: the cameras lie over it
    xs, ys = [r["x"] for r in rows], [r["y"] for r in rows]
    assert min(xs) > 576640 and max(xs) < 576790 and min(ys) > 5188090 and max(ys) < 5188235


def test_footprints_follow_gimbal_yaw(brighton_ws: Workspace) -> None:
    rows = brighton_ws.gpkg.select("images", order_by="image_id")
    yaws = []
    for r in rows:
        meta = read_meta(Path(r["path"]).read_bytes())
        convergence = grid_yaw_deg(brighton_ws.crs, meta.lon, meta.lat, 0.0)
        image_top_true = wrap_deg(top_edge_heading_deg(r["geometry"]) - 90.0 - convergence)
        assert wrap_deg(image_top_true - meta.gimbal_yaw_deg) == pytest.approx(0.0, abs=0.2), r["image_id"]
        yaws.append(image_top_true)
    # lines flown both ways: image tops face about +45 and about -132 degrees
    assert sum(abs(wrap_deg(y - 45)) < 6 for y in yaws) == 12 and sum(abs(wrap_deg(y + 132)) < 9 for y in yaws) == 6


def test_quality_decode_is_reduced_for_dji_mpo_files(brighton: Path) -> None:
    # DJI JPEGs carry a preview image (Pillow calls them MPO); draft mode must still apply
    data = (brighton / "images" / "DJI_0018.JPG").read_bytes()
    img = reduced_decode(data, 4)
    assert img.pixels.shape == (563, 1000) and img.scale == 0.25


def test_manifest_and_rerun(brighton_ws: Workspace, brighton: Path) -> None:
    manifest = json.loads((brighton_ws.flight_dir("brighton-beach") / "manifest.json").read_text())
    assert manifest["accepted"] == 18 and manifest["altitude"]["takeoff_evidence"] == "xmp_calibration"
    assert (brighton_ws.flight_dir("brighton-beach") / "coverage.png").stat().st_size > 10_000
    again = ingest_flight(brighton_ws, brighton / "images")
    assert again.skipped == 18 and again.photos == 0 and brighton_ws.gpkg.count("images") == 18


def _strip_xmp(data: bytes) -> bytes:
    """The same JPEG without its XMP APP1 segment (what some photo tools do to DJI files)."""
    out, pos = bytearray(data[:2]), 2
    while data[pos] == 0xFF and data[pos + 1] != 0xDA:
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        segment = data[pos:pos + 2 + length]
        if not (data[pos + 1] == 0xE1 and segment[4:33] == b"http://ns.adobe.com/xap/1.0/\x00"):
            out += segment
        pos += 2 + length
    return bytes(out + data[pos:])


@pytest.mark.slow
def test_real_flight_without_xmp_gets_its_height_from_the_images(brighton: Path, tmp_path: Path) -> None:
    folder = tmp_path / "brighton-noxmp"
    folder.mkdir()
    for p in sorted((brighton / "images").glob("*.JPG")):
        (folder / p.name).write_bytes(_strip_xmp(p.read_bytes()))
    assert not read_meta((folder / "DJI_0018.JPG").read_bytes()).has_xmp
    ws = Workspace.create(tmp_path / "ws")
    result = ingest_flight(ws, folder)
    # GPSAltitude is about 198.5 m above sea level throughout: no take-off evidence, so the images decide
    assert result.accepted == 18 and result.altitude_sources == {"image_estimate": 18}
    heights = [r["altitude_m"] for r in ws.gpkg.select("images")]
    assert sorted(heights)[9] == pytest.approx(40.0, rel=0.10)  # XMP says 39.8-40.2 m above take-off
    # yaw from the direction of travel: the lines were flown with the image top forward
    for r in ws.gpkg.select("images"):
        assert min(abs(wrap_deg(r["yaw_deg"] - 44.3)), abs(wrap_deg(r["yaw_deg"] + 132.7))) < 8, r["image_id"]
