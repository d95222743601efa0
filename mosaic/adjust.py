"""Place every photo of a cell on the ground at once: tie points plus GPS as a weighted prior.

Each photo starts at its GPS placement ``H_i`` (pixels -> ground, from :mod:`skysieve.camera`). The
adjustment finds, per photo, a small similarity on the ground about its camera position ``c_i``::

    g' = g + [[a, -b], [b, a]] (g - c_i) + (tx, ty)

(``a`` ~ scale error, ``b`` ~ yaw error in radians, ``t`` the GPS error in metres). Tie residuals
``g'_i - g'_j`` (metres) and the priors ``a/σ_scale``, ``b/σ_yaw``, ``t/σ_gps`` are linear in the
parameters, so the Jacobian is one constant sparse matrix and the (4 n x 4 n) normal equations are
tiny and sparse: iteratively reweighted least squares with a Huber loss (scipy.sparse) solves it in
milliseconds, robust to the odd wrong match. A photo without ties keeps its GPS placement (its prior holds it at zero).

A 2-D placement cannot see a bias shared by all GPS fixes; with independent per-photo noise the mean of
many photos is what pins the mosaic to the ground.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from skysieve.mosaic.matching import TiePair
from skysieve.mosaic.photos import Photo, apply_homography, ground_homography

__all__ = ["AdjustSettings", "Adjustment", "adjust"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AdjustSettings:
    """Weights of the adjustment (one-sigma values)."""

    gps_sigma_m: float = 1.5  # horizontal GPS error per photo
    yaw_sigma_deg: float = 5.0  # gimbal yaw error
    scale_sigma: float = 0.05  # relative scale error (height above ground)
    tie_sigma_px: float = 1.0  # tie-point precision, in matching pixels
    huber_sigmas: float = 3.0  # residuals beyond this many sigmas count linearly
    outer_iterations: int = 4  # re-linearisations


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


def _tie_rows(ties: list[TiePair], h0: list[np.ndarray], centres: np.ndarray, n: int):
    """Sparse Jacobian rows and constant part of the tie residuals (metres)."""
    rows, cols, vals, r0 = [], [], [], []
    k = 0
    for tp in ties:
        gi, gj = apply_homography(h0[tp.i], tp.uv_i), apply_homography(h0[tp.j], tp.uv_j)
        # lever arms from a common point: scaling must not shrink the residuals themselves (which would
        # reward shrinking the whole block); exact at convergence, re-linearised by the outer loop
        mid = 0.5 * (gi + gj)
        di, dj = mid - centres[tp.i], mid - centres[tp.j]
        m = len(gi)
        rx = k + 2 * np.arange(m)
        ry = rx + 1
        for photo, d, sign in ((tp.i, di, 1.0), (tp.j, dj, -1.0)):
            base = 4 * photo
            # x row: dx*a - dy*b + tx ; y row: dy*a + dx*b + ty
            rows += [rx, rx, rx, ry, ry, ry]
            cols += [np.full(m, base), np.full(m, base + 1), np.full(m, base + 2), np.full(m, base),
                     np.full(m, base + 1), np.full(m, base + 3)]
            vals += [sign * d[:, 0], -sign * d[:, 1], np.full(m, sign), sign * d[:, 1], sign * d[:, 0],
                     np.full(m, sign)]
        r0.append((gi - gj).ravel())
        k += 2 * m
    if not k:
        return sp.csr_matrix((0, 4 * n)), np.zeros(0)
    j = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(k, 4 * n))
    return j, np.concatenate(r0)


def _irls(jac: sp.csr_matrix, r0: np.ndarray, n_tie_rows: int, huber: float, iterations: int = 8) -> np.ndarray:
    """Minimise Σ ρ(J x + r0) with Huber's ρ on tie rows (iteratively reweighted sparse normal equations).

    Tie residuals come in (x, y) pairs; a pair is weighted by its length so one bad match counts once.
    """
    w = np.ones(len(r0))
    x = np.zeros(jac.shape[1])
    for _ in range(iterations):
        jw = sp.diags(w) @ jac
        x_new = spla.spsolve((jac.T @ jw).tocsc(), -(jw.T @ r0))
        r = jac @ x_new + r0
        e = np.repeat(np.hypot(r[:n_tie_rows:2], r[1:n_tie_rows:2]), 2)
        w[:n_tie_rows] = np.where(e <= huber, 1.0, huber / np.maximum(e, 1e-12))
        done = np.max(np.abs(x_new - x)) < 1e-6 if len(x) else True
        x = x_new
        if done:
            break
    return x


def _rms(e: np.ndarray) -> float:
    return float(np.sqrt(np.mean(e ** 2))) if len(e) else float("nan")


def _similarity(p: np.ndarray, c: np.ndarray) -> np.ndarray:
    """3 x 3 matrix of g -> g + [[a, -b], [b, a]] (g - c) + t for p = (a, b, tx, ty)."""
    a, b, tx, ty = p
    m = np.array([[1 + a, -b], [b, 1 + a]])
    out = np.eye(3)
    out[:2, :2] = m
    out[:2, 2] = c + np.array([tx, ty]) - m @ c
    return out


def _params(s: np.ndarray, c: np.ndarray) -> np.ndarray:
    """(a, b, tx, ty) about ``c`` of a similarity matrix (inverse of :func:`_similarity`)."""
    m = s[:2, :2]
    t = m @ c + s[:2, 2] - c
    return np.array([m[0, 0] - 1, m[1, 0], t[0], t[1]])


def _tie_errors(ties: list[TiePair], homs) -> np.ndarray:
    """Ground distance (metres) between the two ends of every tie under the given placements."""
    if not ties:
        return np.zeros(0)
    return np.concatenate([np.linalg.norm(apply_homography(homs[t.i], t.uv_i) - apply_homography(homs[t.j], t.uv_j),
                                          axis=1) for t in ties])


def adjust(photos: list[Photo], ties: list[TiePair], tie_sigma_m: float,
           settings: AdjustSettings | None = None) -> Adjustment:
    """Solve all photos' placements together. ``tie_sigma_m``: tie precision on the ground (metres)."""
    settings = settings or AdjustSettings()
    n = len(photos)
    h0 = [ground_homography(p) for p in photos]
    centres = np.array([p.centre_xy for p in photos], dtype=float)
    sig = np.array([settings.scale_sigma, math.radians(settings.yaw_sigma_deg), settings.gps_sigma_m,
                    settings.gps_sigma_m])
    jp = sp.diags(np.tile(1.0 / sig, n))
    tied = np.zeros(n, bool)
    for tp in ties:
        tied[tp.i] = tied[tp.j] = True

    corr = np.tile(np.eye(3), (n, 1, 1))  # ground -> adjusted ground, per photo
    p = np.zeros((n, 4))
    _, rt0 = _tie_rows(ties, h0, centres, n)
    for _ in range(settings.outer_iterations if len(rt0) else 0):
        homs = [corr[i] @ h0[i] for i in range(n)]
        jt, rt = _tie_rows(ties, homs, centres, n)
        jac = sp.vstack([jt / tie_sigma_m, jp]).tocsr()
        r_const = np.concatenate([rt / tie_sigma_m, (p / sig).ravel()])
        dx = _irls(jac, r_const, n_tie_rows=len(rt), huber=settings.huber_sigmas).reshape(n, 4)
        corr = np.array([_similarity(dx[i], centres[i]) @ corr[i] for i in range(n)])
        p = np.array([_params(corr[i], centres[i]) for i in range(n)])
        if np.abs(dx[:, 2:]).max() < 1e-4 and np.abs(dx[:, :2]).max() < 1e-7:
            break
    homs = np.array([corr[i] @ h0[i] for i in range(n)])
    after = _tie_errors(ties, homs)
    before = _tie_errors(ties, h0)
    inlier = after < 3 * tie_sigma_m * settings.huber_sigmas
    return Adjustment(
        homographies=homs,
        shift_m=np.hypot(p[:, 2], p[:, 3]),
        yaw_change_deg=-np.degrees(np.arctan2(p[:, 1], 1 + p[:, 0])),  # clockwise, like yaw
        scale_change=np.hypot(1 + p[:, 0], p[:, 1]) - 1,
        tied=tied,
        rms_before_m=_rms(before[inlier]),
        rms_after_m=_rms(after[inlier]),
        n_ties=len(after),
        n_outliers=int((~inlier).sum()),
    )
