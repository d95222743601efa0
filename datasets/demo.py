"""The inputs ``skysieve demo`` starts from: a small synthetic world and one flight over its sites."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from skysieve.datasets.flight import FlightInfo, FlightPlan, fly
from skysieve.datasets.world import WorldInfo, load_world, make_world

__all__ = ["DemoInputs", "demo_inputs", "DEMO_SEED"]

#: a 200 m world with four sites: two hosting illegal work, a licensed chemical plant, a farm; winter sun
DEMO_SEED = 35


@dataclass(frozen=True)
class DemoInputs:
    """A world, a flight over it, the site register to import and the ground truth to score against."""

    world: WorldInfo
    flight: FlightInfo
    images_dir: Path
    sites_register: Path
    truth_objects: Path
    truth_sites: Path

    @property
    def flight_dir(self) -> Path:
        """The folder of photos to ingest (alias of ``images_dir``)."""
        return self.images_dir

    @property
    def sites_path(self) -> Path:
        """The site register to import (alias of ``sites_register``)."""
        return self.sites_register

    @property
    def truth_path(self) -> Path:
        """The labelled objects' ground truth, GeoJSON in the world's CRS (alias of ``truth_objects``)."""
        return self.truth_objects


def demo_inputs(out_dir: str | Path, seed: int | None = None, size_m: float = 200.0, altitude_m: float = 80.0,
                scale: float = 0.4, workers: int | None = None) -> DemoInputs:
    """Make ``out_dir/world`` (``size_m`` square, 5 cm/px) and ``out_dir/flight``: a survey at ``altitude_m``
    (FC300S frames at ``scale``: 1600 x 900 px, about 8.5 cm/px at 80 m) over the box around the world's sites.
    ``seed`` None: :data:`DEMO_SEED`, a world whose sites host all three classes.

    About 40 photos for the default seed: the whole demo pipeline stays within minutes on two cores.
    """
    seed = DEMO_SEED if seed is None else seed
    out = Path(out_dir)
    world = make_world(out / "world", seed, size_m=size_m, gsd_m=0.05, workers=workers)
    sites = load_world(world.root).scene.sites
    if sites:
        pts = np.vstack([s.polygon for s in sites])
        lo = np.clip(pts.min(axis=0) - 15, 0, size_m)
        hi = np.clip(pts.max(axis=0) + 15, 0, size_m)
        area = (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]))
    else:
        area = (0.2 * size_m, 0.2 * size_m, 0.8 * size_m, 0.8 * size_m)
    plan = FlightPlan(altitude_m=altitude_m, overlap=0.65, sidelap=0.55, seed=seed, scale=scale, gps_noise_m=1.5,
                      area_m=area)
    flight = fly(world.root, out / "flight", plan, workers=workers)
    return DemoInputs(world, flight, flight.images, world.sites_register, world.objects, world.sites)
