"""Where every photo of a flight lies on the ground: tie points, gross yaw errors, one adjustment, gains.

Cells are cut from one solution per flight (or per set of flights that share a cell), not solved one
by one: a cell's own adjustment sits at the mean GPS error of the photos it happens to hold, so two
neighbouring cells solved apart disagree by up to that much along their border (0.55 m measured on a
simulated flight with 1 m GPS noise), and every photo on the border was matched twice. The solution is
kept in the flight's cache (``flights/<flight_id>/.mosaic-cache/solve/<key>.json``), keyed by every
photo's content, camera and GPS pose and the settings; a changed photo re-solves the flight.

Solving is deterministic (FLANN's trees are seeded, MAGSAC's samples too), but two processes that solve
the same flight at once (two ``skysieve mosaic --cell`` runs) could still differ (another OpenCV build, a
photo read by one and not the other). So a solution is published only if none is stored yet (written under a temporary name, then hard-linked to
its name, which fails when the name exists), and each process then uses the stored one: the cells
of a flight get the same placements whichever process solved first. ``--force`` replaces the stored one;
a cell being built at that moment by another process may still use the one replaced.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from skysieve.mosaic.adjust import AdjustSettings, adjust, gross_yaw_errors
from skysieve.mosaic.matching import MatchSettings, TiePair, match_photos
from skysieve.mosaic.photos import Photo
from skysieve.mosaic.render import PlacedPhoto, estimate_gains
from skysieve.mosaic.seams import BlendSettings
from skysieve.mosaic.tiecache import CACHE_DIR, TieCache, content_key, stable_hash

__all__ = ["Placement", "FlightSolution", "solve_flight"]

log = logging.getLogger(__name__)

VERSION = 4  # bump when matching or the adjustment change for the same inputs (2: FLANN seeded, 16 checks;
# 3: a flight-shared scale term in the adjustment; 4: false pairs dropped, a terrain solution checked against the
# plane's)


@dataclass(frozen=True)
class Placement:
    """One photo's solved placement: native pixels (col, row) -> ground x/y (workspace CRS) homography."""

    homography: np.ndarray  # 3 x 3
    yaw_fix_deg: float  # gross correction applied to the recorded yaw before adjusting (0: none)
    tied: bool  # has tie points with another photo
    shift_m: float  # camera position moved from GPS (metres)
    gain: tuple[float, float, float] = (1.0, 1.0, 1.0)  # RGB exposure gain against its neighbours


@dataclass(frozen=True)
class FlightSolution:
    """Placements of a flight's photos by image id, the photos that could not be read, and the figures."""

    placements: dict[str, Placement]
    unreadable: dict[str, str]  # image id -> why
    photos: int
    pairs_tried: int
    pairs_matched: int
    tie_points: int
    tie_outliers: int
    rms_before_m: float
    rms_after_m: float
    mean_abs_yaw_change_deg: float
    # the ground's heights solved with the placements (adjust = "terrain"; :meth:`Terrain.to_json`), else None
    terrain: dict | None = None
    # what placed the photos (:attr:`~skysieve.mosaic.adjust.Adjustment.method`): "plane", "terrain", or
    # "plane (terrain rejected: why)"; and the photo pairs dropped as false matches
    adjust: str = "plane"
    pairs_rejected: int = 0

    def to_json(self) -> dict:
        d = asdict(self)
        d["placements"] = {k: {**asdict(p), "homography": p.homography.tolist()} for k, p in self.placements.items()}
        return d

    @classmethod
    def from_json(cls, d: dict) -> FlightSolution:
        places = {k: Placement(**{**p, "homography": np.array(p["homography"], float), "gain": tuple(p["gain"])})
                  for k, p in d["placements"].items()}
        return cls(**{**d, "placements": places})


def _key(photos: list[Photo], gsd_m: float, match: MatchSettings, adjustment: AdjustSettings,
         blend: BlendSettings) -> str:
    items = [(p.image_id, content_key(p), repr(p.pose), repr(p.camera)) for p in photos]
    pair = {k: v for k, v in asdict(match).items() if k != "threads"}
    adj = asdict(adjustment)
    if not adjustment.terrain_cell_m:  # a plane adjustment: keep the keys it had before heights existed
        adj = {k: v for k, v in adj.items() if not k.startswith("terrain_")}
    return stable_hash([VERSION, items, round(gsd_m, 7), pair, adj, asdict(blend)])


def _path(root: Path, photos: list[Photo], key: str) -> Path:
    return Path(root) / "flights" / (photos[0].flight_id or "_") / CACHE_DIR / "solve" / f"{key}.json"


def solve_flight(root: str | Path, photos: list[Photo], gsd_m: float, match: MatchSettings,
                 adjustment: AdjustSettings, blend: BlendSettings, force: bool = False) -> FlightSolution:
    """Match, adjust and balance the exposure of ``photos`` (a flight, or the flights that share a cell)
    together; cached on disk.

    ``root``: the workspace folder; ``gsd_m``: the resolution photos are matched at (metres per pixel);
    ``force``: solve again even when a solution is cached, and replace it. A solution with photos that
    could not be read is not cached (the key cannot tell a file that is back from one still missing),
    so the next run tries them again.
    """
    photos = sorted(photos, key=lambda p: p.image_id)
    key = _key(photos, gsd_m, match, adjustment, blend)
    path = _path(Path(root), photos, key)
    try:
        if not force:
            return _read(path)
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, TypeError) as e:
        log.warning("cached solution %s unreadable (%s): solving again", path, e)
        path.unlink(missing_ok=True)  # else it would stop the new one being published
    solution = _solve(Path(root), photos, gsd_m, match, adjustment, blend)
    if solution.unreadable:
        log.info("%d photos could not be read: the solution is not cached", len(solution.unreadable))
        return solution
    return _publish(path, solution, replace=force)


def _publish(path: Path, solution: FlightSolution, replace: bool = False) -> FlightSolution:
    """Store ``solution`` at ``path`` unless a solution is stored there already, and return the stored one
    (``replace``: store it in any case). A failure to write costs only the solving next time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # not *.json
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(solution.to_json(), f, indent=2)
            os.chmod(tmp, 0o644)
            if replace:
                os.replace(tmp, path)
                return solution
            try:
                os.link(tmp, path)  # atomic: fails when the name exists
                return solution
            except FileExistsError:
                log.info("the flight was solved by another process meanwhile: using its solution %s", path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return _read(path)
    except (OSError, ValueError, KeyError, TypeError) as e:  # no hard links here, a full disk, a damaged file
        log.warning("cannot cache the solution at %s (%s): using this process's", path, e)
        return solution


def _read(path: Path) -> FlightSolution:
    solution = FlightSolution.from_json(json.loads(path.read_text()))
    with contextlib.suppress(OSError):  # last use, for the cache's pruning (tiecache.prune)
        os.utime(path)
    return solution


def _solve(root: Path, photos: list[Photo], gsd_m: float, match: MatchSettings,
           adjustment: AdjustSettings, blend: BlendSettings) -> FlightSolution:
    matched = match_photos(photos, match, gsd_m=gsd_m, cache=TieCache(root))
    unreadable = {photos[k].image_id: reason for k, reason in matched.unreadable.items()}
    usable = [k for k in range(len(photos)) if k not in matched.unreadable]
    remap = {k: n for n, k in enumerate(usable)}
    photos = [photos[k] for k in usable]
    thumbs = [matched.thumbs[k] for k in usable] if matched.thumbs else None
    ties = [TiePair(remap[t.i], remap[t.j], t.uv_i, t.uv_j) for t in matched.ties if t.i in remap and t.j in remap]
    fixes = gross_yaw_errors(photos, ties) if photos else {}
    for k, deg in fixes.items():
        p = photos[k]
        photos[k] = replace(p, pose=replace(p.pose, yaw_deg=p.pose.yaw_deg + deg))
    if not photos:
        return FlightSolution({}, unreadable, 0, matched.pairs_tried, 0, 0, 0, float("nan"), float("nan"), 0.0)
    adj = adjust(photos, ties, gsd_m, adjustment)
    # one exposure balance for the flight too, so neighbouring cells agree in colour as well as in place
    gains = estimate_gains([PlacedPhoto(p, h) for p, h in zip(photos, adj.homographies, strict=True)], blend,
                           thumbs=thumbs)
    places = {p.image_id: Placement(adj.homographies[k], float(fixes.get(k, 0.0)), bool(adj.tied[k]),
                                    float(adj.shift_m[k]), tuple(float(g) for g in gains[k]))
              for k, p in enumerate(photos)}
    log.info("solved %d photos: %d of %d pairs matched, ties %.3f -> %.3f m", len(photos), len(ties),
             matched.pairs_tried, adj.rms_before_m, adj.rms_after_m)
    for flight, scale in adj.flight_scale_change.items():  # what its altitudes and compass share, as placed
        log.info("flight %s: photos scaled %+.2f %% and turned %+.2f degrees on average from their metadata",
                 flight or "-", 100 * scale, adj.flight_yaw_change_deg[flight])
    if adj.terrain is not None:
        hts = adj.terrain.heights
        log.info("terrain: %d x %d nodes every %.1f m, heights %.2f to %.2f m about the plane", *hts.shape,
                 adj.terrain.cell_m, hts.min(), hts.max())
    return FlightSolution(places, unreadable, len(photos), matched.pairs_tried, len(ties), adj.n_ties,
                          adj.n_outliers, adj.rms_before_m, adj.rms_after_m,
                          float(np.mean(np.abs(adj.yaw_change_deg))),
                          adj.terrain.to_json() if adj.terrain is not None else None, adj.method,
                          adj.pairs_rejected)
