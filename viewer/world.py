"""Workspace coordinates to napari world coordinates and back.

The viewer shows everything in one world frame, in metres of the workspace's projected CRS, so that
mosaics, cells, sites and detections of neighbouring cells line up without resampling. napari's
first display axis runs down the screen, so world coordinates are
``(row, col) = (-(y - y0), x - x0)``: northing negated (north up on screen), easting as is, both
relative to an origin ``(x0, y0)`` near the survey. The origin matters: vispy draws in float32, and
raw UTM or Gauss-Kruger coordinates (millions of metres) would leave 0.25 m of jitter on 2 m boxes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely
from affine import Affine

from skysieve.errors import MosaicError

__all__ = ["WorldFrame", "RasterPlacement"]

#: origins are rounded to this many metres so that reader and widget agree on the frame
_ORIGIN_STEP_M = 1000.0


@dataclass(frozen=True)
class RasterPlacement:
    """Where a north-up raster's full-resolution pixels sit in the world: napari ``scale``/``translate``.

    ``scale_rc`` is metres per pixel along (row, col); ``translate_rc`` is the world position of the
    centre of pixel (0, 0) (napari puts pixel centres on integer coordinates).
    """

    scale_rc: tuple[float, float]
    translate_rc: tuple[float, float]


@dataclass(frozen=True)
class WorldFrame:
    """The napari world frame: origin ``(x0, y0)`` in workspace metres (the world's (0, 0))."""

    x0: float = 0.0
    y0: float = 0.0

    @classmethod
    def around(cls, bounds_xy: tuple[float, float, float, float]) -> WorldFrame:
        """A frame whose origin is the north-west corner of ``bounds_xy`` (left, bottom, right, top),
        rounded outwards to whole kilometres (so nearby data give the same frame)."""
        left, _, _, top = bounds_xy
        return cls(math.floor(left / _ORIGIN_STEP_M) * _ORIGIN_STEP_M, math.ceil(top / _ORIGIN_STEP_M) * _ORIGIN_STEP_M)

    def to_world(self, x, y) -> np.ndarray:
        """Workspace easting/northing (metres) to world ``(row, col)`` pairs, shape ``(N, 2)``."""
        x = np.atleast_1d(np.asarray(x, dtype=float))
        y = np.atleast_1d(np.asarray(y, dtype=float))
        return np.column_stack([self.y0 - y, x - self.x0])

    def to_xy(self, row: float, col: float) -> tuple[float, float]:
        """World ``(row, col)`` to workspace ``(x, y)`` metres."""
        return float(col) + self.x0, self.y0 - float(row)

    def rings(self, geom: shapely.Geometry | None) -> list[np.ndarray]:
        """Exterior rings of a (multi)polygon as ``(N, 2)`` world vertex arrays (closing vertex dropped)."""
        if geom is None or geom.is_empty:
            return []
        rings = []
        for part in getattr(geom, "geoms", [geom]):
            if part.geom_type == "Polygon":
                xy = np.asarray(part.exterior.coords)[:-1]
                rings.append(self.to_world(xy[:, 0], xy[:, 1]))
        return rings

    def placement(self, transform: Affine) -> RasterPlacement:
        """napari placement of a raster with GDAL geotransform ``transform`` (north-up, no rotation)."""
        if abs(transform.b) > 1e-12 or abs(transform.d) > 1e-12 or transform.e >= 0 or transform.a <= 0:
            raise MosaicError(
                f"the mosaic is not north-up (geotransform {tuple(transform)[:6]})",
                hint="rebuild it with `skysieve mosaic`, which writes north-up COGs in the workspace CRS",
            )
        res_x, res_y = transform.a, -transform.e
        return RasterPlacement(
            scale_rc=(res_y, res_x),
            translate_rc=(self.y0 - transform.f + 0.5 * res_y, transform.c - self.x0 + 0.5 * res_x),
        )
