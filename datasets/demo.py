"""The inputs ``skysieve demo`` starts from: a small synthetic world and one flight over its sites."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from skysieve.datasets.flight import FlightInfo, FlightPlan, fly
from skysieve.datasets.layout import Climate, find_seed
from skysieve.datasets.scene import CLASSES, Scene
from skysieve.datasets.world import WorldInfo, load_world, make_world

__all__ = ["DemoInputs", "demo_inputs", "demo_seed"]


def _good_demo(scene: Scene, climate: Climate) -> bool:
    classes = {o.cls for o in scene.labelled()}
    return (sum(s.illegal for s in scene.sites) >= 2 and classes == set(CLASSES) and len(scene.sites) >= 3
            and climate.weather == "clear")


#: where the search for a demo world starts: the answer for 200 m with this version's layout (instant)
_DEMO_SEED_HINT = 38


@functools.lru_cache(maxsize=4)
def demo_seed(size_m: float = 200.0) -> int:
    """The first world seed of ``size_m`` from 38 with at least three sites, two of them hosting illegal
    work, all three classes present and clear weather (crisp shadows): what the demo should show."""
    return find_seed(size_m, _good_demo, start=_DEMO_SEED_HINT)


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
    ``seed`` None: :func:`demo_seed`, a world whose sites host all three classes.

    About 30 to 40 photos: the whole demo pipeline stays within minutes on two cores.
    """
    seed = demo_seed(size_m) if seed is None else seed
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
