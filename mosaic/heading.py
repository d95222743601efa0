"""Which way the image's top edge faces: DJI gimbal yaw, flight yaw, or the direction of travel.

DJI angles are clockwise from true north. A footprint is drawn in the workspace's projected CRS,
whose grid north differs from true north by the meridian convergence (up to a few degrees at a UTM
zone's edge), so :func:`grid_yaw_deg` turns a true heading into a grid heading before it goes into a
:class:`skysieve.camera.Pose`.
"""

from __future__ import annotations

import math

import numpy as np
from pyproj import CRS

from skysieve import crs as crs_mod

__all__ = ["YAW_SOURCES", "choose_yaw", "travel_headings", "grid_yaw_deg", "wrap_deg"]

YAW_SOURCES = ("gimbal", "flight", "travel", "none")


def wrap_deg(angle: float) -> float:
    """Angle in degrees wrapped to [-180, 180)."""
    return (angle + 180.0) % 360.0 - 180.0


def travel_headings(xy: np.ndarray, min_step_m: float = 1.0) -> list[float | None]:
    """Heading of travel (degrees clockwise from grid north) at each of N positions (N x 2, metres).

    Uses the step to the next position (the previous one for the last photo); None where the drone
    did not move ``min_step_m`` (hovering) or the flight has a single photo.
    """
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    out: list[float | None] = []
    for i in range(len(xy)):
        candidates = [(i, i + 1), (i - 1, i)] if i + 1 < len(xy) else [(i - 1, i)]
        heading = None
        for a, b in candidates:
            if a < 0 or b >= len(xy):
                continue
            dx, dy = xy[b] - xy[a]
            if math.hypot(dx, dy) >= min_step_m:
                heading = math.degrees(math.atan2(dx, dy))
                break
        out.append(heading)
    return out


def choose_yaw(gimbal_yaw: float | None, flight_yaw: float | None, travel: float | None) -> tuple[float, str]:
    """(heading of the image top in degrees, source) by precedence: gimbal, flight, travel, else 0.

    Gimbal and flight yaw are true headings (DJI); ``travel`` is whatever frame the caller measured
    it in (ingest passes grid headings and converts only the DJI angles, see :func:`grid_yaw_deg`).
    """
    for value, source in ((gimbal_yaw, "gimbal"), (flight_yaw, "flight"), (travel, "travel")):
        if value is not None and math.isfinite(value):
            return wrap_deg(value), source
    return 0.0, "none"


def grid_yaw_deg(crs: CRS, lon: float, lat: float, true_yaw_deg: float) -> float:
    """A heading clockwise from true north at (lon, lat) turned into one clockwise from ``crs``'s grid north."""
    dlat = 1e-4
    x0, y0 = crs_mod.from_lonlat(crs, lon, lat)
    x1, y1 = crs_mod.from_lonlat(crs, lon, lat + dlat)
    north_on_grid = math.degrees(math.atan2(x1 - x0, y1 - y0))  # true north's bearing from grid north
    return wrap_deg(true_yaw_deg + north_on_grid)

