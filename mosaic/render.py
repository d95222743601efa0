"""Windowed rendering of placed photos onto a north-up grid in the workspace CRS.

The output is produced window by window (``window_px`` square), in strips; each photo is decoded once,
when the first window needs it, and dropped after the last window that needs it, so memory holds the
photos of about one strip, never the survey. A window "needs" a photo only where the seams let it show
there (:func:`_decode_plan`), not wherever its footprint reaches; and the cells of one run hand the photos
on their borders on to each other decoded (:class:`DecodedPhotos`). Each window's pixels come from the photos that cover it,
resampled by one perspective warp each (output pixel -> ground -> photo pixel; with a DSM, through the
point at its height: :mod:`~skysieve.mosaic.surface`) and blended along the
seams of a label map (:func:`skysieve.mosaic.seamcut.find_seams`, :func:`skysieve.mosaic.seams.label_weights`)
or, without one, the nearest-centre seams (:func:`skysieve.mosaic.seams.seam_weights`).
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import shapely
from affine import Affine
from shapely.geometry import box

from skysieve.cpus import usable_cpus
from skysieve.mosaic.photos import Photo, apply_homography, grid_pixels, jpeg_reduction, read_image
from skysieve.mosaic.seamcut import SeamMap
from skysieve.mosaic.seams import (
    BlendSettings,
    apply_gain_bgr,
    edge_taper,
    label_weights,
    seam_weights,
    solve_gains,
)
from skysieve.mosaic.surface import Surface, photo_pixels

__all__ = ["RENDER_THREADS", "OutputGrid", "PixelWindow", "PlacedPhoto", "windows", "render_windows", "estimate_gains",
           "decode_for_render", "DecodedPhotos"]

log = logging.getLogger(__name__)

#: windows rendered at a time (threads: cv2 and numpy release the GIL), at most; fewer on fewer CPUs
RENDER_THREADS = 4


@dataclass(frozen=True)
class OutputGrid:
    """A north-up raster: west edge ``x_min``, north edge ``y_max`` (metres, workspace CRS), pixel size
    ``gsd_m``, ``width`` columns by ``height`` rows."""

    x_min: float
    y_max: float
    gsd_m: float
    width: int
    height: int

    @classmethod
    def covering(cls, bounds: tuple[float, float, float, float], gsd_m: float) -> OutputGrid:
        """The grid snapped to multiples of ``gsd_m`` that covers (minx, miny, maxx, maxy)."""
        minx, miny, maxx, maxy = bounds
        x0 = math.floor(minx / gsd_m) * gsd_m
        y1 = math.ceil(maxy / gsd_m) * gsd_m
        w = max(1, math.ceil((maxx - x0) / gsd_m - 1e-9))
        h = max(1, math.ceil((y1 - miny) / gsd_m - 1e-9))
        return cls(x0, y1, gsd_m, w, h)

    @property
    def transform(self) -> Affine:
        return Affine(self.gsd_m, 0.0, self.x_min, 0.0, -self.gsd_m, self.y_max)

    def pixel_to_ground(self, row_off: int, col_off: int) -> np.ndarray:
        """3 x 3 matrix: window pixel indices (col, row), centres at integers -> ground x/y (metres)."""
        g = self.gsd_m
        return np.array([[g, 0.0, self.x_min + (col_off + 0.5) * g], [0.0, -g, self.y_max - (row_off + 0.5) * g],
                         [0.0, 0.0, 1.0]])

    def window_box(self, win: PixelWindow) -> shapely.Polygon:
        g = self.gsd_m
        return box(self.x_min + win.col_off * g, self.y_max - (win.row_off + win.height) * g,
                   self.x_min + (win.col_off + win.width) * g, self.y_max - win.row_off * g)


@dataclass(frozen=True)
class PixelWindow:
    """A block of the output grid: offsets and size in pixels (row/col order as rasterio's Window)."""

    row_off: int
    col_off: int
    height: int
    width: int


@dataclass(frozen=True)
class PlacedPhoto:
    """A photo with its adjusted placement: native pixels (col, row) -> ground x/y homography, RGB gain."""

    photo: Photo
    homography: np.ndarray
    gain: tuple[float, float, float] = (1.0, 1.0, 1.0)

    @property
    def centre_xy(self) -> np.ndarray:
        """Ground position (metres) of the image centre."""
        cam = self.photo.camera
        return apply_homography(self.homography, [[cam.cx, cam.cy]])[0]

    def footprint(self) -> shapely.Polygon:
        cam = self.photo.camera
        w, h = cam.width_px, cam.height_px
        return shapely.Polygon(apply_homography(self.homography, [[0, 0], [w, 0], [w, h], [0, h]]))


def windows(grid: OutputGrid, window_px: int) -> list[PixelWindow]:
    """Blocks of the grid in strip order (row-major)."""
    return [PixelWindow(r, c, min(window_px, grid.height - r), min(window_px, grid.width - c))
            for r in range(0, grid.height, window_px) for c in range(0, grid.width, window_px)]


def _render_scale(photo: Photo, gsd_m: float) -> float:
    """Decoder reduction for rendering: as small as the output GSD allows, never below it."""
    return 1.0 / jpeg_reduction(photo.gsd_m / gsd_m)


WEIGHT_STEP = 4  # seam weights are computed on every 4th output pixel and interpolated (they are smooth)


def _label_pad(seams: SeamMap, band_px: float) -> int:
    """Label cells read around a window: the smoothing's half width, the interpolation's cell and one more."""
    return int(math.ceil(band_px / seams.k / 2)) + 2


def _label_block(seams: SeamMap, win: PixelWindow, pad: int) -> tuple[int, int, int, int]:
    """Rows r0:r1, cols c0:c1 of the label map that a window's weights read (``pad`` cells around it)."""
    k = seams.k
    hc, wc = seams.labels.shape
    return (max(0, win.row_off // k - pad), min(hc, (win.row_off + win.height - 1) // k + 1 + pad),
            max(0, win.col_off // k - pad), min(wc, (win.col_off + win.width - 1) // k + 1 + pad))


def _label_shares(seams: SeamMap, ids: list[int], win: PixelWindow, cols: np.ndarray, rows: np.ndarray,
                  band_px: float) -> list[np.ndarray]:
    """Each photo's share of the label map at the window's weight samples (``cols``/``rows``: window pixel
    indices): its indicator smoothed across ``band_px`` output pixels, interpolated."""
    import cv2

    k = seams.k
    band_cells = band_px / k
    r0, r1, c0, c1 = _label_block(seams, win, _label_pad(seams, band_px))
    sub = seams.labels[r0:r1, c0:c1]
    mx = ((win.col_off + cols + 0.5) / k - 0.5 - c0).astype(np.float32)  # sample -> label cell centres
    my = ((win.row_off + rows + 0.5) / k - 0.5 - r0).astype(np.float32)
    box = max(1, int(round(band_cells - 1)) | 1)  # odd; the interpolation adds one cell of smoothing
    out = []
    for i in ids:
        share = (sub == i).astype(np.float32)
        if box > 1 and share.any():
            share = cv2.blur(share, (box, box), borderType=cv2.BORDER_REPLICATE)
        out.append(cv2.remap(share, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
    return out


def render_window(placed: list[PlacedPhoto], images: dict[int, tuple[np.ndarray, float, float]], idx: list[int],
                  grid: OutputGrid, win: PixelWindow, blend: BlendSettings,
                  seams: SeamMap | None = None, surface: Surface | None = None) -> tuple[np.ndarray, np.ndarray]:
    """RGB (rows, cols, 3) uint8 and coverage (rows, cols) bool of one window from photos ``idx``.

    ``images``: per photo index its decoded pixels (BGR, :func:`decode_for_render`) and their (col, row)
    scales against the native size; a photo of ``idx`` that shows in the window but is not there is decoded
    here. Each photo's gain is applied to what is warped of it (a fraction of
    its pixels), and the window turned to RGB at the end. ``seams``: the label map of the grid (indices
    into ``placed``); without one, seams run between nearest photo centres. ``surface``: a DSM
    (:mod:`~skysieve.mosaic.surface`): each output pixel is taken from where each photo shows the point at
    the DSM's height there (a true ortho); without one, from where it shows the ground plane.
    """
    import cv2

    a = grid.pixel_to_ground(win.row_off, win.col_off)
    step = WEIGHT_STEP
    hc, wc = -(-win.height // step), -(-win.width // step)
    # coarse samples at the centres of step x step blocks, in window pixel indices
    cols, rows = np.meshgrid(np.arange(wc, dtype=np.float32) * step + (step - 1) / 2,
                             np.arange(hc, dtype=np.float32) * step + (step - 1) / 2)
    gx = a[0, 0] * cols + a[0, 2]
    gy = a[1, 1] * rows + a[1, 2]
    h = surface.sample(gx, gy) if surface is not None else None
    dists, tapers, used = [], [], []
    for i in idx:
        pp = placed[i]
        cam = pp.photo.camera
        m = np.linalg.inv(pp.homography) @ a  # window pixel -> native photo pixel (camera convention)
        if surface is None:
            u, v = grid_pixels(m, cols, rows)
        else:  # the photo pixel of each sample's point at its DSM height
            u, v = photo_pixels(pp, surface.cameras[i], gx, gy, h)
            m = (u, v)
        # start the fade a coarse step inside the border so interpolated weights never leave the photo
        inset = step * grid.gsd_m / pp.photo.gsd_m + 1.0
        taper = edge_taper(u - inset, v - inset, cam.width_px - 2 * inset, cam.height_px - 2 * inset,
                           blend.taper_px)
        if not taper.any():
            continue
        c = pp.centre_xy
        dists.append(np.hypot(gx - np.float32(c[0]), gy - np.float32(c[1])))
        tapers.append(taper)
        used.append((i, m))
    rgb = np.zeros((win.height, win.width, 3), np.uint8)  # BGR until the end
    acc = np.zeros((win.height, win.width), np.float32)  # weight blended in so far
    if not used:
        weights = []
    elif seams is not None:
        shares = _label_shares(seams, [i for i, _ in used], win, cols, rows, blend.band_px)
        weights = label_weights(shares, dists, tapers, blend.band_px * grid.gsd_m)
    else:
        weights = seam_weights(dists, tapers, blend.band_px * grid.gsd_m)
    for wgt, (i, m) in zip(weights, used, strict=True):
        wgt[wgt < 1e-3] = 0  # far beyond the seamline: this photo does not show here
        nz_r, nz_c = np.flatnonzero(wgt.any(1)), np.flatnonzero(wgt.any(0))
        if not len(nz_r):
            continue
        # warp only the block where the photo shows (one coarse cell of slack for the interpolation)
        r0, r1 = max(0, (nz_r[0] - 1) * step), min(win.height, (nz_r[-1] + 2) * step)
        c0, c1 = max(0, (nz_c[0] - 1) * step), min(win.width, (nz_c[-1] + 2) * step)
        full = cv2.resize(wgt, (wc * step, hc * step), interpolation=cv2.INTER_LINEAR)[r0:r1, c0:c1]
        got = images.get(i)
        if got is None:  # not foreseen by the decoding plan (:func:`_decode_plan`): decoded for this window alone
            log.debug("photo %s shows in window %s beyond the decoding plan", placed[i].photo.image_id, win)
            got = decode_for_render(placed[i], grid.gsd_m)
        img, sx, sy = got
        if surface is None:
            to_src = (np.array([[sx, 0.0, -0.5], [0.0, sy, -0.5], [0.0, 0.0, 1.0]]) @ m
                      @ np.array([[1.0, 0.0, c0], [0.0, 1.0, r0], [0.0, 0.0, 1.0]]))  # block pixel -> cv2 photo pixel
            warped = cv2.warpPerspective(img, to_src, (c1 - c0, r1 - r0),
                                         flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
        else:  # the coarse samples' photo pixels, interpolated to every pixel (the DSM is coarser still)
            mx = cv2.resize(m[0] * np.float32(sx) - np.float32(0.5), (wc * step, hc * step),
                            interpolation=cv2.INTER_LINEAR)[r0:r1, c0:c1]
            my = cv2.resize(m[1] * np.float32(sy) - np.float32(0.5), (wc * step, hc * step),
                            interpolation=cv2.INTER_LINEAR)[r0:r1, c0:c1]
            warped = cv2.remap(img, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        warped = apply_gain_bgr(warped, placed[i].gain)
        # running weighted mean: (W a + w b) / (W + w) with W the weight so far, on uint8 in one SIMD pass
        # (weights scaled up so that the 1e-5 OpenCV adds to the denominator never darkens a faint edge)
        full = np.ascontiguousarray(full * np.float32(1e3))
        sub_acc = np.ascontiguousarray(acc[r0:r1, c0:c1])
        rgb[r0:r1, c0:c1] = cv2.blendLinear(np.ascontiguousarray(rgb[r0:r1, c0:c1]), warped, sub_acc, full)
        acc[r0:r1, c0:c1] = sub_acc + full
    covered = acc > 1.0  # 1e-3 before scaling
    rgb = cv2.cvtColor(rgb, cv2.COLOR_BGR2RGB)
    rgb = cv2.bitwise_and(rgb, rgb, mask=covered.view(np.uint8))  # 0 where not covered
    return rgb, covered


def _decode_plan(placed: list[PlacedPhoto], grid: OutputGrid, wins: list[PixelWindow], needs: list[list[int]],
                 seams: SeamMap, band_px: float) -> tuple[list[list[int]], list[bool]]:
    """Per window, the photos of ``needs`` (those whose footprints reach it) that can show in it along the
    seams of ``seams``: the photos decoded for it; and whether the window is clear of unlabelled cells
    (then the others need no weights either: theirs are under 1e-6 everywhere in it).

    Only these get a blend weight of 1e-3 or more (:func:`render_window` drops weights below): a photo whose
    label is not among the label cells a window reads has a share of 0 there, and where labels cover those
    cells the shares sum to 1, so its weight (the nearest-centre term, 1e-6 at most) stays under 1e-3 of the
    best photo's. Only where cells without a label (-1, the survey's outer border) are within reach does the
    nearest centre decide: there every photo whose footprint reaches those cells is kept. (A photo of the plan
    that shows where it was not foreseen is decoded by :func:`render_window` for that window alone. In
    windows clear of unlabelled cells the plan also decides which photos get weights at all, which is exact
    only because the label map labels no cell with a photo that does not cover it: :func:`find_seams`
    labels within each photo's interior, where its taper is 1.) Over Brighton's main cell the footprints hold 17 of 18 photos at once at some
    window, the seams 9; its eastern cell decodes 5 of the 9 photos that reach it.
    """
    import cv2

    labels, k = seams.labels, seams.k
    pad = _label_pad(seams, band_px)
    kernel = np.ones((2 * pad + 1, 2 * pad + 1), np.uint8)
    unlabelled = labels < 0
    near_unlabelled = cv2.dilate(unlabelled.view(np.uint8), kernel) > 0 if unlabelled.any() else None
    hc, wc = labels.shape
    cm = k * grid.gsd_m
    reach: dict[int, tuple[int, int, np.ndarray]] = {}  # per photo: its footprint's label cells (r0, c0, mask)

    def footprint_cells(i: int) -> tuple[int, int, np.ndarray]:
        if i not in reach:
            xy = np.asarray(placed[i].footprint().exterior.coords)
            cr = np.column_stack([(xy[:, 0] - grid.x_min) / cm, (grid.y_max - xy[:, 1]) / cm]) - 0.5
            grow = 2  # cells: the polygon's edge cuts cells, and a photo through relief reaches a little further
            c0, r0 = (np.floor(cr.min(0)).astype(int) - grow).clip(0, [wc, hc])
            c1, r1 = (np.ceil(cr.max(0)).astype(int) + grow + 1).clip(0, [wc, hc])
            mask = np.zeros((max(0, r1 - r0), max(0, c1 - c0)), np.uint8)
            if mask.size:
                pts = np.round((cr - [c0, r0]) * 16).astype(np.int32)  # 4 fractional bits
                cv2.fillPoly(mask, [pts], 1, shift=4)
                mask = cv2.dilate(mask, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8))
            reach[i] = (r0, c0, mask > 0)
        return reach[i]

    plan, clear = [], []
    for win, idx in zip(wins, needs, strict=True):
        if not idx:
            plan.append([])
            clear.append(True)
            continue
        r0, r1, c0, c1 = _label_block(seams, win, pad)
        sub = labels[r0:r1, c0:c1]
        present = np.zeros(len(placed) + 1, bool)
        present[np.unique(sub).astype(np.intp) + 1] = True  # index 0: no label
        keep = [i for i in idx if present[i + 1]]
        # the window's own cells (and one around for the interpolation): any within reach of unlabelled ones?
        wr0, wr1 = max(0, win.row_off // k - 1), min(hc, (win.row_off + win.height - 1) // k + 2)
        wc0, wc1 = max(0, win.col_off // k - 1), min(wc, (win.col_off + win.width - 1) // k + 2)
        clear.append(near_unlabelled is None or not near_unlabelled[wr0:wr1, wc0:wc1].any())
        if not clear[-1]:
            for i in idx:
                if present[i + 1]:
                    continue
                fr0, fc0, mask = footprint_cells(i)
                a0, a1 = max(wr0, fr0), min(wr1, fr0 + mask.shape[0])
                b0, b1 = max(wc0, fc0), min(wc1, fc0 + mask.shape[1])
                if a1 > a0 and b1 > b0 and (mask[a0 - fr0:a1 - fr0, b0 - fc0:b1 - fc0]
                                            & near_unlabelled[a0:a1, b0:b1]).any():
                    keep.append(i)
            keep.sort()
        plan.append(keep)
    return plan, clear


def decode_for_render(pp: PlacedPhoto, gsd_m: float) -> tuple[np.ndarray, float, float]:
    """The photo decoded for rendering at ``gsd_m`` (as coarse as allowed), in BGR order and without its
    gain (:func:`render_window` applies both to the few pixels it warps)."""
    return read_image(pp.photo, _render_scale(pp.photo, gsd_m), bgr=True)


class DecodedPhotos:
    """Photos decoded for rendering, kept from one cell to a later cell of the same run that shows them.

    Neighbouring cells share the photos along their border: without this, each cell decoded them again
    (Brighton's eastern cell: 7 full 9 Mpx decodes, 0.5-0.7 s of CPU, for a sliver of mosaic). ``shows``:
    per image id, the positions in the run's order of the cells that show it; :meth:`start` says which cell
    renders now. A photo a cell is done with (:func:`render_windows` offers it) is kept if a later cell
    shows it, and taken from here, not decoded, by that cell. What is kept never exceeds what the rendering
    itself held at once (decoded photos in flight), so memory at most doubles that, whatever the survey's
    size; when it is full, the photos shown soonest are kept.
    """

    def __init__(self, shows: dict[str, list[int]] | None = None):
        import threading

        self.shows = {k: sorted(v) for k, v in (shows or {}).items()}
        self.held: dict[tuple, tuple[np.ndarray, float, float]] = {}
        self.at = -1  # the position of the cell rendering now
        self.budget = 0  # bytes: the most decoded photos in flight at once so far
        self.lock = threading.Lock()
        self.reused = 0

    @staticmethod
    def key(pp: PlacedPhoto, gsd_m: float) -> tuple:
        p = pp.photo
        return p.image_id, p.path, p.sha256, _render_scale(p, gsd_m)

    def _next(self, image_id: str, after: int) -> int | None:
        """The position of the first cell after ``after`` that shows the photo, or None."""
        import bisect

        pos = self.shows.get(image_id, [])
        k = bisect.bisect_right(pos, after)
        return pos[k] if k < len(pos) else None

    def start(self, position: int) -> None:
        """The cell at ``position`` renders now: what no cell from it on shows is dropped."""
        with self.lock:
            self.at = position
            for k in [k for k in self.held if self._next(k[0], position - 1) is None]:
                del self.held[k]

    def take(self, key: tuple) -> tuple[np.ndarray, float, float] | None:
        with self.lock:
            got = self.held.pop(key, None)
            self.reused += got is not None
            return got

    def in_flight(self, nbytes: int) -> None:
        with self.lock:
            self.budget = max(self.budget, nbytes)

    def offer(self, key: tuple, decoded: tuple[np.ndarray, float, float]) -> None:
        """Keep a photo the cell rendering now is done with, if a later cell shows it and the budget allows
        (making room by dropping what is shown later than it)."""
        with self.lock:
            nxt = self._next(key[0], self.at)
            if nxt is None or key in self.held:
                return
            size = decoded[0].nbytes
            used = sum(v[0].nbytes for v in self.held.values())
            def after(k: tuple) -> int:  # a photo held for the cell rendering now, and no later one: now
                n = self._next(k[0], self.at)
                return self.at if n is None else n

            while used + size > self.budget and self.held:
                last = max(self.held, key=after)
                if after(last) <= nxt:
                    return
                used -= self.held.pop(last)[0].nbytes
            if used + size <= self.budget:
                self.held[key] = decoded


def render_windows(placed: list[PlacedPhoto], grid: OutputGrid, window_px: int, blend: BlendSettings,
                   threads: int | None = None, seams: SeamMap | None = None,
                   surface: Surface | None = None,
                   decoded: DecodedPhotos | None = None) -> Iterator[tuple[PixelWindow, np.ndarray, np.ndarray]]:
    """Yield (window, RGB, coverage) for every window that some photo covers, in order, decoding each photo
    once. ``threads`` windows render at a time (default: CPU count, at most :data:`RENDER_THREADS`). ``seams``: the grid's
    label map (:func:`skysieve.mosaic.seamcut.find_seams`); None: nearest-centre seams. ``surface``: the
    grid's DSM (:func:`skysieve.mosaic.surface.build_surface`): a true ortho; None: the ground plane.
    ``decoded``: photos kept decoded between the cells of a run (taken from it, offered back when done)."""
    from concurrent.futures import Future, ThreadPoolExecutor

    threads = threads or min(RENDER_THREADS, usable_cpus())
    from skysieve.progress import progress

    wins = windows(grid, window_px)
    fps = [pp.footprint() for pp in placed]
    tree = shapely.STRtree(fps)
    needs = [sorted(int(i) for i in tree.query(grid.window_box(w), predicate="intersects")) for w in wins]
    # the photos decoded for each window: those the seams let show there (all that reach it without seams)
    decode, clear = (_decode_plan(placed, grid, wins, needs, seams, blend.band_px) if seams is not None
                     else (needs, [False] * len(wins)))
    weigh = [d if c else n for d, c, n in zip(decode, clear, needs, strict=True)]  # the photos given weights
    last_use: dict[int, int] = {}
    for k, idx in enumerate(decode):
        for i in idx:
            last_use[i] = k
    images: dict[int, Future] = {}  # decodes of the photos the windows in flight need
    peak = 0
    pending: deque = deque()  # (window index, future), in window order
    todo = [k for k in range(len(wins)) if needs[k]]

    def finish():
        k, fut = pending.popleft()
        rgb, covered = fut.result()
        if decoded is not None:
            decoded.in_flight(sum(f.result()[0].nbytes for f in images.values() if f.done() and not f.exception()))
        for i in decode[k]:
            if last_use[i] == k:  # windows finish in order: no later window needs it
                done = images.pop(i, None)
                if decoded is not None and done is not None:
                    decoded.offer(DecodedPhotos.key(placed[i], grid.gsd_m), done.result())
        return k, rgb, covered

    def render(k: int, decoded: dict[int, Future]) -> tuple[np.ndarray, np.ndarray]:
        # the decodes were submitted before this job: in a FIFO pool they are done or running, never queued behind it
        return render_window(placed, {i: f.result() for i, f in decoded.items()}, weigh[k], grid, wins[k], blend,
                             seams, surface)

    with ThreadPoolExecutor(threads) as pool:  # cv2 and numpy release the GIL; photos are shared
        for k in progress(todo, "rendering", len(todo), unit="window"):
            for i in decode[k]:
                if i not in images:
                    kept = decoded.take(DecodedPhotos.key(placed[i], grid.gsd_m)) if decoded is not None else None
                    if kept is not None:  # decoded for an earlier cell
                        images[i] = Future()
                        images[i].set_result(kept)
                    else:
                        images[i] = pool.submit(decode_for_render, placed[i], grid.gsd_m)
            peak = max(peak, len(images))
            pending.append((k, pool.submit(render, k, {i: images[i] for i in decode[k]})))
            while len(pending) > threads:
                k_done, rgb, covered = finish()
                if covered.any():
                    yield wins[k_done], rgb, covered
        while pending:
            k_done, rgb, covered = finish()
            if covered.any():
                yield wins[k_done], rgb, covered
    log.debug("rendering held at most %d decoded photos", peak)


def estimate_gains(placed: list[PlacedPhoto], blend: BlendSettings, coarse_px: int = 160,
                   thumbs: list[np.ndarray | None] | None = None) -> np.ndarray:
    """Per-photo RGB gains (n x 3) from the photos' overlaps, on coarse renders (~``coarse_px`` across).

    ``thumbs``: per photo a small RGB copy of it (its whole frame) to render from, where one at least as
    fine as the coarse render is at hand (the feature pass keeps one); the others are decoded.
    """
    from concurrent.futures import ThreadPoolExecutor

    import cv2

    if len(placed) < 2:
        return np.ones((len(placed), 3))
    gsd = float(np.median([math.sqrt(pp.footprint().area) for pp in placed])) / coarse_px

    def patch(k: int) -> tuple[int, int, np.ndarray, np.ndarray]:
        pp = placed[k]
        g = OutputGrid.covering(pp.footprint().bounds, gsd)
        scale = min(1.0, pp.photo.gsd_m / gsd)
        cam = pp.photo.camera
        thumb = thumbs[k] if thumbs else None
        if thumb is not None and thumb.shape[1] >= scale * cam.width_px and thumb.shape[0] >= scale * cam.height_px:
            w, h = max(1, round(cam.width_px * scale)), max(1, round(cam.height_px * scale))
            img = cv2.resize(thumb, (w, h), interpolation=cv2.INTER_AREA)
            sx, sy = w / cam.width_px, h / cam.height_px
        else:
            img, sx, sy = read_image(pp.photo, scale)
        a = g.pixel_to_ground(0, 0)
        m = np.linalg.inv(pp.homography) @ a
        to_src = np.array([[sx, 0.0, -0.5], [0.0, sy, -0.5], [0.0, 0.0, 1.0]]) @ m
        w = cv2.warpPerspective(img, to_src, (g.width, g.height), flags=cv2.INTER_AREA | cv2.WARP_INVERSE_MAP)
        cols, rows = np.meshgrid(np.arange(g.width, dtype=np.float32), np.arange(g.height, dtype=np.float32))
        u, v = grid_pixels(m, cols, rows)
        mask = edge_taper(u, v, cam.width_px, cam.height_px, 0.05 * cam.width_px) > 0.99
        return round(g.x_min / gsd), round(g.y_max / gsd), w.astype(np.float32), mask

    with ThreadPoolExecutor(min(RENDER_THREADS, usable_cpus())) as pool:  # decoding releases the GIL
        patches = list(pool.map(patch, range(len(placed))))
    fps = [pp.footprint() for pp in placed]
    tree = shapely.STRtree(fps)
    overlaps = []
    for i, (xi, yi, wi, mi) in enumerate(patches):
        for j in tree.query(fps[i], predicate="intersects"):
            j = int(j)
            if j <= i:
                continue
            xj, yj, wj, mj = patches[j]
            # overlap of the two patches in coarse-grid indices (cols from west, rows from north)
            c0, c1 = max(xi, xj), min(xi + wi.shape[1], xj + wj.shape[1])
            r0, r1 = max(-yi, -yj), min(-yi + wi.shape[0], -yj + wj.shape[0])
            if c1 <= c0 or r1 <= r0:
                continue
            si = (slice(r0 + yi, r1 + yi), slice(c0 - xi, c1 - xi))
            sj = (slice(r0 + yj, r1 + yj), slice(c0 - xj, c1 - xj))
            both = mi[si] & mj[sj]
            nij = int(both.sum())
            if nij < 20:
                continue
            overlaps.append((i, j, float(nij), wi[si][both].mean(0), wj[sj][both].mean(0)))
    return solve_gains(len(placed), overlaps, blend)
