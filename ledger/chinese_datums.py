"""GCJ-02 (Amap, Tencent) and BD-09 (Baidu) coordinates from WGS 84, computed here, offline.

GCJ-02 is the obfuscated datum Chinese web maps must use; BD-09 is Baidu's further offset of it.
These are the standard published algorithms (Krasovsky-ellipsoid polynomial offset for GCJ-02;
Baidu's rotation-and-shift for BD-09), vectorised with numpy. Outside mainland China (the
customary rectangle 72.004-137.8347 E, 0.8293-55.8271 N) GCJ-02 equals WGS 84.
Inverse functions iterate to 1e-9 degrees (< 0.1 mm). All arguments and results are degrees,
longitude first. Results are for export only: the ledger stores WGS 84.
"""

from __future__ import annotations

import numpy as np

__all__ = ["wgs84_to_gcj02", "gcj02_to_wgs84", "gcj02_to_bd09", "bd09_to_gcj02", "wgs84_to_bd09",
           "out_of_china"]

_A = 6378245.0  # Krasovsky 1940 semi-major axis (metres)
_EE = 0.00669342162296594323  # its first eccentricity squared
_X_PI = np.pi * 3000.0 / 180.0


def out_of_china(lon, lat):
    """True where (lon, lat) lies outside the rectangle in which GCJ-02 applies an offset."""
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    return (lon < 72.004) | (lon > 137.8347) | (lat < 0.8293) | (lat > 55.8271)


def _offset(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = lon - 105.0, lat - 35.0
    d_lat = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
             + (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
             + (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
             + (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0)
    d_lon = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
             + (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
             + (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
             + (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0)
    rad = lat / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(rad) ** 2
    sqrt_magic = np.sqrt(magic)
    d_lat = (d_lat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * np.pi)
    d_lon = (d_lon * 180.0) / (_A / sqrt_magic * np.cos(rad) * np.pi)
    return d_lon, d_lat


def _out(lon: np.ndarray, lat: np.ndarray, scalar: bool):
    return (float(lon), float(lat)) if scalar else (lon, lat)


def wgs84_to_gcj02(lon, lat):
    """WGS 84 -> GCJ-02 (degrees; scalars or arrays)."""
    scalar = np.isscalar(lon) and np.isscalar(lat)
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    d_lon, d_lat = _offset(lon, lat)
    outside = out_of_china(lon, lat)
    return _out(np.where(outside, lon, lon + d_lon), np.where(outside, lat, lat + d_lat), scalar)


def gcj02_to_wgs84(lon, lat, tol_deg: float = 1e-9, max_iter: int = 30):
    """GCJ-02 -> WGS 84 by fixed-point iteration (degrees; scalars or arrays)."""
    scalar = np.isscalar(lon) and np.isscalar(lat)
    g_lon, g_lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    w_lon, w_lat = g_lon.copy(), g_lat.copy()
    for _ in range(max_iter):
        t_lon, t_lat = wgs84_to_gcj02(w_lon, w_lat)
        e_lon, e_lat = np.asarray(t_lon) - g_lon, np.asarray(t_lat) - g_lat
        w_lon, w_lat = w_lon - e_lon, w_lat - e_lat
        if np.all(np.abs(e_lon) < tol_deg) and np.all(np.abs(e_lat) < tol_deg):
            break
    return _out(w_lon, w_lat, scalar)


def gcj02_to_bd09(lon, lat):
    """GCJ-02 -> BD-09 (degrees; scalars or arrays)."""
    scalar = np.isscalar(lon) and np.isscalar(lat)
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    z = np.sqrt(lon * lon + lat * lat) + 0.00002 * np.sin(lat * _X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _X_PI)
    return _out(z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006, scalar)


def bd09_to_gcj02(lon, lat):
    """BD-09 -> GCJ-02 (degrees; scalars or arrays)."""
    scalar = np.isscalar(lon) and np.isscalar(lat)
    x, y = np.asarray(lon, dtype=float) - 0.0065, np.asarray(lat, dtype=float) - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    return _out(z * np.cos(theta), z * np.sin(theta), scalar)


def wgs84_to_bd09(lon, lat):
    """WGS 84 -> BD-09 (degrees; scalars or arrays)."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))
