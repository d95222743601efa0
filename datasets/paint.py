"""Rasterising a :class:`~skysieve.datasets.scene.Scene` onto a north-up pixel grid (a true ortho).

Pure functions on numpy arrays. The same painter makes the world's orthophoto (window by window),
the local ground patch each simulated photo is ray-cast against, and training tiles, so all three
agree. Textures are functions of scene coordinates (not of the window), so windows join seamlessly.

Pixel convention (as everywhere in skysieve): pixel (col, row) covers [col, col+1) x [row, row+1);
its centre is at scene x = x0 + (col + 0.5) * gsd, y = y_top - (row + 0.5) * gsd.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from skysieve.datasets.scene import Shape, Sun

__all__ = ["GridView", "NoiseField", "Layers", "PaintStyle", "paint"]

_SHIFT = 4  # cv2 fixed-point bits: 1/16 pixel
_ONE = 1 << _SHIFT


@dataclass(frozen=True)
class GridView:
    """A north-up pixel grid over the scene frame: top-left corner (x0, y_top) metres, square pixels."""

    x0: float
    y_top: float
    gsd_m: float
    rows: int
    cols: int

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) metres."""
        return (self.x0, self.y_top - self.rows * self.gsd_m, self.x0 + self.cols * self.gsd_m, self.y_top)

    def to_px(self, xy: np.ndarray) -> np.ndarray:
        """Scene x/y (N x 2, metres) to continuous pixel (col, row); centres at +0.5."""
        xy = np.asarray(xy, dtype=float)
        return np.column_stack([(xy[:, 0] - self.x0) / self.gsd_m, (self.y_top - xy[:, 1]) / self.gsd_m])

    def to_xy(self, colrow: np.ndarray) -> np.ndarray:
        colrow = np.asarray(colrow, dtype=float)
        return np.column_stack([self.x0 + colrow[:, 0] * self.gsd_m, self.y_top - colrow[:, 1] * self.gsd_m])

    def _cv(self, xy: np.ndarray) -> np.ndarray:
        """Fixed-point cv2 coordinates (cv2 puts integer coordinates at pixel centres)."""
        return np.round((self.to_px(xy) - 0.5) * _ONE).astype(np.int32)


class NoiseField:
    """Seeded value noise over a rectangle of the scene frame, sampled into any :class:`GridView`.

    Octaves are (spacing m, amplitude); the sum has mean 0. Sampling is bilinear, so the field is the
    same function of (x, y) whatever the window: adjacent windows join without seams.
    """

    def __init__(self, seed: int, bounds: tuple[float, float, float, float],
                 octaves: tuple[tuple[float, float], ...] = ((30.0, 0.10), (5.0, 0.06), (0.7, 0.05))) -> None:
        rng = np.random.default_rng(seed)
        self.x0, self.y0, x1, y1 = bounds
        self.y_top = y1
        self.grids = []
        for spacing, amp in octaves:
            shape = (int(math.ceil((y1 - self.y0) / spacing)) + 3, int(math.ceil((x1 - self.x0) / spacing)) + 3)
            self.grids.append((spacing, (rng.standard_normal(shape) * amp).astype(np.float32)))

    def sample(self, view: GridView, octaves: slice = slice(None)) -> np.ndarray:
        """The field on ``view``'s pixel centres (rows x cols float32)."""
        out = np.zeros((view.rows, view.cols), np.float32)
        for spacing, grid in self.grids[octaves]:
            k = view.gsd_m / spacing
            m = np.array([[k, 0, (view.x0 - self.x0 + 0.5 * view.gsd_m) / spacing + 1],
                          [0, k, (self.y_top - view.y_top + 0.5 * view.gsd_m) / spacing + 1]], np.float64)
            out += cv2.warpAffine(grid, m, (view.cols, view.rows), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                  borderMode=cv2.BORDER_REFLECT)
        return out


@dataclass(frozen=True)
class PaintStyle:
    """Ground colour and light for a scene (RGB 0..1)."""

    ground: tuple[float, float, float]
    sun: Sun
    texture: float = 1.0  # scales the noise field's amplitude
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)  # white balance / season cast
    penumbra_m: float = 0.15


@dataclass(frozen=True)
class Layers:
    """A painted window: ``rgb`` and ``wall`` (rows x cols x 3, float32 0..1), ``height`` (rows x cols, m)."""

    rgb: np.ndarray
    wall: np.ndarray
    height: np.ndarray


def _query(bounds: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    xmin, ymin, xmax, ymax = box
    if len(bounds) == 0:
        return np.zeros(0, dtype=int)
    hit = (bounds[:, 0] < xmax) & (bounds[:, 2] > xmin) & (bounds[:, 1] < ymax) & (bounds[:, 3] > ymin)
    return np.flatnonzero(hit)


def _fill(img: np.ndarray, view: GridView, shape: Shape, value) -> None:
    if shape.kind == "disc":
        c = view._cv(shape.pts[:1])[0]
        r = max(1, int(round(shape.radius_m / view.gsd_m * _ONE)))
        cv2.circle(img, (int(c[0]), int(c[1])), r, value, -1, cv2.LINE_8, _SHIFT)
    else:
        cv2.fillPoly(img, [view._cv(shape.pts)], value, cv2.LINE_8, shift=_SHIFT)


_WAVE = (1.0 + np.sin(np.linspace(0, 2 * math.pi, 64, endpoint=False))).astype(np.float32)[None, :]


def _stripes(rgb: np.ndarray, view: GridView, shape: Shape) -> None:
    """Modulate the pixels of ``shape`` by a sine wave of ``shape.stripe`` (a function of scene x/y)."""
    period, angle, amp = shape.stripe
    xmin, ymin, xmax, ymax = shape.bounds()
    c0 = max(0, int((xmin - view.x0) / view.gsd_m))
    c1 = min(view.cols, int(math.ceil((xmax - view.x0) / view.gsd_m)) + 1)
    r0 = max(0, int((view.y_top - ymax) / view.gsd_m))
    r1 = min(view.rows, int(math.ceil((view.y_top - ymin) / view.gsd_m)) + 1)
    if c0 >= c1 or r0 >= r1 or amp <= 0:
        return
    sub = GridView(view.x0 + c0 * view.gsd_m, view.y_top - r0 * view.gsd_m, view.gsd_m, r1 - r0, c1 - c0)
    mask = np.zeros((sub.rows, sub.cols), np.uint8)
    _fill(mask, sub, shape, 1)
    # phase (in wave samples) of pixel (c, r): k * (x cos a + y sin a), x/y at the pixel centre
    a = math.radians(angle)
    k = _WAVE.shape[1] / period
    ca, sa = math.cos(a), math.sin(a)
    g = sub.gsd_m
    m = np.array([[k * g * ca, -k * g * sa, k * ((sub.x0 + 0.5 * g) * ca + (sub.y_top - 0.5 * g) * sa)],
                  [0.0, 0.0, 0.0]])
    m[0, 2] %= _WAVE.shape[1]
    wave = cv2.warpAffine(_WAVE, m, (sub.cols, sub.rows), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_WRAP)
    pattern = (1.0 - amp) + amp * wave  # mean 1: (1 - amp) .. (1 + amp)
    pattern[mask == 0] = 1.0
    region = rgb[r0:r1, c0:c1]
    np.multiply(region, pattern[:, :, None], out=region)


def _shadow_hull(view: GridView, shape: Shape, sun: Sun) -> np.ndarray:
    base = shape.footprint()
    low = base + sun.shadow_vector(shape.base_m) if shape.base_m > 0 else base
    moved = base + sun.shadow_vector(shape.height_m)
    pts = view._cv(np.vstack([low, moved]))
    return cv2.convexHull(pts)


def _ground(shapes: list[Shape], idx: np.ndarray, wide: np.ndarray, view: GridView, style: PaintStyle,
            noise: NoiseField | None, base: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """The ground of ``view``: flat shapes, texture and shadows (rgb), and the finest noise octave (or None)."""
    if base is not None:
        rgb = base.astype(np.float32, copy=True)
    else:
        rgb = np.empty((view.rows, view.cols, 3), np.float32)
        rgb[:] = style.ground
    for i in sorted((i for i in idx if shapes[i].height_m <= 0), key=lambda i: shapes[i].layer):
        s = shapes[i]
        _fill(rgb, view, s, s.color)
        if s.stripe is not None:
            _stripes(rgb, view, s)
    factor = fine = None
    if noise is not None and style.texture > 0:
        fine = noise.sample(view, slice(-1, None))  # the finest octave is reused as grime on raised surfaces
        factor = noise.sample(view, slice(None, -1))
        factor += fine
        factor *= style.texture
        factor += 1.0
    shade = np.zeros((view.rows, view.cols), np.uint8)
    for i in wide:
        s = shapes[i]
        if s.height_m > 0 and s.shadow:
            cv2.fillPoly(shade, [_shadow_hull(view, s, style.sun)], 255, cv2.LINE_8, shift=_SHIFT)
    if shade.any():
        k = 2 * int(round(2 * max(0.5, style.penumbra_m / view.gsd_m))) + 1
        shade = cv2.stackBlur(shade, (k, k))
        lut = (1.0 - style.sun.shadow * np.arange(256, dtype=np.float32) / 255).astype(np.float32)
        factor = lut[shade] if factor is None else factor * lut[shade]
    if factor is not None:
        rgb *= factor[:, :, None]
    return rgb, fine


def paint(shapes: list[Shape], bounds: np.ndarray, view: GridView, style: PaintStyle,
          noise: NoiseField | None = None, walls: bool = True, base: np.ndarray | None = None,
          ground_step: int = 1) -> Layers:
    """Paint ``shapes`` (with their precomputed ``bounds``, N x 4) into ``view``: a true ortho.

    Flat shapes are drawn in layer order, then the ground is textured by ``noise`` and shadowed, then
    raised shapes are drawn lowest first, so each pixel shows the highest surface above it.
    ``walls=False`` skips the wall-colour layer (a true ortho never shows walls); ``rgb`` may then
    exceed 1 slightly where texture brightens it: clip or saturate when converting. ``base``
    (rows x cols x 3 float32 0..1) replaces the plain ground colour: a real photo to paint objects on.
    ``ground_step`` = 2 paints the ground (fields, roads, texture, shadows: nothing finer than the
    0.7 m noise or a soft shadow edge) at half resolution and enlarges it: a quarter of the work for
    big orthos at a few cm/px; raised objects are always drawn at full resolution.
    """
    if base is not None and base.shape != (view.rows, view.cols, 3):
        raise ValueError(f"base image {base.shape} does not match the view {(view.rows, view.cols, 3)}")
    box = view.bounds
    reach = 0.0
    idx = _query(bounds, box)
    tall = [i for i in range(len(shapes)) if shapes[i].height_m > 0 and shapes[i].shadow]
    if tall:
        reach = max(shapes[i].height_m for i in tall) / math.tan(math.radians(style.sun.elevation_deg))
    wide = _query(bounds, (box[0] - reach, box[1] - reach, box[2] + reach, box[3] + reach))
    k = max(1, int(ground_step))
    if k == 1 or base is not None:
        rgb, fine = _ground(shapes, idx, wide, view, style, noise, base)
    else:
        small = GridView(view.x0, view.y_top, view.gsd_m * k, -(-view.rows // k), -(-view.cols // k))
        rgb, fine = _ground(shapes, idx, wide, small, style, noise, None)
        size = (small.cols * k, small.rows * k)
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR)[:view.rows, :view.cols]
        if fine is not None:
            fine = cv2.resize(fine, size, interpolation=cv2.INTER_LINEAR)[:view.rows, :view.cols]
        rgb = np.ascontiguousarray(rgb)
    wall = np.zeros_like(rgb) if walls else np.zeros((1, 1, 3), np.float32)
    height = np.zeros((view.rows, view.cols), np.float32)

    raised = sorted((i for i in idx if shapes[i].height_m > 0), key=lambda i: shapes[i].height_m)
    for i in raised:
        s = shapes[i]
        _fill(rgb, view, s, s.color)
        if s.stripe is not None:
            _stripes(rgb, view, s)
        if walls and (s.shadow or s.wall is not None or sum(s.color) > 0.6):  # dark holes and vents: no walls
            _fill(wall, view, s, s.wall if s.wall is not None else tuple(0.8 * c for c in s.color))
        _fill(height, view, s, float(s.height_m))
    if fine is not None and raised:  # grime and wear on roofs, tanks and trees too
        grain = np.where(height > 0, fine * (0.8 * style.texture) + 1.0, np.float32(1.0)).astype(np.float32)
        rgb *= grain[:, :, None]
    if style.tint != (1.0, 1.0, 1.0):
        cv2.multiply(rgb, (*style.tint, 0.0), dst=rgb)
    if walls:
        np.clip(rgb, 0.0, 1.0, out=rgb)
    return Layers(rgb, wall, height)
