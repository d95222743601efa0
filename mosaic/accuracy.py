"""How well a mosaic sits on an independent reference (a true ortho, a rasterised point cloud).

Both rasters are put on one north-up grid; a grid of patches is compared by phase correlation; patches
with a clear correlation peak give one offset each. The mean offset (metres) says where the mosaic sits;
the offsets' spread about that mean (90th percentile, pixels) says how well it holds together locally.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from skysieve.mosaic.render import OutputGrid

__all__ = ["Misfit", "compare_rasters", "read_on_grid", "rasterise_points", "similarity"]


@dataclass(frozen=True)
class Misfit:
    """Offsets of the mosaic against the reference. ``dx``/``dy``: east/north, metres (mosaic - reference)."""

    mean_dx_m: float
    mean_dy_m: float
    local_p90_px: float  # 90th percentile of |offset - mean|, pixels of the compared grid
    local_p90_m: float
    n_patches: int
    n_tried: int
    offsets_m: np.ndarray  # n x 2 (dx east, dy north) per accepted patch
    centres_px: np.ndarray  # n x 2 (col, row) of each accepted patch's centre on the compared grid
    gsd_m: float = float("nan")  # pixel size of the compared grid (metres)

    @property
    def local_p90_px_after_similarity(self) -> float:
        """90th percentile (pixels) of the offsets left after removing the best similarity (shift, rotation,
        scale) of the whole mosaic: its local misfit apart from how the block as a whole is turned and
        scaled, which GPS alone fixes only to about sigma / (sqrt(n) * extent)."""
        if len(self.offsets_m) < 3:
            return float("nan")
        o = self.offsets_m / self.gsd_m
        c = self.centres_px - self.centres_px.mean(0)
        x, y = c[:, 0], -c[:, 1]  # east, north
        one, zero = np.ones(len(c)), np.zeros(len(c))
        a = np.vstack([np.column_stack([x, -y, one, zero]), np.column_stack([y, x, zero, one])])
        b = np.concatenate([o[:, 0], o[:, 1]])
        coef, *_ = np.linalg.lstsq(a, b, rcond=None)
        r = (b - a @ coef).reshape(2, -1).T
        return float(np.percentile(np.linalg.norm(r, axis=1), 90))

    @property
    def mean_offset_m(self) -> float:
        return float(np.hypot(self.mean_dx_m, self.mean_dy_m))

    def as_dict(self) -> dict[str, float]:
        return {"mean_offset_m": round(self.mean_offset_m, 3), "mean_dx_m": round(self.mean_dx_m, 3),
                "mean_dy_m": round(self.mean_dy_m, 3), "local_p90_px": round(self.local_p90_px, 3),
                "local_p90_m": round(self.local_p90_m, 3),
                "local_p90_px_after_similarity": round(self.local_p90_px_after_similarity, 3),
                "patches": self.n_patches, "patches_tried": self.n_tried}


def similarity(a: np.ndarray, b: np.ndarray) -> complex:
    """The rotation and scale, as one complex factor ``z``, of the least-squares similarity that maps points
    ``a`` onto points ``b`` (n x 2, x/y) once both are centred: ``b - mean(b) = z (a - mean(a))``. ``|z| - 1``
    is the scale difference, ``arg z`` the rotation (counter-clockwise, for x east and y north)."""
    za = (a[:, 0] - a[:, 0].mean()) + 1j * (a[:, 1] - a[:, 1].mean())
    zb = (b[:, 0] - b[:, 0].mean()) + 1j * (b[:, 1] - b[:, 1].mean())
    return complex((np.conj(za) @ zb) / (np.conj(za) @ za))


def compare_rasters(mosaic: np.ndarray, reference: np.ndarray, valid: np.ndarray, gsd_m: float,
                    patch_px: int = 96, min_response: float = 0.15, max_shift_px: float | None = None) -> Misfit:
    """Phase-correlate (rows, cols[, 3]) rasters on one grid over patches fully inside ``valid``."""
    import cv2

    def grey(a: np.ndarray) -> np.ndarray:
        a = a.astype(np.float32)
        return a.mean(axis=2) if a.ndim == 3 else a

    ga, gb = grey(mosaic), grey(reference)
    win = cv2.createHanningWindow((patch_px, patch_px), cv2.CV_32F)
    max_shift = max_shift_px if max_shift_px is not None else patch_px / 4
    offs, centres, tried = [], [], 0
    h, w = ga.shape
    for r in range(0, h - patch_px + 1, patch_px):
        for c in range(0, w - patch_px + 1, patch_px):
            if not valid[r:r + patch_px, c:c + patch_px].all():
                continue
            pa, pb = ga[r:r + patch_px, c:c + patch_px], gb[r:r + patch_px, c:c + patch_px]
            if pa.std() < 2 or pb.std() < 2:
                continue
            tried += 1
            (sx, sy), resp = cv2.phaseCorrelate(pb - pb.mean(), pa - pa.mean(), win)
            if resp >= min_response and abs(sx) <= max_shift and abs(sy) <= max_shift:
                offs.append((sx, sy))
                centres.append((c + patch_px / 2, r + patch_px / 2))
    if not offs:
        return Misfit(float("nan"), float("nan"), float("nan"), float("nan"), 0, tried, np.zeros((0, 2)),
                      np.zeros((0, 2)), gsd_m)
    o = np.array(offs)  # pixels: +x = mosaic content lies to the east (right), +y = to the south (down)
    mean = o.mean(0)
    local = np.linalg.norm(o - mean, axis=1)
    p90 = float(np.percentile(local, 90))
    off_m = np.column_stack([o[:, 0] * gsd_m, -o[:, 1] * gsd_m])
    return Misfit(float(mean[0] * gsd_m), float(-mean[1] * gsd_m), p90, p90 * gsd_m, len(o), tried, off_m,
                  np.array(centres, dtype=float), gsd_m)


def read_on_grid(path: str, grid: OutputGrid) -> tuple[np.ndarray, np.ndarray]:
    """An RGB raster (any CRS) resampled onto ``grid``: (rows, cols, 3) uint8 and valid (rows, cols) bool."""
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT

    with rasterio.open(path) as src, WarpedVRT(src, crs=src.crs, transform=grid.transform, width=grid.width,
                                               height=grid.height, resampling=Resampling.bilinear) as vrt:
        rgb = np.moveaxis(vrt.read([1, 2, 3]), 0, -1)
        valid = vrt.read_masks(1) > 0
    return rgb, valid


def rasterise_points(xyz: np.ndarray, rgb: np.ndarray, grid: OutputGrid, fill_px: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Top-down colour raster of a point cloud: per pixel the colour of its highest point.

    ``xyz``: N x 3 (workspace CRS, metres); ``rgb``: N x 3 uint8. Empty pixels closer than ``fill_px`` to
    filled ones are filled from their neighbours (the cloud is sparser than the grid in places).
    """
    import cv2

    col = np.floor((xyz[:, 0] - grid.x_min) / grid.gsd_m).astype(np.int64)
    row = np.floor((grid.y_max - xyz[:, 1]) / grid.gsd_m).astype(np.int64)
    ok = (col >= 0) & (col < grid.width) & (row >= 0) & (row < grid.height)
    col, row, z, colour = col[ok], row[ok], xyz[ok, 2], rgb[ok]
    order = np.argsort(z)  # later (higher) points overwrite lower ones
    out = np.zeros((grid.height, grid.width, 3), np.uint8)
    out[row[order], col[order]] = colour[order]
    filled = np.zeros((grid.height, grid.width), np.uint8)
    filled[row, col] = 255
    if fill_px > 0:
        holes = (filled == 0).astype(np.uint8)
        near = cv2.dilate(filled, np.ones((2 * fill_px + 1, 2 * fill_px + 1), np.uint8)) > 0
        out = cv2.inpaint(out, holes * near.astype(np.uint8), fill_px, cv2.INPAINT_TELEA)
        valid = near
    else:
        valid = filled > 0
    return out, valid
