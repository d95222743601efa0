"""napari layer data for a workspace: mosaics, outlines, detections. No Qt, no viewer.

Each function returns a napari ``LayerData`` tuple ``(data, kwargs, layer_type)`` in world
coordinates of a :class:`~skysieve.viewer.world.WorldFrame` (metres, north up), so the npe2 reader
and the review widget build the same layers.

Detections are one Points layer with square symbols sized to the box: it stays fast with tens of
thousands of flags, where a Shapes layer slows down past a few thousand. Border colour = class, fill
= review status (pending: no fill). The widget frames the current detection with a one-point layer
and recolours decided points in place (:mod:`skysieve.viewer._redraw`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import shapely

from skysieve.viewer.cog import MultiscaleMosaic
from skysieve.viewer.world import WorldFrame

__all__ = ["CLASS_COLOURS", "STATUS_FILL", "SITE_COLOURS", "mosaic_layer", "outline_layer",
           "detection_layer", "status_fill", "class_border", "DETECTIONS_LAYER", "CELLS_LAYER", "SITES_LAYER",
           "CURRENT_LAYER", "WORKSPACE_KEY"]

LayerData = tuple[Any, dict[str, Any], str]

#: metadata key naming the workspace on every layer skysieve makes (the widget finds it there)
WORKSPACE_KEY = "skysieve_workspace"

DETECTIONS_LAYER = "detections"
CELLS_LAYER = "cells"
SITES_LAYER = "sites"
CURRENT_LAYER = "current detection"

#: border colour (RGBA 0-1) per detection class
CLASS_COLOURS: dict[str, tuple[float, float, float, float]] = {
    "tank": (1.0, 0.55, 0.0, 1.0),  # orange
    "chimney": (1.0, 0.2, 0.8, 1.0),  # magenta
    "drum_stockpile": (0.1, 0.85, 1.0, 1.0),  # cyan
}
_OTHER_CLASS = (1.0, 1.0, 1.0, 1.0)

#: fill colour (RGBA 0-1) per review status; pending boxes are hollow
STATUS_FILL: dict[str, tuple[float, float, float, float]] = {
    "pending": (0.0, 0.0, 0.0, 0.0),
    "confirmed": (0.1, 0.9, 0.2, 0.45),  # green
    "rejected": (0.45, 0.45, 0.45, 0.6),  # grey
    "unsure": (1.0, 0.9, 0.0, 0.45),  # yellow
}

#: outline colour per site kind (the kinds that raise a flag's priority are warm)
SITE_COLOURS: dict[str, str] = {
    "idle_factory": "red", "closed_enterprise": "orangered", "scrap_yard": "orange", "farm": "gold",
    "idle_house": "yellow", "licensed_chemical": "lime", "enterprise": "lightgreen", "lead": "violet",
}


def class_border(classes: Sequence[str]) -> np.ndarray:
    """``(N, 4)`` RGBA border colours for detection classes."""
    return np.array([CLASS_COLOURS.get(c, _OTHER_CLASS) for c in classes], dtype=float).reshape(-1, 4)


def status_fill(statuses: Sequence[str | None]) -> np.ndarray:
    """``(N, 4)`` RGBA fill colours for review statuses (``None`` counts as pending)."""
    return np.array([STATUS_FILL.get(s or "pending", STATUS_FILL["pending"]) for s in statuses],
                    dtype=float).reshape(-1, 4)


def mosaic_layer(mosaic: MultiscaleMosaic, frame: WorldFrame, name: str,
                 metadata: dict[str, Any] | None = None) -> LayerData:
    """The mosaic as a lazy multiscale image placed in the world (nothing is read yet)."""
    placement = frame.placement(mosaic.transform)
    kwargs: dict[str, Any] = {
        "name": name, "multiscale": True, "rgb": mosaic.rgb,
        "scale": placement.scale_rc, "translate": placement.translate_rc,
        "metadata": dict(metadata or {}, path=str(mosaic.path)),
    }
    if mosaic.levels[0].dtype == np.uint8:
        kwargs["contrast_limits"] = (0, 255)
    return list(mosaic.levels), kwargs, "image"


def outline_layer(geometries: Sequence[shapely.Geometry], labels: Sequence[str], frame: WorldFrame, name: str,
                  colours: Sequence[Any] | str = "white", metadata: dict[str, Any] | None = None,
                  ) -> LayerData:
    """Polygon outlines (cells, sites) with a text label each; hollow, not editable."""
    rings, texts, edge = [], [], []
    colour_list = [colours] * len(geometries) if isinstance(colours, str) else list(colours)
    for geom, label, colour in zip(geometries, labels, colour_list, strict=True):
        for ring in frame.rings(geom):
            rings.append(ring)
            texts.append(label)
            edge.append(colour)
    kwargs = {
        "name": name, "shape_type": "polygon", "face_color": "transparent",
        "edge_color": edge or "white", "edge_width": 0.6,
        "features": {"label": texts},
        "text": {"string": "{label}", "color": "white", "size": 9, "anchor": "upper_left"},
        "metadata": dict(metadata or {}),
    }
    return rings, kwargs, "shapes"


def detection_layer(rows: Sequence[dict[str, Any]], frame: WorldFrame, name: str = DETECTIONS_LAYER,
                    metadata: dict[str, Any] | None = None) -> LayerData:
    """All detections as square points sized to their box; features carry id, class, score, status."""
    n = len(rows)
    xs = np.fromiter((r["x"] for r in rows), float, n)
    ys = np.fromiter((r["y"] for r in rows), float, n)
    sizes = np.fromiter((max(r.get("width_m") or 1.0, r.get("height_m") or 1.0) for r in rows), float, n)
    classes = [r["class"] for r in rows]
    statuses = [r.get("review_status") or "pending" for r in rows]
    kwargs = {
        "name": name, "symbol": "square", "size": sizes,
        "border_color": class_border(classes), "face_color": status_fill(statuses),
        "border_width": 0.12, "border_width_is_relative": True,
        "features": {"det_id": [r["det_id"] for r in rows], "class": classes,
                     "score": np.fromiter((r["score"] for r in rows), float, n), "status": statuses},
        "metadata": dict(metadata or {}),
    }
    return frame.to_world(xs, ys) if n else np.zeros((0, 2)), kwargs, "points"
