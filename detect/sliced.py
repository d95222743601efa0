"""Sliced inference over a georeferenced raster (an orthomosaic), read window by window.

The raster is never loaded whole: each slice of the model grid (:mod:`skysieve.detect.slicing`) is
read as one window of whole source pixels, valid mask first (slices without enough valid pixels, the
mosaic's no-data/alpha mask, are skipped unread), and resampled here to the model's ground sample
distance exactly as GDAL's resampled read of the slice's fractional window would (:func:`resample_window`:
same mask pixel for pixel, same RGB within rounding), at a fraction of its cost: bilinear (OpenCV) when
upsampling, an exact area average of the valid pixels when downsampling, from the COG's overview that
GDAL would use. No-data inside a slice is filled with a smooth continuation of the ground around it
(:func:`fill_no_data`: the model never saw no-data in training, and fired on a black fill), and a box
lying mostly on no-data is dropped. Batches of slices go through the detector; the boxes of all slices
are merged into one per object (:mod:`skysieve.detect.merge`) and mapped to the raster's CRS. Peak
memory is a few batches of slices, whatever the size of the raster.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely
from affine import Affine

from skysieve.detect.merge import MergeSettings, group_piles, merge_boxes, truncated_mask, valid_fraction
from skysieve.detect.refine import LookSettings, second_look
from skysieve.detect.runtime import Detector
from skysieve.detect.slicing import Slice, plan_slices
from skysieve.errors import DetectionError
from skysieve.progress import progress

__all__ = ["SliceSettings", "RasterDetections", "detect_raster", "model_grid", "SliceWindow", "slice_window",
           "resample_window", "fill_no_data", "slice_source"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SliceSettings:
    """How a raster is sliced and scored. ``overlap``: fraction of the slice side shared with the
    neighbour (objects up to ``overlap * imgsz * gsd`` metres are always seen whole)."""

    conf: float = 0.25
    iou: float = 0.5  # NMS inside a slice
    overlap: float = 0.25
    batch: int = 8
    min_valid: float = 0.005  # skip a slice with less than this fraction of valid (not no-data) pixels
    min_box_valid: float = 0.5  # drop a box with less than this fraction of its pixels valid (mostly no-data)
    gdal_cache_mb: int = 256  # GDAL block cache: holds a few rows of slices (GDAL's default is 5% of RAM)
    merge: MergeSettings = field(default_factory=MergeSettings)
    # per-class operating thresholds (the model's classes in order): boxes are sliced at ``conf`` and merged,
    # then each class is cut at its own threshold and piles are grouped (:func:`group_piles`). None: the
    # boxes down to ``conf``, ungrouped (what AP and threshold calibration need: a rule over confident boxes
    # has no meaning at score 0.001)
    class_conf: tuple[float, ...] | None = None
    # with ``class_conf``: each box kept at its threshold is scored again in a slice centred on it, mirrored,
    # and its corners averaged (:mod:`skysieve.detect.refine`), before piles are grouped
    look: LookSettings = field(default_factory=LookSettings)

    def predict_conf(self, classes: Sequence[str]) -> float:
        """The score boxes are kept from: ``conf``, or lower where weak pile boxes may join piles."""
        share = self.merge.pile_join_share
        piles = [t for c, t in zip(classes, self.class_conf or (), strict=False) if c in self.merge.pile_classes]
        return min([self.conf] + [share * t for t in piles]) if share > 0 else self.conf


@dataclass(frozen=True)
class RasterDetections:
    """Boxes found in one raster. ``polygons`` are in ``crs`` (the raster's); ``xyxy_px`` in source pixels
    (col, row); ``cls`` indexes ``classes``."""

    polygons: list[shapely.Polygon]
    xyxy_px: np.ndarray
    score: np.ndarray
    cls: np.ndarray
    classes: tuple[str, ...]
    crs: object
    slices: int
    skipped: int
    seconds: float

    def __len__(self) -> int:
        return len(self.score)

    @property
    def centres(self) -> np.ndarray:
        """Box centres (N, 2) x/y in the raster's CRS."""
        return np.array([[p.centroid.x, p.centroid.y] for p in self.polygons]).reshape(-1, 2)


def model_grid(transform: Affine, width: int, height: int, model_gsd: float) -> tuple[float, int, int]:
    """``k`` (source pixels per model pixel) and the model grid's width and height in pixels."""
    src_gsd = math.hypot(transform.a, transform.d)
    if not src_gsd > 0:
        raise DetectionError("the raster has no usable pixel size in its geotransform")
    k = model_gsd / src_gsd
    return k, max(1, round(width / k)), max(1, round(height / k))


# Above this many source pixels per model pixel a slice is an area average (anti-aliased), else bilinear.
_AREA_ABOVE = 1.2


@dataclass(frozen=True)
class SliceWindow:
    """Where a slice lies on the source raster: output pixel ``(i, j)`` (column, row) of the resampled
    slice covers source pixels ``c0 + i * sx`` to ``c0 + (i + 1) * sx`` (and the same for rows), as in
    a GDAL read of the fractional window ``(c0, r0, out_w * sx, out_h * sy)`` into ``out_w x out_h``.
    ``x0, y0, x1, y1``: the whole-pixel window read to compute it: every source pixel that the bilinear
    kernel or the area average weighs, inside the raster."""

    c0: float
    r0: float
    sx: float
    sy: float
    out_w: int
    out_h: int
    x0: int
    y0: int
    x1: int
    y1: int


def slice_window(sl: Slice, k: float, width: int, height: int, ky: float | None = None) -> SliceWindow:
    """The source window of ``sl`` on a ``width x height`` raster with ``k`` source pixels per model pixel
    (``ky`` along rows where it differs: an overview whose side is not exactly half the raster's).

    The fractional window ends on the raster's edge (a slice sticking out of a raster smaller than a slice
    is cut to ``out_w x out_h`` model pixels). The whole-pixel window is no larger than needed: at one
    source pixel per model pixel it is the slice itself (a wider read can cost another block to decode)."""
    size, kx, ky = sl.size, k, k if ky is None else ky
    c0, r0 = sl.col_off * kx, sl.row_off * ky
    c1, r1 = min((sl.col_off + size) * kx, width), min((sl.row_off + size) * ky, height)
    out_w, out_h = min(size, max(1, round((c1 - c0) / kx))), min(size, max(1, round((r1 - r0) / ky)))
    sx, sy = (c1 - c0) / out_w, (r1 - r0) / out_h
    x0, x1 = _whole_pixels(c0, sx, out_w, width)
    y0, y1 = _whole_pixels(r0, sy, out_h, height)
    return SliceWindow(c0, r0, sx, sy, out_w, out_h, x0, y0, x1, y1)


def _whole_pixels(start: float, step: float, n: int, length: int) -> tuple[int, int]:
    """Source pixels ``[lo, hi)`` weighed by ``n`` output pixels from ``start`` every ``step``: by the area
    average (``start`` to ``start + n step``) or by the bilinear kernel (pixel centres closer than
    ``max(1, step)`` to a sample point ``start + (i + 0.5) step``; OpenCV replicates the window's edge for
    a tap of weight 0 beyond it)."""
    r = max(1.0, step)
    lo = min(math.floor(start), math.floor(start + 0.5 * step - r - 0.5) + 1)
    hi = max(math.ceil(start + n * step), math.ceil(start + (n - 0.5) * step + r - 0.5))
    return max(0, lo), min(length, hi)


def nearest_mask(mask: np.ndarray, w: SliceWindow) -> np.ndarray:
    """``out_h x out_w`` booleans of a whole-pixel mask (of window ``w.x0, w.y0, ...``) sampled as GDAL's
    nearest-neighbour read of the fractional window does: the source pixel under each output pixel's centre."""
    h, wd = mask.shape
    cols = np.clip(np.floor(w.c0 + (np.arange(w.out_w) + 0.5) * w.sx).astype(np.int64) - w.x0, 0, wd - 1)
    rows = np.clip(np.floor(w.r0 + (np.arange(w.out_h) + 0.5) * w.sy).astype(np.int64) - w.y0, 0, h - 1)
    return mask[rows[:, None], cols[None, :]] > 0


def _bilinear(rgb: np.ndarray, mask: np.ndarray | None, w: SliceWindow) -> np.ndarray:
    """Bilinear resampling of ``rgb`` (whole-pixel window) onto the slice: output pixel centre ``i`` samples
    source point ``c0 + (i + 0.5) * sx`` (pixel-corner coordinates). Masked pixels carry no weight (the
    weights of the valid ones are renormalised, as GDAL does with a mask band); ``mask=None``: all valid."""
    import cv2

    m = np.array([[w.sx, 0.0, w.c0 + 0.5 * w.sx - 0.5 - w.x0],
                  [0.0, w.sy, w.r0 + 0.5 * w.sy - 0.5 - w.y0]])
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    dsize = (w.out_w, w.out_h)
    if mask is None and np.array_equal(m, [[1, 0, 0], [0, 1, 0]]) and rgb.shape[:2] == (w.out_h, w.out_w):
        return rgb  # one source pixel per model pixel, on whole pixels: nothing to resample
    if mask is None:
        return cv2.warpAffine(rgb, m, dsize, flags=flags, borderMode=cv2.BORDER_REPLICATE)
    return _normalised(cv2.warpAffine(_premultiplied(rgb, mask), m, dsize, flags=flags,
                                      borderMode=cv2.BORDER_REPLICATE))


def _premultiplied(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """float32 (H, W, 4): RGB where valid (0 elsewhere), and the valid mask (0/1)."""
    import cv2

    valid = cv2.compare(mask, 0, cv2.CMP_GT)
    return np.float32(cv2.merge([cv2.bitwise_and(rgb, rgb, mask=valid), valid // 255]))


def _normalised(x: np.ndarray) -> np.ndarray:
    """uint8 RGB of a premultiplied (H, W, 4) image: RGB over the weight of valid pixels."""
    import cv2

    den = np.maximum(x[..., 3], 1e-6)
    return cv2.convertScaleAbs(cv2.divide(x[..., :3], cv2.merge([den] * 3)))  # rounds, saturates


def _area_weights(a0: float, step: float, n_out: int, n_src: int):
    """Sparse (n_out, n_src): the length of output pixel ``i``'s footprint ``[a0 + i step, a0 + (i + 1) step]``
    lying on source pixel ``j`` (0 outside the source): GDAL's ``average``."""
    lo = a0 + np.arange(n_out) * step
    j = np.floor(lo).astype(np.int64)[:, None] + np.arange(math.ceil(step) + 1)
    return _sparse(j, np.minimum(lo[:, None] + step, j + 1) - np.maximum(lo[:, None], j), n_src)


def _triangle_weights(a0: float, step: float, n_out: int, n_src: int):
    """Sparse (n_out, n_src): GDAL's bilinear kernel when downsampling, a triangle as wide as one output
    pixel (``step`` source pixels) around each sample point ``a0 + (i + 0.5) step``."""
    p = a0 + (np.arange(n_out) + 0.5) * step
    r = max(1.0, step)
    j = np.floor(p - r - 0.5).astype(np.int64)[:, None] + 1 + np.arange(math.ceil(2 * r) + 1)
    return _sparse(j, 1.0 - np.abs(j + 0.5 - p[:, None]) / r, n_src)


def _sparse(j: np.ndarray, wgt: np.ndarray, n_src: int):
    """CSR matrix with row ``i`` holding weights ``wgt[i]`` at columns ``j[i]`` (negative weights and columns
    outside ``[0, n_src)`` dropped: the valid pixels' weights are renormalised afterwards)."""
    from scipy.sparse import csr_matrix

    wgt = np.clip(wgt, 0, None)
    wgt[(j < 0) | (j >= n_src)] = 0
    n_out, taps = j.shape
    return csr_matrix((wgt.astype(np.float32).ravel(), np.clip(j, 0, n_src - 1).ravel(),
                       np.arange(0, n_out * taps + 1, taps)), shape=(n_out, n_src))


def _separable(rgb: np.ndarray, mask: np.ndarray | None, w: SliceWindow, weights) -> np.ndarray:
    """Resampling of the valid pixels of ``rgb`` with a separable kernel (``weights``: :func:`_area_weights`
    or :func:`_triangle_weights`), as two sparse products, renormalised over the valid pixels' weights."""
    h, wd = rgb.shape[:2]
    x = _premultiplied(rgb, np.ones((h, wd), np.uint8) if mask is None else mask)
    wy = weights(w.r0 - w.y0, w.sy, w.out_h, h)
    wx = weights(w.c0 - w.x0, w.sx, w.out_w, wd)
    y = (wy @ x.reshape(h, wd * 4)).reshape(w.out_h, wd, 4).transpose(1, 0, 2).reshape(wd, w.out_h * 4)
    out = (wx @ y).reshape(w.out_w, w.out_h, 4).transpose(1, 0, 2)
    return _normalised(np.ascontiguousarray(out, np.float32))


def resample_window(rgb: np.ndarray, mask: np.ndarray | None, w: SliceWindow, area: bool | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """RGB ``(out_h, out_w, 3)`` and valid mask of one slice from its whole-pixel window (``rgb`` HxWx3
    uint8, ``mask`` HxW, >0 valid, or ``None``: all valid): what GDAL's resampled read of the fractional
    window gives (mask: nearest; RGB: bilinear, or with ``area`` an area average (default: above
    :data:`_AREA_ABOVE` source pixels per model pixel); both weigh valid pixels only), without its cost
    (the mask alone took 24-64 ms a slice on a fractional window, 0.2-0.8 ms on whole pixels)."""
    out_mask = np.ones((w.out_h, w.out_w), bool) if mask is None else nearest_mask(mask, w)
    return _resample(rgb, mask, w, area), out_mask


def _resample(rgb: np.ndarray, mask: np.ndarray | None, w: SliceWindow, area: bool | None) -> np.ndarray:
    if mask is not None and mask.all():
        mask = None
    if area is None:
        area = max(w.sx, w.sy) > _AREA_ABOVE
    if area and max(abs(w.sx - 1), abs(w.sy - 1)) < 0.01:  # an overview at the model's GSD: the average
        out = _bilinear(rgb, mask, w)  # over a pixel-sized footprint is the bilinear sample at its centre
    elif area:
        out = _separable(rgb, mask, w, _area_weights)
    elif max(w.sx, w.sy) > 1:  # GDAL widens the bilinear kernel to the output pixel; OpenCV does not
        out = _separable(rgb, mask, w, _triangle_weights)
    else:
        out = _bilinear(rgb, mask, w)
    return out.reshape(w.out_h, w.out_w, 3)


def _read_slice(src, sl: Slice, k: float, min_valid: float, ky: float | None = None, area: bool | None = None
                ) -> tuple[np.ndarray | None, np.ndarray | None, float]:
    """RGB uint8 (size, size, 3) of one slice, its valid mask (size, size) and valid fraction; pixels
    outside the raster or its mask are filled (:func:`fill_no_data`). ``k``, ``ky``: as :func:`slice_window`;
    ``area``: as :func:`resample_window` (an overview read for a coarser grid is averaged, whatever its ``k``).

    Whole source pixels are read (mask first: a slice with less than ``min_valid`` valid pixels returns
    ``None, None`` unread) and resampled here (:func:`resample_window`)."""
    import cv2
    from rasterio.enums import MaskFlags
    from rasterio.windows import Window

    size = sl.size
    w = slice_window(sl, k, src.width, src.height, ky)
    win = Window(w.x0, w.y0, w.x1 - w.x0, w.y1 - w.y0)
    all_valid = all(flags == [MaskFlags.all_valid] for flags in src.mask_flag_enums)
    mask = None if all_valid else src.dataset_mask(window=win)
    out_mask = np.zeros((size, size), bool)
    out_mask[:w.out_h, :w.out_w] = True if mask is None else nearest_mask(mask, w)
    valid = float(out_mask.sum()) / (size * size)
    if valid < min_valid:
        return None, None, valid
    bands = [1, 2, 3] if src.count >= 3 else [1, 1, 1]
    rgb = cv2.merge(list(src.read(bands, window=win)))  # (H, W, 3); 40x faster than a numpy transpose
    out = _resample(rgb, mask, w, area)
    if out.shape[:2] != (size, size):
        out = np.pad(out, ((0, size - w.out_h), (0, size - w.out_w), (0, 0)))
    return fill_no_data(out, out_mask), out_mask, valid


def fill_no_data(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``rgb`` (H, W, 3) uint8 with its invalid pixels (``mask`` False) replaced, in place, by a smooth
    continuation of the valid ones, so that a mosaic's no-data shows the model no edge and no black.

    Push-pull: the valid pixels are averaged over blocks of 2, 4, 8 ... pixels (a mask-weighted pyramid);
    going back down, each level keeps its own averages where it has valid pixels and takes the coarser
    level's, interpolated, where it has none (a blend where it has some). The model never saw no-data in
    training; it saw bare ground, which a blurred continuation of the surroundings resembles (a black
    fill leaves a hard straight edge, on which it fired: tank boxes over the no-data beside an edge)."""
    import cv2

    if mask.all():
        return rgb
    if not mask.any():
        rgb[:] = 0
        return rgb
    level = _premultiplied(rgb, mask.view(np.uint8))
    pyramid = []
    while max(level.shape[:2]) > 1:
        pyramid.append(level)
        h, w = level.shape[:2]
        level = cv2.resize(level, ((w + 1) // 2, (h + 1) // 2), interpolation=cv2.INTER_AREA)
    colour = level[..., :3] / max(float(level[..., 3].max()), 1e-6)
    for level in pyramid[:0:-1]:  # the finest level's weights are 0 or 1: it only takes, below
        h, w = level.shape[:2]
        up = cv2.resize(colour.reshape(*colour.shape[:2], 3), (w, h), interpolation=cv2.INTER_LINEAR)
        colour = level[..., :3] + (1.0 - level[..., 3:]) * up.reshape(h, w, 3)
    up = cv2.resize(colour.reshape(*colour.shape[:2], 3), (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)
    np.copyto(rgb, cv2.convertScaleAbs(up).reshape(rgb.shape), where=~mask[..., None])
    return rgb


def overview_level(src, k: float) -> int | None:
    """The overview of ``src`` to read slices from when there are ``k`` > :data:`_AREA_ABOVE` source pixels
    per model pixel: the coarsest one still (about) as fine as the model grid, decimation <= ``1.01 k``, as
    GDAL picks for a resampled read (``GDAL_OVERVIEW_OVERSAMPLING_THRESHOLD``'s default for other than
    nearest; for the mask, a nearest read, GDAL allowed 1.2 k: it could take the mask from a coarser
    overview than the pixels, here both come from this one); ``None``: the full resolution."""
    if k <= _AREA_ABOVE:
        return None
    best = None
    for i, f in enumerate(src.overviews(1)):
        actual = max(src.width / math.ceil(src.width / f), src.height / math.ceil(src.height / f))
        if actual <= k * 1.01:
            best = i
    return best


@contextlib.contextmanager
def slice_source(path, src, k: float) -> Iterator[tuple[object, float, float]]:
    """The dataset to read slices from: ``src`` (opened from ``path``) or the overview :func:`overview_level`
    picks, with its source pixels per model pixel along columns and rows."""
    level = overview_level(src, k)
    if level is None:
        yield src, k, k
        return
    import rasterio

    with rasterio.open(path, overview_level=level) as ovr:
        yield ovr, k * ovr.width / src.width, k * ovr.height / src.height


def _batches(src, slices: list[Slice], k: tuple[float, float], area: bool, settings: SliceSettings
             ) -> Iterator[tuple[list[Slice], np.ndarray, np.ndarray, int]]:
    """Batches of non-empty slices with their pixels and valid masks; the int counts slices skipped as empty.
    ``k``: source pixels per model pixel along columns and rows of ``src`` (the raster or an overview);
    ``area``: average (else bilinear)."""
    batch: list[Slice] = []
    pixels: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    skipped = 0
    for sl in slices:
        rgb, mask, _ = _read_slice(src, sl, k[0], settings.min_valid, k[1], area)
        if rgb is None:
            skipped += 1
            continue
        batch.append(sl)
        pixels.append(rgb)
        masks.append(mask)
        if len(batch) == settings.batch:
            yield batch, np.stack(pixels), np.stack(masks), skipped
            batch, pixels, masks, skipped = [], [], [], 0
    if batch or skipped:
        if pixels:
            yield batch, np.stack(pixels), np.stack(masks), skipped
        else:
            yield batch, np.zeros((0, 1, 1, 3), np.uint8), np.zeros((0, 1, 1), bool), skipped


def _prefetch(it: Iterator, depth: int = 2) -> Iterator:
    """Read the next batches in a thread while the current one runs (GDAL releases the GIL)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = []
        it = iter(it)

        def nxt():
            return next(it, None)

        for _ in range(depth):
            pending.append(pool.submit(nxt))
        while pending:
            item = pending.pop(0).result()
            if item is None:
                break
            pending.append(pool.submit(nxt))
            yield item


def detect_raster(path: str | Path, detector: Detector, settings: SliceSettings = SliceSettings(),
                  desc: str = "detect") -> RasterDetections:
    """Run ``detector`` over the raster at ``path`` (any GDAL raster, RGB(A) uint8, north-up or not).

    Raises :class:`DetectionError` when the file cannot be opened or is not an 8-bit image.
    """
    import rasterio

    t0 = time.perf_counter()
    with rasterio.Env(GDAL_CACHEMAX=settings.gdal_cache_mb):
        return _detect(path, detector, settings, desc, t0)


def _detect(path, detector: Detector, settings: SliceSettings, desc: str, t0: float) -> RasterDetections:
    import rasterio

    try:
        src = rasterio.open(path)
    except rasterio.errors.RasterioIOError as e:
        raise DetectionError(f"cannot open the mosaic: {e}", path=path,
                             hint="rebuild it with `skysieve mosaic`") from e
    with src:
        if src.dtypes[0] != "uint8":
            raise DetectionError(f"the mosaic is {src.dtypes[0]}, detection needs 8-bit RGB", path=path,
                                 hint="convert it to 8-bit (e.g. gdal_translate -ot Byte -scale)")
        size = detector.meta.imgsz
        k, gw, gh = model_grid(src.transform, src.width, src.height, detector.meta.gsd_m)
        overlap = min(size - 1, max(0, round(settings.overlap * size)))
        slices = plan_slices(gw, gh, size, overlap)
        all_xyxy, all_score, all_cls, all_trunc = [], [], [], []
        skipped = 0
        n_batches = math.ceil(len(slices) / settings.batch)
        conf = settings.predict_conf(detector.meta.classes)
        with slice_source(path, src, k) as (reader, kx, ky):
            batches = _prefetch(_batches(reader, slices, (kx, ky), k > _AREA_ABOVE, settings))
            for batch, pixels, masks, n_skip in progress(batches, desc=desc, total=n_batches, unit="batch"):
                skipped += n_skip
                if not batch:
                    continue
                found = detector.predict(pixels, conf=conf, iou=settings.iou, pad_to=settings.batch)
                for sl, boxes, mask in zip(batch, found, masks, strict=True):
                    if not len(boxes):
                        continue
                    keep = valid_fraction(boxes.xyxy, mask) >= settings.min_box_valid  # not on no-data
                    if not keep.any():
                        continue
                    xyxy = boxes.xyxy[keep]
                    all_trunc.append(truncated_mask(xyxy, sl, settings.merge.edge_px))
                    all_xyxy.append(xyxy + np.array([sl.col_off, sl.row_off] * 2, np.float32))
                    all_score.append(boxes.score[keep])
                    all_cls.append(boxes.cls[keep])
            if all_xyxy:
                xyxy, score, cls = merge_boxes(np.concatenate(all_xyxy), np.concatenate(all_score),
                                               np.concatenate(all_cls), np.concatenate(all_trunc), settings.merge)
            else:
                xyxy, score, cls = np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64)
            if settings.class_conf is not None:
                def read(sl: Slice) -> tuple[np.ndarray | None, np.ndarray | None]:
                    rgb, mask, _ = _read_slice(reader, sl, kx, settings.min_valid, ky, k > _AREA_ABOVE)
                    return rgb, mask

                xyxy, score, cls = _flags(xyxy, score, cls, read, (gw, gh), settings, detector, desc)
        xyxy_src = xyxy.astype(np.float64) * k
        polygons = [_pixel_box_polygon(src.transform, b) for b in xyxy_src]
        crs = src.crs
    result = RasterDetections(polygons, xyxy_src, score, cls, detector.meta.classes, crs, len(slices), skipped,
                              time.perf_counter() - t0)
    log.info("%s: %d boxes from %d slices (%d empty skipped) in %.1f s", path, len(result), len(slices), skipped,
             result.seconds)
    return result


def _flags(xyxy, score, cls, read, grid_wh: tuple[int, int], settings: SliceSettings, detector: Detector,
           desc: str = ""):
    """What ``skysieve detect`` flags from the merged boxes (model-grid pixels): each class cut at its threshold
    (``settings.class_conf``), a second look at the kept boxes of other than pile classes
    (:func:`skysieve.detect.refine.second_look`, reading slices with ``read``), piles grouped."""
    names = detector.meta.classes
    if len(settings.class_conf) != len(names):
        raise DetectionError(f"{len(settings.class_conf)} class thresholds for a model of {len(names)} classes "
                             f"({', '.join(names)})")
    piles = [names.index(c) for c in settings.merge.pile_classes if c in names]
    thr = np.asarray(settings.class_conf, np.float32)[cls]
    strong = score >= thr
    share = settings.merge.pile_join_share
    weak = ~strong & np.isin(cls, piles) & (score >= share * thr) if share > 0 else np.zeros(len(score), bool)
    keep = strong | weak
    xyxy, score, cls, weak, thr = xyxy[keep], score[keep], cls[keep], weak[keep], thr[keep]
    look = ~np.isin(cls, piles)
    if settings.look.views and look.any():
        conf = settings.predict_conf(names)
        xyxy = second_look(xyxy, score, cls, read,
                           lambda px: detector.predict(px, conf=conf, iou=settings.iou, pad_to=settings.batch),
                           detector.meta.imgsz, *grid_wh, settings.look, settings.batch, settings.merge.edge_px,
                           settings.min_box_valid, which=look, floor=thr, desc=f"{desc} (second look)" if desc else "")
    gap = settings.merge.pile_gap_m / detector.meta.gsd_m if settings.merge.pile_gap_m > 0 else -1.0
    return group_piles(xyxy, score, cls, piles, gap, weak=weak)


def _pixel_box_polygon(transform: Affine, xyxy: np.ndarray) -> shapely.Polygon:
    """Polygon (map coordinates) of a pixel box (col/row, pixel corners); exact for rotated transforms too."""
    x0, y0, x1, y1 = (float(v) for v in xyxy)
    return shapely.Polygon([transform @ (x0, y0), transform @ (x1, y0), transform @ (x1, y1), transform @ (x0, y1)])
