"""One orthomosaic per grid cell: the per-cell job and the parallel driver.

:func:`mosaic_cell` is a plain function of picklable arguments (workspace folder, cell id, settings)
that reads the workspace, writes ``cells/<cell_id>/ortho.tif`` and ``ortho.json``, and returns the
report, so any scheduler (a process pool here; Dask or Ray later) can run it. Its steps:

1. the accepted photos whose footprints touch the cell (plus a margin), and the flights they belong to;
2. the flights' solution (:mod:`~skysieve.mosaic.solve`): tie points between overlapping photos
   (:mod:`~skysieve.mosaic.matching`), all placements adjusted together with GPS as a prior
   (:mod:`~skysieve.mosaic.adjust`) and exposure gains; solved once per flight and kept in the flight's
   cache, so the cells of a flight agree along their borders and its cells do not match a pair again;
   with ``adjust = "terrain"`` the ground's heights on a coarse grid are solved with the placements and
   the mosaic is rendered through them (:mod:`~skysieve.mosaic.terrain`; ``dsm.tif`` holds them);
3. with ``surface = "dsm"``, a surface model of the cell from the photos' parallax
   (:mod:`~skysieve.mosaic.surface`, ``cells/<cell_id>/dsm.tif``), which the seams and the rendering then
   project through (a true ortho); by default the ground plane;
4. seamlines (:mod:`~skysieve.mosaic.seamcut`): nearest-centre seams moved, within a corridor, onto
   paths where the photos agree, so they go around tanks, chimneys and trees rather than through them;
   computed once per cell on a coarse grid;
5. windowed rendering along those seams (:mod:`~skysieve.mosaic.render`) straight into a
   COG (:mod:`~skysieve.mosaic.cog`), clipped to the cell plus ``margin_m``. A photo that cannot be
   read (when solving, or now: deleted, its drive unmounted) is flagged with the reason and left out.

A rerun skips a cell whose inputs (its flights' photos and poses, the cell, the settings) did not change,
unless it was built without a photo that could not be read: that photo is tried again.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from skysieve.atomic import write_json
from skysieve.cpus import usable_cpus
from skysieve.errors import MosaicError, NotFoundError, SkysieveError
from skysieve.mosaic.adjust import AdjustSettings
from skysieve.mosaic.cog import CogSettings, overview_grid, write_cog
from skysieve.mosaic.matching import MatchSettings, match_gsd
from skysieve.mosaic.photos import Photo, ground_homography, photo_from_row
from skysieve.mosaic.render import RENDER_THREADS, DecodedPhotos, OutputGrid, PlacedPhoto, render_windows
from skysieve.mosaic.seamcut import SeamSettings, find_seams
from skysieve.mosaic.seams import BlendSettings
from skysieve.mosaic.solve import solve_flight
from skysieve.mosaic.surface import SurfaceSettings, build_surface, camera_centre, write_dsm
from skysieve.mosaic.terrain import Terrain, terrain_stats, terrain_surface
from skysieve.schema import IMAGES

__all__ = ["MosaicSettings", "mosaic_cell", "build_mosaics", "cells_with_photos", "ORTHO_FILE", "REPORT_FILE"]

log = logging.getLogger(__name__)

ORTHO_FILE = "ortho.tif"
REPORT_FILE = "ortho.json"
DSM_FILE = "dsm.tif"
VIEWS_FILE = "views.tif"  # which photo each part of the mosaic shows (the seams' label map)
ADJUST_METHODS = ("plane", "terrain")
FORMAT_VERSION = 6  # bump when the output changes for the same inputs, so reruns rebuild (2: per-flight
# placements and gains, at most 8 pairs per photo, YCbCr JPEG with a mask band instead of alpha; 3: grid
# widened to the overview factors, JPEG overviews as exact 2 x 2 means, deterministic matching; 4: seams
# cut along low-difference paths, blended along a label map; 5: a true ortho from a DSM of the photos' parallax,
# views.tif; 6: false tie pairs dropped before the adjustment, ortho.json's adjust and tie_pairs_rejected)


@dataclass(frozen=True)
class MosaicSettings:
    """``[mosaic]`` table of skysieve.toml."""

    gsd_m: float | None = None  # output pixel size (metres); None: the photos' median native GSD
    margin_m: float = 5.0  # the mosaic reaches this far beyond the cell
    window_px: int = 512  # rendering block
    gps_sigma_m: float = 1.5  # GPS error per photo (one sigma, metres)
    yaw_sigma_deg: float = 5.0
    scale_bias_sigma: float = 0.01  # scale error every photo of a flight shares (take-off height, focal length)
    yaw_bias_sigma_deg: float = 0.0  # yaw error every photo of a flight shares (compass bias); 0: none
    match_size_px: int = 800  # photos are reduced to about this long side for matching
    max_features: int = 4000
    band_px: float = 16.0  # blending band across seamlines (output pixels)
    seams: str = "graphcut"  # "graphcut": seams around what differs between photos; "voronoi": nearest centre
    seam_cell_m: float = 0.35  # the grid seams are searched on (metres)
    seam_corridor_m: float = 0.0  # how far a seam may leave the nearest-centre line (metres); 0: automatic
    seam_object_m: float = 1.0  # seams keep this clear of where the photos differ (metres)
    # "plane": every photo projected onto the ground plane; "dsm": a surface model from the photos' parallax
    # (cells/<id>/dsm.tif) and a true ortho rendered from it (docs/true_ortho.md: what it fixes, what it costs)
    surface: str = "plane"
    # "terrain": the ground's heights on a grid of nodes terrain_cell_m apart solved with the placements, and the
    # mosaic rendered through them (dsm.tif holds them); "plane": the photos placed on one flat ground plane, the
    # relief's parallax absorbed by bending them (Brighton: 0.58 m after the block's similarity against 0.18 m;
    # docs/bundle.md). A terrain solution implausible beside the plane's (heights beyond 30 % of the flying
    # height, photos far from GPS, ties left as outliers) gives way to the plane's: ortho.json's "adjust" says
    # which placed the cell. The demo flight: shifts from GPS 1.6 m either way, confirmed flags 0.14-0.47 m
    # from the truth against the plane's 0.43-0.87 m
    adjust: str = "terrain"
    terrain_cell_m: float = 5.0
    dsm_gsd_m: float = 0.25  # DSM cell (metres)
    dsm_min_base: float = 0.05  # pairs whose baseline is under this share of the flying height give no heights
    dsm_min_height_m: float = 0.5  # rendering takes DSM heights under this as the plane (placement noise)
    compress: str = "JPEG"
    quality: int = 90
    # processes; None: one per RENDER_THREADS CPUs (each renders with that many threads), at most the cell count.
    # On 2 CPUs one process is faster: Brighton 6.0 against 7.0 s with two (a second process imports everything
    # and decodes the border photos again), the 200-photo simulated flight 38.4 against 39.4 s
    workers: int | None = None

    def match(self) -> MatchSettings:
        # two fixes each off by up to 3 sigma, plus yaw and height errors at the photo's edge
        radius = max(6.0, 3.0 * math.sqrt(2.0) * self.gps_sigma_m + 2.0)
        return MatchSettings(match_size_px=self.match_size_px, max_features=self.max_features, search_radius_m=radius)

    def adjustment(self) -> AdjustSettings:
        if self.adjust not in ADJUST_METHODS:
            raise MosaicError(f"unknown adjust {self.adjust!r}", hint=f"set [mosaic] adjust to one of "
                                                                      f"{', '.join(ADJUST_METHODS)}")
        if self.adjust == "terrain" and not self.terrain_cell_m > 0:
            raise MosaicError("terrain_cell_m must be positive metres", hint="e.g. 5.0")
        return AdjustSettings(gps_sigma_m=self.gps_sigma_m, yaw_sigma_deg=self.yaw_sigma_deg,
                              scale_bias_sigma=self.scale_bias_sigma, yaw_bias_sigma_deg=self.yaw_bias_sigma_deg,
                              terrain_cell_m=self.terrain_cell_m if self.adjust == "terrain" else 0.0)

    def blend(self) -> BlendSettings:
        return BlendSettings(band_px=self.band_px)

    def seam(self) -> SeamSettings:
        return SeamSettings(method=self.seams, cell_m=self.seam_cell_m, corridor_m=self.seam_corridor_m,
                            object_m=self.seam_object_m)

    def dsm(self) -> SurfaceSettings:
        return SurfaceSettings(method=self.surface, gsd_m=self.dsm_gsd_m, min_base=self.dsm_min_base,
                               min_height_m=self.dsm_min_height_m)

    def cog(self) -> CogSettings:
        return CogSettings(compress=self.compress, quality=self.quality)


def _accepted_rows(ws) -> list[dict[str, Any]]:
    if not ws.gpkg.has_layer("images"):
        return []
    return [r for r in ws.gpkg.select("images", "status = ?", ("accepted",)) if r.get("geometry") is not None]


def cells_with_photos(ws) -> list[str]:
    """Ids of the cells that accepted photos' footprints touch."""
    rows = _accepted_rows(ws)
    if not rows:
        return []
    tree = shapely.STRtree([r["geometry"] for r in rows])
    return [c.cell_id for c in ws.cells() if len(tree.query(c.geometry, predicate="intersects"))]


def _digest(cell_geom: shapely.Geometry, rows: list[dict[str, Any]], settings: MosaicSettings) -> str:
    keys = ("image_id", "sha256", "path", "x", "y", "altitude_m", "yaw_deg", "pitch_deg", "roll_deg", "focal_mm",
            "sensor_width_mm", "width_px", "height_px")
    items = sorted([[r.get(k) for k in keys] for r in rows], key=lambda x: str(x[0]))
    for item, r in zip(items, sorted(rows, key=lambda r: str(r["image_id"])), strict=False):
        if not r.get("sha256"):  # no content hash: fall back to size and time
            with_stat = Path(r["path"])
            st = with_stat.stat() if with_stat.exists() else None
            item.append([st.st_size, st.st_mtime_ns] if st else None)
    keys = {k: v for k, v in asdict(settings).items() if k != "workers"}
    if settings.adjust == "plane":  # the digest a plane mosaic had before adjust existed
        keys = {k: v for k, v in keys.items() if k not in ("adjust", "terrain_cell_m")}
    blob = json.dumps({"v": FORMAT_VERSION, "cell": cell_geom.wkt, "images": items, "settings": keys},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _kept(cell_dir: Path, digest: str) -> dict[str, Any] | None:
    """The report of the cell's mosaic if it is to be kept as it is, else None (build it). Kept: an ortho
    imported into the cell (``skysieve import-ortho``; ``--force`` rebuilds it from the photos) that is still
    there, or a mosaic built from these very inputs (``digest``) with every one of its rasters: a run killed
    between writing them leaves a mix (a new views.tif beside the old ortho) that the report alone does not
    show. A cell built without some photo that could not be read is never kept, so the photo is tried again."""
    try:
        report = json.loads((cell_dir / REPORT_FILE).read_text())
    except (OSError, ValueError):
        return None
    if report.get("status") == "imported":
        return report if raster_inputs(cell_dir / ORTHO_FILE) == report.get("inputs_digest") else None
    if report.get("images_unreadable") or report.get("inputs_digest") != digest or not (cell_dir / ORTHO_FILE).exists():
        return None
    for name, key in ((ORTHO_FILE, "ortho"), (DSM_FILE, "dsm"), (VIEWS_FILE, "views")):
        path = cell_dir / name
        if (path.exists() or report.get(key)) and raster_inputs(path) != digest:
            log.info("cell %s: %s is not from the inputs its report names; rebuilding", cell_dir.name, name)
            return None
    return report


def raster_inputs(path: Path) -> str | None:
    """The inputs digest a cell raster was made from (its ``SKYSIEVE_INPUTS`` tag), or None (missing, unreadable,
    untagged)."""
    import rasterio

    try:
        with rasterio.open(path) as src:
            return src.tags().get("SKYSIEVE_INPUTS")
    except (OSError, rasterio.errors.RasterioError):
        return None


def _cannot_read(photo: Photo) -> str | None:
    """Why the photo's file cannot be opened now (deleted, its drive unmounted), or None.

    The flight solution may be cached from a run when it could; rendering would then fail the whole cell.
    """
    try:
        with open(photo.path, "rb") as f:
            f.read(1)
    except OSError as e:
        return (f"cannot read {photo.path} ({e.strerror or e}); mount the drive, restore the file, or re-ingest "
                "the folder from where it is now")
    return None


def _photos(rows: list[dict[str, Any]]) -> list[Photo]:
    """The rows that read as photos placeable on the ground (the others are flagged by the cells they touch)."""
    out = []
    for r in rows:
        try:
            photo = photo_from_row(r)
            ground_homography(photo)
        except SkysieveError:
            continue
        out.append(photo)
    return out


class _RowIndex:
    """The accepted photos' rows with an R-tree of their footprints and their flights, so finding a cell's
    photos costs a query, not a pass over the survey."""

    def __init__(self, rows: list[dict[str, Any]]):
        self.rows = rows
        self.tree = shapely.STRtree([r["geometry"] for r in rows])
        self.flights: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            self.flights.setdefault(str(r.get("flight_id") or ""), []).append(r)

    def cell_rows(self, keep: shapely.Geometry) -> tuple[list, list]:
        """(rows of the photos touching ``keep``, rows of every photo of their flights)."""
        rows = [self.rows[int(k)] for k in sorted(self.tree.query(keep, predicate="intersects"))]
        flights = sorted({str(r.get("flight_id") or "") for r in rows})
        return rows, [r for f in flights for r in self.flights[f]]


def _cell_inputs(rows: _RowIndex, cell: shapely.Geometry, settings: MosaicSettings):
    """(cell + margin, the cell's rows, its flights' rows, the inputs digest), or None when no photo
    covers more than a sliver of the cell (the neighbouring cell's mosaic shows that sliver)."""
    keep = cell.buffer(settings.margin_m, join_style="mitre")
    cell_rows, flight_rows = rows.cell_rows(keep)
    if not cell_rows or shapely.union_all([r["geometry"] for r in cell_rows]).intersection(cell).area < 1e-3 * cell.area:
        return None
    return keep, cell_rows, flight_rows, _digest(cell, flight_rows, settings)


def _solve_rows(root: Path, flight_rows: list[dict[str, Any]], settings: MosaicSettings, force: bool = False):
    """(the flights' placeable photos sorted by image id, their :class:`~skysieve.mosaic.solve.FlightSolution`);
    ``force``: solve again, not from the cache."""
    photos = sorted(_photos(flight_rows), key=lambda p: p.image_id)
    return photos, solve_flight(root, photos, match_gsd(photos, settings.match()), settings.match(),
                                settings.adjustment(), settings.blend(), force=force)


YAW_NOTE = "yaw seen in the pixels"


def _record_yaw_fix(ws, photo: Photo, fix_deg: float) -> None:
    """Record in the photo's ``images`` row the yaw its pixels show (``yaw_seen_deg``, and a note in
    ``reason``, the warnings of an accepted photo), when the mosaic found the recorded one grossly off.

    ``yaw_deg`` keeps what the camera recorded (ingest's reading of the XMP, and part of every cell's
    input digest); the image evidence is the flight solution's, so it is written where an analyst in
    QGIS sees it, once per photo.
    """
    ws.layer(IMAGES)  # a workspace from before yaw_seen_deg gains the column
    rows = ws.gpkg.select("images", "image_id = ?", (photo.image_id,))
    if not rows:
        return
    seen = 180.0 - (180.0 - photo.pose.yaw_deg - fix_deg) % 360.0  # in (-180, 180]
    change: dict[str, Any] = {"yaw_seen_deg": round(seen, 1)}
    reason = rows[0].get("reason") or ""
    if YAW_NOTE not in reason:
        note = (f"{YAW_NOTE}: {seen:.0f} degrees, the recorded {photo.pose.yaw_deg:.0f} is off by {fix_deg:+.0f} "
                "(the mosaic turns it)")
        change["reason"] = "; ".join(x for x in (reason, note) if x)
    if rows[0].get("yaw_seen_deg") != change["yaw_seen_deg"] or "reason" in change:
        ws.gpkg.update("images", "image_id = ?", (photo.image_id,), change)


def _clip_blocks(blocks, grid: OutputGrid, keep: shapely.Geometry, cell: shapely.Geometry, counts: dict[str, int]):
    """Blank what lies outside ``keep`` (cell + margin); count covered pixels inside ``cell``."""
    from rasterio.features import geometry_mask

    for win, rgb, cov in blocks:
        t = grid.transform @ grid.transform.translation(win.col_off, win.row_off)
        shape = (win.height, win.width)
        box = grid.window_box(win)
        if not keep.contains(box):
            cov = cov & geometry_mask([keep], shape, t, invert=True)
            rgb[~cov] = 0
        in_cell = cov if cell.contains(box) else cov & geometry_mask([cell], shape, t, invert=True)
        counts["cell"] += int(in_cell.sum())
        yield win, rgb, cov


def _opencv_own_threads_off(fn):
    """Run ``fn`` with OpenCV's own thread pool at one thread, restored afterwards.

    The mosaic parallelises over photos and windows in its threads; OpenCV's inner ``parallel_for`` on top
    of that only costs: SIFT on an 800 px photo 150 ms CPU with 2 OpenCV threads, 125 ms with 1; a whole
    Brighton run (6 alternated pairs, load 4-6 on 2 CPUs) 11.1 -> 10.5 s CPU, 16.5 -> 15.4 s wall.
    (The setting is the process's: other OpenCV work in the process meanwhile runs single-threaded too.)
    """
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        import cv2

        before = cv2.getNumThreads()
        cv2.setNumThreads(1)
        try:
            return fn(*args, **kwargs)
        finally:
            cv2.setNumThreads(before)

    return wrapper


@_opencv_own_threads_off
def mosaic_cell(workspace: str | Path, cell_id: str, settings: MosaicSettings | None = None,
                force: bool = False, resolve: bool | None = None,
                decoded: DecodedPhotos | None = None) -> dict[str, Any]:
    """Build ``cells/<cell_id>/ortho.tif`` and ``ortho.json``; returns the report (also for a skip).

    ``force``: rebuild even when the inputs did not change; ``resolve``: solve the flight again rather
    than read its cached solution (default: ``force``; :func:`build_mosaics` solves each flight once).
    ``decoded``: photos kept decoded from the previous cells of a run in this process, for the next ones
    (:class:`~skysieve.mosaic.render.DecodedPhotos`).
    ``report["status"]`` is ``built``, ``skipped`` (inputs unchanged) or ``empty`` (no accepted photo).
    A cell built without some photo that could not be read (``report["images_unreadable"]``) is never
    skipped, so the photo is tried again.
    Raises :class:`NotFoundError` for an unknown cell and :class:`MosaicError` when no mosaic can be made.
    """
    from skysieve.workspace import Workspace

    t0 = time.perf_counter()
    settings = settings or MosaicSettings()
    settings.seam().check()
    settings.dsm().check()
    ws = Workspace.open(workspace)
    crs = ws.require_crs()
    found = ws.cells("cell_id = ?", (cell_id,))
    if not found:
        raise NotFoundError("no such cell in the workspace", ref=cell_id, hint=ws.cell_list_hint())
    cell = found[0].geometry
    cell_dir = ws.cell_dir(cell_id)
    if (inputs := _cell_inputs(_RowIndex(_accepted_rows(ws)), cell, settings)) is None:
        return {"cell_id": cell_id, "status": "empty", "images_used": [], "images_flagged": []}
    keep, rows, flight_rows, digest = inputs
    if not force and (old := _kept(cell_dir, digest)):
        if old.get("status") == "imported":
            log.warning("cell %s: its ortho was imported from %s; kept (--force rebuilds it from the photos)",
                        cell_id, old.get("source"))
        else:
            log.info("cell %s: inputs unchanged, kept %s", cell_id, cell_dir / ORTHO_FILE)
        return {**old, "status": "skipped"}

    flagged: list[dict[str, str]] = []
    cell_ids = set()
    for r in rows:
        try:
            ground_homography(photo_from_row(r))
            cell_ids.add(str(r["image_id"]))
        except SkysieveError as e:
            flagged.append({"image_id": str(r["image_id"]), "reason": f"not used: {e}"})
    # placements come from one solution for the whole flight (shared by its cells, cached on disk)
    flight_photos, sol = _solve_rows(ws.root, flight_rows, settings, force if resolve is None else resolve)
    photos: list[Photo] = []
    homs = []
    unreadable: list[str] = []
    for p in flight_photos:  # sorted by image id
        if p.image_id not in cell_ids:
            continue
        if (why := sol.unreadable.get(p.image_id) or _cannot_read(p)) is not None:
            flagged.append({"image_id": p.image_id, "reason": f"not used: {why}"})
            unreadable.append(p.image_id)
            continue
        place = sol.placements[p.image_id]
        if place.yaw_fix_deg:
            _record_yaw_fix(ws, p, place.yaw_fix_deg)
            p = replace(p, pose=replace(p.pose, yaw_deg=p.pose.yaw_deg + place.yaw_fix_deg))
            flagged.append({"image_id": p.image_id, "reason": f"recorded yaw off by {place.yaw_fix_deg:+.0f} "
                                                              "degrees; turned to fit its neighbours"})
        if sol.photos > 1 and not place.tied:
            flagged.append({"image_id": p.image_id, "reason": "matches no other photo: kept at its GPS placement"})
        photos.append(p)
        homs.append(place.homography)
    if not photos:
        first = next((f["reason"].removeprefix("not used: ") for f in flagged), None)
        raise MosaicError(f"no photo of the cell can be read ({len(unreadable)} tried)" + (f", e.g. {first}" if first else ""),
                          ref=cell_id, hint="if the flight folder was moved, re-ingest it from where it is now: "
                                            "`skysieve ingest WORKSPACE NEW_FOLDER` updates the stored paths")
    flagged.sort(key=lambda f: f["image_id"])
    shifts = [sol.placements[p.image_id].shift_m for p in photos]

    gsd = settings.gsd_m or round(float(np.median([p.gsd_m for p in photos])), 4)
    placed = [PlacedPhoto(p, h, sol.placements[p.image_id].gain) for p, h in zip(photos, homs, strict=True)]
    cover = shapely.union_all([pp.footprint() for pp in placed]).intersection(keep)
    if cover.is_empty:
        raise MosaicError("after adjustment no photo reaches the cell", ref=cell_id)
    grid = overview_grid(OutputGrid.covering(cover.bounds, gsd), settings.cog().blocksize)
    terrain = Terrain.from_json(sol.terrain) if sol.terrain is not None else None
    base = terrain_surface(terrain, placed, grid) if terrain is not None else None
    surface, surface_stats = build_surface(placed, grid, settings.dsm(), base=base)
    if surface is None and base is not None:  # the plane's photos rendered through the solved terrain
        surface = base
        surface_stats = {**surface_stats, "surface": "terrain"}
    if terrain is not None:
        surface_stats = {**surface_stats, **terrain_stats(terrain, base)}
    seam_map, seam_stats = None, {}  # "voronoi": the renderer's own nearest-centre seams
    if settings.seams == "graphcut":
        seam_map, seam_stats = find_seams(placed, grid, settings.blend(), settings.seam(), surface=surface)
    counts = {"cell": 0}
    blocks = _clip_blocks(render_windows(placed, grid, settings.window_px, settings.blend(), seams=seam_map,
                                         surface=surface, decoded=decoded), grid, keep, cell, counts)
    cell_dir.mkdir(parents=True, exist_ok=True)
    for stale in cell_dir.glob(".ortho.*"):  # temporaries of a killed run (files, and the COG's scratch folders)
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)
    tags = {"SKYSIEVE_CELL": cell_id, "SKYSIEVE_INPUTS": digest}  # on every raster of the cell
    # the DSM and the views are staged (.ortho.* names, which a rerun removes) and put in place only once the
    # ortho is: a kill while the ortho is written (the long part) leaves the old set whole
    staged = {DSM_FILE: cell_dir / f".ortho.staged.{DSM_FILE}", VIEWS_FILE: cell_dir / f".ortho.staged.{VIEWS_FILE}"}
    if surface is not None:
        write_dsm(staged[DSM_FILE], surface, crs, tags=tags)
    if seam_map is not None:
        seam_map.write(staged[VIEWS_FILE], grid, crs, tags=tags)
    write_cog(cell_dir / ORTHO_FILE, grid, crs, blocks, settings.cog(), tags=tags)
    for name, path in staged.items():
        if path.exists():
            os.replace(path, cell_dir / name)
        else:  # a plane mosaic has no DSM, nearest-centre seams no label map: an old one would describe another
            (cell_dir / name).unlink(missing_ok=True)

    to_px = 1.0 / gsd
    report = {
        "cell_id": cell_id,
        "status": "built",
        "ortho": str(cell_dir / ORTHO_FILE),
        "crs": ws.settings.crs,
        "gsd_m": gsd,
        "width_px": grid.width,
        "height_px": grid.height,
        "bounds": [grid.x_min, grid.y_max - grid.height * gsd, grid.x_min + grid.width * gsd, grid.y_max],
        "images_used": [p.image_id for p in photos],
        "images_flagged": flagged,
        "images_unreadable": unreadable,
        # matching and adjustment are solved per flight (the cells of a flight share them): flight figures
        "photos_solved_together": sol.photos,
        "pairs_tried": sol.pairs_tried,
        "pairs_matched": sol.pairs_matched,
        "tie_points": sol.tie_points,
        "tie_outliers": sol.tie_outliers,
        "tie_pairs_rejected": sol.pairs_rejected,  # photo pairs dropped as false matches before adjusting
        "adjust": sol.adjust,  # "plane", "terrain" or "plane (terrain rejected: why)"
        "tie_rms_before_px": _num(sol.rms_before_m * to_px),
        "tie_rms_after_px": _num(sol.rms_after_m * to_px),
        "mean_shift_from_gps_m": _num(float(np.mean(shifts))),
        "max_shift_from_gps_m": _num(float(np.max(shifts))),
        "mean_abs_yaw_change_deg": _num(sol.mean_abs_yaw_change_deg),
        "cell_covered": round(counts["cell"] * gsd * gsd / cell.area, 4),
        "seams": settings.seams,
        **seam_stats,
        **surface_stats,
        "dsm": str(cell_dir / DSM_FILE) if surface is not None else None,
        "views": str(cell_dir / VIEWS_FILE) if seam_map is not None else None,
        # per photo of views.tif: its camera over the ground plane (x, y) and height above it (metres)
        "view_cameras": [[round(float(v), 2) for v in c] for c in
                         (surface.cameras if surface is not None else map(camera_centre, placed))],
        "seconds": round(time.perf_counter() - t0, 2),
        "inputs_digest": digest,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "format_version": FORMAT_VERSION,
    }
    write_json(cell_dir / REPORT_FILE, report)
    log.info("cell %s: %d photos (%d flagged), ties %.2f -> %.2f px, %.0f%% covered, %.1f s", cell_id, len(photos),
             len(flagged), report["tie_rms_before_px"] or math.nan, report["tie_rms_after_px"] or math.nan,
             100 * report["cell_covered"], report["seconds"])
    return report


def _num(v: float) -> float | None:
    return None if v is None or not math.isfinite(v) else round(float(v), 4)


def _job(args: tuple[str, str, MosaicSettings, bool], decoded: DecodedPhotos | None = None) -> dict[str, Any]:
    root, cell_id, settings, force = args
    try:
        return mosaic_cell(root, cell_id, settings, force, resolve=False,  # force: solved in build_mosaics
                           decoded=decoded)
    except SkysieveError as e:
        log.error("cell %s: %s", cell_id, e)
        return {"cell_id": cell_id, "status": "failed", "error": str(e)}


@_opencv_own_threads_off
def build_mosaics(ws, cells: list[str] | None = None, gsd_m: float | None = None, workers: int | None = None,
                  settings: MosaicSettings | None = None, force: bool = False) -> list[dict[str, Any]]:
    """Mosaic every cell with accepted photos (or ``cells``), in parallel processes; one report per cell.

    ``ws``: a :class:`~skysieve.workspace.Workspace` or its folder. A cell that fails is reported with
    ``status = "failed"`` and its reason; the others go on.
    """
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    from skysieve.progress import progress
    from skysieve.workspace import Workspace

    if not isinstance(ws, Workspace):
        ws = Workspace.open(ws)
    settings = settings or ws.section("mosaic", MosaicSettings)
    if gsd_m is not None:
        if gsd_m <= 0:
            raise MosaicError(f"--gsd must be positive metres per pixel, got {gsd_m}")
        settings = MosaicSettings(**{**asdict(settings), "gsd_m": float(gsd_m)})
    ids = list(cells) if cells else cells_with_photos(ws)
    known = {c.cell_id for c in ws.cells()}
    reports = [{"cell_id": c, "status": "failed", "error": "no such cell"} for c in ids if c not in known]
    ids = [c for c in ids if c in known]
    n = workers or settings.workers or usable_cpus() // RENDER_THREADS
    n = max(1, min(n, len(ids)))
    jobs = [(str(ws.root), c, settings, force) for c in ids]
    shows: dict[str, set[str]] = {}  # per cell to build: the photos that touch it
    index = _RowIndex(_accepted_rows(ws))
    groups = {}
    wanted = set(ids)
    for c in ws.cells():
        if c.cell_id not in wanted or (inputs := _cell_inputs(index, c.geometry, settings)) is None:
            continue
        _, cell_rows, flight_rows, digest = inputs
        if force or not _kept(ws.cell_dir(c.cell_id), digest):  # a cell to build needs its flights
            groups.setdefault(frozenset(str(r["image_id"]) for r in flight_rows), flight_rows)
            shows[c.cell_id] = {str(r["image_id"]) for r in cell_rows}
    if n > 1 or force:  # solve each flight once here, so that the cell processes read it rather than race to solve it
        for flight_rows in groups.values():
            try:
                _solve_rows(ws.root, flight_rows, settings, force)
            except SkysieveError as e:  # the cell that needs it reports it
                log.warning("solving a flight failed: %s", e)
    if n == 1:
        # one cell after another in this process: photos on a border between cells are decoded once, not per cell
        order: dict[str, list[int]] = {}  # per photo: the positions of the cells to build that it touches
        for k, j in enumerate(jobs):
            for image_id in shows.get(j[1], ()):
                order.setdefault(image_id, []).append(k)
        decoded = DecodedPhotos(order)
        for k, j in enumerate(progress(jobs, "cells", len(jobs), unit="cell")):
            decoded.start(k)
            reports.append(_job(j, decoded))
        log.debug("%d decoded photos shared between cells", decoded.reused)
    else:
        with ProcessPoolExecutor(n, mp_context=mp.get_context("spawn")) as pool:
            reports += list(progress(pool.map(_job, jobs), "cells", len(jobs), unit="cell"))
    return reports
