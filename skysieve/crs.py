"""Choosing and checking the workspace's projected CRS, and WGS 84 conversions.

For a survey in China the workspace uses CGCS2000 3-degree Gauss-Kruger without zone prefix
(EPSG:4534 to 4554, central meridians 75 E to 135 E), which is what county GIS data are kept in;
elsewhere the UTM zone of the first flight (WGS 84, EPSG:326xx / 327xx).
"""

from __future__ import annotations

import functools

import numpy as np
import shapely
from pyproj import CRS, Transformer

from skysieve.errors import CRSError

__all__ = ["choose_crs", "parse_crs", "to_lonlat", "from_lonlat", "reproject", "in_china"]


def in_china(lon: float, lat: float) -> bool:
    """Rough mainland-China box (good enough to pick a national projection)."""
    return 73.0 <= lon <= 135.5 and 17.5 <= lat <= 54.0


def choose_crs(lon: float, lat: float) -> CRS:
    """The projected CRS a survey at (lon, lat) degrees should use."""
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise CRSError(f"position lon={lon}, lat={lat} is not a WGS 84 longitude/latitude")
    if in_china(lon, lat):
        cm = 3 * round(lon / 3.0)
        cm = min(max(cm, 75), 135)
        return CRS.from_epsg(4534 + (cm - 75) // 3)
    zone = int((lon + 180) // 6) + 1
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + min(zone, 60))


def parse_crs(text: str | int | CRS) -> CRS:
    """A projected CRS from 'EPSG:4547', '4547', a WKT or a CRS; geographic CRSs are refused."""
    try:
        crs = text if isinstance(text, CRS) else CRS.from_user_input(text)
    except Exception as e:  # pyproj raises its own CRSError
        raise CRSError(f"unknown CRS {text!r}: {e}", hint="give it as EPSG:N, e.g. EPSG:4547") from e
    if not crs.is_projected:
        raise CRSError(f"{crs.name} is not a projected CRS; the workspace needs metres",
                       hint="use a UTM zone or a CGCS2000 Gauss-Kruger zone, e.g. EPSG:4547")
    if crs.to_epsg() is None:
        raise CRSError(f"{crs.name} has no EPSG code", hint="give the CRS as EPSG:N")
    return crs


@functools.lru_cache(maxsize=32)
def _transformer(src: str, dst: str) -> Transformer:
    return Transformer.from_crs(src, dst, always_xy=True)


def to_lonlat(crs: CRS, x, y):
    """Projected x/y (metres) in ``crs`` to WGS 84 lon/lat (degrees); arrays or scalars."""
    return _transformer(crs.to_string(), "EPSG:4326").transform(x, y)


def from_lonlat(crs: CRS, lon, lat):
    """WGS 84 lon/lat (degrees) to x/y (metres) in ``crs``; arrays or scalars."""
    return _transformer("EPSG:4326", crs.to_string()).transform(lon, lat)


def reproject(geoms, src: CRS, dst: CRS):
    """Shapely geometry (or array of them) from ``src`` to ``dst`` (x/y order); unchanged when the CRSs agree."""
    if src.equals(dst):
        return geoms
    tf = _transformer(src.to_wkt(), dst.to_wkt())
    return shapely.transform(geoms, lambda xy: np.column_stack(tf.transform(xy[:, 0], xy[:, 1])))
