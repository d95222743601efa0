"""Accuracy of the shipped detector on synthetic worlds never used in training, at several GSDs.

Run: ``python benchmarks/detect_accuracy.py [--model M] [--seeds 902 903 904] [--gsds 0.03 0.05 0.08]
[--calibrate-seeds 1301 1302 1303 1304] [--record]``

For each world seed and GSD: ``skysieve.datasets.make_world`` renders the world natively at that GSD
(cached under ``--work``); the ortho is cropped around its groups of objects (boxes + 20 m, overlaps
merged; inference on the empty countryside would only cost time, and precision is measured there), and
the full mosaic path runs on the crop (resampling to the model's GSD, slicing, merging; at the operating
thresholds, as ``skysieve detect``, the second look at tanks and chimneys and drum piles grouped). Per class and
GSD, pooled over the worlds: precision and recall at IoU 0.5 at the operating thresholds, and the
distance on the ground between matched box centres and the true object centres. Targets: recall >= 0.9,
precision >= 0.85 per class, centres within 0.3 m.

The operating thresholds are the model's (``class_conf``, else ``conf``), or ``--conf`` for all classes,
or, with ``--calibrate-seeds``, calibrated first on other worlds (``val<seed>-...``, at
``--calibrate-gsds``): per class the lowest threshold reaching precision 0.85 at recall 0.9 there
(:func:`skysieve.detect.thresholds.calibrate`). The test worlds never set a threshold. ``--record``
stores the table, and the calibrated thresholds as the model's ``class_conf``, in its metadata and card.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("SKYSIEVE_PROGRESS", "0")


def _merged_rects(rects: list[list[float]]) -> list[list[float]]:
    """Union overlapping rectangles (x0, y0, x1, y1) until none overlap."""
    rects = [list(r) for r in rects]
    merged = True
    while merged:
        merged = False
        for i in range(len(rects)):
            for j in range(i + 1, len(rects)):
                a, b = rects[i], rects[j]
                if a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]:
                    rects[i] = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])]
                    del rects[j]
                    merged = True
                    break
            if merged:
                break
    return rects


def crops_around_objects(world: Path, margin_m: float = 20.0) -> list[Path]:
    """GeoTIFF crops of the world's ortho around its groups of objects (each object's box + ``margin_m``,
    overlapping boxes merged), so that inference skips the empty countryside."""
    import pyogrio
    import rasterio
    import shapely
    from rasterio.windows import Window, from_bounds

    done = sorted(world.glob("crop-*.tif"))
    if done:
        return done
    _, _, geoms, _ = pyogrio.raw.read(world / "truth" / "objects.geojson")
    rects = _merged_rects([[b[0] - margin_m, b[1] - margin_m, b[2] + margin_m, b[3] + margin_m]
                           for b in (shapely.from_wkb(g).bounds for g in geoms)])
    out = []
    with rasterio.open(world / "ortho.tif") as src:
        for k, (x0, y0, x1, y1) in enumerate(rects):
            win = from_bounds(x0, y0, x1, y1, src.transform).round_offsets().round_lengths()
            win = win.intersection(Window(0, 0, src.width, src.height))
            profile = {**src.profile, "width": win.width, "height": win.height,
                       "transform": src.window_transform(win)}
            path = world / f"crop-{k:02d}.tif"
            with rasterio.open(path, "w", **profile) as dst:
                dst.write(src.read(window=win))
            out.append(path)
    return out


def world_dir(work: Path, prefix: str, seed: int, size: float, gsd: float) -> Path:
    """The world for (seed, size, GSD) under ``work``, rendered on first use."""
    from skysieve.datasets.world import make_world

    world = work / f"{prefix}{seed}-{size:g}m-{gsd:g}"
    if not (world / "ortho.tif").exists():
        make_world(world, seed=seed, size_m=size, gsd_m=gsd)
    return world


def match_worlds(det, work: Path, prefix: str, seeds, size: float, gsd: float, conf) -> list:
    """:func:`match_world` on the crops of each world (seed, size, GSD), sliced at threshold ``conf``, or, for
    per-class thresholds (a sequence), at the lowest and then cut per class and piles grouped, as
    ``skysieve detect`` does."""
    from skysieve.detect.evaluate import match_world
    from skysieve.detect.sliced import SliceSettings

    settings = SliceSettings(conf=conf) if isinstance(conf, float) else \
        SliceSettings(conf=min(conf), class_conf=tuple(conf))
    return [match_world(w, det, settings, ortho=crop) for seed in seeds
            for w in [world_dir(work, prefix, seed, size, gsd)] for crop in crops_around_objects(w)]


def calibrated_thresholds(det, work: Path, seeds, gsds, size: float) -> dict[str, dict]:
    """Per-class thresholds (:func:`skysieve.detect.thresholds.calibrate`) on validation worlds."""
    import numpy as np

    from skysieve.detect.thresholds import CALIBRATION_FLOOR, calibrate

    ms = [m for gsd in gsds for m in match_worlds(det, work, "val", seeds, size, gsd, CALIBRATION_FLOOR)]
    classes = det.meta.classes
    n_true = [sum(int((m.true_cls == c).sum()) for m in ms) for c in range(len(classes))]
    return calibrate(np.concatenate([m.matched >= 0 for m in ms]), np.concatenate([m.score for m in ms]),
                     np.concatenate([m.cls for m in ms]), n_true, classes)


def pooled_row(ms: list, classes, conf) -> dict:
    """Precision, recall and centre errors per class over matched worlds, at per-class ``conf``."""
    import numpy as np

    from skysieve.detect.evaluate import error_stats, precision_recall

    row = {}
    for c, name in enumerate(classes):
        n_true = sum(int((m.true_cls == c).sum()) for m in ms)
        n_pred, p, r = precision_recall(np.concatenate([m.matched[m.cls == c] >= 0 for m in ms]),
                                        np.concatenate([m.score[m.cls == c] for m in ms]), n_true, conf[c])
        errors = np.concatenate([m.centre_errors((m.cls == c) & (m.score >= conf[c]) & (m.matched >= 0))
                                 for m in ms])
        row[name] = {"n_true": n_true, "n_pred": n_pred, "precision": round(p, 3), "recall": round(r, 3),
                     "centre_error_m": error_stats(errors) if len(errors) else None}
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model")
    ap.add_argument("--seeds", type=int, nargs="+", default=[902, 903, 904])
    ap.add_argument("--gsds", type=float, nargs="+", default=[0.03, 0.05, 0.08])
    ap.add_argument("--size", type=float, default=500.0)
    ap.add_argument("--conf", type=float, help="one threshold for every class (default: the model's per-class ones)")
    ap.add_argument("--calibrate-seeds", type=int, nargs="+", metavar="SEED",
                    help="first calibrate per-class thresholds on these worlds (never the test seeds)")
    ap.add_argument("--calibrate-gsds", type=float, nargs="+", default=[0.03, 0.06, 0.08])
    ap.add_argument("--work", type=Path, default=Path("runs/worlds"))
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--record", action="store_true",
                    help="store the table (and calibrated thresholds) in the model card")
    args = ap.parse_args()

    from skysieve.detect.runtime import load_detector
    from skysieve.detect.thresholds import class_thresholds

    det = load_detector(args.model)
    classes = det.meta.classes
    calibration = None
    if args.calibrate_seeds:
        if set(args.calibrate_seeds) & set(args.seeds):
            ap.error("calibration seeds must differ from the test seeds")
        calibration = calibrated_thresholds(det, args.work, args.calibrate_seeds, args.calibrate_gsds, args.size)
        conf = [calibration[c]["conf"] for c in classes]
        print(f"calibrated on seeds {args.calibrate_seeds} at GSDs {args.calibrate_gsds}: "
              + ", ".join(f"{c} {v['conf']} (P {v['precision']}, R {v['recall']})" for c, v in calibration.items()))
    else:
        conf = [float(t) for t in class_thresholds(det.meta, args.conf)]
    table: dict[str, dict] = {}
    for gsd in args.gsds:
        # sliced at the lowest class threshold, then cut per class, piles grouped: what `skysieve detect` does
        row = pooled_row(match_worlds(det, args.work, "v", args.seeds, args.size, gsd, conf), classes, conf)
        table[f"{gsd:g}"] = row
        print(f"GSD {gsd * 100:.0f} cm ({len(args.seeds)} worlds, seeds {args.seeds}):")
        for name, r in row.items():
            print(f"  {name:15s} true {r['n_true']:4d}  pred {r['n_pred']:4d}  P {r['precision']:.3f}  "
                  f"R {r['recall']:.3f}  centre error (median/p90/max) {r['centre_error_m']} m")
    from skysieve.detect.refine import LookSettings

    result = {"model": det.name, "seeds": args.seeds, "size_m": args.size, "look_views": LookSettings().views,
              "conf": dict(zip(classes, conf, strict=True)), "calibration": calibration, "by_gsd": table}
    if args.calibrate_seeds:
        result["calibration_worlds"] = {"seeds": args.calibrate_seeds, "gsds": args.calibrate_gsds}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    if args.record:
        from skysieve.detect.card import record_extra, record_world_table

        ref = record_world_table(det.ref, result)
        if calibration:
            record_extra(ref, "class_conf", {c: v["conf"] for c, v in calibration.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
