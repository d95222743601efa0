"""``fly``: a simulated lawn-mower drone survey over a synthetic world, written like a real DJI flight.

Each photo is rendered from the world's scene through ``skysieve.camera`` (the module ingest and the
mosaic use), with relief displacement, vignetting, blur, noise and JPEG compression, and carries
EXIF + DJI XMP (``dji_meta.write_dji_jpeg``): GPS position (noised by ``gps_noise_m``), GPSAltitude
above sea level, RelativeAltitude above take-off, gimbal and flight angles. Beside the images:

- ``poses.json``: per image the true pose and the recorded (noised) one, in the world's projected
  CRS (x, y metres; z height above ground) and WGS 84, plus the camera;
- ``poses.csv``: the same as a table; ``flight.json``: the plan and a summary.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from skysieve.atomic import write_bytes, write_json, write_text
from skysieve.camera import Camera, Pose, footprint
from skysieve.camera_specs import CAMERAS as CAMERA_TABLE
from skysieve.crs import from_lonlat, parse_crs, to_lonlat
from skysieve.datasets.dji_meta import DJIMeta, write_dji_jpeg
from skysieve.datasets.optics import CameraFaults, camera_faults, cast
from skysieve.datasets.paint import GridView, NoiseField, paint
from skysieve.datasets.parallel import cv2_threads, default_workers, ordered_map
from skysieve.datasets.world import LoadedWorld, load_world
from skysieve.errors import DatasetError
from skysieve.progress import progress

__all__ = ["CameraSpec", "CAMERAS", "FlightPlan", "FlightInfo", "PhotoPose", "plan_survey", "fly", "render_photo"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CameraSpec:
    """A drone camera as its EXIF describes it: full-resolution size (px), focal length and sensor width (mm)."""

    model: str
    width_px: int
    height_px: int
    focal_mm: float
    sensor_width_mm: float
    focal_35mm: int

    def camera(self, scale: float = 1.0) -> Camera:
        w, h = int(round(self.width_px * scale)), int(round(self.height_px * scale))
        return Camera.from_sensor(w, h, self.focal_mm, self.sensor_width_mm)


def _shooting(model: str, width_px: int, height_px: int) -> CameraSpec:
    """A camera of the one table (:mod:`skysieve.camera_specs`, which ingest reads too) in one image mode."""
    s = CAMERA_TABLE[model]
    return CameraSpec(model, width_px, height_px, s.focal_mm, s.covered_sensor_mm(width_px, height_px)[0],
                      s.focal_35mm)


CAMERAS = {
    "FC300S": _shooting("FC300S", 4000, 2250),  # Phantom 3 Advanced/Pro, 16:9
    "FC6310": _shooting("FC6310", 5472, 3648),  # Phantom 4 Pro
    "FC220": _shooting("FC220", 4000, 3000),  # Mavic Pro
}


@dataclass(frozen=True)
class FlightPlan:
    """A survey: height above ground (m), forward overlap and sidelap (0..1), camera model and image
    ``scale`` (1 = full resolution; 0.25 keeps tests fast), GPS noise (m, 1 sigma, horizontal),
    gimbal tilt jitter (deg, 1 sigma), the surveyed ``area_m`` (xmin, ymin, xmax, ymax metres from
    the world's south-west corner; None = the whole world), line direction (deg from north)."""

    altitude_m: float = 60.0
    overlap: float = 0.75
    sidelap: float = 0.65
    camera: str = "FC300S"
    gps_noise_m: float = 1.5
    seed: int = 0
    scale: float = 0.25
    tilt_deg: float = 1.0
    area_m: tuple[float, float, float, float] | None = None
    heading_deg: float = 0.0
    jpeg_quality: int = 90


@dataclass(frozen=True)
class PhotoPose:
    """One photo: file name, true pose and recorded pose (projected CRS x/y, z above ground)."""

    name: str
    true: Pose
    recorded: Pose


@dataclass(frozen=True)
class FlightInfo:
    """Where a simulated flight is: its images folder, poses and the world it flew over."""

    root: Path
    images: Path
    poses_json: Path
    poses_csv: Path
    world: Path
    n_images: int
    crs: str
    camera: Camera
    ground_elevation_m: float


def plan_survey(plan: FlightPlan, camera: Camera, area: tuple[float, float, float, float]) -> list[Pose]:
    """Nominal lawn-mower poses (scene frame) covering ``area``: lines along ``heading_deg``, the image
    top pointing along the direction of travel (so alternate lines are turned 180 degrees)."""
    if not (0 <= plan.overlap < 0.98 and 0 <= plan.sidelap < 0.98):
        raise DatasetError(f"overlap {plan.overlap} / sidelap {plan.sidelap} out of range", hint="use 0 to 0.95")
    if plan.altitude_m <= 5:
        raise DatasetError(f"altitude {plan.altitude_m} m is too low", hint="fly at least 10 m above ground")
    gsd = camera.gsd_m(plan.altitude_m)
    along = camera.height_px * gsd * (1 - plan.overlap)
    across = camera.width_px * gsd * (1 - plan.sidelap)
    xmin, ymin, xmax, ymax = area
    h = math.radians(plan.heading_deg)
    fwd, right = np.array([math.sin(h), math.cos(h)]), np.array([math.cos(h), -math.sin(h)])
    centre = np.array([(xmin + xmax) / 2, (ymin + ymax) / 2])
    corners = np.array([[xmin, ymin], [xmax, ymin], [xmax, ymax], [xmin, ymax]]) - centre
    a_ext = np.abs(corners @ fwd).max()
    c_ext = np.abs(corners @ right).max()
    n_lines = max(1, int(math.ceil(2 * c_ext / across)) + 1)
    n_shots = max(1, int(math.ceil(2 * a_ext / along)) + 1)
    poses = []
    for i in range(n_lines):
        c = (i - (n_lines - 1) / 2) * across
        sign = 1 if i % 2 == 0 else -1
        for j in range(n_shots):
            a = sign * (j - (n_shots - 1) / 2) * along
            p = centre + a * fwd + c * right
            yaw = (plan.heading_deg + (0 if sign > 0 else 180) + 180) % 360 - 180
            poses.append(Pose(float(p[0]), float(p[1]), plan.altitude_m, float(yaw)))
    return poses


def render_photo(world: LoadedWorld, camera: Camera, pose: Pose, rng: np.random.Generator,
                 noise: NoiseField | None = None, faults: CameraFaults | None = None) -> np.ndarray:
    """The photo (rows x cols x 3 uint8 RGB) a camera at ``pose`` (scene frame) takes of ``world``."""
    fp = np.asarray(footprint(camera, pose).exterior.coords)
    gsd = camera.gsd_m(pose.z) * 0.85
    pad = 4 * gsd
    x0, y0 = fp[:, 0].min() - pad, fp[:, 1].min() - pad
    x1, y1 = fp[:, 0].max() + pad, fp[:, 1].max() + pad
    view = GridView(float(x0), float(y1), gsd, int(math.ceil((y1 - y0) / gsd)), int(math.ceil((x1 - x0) / gsd)))
    layers = paint(world.scene.shapes, world.bounds, view, world.climate.style(), noise)
    coarse = 2 if camera.width_px * camera.height_px > 300_000 else 1
    img = cast(layers, view, camera, pose, world.climate.sun.toward(), coarse=coarse)
    faults = faults or CameraFaults.random(rng, world.climate.weather)
    return camera_faults(img, faults, rng)


def true_north_yaw_deg(crs, x: float, y: float, grid_yaw_deg: float) -> float:
    """A heading clockwise from ``crs``'s grid north at (x, y) turned into one from true north (what a
    DJI drone records); degrees in [-180, 180). The two differ by the meridian convergence."""
    lon, lat = to_lonlat(crs, x, y)
    x1, y1 = from_lonlat(crs, lon, lat + 1e-4)
    north_on_grid = math.degrees(math.atan2(x1 - x, y1 - y))
    return (grid_yaw_deg - north_on_grid + 180) % 360 - 180


def _noisy(pose: Pose, rng: np.random.Generator, sigma_m: float) -> Pose:
    if sigma_m <= 0:
        return pose
    dx, dy = rng.normal(0, sigma_m, 2)
    return replace(pose, x=pose.x + float(dx), y=pose.y + float(dy), z=pose.z + float(rng.normal(0, 0.1 * sigma_m)))


_WORLD: dict = {}


def _init_world(world_dir: str) -> None:
    """Per process: rebuild the world's scene and texture field once."""
    world = load_world(world_dir)
    _WORLD.update(world=world, noise=NoiseField(world.info.seed, (0, 0, world.info.size_m, world.info.size_m)))


def _shoot(job: tuple) -> bytes:
    camera, pose, seeds, dji, quality, faults = job
    with cv2_threads(1):
        pixels = render_photo(_WORLD["world"], camera, pose, np.random.default_rng(list(seeds)), _WORLD["noise"],
                              faults)
    return write_dji_jpeg(None, pixels, dji, quality=quality)


def fly(world_dir: str | Path, out_dir: str | Path, plan: FlightPlan = FlightPlan(),
        workers: int | None = None) -> FlightInfo:
    """Fly ``plan`` over the world at ``world_dir``; write DJI-style JPEGs and true/recorded poses to ``out_dir``.

    Deterministic in (world, plan), whatever ``workers`` (processes rendering photos; default up to 2).
    Images are written atomically one by one, the pose files last; a rerun into the same folder keeps
    the photos already there (write a changed plan to a new folder).
    """
    world = load_world(world_dir)
    if plan.camera not in CAMERAS:
        raise DatasetError(f"unknown camera {plan.camera!r}", hint=f"use one of {', '.join(CAMERAS)}")
    if not 0.02 <= plan.scale <= 1.0:
        raise DatasetError(f"image scale {plan.scale} out of range", hint="use 0.02 to 1")
    spec = CAMERAS[plan.camera]
    camera = spec.camera(plan.scale)
    info = world.info
    size = info.size_m
    area = plan.area_m or (0.0, 0.0, size, size)
    if not (0 <= area[0] < area[2] <= size and 0 <= area[1] < area[3] <= size):
        raise DatasetError(f"survey area {area} is not inside the {size:g} m world", hint="give xmin,ymin,xmax,ymax "
                           "in metres from the world's south-west corner")
    nominal = plan_survey(plan, camera, area)
    rng = np.random.default_rng([info.seed, plan.seed, 4242])
    meta = json.loads(info.meta.read_text())
    ground_elev = float(meta.get("ground_elevation_m", 900.0))
    crs = parse_crs(info.crs)
    origin = np.array(info.origin_xy)
    root = Path(out_dir)
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    start = datetime(2026, 4, 10, 10, 0, 0) + timedelta(minutes=int(rng.integers(0, 240)))
    records: list[PhotoPose] = []
    jobs = []
    flight_faults = CameraFaults.random(rng, world.climate.weather)
    for i, nom in enumerate(nominal):  # every random draw of the plan first, in order: deterministic
        true = replace(nom, pitch_deg=-90.0 + float(rng.normal(0, plan.tilt_deg)),
                       roll_deg=float(rng.normal(0, plan.tilt_deg)),
                       yaw_deg=nom.yaw_deg + float(rng.normal(0, 1.0)),
                       z=nom.z + float(rng.normal(0, 0.3)))
        rec = _noisy(true, rng, plan.gps_noise_m)
        t_abs = replace(true, x=true.x + origin[0], y=true.y + origin[1])
        r_abs = replace(rec, x=rec.x + origin[0], y=rec.y + origin[1])
        lon, lat = to_lonlat(crs, r_abs.x, r_abs.y)
        yaw = true_north_yaw_deg(crs, r_abs.x, r_abs.y, rec.yaw_deg)
        dji = DJIMeta(lon=float(lon), lat=float(lat), gps_altitude_m=round(ground_elev + rec.z, 3),
                      relative_altitude_m=round(rec.z, 2), gimbal_yaw_deg=round(yaw, 2),
                      gimbal_pitch_deg=round(rec.pitch_deg, 2), gimbal_roll_deg=round(rec.roll_deg, 2),
                      flight_yaw_deg=round(yaw, 2), flight_pitch_deg=round(float(rng.normal(0, 2)), 2),
                      flight_roll_deg=round(float(rng.normal(0, 2)), 2), model=spec.model, focal_length_mm=spec.focal_mm,
                      focal_length_35mm=spec.focal_35mm, taken_at=start + timedelta(seconds=3 * i))
        records.append(PhotoPose(f"DJI_{i + 1:04d}.JPG", t_abs, r_abs))
        # one camera, one set of faults per flight; exposure drifts a little from photo to photo
        faults = replace(flight_faults, gain=flight_faults.gain * float(rng.uniform(0.97, 1.03)))
        jobs.append((camera, true, (info.seed, plan.seed, i), dji, plan.jpeg_quality, faults))
    workers = default_workers(sum(not (images / r.name).is_file() for r in records)) if workers is None else workers
    # a rerun of the same plan resumes: photos already written (atomically, so whole) are kept
    todo = [(r, j) for r, j in zip(records, jobs, strict=True) if not (images / r.name).is_file()]
    shots = ordered_map(_shoot, [j for _, j in todo], workers, _init_world, (str(info.root),))
    for (rec_, _), data in zip(todo, progress(shots, "flying", total=len(todo), unit="img"), strict=True):
        write_bytes(images / rec_.name, data)
    _write_poses(root, records, crs, camera, spec, ground_elev, info, plan)
    log.info("flight %s: %d images over world %s", root, len(records), info.root)
    return FlightInfo(root, images, root / "poses.json", root / "poses.csv", info.root, len(records), info.crs,
                      camera, ground_elev)


def _write_poses(root: Path, records: list[PhotoPose], crs, camera: Camera, spec: CameraSpec, ground_elev: float,
                 info, plan: FlightPlan) -> None:
    rows = []
    for r in records:
        tl = to_lonlat(crs, r.true.x, r.true.y)
        rl = to_lonlat(crs, r.recorded.x, r.recorded.y)
        rows.append({"name": r.name, "true": {**asdict(r.true), "lon": tl[0], "lat": tl[1]},
                     "recorded": {**asdict(r.recorded), "lon": rl[0], "lat": rl[1]}})
    write_json(root / "poses.json", {"crs": info.crs, "ground_elevation_m": ground_elev,
                                     "camera": {**asdict(camera), "model": spec.model}, "images": rows})
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["name", "x", "y", "z", "yaw_deg", "pitch_deg", "roll_deg", "rec_x", "rec_y", "rec_z"])
    for r in records:
        t, q = r.true, r.recorded
        w.writerow([r.name] + [f"{v:.4f}" for v in (t.x, t.y, t.z, t.yaw_deg, t.pitch_deg, t.roll_deg,
                                                     q.x, q.y, q.z)])
    write_text(root / "poses.csv", buf.getvalue())
    write_json(root / "flight.json", {"world": str(info.root), "world_seed": info.seed, "plan": asdict(plan),
                                      "n_images": len(records), "crs": info.crs})
