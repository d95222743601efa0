"""Place every photo of a cell on the ground at once: tie points plus GPS as a weighted prior.

Each photo starts at its GPS placement ``H_i`` (pixels -> ground, from :mod:`skysieve.camera`). The
adjustment finds, per photo, a small affine correction on the ground about its camera position ``c_i``::

    g' = g + A_i (g - c_i) + t_i

``A_i``'s similar part is the scale (height) and yaw error, its non-similar part (shear, anisotropy) what a
sloping ground does to a nadir photo, held close to zero by a tight prior; ``t_i`` is the GPS error
(metres). Tie residuals ``g'_i - g'_j`` (metres) and the priors are linear in the parameters, so each
Gauss-Newton step is one sparse least-squares problem whose normal equations (6 per photo, 2 per flight) are tiny:
iteratively reweighted least squares with a Huber loss (scipy.sparse) solves it in milliseconds, robust
to the odd wrong match. A photo without ties keeps its GPS placement (its prior holds it there).

The scale and yaw priors can hold a flight-shared part apart (``scale_bias_sigma``, ``yaw_bias_sigma_deg``):
one extra scale (rotation) parameter per flight that its photos' priors are centred on. Without it the
recorded altitudes and yaws are trusted to average down over the flight, which a take-off point above the
ground or a compass bias defeats: on a simulated 200-photo flight, recorded altitudes all 1 m high (1.7 %)
turn the mosaic's local p90 per 250 m cell from 4.2 to 9.0 px with per-photo priors only, 4.8 px with the
default 1 % shared scale.

Gross yaw errors (a line flown with the recorded yaw 180 degrees off) are found first from the pairs'
relative rotations (:func:`gross_yaw_errors`). A 2-D placement cannot see a bias shared by all GPS
fixes; with independent per-photo noise the mean of many photos is what pins the mosaic to the ground.

Heights (``terrain_cell_m > 0``, ``[mosaic] adjust = "terrain"``): ground that is not flat shows a point at
different places in two photos (its parallax, ``h`` times about the baseline over the flying height), which a
plane adjustment can only absorb by bending the photos (Brighton's park, ~2.5 m of relief: 0.58 m of local
misfit after the block's similarity). With heights, every tie end is lifted from its photo's plane point ``g``
to the ground under it, ``X = c + (g - c)(1 - h / H)`` (camera at plane position ``c``, height ``H``, read off
the placement as rendering reads it), ``h`` bilinear between the nodes of a coarse grid
(:class:`~skysieve.mosaic.terrain.Terrain`) whose heights are unknowns of the same sparse problem, with a
smoothness prior between neighbouring nodes. The ground's level and the photos' scale are one freedom to the
ties (raising the ground and the cameras together changes nothing they see): the recorded altitudes
(``terrain_scale_sigma``) and a weak prior on the level (``terrain_sigma_m``) hold it, and each step's
corrections are about the cameras' current positions, so scaling a photo never moves its camera towards its
fix for free. docs/bundle.md has the figures.

Safeguards (the demo flight, whose three false pairs pulled the terrain adjustment 61 m from GPS): pairs the
recorded placements contradict grossly are dropped first (:func:`false_pairs`); the terrain's Gauss-Newton
steps are kept only where they lower its objective (residuals in the images' pixels); and the plane is solved
too and kept where the terrain's solution is implausible beside it (:func:`_terrain_verdict`,
``Adjustment.method``).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from skysieve.mosaic.matching import TiePair
from skysieve.mosaic.photos import Photo, apply_homography, ground_homography
from skysieve.mosaic.terrain import Terrain

__all__ = ["AdjustSettings", "Adjustment", "adjust", "false_pairs", "gross_yaw_errors"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AdjustSettings:
    """Weights of the adjustment (one-sigma values)."""

    gps_sigma_m: float = 1.5  # horizontal GPS error per photo
    yaw_sigma_deg: float = 5.0  # gimbal yaw error per photo (about its flight's shared error, where one is set)
    scale_sigma: float = 0.05  # relative scale error per photo (height above ground), likewise
    # Errors every photo of a flight shares (one sigma; 0: none, the photos' errors independent). Independent
    # errors average down over a flight's n photos (sigma / sqrt(n)) and so pin the block's rotation and scale
    # (GPS alone: gps_sigma / sqrt(sum of squared distances from the block's centre)); a shared error does not
    # average down: a compass bias turns all recorded yaws alike; a take-off point above or below the surveyed
    # ground (the relative altitude is above take-off) or a focal length off in the camera table scales all
    # photos alike. With a shared sigma each flight gets one shared correction with that prior, and its photos'
    # priors are about it. Brighton (Phantom 3, 18 photos, GPS 0.5 m): its images put the flight's scale 3.5 %
    # off the altitude's and its yaw within 0.2 degree of the recorded one (single yaws 3.9 degrees sd). A 1 %
    # shared scale moves its mosaic's local p90 against model.laz from 0.776 to 0.685 m; 3 % gives 0.662 m but
    # lets the small simulated blocks of tests/mosaic/test_ortho.py (exact altitudes) drift past their bounds.
    yaw_bias_sigma_deg: float = 0.0
    scale_bias_sigma: float = 0.01
    tie_sigma_px: float = 1.0  # tie-point precision, in matching pixels
    huber_sigmas: float = 3.0  # residuals beyond this many sigmas count linearly
    outer_iterations: int = 4  # re-linearisations
    shear_sigma: float = 0.01  # non-similar part of a photo's correction (ground slope); ~0 = similarity only
    # The ground's heights (:mod:`~skysieve.mosaic.terrain`): 0 = the plane adjustment (every tie on the plane);
    # > 0: heights on a grid of nodes this far apart (metres) solved with the placements, each tie lifted to
    # the ground under it (its parallax between the two photos); the mosaic renders through them
    terrain_cell_m: float = 0.0
    terrain_sigma_m: float = 2.0  # the ground's level about the plane (the take-off point's), one sigma
    terrain_slope_sigma: float = 0.2  # height difference between neighbouring nodes, per metre (one sigma)
    # with heights, a photo's scale is its camera's height above the plane (the recorded altitude's error, about
    # the flight's shared one) rather than also the ground's relief under it: scale_sigma is replaced by this
    terrain_scale_sigma: float = 0.01
    # at most this many nodes (a survey too large for them at terrain_cell_m gets coarser ones): the solve's
    # cost grows faster than the nodes (200 photos, 3500 nodes: 5 s; 1600 photos, 20000 nodes: 33 s, 1.7 GiB)
    terrain_max_nodes: int = 20000
    # A pair of photos whose ties, at the recorded placements, disagree by more than the priors allow is a false
    # match (repeated structures, MAGSAC's consensus on a wrong homography), dropped before adjusting: its median
    # tie residual beyond both pair_gate_sigmas times what GPS, yaw and scale errors give it and
    # pair_gate_factor times the median pair's. The demo flight (GPS 1.5 m) has three such pairs with 182 ties
    # 140 m off; Huber alone let them pull the plane adjustment 8.5 m from GPS on average (81 m at most) and the
    # terrain adjustment into -50..+14 m heights and 61 m (1210 m at most)
    pair_gate_sigmas: float = 4.0
    pair_gate_factor: float = 5.0
    # With heights, the plane adjustment is solved too and kept instead when the terrain's solution is
    # implausible (:func:`_terrain_verdict`): heights beyond this share of the flying height, or photos moved
    # from GPS, or ties left as outliers, well beyond the plane's
    terrain_max_height_share: float = 0.3


@dataclass(frozen=True)
class Adjustment:
    """Result: per photo the adjusted pixel -> ground homography and how far it moved from GPS."""

    homographies: np.ndarray  # n x 3 x 3, native pixels (col, row) -> ground x/y, workspace CRS
    shift_m: np.ndarray  # n: movement of the camera position from GPS (metres)
    yaw_change_deg: np.ndarray  # n
    scale_change: np.ndarray  # n: relative
    tied: np.ndarray  # n bool: photo has tie points with another photo
    rms_before_m: float  # tie residual RMS at GPS placement (metres on the ground)
    rms_after_m: float  # tie residual RMS after adjustment, inliers (metres)
    n_ties: int
    n_outliers: int  # ties whose residual after adjustment exceeds 3 sigma
    # per flight id, the mean of its photos' corrections: its photos' shared scale error (take-off above the
    # ground, focal length) and compass bias as the images and GPS see them (to about GPS's block limit)
    flight_scale_change: dict[str, float] = field(default_factory=dict)
    flight_yaw_change_deg: dict[str, float] = field(default_factory=dict)
    terrain: Terrain | None = None  # the ground's heights solved with the placements (terrain_cell_m > 0)
    # what placed the photos: "plane", "terrain", or "plane (terrain rejected: why)"
    method: str = "plane"
    pairs_rejected: int = 0  # photo pairs dropped as false matches (:attr:`AdjustSettings.pair_gate_sigmas`)


NP = 6  # parameters per photo: a11, a12, a21, a22, tx, ty


def _tie_rows(ties: list[TiePair], h0: list[np.ndarray], centres: np.ndarray, n: int, lift=None, magnify=None):
    """Sparse Jacobian rows and constant part of the tie residuals (metres).

    ``lift``: (cameras: n x 3 plane position and height of every photo's camera, the :class:`Terrain` now):
    each end of a tie is lifted from the plane to the ground's height there first (``X = c + (g - c)(1 - h / H)``)
    and the residuals get columns for the terrain's nodes after the photos' (their parallax ``-(g - c) / H``).
    ``magnify``: a list that gets, lifted, every tie's ``H / (H - h)`` (mean of its two cameras): metres at
    the ground's height to metres on the plane, which are the images' pixels.
    """
    n_nodes = lift[1].heights.size if lift is not None else 0
    if not ties or not sum(len(t.uv_i) for t in ties):
        return sp.csr_matrix((0, NP * n + n_nodes)), np.zeros(0)
    pi = np.concatenate([np.full(len(t.uv_i), t.i) for t in ties])
    pj = np.concatenate([np.full(len(t.uv_j), t.j) for t in ties])
    gi = np.concatenate([apply_homography(h0[t.i], t.uv_i) for t in ties])
    gj = np.concatenate([apply_homography(h0[t.j], t.uv_j) for t in ties])
    if lift is not None:
        cams, terrain = lift
        ci, cj = cams[pi], cams[pj]
        h = terrain.sample(0.5 * (gi + gj))
        for _ in range(2):  # where the two rays meet the ground (heights are smooth: two passes suffice)
            xi = ci[:, :2] + (gi - ci[:, :2]) * (1 - h / ci[:, 2])[:, None]
            xj = cj[:, :2] + (gj - cj[:, :2]) * (1 - h / cj[:, 2])[:, None]
            h = terrain.sample(0.5 * (xi + xj))
        gi = ci[:, :2] + (gi - ci[:, :2]) * (1 - h / ci[:, 2])[:, None]
        gj = cj[:, :2] + (gj - cj[:, :2]) * (1 - h / cj[:, 2])[:, None]
        if magnify is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                magnify.append(0.5 * (ci[:, 2] / (ci[:, 2] - h) + cj[:, 2] / (cj[:, 2] - h)))
    # lever arms from a common point: scaling must not shrink the residuals themselves (which would
    # reward shrinking the whole block); exact at convergence, re-linearised by the outer loop
    # (lifted: a correction A (g - c) + t moves the plane point and t the camera, so the lifted point moves
    # by A (g - c)(1 - h / H) + t = A (X - c) + t to first order: the same rows about the lifted point)
    mid = 0.5 * (gi + gj)
    m = len(mid)
    rx = 2 * np.arange(m)
    ry = rx + 1
    ones = np.ones(m)
    rows, cols, vals = [], [], []
    for photo, sign in ((pi, 1.0), (pj, -1.0)):
        d = mid - centres[photo]
        base = NP * photo
        # x row: a11 dx + a12 dy + tx ; y row: a21 dx + a22 dy + ty
        rows += [rx, rx, rx, ry, ry, ry]
        cols += [base, base + 1, base + 4, base + 2, base + 3, base + 5]
        vals += [sign * d[:, 0], sign * d[:, 1], sign * ones, sign * d[:, 0], sign * d[:, 1], sign * ones]
    if lift is not None:
        # d X / d h of each end, -(X - c) / (H - h), about the common point as the lever arms are: the tie's
        # parallax. (About each end's own X it would hold a part proportional to the residual itself, and
        # raising the whole ground towards the cameras, with the photos scaled up to match, would shrink
        # every residual: rewarded without bound.)
        v = (mid - cj[:, :2]) / (cj[:, 2] - h)[:, None] - (mid - ci[:, :2]) / (ci[:, 2] - h)[:, None]
        idx, w = terrain.weights(mid)
        for k in range(4):
            rows += [rx, ry]
            cols += [NP * n + idx[:, k], NP * n + idx[:, k]]
            vals += [v[:, 0] * w[:, k], v[:, 1] * w[:, k]]
    j = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(2 * m, NP * n + n_nodes))
    return j, (gi - gj).ravel()


def _terrain_prior(terrain: Terrain, settings: AdjustSettings) -> sp.csr_matrix:
    """Prior rows on the terrain's nodes: the ground's level about the take-off plane (``terrain_sigma_m``)
    and the difference between neighbouring nodes (``terrain_slope_sigma`` per metre): the ground is smooth
    between ties, and a node far from every tie follows its neighbours."""
    rows, cols = terrain.shape
    idx = np.arange(rows * cols).reshape(rows, cols)
    pairs = np.concatenate([np.column_stack([idx[:, :-1].ravel(), idx[:, 1:].ravel()]),
                            np.column_stack([idx[:-1, :].ravel(), idx[1:, :].ravel()])])
    s = 1.0 / (settings.terrain_slope_sigma * terrain.cell_m)
    m = len(pairs)
    diff = sp.csr_matrix((np.concatenate([np.full(m, s), np.full(m, -s)]),
                          (np.concatenate([np.arange(m), np.arange(m)]), pairs.T.ravel())), shape=(m, rows * cols))
    # the ground's level about the plane (its mean height over the nodes: terrain_sigma_m) is what the ties
    # cannot tell from the photos' scale; each node's own prior is sqrt(nodes) times weaker, which holds the
    # mean as tightly as one row on it would (and keeps the normal equations sparse), its shape hardly at all
    level = 1.0 / (settings.terrain_sigma_m * np.sqrt(rows * cols))
    return sp.vstack([sp.identity(rows * cols, format="csr") * level, diff]).tocsr()


def _shared_terms(settings: AdjustSettings) -> list[tuple[list[tuple[int, float]], float, float]]:
    """The flight-shared terms the settings ask for: (the photo prior rows it enters, as (row = parameter
    index, sign), the photo rows' sigma, the flight's sigma). A shared scale S enters a11 - S and a22 - S; a
    shared counter-clockwise rotation R enters a12 + R and a21 - R."""
    terms = [([(0, 1.0), (3, 1.0)], settings.scale_sigma, settings.scale_bias_sigma),
             ([(1, -1.0), (2, 1.0)], math.radians(settings.yaw_sigma_deg), math.radians(settings.yaw_bias_sigma_deg))]
    return [t for t in terms if t[2] > 0]


def _prior(photos: list[Photo], settings: AdjustSettings) -> sp.csr_matrix:
    """Prior rows. Per photo: scale (a11, a22) and rotation (a12, a21) about its flight's shared scale and
    rotation, GPS (tx, ty), and the non-similar part (a11 - a22, a12 + a21), which only ground slope and lens
    effects produce. Per flight: its shared scale and rotation, in columns after the photos' (one block of
    flights per term of :func:`_shared_terms`)."""
    n = len(photos)
    s, r = settings.scale_sigma, math.radians(settings.yaw_sigma_deg)
    g, sh = settings.gps_sigma_m, settings.shear_sigma
    block = np.array([[1 / s, 0, 0, 0, 0, 0], [0, 1 / r, 0, 0, 0, 0], [0, 0, 1 / r, 0, 0, 0], [0, 0, 0, 1 / s, 0, 0],
                      [0, 0, 0, 0, 1 / g, 0], [0, 0, 0, 0, 0, 1 / g], [1 / sh, 0, 0, -1 / sh, 0, 0],
                      [0, 1 / sh, 1 / sh, 0, 0, 0]])
    photo_rows = sp.block_diag([block] * n, format="csr")
    terms = _shared_terms(settings)
    if not terms:
        return photo_rows
    flights = sorted({p.flight_id for p in photos})
    m = len(flights)
    of = np.array([flights.index(p.flight_id) for p in photos])
    rows, cols, vals = [], [], []
    for c, (entries, sigma_photo, _) in enumerate(terms):
        for row, sign in entries:
            rows.append(len(block) * np.arange(n) + row)
            cols.append(c * m + of)
            vals.append(np.full(n, -sign / sigma_photo))  # the photo's parameter minus its flight's share
    shared_cols = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                                shape=(len(block) * n, len(terms) * m))
    flight_rows = sp.hstack([sp.csr_matrix((len(terms) * m, NP * n)),
                             sp.diags(np.repeat([1 / sigma_flight for *_, sigma_flight in terms], m))])
    return sp.vstack([sp.hstack([photo_rows, shared_cols]), flight_rows]).tocsr()


def _irls(jac: sp.csr_matrix, r0: np.ndarray, n_tie_rows: int, huber: float, iterations: int = 8) -> np.ndarray:
    """Minimise Σ ρ(J x + r0) with Huber's ρ on tie rows (iteratively reweighted sparse normal equations).

    Tie residuals come in (x, y) pairs; a pair is weighted by its length so one bad match counts once.
    """
    w = np.ones(len(r0))
    x = np.zeros(jac.shape[1])
    for _ in range(iterations):
        jw = sp.diags(w) @ jac
        x_new = _solve_spd((jac.T @ jw).tocsc(), -(jw.T @ r0))
        r = jac @ x_new + r0
        e = np.repeat(np.hypot(r[:n_tie_rows:2], r[1:n_tie_rows:2]), 2)
        w[:n_tie_rows] = np.where(e <= huber, 1.0, huber / np.maximum(e, 1e-12))
        done = np.max(np.abs(x_new - x)) < 1e-6 if len(x) else True
        x = x_new
        if done:
            break
    return x


def _solve_spd(a: sp.csc_matrix, b: np.ndarray) -> np.ndarray:
    """``a x = b`` for symmetric positive definite ``a`` (normal equations): SuperLU with a symmetric
    ordering and diagonal pivots, 5 times faster than its general default on the terrain's grid (0.09 against
    0.44 s for 200 photos and 3500 nodes)."""
    if a.shape[0] == 0:
        return np.zeros(0)
    lu = spla.splu(a, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True})
    return lu.solve(b)


def gross_yaw_errors(photos: list[Photo], ties: list[TiePair], min_deg: float = 20.0) -> dict[int, float]:
    """Photos whose recorded yaw the images contradict by more than ``min_deg``: {index: correction, degrees
    clockwise}. Relative rotations of matched pairs are chained from the best-connected photo over a
    spanning tree, then centred on the majority, so a whole line flown with a yaw 180 degrees off (seen on
    real DJI flights) is turned back before the small-angle adjustment.
    """
    import cv2

    n = len(photos)
    h0 = [ground_homography(p) for p in photos]
    edges: dict[int, list[tuple[int, float]]] = {i: [] for i in range(n)}
    for t in ties:
        gi, gj = apply_homography(h0[t.i], t.uv_i), apply_homography(h0[t.j], t.uv_j)
        o = gi.mean(0)
        m, _ = cv2.estimateAffinePartial2D((gi - o).astype(np.float32), (gj - o).astype(np.float32))
        if m is None:
            continue
        theta = math.atan2(m[1, 0], m[0, 0])  # counter-clockwise rotation taking i's placement onto j's
        edges[t.i].append((t.j, theta))
        edges[t.j].append((t.i, -theta))
    delta = np.full(n, np.nan)  # counter-clockwise correction of each photo (radians)
    for root in sorted(range(n), key=lambda k: -len(edges[k])):
        if not np.isnan(delta[root]) or not edges[root]:
            continue
        delta[root] = 0.0
        stack = [root]
        while stack:
            i = stack.pop()
            for j, theta in edges[i]:
                if np.isnan(delta[j]):
                    delta[j] = delta[i] + theta
                    stack.append(j)
        comp = ~np.isnan(delta)
        # centre on the majority: the circular median-ish (mean of the angles in the largest 60-degree bin)
        angles = np.mod(delta[comp], 2 * math.pi)
        bins = np.round(angles / (math.pi / 3)).astype(int) % 6
        major = np.bincount(bins, minlength=6).argmax()
        ref = math.atan2(np.sin(angles[bins == major]).mean(), np.cos(angles[bins == major]).mean())
        delta[comp] = np.angle(np.exp(1j * (delta[comp] - ref)))
    out = {}
    for k in range(n):
        if not np.isnan(delta[k]) and abs(math.degrees(delta[k])) > min_deg:
            out[k] = -math.degrees(delta[k])  # yaw is clockwise
    return out


def _rms(e: np.ndarray) -> float:
    return float(np.sqrt(np.mean(e ** 2))) if len(e) else float("nan")


def _correction(p: np.ndarray, c: np.ndarray) -> np.ndarray:
    """3 x 3 matrix of g -> g + A (g - c) + t for p = (a11, a12, a21, a22, tx, ty)."""
    m = np.eye(2) + p[:4].reshape(2, 2)
    out = np.eye(3)
    out[:2, :2] = m
    out[:2, 2] = c + p[4:] - m @ c
    return out


def _params(s: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Parameters about ``c`` of an affine correction matrix (inverse of :func:`_correction`)."""
    m = s[:2, :2]
    t = m @ c + s[:2, 2] - c
    return np.concatenate([(m - np.eye(2)).ravel(), t])


def _tie_errors(ties: list[TiePair], homs, lift=None) -> np.ndarray:
    """Ground distance (metres) between the two ends of every tie under the given placements (``lift``: each
    end lifted to the terrain's height, as in :func:`_tie_rows`)."""
    if not ties:
        return np.zeros(0)
    if lift is not None:
        _, r = _tie_rows(ties, homs, np.zeros((len(homs), 2)), len(homs), lift)
        return np.hypot(r[0::2], r[1::2])
    return np.concatenate([np.linalg.norm(apply_homography(homs[t.i], t.uv_i) - apply_homography(homs[t.j], t.uv_j),
                                          axis=1) for t in ties])


def false_pairs(photos: list[Photo], ties: list[TiePair], settings: AdjustSettings) -> np.ndarray:
    """Per tie pair, True where it is a false match: its median ground residual at the recorded placements
    beyond both ``pair_gate_sigmas`` times what the priors allow the pair (two GPS errors, and the yaw and scale
    errors over its ties' lever arms) and ``pair_gate_factor`` times the median pair's. The median over a
    pair's ties is the ground's: ties on roofs and chimney tops (their parallax) are a minority of a true pair."""
    if not ties:
        return np.zeros(0, bool)
    h0 = [ground_homography(p) for p in photos]
    centres = np.array([p.centre_xy for p in photos], dtype=float)
    ang2 = math.radians(settings.yaw_sigma_deg) ** 2 + settings.scale_sigma ** 2
    med, allowed = np.zeros(len(ties)), np.zeros(len(ties))
    for k, t in enumerate(ties):
        gi, gj = apply_homography(h0[t.i], t.uv_i), apply_homography(h0[t.j], t.uv_j)
        med[k] = np.median(np.linalg.norm(gi - gj, axis=1)) if len(gi) else 0.0
        li = np.median(np.linalg.norm(gi - centres[t.i], axis=1)) if len(gi) else 0.0
        lj = np.median(np.linalg.norm(gj - centres[t.j], axis=1)) if len(gj) else 0.0
        allowed[k] = math.sqrt(2 * settings.gps_sigma_m ** 2 + ang2 * (li ** 2 + lj ** 2))
    return (med > settings.pair_gate_sigmas * allowed) & (med > settings.pair_gate_factor * np.median(med))


def _terrain_verdict(plane: Adjustment, terrain: Adjustment, flying_m: float, settings: AdjustSettings) -> str | None:
    """Why the terrain's solution is implausible beside the plane's (None: it is not). A height-aware
    adjustment has more freedom than the plane's; when it uses it to move photos far from GPS, to leave
    ties unexplained, or to raise the ground towards the cameras, it has fitted something other than relief."""
    h = np.abs(terrain.terrain.heights) if terrain.terrain is not None else np.zeros(1)
    top = float(np.percentile(h, 99))
    if top > settings.terrain_max_height_share * flying_m:
        return f"heights to {top:.1f} m, beyond {settings.terrain_max_height_share:.0%} of the {flying_m:.0f} m flight"
    g = settings.gps_sigma_m
    pm, tm = float(np.mean(plane.shift_m)), float(np.mean(terrain.shift_m))
    if tm > pm + 2 * g and tm > 1.5 * pm:
        return f"mean shift from GPS {tm:.1f} m against the plane's {pm:.1f} m"
    px, tx = float(np.max(plane.shift_m)), float(np.max(terrain.shift_m))
    if tx > px + 5 * g and tx > 2 * px:
        return f"max shift from GPS {tx:.1f} m against the plane's {px:.1f} m"
    po, to = plane.n_outliers / max(plane.n_ties, 1), terrain.n_outliers / max(terrain.n_ties, 1)
    if to > po + 0.05 and to > 2 * po:
        return f"{to:.0%} of the ties outliers against the plane's {po:.0%}"
    if terrain.rms_after_m > 1.5 * plane.rms_after_m:
        return f"tie rms {terrain.rms_after_m:.3f} m against the plane's {plane.rms_after_m:.3f} m"
    return None


def adjust(photos: list[Photo], ties: list[TiePair], tie_sigma_m: float,
           settings: AdjustSettings | None = None) -> Adjustment:
    """Solve all photos' placements together. ``tie_sigma_m``: tie precision on the ground (metres).

    Pairs the recorded placements contradict grossly (:func:`false_pairs`) are dropped first.
    With ``settings.terrain_cell_m > 0`` the ground's heights are solved too (:class:`Adjustment.terrain`):
    the placements are then the photos' projections onto the plane z = 0 that, lifted through those heights,
    bring the ties together (render through the same heights). The plane adjustment is solved as well, and
    returned instead where the terrain's solution is implausible beside it (:func:`_terrain_verdict`;
    ``Adjustment.method`` says which and why)."""
    settings = settings or AdjustSettings()
    bad = false_pairs(photos, ties, settings)
    if bad.any():
        log.info("%d of %d photo pairs dropped as false matches (%d ties)", int(bad.sum()), len(ties),
                 sum(len(t.uv_i) for t, b in zip(ties, bad, strict=True) if b))
        ties = [t for t, b in zip(ties, bad, strict=True) if not b]
    plane = _adjust(photos, ties, tie_sigma_m, replace(settings, terrain_cell_m=0.0))
    plane = replace(plane, pairs_rejected=int(bad.sum()))
    if not settings.terrain_cell_m > 0 or not ties:
        return plane
    terrain = replace(_adjust(photos, ties, tie_sigma_m, settings), method="terrain", pairs_rejected=int(bad.sum()))
    flying = float(np.median([p.pose.z for p in photos]))
    why = _terrain_verdict(plane, terrain, flying, settings)
    if why is None:
        return terrain
    log.warning("terrain adjustment rejected (%s): the photos placed on the plane", why)
    return replace(plane, method=f"plane (terrain rejected: {why})")


def _adjust(photos: list[Photo], ties: list[TiePair], tie_sigma_m: float, settings: AdjustSettings) -> Adjustment:
    """:func:`adjust` without the checks: the plane or (``terrain_cell_m > 0``) the terrain adjustment."""
    if settings.terrain_cell_m > 0:
        # the flight's shared scale (a take-off point above the ground, a focal length off) is the ground's
        # level now: one freedom, held by the level's prior (terrain_sigma_m), not two
        settings = replace(settings, scale_sigma=settings.terrain_scale_sigma, scale_bias_sigma=0.0)
    n = len(photos)
    h0 = [ground_homography(p) for p in photos]
    centres = np.array([p.centre_xy for p in photos], dtype=float)
    jp = _prior(photos, settings)
    n_shared = jp.shape[1] - NP * n  # flight-shared scale and rotation corrections
    shared = np.zeros(n_shared)
    tied = np.zeros(n, bool)
    for tp in ties:
        tied[tp.i] = tied[tp.j] = True

    terrain = None
    if settings.terrain_cell_m > 0 and ties:
        mids = np.concatenate([0.5 * (apply_homography(h0[t.i], t.uv_i) + apply_homography(h0[t.j], t.uv_j))
                               for t in ties])
        cell = settings.terrain_cell_m
        terrain = Terrain.covering(mids, cell, margin_m=cell)
        while terrain.heights.size > settings.terrain_max_nodes:  # a large survey: coarser nodes, bounded cost
            cell *= max(1.05, math.sqrt(terrain.heights.size / settings.terrain_max_nodes))
            terrain = Terrain.covering(mids, cell, margin_m=cell)
    n_nodes = terrain.heights.size if terrain is not None else 0
    jh = _terrain_prior(terrain, settings) if terrain is not None else sp.csr_matrix((0, 0))
    # all prior rows: the photos' and flights' (columns: photos, flights), then the nodes' (columns: nodes)
    prior = sp.block_diag([jp, jh], format="csr") if n_nodes else jp

    corr = np.tile(np.eye(3), (n, 1, 1))  # ground -> adjusted ground, per photo
    p = np.zeros((n, NP))
    _, rt0 = _tie_rows(ties, h0, centres, n)
    outer = settings.outer_iterations * (2 if terrain is not None else 1)

    def cost(corr_k, p_k, shared_k, terrain_k) -> float:
        """The terrain adjustment's objective: Huber's on the lifted tie residuals, in sigmas of the images'
        pixels (metres at the ground's height magnified to the plane's: raising the ground towards the
        cameras shrinks every residual in metres, not in pixels), squares on the priors (about GPS, the
        level, the slopes)."""
        homs_k = [corr_k[i] @ h0[i] for i in range(n)]
        mag: list[np.ndarray] = []
        _, r = _tie_rows(ties, homs_k, np.zeros((n, 2)), n, (_cameras(photos, homs_k), terrain_k), magnify=mag)
        e = np.hypot(r[0::2], r[1::2]) * mag[0] / tie_sigma_m
        if not np.all(np.isfinite(e)) or np.any(mag[0] <= 0):  # the ground at or above a camera
            return math.inf
        k = settings.huber_sigmas
        tie = np.where(e <= k, e ** 2, 2 * k * e - k * k).sum()
        r = prior @ np.concatenate([p_k.ravel(), shared_k, terrain_k.heights.ravel()])
        return float(tie + r @ r)

    now = cost(corr, p, shared, terrain) if terrain is not None and len(rt0) else math.inf
    for _ in range(outer if len(rt0) else 0):
        homs = [corr[i] @ h0[i] for i in range(n)]
        lift = (_cameras(photos, homs), terrain) if terrain is not None else None
        # with heights, each step's corrections are about the cameras where they are now, not where GPS put
        # them: a photo scaled about its GPS position would also move its camera, and scaling every photo up
        # while raising the ground to match would then pull the cameras onto their fixes, free of any cost
        # to the ties: a bias towards the cameras growing with the GPS error
        about = lift[0][:, :2] if lift is not None else centres
        jt, rt = _tie_rows(ties, homs, about, n, lift)
        # columns: photos, flights' shared terms, nodes
        jt = sp.hstack([jt[:, :NP * n], sp.csr_matrix((jt.shape[0], n_shared)), jt[:, NP * n:]]).tocsr()
        jac = sp.vstack([jt / tie_sigma_m, prior]).tocsr()
        state = np.concatenate([p.ravel(), shared] + ([terrain.heights.ravel()] if n_nodes else []))
        r_const = np.concatenate([rt / tie_sigma_m, prior @ state])
        step = _irls(jac, r_const, n_tie_rows=len(rt), huber=settings.huber_sigmas)
        dx, ds = step[:NP * n].reshape(n, NP), step[NP * n:NP * n + n_shared]
        dh = step[NP * n + n_shared:]
        if not n_nodes:
            shared = shared + ds
            corr = np.array([_correction(dx[i], about[i]) @ corr[i] for i in range(n)])
            p = np.array([_params(corr[i], centres[i]) for i in range(n)])
        else:
            # heights make the problem non-linear (a tie's lift divides by the camera's height above the
            # ground): a full Gauss-Newton step can raise the ground towards the cameras and diverge (a
            # built-up block whose roofs and chimneys give ties far above the ground). A step is taken only
            # where it lowers the objective, halved until it does; none does: converged
            for alpha in (1.0, 0.5, 0.25, 0.125, 0.0625, 0.03125):
                corr_k = np.array([_correction(alpha * dx[i], about[i]) @ corr[i] for i in range(n)])
                p_k = np.array([_params(corr_k[i], centres[i]) for i in range(n)])
                terrain_k = terrain.with_heights(terrain.heights.ravel() + alpha * dh)
                c = cost(corr_k, p_k, shared + alpha * ds, terrain_k)
                if c <= now:
                    break
            else:
                break
            now, corr, p, shared, terrain = c, corr_k, p_k, shared + alpha * ds, terrain_k
            dx, dh = alpha * dx, alpha * dh
        if (np.abs(dx[:, 4:]).max() < 1e-4 and np.abs(dx[:, :4]).max() < 1e-7
                and (not n_nodes or np.abs(dh).max() < 1e-3)):
            break
    homs = np.array([corr[i] @ h0[i] for i in range(n)])
    after = _tie_errors(ties, homs, (_cameras(photos, homs), terrain) if terrain is not None else None)
    before = _tie_errors(ties, h0)
    inlier = after < 3 * tie_sigma_m * settings.huber_sigmas
    yaw_change = -np.degrees(np.arctan2(p[:, 2] - p[:, 1], 2 + p[:, 0] + p[:, 3]))  # clockwise, like yaw
    scale_change = np.sqrt(np.abs((1 + p[:, 0]) * (1 + p[:, 3]) - p[:, 1] * p[:, 2])) - 1
    of_flight = {f: np.array([ph.flight_id == f for ph in photos]) for f in sorted({ph.flight_id for ph in photos})}
    return Adjustment(
        homographies=homs,
        shift_m=np.hypot(p[:, 4], p[:, 5]),
        yaw_change_deg=yaw_change,
        scale_change=scale_change,
        tied=tied,
        rms_before_m=_rms(before[inlier]),
        rms_after_m=_rms(after[inlier]),
        n_ties=len(after),
        n_outliers=int((~inlier).sum()),
        flight_scale_change={f: float(scale_change[m].mean()) for f, m in of_flight.items()},
        flight_yaw_change_deg={f: float(yaw_change[m].mean()) for f, m in of_flight.items()},
        terrain=terrain,
    )


def _cameras(photos: list[Photo], homs) -> np.ndarray:
    """n x 3: every photo's camera position over the plane and height above it under placements ``homs`` (as
    rendering reads them: :func:`skysieve.mosaic.surface.camera_position`)."""
    from skysieve.mosaic.surface import camera_position

    return np.array([camera_position(p.camera, h, p.centre_xy) for p, h in zip(photos, homs, strict=True)])
