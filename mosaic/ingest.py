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

Flight ids: without ``--flight-id`` a folder whose photos are already stored joins their flight (a resumed or
moved flight); otherwise the id is the first meaningful folder name (``card1`` for ``card1/DCIM/100MEDIA``,
Unicode kept: ``东区``), with ``-2``, ``-3`` ... when a flight of that id came from another folder or holds
other photos under the same names. Photos already stored whose files moved (same content, the stored file
gone) have their stored paths updated, not added again; a copy with the stored file still there is a duplicate. A photo is never counted as
accepted unless its row is stored; a ``--flight-id`` whose image ids clash with other photos is refused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import unicodedata
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
from skysieve.crs import crs_area_text, in_crs_area
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
           "blurred", "no_camera", "no_altitude", "too_low", "far_away")
#: file name endings ingest looks at; other files in the folder (videos, subtitles, logs) are ignored
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".jpe", ".dng", ".tif", ".tiff", ".png")
#: folder names that say nothing about the flight: skipped when a flight id is derived from the path. DCIM,
#: DCF folders (``100MEDIA``, ``101_PANO``: 100-999 + 5 capitals, digits or '_', one not a digit; a user's
#: ``001_east`` or ``240512_a`` is kept), DJI's
#: ``DJI_202405121030_001`` (a DJI folder with a mission name after the number is kept)
_GENERIC_FOLDERS = re.compile(
    r"^(images?|imgs?|photos?|pictures?|pics?|dcim|media|camera|jpe?g|raw|dji|panorama|"
    r"(?-i:[1-9]\d{2}(?=[A-Z0-9_]*[A-Z_])[A-Z0-9_]{5})|dji_[\d_]+)$", re.IGNORECASE)
#: a flight id: letters (any script), digits, '.', '_', '-'; not starting with '.'
_FLIGHT_ID = re.compile(r"(?!\.)[\w.-]+")


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
    known: tuple[str, str, str] | None = None  # already stored: (image_id, flight_id, path)
    first_rel: str | None = None  # same content as this earlier file of the run
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
    moved: int = 0  # stored photos found in a new place: their paths were updated
    moved_from: str | None = None  # the folder they were stored from (the common one)
    moved_to: str | None = None

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
        extra = f"; {self.moved} photos moved from {self.moved_from} to {self.moved_to}" if self.moved else ""
        extra += f"; {self.skipped} already ingested" if self.skipped else ""
        extra += f"; {self.ignored} non-photo files ignored" if self.ignored else ""
        return (f"flight {self.flight_id}: {self.photos} photos, {self.accepted} accepted, "
                f"{sum(self.rejected.values())} rejected ({rej}){extra}; height from {src}; "
                f"{len(self.coverage)} cells covered ({cells}); mean GSD {gsd}; manifest {self.manifest}")


# -- public helpers ------------------------------------------------------------------------------------------
def flight_id_for(flight_dir: Path) -> str:
    """Default flight id: the nearest folder name on the path that is not generic (``card1`` for
    ``card1/DCIM/100MEDIA``), Unicode kept (``东区``); characters other than letters, digits, '.', '_' and
    '-' become '_'. Where no name is left, ``flight-`` and a short hash of the path."""
    flight_dir = Path(flight_dir).resolve()
    names = [flight_dir.name, *(q.name for q in flight_dir.parents)]
    name = next((n for n in names if n and not _GENERIC_FOLDERS.match(n)), "")
    name = re.sub(r"[^\w.-]+", "_", unicodedata.normalize("NFC", name)).strip("._-")
    if name:
        return name
    return "flight-" + hashlib.sha256(str(flight_dir).encode("utf-8", "surrogateescape")).hexdigest()[:8]


def _check_flight_id(flight_id: str) -> None:
    if not _FLIGHT_ID.fullmatch(flight_id):
        raise UsageError(f"flight id {flight_id!r} may hold only letters, digits, '.', '_' and '-', and may not "
                         "start with '.'")


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


# -- flight id, photos already stored ---------------------------------------------------------------------------
def _flight_sources(ws: Workspace, flight_id: str) -> list[str]:
    """The folders a flight was ingested from, as its manifest records them ([] without a manifest)."""
    path = ws.flight_dir(flight_id) / "manifest.json"
    try:
        manifest = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return []
    sources = manifest.get("sources") or ([manifest["source"]] if manifest.get("source") else [])
    return [str(x) for x in sources]


def _name_clash(ws: Workspace, flight_id: str, photos: list[_Photo]) -> tuple[_Photo, dict[str, Any]] | None:
    """A new photo of this run whose image id in ``flight_id`` is taken by a stored photo of other content."""
    if not ws.gpkg.has_layer(IMAGES.name):
        return None
    stored = {r[0]: (r[1], r[2]) for r in ws.gpkg.connection().execute(
        'SELECT image_id, sha256, path FROM "images" WHERE flight_id=?', (flight_id,))}
    for p in photos:
        if p.known is not None or p.first_rel is not None:
            continue
        old = stored.get(f"{flight_id}/{p.rel}")
        if old is not None and old[0] is not None and old[0] != p.sha256:
            return p, {"sha256": old[0], "path": old[1]}
    return None


def _flight_taken(ws: Workspace, flight_id: str, flight_dir: Path, photos: list[_Photo]) -> bool:
    """Whether ``flight_id`` belongs to another flight: one ingested from another folder (none of whose photos
    are in this one), or one holding other photos under this run's file names."""
    if _name_clash(ws, flight_id, photos) is not None:
        return True
    if any(p.known is not None and p.known[1] == flight_id for p in photos):
        return False  # the flight's own photos, resumed or moved
    sources = _flight_sources(ws, flight_id)
    if str(flight_dir.resolve()) in sources and not any(p.known is not None for p in photos):
        # the same folder with none of the flight's photos, and the flight's files gone from it: another card
        # mounted at the same path (/Volumes/Untitled/DCIM/100MEDIA), not more photos of that flight
        stored = [r[0] for r in ws.gpkg.connection().execute('SELECT path FROM "images" WHERE flight_id=?', (flight_id,))]
        return bool(stored) and not any(os.path.exists(x) for x in stored if x)
    return bool(sources) and str(flight_dir.resolve()) not in sources


def _choose_flight_id(ws: Workspace, flight_dir: Path, given: str | None, photos: list[_Photo]) -> str:
    """The flight id of this run; see the module docstring. Raises :class:`UsageError` for a given id whose
    image ids are taken by other photos."""
    if given is not None:
        clash = _name_clash(ws, given, photos)
        if clash is not None:
            p, old = clash
            raise UsageError(f"flight {given} already holds a different photo named {p.rel} (stored from "
                             f"{old['path']}); storing {p.path} under the same image id would lose one of them",
                             ref=f"{given}/{p.rel}",
                             hint="give this folder its own --flight-id (e.g. the SD card's or the area's name)")
        return given
    owners = Counter(p.known[1] for p in photos if p.known is not None)
    if len(owners) == 1:  # photos of one stored flight: a rerun, or the flight's folder moved
        (owner,) = owners
        if _name_clash(ws, owner, photos) is None:
            return owner
    base = flight_id_for(flight_dir)
    candidate, n = base, 1
    while _flight_taken(ws, candidate, flight_dir, photos):
        n += 1
        candidate = f"{base}-{n}"
    if candidate != base:
        sources = _flight_sources(ws, base)
        log.warning("flight id %s is taken by another flight (from %s): this folder becomes flight %s "
                    "(give --flight-id to choose another)", base, ", ".join(sources) or "other photos", candidate)
    return candidate


def _resolve_known(photos: list[_Photo], flight_id: str) -> tuple[list[_Photo], int, dict[str, tuple[str, str]]]:
    """Give this run's photos their image ids and sort out those whose content is stored already.

    Returns the photos still to judge (new ones and duplicates), how many were skipped (stored from this
    very file), and the moves: image id -> (old path, new path) for stored photos found in a new place
    whose stored file is gone. Of several copies claiming one stored photo, the one with
    its image id wins, else the first; the others are duplicates.
    """
    out: list[_Photo] = []
    skipped = 0
    claims: dict[str, list[_Photo]] = {}
    for p in photos:
        p.image_id = f"{flight_id}/{p.rel}"
        if p.first_rel is not None:
            p.duplicate_of = f"{flight_id}/{p.first_rel}"
        elif p.known is not None:
            sid, _, spath = p.known
            here = str(p.path.resolve())
            if spath == here:
                if sid == p.image_id:
                    skipped += 1
                    continue
                p.duplicate_of = sid
            elif not os.path.exists(spath):  # moved (a copy, with the stored file still there, is a duplicate)
                claims.setdefault(sid, []).append(p)
                continue
            else:
                p.duplicate_of = sid
        if p.duplicate_of is not None:
            p.fail("duplicate", f"same content as {p.duplicate_of}")
        out.append(p)
    moves: dict[str, tuple[str, str]] = {}
    for sid, claimants in claims.items():
        winner = next((p for p in claimants if p.image_id == sid), claimants[0])
        moves[sid] = (winner.known[2], str(winner.path.resolve()))
        for p in claimants:
            if p is not winner:
                p.duplicate_of = sid
                p.fail("duplicate", f"same content as {sid}")
                out.append(p)
    order = {id(p): i for i, p in enumerate(photos)}
    out.sort(key=lambda p: order[id(p)])
    return out, skipped, moves


def _store_moves(ws: Workspace, moves: dict[str, tuple[str, str]]) -> None:
    """Point the stored rows of moved photos at their new files (one transaction)."""
    if not moves:
        return
    with ws.gpkg.transaction() as con:
        con.executemany('UPDATE "images" SET path=? WHERE image_id=?', [(new, sid) for sid, (_, new) in moves.items()])
        con.execute("UPDATE gpkg_contents SET last_change=? WHERE table_name=?", (_now(), IMAGES.name))


def _common_folder(paths: list[str]) -> str:
    folders = [os.path.dirname(x) for x in paths]
    try:
        return os.path.commonpath(folders)
    except ValueError:  # different drives
        return folders[0]


def _check_area(ws: Workspace, placed: list[_Photo], flight_dir: Path) -> None:
    """Refuse a flight that lies outside the area of use of the workspace CRS (it would be placed kilometres
    off, silently); reject single photos outside it (a wrong GPS fix) as ``far_away``."""
    crs = ws.crs
    if crs is None or not placed:
        return
    outside = [p for p in placed if not in_crs_area(crs, p.meta.lon, p.meta.lat)]
    if not outside:
        return
    where = f"{ws.settings.crs} ({crs.name}) is valid from {crs_area_text(crs)}"
    if 2 * len(outside) > len(placed):
        p = outside[len(outside) // 2]
        raise UsageError(f"{len(outside)} of the flight's {len(placed)} placed photos lie outside the area of the "
                         f"workspace CRS, e.g. {p.rel} at lon {p.meta.lon:.5f}, lat {p.meta.lat:.5f}; {where}",
                         path=flight_dir,
                         hint="ingest this flight into a new workspace for its area: `skysieve init NEW_WORKSPACE` "
                              "(the CRS follows the first flight) or `--crs EPSG:N` for the area's zone")
    for p in outside:
        p.fail("far_away", f"GPS position lon {p.meta.lon:.5f}, lat {p.meta.lat:.5f} lies outside the area of the "
                           f"workspace CRS and of the rest of the flight: {where}")


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


def _read_and_analyse(files: list[Path], flight_dir: Path, label: str, known: dict[str, tuple[str, str, str]],
                      settings: IngestSettings) -> list[_Photo]:
    """Hash every file (in order, so duplicates are told apart) and analyse the new ones on worker threads.

    ``known``: content hash -> (image id, flight id, path) of the photos already stored; such files are
    marked (``known``) but not analysed, nor are later copies of a file of this run (``first_rel``); their
    image ids are given once the flight id is decided. Pillow's decoder, hashlib and OpenCV release the
    GIL, so the threads decode in parallel. At most ``2 * workers`` files are held in memory at once.
    """
    workers = settings.workers or min(4, usable_cpus())
    photos: list[_Photo] = []
    seen: dict[str, str] = {}
    in_flight: deque[Future] = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ingest") as pool:
        for path in progress(files, desc=f"ingest {label}", total=len(files), unit="photo"):
            ph = _Photo(path.relative_to(flight_dir).as_posix(), path, "")
            photos.append(ph)
            try:
                data = path.read_bytes()
            except OSError as e:
                ph.fail("unreadable", f"cannot read the file: {e.strerror or e}")
                continue
            ph.sha256 = hashlib.sha256(data).hexdigest()
            if ph.sha256 in known:
                ph.known = known[ph.sha256]
                continue
            if ph.sha256 in seen:
                ph.first_rel = seen[ph.sha256]
                continue
            seen[ph.sha256] = ph.rel
            in_flight.append(pool.submit(_analyse_safely, ph, data, settings))
            while len(in_flight) > 2 * workers:
                in_flight.popleft().result()
        for fut in in_flight:
            fut.result()
    return photos


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
    if flight_dir.is_file():
        raise UsageError(f"{flight_dir} is a file; ingest takes the flight's folder", path=flight_dir,
                         hint=f"give the folder holding the drone's JPEGs: {flight_dir.parent}")
    if not flight_dir.is_dir():
        raise UsageError(f"flight folder {flight_dir} does not exist", path=flight_dir,
                         hint="give the folder holding the drone's JPEGs")
    if altitude_m is not None and altitude_m <= 0:
        raise UsageError(f"--altitude must be a height above ground in metres, got {altitude_m}")
    settings = settings or ws.section("ingest", IngestSettings)
    if flight_id:
        _check_flight_id(flight_id)
    files, ignored = _list_files(flight_dir)
    if not files:
        raise MetadataError("no photos (.jpg) in the flight folder", path=flight_dir,
                            hint="point at the folder with the drone's JPEGs (e.g. DCIM/100MEDIA)")
    known: dict[str, tuple[str, str, str]] = {}
    if ws.gpkg.has_layer(IMAGES.name):
        known = {r[0]: (r[1], r[2], r[3]) for r in ws.gpkg.connection().execute(
            'SELECT sha256, image_id, flight_id, path FROM "images" ORDER BY image_id') if r[0] is not None}

    photos = _read_and_analyse(files, flight_dir, flight_id or flight_id_for(flight_dir), known, settings)
    flight_id = _choose_flight_id(ws, flight_dir, flight_id or None, photos)
    _check_flight_id(flight_id)
    photos, skipped, moves = _resolve_known(photos, flight_id)

    placed = [p for p in photos if p.meta is not None and p.meta.has_gps]
    if placed:  # a new workspace takes the CRS of the flight's middle, not of a stray first fix
        ws.ensure_crs(float(np.median([p.meta.lon for p in placed])), float(np.median([p.meta.lat for p in placed])))
    elif ws.crs is None:
        raise MetadataError("no photo of the flight has a GPS position, so nothing can be placed", path=flight_dir,
                            hint="ingest a flight with GPS first, or create the workspace with --crs EPSG:N")
    _check_area(ws, placed, flight_dir)
    placed = [p for p in placed if p.ok or p.reject[0] != "far_away"]
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
    _store_moves(ws, moves)
    rows = [_row(p, flight_id, now) for p in photos if p.duplicate_of is None]
    chunk = max(1, settings.commit_every)
    for i in range(0, len(rows), chunk):
        ws.gpkg.insert(IMAGES.name, rows[i:i + chunk], or_ignore=True)
    if rows or moves:
        ws.gpkg.update_extent(IMAGES.name)

    flight_rows = ws.gpkg.select(IMAGES.name, "flight_id=?", (flight_id,), order_by="image_id")
    stored_sha = {r["image_id"]: r["sha256"] for r in flight_rows}
    lost = [p for p in photos if p.ok and stored_sha.get(p.image_id) != p.sha256]
    for p in lost:  # another process took its image id meanwhile: not stored, so not accepted
        log.error("%s was not stored: image id %s holds another photo; ingest the folder again", p.path, p.image_id)
        p.fail("duplicate", f"not stored: image id {p.image_id} holds another photo")
    accepted_rows = [r for r in flight_rows if r["status"] == "accepted"]
    cell_ids = {c for r in accepted_rows for c in (r["cells"] or "").split(",") if c}
    coverage = _coverage(ws, [r["geometry"] for r in accepted_rows if r["geometry"] is not None], cell_ids)
    gsds = [r["gsd_m"] for r in accepted_rows if r["gsd_m"]]
    result_rejected = Counter(p.reject[0] for p in photos if p.reject)
    this_run = [p for p in photos if p.ok]
    moved_from = _common_folder([old for old, _ in moves.values()]) if moves else None
    moved_to = _common_folder([new for _, new in moves.values()]) if moves else None
    result = IngestResult(
        flight_id=flight_id, photos=len(photos), accepted=len(this_run), rejected=dict(result_rejected),
        skipped=skipped, ignored=ignored, coverage=coverage,
        mean_gsd_m=float(np.mean(gsds)) if gsds else None,
        altitude_sources=dict(Counter(p.height_source for p in this_run)),
        warnings=sum(1 for p in this_run if p.warnings),
        manifest=ws.flight_dir(flight_id) / "manifest.json",
        coverage_png=ws.flight_dir(flight_id) / "coverage.png" if settings.coverage_png else None,
        moved=len(moves), moved_from=moved_from, moved_to=moved_to,
    )
    if moves:
        log.info("%d photos moved from %s to %s: their stored paths are updated", len(moves), moved_from, moved_to)
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
    source = str(flight_dir.resolve())
    # every folder the flight was ingested from (a flight may come on two cards); a moved one is replaced
    sources = [s for s in _flight_sources(ws, flight_id) if s != source and s != result.moved_from]
    sources.append(source)
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
        "flight_id": flight_id, "source": source, "sources": sources, "updated_at": _now(),
        "crs": ws.settings.crs, "settings": asdict(settings),
        "accepted": counts.get("accepted", 0), "rejected": dict(reasons),
        "coverage": result.coverage, "mean_gsd_m": result.mean_gsd_m,
        "altitude": evidence, "blur": blur,
        "images": entries,
    }
    atomic.write_json(path, manifest)
