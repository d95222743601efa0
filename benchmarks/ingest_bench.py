"""Ingest speed against the cost of merely decoding the flight's JPEGs at full resolution, in the same run.

    python benchmarks/ingest_bench.py [FLIGHT_DIR] [--repeat N]

FLIGHT_DIR defaults to $SKYSIEVE_DATA/flights/brighton-beach/images (18 photos, 4000 x 2250). Prints the
time of a full ingest (hashing, EXIF/XMP, reduced-decode quality checks, footprints, cells, GeoPackage
rows, manifest and coverage PNG) into a fresh workspace, the time to decode every photo at full size
with Pillow (the same decoder) and with OpenCV, and the ratio. Target: ingest / Pillow decode <= 0.5.
Each figure is the best of ``--repeat`` runs (the machine is shared; the best run is the least disturbed).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _decode_pillow(paths: list[Path]) -> float:
    from PIL import Image

    t = time.perf_counter()
    for p in paths:
        with Image.open(io.BytesIO(p.read_bytes())) as img:
            np.asarray(img.convert("RGB"))
    return time.perf_counter() - t


def _decode_opencv(paths: list[Path]) -> float:
    import cv2

    t = time.perf_counter()
    for p in paths:
        cv2.imdecode(np.frombuffer(p.read_bytes(), np.uint8), cv2.IMREAD_COLOR)
    return time.perf_counter() - t


def _ingest(flight: Path) -> tuple[float, str]:
    from skysieve.mosaic.ingest import ingest_flight

    from skysieve.workspace import Workspace

    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.create(Path(tmp) / "ws")
        t = time.perf_counter()
        result = ingest_flight(ws, flight)
        return time.perf_counter() - t, result.text()


def main() -> int:
    default = Path(os.environ.get("SKYSIEVE_DATA", "../shared/data")) / "flights" / "brighton-beach" / "images"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("flight", nargs="?", type=Path, default=default)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    paths = sorted(p for p in args.flight.glob("*") if p.suffix.lower() in (".jpg", ".jpeg"))
    if not paths:
        print(f"no JPEGs in {args.flight} (set SKYSIEVE_DATA or give FLIGHT_DIR)", file=sys.stderr)
        return 2
    os.environ.setdefault("SKYSIEVE_PROGRESS", "0")
    import cv2  # noqa: F401  (import costs are not per-flight work: load both decoders first)
    import skysieve.mosaic.ingest  # noqa: F401

    _decode_pillow(paths[:1])
    pil, ocv, ing = [], [], []
    summary = ""
    for _ in range(max(1, args.repeat)):
        pil.append(_decode_pillow(paths))
        ocv.append(_decode_opencv(paths))
        t, summary = _ingest(args.flight)
        ing.append(t)
    n = len(paths)
    size_mb = sum(p.stat().st_size for p in paths) / 1e6
    best_pil, best_ocv, best_ing = min(pil), min(ocv), min(ing)
    print(f"flight: {args.flight} ({n} JPEGs, {size_mb:.0f} MB)")
    print(f"  {summary}")
    print(f"full decode, Pillow : {best_pil:6.2f} s ({best_pil / n * 1000:.0f} ms/photo)  runs {[round(x, 2) for x in pil]}")
    print(f"full decode, OpenCV : {best_ocv:6.2f} s ({best_ocv / n * 1000:.0f} ms/photo)  runs {[round(x, 2) for x in ocv]}")
    print(f"ingest              : {best_ing:6.2f} s ({best_ing / n * 1000:.0f} ms/photo)  runs {[round(x, 2) for x in ing]}")
    ratio = best_ing / best_pil
    print(f"ingest / Pillow full decode = {ratio:.2f} (target <= 0.50: {'met' if ratio <= 0.5 else 'NOT met'}); "
          f"ingest / OpenCV full decode = {best_ing / best_ocv:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
