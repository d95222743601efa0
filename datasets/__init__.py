"""Synthetic world, drone flight simulator and YOLO training data for skysieve.

- :func:`make_world` lays out a georeferenced county patch (fields, roads, villages, sites) with tanks,
  chimneys and drum stockpiles at some sites, and writes its ortho, height raster and ground truth.
- :func:`fly` flies a simulated DJI survey over a world: JPEGs with EXIF/XMP, true and recorded poses.
- :func:`build_dataset` renders randomised tiles with exact YOLO labels (classes :data:`CLASSES`).
- :func:`demo_inputs` makes the small world + flight the ``skysieve demo`` starts from.
- :func:`contact_sheet`, :func:`world_preview`, :func:`photo_preview` draw what was made, truth included.

Heavy modules (OpenCV, rasterio) load on first use of a name, so ``skysieve --help`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from skysieve.datasets.scene import CLASSES

__all__ = ["CLASSES", "make_world", "WorldInfo", "load_world", "fly", "FlightPlan", "FlightInfo", "CAMERAS",
           "build_dataset", "demo_inputs", "DemoInputs", "demo_seed", "render_tile", "TileSpec", "contact_sheet",
           "world_preview", "photo_preview", "import_real"]

_LAZY = {
    "make_world": "world", "WorldInfo": "world", "load_world": "world",
    "fly": "flight", "FlightPlan": "flight", "FlightInfo": "flight", "CAMERAS": "flight",
    "build_dataset": "yolo", "demo_inputs": "demo", "DemoInputs": "demo", "demo_seed": "demo",
    "render_tile": "tiles", "TileSpec": "tiles", "import_real": "realdata",
    "contact_sheet": "sheet", "world_preview": "sheet", "photo_preview": "sheet",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"skysieve.datasets.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'skysieve.datasets' has no attribute {name!r}")
