"""Ingest speed against the cost of merely decoding the flight's JPEGs at full resolution, in the same run.

    python benchmarks/ingest_bench.py [FLIGHT_DIR] [--repeat N]

FLIGHT_DIR defaults to $SKYSIEVE_DATA/flights/brighton-beach/images (18 photos, 4000 x 2250). Measures
a full ingest (hashing, EXIF/XMP, reduced-decode quality checks, footprints, cells, GeoPackage rows,
manifest and coverage PNG) into a fresh workspace, with one decoding thread and with the default
thread count, against decoding every photo at full size with Pillow (the decoder ingest uses) and with
OpenCV, one thread each. Target: ingest / Pillow full decode <= 0.5.

Each figure is the best of ``--repeat`` runs. Wall time is what a user waits; CPU time (all threads of
this process) is the work done, and is the fairer comparison on a machine shared with other jobs.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

Timing = tuple[float, float]  # (wall seconds, CPU seconds of this process)


def _timed(fn: Callable[[], object]) -> tuple[Timing, object]:
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return (time.perf_counter() - w, time.process_time() - c), out


def _decode_pillow(paths: list[Path]) -> None:
    from PIL import Image

    for p in paths:
        with Image.open(io.BytesIO(p.read_bytes())) as img:
            np.asarray(img.convert("RGB"))


def _decode_opencv(paths: list[Path]) -> None:
    import cv2

    for p in paths:
        cv2.imdecode(np.frombuffer(p.read_bytes(), np.uint8), cv2.IMREAD_COLOR)


def _ingest(flight: Path, workers: int) -> tuple[Timing, str]:
    from skysieve.mosaic.ingest import IngestSettings, ingest_flight
    from skysieve.workspace import Workspace

    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.create(Path(tmp) / "ws")
        timing, result = _timed(lambda: ingest_flight(ws, flight, settings=IngestSettings(workers=workers)))
        return timing, result.text()


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
    import cv2  # noqa: F401  (imports are not per-flight work: load both decoders and ingest first)

    import skysieve.mosaic.ingest  # noqa: F401

    _decode_pillow(paths[:1])
    runs: dict[str, list[Timing]] = {"Pillow full decode": [], "OpenCV full decode": [], "ingest, 1 thread": [],
                                     "ingest, default threads": []}
    summary = ""
    for _ in range(max(1, args.repeat)):
        runs["Pillow full decode"].append(_timed(lambda: _decode_pillow(paths))[0])
        runs["OpenCV full decode"].append(_timed(lambda: _decode_opencv(paths))[0])
        runs["ingest, 1 thread"].append(_ingest(args.flight, 1)[0])
        timing, summary = _ingest(args.flight, 0)
        runs["ingest, default threads"].append(timing)
    best = {k: (min(w for w, _ in v), min(c for _, c in v)) for k, v in runs.items()}
    size_mb = sum(p.stat().st_size for p in paths) / 1e6
    print(f"flight: {args.flight} ({len(paths)} JPEGs, {size_mb:.0f} MB); {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"  {summary}")
    print(f"{'':26s} {'wall s':>7s} {'CPU s':>7s}   wall of each run")
    for k, (w, c) in best.items():
        print(f"{k:26s} {w:7.2f} {c:7.2f}   {[round(x, 2) for x, _ in runs[k]]}")
    pil, ocv = best["Pillow full decode"], best["OpenCV full decode"]
    for k in ("ingest, 1 thread", "ingest, default threads"):
        w, c = best[k]
        print(f"{k} / Pillow full decode: wall {w / pil[0]:.2f}, CPU {c / pil[1]:.2f} (target <= 0.50); "
              f"/ OpenCV full decode: wall {w / ocv[0]:.2f}, CPU {c / ocv[1]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
