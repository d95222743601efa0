"""Accuracy of the shipped detector on synthetic worlds never used in training, at several GSDs.

Run: ``python benchmarks/detect_accuracy.py [--model M] [--seeds 902 903 904] [--gsds 0.03 0.05 0.08]
[--record]``

For each world seed and GSD: ``skysieve.datasets.make_world`` renders the world natively at that GSD
(cached under ``--work``); the ortho is cropped around its groups of objects (boxes + 20 m, overlaps
merged; inference on the empty countryside would only cost time, and precision is measured there), and the full mosaic path runs on the crop
(resampling to the model's GSD, slicing, merging). Per class and GSD, pooled over the worlds:
precision and recall at IoU 0.5 at the operating threshold, and the distance on the ground between
matched box centres and the true object centres. Targets: recall >= 0.9, precision >= 0.85 per class,
centres within 0.3 m. ``--record`` stores the table in the model card.
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model")
    ap.add_argument("--seeds", type=int, nargs="+", default=[902, 903, 904])
    ap.add_argument("--gsds", type=float, nargs="+", default=[0.03, 0.05, 0.08])
    ap.add_argument("--size", type=float, default=500.0)
    ap.add_argument("--conf", type=float, help="operating threshold (default: the model's recommended conf)")
    ap.add_argument("--work", type=Path, default=Path("runs/worlds"))
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--record", action="store_true", help="store the result in the model card")
    args = ap.parse_args()

    import numpy as np

    from skysieve.datasets.world import make_world
    from skysieve.detect.evaluate import error_stats, evaluate_world
    from skysieve.detect.runtime import load_detector
    from skysieve.detect.sliced import SliceSettings

    det = load_detector(args.model)
    args.conf = args.conf if args.conf is not None else float(det.meta.extra.get("conf", 0.25))
    table: dict[str, dict] = {}
    for gsd in args.gsds:
        pooled: dict[str, dict] = {}
        for seed in args.seeds:
            world = args.work / f"v{seed}-{args.size:g}m-{gsd:g}"
            if not (world / "ortho.tif").exists():
                make_world(world, seed=seed, size_m=args.size, gsd_m=gsd)
            for crop in crops_around_objects(world):
                rep = evaluate_world(world, det, SliceSettings(conf=args.conf), ortho=crop)
                for c in rep.classes:
                    p = pooled.setdefault(c.name, {"n_true": 0, "n_pred": 0, "hits": 0, "errors": []})
                    p["n_true"] += c.n_true
                    p["n_pred"] += c.n_pred
                    p["hits"] += round(c.recall * c.n_true)
                    if c.centre_error_m:
                        p["errors"] += c.centre_error_m["all"]
        row = {}
        for name, p in pooled.items():
            row[name] = {"n_true": p["n_true"], "n_pred": p["n_pred"],
                         "precision": round(p["hits"] / p["n_pred"], 3) if p["n_pred"] else 0.0,
                         "recall": round(p["hits"] / p["n_true"], 3) if p["n_true"] else 0.0,
                         "centre_error_m": error_stats(np.array(p["errors"])) if p["errors"] else None}
        table[f"{gsd:g}"] = row
        print(f"GSD {gsd * 100:.0f} cm ({len(args.seeds)} worlds, seeds {args.seeds}):")
        for name, r in row.items():
            print(f"  {name:15s} true {r['n_true']:4d}  pred {r['n_pred']:4d}  P {r['precision']:.3f}  "
                  f"R {r['recall']:.3f}  centre error (median/p90/max) {r['centre_error_m']} m")
    result = {"model": det.name, "seeds": args.seeds, "size_m": args.size, "conf": args.conf, "by_gsd": table}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    if args.record:
        from skysieve.detect.card import record_world_table

        record_world_table(det.ref, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
