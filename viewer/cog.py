"""Lazy, multiscale access to a cell's Cloud-Optimized GeoTIFF for napari.

napari draws a multiscale image from a list of array-likes, one per level, largest first, and only
ever slices the part of the level it is about to show. :class:`CogLevel` is such an array-like over
one level of the COG (the full-resolution image or one of its internal overviews): slicing it reads
exactly that rasterio window, so a 30,000 px mosaic opens at once and memory stays at the size of the
screen. Nothing is read when the mosaic is opened.

Arrays are ``(row, col, band)`` (napari's RGB(A) layout); rasterio's ``(band, row, col)`` is
transposed on the way out.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import ColorInterp, Resampling
from rasterio.windows import Window

from skysieve.errors import MosaicError

__all__ = ["BlockCache", "CogLevel", "MultiscaleMosaic", "open_mosaic", "read_chip"]

log = logging.getLogger(__name__)

#: smallest overview napari gets; coarser ones only cost file handles
_MIN_LEVEL_PX = 256


#: decoded blocks kept per mosaic (all levels together)
DEFAULT_CACHE_BYTES = 256 * 2**20


class BlockCache:
    """Least-recently-used decoded COG blocks, shared by threads (the viewer and the prefetcher)."""

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self.nbytes = 0
        self.hits = 0
        self.misses = 0
        self._blocks: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> np.ndarray | None:
        with self._lock:
            block = self._blocks.get(key)
            if block is None:
                self.misses += 1
                return None
            self._blocks.move_to_end(key)
            self.hits += 1
            return block

    def put(self, key: tuple, block: np.ndarray) -> None:
        with self._lock:
            if key in self._blocks:
                return
            self._blocks[key] = block
            self.nbytes += block.nbytes
            while self.nbytes > self.max_bytes and self._blocks:
                _, old = self._blocks.popitem(last=False)
                self.nbytes -= old.nbytes


class CogLevel:
    """Array-like ``(rows, cols, bands)`` over one level of a COG; slicing reads only that window.

    ``overview`` is ``None`` for full resolution or the index of an internal overview (0 = the
    first, half resolution). Reads go block by block (the COG's internal tiles, ``block_rc``
    pixels) through a :class:`BlockCache`, so panning back, or to a flag the prefetcher already
    read, costs a copy instead of a decode. Cached blocks are C-contiguous ``(rows, cols, bands)``,
    so that copy is one ``memcpy`` per row. Each thread opens its own dataset handle (GDAL
    handles are not thread-safe).
    """

    ndim = 3

    def __init__(self, path: Path, overview: int | None, shape: tuple[int, int, int], dtype: np.dtype,
                 bands: tuple[int, ...], block_rc: tuple[int, int] = (512, 512),
                 cache: BlockCache | None = None) -> None:
        self.path = Path(path)
        self.overview = overview
        self.shape = shape
        self.dtype = np.dtype(dtype)
        self.bands = bands
        self.block_rc = block_rc
        self.cache = cache if cache is not None else BlockCache()
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"CogLevel({self.path.name}, overview={self.overview}, shape={self.shape})"

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def _dataset(self):
        ds = getattr(self._local, "ds", None)
        if ds is None or ds.closed:
            kwargs = {} if self.overview is None else {"overview_level": self.overview}
            ds = rasterio.open(self.path, **kwargs)
            self._local.ds = ds
        return ds

    def _block(self, br: int, bc: int) -> np.ndarray:
        key = (self.overview, br, bc)
        block = self.cache.get(key)
        if block is None:
            bh, bw = self.block_rc
            r0, c0 = br * bh, bc * bw
            win = Window(c0, r0, min(bw, self.shape[1] - c0), min(bh, self.shape[0] - r0))
            # pixel-interleaved once, here (mostly in the prefetch thread): rasterio's band-major block seen
            # through moveaxis made every read_window a strided copy, ~10x slower than row copies
            block = np.ascontiguousarray(np.moveaxis(self._dataset().read(list(self.bands), window=win), 0, -1))
            self.cache.put(key, block)
        return block

    def read_window(self, row0: int, row1: int, col0: int, col1: int) -> np.ndarray:
        """Pixels ``[row0:row1, col0:col1]`` of this level, all bands, as ``(rows, cols, bands)``."""
        row0, col0 = max(row0, 0), max(col0, 0)
        row1, col1 = min(row1, self.shape[0]), min(col1, self.shape[1])
        rows, cols = max(row1 - row0, 0), max(col1 - col0, 0)
        out = np.empty((rows, cols, self.shape[2]), self.dtype)  # the blocks below cover every pixel of it
        if rows == 0 or cols == 0:
            return out
        bh, bw = self.block_rc
        for br in range(row0 // bh, (row1 - 1) // bh + 1):
            for bc in range(col0 // bw, (col1 - 1) // bw + 1):
                block = self._block(br, bc)
                r0, c0 = br * bh, bc * bw
                rs, re = max(row0, r0), min(row1, r0 + block.shape[0])
                cs, ce = max(col0, c0), min(col1, c0 + block.shape[1])
                out[rs - row0:re - row0, cs - col0:ce - col0] = block[rs - r0:re - r0, cs - c0:ce - c0]
        return out

    def prefetch(self, row0: int, row1: int, col0: int, col1: int) -> None:
        """Decode the blocks of a window into the cache (call from a worker thread)."""
        bh, bw = self.block_rc
        row0, col0 = max(row0, 0), max(col0, 0)
        row1, col1 = min(row1, self.shape[0]), min(col1, self.shape[1])
        for br in range(row0 // bh, (row1 - 1) // bh + 1):
            for bc in range(col0 // bw, (col1 - 1) // bw + 1):
                self._block(br, bc)

    def __getitem__(self, key) -> np.ndarray:
        if not isinstance(key, tuple):
            key = (key,)
        if any(k is Ellipsis for k in key):
            i = key.index(Ellipsis)
            key = key[:i] + (slice(None),) * (3 - len(key) + 1) + key[i + 1:]
        key = key + (slice(None),) * (3 - len(key))
        spatial = []
        post: list = []
        for axis in (0, 1):
            k = key[axis]
            n = self.shape[axis]
            if isinstance(k, slice):
                start, stop, step = k.indices(n)
                if step < 0:
                    raise IndexError("CogLevel does not support negative steps")
                spatial.append((start, max(stop, start)))
                post.append(slice(None, None, step))
            elif isinstance(k, (int, np.integer)):
                i = int(k) + n if k < 0 else int(k)
                if not 0 <= i < n:
                    raise IndexError(f"index {k} out of range for axis {axis} of size {n}")
                spatial.append((i, i + 1))
                post.append(0)
            else:
                raise IndexError(f"CogLevel supports ints and slices only, got {type(k).__name__}")
        (r0, r1), (c0, c1) = spatial
        data = self.read_window(r0, r1, c0, c1)
        return data[post[0], post[1], key[2]]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        data = self[:, :, :]
        return data if dtype is None else data.astype(dtype)


@dataclass(frozen=True)
class MultiscaleMosaic:
    """A COG opened for display: its levels (largest first) and level 0's geotransform."""

    path: Path
    levels: tuple[CogLevel, ...]
    transform: Affine  # level 0, workspace CRS metres
    rgb: bool
    bounds_xy: tuple[float, float, float, float]  # left, bottom, right, top (metres, workspace CRS)
    crs_wkt: str

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.levels[0].shape


def _display_bands(ds) -> tuple[int, ...]:
    """Band indexes (1-based) to show: RGB(A) if present, else the first band."""
    interp = list(ds.colorinterp)
    if ds.count >= 3:
        bands = [1, 2, 3]
        if ColorInterp.alpha in interp:
            bands.append(interp.index(ColorInterp.alpha) + 1)
        return tuple(bands)
    return (1,)


def open_mosaic(path: str | Path) -> MultiscaleMosaic:
    """Open a cell's COG lazily: level 0 plus every internal overview down to ~256 px.

    Raises :class:`MosaicError` when the file is missing or unreadable.
    """
    path = Path(path)
    if not path.exists():
        raise MosaicError("no mosaic for this cell", path=path,
                          hint="build it with `skysieve mosaic WORKSPACE --cell ID`")
    try:
        with rasterio.open(path) as ds:
            bands = _display_bands(ds)
            dtype = np.dtype(ds.dtypes[bands[0] - 1])
            transform = ds.transform
            overviews = ds.overviews(1)
            b = ds.bounds
            bounds = (b.left, b.bottom, b.right, b.top)
            crs_wkt = ds.crs.to_wkt() if ds.crs else ""
            height, width = ds.height, ds.width
            block_rc = tuple(ds.block_shapes[0])
    except rasterio.RasterioIOError as e:
        raise MosaicError(f"cannot read the mosaic: {e}", path=path,
                          hint="rebuild it with `skysieve mosaic`") from e
    cache = BlockCache()
    levels = [CogLevel(path, None, (height, width, len(bands)), dtype, bands, block_rc, cache)]
    for i, factor in enumerate(overviews):
        h, w = -(-height // factor), -(-width // factor)
        if levels[-1].shape[0] <= _MIN_LEVEL_PX and levels[-1].shape[1] <= _MIN_LEVEL_PX:
            break
        levels.append(CogLevel(path, i, (h, w, len(bands)), dtype, bands, block_rc, cache))
    if not overviews and max(height, width) > 4096:
        log.warning("%s has no overviews; zoomed-out views will read the full image (rebuild it as a COG)",
                    path)
    return MultiscaleMosaic(path, tuple(levels), transform, len(bands) >= 3, bounds, crs_wkt)


def read_chip(path: str | Path, bounds_xy: tuple[float, float, float, float], size_px: int = 192,
              ) -> np.ndarray:
    """An enlarged view of ``bounds_xy`` (left, bottom, right, top; metres) as ``(rows, cols, bands)``.

    The window is clipped to the raster; the longer side is resampled to ``size_px`` pixels
    (bilinear; GDAL reads from the best overview when the window is large). Returns an empty
    ``(0, 0, 3)`` array when the window lies outside the mosaic.
    """
    with rasterio.open(path) as ds:
        bands = _display_bands(ds)
        left, bottom, right, top = bounds_xy
        win = rasterio.windows.from_bounds(left, bottom, right, top, transform=ds.transform)
        win = win.intersection(Window(0, 0, ds.width, ds.height)) if _overlaps(win, ds) else None
        if win is None or win.width < 1 or win.height < 1:
            return np.zeros((0, 0, 3), np.uint8)
        scale = size_px / max(win.width, win.height)
        out = (len(bands), max(1, round(win.height * scale)), max(1, round(win.width * scale)))
        data = ds.read(list(bands), window=win, out_shape=out, resampling=Resampling.bilinear)
    return np.moveaxis(data, 0, -1)


def _overlaps(win: Window, ds) -> bool:
    return (win.col_off < ds.width and win.row_off < ds.height
            and win.col_off + win.width > 0 and win.row_off + win.height > 0)
