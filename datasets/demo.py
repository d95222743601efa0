"""The inputs ``skysieve demo`` starts from: a small synthetic world and one flight over it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from skysieve.datasets.flight import FlightInfo, FlightPlan, fly
from skysieve.datasets.world import WorldInfo, make_world

__all__ = ["DemoInputs", "demo_inputs"]


@dataclass(frozen=True)
class DemoInputs:
    """A world, a flight over it, the site register to import and the ground truth to score against."""

    world: WorldInfo
    flight: FlightInfo
    images_dir: Path
    sites_register: Path
    truth_objects: Path
    truth_sites: Path


def demo_inputs(out_dir: str | Path, seed: int = 3, size_m: float = 240.0, altitude_m: float = 60.0,
                scale: float = 0.25) -> DemoInputs:
    """Make ``out_dir/world`` (``size_m`` square at 5 cm/px) and ``out_dir/flight`` (a survey of its
    central part at ``altitude_m``; images ``scale`` of an FC300S frame). Seconds on two cores."""
    out = Path(out_dir)
    world = make_world(out / "world", seed, size_m=size_m, gsd_m=0.05)
    margin = 0.1 * size_m
    flight = fly(world.root, out / "flight", FlightPlan(altitude_m=altitude_m, seed=seed, scale=scale, gps_noise_m=1.5,
                                                       area_m=(margin, margin, size_m - margin, size_m - margin)))
    return DemoInputs(world, flight, flight.images, world.sites_register, world.objects, world.sites)
