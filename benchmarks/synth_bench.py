"""Speed of the synthetic world, the flight simulator and the tile renderer (not a test).

    python benchmarks/synth_bench.py [--size-m 600] [--gsd 0.03] [--images 60] [--tiles 40]

Goal (issue 3): a 600 m world at 3 cm/px plus a 60-image flight in under a minute on a 2-core machine;
training tiles at 640 px at 20+ per second. Each figure is printed with the CPU time of this process and
its children (the machine may be shared: wall time then overstates) and as a ratio against a baseline
measured in the same run: the I/O floor of the same product (compressing and writing the same number of
pixels of a flat image, or encoding the same JPEGs).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine


def _clock() -> tuple[float, float]:
    t = os.times()
    return time.perf_counter(), t.user + t.system + t.children_user + t.children_system


def _since(start: tuple[float, float]) -> tuple[float, float]:
    now = _clock()
    return now[0] - start[0], now[1] - start[1]


def _raster_floor(path: Path, n: int) -> None:
    """Write an n x n RGB ortho of mid-grey + n x n float heights with the world's profiles."""
    from rasterio.windows import Window

    from skysieve.datasets.world import _profile

    t = Affine(0.03, 0, 0, 0, -0.03, 0)
    rgb = np.full((3, 2048, 2048), 128, np.uint8)
    rgb[:, ::7] = 90  # some texture so the encoder has work
    zero = np.zeros((1, 2048, 2048), np.float32)
    with rasterio.open(path / "o.tif", "w", **_profile("EPSG:4547", t, n, 3, "uint8", compress="JPEG",
                                                     photometric="YCBCR", jpeg_quality=92)) as o, \
            rasterio.open(path / "h.tif", "w", **_profile("EPSG:4547", t, n, 1, "float32", compress="DEFLATE",
                                                        predictor=3, zlevel=1)) as h:
        for r in range(0, n, 2048):
            for c in range(0, n, 2048):
                w, hh = min(2048, n - c), min(2048, n - r)
                o.write(rgb[:, :hh, :w], window=Window(c, r, w, hh))
                h.write(zero[:, :hh, :w], window=Window(c, r, w, hh))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-m", type=float, default=600.0)
    ap.add_argument("--gsd", type=float, default=0.03)
    ap.add_argument("--images", type=int, default=60, help="about this many photos (4 lines)")
    ap.add_argument("--tiles", type=int, default=40)
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args()
    os.environ.setdefault("SKYSIEVE_PROGRESS", "0")

    from skysieve.datasets import FlightPlan, build_dataset, fly, make_world
    from skysieve.datasets.dji_meta import DJIMeta, write_dji_jpeg

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        n = int(round(args.size_m / args.gsd))
        s = _clock()
        _raster_floor(tmp, n)
        floor_w = _since(s)
        s = _clock()
        world = make_world(tmp / "world", args.seed, size_m=args.size_m, gsd_m=args.gsd)
        world_t = _since(s)
        mp = n * n / 1e6
        print(f"world {args.size_m:g} m at {args.gsd:g} m/px ({mp:.0f} Mpx, {world.n_objects} objects, "
              f"{world.n_sites} sites): {world_t[0]:.1f} s wall, {world_t[1]:.1f} s CPU; "
              f"I/O floor {floor_w[0]:.1f} s wall, {floor_w[1]:.1f} s CPU; ratio {world_t[1] / floor_w[1]:.1f}x")

        # 4 lines of about images/4 photos each, at 60 m with an FC300S at 1/4 scale (1000 x 562 px)
        shots = max(2, args.images // 4)
        c = args.size_m / 2
        plan = FlightPlan(altitude_m=60, scale=0.25, seed=1,
                          area_m=(c - 50, c - (shots - 1) * 14.4 / 2, c + 50, c + (shots - 1) * 14.4 / 2))
        s = _clock()
        flight = fly(world.root, tmp / "flight", plan)
        flight_t = _since(s)
        s = _clock()
        px = np.full((flight.camera.height_px, flight.camera.width_px, 3), 120, np.uint8)
        for i in range(flight.n_images):
            write_dji_jpeg(tmp / f"floor_{i}.jpg", px, DJIMeta(lon=112.9, lat=36.1, gps_altitude_m=960))
        jpeg_t = _since(s)
        print(f"flight {flight.n_images} photos {flight.camera.width_px}x{flight.camera.height_px}: "
              f"{flight_t[0]:.1f} s wall, {flight_t[1]:.1f} s CPU ({flight_t[1] / flight.n_images * 1000:.0f} ms "
              f"CPU/photo); JPEG+EXIF floor {jpeg_t[1]:.2f} s CPU; ratio {flight_t[1] / max(jpeg_t[1], 1e-3):.0f}x")
        total = world_t[0] + flight_t[0]
        print(f"world + flight: {total:.1f} s wall, {world_t[1] + flight_t[1]:.1f} s CPU (goal: under 60 s)")

        for workers in (1, 2):
            s = _clock()
            build_dataset(tmp / f"tiles{workers}", args.tiles, imgsz=640, seed=workers, workers=workers)
            t = _since(s)
            print(f"tiles 640 px, {workers} worker(s): {args.tiles / t[0]:.1f} tiles/s wall, "
                  f"{args.tiles / t[1]:.1f} tiles per CPU-second")


if __name__ == "__main__":
    main()
