"""EXIF/XMP reading, the camera table and its 35 mm fallback, yaw precedence and grid convergence, quality figures."""

from __future__ import annotations

import io
import math
from dataclasses import replace
from datetime import datetime

import cv2
import numpy as np
import pytest
from ingest_scene import CRS, render, shared_ground, survey_shots

from skysieve.crs import choose_crs, from_lonlat
from skysieve.datasets.dji_meta import DJIMeta, write_dji_jpeg
from skysieve.errors import ImageReadError
from skysieve.mosaic.cameras import CAMERAS, camera_info, lookup_sensor
from skysieve.mosaic.exif import parse_dji_xmp, read_meta
from skysieve.mosaic.heading import choose_yaw, grid_yaw_deg, travel_headings
from skysieve.mosaic.quality import blur_verdicts, exposure_problem, frame_stats, reduced_decode

PIXELS = np.random.default_rng(3).integers(0, 255, (90, 160, 3), dtype=np.uint8)


def test_exif_and_xmp_round_trip() -> None:
    meta = DJIMeta(lon=114.312345, lat=-30.654321, gps_altitude_m=198.51, relative_altitude_m=40.1,
                   gimbal_yaw_deg=-132.0, gimbal_pitch_deg=-89.9, gimbal_roll_deg=0.3, flight_yaw_deg=-129.9,
                   model="FC6310", focal_length_mm=8.8, focal_length_35mm=24,
                   taken_at=datetime(2026, 5, 12, 9, 30, 7))
    m = read_meta(write_dji_jpeg(None, PIXELS, meta))
    assert (m.lon, m.lat) == pytest.approx((114.312345, -30.654321), abs=1e-6)
    assert (m.width_px, m.height_px, m.model, m.make) == (160, 90, "FC6310", "DJI")
    assert (m.focal_mm, m.focal_35mm, m.gps_altitude_m) == pytest.approx((8.8, 24, 198.51))
    assert (m.relative_altitude_m, m.gimbal_yaw_deg, m.gimbal_pitch_deg, m.gimbal_roll_deg, m.flight_yaw_deg) == \
        pytest.approx((40.1, -132.0, -89.9, 0.3, -129.9))
    assert m.taken_at == datetime(2026, 5, 12, 9, 30, 7) and m.has_xmp and m.has_gps


def test_missing_xmp_and_gps_read_as_none() -> None:
    m = read_meta(write_dji_jpeg(None, PIXELS, DJIMeta(lon=None, lat=None, xmp=False)))
    assert not m.has_xmp and not m.has_gps and m.relative_altitude_m is None and m.gimbal_yaw_deg is None


def test_xmp_in_element_form() -> None:
    packet = b"<rdf:Description><drone-dji:RelativeAltitude>+39.80</drone-dji:RelativeAltitude>" \
             b'<drone-dji:GimbalYawDegree>+45.00</drone-dji:GimbalYawDegree></rdf:Description>'
    assert parse_dji_xmp(packet) == {"RelativeAltitude": 39.8, "GimbalYawDegree": 45.0}


def test_broken_files_raise_image_read_error() -> None:
    data = write_dji_jpeg(None, PIXELS, DJIMeta(lon=1.0, lat=1.0))
    with pytest.raises(ImageReadError, match="not a JPEG"):
        read_meta(b"GIF89a....")
    with pytest.raises(ImageReadError, match="truncated"):
        read_meta(data[:300])
    with pytest.raises(ImageReadError):
        reduced_decode(data[: len(data) // 2])


def test_camera_table_crops_and_fallback() -> None:
    # FC300S's 16:9 mode keeps the sensor's full width: 6.17 x 3.47 mm, 1.71 cm/px at 40 m
    info = camera_info("FC300S\x00\x00  ", 4000, 2250, 3.61, 20)
    assert info.source == "table" and info.sensor_width_mm == 6.17
    assert info.sensor_height_mm == pytest.approx(6.17 * 2250 / 4000)
    assert info.camera().gsd_m(40.0) == pytest.approx(0.0171, abs=0.0001)
    # a 1:1 crop keeps the height; a downscale of the full frame keeps the full sensor
    assert camera_info("FC6310", 3648, 3648, None, None).sensor_width_mm == pytest.approx(8.8)
    assert camera_info("FC6310", 1368, 912, None, None).sensor_width_mm == 13.2
    # unknown model: the 35 mm-equivalent focal gives focal_px within a few percent of the truth
    for model, w, h, f35 in (("FC300S", 4000, 3000, 20), ("FC300S", 4000, 2250, 20), ("FC6310", 5472, 3648, 24)):
        truth = camera_info(model, w, h, None, None).camera().focal_px
        guess = camera_info("XYZ-1", w, h, None, f35)
        assert guess.source == "focal35" and guess.camera().focal_px == pytest.approx(truth, rel=0.05)
    assert camera_info("XYZ-1", 4000, 3000, 4.5, None) is None
    assert lookup_sensor("l1d-20c").sensor_width_mm == 13.2 and lookup_sensor("ZenmuseP1").sensor_width_mm == 35.9
    assert all(s.sensor_width_mm > s.sensor_height_mm for s in CAMERAS.values())


def test_yaw_precedence_and_travel_direction() -> None:
    assert choose_yaw(45.0, 46.0, 90.0) == (45.0, "gimbal")
    assert choose_yaw(None, 46.0, 90.0) == (46.0, "flight")
    assert choose_yaw(None, None, 90.0) == (90.0, "travel")
    assert choose_yaw(None, None, None) == (0.0, "none")
    assert choose_yaw(200.0, None, None) == (-160.0, "gimbal")
    # a lawnmower: the photos at line ends face along their line, not towards the next line
    xy = np.array([(0, 0), (20, 0), (40, 0), (40, 45), (20, 45), (0, 45)], float)
    assert travel_headings(xy) == pytest.approx([90, 90, 90, -90, -90, -90])
    assert travel_headings(np.array([(0.0, 0.0), (0.2, 0.1)])) == [None, None]  # hovering


def test_grid_yaw_turns_by_the_meridian_convergence() -> None:
    # west of a zone's central meridian in the north, true north (towards the pole) points east of grid north
    lon, lat = 116.0, 40.0
    crs = choose_crs(lon, lat)  # CGCS2000 3-degree Gauss-Kruger, central meridian 117 E
    assert crs.to_epsg() == 4548
    expected = -math.degrees(math.atan(math.tan(math.radians(lon - 117.0)) * math.sin(math.radians(lat))))
    assert expected > 0
    assert grid_yaw_deg(crs, lon, lat, 0.0) == pytest.approx(expected, abs=0.02)
    # a heading measured along a true-north line: grid heading of the projected step
    x0, y0 = from_lonlat(crs, lon, lat)
    x1, y1 = from_lonlat(crs, lon, lat + 0.01)
    assert grid_yaw_deg(crs, lon, lat, 0.0) == pytest.approx(math.degrees(math.atan2(x1 - x0, y1 - y0)), abs=1e-3)
    assert CRS.to_epsg() == 4547


def test_quality_figures_tell_exposure_and_blur_apart() -> None:
    shot = survey_shots()[0]
    rgb = render(shared_ground(), shot.cam, shot.pose)
    def stats(pixels):
        return frame_stats(reduced_decode(write_dji_jpeg(None, pixels, DJIMeta(lon=1.0, lat=1.0)), 4))
    sharp, blurred = stats(rgb), stats(cv2.GaussianBlur(rgb, (0, 0), 5))
    assert exposure_problem(sharp) is None and exposure_problem(blurred) is None
    assert blurred.sharpness < 0.4 * sharp.sharpness and blurred.edge_sharpness < 0.75 * sharp.edge_sharpness
    assert exposure_problem(stats((rgb * 0.06).astype(np.uint8)))[0] == "dark"
    assert exposure_problem(stats((236 + rgb * 0.07).astype(np.uint8)))[0] == "washed_out"
    assert exposure_problem(stats(np.full_like(rgb, 128)))[0] in ("dark", "washed_out")  # flat grey: lens cap / fog
    img = reduced_decode(write_dji_jpeg(None, rgb, replace(DJIMeta(lon=1.0, lat=1.0))), 4)
    assert img.pixels.shape == (rgb.shape[0] // 4, rgb.shape[1] // 4) and img.scale == 0.25


def test_bare_field_is_not_blurred_but_a_soft_frame_is() -> None:
    shots = survey_shots()
    g = shared_ground()
    frames = [render(g, s.cam, s.pose) for s in shots[:4]]
    field = np.empty_like(frames[0])  # two crops with a crisp boundary and a track: little texture
    field[:] = (96, 140, 70)
    field[:, 700:] = (150, 130, 90)
    field[420:430, :] = (120, 110, 100)
    field = np.clip(field + np.random.default_rng(1).normal(0, 2, field.shape), 0, 255).astype(np.uint8)
    soft = cv2.GaussianBlur(frames[1], (0, 0), 4)

    def stats(pixels):
        return frame_stats(reduced_decode(write_dji_jpeg(None, pixels, DJIMeta(lon=1.0, lat=1.0)), 4))

    all_stats = [stats(f) for f in [*frames, field, soft]]
    xy = np.array([(s.dx, s.dy) for s in shots[:4]] + [(shots[1].dx + 5, 0.0), (shots[1].dx, 0.0)])
    verdicts = blur_verdicts([s.sharpness for s in all_stats], [s.edge_sharpness for s in all_stats], xy)
    assert all_stats[4].sharpness < 0.4 * np.median([s.sharpness for s in all_stats[:4]])  # texture alone would reject it
    assert verdicts[:5] == [None] * 5
    assert verdicts[5] is not None and "neighbours" in verdicts[5]
    # too few frames: nothing is judged
    assert blur_verdicts([1.0, 100.0], [0.1, 2.0], None) == [None, None]


def test_capture_time_is_utc_when_exif_gives_the_offset() -> None:
    from PIL import Image

    from skysieve.mosaic.exif import iso_time

    data = write_dji_jpeg(None, PIXELS, DJIMeta(lon=114.3, lat=30.6, taken_at=datetime(2026, 5, 12, 17, 30, 7)))
    assert iso_time(read_meta(data).taken_at) == "2026-05-12T17:30:07"  # camera local time, no zone
    img = Image.open(io.BytesIO(data))
    exif = img.getexif()
    exif.get_ifd(0x8769)[0x9011] = "+08:00"  # OffsetTimeOriginal, as newer DJI firmware writes it
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif.tobytes())
    assert iso_time(read_meta(out.getvalue()).taken_at) == "2026-05-12T09:30:07Z"
