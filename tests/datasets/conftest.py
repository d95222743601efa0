"""Seeded synthetic data shared by the datasets tests (built once per session, in a temporary folder)."""

from __future__ import annotations

from pathlib import Path

import pytest
from skysieve.datasets import FlightPlan, fly, make_world

#: world seed 1 at 120 m holds one site with illegal work (a chimney and a drum stockpile)
WORLD_SEED = 1
WORLD_SIZE_M = 120.0


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
