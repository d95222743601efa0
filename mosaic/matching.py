"""Tie points between overlapping photos: SIFT on reduced images, ratio test, robust homography (MAGSAC).

All photos are reduced to about the same ground resolution (``match_gsd_m``) before detecting features, so
two cameras (or two altitudes) in one flight match alike. Only photos whose GPS footprints overlap are
compared. Tie points come back in each photo's native pixels (col, row; centres at integer + 0.5).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely

from skysieve.cpus import usable_cpus
from skysieve.errors import ImageReadError
from skysieve.mosaic.photos import Photo, apply_homography, decode_reduced, ground_homography, shrink
from skysieve.mosaic.tiecache import TieCache

__all__ = ["MatchSettings", "Features", "TiePair", "detect_features", "candidate_pairs", "match_pair",
           "match_photos", "match_gsd", "MatchResult", "DescriptorIndex", "PairKnn"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MatchSettings:
    """How photos are reduced and matched."""

    match_size_px: int = 800  # long side of the median reduced photo (pixels)
    max_features: int = 4000  # SIFT keypoints per photo, at most
    pixels_per_feature: float = 200.0  # and at most one per this many reduced pixels
    ratio: float = 0.8  # Lowe's ratio test
    ransac_px: float = 3.0  # MAGSAC threshold, reduced pixels
    min_inliers: int = 20  # fewer inliers: the pair does not match
    min_inliers_unguided: int = 30  # the same when matching without GPS guidance (a recorded yaw is wrong)
    max_ties: int = 120  # tie points kept per pair (spread over the overlap)
    search_radius_m: float = 6.0  # GPS-guided matching: how far from its predicted place a match may be
    min_overlap: float = 0.2  # footprint overlap / smaller footprint, to try a pair
    max_pairs_per_photo: int = 8  # the best-overlapping pairs kept for each photo
    threads: int | None = None  # None: the CPU count (at most 4)


@dataclass(frozen=True)
class Features:
    """SIFT keypoints (N x 2, native pixels col/row) and descriptors (N x 128 uint8) of one photo."""

    uv: np.ndarray
    descriptors: np.ndarray
    scale: float  # reduced / native
    size: tuple[int, int] = (0, 0)  # native (width, height) pixels
    thumb: np.ndarray | None = None  # RGB, THUMB_PX long (exposure balance), if kept


#: features keep a colour thumbnail this long, from the same decode, for the exposure balance
#: (:func:`~skysieve.mosaic.render.estimate_gains` reads ~200 px across a photo)
THUMB_PX = 256


@dataclass(frozen=True)
class TiePair:
    """Matched points of photos ``i`` and ``j`` (indices into the photo list given to :func:`match_photos`:
    the flight's, sorted by image id), native pixels."""

    i: int
    j: int
    uv_i: np.ndarray  # N x 2 (col, row)
    uv_j: np.ndarray


def match_gsd(photos: list[Photo], settings: MatchSettings) -> float:
    """Common ground resolution (metres per pixel) photos are reduced to for matching."""
    widths = [p.gsd_m * max(p.camera.width_px, p.camera.height_px) for p in photos]
    return float(np.median(widths)) / settings.match_size_px


def detect_features(photo: Photo, gsd_m: float, settings: MatchSettings) -> Features:
    """SIFT features of the photo reduced to about ``gsd_m`` metres per pixel (never enlarged), and a colour
    thumbnail from the same decode (a colour decode costs what a grey one does)."""
    import cv2

    scale = min(1.0, photo.gsd_m / gsd_m)
    colour = decode_reduced(photo, scale)
    img = shrink(cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY), photo, scale)
    sx, sy = img.shape[1] / photo.camera.width_px, img.shape[0] / photo.camera.height_px
    size = (photo.camera.width_px, photo.camera.height_px)
    thumb = None
    t = min(1.0, THUMB_PX / max(size))
    if max(colour.shape[:2]) >= t * max(size) - 1:
        thumb = cv2.cvtColor(shrink(colour, photo, t), cv2.COLOR_BGR2RGB)
    del colour
    n = int(min(settings.max_features, img.size / settings.pixels_per_feature))
    n = max(n, 200)
    kps, desc = cv2.SIFT_create(nfeatures=n).detectAndCompute(img, None)
    if len(kps) < n // 4:  # dull ground (haze, bare soil): stretch local contrast and lower the bar
        img = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(img)
        kps, desc = cv2.SIFT_create(nfeatures=n, contrastThreshold=0.015).detectAndCompute(img, None)
    if desc is None or not kps:
        return Features(np.zeros((0, 2)), np.zeros((0, 128), np.uint8), sx, size, thumb)
    pts = np.array([k.pt for k in kps], dtype=float)
    uv = (pts + 0.5) / np.array([sx, sy])  # cv2 centres at integers -> camera convention, native pixels
    return Features(uv, np.clip(desc, 0, 255).astype(np.uint8), sx, size, thumb)


def candidate_pairs(photos: list[Photo], settings: MatchSettings) -> list[tuple[int, int]]:
    """Pairs (i < j) whose GPS footprints overlap by at least ``min_overlap`` of the smaller one, at most
    the ``max_pairs_per_photo`` best-overlapping for each photo (a pair stays if it is among either's best).

    With 80 % forward overlap a photo overlaps a dozen others or more; its nearest few along and across
    the line tie it as firmly, and each further pair costs as much to match.
    """
    from skysieve.camera import footprint

    polys = [footprint(p.camera, p.pose).buffer(0) for p in photos]
    tree = shapely.STRtree(polys)
    scored = []
    for i, poly in enumerate(polys):
        for j in tree.query(poly, predicate="intersects"):
            j = int(j)
            if j <= i:
                continue
            share = poly.intersection(polys[j]).area / min(poly.area, polys[j].area)
            if share >= settings.min_overlap:
                scored.append((share, i, j))
    kept, count = [], np.zeros(len(photos), int)
    for _, i, j in sorted(scored, key=lambda s: (-s[0], s[1], s[2])):
        if min(count[i], count[j]) < settings.max_pairs_per_photo:
            kept.append((i, j))
            count[i] += 1
            count[j] += 1
    return sorted(kept)


def _spread(idx: np.ndarray, pts: np.ndarray, n: int) -> np.ndarray:
    """At most ``n`` of ``idx``, spread over the points' extent (one per grid bin first)."""
    if len(idx) <= n:
        return idx
    p = pts[idx]
    lo, hi = p.min(0), p.max(0) + 1e-9
    k = max(1, int(np.sqrt(n)))
    b = np.floor((p - lo) / (hi - lo) * k).astype(int)
    _, first = np.unique(b[:, 0] * k + b[:, 1], return_index=True)
    rest = np.setdiff1d(np.arange(len(idx)), first)
    rng = np.random.default_rng(0)
    extra = rng.choice(rest, size=max(0, n - len(first)), replace=False) if n > len(first) else []
    chosen = np.concatenate([first, np.asarray(extra, dtype=int)])[:n]
    return idx[np.sort(chosen)]


RNG_SEED = 20261129
#: leaves FLANN visits per query: 16 found the same Brighton placements as 32 (vs model.laz, 4 seeds: mean
#: 0.715-0.721 m, local p90 0.757-0.763 m; 32: 0.712-0.734, 0.755-0.823) and a simulated flight's (80
#: photos: 0.072 m, p90 0.131 m; 32: 0.073, 0.131) in 0.57x the search time
FLANN_CHECKS = 16


class DescriptorIndex:
    """A photo's descriptors in a FLANN KD-tree index (4 trees, :data:`FLANN_CHECKS` checks),
    built once and queried by every pair it is in (building it per pair was a third of matching).

    Queries are serialised per index (a lock), so threads may share it.
    """

    def __init__(self, features: Features):
        import threading

        import cv2

        self.features = features
        self._data = np.ascontiguousarray(features.descriptors, dtype=np.float32)  # the index points into it
        # the trees split on dimensions drawn from OpenCV's RNG (one per thread): seeded here, the same trees
        # on every run whichever thread builds them, so a rerun finds the same ties
        cv2.setRNGSeed(RNG_SEED)
        self._index = cv2.flann_Index(self._data, dict(algorithm=1, trees=4)) if len(self._data) else None
        self._lock = threading.Lock()

    def knn(self, descriptors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(train indices, L2 distances), each (N, k), of the ``k`` nearest descriptors to each query row
        (-1 and inf where the photo has fewer than ``k``)."""
        n = len(self._data)
        t = np.full((len(descriptors), k), -1, int)
        d = np.full((len(descriptors), k), np.inf, np.float32)
        if not len(descriptors) or self._index is None:
            return t, d
        kk = min(k, n)
        with self._lock:
            idx, sq = self._index.knnSearch(np.ascontiguousarray(descriptors, dtype=np.float32), kk,
                                            params=dict(checks=FLANN_CHECKS))
        t[:, :kk] = idx
        d[:, :kk] = np.sqrt(np.maximum(sq, 0))  # FLANN returns squared distances
        return t, d


class PairKnn:
    """Nearest descriptors in photo j of photo i's features, queried lazily per feature (so the guided
    search and a fallback without guidance share one query per feature)."""

    def __init__(self, fi: Features, index_j: DescriptorIndex, k: int = 8):
        self.fi, self.index, self.k = fi, index_j, k
        self.t = np.full((len(fi.uv), k), -1, int)
        self.d = np.full((len(fi.uv), k), np.inf, np.float32)
        self.done = np.zeros(len(fi.uv), bool)

    def rows(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        todo = idx[~self.done[idx]]
        if len(todo):
            self.t[todo], self.d[todo] = self.index.knn(self.fi.descriptors[todo], self.k)
            self.done[todo] = True
        return self.t[idx], self.d[idx]


def _guided_matches(knn: PairKnn, fj: Features, i_to_j: np.ndarray, radius_px: float,
                    ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """Ratio-test matches among the candidates near where GPS predicts each feature (native pixels of j).

    Lawns, fields and tree crowns repeat: a global ratio test throws away most true matches because a
    look-alike exists somewhere else in the photo. Among the ``k`` nearest descriptors, only those within
    ``radius_px`` of the prediction compete (the best of them against the second, or against the k-th
    overall when it is alone). Returns index arrays into photo i's and photo j's features.
    """
    fi, k = knn.fi, knn.k
    empty = (np.zeros(0, int), np.zeros(0, int))
    if len(fi.uv) < 2 or len(fj.uv) < k:
        return empty
    pred_all = apply_homography(i_to_j, fi.uv)
    w, h = fj.size
    q = np.flatnonzero((pred_all[:, 0] > -radius_px) & (pred_all[:, 0] < w + radius_px)
                       & (pred_all[:, 1] > -radius_px) & (pred_all[:, 1] < h + radius_px))
    t, d = knn.rows(q)
    full = (t >= 0).all(1)
    q, t, d = q[full], t[full], d[full]
    if len(q) < 2:
        return empty
    pred = pred_all[q]
    near = np.linalg.norm(fj.uv[t] - pred[:, None, :], axis=2) <= radius_px
    has = near.any(1)
    first = np.argmax(near, axis=1)
    rest = near.copy()
    rest[np.arange(len(q)), first] = False
    second = np.where(rest.any(1), d[np.arange(len(q)), np.argmax(rest, axis=1)], d[:, -1])
    best = d[np.arange(len(q)), first]
    ok = has & (best < ratio * second)
    qi, tj = q[ok], t[np.arange(len(q)), first][ok]
    uniq, n = np.unique(tj, return_counts=True)  # one feature of j claimed twice: keep neither
    keep = ~np.isin(tj, uniq[n > 1])
    return qi[keep], tj[keep]


def match_pair(fi: Features, fj: Features, i: int, j: int, settings: MatchSettings,
               hi: np.ndarray | None = None, hj: np.ndarray | None = None, gsd_j: float = 1.0,
               knn: PairKnn | None = None) -> TiePair | None:
    """Robust matches between two photos, or None when they do not match.

    With the GPS homographies ``hi``/``hj`` (pixels -> ground) and photo j's GSD (metres), matches are
    searched only within ``search_radius_m`` of where GPS predicts them (:func:`_guided_matches`);
    without, a global ratio test. MAGSAC then fits a homography and keeps its inliers. ``knn``: the
    pair's nearest-descriptor queries, to share between a guided try and an unguided one.
    """
    import cv2

    if len(fi.uv) < settings.min_inliers or len(fj.uv) < settings.min_inliers:
        return None
    knn = knn or PairKnn(fi, DescriptorIndex(fj))
    if hi is not None and hj is not None:
        qi, tj = _guided_matches(knn, fj, np.linalg.inv(hj) @ hi, settings.search_radius_m / gsd_j, settings.ratio)
    else:
        t, d = knn.rows(np.arange(len(fi.uv)))
        ok = (t[:, 1] >= 0) & (d[:, 0] < settings.ratio * d[:, 1])
        qi, tj = np.flatnonzero(ok), t[ok, 0]
    need = settings.min_inliers if hi is not None else settings.min_inliers_unguided
    if len(qi) < need:
        return None
    ui, uj = fi.uv[qi], fj.uv[tj]
    h, mask = cv2.findHomography((ui * fi.scale).astype(np.float32), (uj * fj.scale).astype(np.float32),
                                 cv2.USAC_MAGSAC, settings.ransac_px, maxIters=5000, confidence=0.999)
    if h is None or mask is None:
        return None
    inl = np.flatnonzero(mask.ravel())
    if len(inl) < need:
        return None
    inl = _spread(inl, ui, settings.max_ties)
    return TiePair(i, j, ui[inl], uj[inl])


class _IndexPool:
    """Descriptor indexes built on first use and dropped after their last pair, so memory holds a few.

    ``uses``: the index each pair queries; a pair answered without it (from the tie cache) must
    :meth:`skip` it, else its index is held until matching ends. ``peak``: the most held at once.
    """

    def __init__(self, feats: list[Features], uses: list[int]):
        import threading

        self.feats = feats
        self.left: dict[int, int] = {}
        for j in uses:
            self.left[j] = self.left.get(j, 0) + 1
        self.built: dict[int, DescriptorIndex] = {}
        self.peak = 0
        self.lock = threading.Lock()

    @contextlib.contextmanager
    def use(self, j: int):
        with self.lock:
            if j not in self.built:
                self.built[j] = DescriptorIndex(self.feats[j])  # under the lock: built once
                self.peak = max(self.peak, len(self.built))
            index = self.built[j]
        try:
            yield index
        finally:
            self.skip(j)

    def skip(self, j: int) -> None:
        """One pair with ``j`` is done (matched, or served without the index)."""
        with self.lock:
            self.left[j] -= 1
            if not self.left[j]:
                self.built.pop(j, None)


def _pool(settings: MatchSettings):
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(settings.threads or min(4, usable_cpus()))


@dataclass(frozen=True)
class MatchResult:
    """Tie points of a set of photos and what happened on the way."""

    ties: list[TiePair]
    pairs_tried: int
    n_features: list[int]  # per photo
    unreadable: dict[int, str]  # photo index -> why it could not be read
    max_indexes: int = 0  # the most descriptor indexes (~2 MB each) held at once
    thumbs: list[np.ndarray | None] | None = None  # per photo: its features' colour thumbnail (or None)


def _cached_features(photo: Photo, gsd: float, settings: MatchSettings, cache: TieCache | None) -> Features:
    if cache is None:
        return detect_features(photo, gsd, settings)
    key = cache.feature_key(photo, gsd, settings)
    if not Path(photo.path).is_file():  # the key may be the sha256 ingest recorded: cached features outlive the file
        raise ImageReadError("the photo file is missing", path=Path(photo.path),
                             hint="mount the drive or restore the file; re-ingest the flight if it moved")
    if (z := cache.load(photo, "features", key)) is not None:
        return Features(z["uv"], z["descriptors"], float(z["scale"]), tuple(int(v) for v in z["size"]),
                        z.get("thumb"))
    f = detect_features(photo, gsd, settings)
    arrays = {"uv": f.uv, "descriptors": f.descriptors, "scale": np.float64(f.scale), "size": np.array(f.size)}
    cache.save(photo, "features", key, arrays if f.thumb is None else {**arrays, "thumb": f.thumb})
    return f


def match_photos(photos: list[Photo], settings: MatchSettings | None = None, gsd_m: float | None = None,
                 cache: TieCache | None = None) -> MatchResult:
    """Tie points for every overlapping pair of ``photos``.

    ``gsd_m``: the ground resolution photos are reduced to (metres per pixel; default :func:`match_gsd` of
    these photos; pass the flight's so that every cell of it describes a photo alike). Features are
    computed once per photo and kept compactly (uint8 descriptors, ~0.5 MB a photo), so memory grows with
    the photo count only by that, not with the photos' size. With a ``cache``, features and pair results
    are read from and written to disk (:mod:`~skysieve.mosaic.tiecache`): each photo is described and
    each pair matched once per flight, not once per cell (see there for when a pair is matched again). A photo that cannot be decoded gets no features
    and is reported in ``unreadable``; the others go on.
    """
    from skysieve.progress import progress

    settings = settings or MatchSettings()
    gsd = gsd_m or (match_gsd(photos, settings) if photos else 1.0)
    fkeys = [cache.feature_key(p, gsd, settings) for p in photos] if cache else []

    def features(k: int) -> Features:
        try:
            return _cached_features(photos[k], gsd, settings, cache)
        except ImageReadError as e:
            unreadable[k] = str(e)
            return Features(np.zeros((0, 2)), np.zeros((0, 128), np.uint8), 1.0)

    unreadable: dict[int, str] = {}
    with _pool(settings) as pool:  # OpenCV releases the GIL: threads use every core, memory is shared
        feats = list(progress(pool.map(features, range(len(photos))), "features", len(photos)))
        thumbs = [f.thumb for f in feats]
        if len(photos) < 2:
            return MatchResult([], 0, [len(f.uv) for f in feats], unreadable, thumbs=thumbs)
        homs = [ground_homography(p) for p in photos]
        pairs = sorted(candidate_pairs(photos, settings), key=lambda ij: (ij[1], ij[0]))  # by j: one index at a time
        indexes = _IndexPool(feats, [j for _, j in pairs])

        def matched(i: int, j: int) -> TiePair | None:
            with indexes.use(j) as index_j:
                knn = PairKnn(feats[i], index_j)
                tp = match_pair(feats[i], feats[j], i, j, settings, homs[i], homs[j], photos[j].gsd_m, knn)
                if tp is None:  # the GPS pose may be grossly wrong (a yaw off by 180 degrees): try unguided
                    tp = match_pair(feats[i], feats[j], i, j, settings, knn=knn)
            log.debug("pair %s-%s: %s ties", photos[i].image_id, photos[j].image_id, len(tp.uv_i) if tp else 0)
            return tp

        def pair(ij: tuple[int, int]) -> TiePair | None:
            i, j = ij
            if cache is None or i in unreadable or j in unreadable:
                return matched(i, j)
            key = cache.pair_key(fkeys[i], fkeys[j], photos[i], photos[j], settings)
            if (z := cache.load(photos[i], "ties", key)) is not None:
                indexes.skip(j)
                return TiePair(i, j, z["uv_i"], z["uv_j"]) if len(z["uv_i"]) else None
            tp = matched(i, j)
            empty = np.zeros((0, 2))
            cache.save(photos[i], "ties", key, {"uv_i": tp.uv_i if tp else empty, "uv_j": tp.uv_j if tp else empty})
            return tp

        ties = [tp for tp in progress(pool.map(pair, pairs), "matching", len(pairs)) if tp is not None]
    return MatchResult(ties, len(pairs), [len(f.uv) for f in feats], unreadable, indexes.peak, thumbs)
