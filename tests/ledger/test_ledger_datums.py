"""GCJ-02 / BD-09 against published reference points (gcoord's and eviltransform's test vectors)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from skysieve.ledger.chinese_datums import (
    bd09_to_gcj02,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    out_of_china,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Ground distance (m) between two lon/lat pairs a few metres apart."""
    lat = math.radians((a[1] + b[1]) / 2)
    return math.hypot((a[0] - b[0]) * 111_320 * math.cos(lat), (a[1] - b[1]) * 110_540)


# (function, input lon/lat, published output lon/lat); hujiulong/gcoord test/unit/crs/*.spec.ts
GCOORD = [
    (wgs84_to_gcj02, (123.0, 45.0), (123.00607541, 45.00197815)),
    (wgs84_to_bd09, (123.0, 45.0), (123.0124491, 45.0083293)),
    (gcj02_to_bd09, (123.0, 45.0), (123.00636499, 45.00636899)),
    (bd09_to_gcj02, (123.0, 45.0), (122.99363304, 44.99365430)),
    (gcj02_to_wgs84, (123.0, 45.0), (122.99395597, 44.99804071)),
]
# googollee/eviltransform tests: WGS 84 -> GCJ-02 in Shanghai, Shenzhen, Beijing
EVILTRANSFORM = [
    ((121.5272106, 31.1774276), (121.531541859215, 31.17530398364597)),
    ((113.912316, 22.543847), (113.9171764808363, 22.540796131694766)),
    ((116.377817, 39.911954), (116.38404722455657, 39.91334545536069)),
]


@pytest.mark.parametrize(("func", "given", "published"), GCOORD)
def test_gcoord_reference_points_within_half_a_metre(func, given, published) -> None:
    assert _metres(func(*given), published) < 0.5


@pytest.mark.parametrize(("wgs", "gcj"), EVILTRANSFORM)
def test_eviltransform_reference_points(wgs, gcj) -> None:
    assert _metres(wgs84_to_gcj02(*wgs), gcj) < 0.5
    assert _metres(gcj02_to_wgs84(*gcj), wgs) < 0.5


def test_outside_china_nothing_moves() -> None:
    assert wgs84_to_gcj02(-91.994, 46.84) == (-91.994, 46.84)  # Duluth, where the real test flight is
    assert wgs84_to_gcj02(183.0, 45.0) == (183.0, 45.0)
    assert out_of_china(151.2, -33.9) and not out_of_china(112.88, 36.12)


def test_vectorised_equals_scalar_and_inverses_round_trip() -> None:
    rng = np.random.default_rng(3)
    lon, lat = rng.uniform(75, 134, 500), rng.uniform(18, 53, 500)
    g_lon, g_lat = wgs84_to_gcj02(lon, lat)
    assert g_lon.shape == (500,)
    assert (g_lon[7], g_lat[7]) == pytest.approx(wgs84_to_gcj02(float(lon[7]), float(lat[7])), abs=1e-12)
    shift = np.hypot((g_lon - lon) * 111_320 * np.cos(np.radians(lat)), (g_lat - lat) * 110_540)
    assert shift.min() > 50 and shift.max() < 1_000  # the offset is tens to hundreds of metres
    w_lon, w_lat = gcj02_to_wgs84(g_lon, g_lat)
    assert np.abs(w_lon - lon).max() < 1e-8 and np.abs(w_lat - lat).max() < 1e-8  # < 1 mm
    b = gcj02_to_bd09(g_lon, g_lat)
    back = bd09_to_gcj02(*b)
    assert np.abs(back[0] - g_lon).max() < 1e-5 and np.abs(back[1] - g_lat).max() < 1e-5  # BD-09's own inverse (~1 m)
