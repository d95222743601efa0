"""Benchmark of skysieve's sliced inference against SAHI's ``get_sliced_prediction``, and peak memory.

Run: ``python benchmarks/detect_bench.py [--model NAME_OR_PATH] [--skip-memory]``

1. Speed and recall, one run, same mosaic, same weights, same slice size and overlap: a synthetic world
   (ground truth known) at the model's GSD, cropped around its objects. SAHI gets the mosaic already in
   memory and runs the ``.pt`` through Ultralytics (its documented path, ``perform_standard_pred=False``
   so it does the same slices only); skysieve reads the GeoTIFF by windows and runs the fastest runtime
   it finds. Printed: seconds of each, the ratio skysieve / SAHI (target <= 0.5), recall at IoU 0.5; and
   the same for skysieve as ``skysieve detect`` runs it (per-class thresholds, the second look at tanks
   and chimneys, piles grouped), work SAHI does not do.
2. Peak memory of ``detect_raster`` on a 20,000 x 20,000 px mosaic (2 cm/px, written window by window:
   a band of textured ground across a no-data background), measured in a child process (ru_maxrss),
   as ``skysieve detect`` runs it; target < 1.5 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("SKYSIEVE_PROGRESS", "0")


def _world_crop(model_gsd: float, work: Path, seed: int, size_m: float) -> tuple[Path, np.ndarray, np.ndarray]:
    """A world at the model's GSD, cropped to its objects (+15 m); returns the crop, true boxes (x/y) and classes."""
    import pyogrio
    import rasterio
    import shapely
    from rasterio.windows import Window, from_bounds

    from skysieve.datasets.world import make_world
    from skysieve.models import CLASSES

    wdir = work / f"world-{seed}-{size_m:g}-{model_gsd:g}"
    if not (wdir / "ortho.tif").exists():
        make_world(wdir, seed=seed, size_m=size_m, gsd_m=model_gsd)
    meta, _, geoms, fields = pyogrio.raw.read(wdir / "truth" / "objects.geojson")
    cls = dict(zip(meta["fields"], fields, strict=True))["class"]
    polys = [shapely.from_wkb(g) for g in geoms]
    keep = [i for i, c in enumerate(cls) if c in CLASSES]
    boxes = np.array([polys[i].bounds for i in keep]).reshape(-1, 4)
    ids = np.array([CLASSES.index(cls[i]) for i in keep])
    if not len(boxes):
        raise SystemExit(f"world {seed} has no objects; pick another --seed")
    x0, y0 = boxes[:, :2].min(0) - 15
    x1, y1 = boxes[:, 2:].max(0) + 15
    crop = wdir / "crop.tif"
    with rasterio.open(wdir / "ortho.tif") as src:
        win = from_bounds(x0, y0, x1, y1, src.transform).round_offsets().round_lengths()
        win = win.intersection(Window(0, 0, src.width, src.height))
        profile = {**src.profile, "width": win.width, "height": win.height, "transform": src.window_transform(win)}
        with rasterio.open(crop, "w", **profile) as dst:
            dst.write(src.read(window=win))
    return crop, boxes, ids


def _recall(pred_boxes: np.ndarray, pred_cls: np.ndarray, pred_score: np.ndarray, boxes: np.ndarray,
            ids: np.ndarray) -> float:
    from skysieve.detect.evaluate import match_boxes

    tp, matched = match_boxes(pred_boxes, pred_cls, pred_score, boxes, ids)
    return float(len(set(matched[matched >= 0].tolist())) / max(1, len(boxes)))


def speed(model: str | None, work: Path, seed: int, size_m: float, conf: float) -> dict:
    import rasterio

    from skysieve.detect.runtime import load_detector
    from skysieve.detect.sliced import SliceSettings, detect_raster
    from skysieve.detect.thresholds import class_thresholds

    det = load_detector(model)
    conf = conf if conf is not None else float(det.meta.extra.get("conf", 0.25))
    crop, boxes, ids = _world_crop(det.meta.gsd_m, work, seed, size_m)
    settings = SliceSettings(conf=conf, overlap=0.25)
    detect_raster(crop, det, settings)  # warm-up: compile the runtime for this batch shape
    t = time.perf_counter()
    ours = detect_raster(crop, det, settings)
    t_ours = time.perf_counter() - t
    ours_boxes = np.array([p.bounds for p in ours.polygons]).reshape(-1, 4)
    r_ours = _recall(ours_boxes, ours.cls, ours.score, boxes, ids)
    # what `skysieve detect` runs: the same pass at the lowest class threshold, then cut per class, a second
    # look at each tank and chimney (skysieve.detect.refine), piles grouped; SAHI has no such step
    thr = tuple(float(v) for v in class_thresholds(det.meta))
    flags_settings = SliceSettings(conf=min(thr), class_conf=thr, overlap=0.25)
    detect_raster(crop, det, flags_settings)
    t = time.perf_counter()
    flags = detect_raster(crop, det, flags_settings)
    t_flags = time.perf_counter() - t
    r_flags = _recall(np.array([p.bounds for p in flags.polygons]).reshape(-1, 4), flags.cls, flags.score, boxes, ids)

    from sahi import AutoDetectionModel
    from sahi.predict import get_sliced_prediction

    with rasterio.open(crop) as src:
        rgb = np.moveaxis(src.read([1, 2, 3]), 0, 2).copy()
        transform = src.transform
    size = det.meta.imgsz
    sahi_model = AutoDetectionModel.from_pretrained(model_type="ultralytics", model_path=str(det.ref.pt),
                                                    confidence_threshold=conf, device="cpu", image_size=size)
    kw = dict(slice_height=size, slice_width=size, overlap_height_ratio=0.25, overlap_width_ratio=0.25,
              perform_standard_pred=False, verbose=0)
    get_sliced_prediction(rgb[:size, :size], sahi_model, **kw)  # warm-up
    t = time.perf_counter()
    res = get_sliced_prediction(rgb, sahi_model, **kw)
    t_sahi = time.perf_counter() - t
    px = np.array([p.bbox.to_xyxy() for p in res.object_prediction_list]).reshape(-1, 4)
    xs, ys = transform * (px[:, [0, 2]].T, px[:, [1, 3]].T)
    sahi_boxes = np.column_stack([np.minimum(*xs), np.minimum(*ys), np.maximum(*xs), np.maximum(*ys)])
    sahi_cls = np.array([p.category.id for p in res.object_prediction_list], int)
    sahi_score = np.array([p.score.value for p in res.object_prediction_list])
    r_sahi = _recall(sahi_boxes, sahi_cls, sahi_score, boxes, ids)
    return {"mosaic_px": list(rgb.shape[:2]), "objects": int(len(boxes)), "slices": ours.slices,
            "slice_px": size, "overlap": 0.25, "skysieve_runtime": det.backend_name,
            "skysieve_s": round(t_ours, 2), "sahi_s": round(t_sahi, 2), "ratio": round(t_ours / t_sahi, 3),
            "recall_skysieve": round(r_ours, 3), "recall_sahi": round(r_sahi, 3),
            "boxes_skysieve": len(ours), "boxes_sahi": len(res.object_prediction_list),
            "skysieve_flags_s": round(t_flags, 2), "ratio_flags": round(t_flags / t_sahi, 3),
            "recall_flags": round(r_flags, 3), "flags": len(flags)}


def _write_big_mosaic(path: Path, n: int = 20000, gsd: float = 0.02, block: int = 2048) -> None:
    """An n x n RGB mosaic with an alpha band, written window by window: a diagonal band of noise
    texture (valid) across no-data, like a flight strip through a cell."""
    import rasterio
    from affine import Affine
    from rasterio.windows import Window

    rng = np.random.default_rng(0)
    texture = rng.integers(60, 200, (block, block, 3), dtype=np.uint8)
    profile = dict(driver="GTiff", width=n, height=n, count=4, dtype="uint8", crs="EPSG:4547", tiled=True,
                   blockxsize=512, blockysize=512, compress="DEFLATE", photometric="RGB",
                   transform=Affine(gsd, 0, 400000, 0, -gsd, 4000000 + n * gsd), alpha="YES")
    band_halfwidth = n * 0.12
    with rasterio.open(path, "w", **profile) as dst:
        for r in range(0, n, block):
            for c in range(0, n, block):
                h, w = min(block, n - r), min(block, n - c)
                rr, cc = np.mgrid[r:r + h, c:c + w]
                alpha = (np.abs(rr - cc) < band_halfwidth).astype(np.uint8) * 255
                if not alpha.any():
                    dst.write(np.zeros((4, h, w), np.uint8), window=Window(c, r, w, h))
                    continue
                rgb = texture[:h, :w]
                dst.write(np.concatenate([np.moveaxis(rgb, 2, 0), alpha[None]]), window=Window(c, r, w, h))


_CHILD = """
import json, resource, sys
from skysieve.detect.runtime import load_detector
from skysieve.detect.sliced import detect_raster, SliceSettings
from skysieve.detect.thresholds import class_thresholds
det = load_detector(sys.argv[2] or None)
thr = tuple(float(v) for v in class_thresholds(det.meta))
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
r = detect_raster(sys.argv[1], det, SliceSettings(conf=min(thr), class_conf=thr))  # as `skysieve detect` runs
print(json.dumps({"slices": r.slices, "skipped": r.skipped, "seconds": round(r.seconds, 1), "boxes": len(r),
                  "rss_after_load_mb": round(base / 1024), "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))
"""


def memory(model: str | None, work: Path) -> dict:
    big = work / "mosaic-20000.tif"
    if not big.exists():
        t = time.perf_counter()
        _write_big_mosaic(big)
        print(f"wrote {big} in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    out = subprocess.run([sys.executable, "-c", _CHILD, str(big), model or ""], capture_output=True, text=True,
                         check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["mosaic_px"] = [20000, 20000]
    result["children_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="model name or path (default: the shipped model)")
    ap.add_argument("--seed", type=int, default=965, help="world seed (default 965: 14 tanks, 2 chimneys, 2 drum stockpiles)")
    ap.add_argument("--size", type=float, default=250, help="world size in metres")
    ap.add_argument("--conf", type=float, help="score threshold (default: the model's recommended conf)")
    ap.add_argument("--work", type=Path, help="folder for generated rasters (default: a temp folder)")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="detect-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    figures: dict = {}
    # memory first: a child's ru_maxrss starts from its parent's high-water mark at fork (Linux keeps it
    # across exec), and the speed part has the parent hold SAHI's PyTorch model
    if not args.skip_memory:
        m = memory(args.model, work)
        figures["memory"] = m
        print(f"20,000 x 20,000 px mosaic: {m['slices']} slices ({m['skipped']} no-data skipped) in {m['seconds']} s; "
              f"peak RSS {m['peak_rss_mb']} MB (after model load {m['rss_after_load_mb']} MB; target < 1536 MB)")
    if not args.skip_speed:
        s = speed(args.model, work, args.seed, args.size, args.conf)
        figures["speed"] = s
        print(f"sliced inference on {s['mosaic_px'][1]} x {s['mosaic_px'][0]} px ({s['slices']} slices of "
              f"{s['slice_px']} px, overlap {s['overlap']}), {s['objects']} true objects:")
        print(f"  skysieve ({s['skysieve_runtime']}): {s['skysieve_s']:.1f} s, recall {s['recall_skysieve']:.3f}")
        print(f"  SAHI get_sliced_prediction (ultralytics .pt): {s['sahi_s']:.1f} s, recall {s['recall_sahi']:.3f}")
        print(f"  time ratio skysieve / SAHI = {s['ratio']:.2f} (target <= 0.5)")
        print(f"  skysieve as `skysieve detect` runs it (class thresholds, second look, piles grouped): "
              f"{s['skysieve_flags_s']:.1f} s, ratio {s['ratio_flags']:.2f}, {s['flags']} flags, recall {s['recall_flags']:.3f}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
