"""``build_dataset``: a YOLO-format training set (``images/``, ``labels/``, ``data.yaml``) of synthetic tiles.

Layout (what ultralytics expects)::

    OUT/data.yaml                 path: OUT (absolute), train/val, names {0: tank, 1: chimney, 2: drum_stockpile}
    OUT/images/{train,val}/NNNNNN.jpg
    OUT/labels/{train,val}/NNNNNN.txt   one line per box: class cx cy w h (normalised 0..1)

Deterministic in ``seed``: tile ``i`` is rendered from seed (seed, i) whatever the worker count.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from skysieve.atomic import write_bytes, write_text
from skysieve.datasets.parallel import cv2_threads, default_workers, ordered_map
from skysieve.datasets.realdata import import_real
from skysieve.datasets.scene import CLASSES
from skysieve.datasets.tiles import Tile, list_images, random_farm_spec, random_tile_spec, render_tile
from skysieve.errors import DatasetError
from skysieve.progress import progress

__all__ = ["build_dataset", "yolo_lines", "write_data_yaml"]

log = logging.getLogger(__name__)


def yolo_lines(boxes: np.ndarray, cols: int, rows: int) -> str:
    """Boxes (N x 5: class, x0, y0, x1, y1 px) as YOLO label text."""
    lines = []
    for c, x0, y0, x1, y1 in boxes:
        lines.append(f"{int(c)} {(x0 + x1) / 2 / cols:.6f} {(y0 + y1) / 2 / rows:.6f} "
                     f"{(x1 - x0) / cols:.6f} {(y1 - y0) / rows:.6f}")
    return "\n".join(lines) + ("\n" if lines else "")


#: first line of a data.yaml this module wrote (``synth dataset --replace`` deletes only such a dataset)
DATA_YAML_STAMP = "# written by skysieve synth dataset"


def write_data_yaml(root: Path, names: tuple[str, ...] = CLASSES) -> Path:
    """Write ``data.yaml`` for a dataset laid out as above; ``path`` is absolute."""
    text = [DATA_YAML_STAMP, f"path: {root.resolve()}", "train: images/train", "val: images/val", f"nc: {len(names)}", "names:"]
    text += [f"  {i}: {n}" for i, n in enumerate(names)]
    return write_text(root / "data.yaml", "\n".join(text) + "\n")


def _tile_job(args: tuple[int, int, int, tuple[float, float], tuple[str, ...], float | None, float, int, float | None]
              ) -> tuple[int, bytes, str]:
    seed, i, imgsz, gsd_range, backgrounds, backgrounds_gsd_m, farm_fraction, clutter, model_gsd_m = args
    rng = np.random.default_rng([seed, i, 17])
    tile_seed = seed * 1_000_003 + i
    farm = farm_fraction > 0 and np.random.default_rng([seed, i, 23]).random() < farm_fraction
    spec = random_farm_spec(rng, tile_seed, imgsz) if farm else random_tile_spec(rng, tile_seed, imgsz, gsd_range)
    spec = replace(spec, clutter=clutter, model_gsd_m=model_gsd_m)
    with cv2_threads(1):
        tile: Tile = render_tile(spec, [Path(b) for b in backgrounds], backgrounds_gsd_m)
    ok, buf = cv2.imencode(".jpg", tile.pixels[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    return i, buf.tobytes(), yolo_lines(tile.boxes, imgsz, imgsz)


def build_dataset(out_dir: str | Path, n: int, imgsz: int = 640, gsd_range: tuple[float, float] = (0.02, 0.10),
                  seed: int = 0, backgrounds: str | Path | None = None, real: str | Path | None = None,
                  val_fraction: float = 0.15, workers: int | None = None, farm_fraction: float = 0.0,
                  backgrounds_gsd_m: float | None = None, clutter: int = 7, model_gsd_m: float | None = None) -> Path:
    """Render ``n`` tiles of ``imgsz`` px at GSDs drawn log-uniformly from ``gsd_range`` (m/px) into a
    YOLO dataset at ``out_dir``; returns the path of its ``data.yaml``.

    ``backgrounds``: a folder of real aerial images; half the tiles paint their objects onto crops of
    them (sim-to-real). ``real``: a YOLO dataset (images/ + labels/ + data.yaml or classes.txt) copied
    into the training split with its classes mapped by name (see :mod:`.realdata`); RarePlanes'
    finding is to fine-tune on real data in a second stage instead, so prefer a separate dataset.
    ``backgrounds_gsd_m``: their ground sample distance (m/px), when known (a drone flight: its GSD from
    ingest); crops then keep the ground's true scale instead of a random one.
    ``farm_fraction``: the share of tiles that show tank farms (large tanks at 0.3-1 m/px, whatever
    ``gsd_range`` says) instead, for transfer to satellite and high-altitude imagery of tank farms.
    ``clutter``: at most this many hard negatives (planters, cars, silos, haystacks, cisterns, tyre piles,
    trees, scrap) per tile; more of them teaches the model what is *not* a tank, chimney or drum pile.
    ``model_gsd_m``: the GSD the model will run at (``skysieve detect`` resamples every mosaic to it). Each
    tile is then rendered at its own GSD over ``imgsz * model_gsd_m`` metres of ground and resampled to
    ``imgsz`` px, as detection resamples a mosaic: objects keep one size in pixels, and a coarse survey
    looks as soft as it will at detection. Without it (the default) a tile stays at its own GSD.
    Tiles already written are kept (a rerun resumes); ``workers`` processes render (default: 2).
    """
    if n < 1:
        raise DatasetError(f"n={n}: a dataset needs at least one tile")
    if not (0.005 <= gsd_range[0] <= gsd_range[1] <= 1.0):
        raise DatasetError(f"GSD range {gsd_range} is not a range of metres per pixel", hint="e.g. 0.02,0.10")
    if imgsz < 64 or imgsz % 32:
        raise DatasetError(f"imgsz {imgsz} must be a multiple of 32 and at least 64")
    if not 0.0 <= farm_fraction <= 1.0:
        raise DatasetError(f"farm fraction {farm_fraction} is not a share between 0 and 1")
    if backgrounds_gsd_m is not None and not 0.001 <= backgrounds_gsd_m <= 10.0:
        raise DatasetError(f"background GSD {backgrounds_gsd_m} is not metres per pixel", hint="e.g. 0.017")
    if model_gsd_m is not None and not 0.005 <= model_gsd_m <= 1.0:
        raise DatasetError(f"model GSD {model_gsd_m} is not metres per pixel", hint="e.g. 0.04")
    if not 0 <= clutter <= 100:
        raise DatasetError(f"clutter {clutter} is not a count of objects per tile", hint="e.g. 7 (default) or 14")
    root = Path(out_dir)
    n_val = max(1, int(math.ceil(n * val_fraction))) if n > 1 else 0
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)

    def where(i: int) -> tuple[Path, Path]:
        split = "val" if i >= n - n_val else "train"
        return root / "images" / split / f"{i:06d}.jpg", root / "labels" / split / f"{i:06d}.txt"

    todo = [i for i in range(n) if not (where(i)[0].exists() and where(i)[1].exists())]
    bgs = tuple(str(p) for p in list_images(backgrounds)) if backgrounds is not None else ()
    jobs = [(seed, i, imgsz, tuple(gsd_range), bgs, backgrounds_gsd_m, farm_fraction, clutter, model_gsd_m)
            for i in todo]
    workers = default_workers(len(jobs)) if workers is None else workers
    for i, jpg, label in progress(ordered_map(_tile_job, jobs, workers), "rendering tiles", total=len(jobs),
                                  unit="tile"):
        img, lab = where(i)
        write_bytes(img, jpg)
        write_text(lab, label)  # the label last: a tile counts as done once both exist
    log.info("dataset %s: %d tiles (%d rendered now)", root, n, len(jobs))
    if real is not None:
        import_real(real, root, "train")
    return write_data_yaml(root)
