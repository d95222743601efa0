"""Slice reads of ``detect_raster``: whole source pixels resampled in numpy/OpenCV
(:func:`skysieve.detect.sliced.resample_window`) against GDAL's resampled read of the fractional window
(what sliced.py did before), on the same slices of the same rasters, alternated slice by slice.

Run: ``python benchmarks/detect_read_bench.py RASTER [RASTER ...] [--gsd 0.04] [--size 416] [--every 1]``

Per raster: milliseconds per slice of each reader (mask and RGB, from the overview GDAL picks when
downsampling, and for skysieve the no-data fill),
and how far apart their outputs are: output pixels whose valid mask differs, mean and 99th percentile
absolute RGB difference on the pixels both call valid, and the shift between the two slices (phase
correlation, in model pixels).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time

import numpy as np

os.environ.setdefault("SKYSIEVE_PROGRESS", "0")


def gdal_read_slice(src, sl, k: float) -> tuple[np.ndarray, np.ndarray]:
    """The previous reader: GDAL resamples the fractional window (mask: nearest; RGB: bilinear, or average
    above 1.2 source pixels per model pixel). Returns the (out_h, out_w) part: RGB and valid mask."""
    from rasterio.enums import Resampling
    from rasterio.windows import Window

    from skysieve.detect.sliced import slice_window

    w = slice_window(sl, k, src.width, src.height)
    win = Window(w.c0, w.r0, w.out_w * w.sx, w.out_h * w.sy)
    mask = src.dataset_mask(window=win, out_shape=(w.out_h, w.out_w)) > 0
    resampling = Resampling.average if k > 1.2 else Resampling.bilinear
    bands = [1, 2, 3] if src.count >= 3 else [1, 1, 1]
    rgb = src.read(bands, window=win, out_shape=(3, w.out_h, w.out_w), resampling=resampling)
    return rgb.transpose(1, 2, 0), mask


def new_read_slice(src, sl, k: float, level=None) -> tuple[np.ndarray, np.ndarray]:
    """skysieve's reader on whole pixels, as ``detect_raster`` runs it (no-data filled; ``level``: the
    dataset and its ``kx, ky`` from :func:`skysieve.detect.sliced.slice_source`), cut to the (out_h, out_w)
    part."""
    from skysieve.detect.sliced import _read_slice, slice_window

    w = slice_window(sl, k, src.width, src.height)
    ds, kx, ky = level or (src, k, k)
    rgb, mask, _ = _read_slice(ds, sl, kx, 0.0, ky, area=k > 1.2)
    return rgb[:w.out_h, :w.out_w], mask[:w.out_h, :w.out_w]


def _shift(a: np.ndarray, b: np.ndarray) -> float:
    import cv2

    ga, gb = (np.float32(x.mean(2)) for x in (a, b))
    if min(ga.shape) < 32 or ga.std() < 2:
        return float("nan")
    (dx, dy), _ = cv2.phaseCorrelate(ga, gb)
    return float(np.hypot(dx, dy))


def bench(path: str, gsd: float, size: int, every: int) -> dict:
    import rasterio

    from skysieve.detect.sliced import model_grid, slice_source
    from skysieve.detect.slicing import plan_slices

    with contextlib.ExitStack() as ctx, rasterio.Env(GDAL_CACHEMAX=256), rasterio.open(path) as src:
        k, gw, gh = model_grid(src.transform, src.width, src.height, gsd)
        level = ctx.enter_context(slice_source(path, src, k))
        slices = plan_slices(gw, gh, size, round(0.25 * size))[::every]
        t = {"gdal": [], "new": []}
        mask_diff = n_px = 0
        diffs, shifts = [], []
        for i, sl in enumerate(slices):
            order = [("gdal", gdal_read_slice), ("new", lambda *a: new_read_slice(*a, level=level))]
            if i % 2:
                order.reverse()
            out = {}
            for name, fn in order:
                a = time.perf_counter()
                out[name] = fn(src, sl, k)
                t[name].append(time.perf_counter() - a)
            (rg, mg), (rn, mn) = out["gdal"], out["new"]
            mask_diff += int((mg != mn).sum())
            n_px += mg.size
            both = mg & mn
            if both.any():
                diffs.append(np.abs(rg.astype(np.int16) - rn.astype(np.int16))[both].ravel())
            if both.all():
                shifts.append(_shift(rg, rn))
    d = np.concatenate(diffs) if diffs else np.zeros(1)
    shifts = [s for s in shifts if s == s]
    return {"raster": path, "k": round(k, 4), "level_px": level[0].width, "slices": len(slices),
            "gdal_ms": round(1000 * float(np.mean(t["gdal"])), 2), "new_ms": round(1000 * float(np.mean(t["new"])), 2),
            "speedup": round(float(np.mean(t["gdal"]) / np.mean(t["new"])), 1),
            "mask_px_differing": mask_diff, "mask_px": n_px,
            "rgb_absdiff_mean": round(float(d.mean()), 3), "rgb_absdiff_p99": float(np.percentile(d, 99)),
            "rgb_absdiff_max": int(d.max()),
            "shift_px_median": round(float(np.median(shifts)), 4) if shifts else None,
            "shift_px_max": round(float(np.max(shifts)), 4) if shifts else None}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("rasters", nargs="+")
    ap.add_argument("--gsd", type=float, default=0.04, help="model GSD (m/px)")
    ap.add_argument("--size", type=int, default=416, help="slice side (model pixels)")
    ap.add_argument("--every", type=int, default=1, help="every n-th slice only")
    args = ap.parse_args(argv)
    for r in args.rasters:
        print(json.dumps(bench(r, args.gsd, args.size, args.every)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
