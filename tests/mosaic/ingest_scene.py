"""Seeded flights for the ingest tests: a textured flat ground photographed through :mod:`skysieve.camera`,
written as real DJI JPEGs (EXIF GPS + DJI XMP) with :func:`skysieve.datasets.dji_meta.write_dji_jpeg`.

Positions are offsets in metres from a point near Wuhan (114.3 E, 30.6 N) in the CRS ingest will choose
there (CGCS2000 Gauss-Kruger, EPSG:4547), so a test can compare what ingest recovers with the truth.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

import cv2
import numpy as np

from skysieve.camera import Camera, Pose, backproject
from skysieve.crs import choose_crs, from_lonlat, to_lonlat
from skysieve.datasets.dji_meta import DJIMeta, write_dji_jpeg
from skysieve.mosaic.heading import grid_yaw_deg

LON0, LAT0 = 114.3, 30.6
CRS = choose_crs(LON0, LAT0)
X0, Y0 = (float(v) for v in from_lonlat(CRS, LON0, LAT0))
GROUND_ASL_M = 23.0  # take-off point's altitude above sea level
T0 = datetime(2026, 5, 12, 9, 30, 0)

#: (model, width_px, height_px, focal_mm, sensor_width_mm covered, 35 mm focal)
FC300S = ("FC300S", 1200, 900, 3.61, 6.17, 20)
FC6310 = ("FC6310", 1368, 912, 8.8, 13.2, 24)


@dataclass(frozen=True)
class Shot:
    """One photo to take: offset (m, east/north of the origin), height above ground (m), grid yaw (deg)."""

    name: str
    dx: float
    dy: float
    height_m: float = 60.0
    yaw_deg: float = 90.0
    pitch_deg: float = -90.0
    roll_deg: float = 0.0
    camera: tuple = FC300S
    xmp: bool = True
    gps_altitude_m: float | None = None  # default: GROUND_ASL_M + height_m
    index: int = 0  # capture order (seconds apart)
    gps_error_m: tuple[float, float] = (0.0, 0.0)  # error of the recorded GPS fix (east, north), metres

    @property
    def cam(self) -> Camera:
        _, w, h, f, sw, _ = self.camera
        return Camera.from_sensor(w, h, f, sw)

    @property
    def pose(self) -> Pose:
        return Pose(X0 + self.dx, Y0 + self.dy, self.height_m, self.yaw_deg, self.pitch_deg, self.roll_deg)


@dataclass(frozen=True)
class Ground:
    """Texture (rows x cols x 3 RGB uint8) covering x in [x_min, x_min + cols*gsd], y down from y_max."""

    rgb: np.ndarray
    x_min: float
    y_max: float
    gsd_m: float


def make_ground(half_size_m: float = 100.0, gsd_m: float = 0.12, seed: int = 0) -> Ground:
    """Multi-scale noise, fields and roofs (rectangles, discs) around the origin."""
    rng = np.random.default_rng(seed)
    n = int(round(2 * half_size_m / gsd_m))
    img = np.full((n, n, 3), 40, np.float32)
    for octave, amp in ((6, 60), (24, 45), (96, 30), (384, 20)):
        img += amp * cv2.resize(rng.random((octave, octave, 3)).astype(np.float32), (n, n),
                                interpolation=cv2.INTER_CUBIC)
    for _ in range(700):
        x, y = (int(v) for v in rng.integers(0, n, 2))
        w, h = (int(v) for v in rng.integers(int(1 / gsd_m), int(7 / gsd_m), 2))
        colour = rng.integers(20, 235, 3).tolist()
        if rng.random() < 0.5:
            cv2.rectangle(img, (x, y), (x + w, y + h), colour, -1)
        else:
            cv2.circle(img, (x, y), w // 2, colour, -1)
    img += rng.standard_normal(img.shape, dtype=np.float32) * 5
    img = np.clip(img, 0, 255).astype(np.uint8)
    return Ground(img, X0 - half_size_m, Y0 + half_size_m, gsd_m)


def render(ground: Ground, camera: Camera, pose: Pose) -> np.ndarray:
    """What ``camera`` at ``pose`` sees of the flat ground (rows x cols x 3 RGB uint8)."""
    w, h = camera.width_px, camera.height_px
    cv_pts = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], dtype=np.float32)
    ground_xy = backproject(camera, pose, cv_pts + 0.5)  # camera convention: pixel centres at +0.5
    tex = np.column_stack([(ground_xy[:, 0] - ground.x_min) / ground.gsd_m - 0.5,
                           (ground.y_max - ground_xy[:, 1]) / ground.gsd_m - 0.5]).astype(np.float32)
    m = cv2.getPerspectiveTransform(cv_pts, tex)
    return cv2.warpPerspective(ground.rgb, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_REFLECT)


def meta_for(shot: Shot) -> DJIMeta:
    """The DJI metadata a drone at ``shot`` writes (true yaw in XMP, GPS altitude above sea level)."""
    lon, lat = (float(v) for v in to_lonlat(CRS, X0 + shot.dx + shot.gps_error_m[0], Y0 + shot.dy + shot.gps_error_m[1]))
    true_yaw = shot.yaw_deg - grid_yaw_deg(CRS, lon, lat, 0.0)
    model, _, _, focal, _, f35 = shot.camera
    gps = shot.gps_altitude_m if shot.gps_altitude_m is not None else GROUND_ASL_M + shot.height_m
    return DJIMeta(lon=lon, lat=lat, gps_altitude_m=gps, relative_altitude_m=shot.height_m,
                   gimbal_yaw_deg=round(true_yaw, 2), gimbal_pitch_deg=shot.pitch_deg, gimbal_roll_deg=shot.roll_deg,
                   flight_yaw_deg=round(true_yaw, 2), model=model, focal_length_mm=focal, focal_length_35mm=f35,
                   taken_at=T0 + timedelta(seconds=3 * shot.index), xmp=shot.xmp)


def write_shot(ground: Ground, shot: Shot, folder: Path, pixels: np.ndarray | None = None,
               meta: DJIMeta | None = None) -> Path:
    """Render (or take ``pixels``) and write ``shot`` as a DJI JPEG in ``folder``; returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    rgb = render(ground, shot.cam, shot.pose) if pixels is None else pixels
    path = folder / shot.name
    write_dji_jpeg(path, rgb, meta or meta_for(shot), quality=88)
    return path


def survey_shots(n_lines: int = 2, per_line: int = 4, step_m: float = 20.0, line_gap_m: float = 45.0,
                 height_m: float = 60.0, **kw) -> list[Shot]:
    """A lawnmower pattern flown east then west, image top facing the direction of travel."""
    shots = []
    for j in range(n_lines):
        for i in range(per_line):
            k = j * per_line + i
            east = j % 2 == 0
            dx = (i if east else per_line - 1 - i) * step_m - (per_line - 1) * step_m / 2
            shots.append(Shot(f"DJI_{k + 1:04d}.JPG", dx, j * line_gap_m - (n_lines - 1) * line_gap_m / 2,
                              height_m, 90.0 if east else -90.0, index=k, **kw))
    return shots


def with_gps_noise(shots: list[Shot], sigma_m: float, seed: int = 5) -> list[Shot]:
    """The shots with Gaussian GPS errors (``sigma_m`` metres per axis) in their recorded positions."""
    rng = np.random.default_rng(seed)
    return [replace(s, gps_error_m=tuple(float(v) for v in rng.normal(0.0, sigma_m, 2))) for s in shots]


@functools.lru_cache(maxsize=1)
def shared_ground() -> Ground:
    """One ground texture per test process (building it takes about a second)."""
    return make_ground()


def top_edge_heading_deg(polygon) -> float:
    """Heading (clockwise from grid north, degrees) of a footprint's first edge: the image's top edge,
    left to right, so the image top faces this heading minus 90 degrees."""
    (x0, y0), (x1, y1) = list(polygon.exterior.coords)[:2]
    return float(np.degrees(np.arctan2(x1 - x0, y1 - y0)))
