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


def _agree(a: float | None, b: float | None, tolerance_deg: float) -> bool:
    return a is not None and b is not None and abs(wrap_deg(a - b)) <= tolerance_deg


def travel_headings(xy: np.ndarray, min_step_m: float = 1.0, turn_deg: float = 30.0) -> list[float | None]:
    """Heading of travel (degrees clockwise from grid north) at each of N positions (N x 2, metres), in capture order.

    A photo has an incoming and an outgoing step. Where they agree (within ``turn_deg``) it gets the
    direction from the previous position to the next; at a turn (the end or start of a survey line) it gets the step that continues a
    straight run (agrees with the step beyond it), so the last photo of a line faces along the line,
    not towards the next line. None where the drone moved less than ``min_step_m`` either side.
    """
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    steps: list[float | None] = []
    for a in range(len(xy) - 1):
        dx, dy = xy[a + 1] - xy[a]
        steps.append(math.degrees(math.atan2(dx, dy)) if math.hypot(dx, dy) >= min_step_m else None)

    def step(k: int) -> float | None:
        return steps[k] if 0 <= k < len(steps) else None

    out: list[float | None] = []
    for i in range(len(xy)):
        incoming, outgoing = step(i - 1), step(i)
        if incoming is not None and outgoing is not None and _agree(incoming, outgoing, turn_deg):
            dx, dy = xy[i + 1] - xy[i - 1]  # on a straight run: the central difference halves GPS noise
            out.append(math.degrees(math.atan2(dx, dy)))
        elif incoming is None or outgoing is None:
            out.append(outgoing if outgoing is not None else incoming)
        elif _agree(incoming, step(i - 2), turn_deg) and not _agree(outgoing, step(i + 1), turn_deg):
            out.append(incoming)
        else:
            out.append(outgoing)
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

