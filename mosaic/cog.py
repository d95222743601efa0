"""Cloud-Optimized GeoTIFF writing, block by block, atomically.

Blocks are written into a tiled, sparse, uncompressed scratch GeoTIFF (RGB plus an internal mask band;
raw, because reading it back is what the copy spends time on), its overviews are built in place (raw,
averaged under the mask), and GDAL's GTiff driver copies the lot with ``COPY_SRC_OVERVIEWS`` into the
cloud-optimized layout (overviews first, tiles, JPEG in YCbCr or DEFLATE/ZSTD, the mask kept) under a
temporary name; only a finished file is renamed to ``ortho.tif``. That is the COG driver's output,
2.5x faster: the COG driver regenerates the overviews itself (compressed, then decoded again) and
averages them through the alpha band, measured 11 s against 4.5 s on a 72 Mpx Brighton cell.
A run killed at any point leaves the previous ortho (or none), never half of one. GDAL's block cache
is capped (``cache_mb``) so memory does not grow with the raster.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pyproj import CRS

from skysieve.atomic import atomic_path
from skysieve.mosaic.render import OutputGrid, PixelWindow

__all__ = ["CogSettings", "write_cog", "overview_factors"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CogSettings:
    """Layout of the written COG."""

    compress: str = "JPEG"  # JPEG (YCbCr), DEFLATE or ZSTD; no-data is a mask band either way
    quality: int = 90  # JPEG quality
    blocksize: int = 512
    cache_mb: int = 256  # GDAL block cache while writing


def _env(settings: CogSettings):
    import rasterio

    return rasterio.Env(GDAL_CACHEMAX=settings.cache_mb, GDAL_TIFF_INTERNAL_MASK=True, GDAL_NUM_THREADS="ALL_CPUS",
                        COMPRESS_OVERVIEW="NONE", SPARSE_OK_OVERVIEW=True)


def overview_factors(width: int, height: int, blocksize: int) -> list[int]:
    """Decimation factors (2, 4, ...) until the smallest overview fits in one tile (as GDAL's COG driver)."""
    factors, f = [], 2
    while max(width, height) / (f // 2) > blocksize:
        factors.append(f)
        f *= 2
    return factors


@contextlib.contextmanager
def _scratch(target: Path):
    """A temporary file beside ``target`` (``.<name>.scratch.*.tif``), always removed afterwards."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.stem}.scratch.", suffix=".tif", dir=target.parent)
    os.close(fd)
    try:
        yield Path(name)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)


def write_cog(target: str | Path, grid: OutputGrid, crs: CRS, blocks: Iterable[tuple[PixelWindow, np.ndarray, np.ndarray]],
              settings: CogSettings | None = None, tags: dict[str, str] | None = None) -> int:
    """Write RGB blocks (window, (rows, cols, 3) uint8, coverage bool) as a COG at ``target``.

    Parts of the grid no block covers are no-data (0 in the internal mask band; there is no alpha band).
    Returns the count of covered pixels.
    """
    import rasterio
    import rasterio.shutil
    from rasterio.enums import Resampling
    from rasterio.windows import Window

    settings = settings or CogSettings()
    target = Path(target)
    covered = 0
    with _env(settings), _scratch(target) as scratch:
        profile = dict(driver="GTiff", width=grid.width, height=grid.height, count=3, dtype="uint8",
                       crs=crs, transform=grid.transform, tiled=True, blockxsize=settings.blocksize,
                       blockysize=settings.blocksize, bigtiff="IF_SAFER", photometric="RGB", sparse_ok=True)
        with rasterio.open(scratch, "w", **profile) as dst:
            for win, rgb, cov in blocks:
                w = Window(win.col_off, win.row_off, win.width, win.height)
                dst.write(np.moveaxis(rgb, -1, 0), window=w)
                dst.write_mask((cov * 255).astype(np.uint8), window=w)
                covered += int(cov.sum())
            if tags:
                dst.update_tags(**tags)
        factors = overview_factors(grid.width, grid.height, settings.blocksize)
        if factors:
            with rasterio.open(scratch, "r+") as dst:
                dst.build_overviews(factors, Resampling.average)
        opts = dict(driver="GTiff", tiled=True, blockxsize=settings.blocksize, blockysize=settings.blocksize,
                    copy_src_overviews=True, bigtiff="IF_SAFER", num_threads="ALL_CPUS")
        if settings.compress.upper() == "JPEG":
            opts.update(compress="JPEG", photometric="YCBCR", jpeg_quality=settings.quality)
        else:
            opts.update(compress=settings.compress.upper(), predictor="2")
        with atomic_path(target) as tmp:
            rasterio.shutil.copy(scratch, tmp, **opts)
            with contextlib.suppress(OSError):
                os.chmod(tmp, 0o644)
    log.debug("wrote %s (%d x %d px, %d covered)", target, grid.width, grid.height, covered)
    return covered
