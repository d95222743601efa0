"""Seamlines that go around what stands up: a min-cost cut between overlapping photos, once per cell.

A mosaic on a ground plane shows a tank, a chimney or a tree where each photo saw it lean, so two photos
disagree there. A seam of the nearest-centre (Voronoi) partition that crosses such an object shows it
twice, or cut. Here, as Pix4D's and Metashape's seamlines do, seams follow paths where the overlapping
photos agree:

1. a coarse grid (``cell_m``, about 0.35 m, a whole number of output pixels) over the cell's output grid;
   each photo is decoded small (the JPEG decoder's reduction), gain-compensated and warped onto it;
2. the Voronoi partition by nearest (adjusted) photo centre, over each photo's interior (where it is
   whole, clear of its fade-out border and the blend band): the seams it would have;
3. each photo may claim cells up to ``corridor_m`` beyond its Voronoi seams (``d_i <= d_min + 2
   corridor``: a corridor on either side of every seam), so a seam never strays far from the line
   between photo centres, and each photo keeps its least-leaning part;
4. for every pair of photos that both claim cells, OpenCV's graph cut (``cv2.detail.GraphCutSeamFinder``)
   splits the cells they share along the cheapest path. The cost of a cell is how much the two photos
   differ there (mean absolute RGB difference, smoothed, then widened by ``object_m`` so a seam keeps
   clear of a leaning object's edge), plus a small term growing away from the Voronoi line (the centre
   preference where the photos agree anyway).

The result is a label map (which photo each coarse cell takes) that :func:`skysieve.mosaic.render.render_windows`
turns into blend weights window by window. Memory: the coarse patches of the cell's photos (a few bytes per
coarse cell each) and the label map; nothing at output resolution.
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
from skysieve.mosaic.photos import grid_pixels, read_image
from skysieve.mosaic.seams import BlendSettings, apply_gain_bgr, edge_taper

__all__ = ["SeamSettings", "SeamMap", "find_seams", "SEAM_METHODS"]

log = logging.getLogger(__name__)

SEAM_METHODS = ("graphcut", "voronoi")
MAX_COARSE_CELLS = 16_000_000  # the label map stays under 32 MB (int16); coarser cells beyond that
_NOISE_BLUR = 3  # coarse cells: differences are smoothed over 3 x 3 before widening (JPEG noise, texture)


@dataclass(frozen=True)
class SeamSettings:
    """How seamlines are placed (``seams`` and ``seam_*`` of the ``[mosaic]`` table)."""

    method: str = "graphcut"  # "graphcut": seams along low-difference paths; "voronoi": nearest centre only
    cell_m: float = 0.35  # coarse grid the seams are searched on (metres; a whole number of output pixels)
    corridor_m: float = 0.0  # how far a seam may stray from the nearest-centre line (metres); 0: automatic,
    # 0.4 of the median distance between neighbouring photo centres, within 3-8 object_m
    object_m: float = 1.0  # differences are widened by this much, so a seam keeps clear of a leaning object
    centre_weight: float = 6.0  # cost (0-255 difference scale) at the corridor's edge: the centre preference

    def check(self) -> None:
        if self.method not in SEAM_METHODS:
            raise MosaicError(f"unknown seam method {self.method!r}",
                              hint=f"set [mosaic] seams to one of {', '.join(SEAM_METHODS)}")
        if not (self.cell_m > 0 and self.corridor_m >= 0 and self.object_m >= 0 and self.centre_weight >= 0):
            raise MosaicError("seam settings must be positive (seam_cell_m > 0; seam_corridor_m, seam_object_m >= 0)")


@dataclass(frozen=True)
class SeamMap:
    """Which photo each coarse cell of an output grid takes.

    Label cell (r, c) covers output pixels rows ``r k .. r k + k - 1``, cols ``c k .. c k + k - 1``;
    ``labels`` holds indices into the placed photos, -1 where no photo's interior reaches (the outer
    border of the survey: there the photos' fade-outs and nearest centres decide).
    """

    k: int
    labels: np.ndarray

    def write(self, path: Path, grid, crs, tags: dict | None = None) -> None:
        """``views.tif``: which photo each coarse cell of ``grid`` shows (uint16, the photo's index in the cell
        report's ``view_cameras`` plus one; 0 where none), GeoTIFF in the workspace CRS. Detection reads it to
        know from where a tall object was seen, so where its base is. Written to a temporary beside it
        (``.ortho.views.*``, which a rerun removes) and renamed."""
        from affine import Affine

        from skysieve.mosaic.cog import write_band

        labels = (self.labels.astype(np.int32) + 1).clip(0, 65535).astype(np.uint16)
        write_band(path, labels, Affine(self.k * grid.gsd_m, 0.0, grid.x_min, 0.0, -self.k * grid.gsd_m, grid.y_max),
                   crs, 0, "photo shown (index + 1 into ortho.json view_cameras; 0: none)", tags)


@dataclass
class _Patch:
    """A photo on the coarse grid: its block (rows r0:r1, cols c0:c1), gain-compensated BGR, the cells where
    it is whole (``inner``), and the cells it claims (``mask``)."""

    r0: int
    c0: int
    img: np.ndarray
    inner: np.ndarray
    centre: np.ndarray  # coarse-grid (col, row) of the photo centre
    mask: np.ndarray | None = None

    @property
    def r1(self) -> int:
        return self.r0 + self.img.shape[0]

    @property
    def c1(self) -> int:
        return self.c0 + self.img.shape[1]

    def block(self, r0: int, r1: int, c0: int, c1: int) -> tuple[slice, slice]:
        """This patch's slices of grid rows r0:r1, cols c0:c1 (within the patch)."""
        return slice(r0 - self.r0, r1 - self.r0), slice(c0 - self.c0, c1 - self.c0)

    def dist(self, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        """Distance (coarse cells) from the photo centre of the cells rows r0:r1, cols c0:c1 (grid indices)."""
        cols = np.arange(c0, c1, dtype=np.float32) + np.float32(0.5) - np.float32(self.centre[0])
        rows = np.arange(r0, r1, dtype=np.float32) + np.float32(0.5) - np.float32(self.centre[1])
        return np.sqrt(rows[:, None] ** 2 + cols[None, :] ** 2)


def coarse_factor(gsd_m: float, width: int, height: int, cell_m: float) -> int:
    """Output pixels per coarse cell: about ``cell_m``, and few enough cells for :data:`MAX_COARSE_CELLS`."""
    k = max(1, round(cell_m / gsd_m))
    while math.ceil(width / k) * math.ceil(height / k) > MAX_COARSE_CELLS:
        k += 1
    return k


def _patch(pp, grid, k: int, hc: int, wc: int, blend: BlendSettings, surface=None, index: int = 0) -> _Patch | None:
    import cv2

    cm = k * grid.gsd_m
    minx, miny, maxx, maxy = pp.footprint().bounds
    c0, c1 = max(0, math.floor((minx - grid.x_min) / cm)), min(wc, math.ceil((maxx - grid.x_min) / cm))
    r0, r1 = max(0, math.floor((grid.y_max - maxy) / cm)), min(hc, math.ceil((grid.y_max - miny) / cm))
    if c1 <= c0 or r1 <= r0:
        return None
    # patch cell index (col, row) -> ground -> native photo pixel
    a = np.array([[cm, 0.0, grid.x_min + (c0 + 0.5) * cm], [0.0, -cm, grid.y_max - (r0 + 0.5) * cm], [0, 0, 1.0]])
    m = np.linalg.inv(pp.homography) @ a
    cam = pp.photo.camera
    cols, rows = np.meshgrid(np.arange(c1 - c0, dtype=np.float32), np.arange(r1 - r0, dtype=np.float32))
    if surface is None:
        u, v = grid_pixels(m, cols, rows)
    else:  # where the photo shows each cell's point at its DSM height
        gx, gy = a[0, 0] * cols + a[0, 2], a[1, 1] * rows + a[1, 2]  # float64: UTM coordinates
        from skysieve.mosaic.surface import photo_pixels

        u, v = photo_pixels(pp, surface.cameras[index], gx, gy, surface.sample(gx, gy))
    # whole: clear of the photo's fade-out and of half a blend band and a coarse cell beyond it
    inset = (blend.band_px * grid.gsd_m / 2 + cm) / pp.photo.gsd_m
    inner = edge_taper(u - inset, v - inset, cam.width_px - 2 * inset, cam.height_px - 2 * inset,
                       blend.taper_px) > 0.999
    if surface is not None:  # and only the cells it sees (not hidden behind something taller)
        inner &= surface.seen_at(index, gx, gy) > 0.5
    if not inner.any():
        return None
    img, sx, sy = read_small(pp.photo, min(1.0, pp.photo.gsd_m / cm))
    if surface is None:
        to_src = np.array([[sx, 0.0, -0.5], [0.0, sy, -0.5], [0.0, 0.0, 1.0]]) @ m
        warped = cv2.warpPerspective(img, to_src, (c1 - c0, r1 - r0), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                     borderMode=cv2.BORDER_REPLICATE)
    else:
        warped = cv2.remap(img, (u * np.float32(sx) - np.float32(0.5)).astype(np.float32),
                           (v * np.float32(sy) - np.float32(0.5)).astype(np.float32), cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
    warped = apply_gain_bgr(warped, pp.gain)
    centre = (pp.centre_xy - [grid.x_min, grid.y_max]) / [cm, -cm]
    return _Patch(r0, c0, warped, inner, centre)


_PREVIEW_TYPES = ("Large Thumbnail (VGA Equivalent)", "Large Thumbnail (Full-HD Equivalent)")


def read_small(photo, scale: float) -> tuple[np.ndarray, float, float]:
    """The photo shrunk to about ``scale`` (BGR), as :func:`~skysieve.mosaic.photos.read_image` returns it,
    from the preview the camera stored beside it where that is large enough.

    DJI drones (and most cameras) write a 960 x 540 or larger copy of the frame as a second image of the
    file (CIPA multi-picture format); decoding it costs ~10 ms against ~40 ms for the 1/8 decode of a
    12-20 MP photo. A preview whose aspect differs from the photo's (letterboxed, cropped) is not used.
    """
    import cv2
    from PIL import Image

    cam = photo.camera
    try:
        with Image.open(photo.path) as im:
            entries = (getattr(im, "mpinfo", None) or {}).get(0xB002) or []
            for k, entry in enumerate(entries[:getattr(im, "n_frames", 1)]):
                if k == 0 or (entry.get("Attribute") or {}).get("MPType") not in _PREVIEW_TYPES:
                    continue
                im.seek(k)
                w, h = im.size
                if (w >= scale * cam.width_px and h >= scale * cam.height_px
                        and abs(w * cam.height_px - h * cam.width_px) <= 0.005 * w * cam.height_px):
                    im.draft("RGB", (max(1, round(scale * cam.width_px)), max(1, round(scale * cam.height_px))))
                    bgr = np.ascontiguousarray(np.asarray(im.convert("RGB"))[:, :, ::-1])
                    tw, th = max(1, round(cam.width_px * scale)), max(1, round(cam.height_px * scale))
                    if bgr.shape[1] != tw or bgr.shape[0] != th:
                        bgr = cv2.resize(bgr, (tw, th), interpolation=cv2.INTER_AREA)
                    return bgr, tw / cam.width_px, th / cam.height_px
    except (OSError, ValueError, SyntaxError, EOFError, KeyError, TypeError):
        pass  # no usable preview: decode the photo
    return read_image(photo, scale, bgr=True)


def _auto_corridor_m(placed, settings: SeamSettings) -> float:
    if settings.corridor_m > 0:
        return settings.corridor_m
    xy = np.array([pp.centre_xy for pp in placed])
    if len(xy) < 2:
        return 3 * settings.object_m
    d = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
    np.fill_diagonal(d, np.inf)
    return min(max(3 * settings.object_m, 0.4 * float(np.median(d.min(1)))), 8 * settings.object_m)


def find_seams(placed, grid, blend: BlendSettings, settings: SeamSettings,
               threads: int | None = None, surface=None) -> tuple[SeamMap, dict]:
    """The label map of ``placed`` photos over ``grid`` (an :class:`~skysieve.mosaic.render.OutputGrid`),
    and figures about it (seconds, coarse cell size, corridor, pairs cut). ``surface``: the grid's DSM
    (:class:`~skysieve.mosaic.surface.Surface`): photos are compared where they show each point at its
    height (a true ortho), and a photo claims only the cells it sees."""
    t0 = time.perf_counter()
    settings.check()
    k = coarse_factor(grid.gsd_m, grid.width, grid.height, settings.cell_m)
    cm = k * grid.gsd_m
    hc, wc = math.ceil(grid.height / k), math.ceil(grid.width / k)
    labels = np.full((hc, wc), -1, np.int16 if len(placed) < 2 ** 15 else np.int32)
    stats = {"seam_cell_m": round(cm, 4), "seam_pairs_cut": 0, "seam_cells_moved": 0}
    threads = threads or min(4, usable_cpus())
    with ThreadPoolExecutor(threads) as pool:  # decoding and warping release the GIL
        patches = list(pool.map(lambda i: _patch(placed[i], grid, k, hc, wc, blend, surface, i), range(len(placed))))
    live = [i for i, p in enumerate(patches) if p is not None]
    # Voronoi over the photos' interiors: the nearest centre (ties: the lower index) and its distance per cell
    dmin = np.full((hc, wc), np.inf, np.float32)
    dist = {i: patches[i].dist(patches[i].r0, patches[i].r1, patches[i].c0, patches[i].c1) for i in live}
    for i in live:
        p, d = patches[i], dist[i]
        sub = dmin[p.r0:p.r1, p.c0:p.c1]
        closer = p.inner & (d < sub)
        sub[closer] = d[closer]
        labels[p.r0:p.r1, p.c0:p.c1][closer] = i
    neighbours = _neighbours(labels)
    labels[:] = -1
    corridor = _auto_corridor_m(placed, settings) / cm if settings.method == "graphcut" else 0.0
    stats["seam_corridor_m"] = round(corridor * cm, 2)
    for i in live:
        p = patches[i]
        p.mask = p.inner & (dist.pop(i) <= dmin[p.r0:p.r1, p.c0:p.c1] + np.float32(2 * corridor + 1e-3))
    if settings.method == "graphcut" and len(live) > 1:
        # photos whose Voronoi cells do not touch: their common claims lie in a third photo's cell, and
        # whichever of the two is nearer meets that photo's cut next
        _nearest_only(patches, live, lambda i, j: (i, j) not in neighbours)
        _cut_pairs(patches, live, lambda i, j: (i, j) in neighbours, corridor,
                   max(0, round(settings.object_m / cm)), settings.centre_weight, stats)
    else:  # voronoi: ties (equal distances) go to the lower index
        _nearest_only(patches, live, lambda i, j: True)
    for i in live:
        p = patches[i]
        labels[p.r0:p.r1, p.c0:p.c1][p.mask] = i
    stats["seam_seconds"] = round(time.perf_counter() - t0, 3)
    log.debug("seams: %s", stats)
    return SeamMap(k, labels), stats


def _neighbours(near: np.ndarray) -> set[tuple[int, int]]:
    """Pairs (i < j) of labels that meet (4-neighbours) in the label map ``near`` (-1: none)."""
    out: set[tuple[int, int]] = set()
    for a, b in ((near[:, :-1], near[:, 1:]), (near[:-1], near[1:])):
        m = (a != b) & (a >= 0) & (b >= 0)
        if m.any():
            lo, hi = np.minimum(a[m], b[m]).astype(np.int64), np.maximum(a[m], b[m]).astype(np.int64)
            out |= {(int(x), int(y)) for x, y in np.unique(np.stack([lo, hi], 1), axis=0)}
    return out


def _nearest_split(mi: np.ndarray, mj: np.ndarray, di: np.ndarray, dj: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Claims ``mi``, ``mj`` of two photos with each cell both claim given to the nearer centre (``di``,
    ``dj``: distances; ties go to i)."""
    both, closer_j = mi & mj, dj < di
    return mi & ~(both & closer_j), mj & ~(both & ~closer_j)


def _nearest_only(patches: list, live: list[int], which) -> None:
    """Every cell claimed by two photos (i, j) with ``which(i, j)`` goes to the one with the nearest centre."""
    for pi, pj, (r0, r1, c0, c1) in _claimed_twice(patches, live, 0, which):
        si, sj = pi.block(r0, r1, c0, c1), pj.block(r0, r1, c0, c1)
        pi.mask[si], pj.mask[sj] = _nearest_split(pi.mask[si], pj.mask[sj], pi.dist(r0, r1, c0, c1),
                                                  pj.dist(r0, r1, c0, c1))


def _claimed_twice(patches: list, live: list[int], margin: int, which):
    """(patch i, patch j, block rows r0:r1 / cols c0:c1 in grid indices) for each pair of photos (i < j,
    ``which(i, j)``) that both claim cells: the block of those cells with ``margin`` cells around them,
    within both patches."""
    for a, i in enumerate(live):
        for j in live[a + 1:]:
            if not which(i, j):
                continue
            pi, pj = patches[i], patches[j]
            r0, r1, c0, c1 = max(pi.r0, pj.r0), min(pi.r1, pj.r1), max(pi.c0, pj.c0), min(pi.c1, pj.c1)
            if r1 <= r0 or c1 <= c0:
                continue
            both = pi.mask[pi.block(r0, r1, c0, c1)] & pj.mask[pj.block(r0, r1, c0, c1)]
            rr, cc = np.flatnonzero(both.any(1)), np.flatnonzero(both.any(0))
            if len(rr):
                yield pi, pj, (max(r0, r0 + rr[0] - margin), min(r1, r0 + rr[-1] + 1 + margin),
                               max(c0, c0 + cc[0] - margin), min(c1, c0 + cc[-1] + 1 + margin))


def _cut_pairs(patches: list, live: list[int], which, corridor: float, widen: int, centre_weight: float,
               stats: dict) -> None:
    """Split the cells each pair of photos (i, j) with ``which(i, j)`` both claims along the cheapest path
    (OpenCV's graph cut)."""
    import cv2

    finder = cv2.detail.GraphCutSeamFinder("COST_COLOR")
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * widen + 1, 2 * widen + 1)) if widen else None
    margin = 2 + widen  # cells around the shared part: the terminals that tie the cut to each side
    for pi, pj, (r0, r1, c0, c1) in _claimed_twice(patches, live, margin, which):
        si, sj = pi.block(r0, r1, c0, c1), pj.block(r0, r1, c0, c1)
        mi, mj = pi.mask[si], pj.mask[sj]
        di, dj = pi.dist(r0, r1, c0, c1), pj.dist(r0, r1, c0, c1)
        shared = mi & mj
        cost = cv2.absdiff(pi.img[si], pj.img[sj]).astype(np.float32).mean(2)
        cost[~(pi.inner[si] & pj.inner[sj])] = 0
        cost = cv2.blur(cost, (_NOISE_BLUR, _NOISE_BLUR))
        if kernel is not None:
            cost = cv2.dilate(cost, kernel)
        # centre preference: the cost grows away from the line where both centres are equally far
        cost += np.float32(centre_weight / max(2 * corridor, 1e-6)) * np.abs(di - dj)
        # GraphCutSeamFinder's COST_COLOR charges |img_i - img_j| per cell: hand it the cost that way
        src = [cv2.UMat(np.dstack([cost, np.zeros_like(cost), np.zeros_like(cost)])),
               cv2.UMat(np.zeros((*cost.shape, 3), np.float32))]
        masks = [cv2.UMat(mi.astype(np.uint8) * 255), cv2.UMat(mj.astype(np.uint8) * 255)]
        out = finder.find(src, [(0, 0), (0, 0)], masks)
        new_i, new_j = out[0].get() > 0, out[1].get() > 0
        if (new_i & new_j).any() or ((mi | mj) & ~(new_i | new_j)).any():  # not expected: nearest centre
            log.warning("seam cut left cells claimed twice or by none; nearest centres decide there")
            new_i, new_j = _nearest_split(mi, mj, di, dj)
        pi.mask[si], pj.mask[sj] = new_i, new_j
        stats["seam_pairs_cut"] += 1
        stats["seam_cells_moved"] += int((shared & (new_i != (di <= dj))).sum())  # vs nearest centre
