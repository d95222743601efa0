"""Flight ingest: photos in a folder -> the ``images`` layer, ``flights/<id>/manifest.json`` and a coverage picture.

For each photo: hash, EXIF/XMP, a reduced decode (quality, and features when the height must be
estimated), then flight-wide decisions (blur against the neighbouring frames and the flight, height
above ground, yaw from the direction of travel), the ground footprint through :mod:`skysieve.camera`, its ground
sample distance and the grid cells it touches. Bad photos are rejected one by one with a reason
(``REASONS``); the batch goes on.

Kill safety: nothing is written until every photo is analysed; rows then go in transactions of
``commit_every`` rows, the manifest and the picture by atomic rename. A rerun skips photos whose content hash
is already in the workspace (the same image id: resumed; another id: a duplicate), and judges the new
photos against the flight's stored ones (sharpness, take-off altitude, estimated height).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from PIL import Image, UnidentifiedImageError

from skysieve import atomic
from skysieve.camera import Pose, camera_pose_from_row, footprint, off_nadir_deg
from skysieve.cpus import usable_cpus
from skysieve.errors import ImageReadError, MetadataError, UsageError
from skysieve.progress import progress
from skysieve.schema import IMAGES
from skysieve.workspace import Workspace

from .altitude import AltitudeSettings, Features, detect_features, estimate_heights, takeoff_altitude
from .cameras import CameraInfo, camera_info
from .exif import PhotoMeta, is_jpeg, iso_time, read_meta
from .heading import choose_yaw, grid_yaw_deg, travel_headings
from .quality import (
    FrameStats,
    QualitySettings,
    blur_verdicts,
    exposure_problem,
    frame_stats,
    reduced_decode,
)

__all__ = ["IngestSettings", "IngestResult", "ingest_flight", "camera_pose_from_row", "flight_id_for", "REASONS",
           "PHOTO_SUFFIXES"]

log = logging.getLogger(__name__)

#: rejection reasons (the ``images.reason`` column starts with one of these, then ": detail")
REASONS = ("not_image", "unsupported", "unreadable", "duplicate", "no_gps", "oblique", "dark", "washed_out",
           "blurred", "no_camera", "no_altitude", "too_low")
#: file name endings ingest looks at; other files in the folder (videos, subtitles, logs) are ignored
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".jpe", ".dng", ".tif", ".tiff", ".png")
_GENERIC_FOLDERS = re.compile(r"^(images?|photos?|dcim|img|pictures|\d{3}media)$", re.IGNORECASE)


@dataclass(frozen=True)
class IngestSettings:
    """``[ingest]`` table of skysieve.toml: thresholds of the checks (degrees, metres, grey levels 0-255)."""

    max_off_nadir_deg: float = 15.0
    reduce_factor: int = 4  # quality checks decode at 1/2, 1/4 or 1/8 of each side
    dark_p98: float = 40.0
    bright_p02: float = 215.0
    min_width_px: int = 800  # ... but keep at least this many columns
    blur_ratio: float = 0.4  # blurred: sharpness below this times its neighbours' median ...
    edge_ratio: float = 0.75  # ... and edge sharpness below this times the flight's median
    min_height_m: float = 5.0
    min_climb_m: float = 10.0
    coverage_png: bool = True
    commit_every: int = 50  # rows per database transaction
    workers: int = 0  # threads decoding photos (0: up to 4, one per CPU)

    def quality(self) -> QualitySettings:
        return QualitySettings(reduce_factor=self.reduce_factor, min_width_px=self.min_width_px, dark_p98=self.dark_p98,
                               bright_p02=self.bright_p02, blur_ratio=self.blur_ratio, edge_ratio=self.edge_ratio)

    def altitude(self) -> AltitudeSettings:
        return AltitudeSettings(min_height_m=self.min_height_m, min_climb_m=self.min_climb_m)


@dataclass
class _Photo:
    """Working record of one file during a run (private; mutable while decisions are made)."""

    rel: str
    path: Path
    image_id: str
    sha256: str | None = None
    meta: PhotoMeta | None = None
    stats: FrameStats | None = None
    features: Features | None = None
    cam: CameraInfo | None = None
    reject: tuple[str, str] | None = None
    warnings: list[str] = field(default_factory=list)
    x: float | None = None
    y: float | None = None
    height_m: float | None = None
    height_source: str | None = None
    yaw_grid_deg: float | None = None
    yaw_source: str | None = None
    pitch_deg: float = -90.0
    roll_deg: float = 0.0
    footprint: shapely.Polygon | None = None
    gsd_m: float | None = None
    cells: list[str] = field(default_factory=list)
    duplicate_of: str | None = None

    def fail(self, code: str, detail: str) -> None:
        if self.reject is None:
            self.reject = (code, detail)

    @property
    def ok(self) -> bool:
        return self.reject is None


@dataclass(frozen=True)
class IngestResult:
    """What one ``ingest`` run did. ``rejected`` counts by reason code; ``coverage`` is cell id -> share
    (0-1) of the cell under at least one accepted footprint of this flight; ``mean_gsd_m`` in metres/px."""

    flight_id: str
    photos: int
    accepted: int
    rejected: dict[str, int]
    skipped: int
    ignored: int
    coverage: dict[str, float]
    mean_gsd_m: float | None
    altitude_sources: dict[str, int]
    warnings: int
    manifest: Path
    coverage_png: Path | None

    def summary(self) -> dict[str, Any]:
        d = asdict(self)
        d["manifest"] = str(self.manifest)
        d["coverage_png"] = str(self.coverage_png) if self.coverage_png else None
        return d

    def text(self) -> str:
        rej = ", ".join(f"{k} {v}" for k, v in sorted(self.rejected.items())) or "none"
        shown = sorted(self.coverage.items(), key=lambda kv: -kv[1])[:6]
        cells = ", ".join(f"{c} {s:.0%}" for c, s in shown) or "none"
        if len(self.coverage) > len(shown):
            cells += f", ... {len(self.coverage) - len(shown)} more (see the manifest)"
        gsd = f"{self.mean_gsd_m * 100:.2f} cm/px" if self.mean_gsd_m else "n/a"
        src = ", ".join(f"{k} {v}" for k, v in sorted(self.altitude_sources.items())) or "n/a"
        extra = f"; {self.skipped} already ingested" if self.skipped else ""
        extra += f"; {self.ignored} non-photo files ignored" if self.ignored else ""
        return (f"flight {self.flight_id}: {self.photos} photos, {self.accepted} accepted, "
                f"{sum(self.rejected.values())} rejected ({rej}){extra}; height from {src}; "
                f"{len(self.coverage)} cells covered ({cells}); mean GSD {gsd}; manifest {self.manifest}")


# -- public helpers ------------------------------------------------------------------------------------------
def flight_id_for(flight_dir: Path) -> str:
    """Default flight id: the folder's name, or its parent's for generic names (``images``, ``100MEDIA``)."""
    flight_dir = Path(flight_dir).resolve()
    name = flight_dir.name
    if _GENERIC_FOLDERS.match(name) and flight_dir.parent.name:
        name = flight_dir.parent.name
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "flight"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _list_files(flight_dir: Path) -> tuple[list[Path], int]:
    """Photo-named files under ``flight_dir`` (sorted, hidden ones skipped) and how many others were ignored."""
    photos, ignored = [], 0
    for p in sorted(flight_dir.rglob("*")):
        if any(part.startswith(".") for part in p.relative_to(flight_dir).parts) or not p.is_file():
            continue
        if p.suffix.lower() in PHOTO_SUFFIXES:
            photos.append(p)
        else:
            ignored += 1
    return photos, ignored


# -- per-photo analysis ----------------------------------------------------------------------------------------
def _analyse(ph: _Photo, data: bytes, settings: IngestSettings) -> None:
    """Metadata, early rejections and the reduced decode of one photo (fills ``ph``)."""
    if not is_jpeg(data[:4]):
        # ImportError: once ultralytics is imported, its patched Image.open tries to load a HEIF plugin
        # for files Pillow cannot identify and raises ImportError where that plugin is not installed
        try:
            with Image.open(ph.path) as img:
                fmt = img.format
        except (UnidentifiedImageError, ImportError, OSError, ValueError):
            ph.fail("not_image", "not an image file")
            return
        ph.fail("unsupported", f"{fmt} photo; only JPEG is ingested (export JPEGs from raw/DNG first)")
        return
    try:
        meta = read_meta(data, ph.path)
    except ImageReadError as e:
        ph.fail("unreadable", str(e.args[0]))
        return
    ph.meta = meta
    if not meta.has_gps:
        ph.fail("no_gps", "no GPS position in EXIF")
        return
    if meta.has_xmp:
        ph.pitch_deg = meta.gimbal_pitch_deg if meta.gimbal_pitch_deg is not None else -90.0
        ph.roll_deg = meta.gimbal_roll_deg or 0.0
    else:
        ph.warnings.append("no DJI XMP: assumed nadir")
    tilt = off_nadir_deg(Pose(0.0, 0.0, 1.0, 0.0, ph.pitch_deg, ph.roll_deg))
    if tilt > settings.max_off_nadir_deg:
        ph.fail("oblique", f"{tilt:.1f} degrees off nadir (limit {settings.max_off_nadir_deg:g})")
        return
    ph.cam = camera_info(meta.model, meta.width_px, meta.height_px, meta.focal_mm, meta.focal_35mm)
    if ph.cam is None:
        ph.fail("no_camera", f"unknown camera {meta.model!r} without a 35 mm-equivalent focal length")
        return
    if ph.cam.source == "focal35":
        ph.warnings.append(f"camera {ph.cam.model} not in the table: intrinsics from the 35 mm-equivalent focal")
    try:
        reduced = reduced_decode(data, settings.reduce_factor, settings.min_width_px)
    except ImageReadError as e:
        ph.fail("unreadable", str(e.args[0]))
        return
    ph.stats = frame_stats(reduced)
    problem = exposure_problem(ph.stats, settings.quality())
    if problem:
        ph.fail(*problem)
        return
    if meta.relative_altitude_m is None:  # the height may have to come from the images
        ph.features = detect_features(reduced.pixels, reduced.scale, settings.altitude())


def _read_and_analyse(files: list[Path], flight_dir: Path, flight_id: str, known: dict[str, str],
                      settings: IngestSettings) -> tuple[list[_Photo], int]:
    """Hash every file (in order, so duplicates are told apart) and analyse the new ones on worker threads.

    Pillow's decoder, hashlib and OpenCV release the GIL, so the threads decode in parallel. At most
    ``2 * workers`` files are held in memory at once. Returns the photos (in file order) and how many
    were skipped as already ingested.
    """
    workers = settings.workers or min(4, usable_cpus())
    photos: list[_Photo] = []
    skipped = 0
    seen: dict[str, str] = {}
    in_flight: deque[Future] = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ingest") as pool:
        for path in progress(files, desc=f"ingest {flight_id}", total=len(files), unit="photo"):
            rel = path.relative_to(flight_dir).as_posix()
            ph = _Photo(rel, path, f"{flight_id}/{rel}")
            try:
                data = path.read_bytes()
            except OSError as e:
                ph.fail("unreadable", f"cannot read the file: {e.strerror or e}")
                photos.append(ph)
                continue
            ph.sha256 = hashlib.sha256(data).hexdigest()
            first = known.get(ph.sha256) or seen.get(ph.sha256)
            if first == ph.image_id:
                skipped += 1
                continue
            photos.append(ph)
            if first is not None:
                ph.duplicate_of = first
                ph.fail("duplicate", f"same content as {first}")
                continue
            seen[ph.sha256] = ph.image_id
            in_flight.append(pool.submit(_analyse_safely, ph, data, settings))
            while len(in_flight) > 2 * workers:
                in_flight.popleft().result()
        for fut in in_flight:
            fut.result()
    return photos, skipped


def _analyse_safely(ph: _Photo, data: bytes, settings: IngestSettings) -> None:
    """:func:`_analyse`, but a photo that trips anything unforeseen (a library error on odd metadata) is
    rejected as unreadable, with the traceback in the log, instead of ending the batch."""
    try:
        _analyse(ph, data, settings)
    except Exception as e:  # noqa: BLE001 - one bad file must not abort the flight
        log.exception("unexpected error reading %s", ph.path)
        ph.fail("unreadable", f"unexpected error reading the file: {type(e).__name__}: {e}")


# -- flight-wide decisions -------------------------------------------------------------------------------------
def _stored_rows(ws: Workspace, flight_id: str) -> list[dict[str, Any]]:
    con = ws.gpkg.connection()
    cur = con.execute('SELECT image_id, sha256, taken_at, x, y, gps_altitude_m, altitude_m, altitude_source, '
                      'sharpness, status FROM "images" WHERE flight_id=?', (flight_id,))
    return [dict(r) for r in cur]


def _decide_heights(photos: list[_Photo], stored: list[dict[str, Any]], user_altitude_m: float | None,
                    settings: IngestSettings) -> dict[str, Any]:
    """Height above ground (and its source) for every photo still in the running; returns the evidence."""
    asettings = settings.altitude()
    placed = [p for p in photos if p.meta is not None and p.meta.has_gps]
    # take-off altitude from the whole flight (this run's photos and the stored ones), in capture order
    seq: list[tuple[str, float | None, float | None]] = [
        (iso_time(p.meta.taken_at) or "", p.meta.gps_altitude_m, p.meta.relative_altitude_m)
        for p in placed]
    seq += [(r["taken_at"] or "", r["gps_altitude_m"],
             r["altitude_m"] if r["altitude_source"] == "xmp_relative" else None) for r in stored]
    seq.sort(key=lambda t: t[0])
    takeoff = takeoff_altitude([s[1] for s in seq], [s[2] for s in seq], asettings)
    # image-based estimate for photos without XMP heights
    need = [p for p in photos if p.ok and p.features is not None]
    estimates: list[float | None] = []
    if need:
        estimates = estimate_heights([p.features for p in need], np.array([[p.x, p.y] for p in need]),
                                     [p.cam.camera().focal_px for p in need],
                                     [f"{p.cam.model}|{p.cam.width_px}x{p.cam.height_px}|{p.cam.focal_mm}" for p in need],
                                     asettings)
    prior = [r["altitude_m"] for r in stored if r["altitude_source"] == "image_estimate" and r["altitude_m"]]
    prior_m = float(np.median(prior)) if prior else None
    estimate_of = {id(p): (e if e is not None else prior_m) for p, e in zip(need, estimates, strict=True)}
    for p in photos:
        if not p.ok:
            continue
        m = p.meta
        est = estimate_of.get(id(p))
        if m.relative_altitude_m is not None:
            p.height_m, p.height_source = m.relative_altitude_m, "xmp_relative"
        elif takeoff is not None and m.gps_altitude_m is not None:
            h = m.gps_altitude_m - takeoff[0]
            if est is not None and h > 0 and abs(h - est) > asettings.max_disagreement * est:
                p.warnings.append(f"GPS height above take-off {h:.1f} m disagrees with the image estimate "
                                  f"{est:.1f} m: the estimate is used")
                p.height_m, p.height_source = est, "image_estimate"
            else:
                p.height_m, p.height_source = h, "gps_relative"
        elif est is not None:
            p.height_m, p.height_source = est, "image_estimate"
        elif user_altitude_m is not None:
            p.height_m, p.height_source = float(user_altitude_m), "user"
        else:
            p.fail("no_altitude", "no height above ground: no XMP RelativeAltitude, no take-off altitude, no "
                   "overlapping neighbour to estimate from (give --altitude M)")
            continue
        if p.height_m < asettings.min_height_m:
            p.fail("too_low", f"{p.height_m:.1f} m above take-off (below {asettings.min_height_m:g} m): on the "
                   "ground or taking off")
    valid_est = [e for e in estimates if e is not None]
    return {
        "takeoff_altitude_m": takeoff[0] if takeoff else None,
        "takeoff_evidence": takeoff[1] if takeoff else None,
        "image_estimate_m": float(np.median(valid_est)) if valid_est else None,
        "user_altitude_m": user_altitude_m,
    }


def _decide_blur(photos: list[_Photo], stored: list[dict[str, Any]], settings: IngestSettings) -> dict[str, Any]:
    """Reject blurred frames, each judged against its neighbours and the flight (:func:`blur_verdicts`)."""
    frames = [p for p in photos if p.ok and p.stats is not None]
    prior = [r for r in stored if r["sharpness"] is not None and r["x"] is not None]
    sharp = [p.stats.sharpness for p in frames] + [r["sharpness"] for r in prior]
    edges: list[float | None] = [p.stats.edge_sharpness for p in frames] + [None] * len(prior)
    xy = np.array([[p.x, p.y] for p in frames] + [[r["x"], r["y"]] for r in prior], dtype=float).reshape(-1, 2)
    verdicts = blur_verdicts(sharp, edges, xy, settings.quality())
    if len(sharp) < settings.quality().min_frames_for_blur:
        for p in frames:
            p.warnings.append("too few photos in the flight to judge blur")
    for p, verdict in zip(frames, verdicts[: len(frames)], strict=True):
        if verdict:
            p.fail("blurred", verdict)
    return {"sharpness_median": float(np.median(sharp)) if sharp else None,
            "edge_sharpness_median": float(np.median([e for e in edges if e is not None])) if frames else None,
            "frames_judged": len(frames)}


def _decide_yaw(ws: Workspace, placed: list[_Photo]) -> None:
    """Yaw (grid heading of the image top) for each placed photo: gimbal, flight, travel, else 0."""
    order = sorted(placed, key=lambda p: (iso_time(p.meta.taken_at) or "", p.rel))
    travel = travel_headings(np.array([[p.x, p.y] for p in order])) if order else []
    for p, t in zip(order, travel, strict=True):
        yaw, source = choose_yaw(p.meta.gimbal_yaw_deg, p.meta.flight_yaw_deg, t)
        if source in ("gimbal", "flight"):
            yaw = grid_yaw_deg(ws.crs, p.meta.lon, p.meta.lat, yaw)
        if source == "flight":
            p.warnings.append("no gimbal yaw: yaw from the flight yaw")
        elif source == "travel":
            p.warnings.append("yaw from the direction of travel")
        elif source == "none":
            p.warnings.append("yaw unknown (no XMP, drone not moving): assumed 0 (image top north)")
        p.yaw_grid_deg, p.yaw_source = yaw, source


def _place(p: _Photo) -> None:
    """Footprint (workspace CRS) and ground sample distance of a photo with its pose decided."""
    camera = p.cam.camera()
    pose = Pose(p.x, p.y, p.height_m, p.yaw_grid_deg, p.pitch_deg, p.roll_deg)
    try:
        p.footprint = footprint(camera, pose)
    except ValueError:
        p.fail("oblique", "the view reaches the horizon")
        return
    p.gsd_m = camera.gsd_m(p.height_m)


# -- rows, manifest ---------------------------------------------------------------------------------------------
def _reason_text(p: _Photo) -> str | None:
    if p.reject:
        return f"{p.reject[0]}: {p.reject[1]}"
    return "; ".join(p.warnings) or None


def _row(p: _Photo, flight_id: str, now: str) -> dict[str, Any]:
    m, cam = p.meta, p.cam
    return {
        "image_id": p.image_id, "flight_id": flight_id, "path": str(p.path.resolve()), "sha256": p.sha256,
        "taken_at": iso_time(m.taken_at) if m else None,
        "lon": m.lon if m else None, "lat": m.lat if m else None, "x": p.x, "y": p.y,
        "gps_altitude_m": m.gps_altitude_m if m else None,
        "altitude_m": p.height_m, "altitude_source": p.height_source,
        "yaw_deg": p.yaw_grid_deg, "pitch_deg": p.pitch_deg if m and m.has_gps else None,
        "roll_deg": p.roll_deg if m and m.has_gps else None,
        "camera_model": cam.model if cam else (m.model if m else None),
        "focal_mm": cam.focal_mm if cam else (m.focal_mm if m else None),
        "sensor_width_mm": cam.sensor_width_mm if cam else None,
        "sensor_height_mm": cam.sensor_height_mm if cam else None,
        "width_px": m.width_px if m else None, "height_px": m.height_px if m else None,
        "gsd_m": p.gsd_m, "sharpness": p.stats.sharpness if p.stats and (p.ok or p.reject[0] == "blurred") else None,
        "cells": ",".join(p.cells) if p.cells else None,
        "status": "accepted" if p.ok else "rejected", "reason": _reason_text(p), "ingested_at": now,
        "geometry": p.footprint,
    }


def _coverage(ws: Workspace, footprints: list[shapely.Geometry], cell_ids: set[str]) -> dict[str, float]:
    if not footprints or not cell_ids:
        return {}
    union = shapely.union_all(footprints)
    out = {}
    for cell in ws.cells(f"cell_id IN ({','.join('?' * len(cell_ids))})", tuple(sorted(cell_ids))):
        out[cell.cell_id] = float(cell.geometry.intersection(union).area / cell.geometry.area)
    return out


def ingest_flight(ws: Workspace, flight_dir: str | Path, flight_id: str | None = None,
                  altitude_m: float | None = None, settings: IngestSettings | None = None) -> IngestResult:
    """Ingest every photo in ``flight_dir`` (recursively) into workspace ``ws``; see the module docstring.

    ``altitude_m``: height above ground (metres) for photos where neither XMP, GPS nor the images give one.
    ``settings``: defaults to the workspace's ``[ingest]`` table.
    """
    flight_dir = Path(flight_dir)
    if not flight_dir.is_dir():
        raise UsageError(f"flight folder {flight_dir} does not exist", path=flight_dir,
                         hint="give the folder holding the drone's JPEGs")
    if altitude_m is not None and altitude_m <= 0:
        raise UsageError(f"--altitude must be a height above ground in metres, got {altitude_m}")
    settings = settings or ws.section("ingest", IngestSettings)
    flight_id = flight_id or flight_id_for(flight_dir)
    if not re.fullmatch(r"[A-Za-z0-9._-]+", flight_id):
        raise UsageError(f"flight id {flight_id!r} may hold only letters, digits, '.', '_' and '-'")
    files, ignored = _list_files(flight_dir)
    if not files:
        raise MetadataError("no photos (.jpg) in the flight folder", path=flight_dir,
                            hint="point at the folder with the drone's JPEGs (e.g. DCIM/100MEDIA)")
    known: dict[str, str] = {}
    if ws.gpkg.has_layer(IMAGES.name):
        known = {r[0]: r[1] for r in ws.gpkg.connection().execute('SELECT sha256, image_id FROM "images"')
                 if r[0] is not None}

    photos, skipped = _read_and_analyse(files, flight_dir, flight_id, known, settings)

    placed = [p for p in photos if p.meta is not None and p.meta.has_gps]
    if placed:
        ws.ensure_crs(placed[0].meta.lon, placed[0].meta.lat)
    elif ws.crs is None:
        raise MetadataError("no photo of the flight has a GPS position, so nothing can be placed", path=flight_dir,
                            hint="ingest a flight with GPS first, or create the workspace with --crs EPSG:N")
    ws.layer(IMAGES)
    for p in placed:
        p.x, p.y = (float(v) for v in ws.from_lonlat(p.meta.lon, p.meta.lat))
    stored = _stored_rows(ws, flight_id)
    blur = _decide_blur(photos, stored, settings)
    _decide_yaw(ws, placed)
    evidence = _decide_heights(photos, stored, altitude_m, settings)
    for p in photos:
        if p.ok:
            _place(p)
        if p.ok:  # (placing can reject: a view reaching the horizon)
            p.cells = [c.cell_id for c in ws.cells_touching(p.footprint)]
        p.features = None  # free memory

    now = _now()
    rows = [_row(p, flight_id, now) for p in photos if p.duplicate_of is None]
    chunk = max(1, settings.commit_every)
    for i in range(0, len(rows), chunk):
        ws.gpkg.insert(IMAGES.name, rows[i:i + chunk], or_ignore=True)
    if rows:
        ws.gpkg.update_extent(IMAGES.name)

    flight_rows = ws.gpkg.select(IMAGES.name, "flight_id=?", (flight_id,), order_by="image_id")
    accepted_rows = [r for r in flight_rows if r["status"] == "accepted"]
    cell_ids = {c for r in accepted_rows for c in (r["cells"] or "").split(",") if c}
    coverage = _coverage(ws, [r["geometry"] for r in accepted_rows if r["geometry"] is not None], cell_ids)
    gsds = [r["gsd_m"] for r in accepted_rows if r["gsd_m"]]
    result_rejected = Counter(p.reject[0] for p in photos if p.reject)
    this_run = [p for p in photos if p.ok]
    result = IngestResult(
        flight_id=flight_id, photos=len(photos), accepted=len(this_run), rejected=dict(result_rejected),
        skipped=skipped, ignored=ignored, coverage=coverage,
        mean_gsd_m=float(np.mean(gsds)) if gsds else None,
        altitude_sources=dict(Counter(p.height_source for p in this_run)),
        warnings=sum(1 for p in this_run if p.warnings),
        manifest=ws.flight_dir(flight_id) / "manifest.json",
        coverage_png=ws.flight_dir(flight_id) / "coverage.png" if settings.coverage_png else None,
    )
    _write_manifest(ws, flight_id, flight_dir, flight_rows, photos, result, evidence, blur, settings)
    if settings.coverage_png:
        from .coverage import draw_coverage

        n_rejected = sum(1 for r in flight_rows if r["status"] != "accepted") + result.rejected.get("duplicate", 0)
        draw_coverage(ws, result.coverage_png, flight_rows,
                      f"flight {flight_id}: {len(accepted_rows)} accepted, {n_rejected} rejected")
    log.info(result.text())
    return result


def _write_manifest(ws: Workspace, flight_id: str, flight_dir: Path, flight_rows: list[dict[str, Any]],
                    photos: list[_Photo], result: IngestResult, evidence: dict[str, Any], blur: dict[str, Any],
                    settings: IngestSettings) -> None:
    """``flights/<id>/manifest.json``: every photo of the flight (stored rows + duplicates), atomically."""
    path = result.manifest
    previous: list[dict[str, Any]] = []
    if path.exists():
        try:
            previous = [e for e in json.loads(path.read_text("utf-8")).get("images", []) if e.get("duplicate_of")]
        except (ValueError, OSError):
            previous = []
    yaw_source = {p.image_id: p.yaw_source for p in photos}
    entries = [{
        "image_id": r["image_id"], "path": r["path"], "sha256": r["sha256"], "status": r["status"],
        "reason": r["reason"], "altitude_m": r["altitude_m"], "altitude_source": r["altitude_source"],
        "yaw_deg": r["yaw_deg"], "yaw_source": yaw_source.get(r["image_id"]), "gsd_m": r["gsd_m"],
        "camera_model": r["camera_model"], "cells": (r["cells"] or "").split(",") if r["cells"] else [],
    } for r in flight_rows]
    dups = {e["image_id"]: e for e in previous}
    for p in photos:
        if p.duplicate_of is not None:
            dups[p.image_id] = {"image_id": p.image_id, "path": str(p.path.resolve()), "sha256": p.sha256,
                                "status": "rejected", "reason": _reason_text(p), "duplicate_of": p.duplicate_of}
    entries += list(dups.values())
    counts = Counter(e["status"] for e in entries)
    reasons = Counter(e["reason"].split(":")[0] for e in entries if e["status"] == "rejected" and e["reason"])
    manifest = {
        "flight_id": flight_id, "source": str(flight_dir.resolve()), "updated_at": _now(),
        "crs": ws.settings.crs, "settings": asdict(settings),
        "accepted": counts.get("accepted", 0), "rejected": dict(reasons),
        "coverage": result.coverage, "mean_gsd_m": result.mean_gsd_m,
        "altitude": evidence, "blur": blur,
        "images": entries,
    }
    atomic.write_json(path, manifest)
