"""Seeded synthetic data shared by the datasets tests (built once per session, in a temporary folder)."""

from __future__ import annotations

from pathlib import Path

import pytest

from skysieve.datasets import FlightPlan, fly, make_world
from skysieve.datasets.layout import find_seed

WORLD_SIZE_M = 120.0


def _test_world(scene, climate) -> bool:
    """At least two labelled objects, among them a tank, at a site with illegal work."""
    objs = scene.labelled()
    return len(objs) >= 2 and any(o.cls == "tank" for o in objs) and any(s.illegal for s in scene.sites)


#: the first 120 m world that has something to find (searched, so layout changes keep the tests meaningful)
WORLD_SEED = find_seed(WORLD_SIZE_M, _test_world)


@pytest.fixture(scope="session")
def small_world(tmp_path_factory: pytest.TempPathFactory):
    return make_world(tmp_path_factory.mktemp("world") / "w", WORLD_SEED, size_m=WORLD_SIZE_M, gsd_m=0.05, workers=1)


@pytest.fixture(scope="session")
def exact_flight(small_world, tmp_path_factory: pytest.TempPathFactory):
    """A flight with zero GPS noise (recorded poses = true poses) over the middle of the small world."""
    out: Path = tmp_path_factory.mktemp("flight") / "f"
    plan = FlightPlan(altitude_m=40.0, overlap=0.6, sidelap=0.5, gps_noise_m=0.0, seed=1, scale=0.15,
                      area_m=(35.0, 35.0, 85.0, 85.0))
    return fly(small_world.root, out, plan, workers=1)
