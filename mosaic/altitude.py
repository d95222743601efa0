"""Height above ground of each photo: from DJI XMP, from GPS altitude relative to take-off, or from the images.

Sources, in the order ingest tries them (the ``images.altitude_source`` column names the one used):

``xmp_relative``
    DJI XMP ``RelativeAltitude``: barometric height above the take-off point.
``gps_relative``
    EXIF ``GPSAltitude`` minus the take-off point's altitude. On DJI drones GPSAltitude is above sea
    level, so it says nothing about the ground unless the take-off altitude is known. The rule
    (:func:`takeoff_altitude`) accepts two kinds of evidence and nothing else:

    1. *calibration*: other photos of the same flight carry both XMP ``RelativeAltitude`` and
       GPSAltitude; the take-off altitude is the median of their differences (a flight where some
       files lost their XMP in an editing tool);
    2. *ground-level start*: the flight's first photo (by capture time) is its lowest, and the
       flight's median altitude lies at least ``min_climb_m`` above it: the drone photographed its
       take-off spot, then climbed. The first photo's altitude is the ground.

    Where the images also allow an estimate (below), the two are compared, and the GPS figure is
    dropped for the image estimate when they disagree by more than ``max_disagreement``.
``image_estimate``
    Pixel shift between overlapping neighbours against their GPS distance. For two nadir photos at
    height H taken D metres apart, a ground point moves ``D * f / H`` pixels (f: focal length in
    pixels), so ``H = D * f / shift``. The shift is measured on the reduced decodes with ORB
    features and a RANSAC similarity (rotation + scale + shift), which copes with yaw differences.
``user``
    ``--altitude`` from the command line, when nothing above applies.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["AltitudeSettings", "Features", "detect_features", "pair_height", "takeoff_altitude",
           "estimate_heights", "ALTITUDE_SOURCES"]

log = logging.getLogger(__name__)

ALTITUDE_SOURCES = ("xmp_relative", "gps_relative", "image_estimate", "user")


@dataclass(frozen=True)
class AltitudeSettings:
    """Rules for the height above ground (metres) and the image-based estimate."""

    min_height_m: float = 5.0  # photos lower than this are on the ground or taking off: rejected
    min_climb_m: float = 10.0  # ground-level start: the flight's median this far above the first photo
    max_disagreement: float = 0.2  # GPS-relative vs image estimate: relative difference tolerated
    n_features: int = 1500  # ORB features per reduced decode
    fast_threshold: int = 10  # ORB corner contrast (grey levels); OpenCV's 20 finds too few over fields
    min_inliers: int = 25  # RANSAC inliers for a usable pair
    min_baseline_m: float = 2.0  # neighbours closer than this (GPS noise) are skipped
    neighbours: int = 3  # nearest neighbours tried per photo
    max_pair_scale_change: float = 0.25  # |scale - 1| above this: the pair differs in height too much
    local_pairs: int = 15  # a photo's height: median of this many pair figures nearest to it


@dataclass(frozen=True)
class Features:
    """ORB keypoints of a reduced decode: ``xy`` (N x 2: col, row, reduced px), ``descriptors`` (N x 32 uint8).

    ``size_xy`` is the reduced image's (cols, rows); ``scale`` reduced px per full-size px.
    """

    xy: np.ndarray
    descriptors: np.ndarray
    size_xy: tuple[int, int]
    scale: float


def detect_features(gray: np.ndarray, scale: float, settings: AltitudeSettings = AltitudeSettings()) -> Features:
    """ORB features of a grey reduced decode (rows x cols uint8)."""
    import cv2

    orb = cv2.ORB_create(nfeatures=settings.n_features, fastThreshold=settings.fast_threshold)
    kps, desc = orb.detectAndCompute(gray, None)
    xy = np.array([k.pt for k in kps], dtype=np.float32).reshape(-1, 2)
    if desc is None:
        desc = np.zeros((0, 32), np.uint8)
    return Features(xy, desc, (gray.shape[1], gray.shape[0]), scale)


def pair_height(a: Features, b: Features, distance_m: float, focal_px: float,
                settings: AltitudeSettings = AltitudeSettings()) -> float | None:
    """Height (m) of photo ``b`` from its pixel shift against ``a``, taken ``distance_m`` apart.

    ``focal_px`` is the full-size focal length in pixels (both photos from the same camera). Returns
    None when the pair does not overlap enough to match, or the match is not a plausible similarity.
    """
    import cv2

    if len(a.xy) < settings.min_inliers or len(b.xy) < settings.min_inliers or distance_m < settings.min_baseline_m:
        return None
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    pairs = matcher.knnMatch(a.descriptors, b.descriptors, k=2)
    good = [m[0] for m in pairs if len(m) == 2 and m[0].distance < 0.8 * m[1].distance]
    if len(good) < settings.min_inliers:
        return None
    src = a.xy[[m.queryIdx for m in good]]
    dst = b.xy[[m.trainIdx for m in good]]
    matrix, inliers = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=2.0,
                                                  maxIters=4000, confidence=0.999)
    if matrix is None or inliers is None or int(inliers.sum()) < settings.min_inliers:
        return None
    zoom = float(np.hypot(matrix[0, 0], matrix[1, 0]))
    if abs(zoom - 1.0) > settings.max_pair_scale_change:
        return None
    centre_a = np.array([a.size_xy[0] / 2.0, a.size_xy[1] / 2.0, 1.0])
    centre_b = np.array([b.size_xy[0] / 2.0, b.size_xy[1] / 2.0])
    shift_px = float(np.hypot(*(matrix @ centre_a - centre_b))) / b.scale  # full-size pixels
    if shift_px < 2.0 / b.scale:
        return None
    return distance_m * focal_px / shift_px


def takeoff_altitude(gps_altitude_m: Sequence[float | None], relative_altitude_m: Sequence[float | None],
                     settings: AltitudeSettings = AltitudeSettings()) -> tuple[float, str] | None:
    """Altitude of the take-off point (same datum as GPSAltitude, metres) and the evidence, or None.

    Both sequences are per photo of one flight, in capture order. Evidence ``"xmp_calibration"``:
    photos with both altitudes; ``"ground_start"``: the first photo is the lowest and the flight's
    median is at least ``min_climb_m`` above it. See the module docstring.
    """
    diffs = [g - r for g, r in zip(gps_altitude_m, relative_altitude_m, strict=True) if g is not None and r is not None]
    if diffs:
        return float(np.median(diffs)), "xmp_calibration"
    alts = [g for g in gps_altitude_m if g is not None]
    first = gps_altitude_m[0] if len(gps_altitude_m) else None
    if first is None or len(alts) < 2:
        return None
    if first <= min(alts) and float(np.median(alts)) - first >= settings.min_climb_m:
        return float(first), "ground_start"
    return None


def estimate_heights(features: Sequence[Features | None], positions_xy: np.ndarray, focal_px: Sequence[float],
                     groups: Sequence[str], settings: AltitudeSettings = AltitudeSettings()) -> list[float | None]:
    """Per-photo heights (m) from pixel shift against GPS distance; None for photos without features.

    ``positions_xy``: camera positions (N x 2, metres, a projected CRS); ``focal_px``: full-size focal
    lengths; ``groups``: a camera key per photo (only photos of one camera are paired).

    One pair's figure carries the GPS error of two fixes over a baseline of a few tens of metres (a
    consumer GPS at 1.5 m gives about +-10 %), so a photo's height is the median of the ``local_pairs``
    pair figures nearest to it (by pair midpoint): noise averages out, while a slow change of height
    across a large survey (terrain, a second block at another height) is followed. Near the boundary
    of two blocks flown at different heights the figures mix (photos of different heights do not
    pair, but their pairs lie side by side); a photo's own pairs alone would be too noisy to tell.
    """
    n = len(features)
    positions_xy = np.asarray(positions_xy, dtype=float).reshape(n, 2)
    pairs: list[tuple[int, int, float]] = []
    done: set[tuple[int, int]] = set()
    for i in range(n):
        if features[i] is None:
            continue
        d = np.hypot(*(positions_xy - positions_xy[i]).T)
        order = [j for j in np.argsort(d) if j != i and features[j] is not None and groups[j] == groups[i]
                 and d[j] >= settings.min_baseline_m][: settings.neighbours]
        for j in order:
            key = (min(i, j), max(i, j))
            if key in done:
                continue
            done.add(key)
            h = pair_height(features[j], features[i], float(d[j]), focal_px[i], settings)
            if h is not None:
                pairs.append((i, int(j), h))
    if not pairs:
        return [None] * n
    h_all = np.array([h for _, _, h in pairs])
    mid = np.array([(positions_xy[i] + positions_xy[j]) / 2.0 for i, j, _ in pairs])
    out: list[float | None] = []
    for i in range(n):
        if features[i] is None:
            out.append(None)
            continue
        nearby = h_all[np.argsort(np.hypot(*(mid - positions_xy[i]).T))[: settings.local_pairs]]
        out.append(float(np.median(nearby)))
    log.info("image-based height estimate: median %.1f m (pairs %.1f-%.1f m) from %d matched of %d tried pairs",
             float(np.median(h_all)), float(h_all.min()), float(h_all.max()), len(pairs), len(done))
    return out
