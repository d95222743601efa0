"""napari layer data for a workspace: mosaics, outlines, detections. No Qt, no viewer.

Each function returns a napari ``LayerData`` tuple ``(data, kwargs, layer_type)`` in world
coordinates of a :class:`~skysieve.viewer.world.WorldFrame` (metres, north up), so the npe2 reader
and the review widget build the same layers.

Detections are two layers that stay fast with tens of thousands of flags (a Shapes layer slows down
past a few thousand): their boxes as line segments in the class colour (a Vectors layer, built once),
and one Points layer of small status marks (fill = review status, pending: none; border = class),
the layer a review step recolours, one point at a time (:mod:`skysieve.viewer._redraw`). The widget
frames the current detection with a line drawn by vispy (:class:`skysieve.viewer._redraw.FlagFrame`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import shapely

from skysieve.viewer.cog import MultiscaleMosaic
from skysieve.viewer.world import WorldFrame

__all__ = ["CLASS_COLOURS", "STATUS_FILL", "SITE_COLOURS", "mosaic_layer", "outline_layer",
           "detection_layer", "box_layer", "box_bounds", "status_fill", "class_border", "DETECTIONS_LAYER",
           "BOXES_LAYER", "CELLS_LAYER", "SITES_LAYER", "WORKSPACE_KEY", "MARK_PX", "MARK_MIN_PX",
           "BOX_LINE_M"]

LayerData = tuple[Any, dict[str, Any], str]

#: metadata key naming the workspace on every layer skysieve makes (the widget finds it there)
WORKSPACE_KEY = "skysieve_workspace"

DETECTIONS_LAYER = "detections"
CELLS_LAYER = "cells"
SITES_LAYER = "sites"
BOXES_LAYER = "detection boxes"

#: side of a detection's status mark on screen: at most, and at least (pixels)
MARK_PX = 12
MARK_MIN_PX = 8
#: width of the box outlines (metres on the ground: 3 px at the zoom a flag is reviewed at)
BOX_LINE_M = 0.18

#: border colour (RGBA 0-1) per detection class
CLASS_COLOURS: dict[str, tuple[float, float, float, float]] = {
    "tank": (1.0, 0.55, 0.0, 1.0),  # orange
    "chimney": (1.0, 0.2, 0.8, 1.0),  # magenta
    "drum_stockpile": (0.1, 0.85, 1.0, 1.0),  # cyan
}
_OTHER_CLASS = (1.0, 1.0, 1.0, 1.0)

#: fill colour (RGBA 0-1) of a detection's status mark per review status; pending marks are hollow
STATUS_FILL: dict[str, tuple[float, float, float, float]] = {
    "pending": (0.0, 0.0, 0.0, 0.0),
    "confirmed": (0.1, 0.9, 0.2, 1.0),  # green
    "rejected": (0.55, 0.55, 0.55, 1.0),  # grey
    "unsure": (1.0, 0.9, 0.0, 1.0),  # yellow
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
    """Polygon outlines (cells, sites) with a text label each, as closed paths; not editable.

    Paths, not hollow polygons: a polygon's transparent face is still rasterised, and the open cell's
    face covers the whole map (a full-screen blend in every frame under software OpenGL).
    """
    rings, texts, edge = [], [], []
    colour_list = [colours] * len(geometries) if isinstance(colours, str) else list(colours)
    for geom, label, colour in zip(geometries, labels, colour_list, strict=True):
        for ring in frame.rings(geom):
            rings.append(np.vstack([ring, ring[:1]]))  # closed
            texts.append(label)
            edge.append(colour)
    kwargs = {
        "name": name, "shape_type": "path", "face_color": "transparent",
        "edge_color": edge or "white", "edge_width": 0.6,
        "features": {"label": texts},
        "text": {"string": "{label}", "color": "white", "size": 9, "anchor": "upper_left"},
        "metadata": dict(metadata or {}),
    }
    return rings, kwargs, "shapes"


def box_bounds(rows: Sequence[dict[str, Any]]) -> np.ndarray:
    """``(N, 4)`` box bounds ``(minx, miny, maxx, maxy)`` in workspace metres (the geometry, else x/y/size)."""
    out = np.empty((len(rows), 4))
    for i, r in enumerate(rows):
        geom = r.get("geometry")
        if geom is not None and not geom.is_empty:
            out[i] = geom.bounds
        else:
            hw, hh = (r.get("width_m") or 1.0) / 2, (r.get("height_m") or 1.0) / 2
            out[i] = (r["x"] - hw, r["y"] - hh, r["x"] + hw, r["y"] + hh)
    return out


def detection_layer(rows: Sequence[dict[str, Any]], frame: WorldFrame, name: str = DETECTIONS_LAYER,
                    metadata: dict[str, Any] | None = None) -> LayerData:
    """Every detection's status mark: fill = review status, border = class; features carry id, class, score, status.

    A mark is half its box's side, kept between :data:`MARK_MIN_PX` and :data:`MARK_PX` screen pixels
    (so :data:`MARK_PX` wherever a flag is reviewed, and smaller than its box in a zoomed-out view), on
    the box's north-west corner (it does not hide the object). Boxes drawn as filled squares cost the software rasteriser ~200 ms a frame where
    thousands overlap; the outlines are :func:`box_layer`.
    """
    n = len(rows)
    bounds = box_bounds(rows)
    half_side = np.maximum(bounds[:, 2] - bounds[:, 0], bounds[:, 3] - bounds[:, 1]) / 2
    classes = [r["class"] for r in rows]
    statuses = [r.get("review_status") or "pending" for r in rows]
    kwargs = {
        "name": name, "symbol": "square", "size": half_side, "canvas_size_limits": (MARK_MIN_PX, MARK_PX),
        "border_color": class_border(classes), "face_color": status_fill(statuses),
        "border_width": 0.18, "border_width_is_relative": True,
        "features": {"det_id": [r["det_id"] for r in rows], "class": classes,
                     "score": np.fromiter((r["score"] for r in rows), float, n), "status": statuses},
        "metadata": dict(metadata or {}),
    }
    return frame.to_world(bounds[:, 0], bounds[:, 3]) if n else np.zeros((0, 2)), kwargs, "points"


def box_layer(rows: Sequence[dict[str, Any]], frame: WorldFrame, name: str = BOXES_LAYER,
              metadata: dict[str, Any] | None = None) -> LayerData:
    """Every detection's box as four line segments in its class colour (a napari Vectors layer).

    Lines cost the rasteriser their outline only; the boxes never change during a review (status is on
    the marks of :func:`detection_layer`), so this layer is built once per cell.
    """
    n = len(rows)
    b = box_bounds(rows)
    nw, ne = frame.to_world(b[:, 0], b[:, 3]), frame.to_world(b[:, 2], b[:, 3])
    se, sw = frame.to_world(b[:, 2], b[:, 1]), frame.to_world(b[:, 0], b[:, 1])
    starts = np.stack([nw, ne, se, sw], axis=1)  # (N, 4 edges, 2)
    steps = np.stack([ne - nw, se - ne, sw - se, nw - sw], axis=1)
    vectors = np.stack([starts, steps], axis=2).reshape(-1, 2, 2)  # (4N, [start, step], (row, col))
    colours = np.repeat(class_border([r["class"] for r in rows]), 4, axis=0)
    kwargs = {
        "name": name, "edge_width": BOX_LINE_M, "edge_color": colours if n else "white", "vector_style": "line",
        "metadata": dict(metadata or {}),
    }
    return vectors if n else np.zeros((0, 2, 2)), kwargs, "vectors"
