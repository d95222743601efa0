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

__all__ = ["choose_crs", "parse_crs", "to_lonlat", "from_lonlat", "reproject", "in_china", "in_crs_area",
           "crs_area_text", "AREA_MARGIN_DEG"]

#: degrees a grid zone may be used beyond the edges of its CRS's area of use
AREA_MARGIN_DEG = 1.0


def in_china(lon: float, lat: float) -> bool:
    """Rough mainland-China box (good enough to pick a national projection)."""
    return 73.0 <= lon <= 135.5 and 17.5 <= lat <= 54.0


def in_crs_area(crs: CRS, lon: float, lat: float, margin_deg: float = AREA_MARGIN_DEG) -> bool:
    """Whether (lon, lat) degrees lies in ``crs``'s area of use widened by ``margin_deg`` (True where the CRS
    states none). Data outside would land far off in the workspace's grid, at a distorted scale: a flight,
    a register row or an orthophoto of another county, or with a wrong CRS."""
    area = crs.area_of_use
    if area is None:
        return True
    if not area.south - margin_deg <= lat <= area.north + margin_deg:
        return False
    west, east = area.west - margin_deg, area.east + margin_deg
    if area.west <= area.east:
        return west <= lon <= east
    return lon >= west or lon <= east  # the area crosses the antimeridian


def crs_area_text(crs: CRS) -> str:
    """``crs``'s area of use in words, for messages: ``"W to E E, S to N N"``."""
    area = crs.area_of_use
    return "anywhere" if area is None else f"{area.west:g} to {area.east:g} E, {area.south:g} to {area.north:g} N"


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
