"""Training tiles: small randomised scenes seen by a virtual drone camera, with exact YOLO boxes.

Each tile is its own little world (ground cover, buildings, trees, distractors and 0..n labelled
objects), painted with :mod:`~skysieve.datasets.paint` and ray-cast through a nadir camera whose
principal point is offset, as if the tile were cut from anywhere in a drone photo: tall objects lean
away from the photo centre as they do in real imagery and orthomosaics. Boxes are the image-space
bounds of each object's projected 3-D hull (base and top), clipped to the tile.

Everything that is not the object is randomised (domain randomisation): ground cover and season,
sun azimuth/elevation and shadow strength, haze, exposure, white balance, blur, noise, JPEG quality,
GSD, clutter, and round hard negatives (planters, manholes, silos, haystacks).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from skysieve.camera import Camera, Pose, project
from skysieve.datasets import props
from skysieve.datasets.layout import PALETTES, climate_for
from skysieve.datasets.optics import CameraFaults, camera_faults, cast
from skysieve.datasets.paint import GridView, NoiseField, paint
from skysieve.datasets.scene import CLASSES, Scene, Shape, rect
from skysieve.errors import DatasetError

__all__ = ["TileSpec", "Tile", "random_tile_spec", "random_farm_spec", "FARM_GSD",
           "TRUE_ORTHO_SHARE", "TRUE_ORTHO_HEIGHT_M", "render_tile", "tile_scene", "boxes_for", "background_crop",
           "list_images"]


@dataclass(frozen=True)
class TileSpec:
    """How one tile is made: seed, size (px), GSD (m/px), camera height (m), where the tile sits in the
    photo (tan of the off-nadir angle of its centre, east and north), JPEG quality."""

    seed: int
    imgsz: int
    gsd_m: float
    height_m: float
    tan_xy: tuple[float, float]
    jpeg_quality: int
    negative_only: bool = False
    tank_farm: bool = False
    clutter: int = 7  # at most this many hard negatives (planters, cars, silos...) and clutter items
    model_gsd_m: float | None = None  # resample the rendered tile to this GSD, as `skysieve detect` does a mosaic


@dataclass(frozen=True)
class Tile:
    """A rendered tile: ``pixels`` (rows x cols x 3 uint8 RGB) and ``boxes`` (N x 5: class, x0, y0, x1, y1 px)."""

    pixels: np.ndarray
    boxes: np.ndarray


TRUE_ORTHO_SHARE = 0.35  # share of tiles seen straight down everywhere, as in a true ortho (DSM-corrected)
NEAR_NADIR_SHARE = 0.5  # of the other tiles, share cut near the photo centre (the rest: anywhere within 0.4)
TRUE_ORTHO_HEIGHT_M = 1.0e5  # a camera this high sees every point along parallel vertical rays


def random_tile_spec(rng: np.random.Generator, seed: int, imgsz: int, gsd_range: tuple[float, float]) -> TileSpec:
    """A random tile: cut from a drone photo (tall things lean away from the photo centre, as in a mosaic
    made on a ground plane), or, in ``TRUE_ORTHO_SHARE`` of tiles, from a true ortho (DJI Terra,
    OpenDroneMap and Pix4D with a surface model, and the synthetic worlds), where a chimney's top sits
    right above its base and no wall shows."""
    lo, hi = gsd_range
    gsd = float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    # where in a photo the tile sits. A mosaic keeps the most nadir view, so mostly near the centre; but
    # with seams between nearest photo centres, anywhere in a photo's share of the block, which reaches
    # 0.3-0.4 of the height across the flight lines at 55-65 % sidelap
    if rng.random() < NEAR_NADIR_SHARE:
        tan = np.clip(rng.normal(0.0, 0.15, 2), -0.35, 0.35)
    else:
        tan = rng.uniform(-0.4, 0.4, 2)
    height = float(rng.uniform(30, 150))
    if rng.random() < TRUE_ORTHO_SHARE:
        height, tan = TRUE_ORTHO_HEIGHT_M, np.zeros(2)
    return TileSpec(seed, imgsz, gsd, height, (float(tan[0]), float(tan[1])),
                    int(rng.integers(55, 96)), bool(rng.random() < 0.15))


FARM_GSD = (0.3, 1.0)  # m/px of tank-farm tiles: what satellite and high-altitude aerial imagery shows


def random_farm_spec(rng: np.random.Generator, seed: int, imgsz: int) -> TileSpec:
    """A tank-farm tile: large storage tanks seen from high up (0.3-1 m/px), for transfer to real
    aerial and satellite imagery of tank farms (RSOD and the like)."""
    spec = random_tile_spec(rng, seed, imgsz, FARM_GSD)
    return replace(spec, height_m=float(rng.uniform(400, 3000)), negative_only=True, tank_farm=True)


def floating_roof_tank(rng: np.random.Generator, x: float, y: float, d: float, toward) -> tuple[list[Shape], object]:
    """A large tank-farm tank: a fixed dome/cone roof (a lit disc), or a floating roof sunk below a light
    rim, whose inner wall throws a dark crescent onto the roof on the sun side."""
    shapes, truth = props.vertical_tank(rng, x, y, toward, diameter=d)
    if rng.random() < 0.5:
        return shapes, truth
    rim = props._jitter(rng, (0.88, 0.88, 0.86), 0.08)
    roof = props._shade(rim, float(rng.uniform(0.55, 0.95)))
    h = shapes[0].height_m
    t = np.asarray(toward, float)
    c = np.array([x, y])
    shapes = [Shape("disc", c[None], rim, h, d / 2, wall=props._shade(rim, 0.7)),
              Shape("disc", c[None], props._shade(roof, 0.45), h + 0.01, 0.94 * d / 2, shadow=False),
              Shape("disc", (c - 0.12 * d / 2 * t)[None], roof, h + 0.02, 0.86 * d / 2, shadow=False)]
    return shapes, truth


def tank_farm(scene: Scene, rng: np.random.Generator, half: float, toward) -> None:
    """One or two blocks of large tanks in rows inside earth bunds, with pipe racks between them."""
    ang = float(rng.uniform(0, 180)) if rng.random() < 0.7 else 0.0
    a = math.radians(ang)
    ux, uy = np.array([math.cos(a), math.sin(a)]), np.array([-math.sin(a), math.cos(a)])
    for _ in range(int(rng.integers(1, 3))):
        d = float(np.exp(rng.uniform(math.log(8), math.log(45))))
        nx, ny = int(rng.integers(1, 6)), int(rng.integers(1, 4))
        step = d * float(rng.uniform(1.25, 1.9))
        c0 = rng.uniform(-0.5 * half, 0.5 * half, 2)
        bund = props._jitter(rng, (0.62, 0.6, 0.52), 0.12)
        w, h = nx * step + 0.3 * d, ny * step + 0.3 * d
        pad = rect(c0[0], c0[1], w, h, ang)
        scene.add([Shape("poly", pad, props._jitter(rng, (0.66, 0.64, 0.58), 0.1), layer=1)])
        scene.add(props.wall_segments(pad, bund, height=1.5, width=max(1.5, 0.08 * d), gate=None))
        for i in range(nx):
            for j in range(ny):
                if rng.random() < 0.12 and nx * ny > 1:
                    continue
                p = c0 + (i - (nx - 1) / 2) * step * ux + (j - (ny - 1) / 2) * step * uy
                dd = d * float(rng.uniform(0.85, 1.0))
                sh, truth = floating_roof_tank(rng, float(p[0]), float(p[1]), dd, toward)
                scene.add(sh, truth)
        if rng.random() < 0.6:  # a pipe rack along one side
            p = c0 + (h / 2 + 2.0) * uy
            scene.add([Shape("poly", rect(p[0], p[1], 1.2, w, ang + 90), (0.45, 0.45, 0.46), 2.0)])


def _ground(scene: Scene, rng, half: float, pal) -> None:
    """Random ground cover over [-half, half]^2: fields, a yard, a road."""
    ang = float(rng.uniform(0, 180))
    for _ in range(int(rng.integers(1, 4))):
        c = rng.uniform(-half, half, 2)
        color = props._jitter(rng, pal["fields"][rng.integers(len(pal["fields"]))], 0.1)
        stripe = (float(rng.uniform(0.5, 1.5)), ang, float(rng.uniform(0.0, 0.15))) if rng.random() < 0.7 else None
        scene.add([Shape("poly", rect(c[0], c[1], rng.uniform(half, 3 * half), rng.uniform(half, 3 * half), ang),
                         color, layer=0, stripe=stripe)])
    if rng.random() < 0.75:  # a concrete / dirt yard: where workshops keep their kit
        c = rng.uniform(-half / 2, half / 2, 2)
        color = props._jitter(rng, [(0.62, 0.61, 0.58), (0.5, 0.44, 0.36), (0.7, 0.69, 0.66)][rng.integers(3)], 0.1)
        poly = rect(c[0], c[1], rng.uniform(half, 2.5 * half), rng.uniform(half, 2.5 * half), ang + rng.uniform(-5, 5))
        scene.add([Shape("poly", poly, color, layer=1)])
        if rng.random() < 0.5:
            scene.add(props.wall_segments(poly, props._jitter(rng, (0.8, 0.78, 0.74)), gate=int(rng.integers(4))))
    if rng.random() < 0.5:
        c = rng.uniform(-half, half)
        w = float(rng.uniform(3, 8))
        color = props._jitter(rng, (0.30, 0.30, 0.31) if rng.random() < 0.6 else (0.62, 0.61, 0.58))
        pts = rect(c, 0, w, 4 * half, ang + 90 * rng.integers(2))
        scene.add([Shape("poly", pts, color, layer=2)])


#: room each kind of hard negative or clutter takes on a tile (m): its size, not a flat 3 m, so that a
#: small tile still holds several
CLUTTER_RADIUS_M = {"planter": 2.0, "manhole": 0.5, "silo": 3.5, "car": 2.5, "haystack": 2.2, "cistern": 2.5,
                    "tyre_pile": 2.5, "solar_heater": 1.5, "tree": 3.0, "scrap": 2.5}


def tile_scene(rng: np.random.Generator, half: float, toward, season: str, negative_only: bool,
               ground: bool = True, clutter: int = 7) -> Scene:
    """A random scene over [-half, half]^2 metres (the tile plus a margin). ``ground=False`` leaves out
    ground cover and buildings (for painting onto a real background, which has its own); ``clutter``: at
    most this many hard negatives and clutter items (0 to ``clutter``, uniformly)."""
    pal = PALETTES[season]
    scene = Scene()
    if ground:
        _ground(scene, rng, half, pal)
    taken: list[tuple[float, float, float]] = []

    def spot(radius: float, spread: float = 0.8):
        for _ in range(30):
            x, y = rng.uniform(-spread * half, spread * half, 2)
            if all(math.hypot(x - a, y - b) > radius + r for a, b, r in taken):
                taken.append((x, y, radius))
                return float(x), float(y)
        return None

    for _ in range(int(rng.integers(0, 6)) if ground else 0):  # gravel, puddles, oil stains, weeds
        x, y = rng.uniform(-half, half, 2)
        scene.add([props.ground_patch(rng, float(x), float(y), float(rng.uniform(2, 12)), props.PATCH_COLORS)])
    if not negative_only:  # labelled objects first: on a small tile, buildings would leave them no room
        for _ in range(int(rng.integers(1, 7))):
            cls = CLASSES[rng.choice(3, p=[0.38, 0.32, 0.30])]  # chimneys are small and rare: weight them up
            makers = props.LABELLED_MAKERS[cls]
            s = spot({"tank": 3.5, "chimney": 1.5, "drum_stockpile": 4.5}[cls], 0.6)
            if s:
                maker = makers[rng.integers(len(makers))]
                extra = {"styles": props.TILE_DRUM_STYLES} if cls == "drum_stockpile" else {}
                scene.add(*maker(rng, *s, toward, **extra))
    for _ in range(int(rng.integers(0, 4)) if ground else 0):
        s = spot(8)
        if s:
            ang = float(rng.uniform(0, 180))
            shapes = props.building(rng, *s, float(rng.uniform(5, 16)), float(rng.uniform(5, 20)), ang, toward)
            scene.add(shapes)
            if rng.random() < 0.4:  # a solar water heater on the roof
                scene.add(*props.solar_heater(rng, *s, ang, shapes[0].height_m))
    kinds = list(props.DISTRACTOR_MAKERS) + ["tree", "scrap"]
    weights = np.array([0.18, 0.08, 0.07, 0.12, 0.06, 0.1, 0.08, 0.08, 0.16, 0.07])
    for _ in range(int(rng.integers(0, clutter + 1))):  # hard negatives and clutter
        kind = str(rng.choice(kinds, p=weights / weights.sum()))
        s = spot(CLUTTER_RADIUS_M[kind])
        if s is None:
            continue
        if kind == "tree":
            scene.add(props.tree(rng, *s, pal["tree"], toward))
        elif kind == "scrap":
            scene.add(props.scrap_heap(rng, *s, float(rng.uniform(2, 5))))
        else:
            scene.add(*props.DISTRACTOR_MAKERS[kind](rng, *s, toward))
    return scene


def boxes_for(scene: Scene, camera: Camera, pose: Pose, uv_offset: tuple[float, float], shape: tuple[int, int],
              min_visible: float = 0.5, min_px: float = 3.0) -> np.ndarray:
    """YOLO-ready boxes (N x 5: class index, x0, y0, x1, y1 in tile pixels) of the labelled objects:
    bounds of the projected base and top outlines, clipped; dropped if a side is under ``min_px`` or
    less than ``min_visible`` of the box is inside (unless it is a chimney whose top is inside)."""
    rows, cols = shape
    out = []
    for obj in scene.labelled():
        poly = np.asarray(obj.polygon, float)
        pts = np.vstack([np.column_stack([poly, np.zeros(len(poly))]),
                         np.column_stack([poly, np.full(len(poly), obj.height_m)])])
        uv = project(camera, pose, pts) - np.array(uv_offset)
        if not np.isfinite(uv).all():
            continue
        x0, y0 = uv.min(axis=0)
        x1, y1 = uv.max(axis=0)
        cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, cols), min(y1, rows)
        if cx1 - cx0 < min_px or cy1 - cy0 < min_px:
            continue
        top = project(camera, pose, np.array([[*poly.mean(axis=0), obj.height_m]]))[0] - np.array(uv_offset)
        top_inside = 0 <= top[0] < cols and 0 <= top[1] < rows
        if (cx1 - cx0) * (cy1 - cy0) < min_visible * (x1 - x0) * (y1 - y0) and not (obj.cls == "chimney"
                                                                                  and top_inside):
            continue  # mostly outside; a chimney whose top is in view still counts
        out.append([CLASSES.index(obj.cls), cx0, cy0, cx1, cy1])
    return np.array(out, float).reshape(-1, 5)


@functools.lru_cache(maxsize=8)
def _load_background(path: str) -> np.ndarray:
    """A background photo as RGB uint8, decoded at half size (cached per process)."""
    img = cv2.imread(path, cv2.IMREAD_REDUCED_COLOR_2)
    if img is None:
        raise DatasetError("background image could not be read", path=path, hint="remove it or convert it to JPEG/PNG")
    return img[:, :, ::-1]


def background_crop(rng: np.random.Generator, path: Path, rows: int, cols: int,
                    zoom: float | None = None) -> np.ndarray:
    """A random crop of a real photo, turned and flipped, as float32 0..1 (rows x cols x 3).

    ``zoom``: output pixels per decoded (half-size) photo pixel, i.e. the photo's GSD x 2 / the tile's GSD,
    when the photo's GSD is known: the ground keeps its true scale (jittered by 10 %). Unknown: a random
    scale of 0.6..1.6.
    """
    img = _load_background(str(path))
    scale = float(rng.uniform(0.6, 1.6)) if zoom is None else zoom * float(rng.uniform(0.9, 1.1))
    ch, cw = min(img.shape[0], int(rows / scale)), min(img.shape[1], int(cols / scale))
    r0 = int(rng.integers(0, img.shape[0] - ch + 1))
    c0 = int(rng.integers(0, img.shape[1] - cw + 1))
    crop = np.rot90(img[r0:r0 + ch, c0:c0 + cw], int(rng.integers(4)))
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    crop = cv2.resize(np.ascontiguousarray(crop), (cols, rows), interpolation=cv2.INTER_AREA)
    return crop.astype(np.float32) / 255.0


def list_images(folder: str | Path) -> list[Path]:
    """Image files (jpg, jpeg, png, tif) under ``folder``, sorted; raises if there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError("not a folder of images", path=folder, hint="give a folder holding JPEG/PNG photos")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".tif", ".tiff"))
    if not files:
        raise DatasetError("no images (.jpg, .png, .tif) in the folder", path=folder)
    return files


def render_tile(spec: TileSpec, backgrounds: Sequence[Path] = (), backgrounds_gsd_m: float | None = None) -> Tile:
    """Render one tile (deterministic in ``spec`` and the ``backgrounds`` list). When backgrounds are given,
    half the tiles paint their objects onto a random crop of one of them instead of synthetic ground, at
    the ground's true scale when ``backgrounds_gsd_m`` (their GSD, m/px) is known."""
    rng = np.random.default_rng([spec.seed, 91])
    climate = climate_for(rng)
    toward = climate.sun.toward()
    n = native_size(spec)
    extent = n * spec.gsd_m
    half = 0.65 * extent
    real_ground = bool(backgrounds) and rng.random() < 0.5
    scene = tile_scene(rng, half, toward, climate.season, spec.negative_only, ground=not real_ground,
                       clutter=spec.clutter)
    if spec.tank_farm:
        tank_farm(scene, rng, half, toward)
    f = spec.height_m / spec.gsd_m
    tx, ty = spec.tan_xy
    # camera sits so that the tile centre (0, 0) is seen tan_xy off nadir; image top = north
    pose = Pose(-tx * spec.height_m, -ty * spec.height_m, spec.height_m, 0.0)
    camera = Camera(n, n, f, n / 2 - f * tx, n / 2 + f * ty)
    side = int(round(2 * half / spec.gsd_m))
    view = GridView(-half, half, spec.gsd_m, side, side)
    zoom = 2 * backgrounds_gsd_m / spec.gsd_m if backgrounds_gsd_m else None  # backgrounds decode at half size
    base = (background_crop(rng, backgrounds[int(rng.integers(len(backgrounds)))], side, side, zoom)
            if real_ground else None)
    noise = None if real_ground else NoiseField(
        spec.seed, (-half, -half, half, half),
        octaves=((30.0, 0.10 * rng.uniform(0.3, 1.5)), (5.0, 0.06 * rng.uniform(0.3, 1.5)),
                 (0.7, 0.05 * rng.uniform(0.3, 1.5))))
    layers = paint(scene.shapes, scene.bounds_array(), view, climate.style(), noise, base=base,
                   ground_step=2 if spec.gsd_m <= 0.05 else 1)
    img = cast(layers, view, camera, pose, toward, coarse=2)
    faults = CameraFaults.random(rng, climate.weather)
    if real_ground:  # the photo already went through a camera: add little
        faults = replace(faults, vignetting=0.0, haze=0.0, noise=faults.noise / 2, blur_px=min(faults.blur_px, 0.6))
    pixels = camera_faults(img, faults, rng)
    ok, buf = cv2.imencode(".jpg", pixels[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, spec.jpeg_quality])
    pixels = cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1]
    tile = Tile(np.ascontiguousarray(pixels), boxes_for(scene, camera, pose, (0.0, 0.0), (n, n)))
    return to_model_grid(tile, spec.imgsz)


def native_size(spec: TileSpec) -> int:
    """Pixels across the tile as the camera saw it: ``imgsz``, or, with ``model_gsd_m`` set, the size that
    covers the same ground (``imgsz * model_gsd_m``) at the tile's own GSD."""
    if spec.model_gsd_m is None or spec.tank_farm:
        return spec.imgsz
    return max(32, int(round(spec.imgsz * spec.model_gsd_m / spec.gsd_m)))


def to_model_grid(tile: Tile, imgsz: int) -> Tile:
    """A tile rendered at its own GSD resampled to ``imgsz`` px, as :mod:`skysieve.detect.sliced` resamples a
    mosaic to the model's GSD: averaged down (a 2 cm mosaic at 4 cm is sharp), bilinear up (an 8 cm mosaic
    at 4 cm is soft, with JPEG blocks and edges twice as wide), so that training sees what detection sees.
    OpenCV's area and bilinear kernels here agree with :func:`skysieve.detect.sliced.resample_window` to a
    grey level on average (tests/datasets/test_dataset.py)."""
    n = tile.pixels.shape[0]
    if n == imgsz:
        return tile
    interp = cv2.INTER_AREA if n > imgsz else cv2.INTER_LINEAR
    pixels = cv2.resize(tile.pixels, (imgsz, imgsz), interpolation=interp)
    boxes = tile.boxes.astype(np.float64, copy=True)
    boxes[:, 1:] *= imgsz / n
    return Tile(np.ascontiguousarray(pixels), boxes)
