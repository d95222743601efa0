"""Sliced inference over a georeferenced raster (an orthomosaic), read window by window.

The raster is never loaded whole: each slice of the model grid (:mod:`skysieve.detect.slicing`) is
read as one rasterio window, resampled on the fly to the model's ground sample distance (GDAL uses
the COG's overviews when it can), and slices without valid pixels (the mosaic's no-data/alpha mask)
are skipped. Batches of slices go through the detector; the boxes of all slices are merged into one
per object (:mod:`skysieve.detect.merge`) and mapped to the raster's CRS. Peak memory is a few
batches of slices, whatever the size of the raster.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely
from affine import Affine

from skysieve.detect.merge import MergeSettings, merge_boxes, truncated_mask
from skysieve.detect.runtime import Detector
from skysieve.detect.slicing import Slice, plan_slices
from skysieve.errors import DetectionError
from skysieve.progress import progress

__all__ = ["SliceSettings", "RasterDetections", "detect_raster", "model_grid"]

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
    gdal_cache_mb: int = 256  # GDAL block cache: holds a few rows of slices (GDAL's default is 5% of RAM)
    merge: MergeSettings = field(default_factory=MergeSettings)


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


def _read_slice(src, sl: Slice, k: float, min_valid: float) -> tuple[np.ndarray | None, float]:
    """RGB uint8 (size, size, 3) of one slice, zero outside the raster or mask, and its valid fraction.

    The mask is read first: a slice with less than ``min_valid`` valid pixels returns ``None`` unread.
    """
    from rasterio.enums import Resampling
    from rasterio.windows import Window

    size = sl.size
    c0, r0 = sl.col_off * k, sl.row_off * k
    c1, r1 = min((sl.col_off + size) * k, src.width), min((sl.row_off + size) * k, src.height)
    out_w, out_h = min(size, max(1, round((c1 - c0) / k))), min(size, max(1, round((r1 - r0) / k)))
    win = Window(c0, r0, c1 - c0, r1 - r0)
    mask = src.dataset_mask(window=win, out_shape=(out_h, out_w)) > 0
    valid = float(mask.sum()) / (size * size)
    if valid < min_valid:
        return None, valid
    resampling = Resampling.average if k > 1.2 else Resampling.bilinear
    bands = [1, 2, 3] if src.count >= 3 else [1, 1, 1]
    rgb = src.read(bands, window=win, out_shape=(3, out_h, out_w), resampling=resampling)
    out = np.zeros((size, size, 3), np.uint8)
    out[:out_h, :out_w] = np.where(mask[..., None], rgb.transpose(1, 2, 0), 0)
    return out, valid


def _batches(src, slices: list[Slice], k: float, settings: SliceSettings
             ) -> Iterator[tuple[list[Slice], np.ndarray, int]]:
    """Batches of non-empty slices with their pixels; the int counts slices skipped as empty."""
    batch: list[Slice] = []
    pixels: list[np.ndarray] = []
    skipped = 0
    for sl in slices:
        rgb, _ = _read_slice(src, sl, k, settings.min_valid)
        if rgb is None:
            skipped += 1
            continue
        batch.append(sl)
        pixels.append(rgb)
        if len(batch) == settings.batch:
            yield batch, np.stack(pixels), skipped
            batch, pixels, skipped = [], [], 0
    if batch or skipped:
        yield batch, (np.stack(pixels) if pixels else np.zeros((0, 1, 1, 3), np.uint8)), skipped


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
        for batch, pixels, n_skip in progress(_prefetch(_batches(src, slices, k, settings)), desc=desc,
                                              total=n_batches, unit="batch"):
            skipped += n_skip
            if not batch:
                continue
            if len(batch) < settings.batch:  # pad: one input shape, one compiled model (OpenVINO compiles per shape)
                pad = np.zeros((settings.batch - len(batch), *pixels.shape[1:]), np.uint8)
                pixels = np.concatenate([pixels, pad])
            found = detector.predict(pixels, conf=settings.conf, iou=settings.iou)[:len(batch)]
            for sl, boxes in zip(batch, found, strict=True):
                if not len(boxes):
                    continue
                all_trunc.append(truncated_mask(boxes.xyxy, sl, settings.merge.edge_px))
                all_xyxy.append(boxes.xyxy + np.array([sl.col_off, sl.row_off] * 2, np.float32))
                all_score.append(boxes.score)
                all_cls.append(boxes.cls)
        if all_xyxy:
            xyxy, score, cls = merge_boxes(np.concatenate(all_xyxy), np.concatenate(all_score),
                                           np.concatenate(all_cls), np.concatenate(all_trunc), settings.merge)
        else:
            xyxy, score, cls = np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64)
        xyxy_src = xyxy.astype(np.float64) * k
        polygons = [_pixel_box_polygon(src.transform, b) for b in xyxy_src]
        crs = src.crs
    result = RasterDetections(polygons, xyxy_src, score, cls, detector.meta.classes, crs, len(slices), skipped,
                              time.perf_counter() - t0)
    log.info("%s: %d boxes from %d slices (%d empty skipped) in %.1f s", path, len(result), len(slices), skipped,
             result.seconds)
    return result


def _pixel_box_polygon(transform: Affine, xyxy: np.ndarray) -> shapely.Polygon:
    """Polygon (map coordinates) of a pixel box (col/row, pixel corners); exact for rotated transforms too."""
    x0, y0, x1, y1 = (float(v) for v in xyxy)
    return shapely.Polygon([transform * (x0, y0), transform * (x1, y0), transform * (x1, y1), transform * (x0, y1)])
