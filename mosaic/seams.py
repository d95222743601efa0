"""Where one photo hands over to the next, and how the hand-over is hidden.

Seamlines prefer each photo's centre: a ground point is taken from the photo whose (adjusted) centre is
nearest, the least-distorted, least-leaning part of any photo (a Voronoi partition of the ground). By
default :mod:`~skysieve.mosaic.seamcut` then moves each seam, within a corridor, onto a path where the
photos agree, so it goes around tanks, chimneys and trees (which lean differently in each photo) instead
of cutting or doubling them; :func:`label_weights` blends along those seams, :func:`seam_weights` along
the plain Voronoi ones. Across the seamline the photos are blended over a band of ``band_px`` output
pixels, and each photo fades out over its last ``taper_px`` pixels so that no edge shows. Exposure
differences are removed first by a gain per photo and colour channel, solved from the photos' overlaps
(as OpenCV's GainCompensator does).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["BlendSettings", "apply_gain_bgr", "edge_taper", "label_weights", "seam_weights", "solve_gains"]


@dataclass(frozen=True)
class BlendSettings:
    """Seam and blending widths."""

    band_px: float = 16.0  # blending band across a seamline, output pixels
    taper_px: float = 32.0  # fade-out at a photo's border, native pixels of the photo
    gain_sigma_noise: float = 10.0  # gain compensation: intensity noise (0-255 scale)
    gain_sigma_gain: float = 0.1  # gain compensation: prior spread of gains around 1


def apply_gain_bgr(img: np.ndarray, gain: tuple[float, float, float]) -> np.ndarray:
    """A BGR uint8 image times an RGB ``gain`` (a lookup table per channel); the image itself if the gain is 1."""
    if all(abs(g - 1.0) <= 1e-3 for g in gain):
        return img
    import cv2

    lut = np.arange(256, dtype=np.float32)[:, None] * np.asarray(gain[::-1], np.float32) + 0.5  # BGR
    return cv2.LUT(img, np.clip(lut, 0, 255).astype(np.uint8)[:, None, :])


def edge_taper(u: np.ndarray, v: np.ndarray, width: int, height: int, taper_px: float) -> np.ndarray:
    """0 outside the photo, rising smoothly to 1 at ``taper_px`` inside its border (float32).

    ``u``/``v``: native pixel coordinates (col, row; camera convention, centres at integer + 0.5).
    """
    e = np.minimum(np.minimum(u - 1.0, width - 1.0 - u), np.minimum(v - 1.0, height - 1.0 - v))
    t = np.clip(e / max(taper_px, 1e-6), 0.0, 1.0)
    t[~np.isfinite(t)] = 0.0
    return (t * t * (3 - 2 * t)).astype(np.float32)


def seam_weights(dist_m: list[np.ndarray], tapers: list[np.ndarray], band_m: float) -> list[np.ndarray]:
    """Blend weights from distances to each photo's centre (metres) and edge tapers; the best photo at a
    pixel gets 1, the others ``t_i exp(-d_i / band) / max_j t_j exp(-d_j / band)``.

    The nearest-centre photo dominates; neighbours fade in only within about a band of the seamline, and
    near a photo's edge its neighbour takes over smoothly. Pixels no photo covers get 0 everywhere.
    """
    with np.errstate(divide="ignore"):
        scores = [np.log(t) - d / np.float32(band_m) for d, t in zip(dist_m, tapers, strict=True)]
    best = np.full(dist_m[0].shape, -np.inf, np.float32)
    for sc in scores:
        np.maximum(best, sc, out=best)
    out = []
    for sc in scores:
        with np.errstate(invalid="ignore"):  # -inf - -inf where no photo covers: NaN, zeroed below
            w = np.exp(sc - best)
        w[~np.isfinite(w)] = 0
        out.append(w.astype(np.float32))
    return out


def label_weights(shares: list[np.ndarray], dist_m: list[np.ndarray], tapers: list[np.ndarray],
                  band_m: float) -> list[np.ndarray]:
    """Blend weights from a seam label map: ``shares`` are each photo's label indicator smoothed across a
    band (1 inside its region, 0.5 on its seam, 0 half a band beyond), times its edge taper, scaled so
    the best photo at a pixel gets 1.

    Where no photo's region reaches (the survey's outer border, outside every photo's interior), the
    nearest centre decides, through a term far too small to show anywhere else (``dist_m``, metres).
    Pixels no photo covers get 0 everywhere.
    """
    dmin = np.full(dist_m[0].shape, np.inf, np.float32)
    for d in dist_m:
        np.minimum(dmin, d, out=dmin)
    out = []
    best = np.zeros(dist_m[0].shape, np.float32)
    for s, d, t in zip(shares, dist_m, tapers, strict=True):
        w = t * np.maximum(s, np.float32(1e-6) * np.exp(-(d - dmin) / np.float32(band_m)))
        np.maximum(best, w, out=best)
        out.append(w)
    with np.errstate(invalid="ignore", divide="ignore"):
        for w in out:
            np.divide(w, best, out=w)
            w[~np.isfinite(w)] = 0
    return [w.astype(np.float32, copy=False) for w in out]


def solve_gains(n: int, overlaps: list[tuple[int, int, float, np.ndarray, np.ndarray]],
                settings: BlendSettings) -> np.ndarray:
    """Gains (n x 3) that make overlapping photos agree in mean colour.

    ``overlaps``: (i, j, pixel count, mean RGB of photo i there, mean RGB of photo j there). Minimises
    Σ N_ij (g_i m_ij - g_j m_ji)² / σ_n² + Σ N_i (1 - g_i)² / σ_g² per channel (a small linear system).
    """
    gains = np.ones((n, 3))
    if not overlaps:
        return gains
    sn2, sg2 = settings.gain_sigma_noise ** 2, settings.gain_sigma_gain ** 2
    for c in range(3):
        a = np.zeros((n, n))
        b = np.zeros(n)
        count = np.zeros(n)
        for i, j, nij, mi, mj in overlaps:
            count[i] += nij
            count[j] += nij
            a[i, i] += nij * mi[c] ** 2 / sn2
            a[j, j] += nij * mj[c] ** 2 / sn2
            a[i, j] -= nij * mi[c] * mj[c] / sn2
            a[j, i] -= nij * mi[c] * mj[c] / sn2
        prior = np.maximum(count, 1.0) / sg2
        a[np.diag_indices(n)] += prior
        b += prior
        gains[:, c] = np.linalg.solve(a, b)
    return np.clip(gains, 0.5, 2.0)
