"""A surface model (DSM) per cell from the photos' parallax, and what a true ortho needs of it.

A photo placed on the ground plane by its homography shows a point ``X`` at height ``h`` above the plane
where the ray from its camera (plane position ``c``, height ``H``) through the point meets the plane::

    g = c + (X - c) H / (H - h)

so trees, buildings, tanks and the slope of the ground lean away from each photo's nadir, by a different
amount in each photo. Where two photos overlap, their plane warps differ at a point by ``g_j - g_i =
h v`` with ``v = (g_j - c_j) / H_j - (g_i - c_i) / H_i`` (along the baseline, about ``|c_i - c_j| / H``
per metre of height). Per cell, once, on a coarse grid (``gsd_m``, about 0.25 m):

1. each photo's camera position and height are read off its adjusted homography and its focal length
   (:func:`camera_centre`); each photo is decoded small, gain-compensated, warped onto the grid (grey);
2. for every overlapping pair with a usable baseline (``min_base``: baseline over height), dense optical
   flow (OpenCV's DIS) both ways over the overlap; a pixel gives a height where the flow is textured, the
   forward and backward flows agree and the flow runs along ``v`` (the epipolar direction); the height is
   put where the point stands (``X``), not where it leans to;
3. every cell's heights from all pairs are fused by a weighted median (weight ``|v|^2``: the inverse of a
   height's variance); cells with fewer than ``min_samples`` heights stay empty; a 5 x 5 median removes
   speckle. What is measured, with holes filled up to ``fill_m``, is the DSM written beside the ortho
   (``dsm.tif``); for rendering every remaining hole is filled from its surroundings (featureless water, a
   roof too uniform to match: the plane through its neighbours rather than the flat plane), and heights
   under ``min_height_m`` count as the plane: the DSM's noise on flat ground (the photos' residual
   misplacement read as parallax, smooth over metres) would otherwise move flat ground about;
4. per photo, which cells it sees (:func:`visible`): the ray from a cell to the camera must clear the DSM;
   the seams (:mod:`~skysieve.mosaic.seamcut`) give each cell to a photo that sees it.

Rendering (:mod:`~skysieve.mosaic.render`) then samples photo ``i`` for output ground point ``X`` at the
photo pixel of ``g_i(X)`` with ``h(X)`` from the DSM (:func:`photo_pixels`): a true ortho. A coarse DSM does
not resolve a thin chimney (it stays leaning as on the plane); roofs, tanks, trees and the terrain move to
their footprint. Heights are above the cell's ground plane (the plane the adjustment placed the photos
on), metres.
"""

from __future__ import annotations

import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from skysieve.cpus import usable_cpus
from skysieve.errors import MosaicError
from skysieve.mosaic.photos import grid_pixels

__all__ = ["SurfaceSettings", "Surface", "SURFACE_METHODS", "camera_centre", "camera_position", "build_surface",
           "photo_pixels", "visible", "write_dsm", "DSM_NODATA"]

log = logging.getLogger(__name__)

SURFACE_METHODS = ("dsm", "plane")
DSM_NODATA = -9999.0


@dataclass(frozen=True)
class SurfaceSettings:
    """The surface photos are projected from (``surface`` and ``dsm_*`` of the ``[mosaic]`` table)."""

    method: str = "dsm"  # "dsm": heights from the photos' parallax (a true ortho); "plane": the ground plane
    gsd_m: float = 0.25  # DSM cell (metres)
    min_base: float = 0.05  # pairs whose baseline is under this share of the flying height are not matched
    max_pairs_per_photo: int = 8  # each photo is matched with at most this many neighbours (overlap x base^2)
    min_texture: float = 3.0  # grey-level gradient (per DSM cell, smoothed) below which a cell gives no height
    max_flow_error: float = 0.75  # forward-backward and across-epipolar flow disagreement allowed (DSM cells)
    min_samples: int = 2  # heights a cell needs (from different pairs) to be measured
    fill_m: float = 2.0  # dsm.tif: holes up to this far from measured cells are filled, the rest nodata
    min_height_m: float = 0.5  # rendering takes heights under this as the plane (ramping in up to twice it)

    def check(self) -> None:
        if self.method not in SURFACE_METHODS:
            raise MosaicError(f"unknown surface {self.method!r}",
                              hint=f"set [mosaic] surface to one of {', '.join(SURFACE_METHODS)}")
        if not (self.gsd_m > 0 and self.min_base > 0 and self.max_pairs_per_photo >= 1 and self.min_samples >= 1
                and self.fill_m >= 0 and self.max_flow_error > 0 and self.min_height_m >= 0):
            raise MosaicError("DSM settings must be positive (dsm_gsd_m, dsm_min_base > 0; dsm_min_height_m >= 0)")


@dataclass(frozen=True)
class Surface:
    """A DSM on a north-up grid (:class:`~skysieve.mosaic.render.OutputGrid`): ``heights`` (float32, metres
    above the ground plane, every cell filled: what rendering uses), ``measured`` (NaN where no height was
    measured or filled within ``fill_m``: what ``dsm.tif`` holds) and per photo its camera's plane position
    and height (``cameras``: n x 3) and which cells it sees (``seen``: per photo None = all, or a bool array
    over its block ``(r0, c0, mask)``)."""

    grid: object
    heights: np.ndarray
    measured: np.ndarray
    cameras: np.ndarray
    seen: list

    def sample(self, gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
        """Heights (float32) at ground points (bilinear; the edge value beyond the grid)."""
        import cv2

        g = self.grid
        mx = ((gx - g.x_min) / g.gsd_m - 0.5).astype(np.float32)
        my = ((g.y_max - gy) / g.gsd_m - 0.5).astype(np.float32)
        return cv2.remap(self.heights, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def seen_at(self, i: int, gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
        """Photo ``i``'s visibility (float32 0-1, bilinear) at ground points."""
        import cv2

        if self.seen[i] is None:
            return np.ones(np.shape(gx), np.float32)
        r0, c0, mask = self.seen[i]
        g = self.grid
        mx = ((gx - g.x_min) / g.gsd_m - 0.5 - c0).astype(np.float32)
        my = ((g.y_max - gy) / g.gsd_m - 0.5 - r0).astype(np.float32)
        return cv2.remap(mask.astype(np.float32), mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                         borderValue=1.0)


def camera_centre(pp) -> np.ndarray:
    """(x, y, height) of a placed photo's camera (:func:`camera_position` of its camera and placement)."""
    return camera_position(pp.photo.camera, pp.homography, pp.centre_xy)


def camera_position(cam, homography: np.ndarray, centre_xy) -> np.ndarray:
    """(x, y, height) of the camera ``cam`` (focal length, principal point) whose pixel -> ground homography
    is ``homography``: its position over the ground plane and its height above it (metres). ``centre_xy``:
    a ground point near the photo (its centre), about which the algebra runs.

    The ground -> pixel homography of a pinhole camera is ``K [r1 r2 t]`` up to scale; the camera centre is
    ``-R^T t``. The adjustment's small affine corrections keep ``[r1 r2]`` nearly orthonormal.
    """
    o = np.asarray(centre_xy, float)  # about the photo's centre: UTM coordinates lose digits otherwise
    g = np.linalg.inv(homography) @ np.array([[1.0, 0.0, o[0]], [0.0, 1.0, o[1]], [0.0, 0.0, 1.0]])
    k = np.array([[cam.focal_px, 0.0, cam.cx], [0.0, cam.focal_px, cam.cy], [0.0, 0.0, 1.0]])
    m = np.linalg.inv(k) @ g
    lam = 0.5 * (np.linalg.norm(m[:, 0]) + np.linalg.norm(m[:, 1]))
    r1, r2, t = m[:, 0] / lam, m[:, 1] / lam, m[:, 2] / lam
    rot = np.column_stack([r1, r2, np.cross(r1, r2)])
    c = -rot.T @ t
    # the homography's scale has no sign: the other one mirrors the camera below the plane (x, y the same)
    return np.array([c[0] + o[0], c[1] + o[1], abs(c[2])])


def photo_pixels(pp, camera: np.ndarray, gx: np.ndarray, gy: np.ndarray, h: np.ndarray | None):
    """Native photo pixels (u, v; camera convention) where photo ``pp`` shows ground point (gx, gy) at
    height ``h`` above the plane (None: on the plane). ``camera``: its (x, y, height)."""
    m = np.linalg.inv(pp.homography)
    # about the camera, in float64: float32 keeps only ~6 cm of a UTM coordinate
    dx, dy = np.asarray(gx, np.float64) - camera[0], np.asarray(gy, np.float64) - camera[1]
    if h is not None:
        f = camera[2] / (camera[2] - np.minimum(np.asarray(h, np.float64), 0.9 * camera[2]))  # H / (H - h)
        dx, dy = dx * f, dy * f
    m = m @ np.array([[1.0, 0.0, camera[0]], [0.0, 1.0, camera[1]], [0.0, 0.0, 1.0]])
    den = m[2, 0] * dx + m[2, 1] * dy + m[2, 2]
    return (((m[0, 0] * dx + m[0, 1] * dy + m[0, 2]) / den).astype(np.float32),
            ((m[1, 0] * dx + m[1, 1] * dy + m[1, 2]) / den).astype(np.float32))


def _warp(pp, grid):
    """The photo, grey and gain-compensated, warped onto the DSM grid over its footprint (the plane): a
    :class:`~skysieve.mosaic.seamcut._Patch` (its block of the grid, the grey pixels, where it is whole)."""
    import cv2

    from skysieve.mosaic.seamcut import _Patch, read_small
    from skysieve.mosaic.seams import apply_gain_bgr, edge_taper

    g = grid.gsd_m
    minx, miny, maxx, maxy = pp.footprint().bounds
    c0, c1 = max(0, math.floor((minx - grid.x_min) / g)), min(grid.width, math.ceil((maxx - grid.x_min) / g))
    r0, r1 = max(0, math.floor((grid.y_max - maxy) / g)), min(grid.height, math.ceil((grid.y_max - miny) / g))
    if c1 - c0 < 8 or r1 - r0 < 8:
        return None
    a = np.array([[g, 0.0, grid.x_min + (c0 + 0.5) * g], [0.0, -g, grid.y_max - (r0 + 0.5) * g], [0, 0, 1.0]])
    m = np.linalg.inv(pp.homography) @ a
    cam = pp.photo.camera
    cols, rows = np.meshgrid(np.arange(c1 - c0, dtype=np.float32), np.arange(r1 - r0, dtype=np.float32))
    u, v = grid_pixels(m, cols, rows)
    inner = edge_taper(u, v, cam.width_px, cam.height_px, 0.02 * cam.width_px) > 0.999
    if inner.sum() < 64:
        return None
    img, sx, sy = read_small(pp.photo, min(1.0, 1.5 * pp.photo.gsd_m / g))
    img = apply_gain_bgr(img, pp.gain)
    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    to_src = np.array([[sx, 0.0, -0.5], [0.0, sy, -0.5], [0.0, 0.0, 1.0]]) @ m
    warped = cv2.warpPerspective(grey, to_src, (c1 - c0, r1 - r0), flags=cv2.INTER_AREA | cv2.WARP_INVERSE_MAP,
                                 borderMode=cv2.BORDER_REPLICATE)
    return _Patch(r0, c0, warped, inner, np.zeros(2))


def _pairs(placed, warps, cameras, settings: SurfaceSettings) -> list[tuple[int, int]]:
    """Overlapping pairs with a usable baseline, at most ``max_pairs_per_photo`` per photo (widest overlaps)."""
    n = len(placed)
    cand = []
    for i in range(n):
        wi = warps[i]
        if wi is None:
            continue
        for j in range(i + 1, n):
            wj = warps[j]
            if wj is None:
                continue
            base = float(np.hypot(*(cameras[i, :2] - cameras[j, :2])))
            if base < settings.min_base * 0.5 * (cameras[i, 2] + cameras[j, 2]):
                continue
            r0, r1, c0, c1 = max(wi.r0, wj.r0), min(wi.r1, wj.r1), max(wi.c0, wj.c0), min(wi.c1, wj.c1)
            if r1 - r0 < 16 or c1 - c0 < 16:
                continue
            both = int((wi.inner[wi.block(r0, r1, c0, c1)] & wj.inner[wj.block(r0, r1, c0, c1)]).sum())
            if both >= 256:  # a height's precision goes with the baseline: prefer long baselines over big overlaps
                cand.append((both * (base / (0.5 * (cameras[i, 2] + cameras[j, 2]))) ** 2, i, j))
    cand.sort(reverse=True)
    count = np.zeros(n, int)
    out = []
    for _, i, j in cand:
        if count[i] < settings.max_pairs_per_photo and count[j] < settings.max_pairs_per_photo:
            out.append((i, j))
            count[i] += 1
            count[j] += 1
    return out


def _pair_flow(i: int, j: int, warps, grid, settings: SurfaceSettings):
    """(i, j, ground x, y of the usable pixels of photo i's warp over the overlap, and where photo j's warp
    shows the same points: dx, dy; metres, float64), or None."""
    import cv2

    wi, wj = warps[i], warps[j]
    r0, r1, c0, c1 = max(wi.r0, wj.r0), min(wi.r1, wj.r1), max(wi.c0, wj.c0), min(wi.c1, wj.c1)
    si, sj = wi.block(r0, r1, c0, c1), wj.block(r0, r1, c0, c1)
    a, b = np.ascontiguousarray(wi.img[si]), np.ascontiguousarray(wj.img[sj])
    ma, mb = wi.inner[si], wj.inner[sj]
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    fw = dis.calc(a, b, None)  # a(x) ~ b(x + fw(x))
    bw = dis.calc(b, a, None)
    hgt, wid = a.shape
    cols, rows = np.meshgrid(np.arange(wid, dtype=np.float32), np.arange(hgt, dtype=np.float32))
    tx, ty = cols + fw[..., 0], rows + fw[..., 1]
    back = cv2.remap(bw, tx, ty, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(1e3, 1e3))
    to_b = cv2.remap(mb.astype(np.uint8), tx, ty, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT) > 0
    gx_ = cv2.Sobel(a, cv2.CV_32F, 1, 0, ksize=3) / 8
    gy_ = cv2.Sobel(a, cv2.CV_32F, 0, 1, ksize=3) / 8
    texture = cv2.blur(np.sqrt(gx_ * gx_ + gy_ * gy_), (5, 5))
    ok = ma & to_b & (texture >= settings.min_texture)
    ok &= np.hypot(fw[..., 0] + back[..., 0], fw[..., 1] + back[..., 1]) <= settings.max_flow_error
    if ok.sum() < 16:
        return None
    g = grid.gsd_m
    # ground of each pixel in photo i's warp, and where photo j's warp shows the same point
    xi = (grid.x_min + (c0 + cols[ok] + 0.5) * g).astype(np.float64)
    yi = (grid.y_max - (r0 + rows[ok] + 0.5) * g).astype(np.float64)
    return i, j, xi, yi, fw[..., 0][ok].astype(np.float64) * g, -fw[..., 1][ok].astype(np.float64) * g


def _epipolar(flow, cameras, g: float, settings: SurfaceSettings):
    """Per usable sample of a pair's flow: (mask of the flow's samples kept, height, v_x, v_y, and the ground
    x, y where the point stands), or None. Kept: along the epipolar direction ``v`` within
    ``max_flow_error`` cells, and a height neither near the cameras nor far below the plane."""
    i, j, xi, yi, dx, dy = flow
    xj, yj = xi + dx, yi + dy
    ci, cj = cameras[i], cameras[j]
    vx = (xj - cj[0]) / cj[2] - (xi - ci[0]) / ci[2]
    vy = (yj - cj[1]) / cj[2] - (yi - ci[1]) / ci[2]
    vv = np.maximum(vx * vx + vy * vy, 1e-12)
    h = (dx * vx + dy * vy) / vv
    across = np.abs(dx * vy - dy * vx) / np.sqrt(vv)  # metres off the epipolar line
    keep = (across <= settings.max_flow_error * g) & (h < 0.8 * min(ci[2], cj[2])) & (h > -0.5 * min(ci[2], cj[2]))
    if keep.sum() < 16:
        return None
    h = h[keep]
    # where the point stands: on the ray from each camera, at its height (the mean of the two rays)
    x = 0.5 * (ci[0] + (xi[keep] - ci[0]) * (1 - h / ci[2]) + cj[0] + (xj[keep] - cj[0]) * (1 - h / cj[2]))
    y = 0.5 * (ci[1] + (yi[keep] - ci[1]) * (1 - h / ci[2]) + cj[1] + (yj[keep] - cj[1]) * (1 - h / cj[2]))
    return keep, h, vx[keep], vy[keep], x, y


def _pair_heights(flow, cameras, grid, settings: SurfaceSettings):
    """(flat cell index, height, weight) of every usable pixel of a pair's flow (:func:`_pair_flow`)."""
    e = _epipolar(flow, cameras, grid.gsd_m, settings)
    if e is None:
        return None
    _, h, vx, vy, x, y = e
    col = np.floor((x - grid.x_min) / grid.gsd_m).astype(np.int64)
    row = np.floor((grid.y_max - y) / grid.gsd_m).astype(np.int64)
    inside = (col >= 0) & (col < grid.width) & (row >= 0) & (row < grid.height)
    cell = row[inside] * grid.width + col[inside]
    return (cell.astype(np.int32) if grid.width * grid.height < 2 ** 31 else cell, h[inside].astype(np.float32),
            (vx * vx + vy * vy)[inside].astype(np.float32))


def _weighted_median(cell: np.ndarray, h: np.ndarray, w: np.ndarray, n_cells: int, min_samples: int) -> np.ndarray:
    """Per cell the weighted median of its heights (NaN with fewer than ``min_samples``)."""
    out = np.full(n_cells, np.nan, np.float32)
    if not len(cell):
        return out
    order = np.lexsort((h, cell))
    cell, h, w = cell[order], h[order], w[order].astype(np.float64)
    starts = np.flatnonzero(np.r_[True, cell[1:] != cell[:-1]])
    counts = np.diff(np.r_[starts, len(cell)])
    cum = np.cumsum(w)
    before = np.r_[0.0, cum][starts]
    total = np.add.reduceat(w, starts)
    # first sample of each group whose cumulative weight reaches half the group's
    half = np.repeat(before + 0.5 * total, counts)
    reach = cum >= half
    first = np.minimum.reduceat(np.where(reach, np.arange(len(cell)), len(cell)), starts)
    good = counts >= min_samples
    out[cell[starts[good]]] = h[np.minimum(first[good], len(cell) - 1)]
    return out


def _fill(heights: np.ndarray, holes: np.ndarray) -> np.ndarray:
    """``heights`` with ``holes`` filled from their surroundings (OpenCV's Telea inpainting on float32)."""
    import cv2

    if not holes.any():
        return heights
    src = np.where(holes, 0, heights).astype(np.float32)
    # inpainting a large grid is slow: do it on a quarter-size copy, then take only the holes from it
    small_h = cv2.resize(src, None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA)
    small_w = cv2.resize((~holes).astype(np.float32), None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA)
    if small_h.size and (small_w > 0).any():
        small = np.where(small_w > 0.01, small_h / np.maximum(small_w, 1e-6), 0).astype(np.float32)
        small = cv2.inpaint(small, (small_w <= 0.01).astype(np.uint8), 3, cv2.INPAINT_TELEA)
        big = cv2.resize(small, (heights.shape[1], heights.shape[0]), interpolation=cv2.INTER_LINEAR)
    else:
        big = np.zeros_like(src)
    return np.where(holes, big, heights).astype(np.float32)


def build_surface(placed, out_grid, settings: SurfaceSettings, threads: int | None = None,
                  base: Surface | None = None) -> tuple[Surface | None, dict]:
    """The DSM of a cell's ``placed`` photos over ``out_grid`` (the mosaic's grid), and figures about it.

    Returns (None, figures with ``surface_note``) where no height can be measured (one photo, no pair with a
    baseline, nothing textured): the mosaic then uses the ground plane (or ``base``). ``base``: the terrain
    the placements were solved on (:func:`skysieve.mosaic.terrain.terrain_surface`); rendering then takes
    heights within ``min_height_m`` of it as the terrain rather than the plane.
    """
    import cv2

    from skysieve.mosaic.render import OutputGrid

    t0 = time.perf_counter()
    settings.check()
    stats: dict = {"surface": "plane"}
    if settings.method == "plane":
        return None, stats
    grid = OutputGrid.covering((out_grid.x_min, out_grid.y_max - out_grid.height * out_grid.gsd_m,
                                out_grid.x_min + out_grid.width * out_grid.gsd_m, out_grid.y_max), settings.gsd_m)
    cameras = np.array([camera_centre(pp) for pp in placed])
    if len(placed) < 2:
        stats["surface_note"] = "one photo: no parallax, the ground plane is used"
        return None, stats
    threads = threads or min(4, usable_cpus())
    with ThreadPoolExecutor(threads) as pool:
        warps = list(pool.map(lambda pp: _warp(pp, grid), placed))
        pairs = _pairs(placed, warps, cameras, settings)
        if not pairs:
            stats["surface_note"] = "no overlapping pair with a baseline: the ground plane is used"
            return None, stats

        def heights(pair):  # each pair's flow turned into heights at once: the flows are not all held
            flow = _pair_flow(*pair, warps, grid, settings)
            return None if flow is None else _pair_heights(flow, cameras, grid, settings)

        results = [r for r in pool.map(heights, pairs) if r]
    warps.clear()
    if not results:
        stats["surface_note"] = "no height could be matched (featureless): the ground plane is used"
        return None, stats
    cell = np.concatenate([r[0] for r in results])
    h = np.concatenate([r[1] for r in results])
    w = np.concatenate([r[2] for r in results])
    measured = _weighted_median(cell, h, w, grid.width * grid.height, settings.min_samples).reshape(grid.height,
                                                                                                    grid.width)
    have = np.isfinite(measured)
    if have.sum() < 16:
        stats["surface_note"] = "too few heights matched (featureless): the ground plane is used"
        return None, stats
    # speckle: a 5 x 5 median over the measured cells (holes filled first so they do not pull it to 0)
    near = _fill(measured, ~have)
    smooth = cv2.medianBlur(near, 5)
    reach = max(1, int(round(settings.fill_m / grid.gsd_m)))
    dist = cv2.distanceTransform((~have).astype(np.uint8), cv2.DIST_L2, 3)
    written = np.where(dist <= reach, smooth, np.nan).astype(np.float32)
    # rendering: heights within the DSM's noise of the plane are the plane (a ramp from min_height to twice it)
    t = np.float32(settings.min_height_m)
    ground = np.zeros_like(smooth)
    if base is not None:
        cols, rows = np.meshgrid(np.arange(grid.width) + 0.5, np.arange(grid.height) + 0.5)
        ground = base.sample(grid.x_min + cols * grid.gsd_m, grid.y_max - rows * grid.gsd_m).astype(np.float32)
    above = smooth - ground
    render = ground + (above * np.clip((np.abs(above) - t) / max(t, np.float32(1e-6)), 0, 1) if t > 0 else above)
    surf = Surface(grid, render.astype(np.float32), written, cameras, [None] * len(placed))
    seen = [visible(surf, i, pp) for i, pp in enumerate(placed)]
    surf = Surface(grid, surf.heights, written, cameras, seen)
    vals = written[np.isfinite(written)]
    stats = {
        "surface": "dsm",
        "dsm_gsd_m": round(grid.gsd_m, 4),
        "dsm_pairs": len(pairs),
        "dsm_pairs_matched": len(results),
        "dsm_share_measured": round(float(np.isfinite(written).mean()), 4),
        "dsm_height_min_m": round(float(np.percentile(vals, 1)), 2),
        "dsm_height_max_m": round(float(np.percentile(vals, 99)), 2),
        "dsm_seconds": round(time.perf_counter() - t0, 3),
    }
    log.debug("dsm: %s", stats)
    return surf, stats


def visible(surf: Surface, i: int, pp, step_cells: float = 1.0) -> tuple[int, int, np.ndarray] | None:
    """Which DSM cells photo ``i`` sees over its footprint: (r0, c0, bool mask) or None when it sees all.

    A cell is hidden when the ray from its top to the camera passes under the DSM somewhere between (by
    more than half a metre): checked at steps of ``step_cells`` along the ray up to where it has risen above
    the highest point of the DSM.
    """
    import cv2

    grid = surf.grid
    g = grid.gsd_m
    cam = surf.cameras[i]
    minx, miny, maxx, maxy = pp.footprint().bounds
    c0, c1 = max(0, math.floor((minx - grid.x_min) / g)), min(grid.width, math.ceil((maxx - grid.x_min) / g))
    r0, r1 = max(0, math.floor((grid.y_max - maxy) / g)), min(grid.height, math.ceil((grid.y_max - miny) / g))
    if c1 <= c0 or r1 <= r0:
        return None
    hts = surf.heights
    top = float(hts[r0:r1, c0:c1].max())
    cols, rows = np.meshgrid(np.arange(c0, c1, dtype=np.float32), np.arange(r0, r1, dtype=np.float32))
    h0 = hts[r0:r1, c0:c1]
    # horizontal direction to the camera (cells), and the ray's rise per cell
    ccol, crow = (cam[0] - grid.x_min) / g - 0.5, (grid.y_max - cam[1]) / g - 0.5
    dc, dr = np.float32(ccol) - cols, np.float32(crow) - rows
    dist = np.maximum(np.hypot(dc, dr), np.float32(1e-3))
    ux, uy = dc / dist, dr / dist
    rise = (np.float32(cam[2]) - h0) / (dist * np.float32(g))  # metres per metre along the ground
    span = max(0.0, top - float(h0.min()))
    n_steps = int(min(400, math.ceil(span / max(float(rise.min()) * g * step_cells, 1e-3))))
    hidden = np.zeros(h0.shape, bool)
    for k in range(1, n_steps + 1):
        s = np.float32(k * step_cells)
        ray = h0 + rise * (s * np.float32(g))
        active = (s < dist) & (ray < top)
        if not active.any():
            break
        there = cv2.remap(hts, cols + ux * s, rows + uy * s, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        hidden |= active & (there > ray + np.float32(0.5))
    if not hidden.any():
        return None
    return r0, c0, ~hidden


def write_dsm(path: Path, surf: Surface, crs: str, tags: dict | None = None) -> None:
    """``dsm.tif``: float32 GeoTIFF (tiled, deflate), nodata :data:`DSM_NODATA`, workspace CRS; written to a
    temporary beside it (``.ortho.dsm.*``, which a rerun removes) and renamed."""
    from skysieve.mosaic.cog import write_band

    data = np.where(np.isfinite(surf.measured), surf.measured, DSM_NODATA).astype(np.float32)
    write_band(path, data, surf.grid.transform, crs, DSM_NODATA, "height above the cell's ground plane (m)", tags,
               predictor=3)
