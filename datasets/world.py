"""``make_world``: a georeferenced synthetic county patch with exact ground truth.

Outputs (in ``out_dir``):

- ``ortho.tif``: true orthophoto, RGB uint8, projected CRS (``skysieve.crs.choose_crs``), tiled and
  compressed, written window by window (memory does not grow with the world).
- ``height.tif``: height of the surface above ground (float32 metres, same grid): buildings, tanks,
  trees, chimneys; 0 on open ground.
- ``truth/objects.geojson``: every labelled object (class, kind, footprint polygon, height, site) and
  ``truth/distractors.geojson``: round things and cars that are not targets; projected CRS.
- ``truth/sites.geojson``: every site with kind, name and ``illegal`` (hosts illegal work); projected CRS.
- ``sites_register.geojson``: the same sites as ``skysieve sites import`` reads them (WGS 84 lon/lat,
  properties ``site_id``, ``kind``, ``name``), without the secret ``illegal`` flag.
- ``world.json``: seed, size, GSD, CRS, origin, season, weather, sun: enough to rebuild the scene.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import rasterio
from affine import Affine
from rasterio.windows import Window

from skysieve.atomic import atomic_path, write_json
from skysieve.crs import choose_crs, from_lonlat, to_lonlat
from skysieve.datasets.layout import Climate, world_scene
from skysieve.datasets.paint import GridView, NoiseField, paint
from skysieve.datasets.parallel import cv2_threads, default_workers, ordered_map
from skysieve.datasets.scene import Scene, Sun
from skysieve.errors import DatasetError
from skysieve.progress import progress

__all__ = ["WorldInfo", "make_world", "load_world", "LoadedWorld", "WORLD_VERSION"]

log = logging.getLogger(__name__)

WORLD_VERSION = 1
_BLOCK = 2048  # pixels per painting window


@dataclass(frozen=True)
class WorldInfo:
    """Where a world's products are, and how it is placed (origin = south-west corner, CRS metres)."""

    root: Path
    ortho: Path
    height: Path
    objects: Path
    distractors: Path
    sites: Path
    sites_register: Path
    meta: Path
    crs: str
    origin_xy: tuple[float, float]
    size_m: float
    gsd_m: float
    seed: int
    n_objects: int
    n_sites: int

    @classmethod
    def at(cls, root: str | Path) -> WorldInfo:
        """Describe the world already written at ``root`` (raises :class:`DatasetError` if there is none)."""
        root = Path(root)
        meta_path = root / "world.json"
        if not meta_path.is_file():
            raise DatasetError("no synthetic world here (world.json missing)", path=root,
                               hint="make one with `skysieve synth world DIR --seed N`")
        meta = json.loads(meta_path.read_text())
        return cls(root, root / "ortho.tif", root / "height.tif", root / "truth" / "objects.geojson",
                   root / "truth" / "distractors.geojson", root / "truth" / "sites.geojson",
                   root / "sites_register.geojson", meta_path, meta["crs"], tuple(meta["origin_xy"]),
                   meta["size_m"], meta["gsd_m"], meta["seed"], meta["n_objects"], meta["n_sites"])


@dataclass(frozen=True)
class LoadedWorld:
    """A world's scene rebuilt in memory from its ``world.json`` (what the flight simulator flies over)."""

    info: WorldInfo
    scene: Scene
    climate: Climate
    bounds: np.ndarray  # shape bounds, N x 4

    def to_crs(self, xy: np.ndarray) -> np.ndarray:
        """Scene-frame metres (N x 2) to the world's projected CRS."""
        return np.asarray(xy, float) + np.array(self.info.origin_xy)


def _scene_digest(scene: Scene) -> str:
    h = hashlib.sha256()
    for o in scene.objects:
        h.update(f"{o.cls}{o.kind}{o.height_m:.4f}".encode())
        h.update(np.round(o.polygon, 4).tobytes())
    for s in scene.sites:
        h.update(f"{s.site_id}{s.kind}{s.illegal}".encode())
    return h.hexdigest()[:16]


def _crs_member(crs: str) -> dict:
    return {"type": "name", "properties": {"name": f"urn:ogc:def:crs:{crs.replace(':', '::')}"}}


def _ring(poly: np.ndarray, origin: np.ndarray, lonlat_crs=None) -> list:
    pts = np.asarray(poly, float) + origin
    if lonlat_crs is not None:
        lon, lat = to_lonlat(lonlat_crs, pts[:, 0], pts[:, 1])
        pts = np.column_stack([lon, lat])
        pts = np.round(pts, 8)
    else:
        pts = np.round(pts, 3)
    ring = pts.tolist()
    return [ring + [ring[0]]]


def _write_truth(scene: Scene, root: Path, crs, origin: np.ndarray) -> None:
    epsg = crs.to_string()
    objs, dists = [], []
    for i, o in enumerate(scene.objects):
        feat = {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": _ring(o.polygon, origin)},
                "properties": {"object_id": f"O{i:05d}", "class": o.cls, "kind": o.kind,
                               "height_m": round(float(o.height_m), 3), "site_id": o.site_id}}
        (objs if o.cls is not None else dists).append(feat)
    sites, register = [], []
    for s in scene.sites:
        sites.append({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": _ring(s.polygon, origin)},
                      "properties": {"site_id": s.site_id, "kind": s.kind, "name": s.name, "illegal": s.illegal}})
        register.append({"type": "Feature",
                         "geometry": {"type": "Polygon", "coordinates": _ring(s.polygon, origin, crs)},
                         "properties": {"site_id": s.site_id, "kind": s.kind, "name": s.name}})
    for name, feats in (("objects", objs), ("distractors", dists), ("sites", sites)):
        write_json(root / "truth" / f"{name}.geojson",
                   {"type": "FeatureCollection", "name": name, "crs": _crs_member(epsg), "features": feats})
    write_json(root / "sites_register.geojson", {"type": "FeatureCollection", "name": "sites", "features": register})


def _profile(crs, transform: Affine, n: int, count: int, dtype: str, **extra) -> dict:
    return dict(driver="GTiff", width=n, height=n, count=count, dtype=dtype, crs=crs, transform=transform,
                tiled=True, blockxsize=512, blockysize=512, BIGTIFF="IF_SAFER", NUM_THREADS="2", **extra)


_STATE: dict = {}


def _init_painter(seed: int, size_m: float, gsd_m: float, min_illegal_sites: int) -> None:
    """Per process: rebuild world ``seed``'s scene (deterministic) to paint windows of it."""
    scene, climate = world_scene(seed, size_m, min_illegal_sites)
    n = int(round(size_m / gsd_m))
    _STATE.update(scene=scene, bounds=scene.bounds_array(), style=climate.style(), gsd=gsd_m, n=n,
                  noise=NoiseField(seed, (0, 0, n * gsd_m, n * gsd_m)))


def _paint_window(rc: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Ortho (3 x rows x cols uint8) and heights (1 x rows x cols float32) of the window at (row, col)."""
    r, c = rc
    n, gsd = _STATE["n"], _STATE["gsd"]
    h, w = min(_BLOCK, n - r), min(_BLOCK, n - c)
    view = GridView(c * gsd, (n - r) * gsd, gsd, h, w)
    with cv2_threads(1):
        layers = paint(_STATE["scene"].shapes, _STATE["bounds"], view, _STATE["style"], _STATE["noise"], walls=False,
                       ground_step=2 if gsd <= 0.05 else 1)
        rgb = cv2.convertScaleAbs(layers.rgb, alpha=255.0)  # rounds and saturates
    return np.ascontiguousarray(np.moveaxis(rgb, 2, 0)), layers.height[None]


def make_world(out_dir: str | Path, seed: int, size_m: float = 600.0, gsd_m: float = 0.03,
               lonlat: tuple[float, float] = (112.88, 36.12), workers: int | None = None,
               min_illegal_sites: int = 1) -> WorldInfo:
    """Generate world ``seed``: a ``size_m`` square at ``lonlat`` (its centre, WGS 84), ortho at ``gsd_m``.

    Deterministic: the same arguments give the same bytes (whatever ``workers``). Rasters are painted in
    windows of 2048 px (by ``workers`` processes; default: up to 2) and written window by window, so
    memory does not grow with the world; files appear atomically (a killed run leaves no half product).
    At least ``min_illegal_sites`` sites host illegal work (where that many sites fit).
    """
    if not 20 <= size_m <= 5000:
        raise DatasetError(f"world size {size_m} m is out of range", hint="use 20 to 5000 m")
    if not 0.005 <= gsd_m <= 1.0:
        raise DatasetError(f"world GSD {gsd_m} m/px is out of range", hint="use 0.005 to 1 m per pixel")
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    crs = choose_crs(*lonlat)
    cx, cy = from_lonlat(crs, *lonlat)
    origin = np.array([round(cx - size_m / 2), round(cy - size_m / 2)], float)
    n = int(round(size_m / gsd_m))
    transform = Affine(gsd_m, 0, origin[0], 0, -gsd_m, origin[1] + n * gsd_m)
    scene, climate = world_scene(seed, size_m, min_illegal_sites)
    windows = [(r, c) for r in range(0, n, _BLOCK) for c in range(0, n, _BLOCK)]
    workers = default_workers(len(windows)) if workers is None else workers
    ortho_p = _profile(crs, transform, n, 3, "uint8", compress="JPEG", photometric="YCBCR", jpeg_quality=92)
    height_p = _profile(crs, transform, n, 1, "float32", compress="DEFLATE", predictor=3, zlevel=1, nodata=None)
    with atomic_path(root / "ortho.tif") as t_ortho, atomic_path(root / "height.tif") as t_height, \
            rasterio.open(t_ortho, "w", **ortho_p) as dst_o, rasterio.open(t_height, "w", **height_p) as dst_h:
        painted = ordered_map(_paint_window, windows, workers, _init_painter, (seed, size_m, gsd_m, min_illegal_sites))
        for (r, c), (rgb, height) in zip(windows, progress(painted, "painting world", total=len(windows),
                                                           unit="win"), strict=True):
            win = Window(c, r, rgb.shape[2], rgb.shape[1])
            dst_o.write(rgb, window=win)
            dst_h.write(height, window=win)
        dst_o.update_tags(SKYSIEVE_WORLD_SEED=str(seed))
    _write_truth(scene, root, crs, origin)
    meta = {"version": WORLD_VERSION, "seed": seed, "size_m": size_m, "gsd_m": gsd_m, "lonlat": list(lonlat),
            "min_illegal_sites": min_illegal_sites,
            "crs": crs.to_string(), "origin_xy": origin.tolist(), "season": climate.season,
            "weather": climate.weather, "ground_elevation_m": 700.0 + (seed * 37) % 500, "sun": asdict(climate.sun),
            "n_objects": len(scene.labelled()), "n_sites": len(scene.sites), "digest": _scene_digest(scene),
            "classes": {k: sum(o.cls == k for o in scene.objects) for k in ("tank", "chimney", "drum_stockpile")}}
    write_json(root / "world.json", meta)
    log.info("world %s: %d objects, %d sites, %s %s", root, meta["n_objects"], meta["n_sites"],
             climate.season, climate.weather)
    return WorldInfo.at(root)


def load_world(world_dir: str | Path) -> LoadedWorld:
    """Rebuild a world's scene from its ``world.json``; refuses a world made by other code."""
    info = WorldInfo.at(world_dir)
    meta = json.loads(info.meta.read_text())
    if meta.get("version") != WORLD_VERSION:
        raise DatasetError(f"world version {meta.get('version')} is not {WORLD_VERSION}", path=info.root,
                           hint="remake the world with this version of skysieve")
    scene, climate = world_scene(int(meta["seed"]), float(meta["size_m"]), int(meta.get("min_illegal_sites", 0)))
    if _scene_digest(scene) != meta["digest"]:
        raise DatasetError("this skysieve lays out the world differently from the one that wrote it",
                           path=info.root, hint="remake the world with `skysieve synth world`")
    climate = Climate(climate.season, climate.weather, Sun(**meta["sun"]))
    return LoadedWorld(info, scene, climate, scene.bounds_array())
