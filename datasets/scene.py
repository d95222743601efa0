"""The vector description of a synthetic scene: what is drawn, and what is true.

A scene lives in a local metric frame: x east, y north, metres, origin at the world's south-west
corner (worlds) or at the tile's centre (training tiles). Keeping coordinates small keeps float32
pixel maths exact; the georeferenced products add the world's projected origin at the edges.

- :class:`Shape`: one drawable primitive (a polygon or a disc) with a flat colour, the colour of its
  vertical walls, the height of its top above ground and an optional stripe texture.
- :class:`TruthObject`: a labelled object (class in :data:`CLASSES`) or a distractor (class ``None``)
  with its footprint polygon and height: the ground truth.
- :class:`SiteTruth`: a site (kind from ``skysieve.schema.SITE_KINDS``) and whether it hosts illegal work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["CLASSES", "Shape", "TruthObject", "SiteTruth", "Scene", "Sun", "rect", "disc_polygon"]

#: detector classes, in label-index order
CLASSES: tuple[str, ...] = ("tank", "chimney", "drum_stockpile")

RGB = tuple[float, float, float]


@dataclass(frozen=True)
class Sun:
    """Sun direction: azimuth clockwise from north towards the sun, elevation above the horizon (degrees).

    ``shadow`` is how much a full shadow darkens the ground (0 none, 1 black): lower under haze/cloud.
    """

    azimuth_deg: float
    elevation_deg: float
    shadow: float = 0.55

    def shadow_vector(self, height_m: float) -> np.ndarray:
        """Ground offset (dx east, dy north; metres) of the shadow of a point ``height_m`` up."""
        length = height_m / math.tan(math.radians(self.elevation_deg))
        a = math.radians(self.azimuth_deg)
        return -length * np.array([math.sin(a), math.cos(a)])

    def toward(self) -> np.ndarray:
        """Unit ground vector (east, north) pointing towards the sun."""
        a = math.radians(self.azimuth_deg)
        return np.array([math.sin(a), math.cos(a)])


@dataclass(frozen=True, eq=False)
class Shape:
    """A drawable primitive in the scene frame (metres).

    ``kind`` is ``"poly"`` (``pts`` N x 2, x/y) or ``"disc"`` (``pts`` 1 x 2 centre, ``radius_m``).
    ``height_m`` is the top's height above ground (0 = flat paint on the ground); raised shapes cast
    shadows (if ``shadow``) and show ``wall`` colour on their sides in oblique views. ``stripe`` is
    (period m, angle deg from east, amplitude) for ploughed fields and corrugated roofs. ``base_m`` lifts
    the solid's bottom for shadows (tree crowns); the height raster still holds it from the ground.
    """

    kind: str
    pts: np.ndarray
    color: RGB
    height_m: float = 0.0
    radius_m: float = 0.0
    wall: RGB | None = None
    shadow: bool = True
    stripe: tuple[float, float, float] | None = None
    layer: int = 0  # flat shapes: draw order (fields 0, yards 1, roads 2, markings 3)
    base_m: float = 0.0  # bottom of the solid (a tree crown starts above its trunk): shadows start there

    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) in metres."""
        if self.kind == "disc":
            (x, y), r = self.pts[0], self.radius_m
            return (x - r, y - r, x + r, y + r)
        return (*self.pts.min(axis=0), *self.pts.max(axis=0))

    def footprint(self) -> np.ndarray:
        """Outline as a polygon (N x 2, metres); discs become 24-gons."""
        if self.kind == "disc":
            return disc_polygon(self.pts[0], self.radius_m)
        return self.pts


@dataclass(frozen=True, eq=False)
class TruthObject:
    """One object of the ground truth: ``cls`` in :data:`CLASSES`, or ``None`` for a distractor.

    ``polygon`` is the footprint on the ground (N x 2 metres, scene frame), ``height_m`` its top.
    ``kind`` says what it is in detail (``vertical_tank``, ``drum_row``, ``planter``, ...).
    """

    cls: str | None
    kind: str
    polygon: np.ndarray
    height_m: float
    site_id: str | None = None


@dataclass(frozen=True, eq=False)
class SiteTruth:
    """A site: ``kind`` from ``SITE_KINDS``, its boundary polygon (metres) and whether it hosts illegal work."""

    site_id: str
    kind: str
    name: str
    polygon: np.ndarray
    illegal: bool


@dataclass
class Scene:
    """Shapes to draw (in order) and the truth they depict; built by the layout, then read-only."""

    shapes: list[Shape] = field(default_factory=list)
    objects: list[TruthObject] = field(default_factory=list)
    sites: list[SiteTruth] = field(default_factory=list)

    def add(self, shapes: list[Shape], truth: TruthObject | None = None) -> None:
        self.shapes.extend(shapes)
        if truth is not None:
            self.objects.append(truth)

    def bounds_array(self) -> np.ndarray:
        """Bounds of every shape as an (N, 4) array (xmin, ymin, xmax, ymax), for window queries."""
        if not self.shapes:
            return np.zeros((0, 4))
        return np.array([s.bounds() for s in self.shapes], dtype=float)

    def labelled(self) -> list[TruthObject]:
        return [o for o in self.objects if o.cls is not None]


def rect(cx: float, cy: float, width_m: float, length_m: float, angle_deg: float = 0.0) -> np.ndarray:
    """Corners (4 x 2) of a rectangle centred at (cx, cy): ``width`` along x, ``length`` along y before
    turning it ``angle_deg`` counter-clockwise."""
    a = math.radians(angle_deg)
    c, s = math.cos(a), math.sin(a)
    hw, hl = width_m / 2, length_m / 2
    local = np.array([[-hw, -hl], [hw, -hl], [hw, hl], [-hw, hl]])
    return local @ np.array([[c, s], [-s, c]]) + np.array([cx, cy])


def disc_polygon(centre: np.ndarray, radius_m: float, n: int = 24) -> np.ndarray:
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    return np.column_stack([centre[0] + radius_m * np.cos(t), centre[1] + radius_m * np.sin(t)])
