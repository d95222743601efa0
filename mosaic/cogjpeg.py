"""The JPEG COG written directly: tiles encoded by OpenCV's libjpeg-turbo as the blocks arrive, in threads.

GDAL's GTiff driver (as rasterio ships it) compresses with the IJG libjpeg, one tile at a time: on a 71 Mpx
Brighton cell that copy was 2.1 s of CPU after the rendering, alone on one core. Here each 512 px tile of
every level is encoded by ``cv2.imencode`` (libjpeg-turbo, SIMD, the GIL released) in a thread pool while
the rendering goes on, and the file is assembled at the end in GDAL's COG layout:

- a TIFF (BigTIFF past 4 GB) with the ``GDAL_STRUCTURAL_METADATA`` ghost area (``LAYOUT=IFDS_BEFORE_DATA``,
  ``BLOCK_ORDER=ROW_MAJOR``), then every IFD: the full resolution, its mask, each overview and its mask;
- then the tile data, the smallest overview first, each level's image tiles row by row, then its mask tiles;
- image IFDs: tiled, JPEG (each tile a complete JPEG stream, YCbCr 4:2:0, as GDAL's ``PHOTOMETRIC=YCBCR``),
  the GeoTIFF tags (EPSG code, pixel-is-area) and GDAL's metadata tag on the first; mask IFDs: 1 bit,
  DEFLATE, ``NewSubfileType`` 4 (5 for an overview's), as GDAL's internal masks; tiles no block reached are
  not stored (offset 0), as GDAL's ``SPARSE_OK``.

Overviews are 2 x 2 means under the mask (:func:`skysieve.mosaic.cog.halve`), level after level, one band
of tiles at a time; the level-0 tiles wait in a temporary file beside the target, so memory holds a band of
each level and the overviews' compressed tiles, not the raster.
"""

from __future__ import annotations

import contextlib
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO
from xml.sax.saxutils import escape, quoteattr

import numpy as np
from pyproj import CRS

from skysieve.cpus import usable_cpus

__all__ = ["geokeys", "JpegCogWriter"]

# TIFF field types
_SHORT, _LONG, _RATIONAL, _DOUBLE, _ASCII, _LONG8 = 3, 4, 5, 12, 2, 16
_SIZES = {_SHORT: 2, _LONG: 4, _RATIONAL: 8, _DOUBLE: 8, _ASCII: 1, _LONG8: 8}
_FORMATS = {_SHORT: "H", _LONG: "I", _DOUBLE: "d", _LONG8: "Q"}


def geokeys(crs: CRS) -> list[int] | None:
    """GeoKeyDirectory of ``crs`` by its EPSG code (pixel is area), or None when it has no EPSG code."""
    epsg = crs.to_epsg()
    if epsg is None:
        return None
    if crs.is_projected:
        keys = [(1024, 1), (1025, 1), (3072, epsg)]  # projected model, pixel is area, ProjectedCSTypeGeoKey
    elif crs.is_geographic:
        keys = [(1024, 2), (1025, 1), (2048, epsg)]  # geographic model, GeographicTypeGeoKey
    else:
        return None
    out = [1, 1, 0, len(keys)]
    for key, value in keys:
        out += [key, 0, 1, value]
    return out


@dataclass
class _Level:
    """One level of the pyramid: its size, the bands of tile rows being filled, its encoded tiles."""

    width: int
    height: int
    tile: int
    bands: dict = field(default_factory=dict)  # tile row -> (rgb, cov) of the bands open
    # per tile (row-major): future of (jpeg bytes, mask bytes), or None when nothing covers it
    tiles: list = field(default_factory=list)

    @property
    def across(self) -> int:
        return -(-self.width // self.tile)

    @property
    def down(self) -> int:
        return -(-self.height // self.tile)


class JpegCogWriter:
    """Feed blocks in row order (:meth:`put`: top rows never decreasing), then :meth:`finish` to the target.
    A block that is one whole level-0 tile is encoded at once; after one, blocks must come in tile order
    (never left of it in its tile row), as the renderer's windows do; :meth:`put` raises otherwise.

    ``factors``: the overview factors (2, 4, ...); the raster's size should be a multiple of the last,
    else the last row and column of an overview average fewer pixels than GDAL's reading of it assumes
    (a fraction of an overview pixel at the far edge).
    """

    def __init__(self, width: int, height: int, factors: list[int], tile: int, quality: int, scratch: Path,
                 threads: int | None = None, subsample: bool = True):
        self.tile, self.quality, self.subsample = tile, quality, subsample  # chroma 4:2:0, or 4:4:4
        self.levels = [_Level(width, height, tile)]
        for f in factors:
            self.levels.append(_Level(-(-width // f), -(-height // f), tile))
        self.pool = ThreadPoolExecutor(threads or min(4, usable_cpus()))
        self.scratch = scratch
        self.data: BinaryIO = open(scratch / "level0.tiles", "wb")  # noqa: SIM115 (closed in finish/close)
        self.level0: list[int | None] = []  # per level-0 tile: its size in the scratch file (in order)
        self.masks0: list[bytes | None] = []
        self.top = [0] * len(self.levels)  # the last block's top row, per level

    def put(self, row: int, col: int, rgb: np.ndarray, cov: np.ndarray, level: int = 0) -> None:
        """A block of ``level`` at (row, col) of it; its top row may not be above the previous block's."""
        lv = self.levels[level]
        t = self.tile
        if row < self.top[level]:
            raise ValueError(f"blocks out of row order: row {row} after row {self.top[level]}")
        self.top[level] = row
        for b in sorted(b for b in lv.bands if b < row // t):  # no later block reaches these
            self._close(level, b)
        h = cov.shape[0]
        if level == 0 and len(lv.tiles) > (row // t) * lv.across + col // t:
            # tiles put whole are encoded as they come (below): what follows them must not reach back
            raise ValueError(f"block at row {row}, col {col} reaches a tile already written: after a whole "
                             "tile, blocks must come in tile order (left to right within a tile row)")
        if (level == 0 and not lv.bands and row % t == 0 and col % t == 0 and h == min(t, lv.height - row)
                and cov.shape[1] == min(t, lv.width - col)):
            self._tile(row // t, col // t, rgb, cov)  # a whole tile (the renderer's windows are): no band
            return
        for b in range(row // t, (row + h - 1) // t + 1):
            if b not in lv.bands:
                rows = min(t, lv.height - b * t)
                lv.bands[b] = (np.zeros((rows, lv.width, 3), np.uint8), np.zeros((rows, lv.width), bool))
            band_rgb, band_cov = lv.bands[b]
            r0, r1 = max(row, b * t), min(row + h, (b + 1) * t)
            band_rgb[r0 - b * t:r1 - b * t, col:col + cov.shape[1]] = rgb[r0 - row:r1 - row]
            band_cov[r0 - b * t:r1 - b * t, col:col + cov.shape[1]] = cov[r0 - row:r1 - row]

    def _tile(self, b: int, c: int, rgb: np.ndarray, cov: np.ndarray) -> None:
        """Level 0's tile (b, c), whole: encoded and halved as :meth:`_close` does a band's, without
        copying it into a band first (a band of level 0 is 512 rows by the raster's width, in fresh memory)."""
        from skysieve.mosaic.cog import halve

        lv = self.levels[0]
        lv.tiles += [None] * (b * lv.across + c - len(lv.tiles))  # tiles nothing reached
        reached = bool(cov.any())
        lv.tiles.append(self.pool.submit(self._encode, rgb, cov) if reached else None)
        self._drain()
        if reached and len(self.levels) > 1:
            h_rgb, h_cov = halve(rgb, cov)
            half = self.tile // 2
            self.put(b * half, c * half, h_rgb, h_cov, 1)

    def _close(self, level: int, b: int) -> None:
        """Encode band ``b`` of ``level`` and hand it, halved, to the next level."""
        from skysieve.mosaic.cog import halve

        lv = self.levels[level]
        rgb, cov = lv.bands.pop(b)
        lv.tiles += [None] * (b * lv.across - len(lv.tiles))  # bands nothing reached
        cols = cov.any(axis=0)  # one pass over the band (a tile's columns are a strided view of it)
        reached = [bool(cols[c * self.tile:(c + 1) * self.tile].any()) for c in range(lv.across)]
        for c in range(len(lv.tiles) - b * lv.across, lv.across):  # (level 0: after the tiles put whole)
            sl = slice(c * self.tile, (c + 1) * self.tile)
            lv.tiles.append(self.pool.submit(self._encode, rgb[:, sl], cov[:, sl]) if reached[c] else None)
        if level == 0:
            self._drain()
        if level + 1 < len(self.levels):  # halved a tile at a time: whole tiles take halve's fast path
            half = self.tile // 2
            for c in range(lv.across):
                sl = slice(c * self.tile, (c + 1) * self.tile)
                if reached[c]:
                    h_rgb, h_cov = halve(rgb[:, sl], cov[:, sl])
                    self.put(b * half, c * half, h_rgb, h_cov, level + 1)

    def _encode(self, rgb: np.ndarray, cov: np.ndarray) -> tuple[bytes, bytes]:
        import cv2

        t = self.tile
        img = np.zeros((t, t, 3), np.uint8)
        img[:rgb.shape[0], :rgb.shape[1]] = rgb[..., ::-1]  # RGB -> BGR for OpenCV
        sampling = cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420 if self.subsample else cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444
        ok, jpeg = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, self.quality,
                                              cv2.IMWRITE_JPEG_SAMPLING_FACTOR, sampling])
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        m = np.zeros((t, t), bool)
        m[:cov.shape[0], :cov.shape[1]] = cov
        return jpeg.tobytes(), zlib.compress(np.packbits(m, axis=1).tobytes(), 6)

    def _drain(self, wait: bool = False) -> None:
        """Append finished level-0 tiles to the scratch file, in order (all of them when ``wait``)."""
        lv = self.levels[0]
        while len(self.level0) < len(lv.tiles):
            k = len(self.level0)
            fut = lv.tiles[k]
            if fut is not None and not wait and not fut.done() and len(lv.tiles) - k <= 4 * lv.across:
                break  # a few bands of tiles may stay in flight
            if fut is None:
                self.level0.append(None)
                self.masks0.append(None)
                continue
            jpeg, mask = fut.result()
            self.data.write(jpeg)
            self.level0.append(len(jpeg))
            self.masks0.append(mask)
            lv.tiles[k] = None  # written: drop the bytes

    def finish(self, target: Path, transform, crs_keys: list[int], tags: dict[str, str] | None,
               bigtiff: bool | None = None) -> None:
        """Close the last bands, wait for the encoders and write the COG to ``target`` (``bigtiff``: None
        for BigTIFF only past 3.5 GB of tiles)."""
        for level, lv in enumerate(self.levels):
            for b in sorted(lv.bands):
                self._close(level, b)
        for lv in self.levels:
            lv.tiles += [None] * (lv.down * lv.across - len(lv.tiles))
        self._drain(wait=True)
        self.data.close()
        # per level and tile: (image bytes, or its size for level 0's in the scratch file; mask bytes) or None
        blobs = [[(n, m) if n else None for n, m in zip(self.level0, self.masks0, strict=True)]]
        for lv in self.levels[1:]:
            blobs.append([f.result() if f is not None else None for f in lv.tiles])
        self.pool.shutdown()
        gdal_md = None
        if tags:
            # GDAL escapes the values twice (CPLEscapeString, then the XML writer) and unescapes them twice
            items = "".join(f"<Item name={quoteattr(k)}>{escape(escape(str(v)))}</Item>" for k, v in tags.items())
            gdal_md = f"<GDALMetadata>{items}</GDALMetadata>"
        _write_tiff(target, self.levels, blobs, self.tile, self.scratch / "level0.tiles", transform, crs_keys, gdal_md,
                    bigtiff, 2 if self.subsample else 1)

    def close(self) -> None:
        self.pool.shutdown(cancel_futures=True)
        with contextlib.suppress(Exception):
            self.data.close()


def _write_tiff(target: Path, levels: list[_Level], blobs: list[list], tile: int, level0_file: Path, transform,
                crs_keys: list[int], gdal_md: str | None, big: bool | None = None, subsampling: int = 2) -> None:
    """Assemble the COG: header, ghost area, IFDs (image and mask of each level), then the tile data."""
    def size_of(b):
        return 0 if b is None else (b[0] if isinstance(b[0], int) else len(b[0]))

    data_bytes = sum(size_of(b) + (len(b[1]) if b else 0) for lvl in blobs for b in lvl)
    big = data_bytes > 3_500_000_000 if big is None else big
    ghost_text = ("LAYOUT=IFDS_BEFORE_DATA\nBLOCK_ORDER=ROW_MAJOR\nBLOCK_LEADER=SIZE_AS_UINT4\n"
                  "BLOCK_TRAILER=LAST_4_BYTES_REPEATED\nKNOWN_INCOMPATIBLE_EDITION=NO\n "  # GDAL's, space and all
                  "MASK_INTERLEAVED_WITH_IMAGERY=YES\n")
    ghost = f"GDAL_STRUCTURAL_METADATA_SIZE={len(ghost_text):06d} bytes\n{ghost_text}".encode()
    off_type = _LONG8 if big else _LONG

    def image_tags(k: int, lv: _Level) -> list:
        n = lv.across * lv.down
        tags = [(254, _LONG, [1 if k else 0]), (256, _LONG, [lv.width]), (257, _LONG, [lv.height]),
                (258, _SHORT, [8, 8, 8]), (259, _SHORT, [7]), (262, _SHORT, [6]), (277, _SHORT, [3]),
                (284, _SHORT, [1]), (322, _LONG, [tile]), (323, _LONG, [tile]), (324, off_type, [0] * n),
                (325, off_type, [0] * n), (339, _SHORT, [1, 1, 1]), (530, _SHORT, [subsampling, subsampling]),
                (532, _RATIONAL, [(0, 1), (255, 1), (128, 1), (255, 1), (128, 1), (255, 1)])]
        if k == 0:
            g = transform
            tags += [(33550, _DOUBLE, [g.a, -g.e, 0.0]), (33922, _DOUBLE, [0.0, 0.0, 0.0, g.c, g.f, 0.0]),
                     (34735, _SHORT, crs_keys)]
            if gdal_md:
                tags.append((42112, _ASCII, gdal_md))
        return tags

    def mask_tags(k: int, lv: _Level) -> list:
        n = lv.across * lv.down
        return [(254, _LONG, [5 if k else 4]), (256, _LONG, [lv.width]), (257, _LONG, [lv.height]),
                (258, _SHORT, [1]), (259, _SHORT, [8]), (262, _SHORT, [4]), (277, _SHORT, [1]), (284, _SHORT, [1]),
                (322, _LONG, [tile]), (323, _LONG, [tile]), (324, off_type, [0] * n), (325, off_type, [0] * n),
                (339, _SHORT, [1])]

    ifds = []
    for k, lv in enumerate(levels):
        ifds += [image_tags(k, lv), mask_tags(k, lv)]
    header = 16 if big else 8
    entry, count_size, next_size = (20, 8, 8) if big else (12, 2, 4)
    inline = 8 if big else 4

    def value_bytes(typ, values) -> bytes:
        if typ == _ASCII:
            return values.encode("ascii", "replace") + b"\0"
        if typ == _RATIONAL:
            return b"".join(struct.pack("<II", a, b) for a, b in values)
        return struct.pack(f"<{len(values)}{_FORMATS[typ]}", *values)

    def ifd_size(tags) -> int:
        extra = 0
        for typ_tag in tags:
            n = len(value_bytes(typ_tag[1], typ_tag[2]))
            if n > inline:
                extra += n + (n & 1)
        return count_size + entry * len(tags) + next_size + extra

    pos = header + len(ghost)
    ifd_pos = []
    for tags in ifds:
        ifd_pos.append(pos)
        pos += ifd_size(tags)
        pos += pos & 1
    # tile data: smallest overview first, row by row, each tile's mask after it; each tile led by its size
    # (uint32) and trailed by its last 4 bytes again, as GDAL's COG layout
    for k in reversed(range(len(levels))):
        img_off, img_len, msk_off, msk_len = ifds[2 * k][10][2], ifds[2 * k][11][2], ifds[2 * k + 1][10][2], ifds[2 * k + 1][11][2]
        for t, b in enumerate(blobs[k]):
            if b is not None:
                img_off[t], img_len[t] = pos + 4, size_of(b)
                pos += img_len[t] + 8
                msk_off[t], msk_len[t] = pos + 4, len(b[1])
                pos += msk_len[t] + 8

    with open(target, "wb") as f:
        f.write(struct.pack("<2sHHHQ", b"II", 43, 8, 0, ifd_pos[0]) if big else struct.pack("<2sHI", b"II", 42, ifd_pos[0]))
        f.write(ghost)
        for i, tags in enumerate(ifds):
            assert f.tell() == ifd_pos[i]
            nxt = ifd_pos[i + 1] if i + 1 < len(ifds) else 0
            out_of_line = ifd_pos[i] + count_size + entry * len(tags) + next_size
            head = struct.pack("<Q", len(tags)) if big else struct.pack("<H", len(tags))
            body, extra = b"", b""
            for tag, typ, values in tags:
                raw = value_bytes(typ, values)
                count = len(raw) // _SIZES[typ]
                if len(raw) <= inline:
                    field_ = raw.ljust(inline, b"\0")
                else:
                    field_ = struct.pack("<Q" if big else "<I", out_of_line + len(extra))
                    extra += raw + (b"\0" if len(raw) & 1 else b"")
                body += struct.pack("<HHQ" if big else "<HHI", tag, typ, count) + field_
            f.write(head + body + struct.pack("<Q" if big else "<I", nxt) + extra)
            if f.tell() & 1:
                f.write(b"\0")
        with open(level0_file, "rb") as level0:  # the level-0 tiles, in order
            for k in reversed(range(len(levels))):
                for b in blobs[k]:
                    if b is None:
                        continue
                    image = level0.read(b[0]) if k == 0 else b[0]
                    for blob in (image, b[1]):
                        f.write(struct.pack("<I", len(blob)) + blob + blob[-4:])
        assert f.tell() == pos
