"""Photo quality from a reduced decode: exposure (near-black, washed-out) and blur.

A JPEG is decoded in Pillow's draft mode: the decoder scales the DCT blocks by 1/2, 1/4 or 1/8 and
decodes only the luma channel, so a 4000 x 2250 photo becomes a 1000 x 563 grey image at a fraction
of a full decode's cost (measured in ``benchmarks/ingest_bench.py``). The reduction is chosen so the
reduced image keeps at least ``min_width_px`` columns (small photos are decoded whole). The same
reduced image serves the exposure checks, the blur figures and, when a flight needs it, the height
estimate from pixel shift.

Blur is judged against the flight itself, with two figures per frame:

- ``sharpness``: the Laplacian's variance per tile, 90th percentile over tiles (grey levels squared).
  It drops steeply with blur (to 1/7 of its value for a 1 px Gaussian at the reduced scale), but it
  also depends on the scene: a frame over a bare field has a fraction of the texture of one over a
  village. So it is compared with the frame's nearest neighbours along the flight, which photograph
  mostly the same ground (``blur_ratio``).
- ``edge_sharpness``: at the frame's strongest edges (top 2 % of the gradient after a 2 px Gaussian),
  the median ratio of the gradient before and after that smoothing. A crisp edge loses much of its
  gradient to the smoothing, a blurred one little. This barely depends on what the scene shows
  (spread within a sharp flight about 0.8 to 1.2 of the median), but moves less with blur. It is
  compared with the flight's median (``edge_ratio``).

A frame is blurred when both say so: a bare field alone is not called blurred (low texture, crisp
edges), nor is a frame with one soft corner.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from skysieve.errors import ImageReadError

__all__ = ["QualitySettings", "ReducedImage", "FrameStats", "reduced_decode", "frame_stats", "exposure_problem",
           "blur_verdicts", "laplacian_variance", "edge_sharpness", "reduction_for"]


@dataclass(frozen=True)
class QualitySettings:
    """Thresholds of the quality checks. Grey levels are 0-255 (JPEG luma)."""

    reduce_factor: int = 4  # largest draft-mode reduction (1/2, 1/4 or 1/8 of each side) ...
    min_width_px: int = 800  # ... that keeps at least this many columns
    dark_p98: float = 40.0  # near-black: 98 % of pixels darker than this
    bright_p02: float = 215.0  # washed-out: 98 % of pixels brighter than this ...
    clipped_share: float = 0.5  # ... or this share of pixels clipped at >= 250
    min_contrast: float = 12.0  # p98 - p02 below this: a flat frame (lens cap, fog, sky)
    blur_ratio: float = 0.4  # blurred: sharpness below this times its neighbours' median ...
    edge_ratio: float = 0.75  # ... and edge sharpness below this times the flight's median
    blur_neighbours: int = 4  # nearest frames (by position) a frame's sharpness is compared with
    min_frames_for_blur: int = 3  # fewer frames: too few to judge blur


@dataclass(frozen=True)
class ReducedImage:
    """A grey reduced decode: ``pixels`` (rows x cols, uint8) and ``scale`` = reduced px per full-size px."""

    pixels: np.ndarray
    scale: float


@dataclass(frozen=True)
class FrameStats:
    """Exposure and sharpness figures of a reduced decode (grey levels 0-255)."""

    mean: float
    p02: float
    p98: float
    clipped_share: float
    sharpness: float
    edge_sharpness: float


def reduction_for(width_px: int, max_factor: int = 4, min_width_px: int = 800) -> int:
    """The largest JPEG draft reduction (1, 2, 4 or 8, at most ``max_factor``) keeping ``min_width_px`` columns."""
    factor = 1
    for f in (2, 4, 8):
        if f <= max_factor and width_px // f >= min_width_px:
            factor = f
    return factor


def reduced_decode(data: bytes, factor: int = 4, min_width_px: int = 0) -> ReducedImage:
    """Decode a JPEG's luma at 1/``factor`` of its size (draft mode); raises :class:`ImageReadError`.

    With ``min_width_px`` the factor is lowered so that the result keeps that many columns.
    A truncated or corrupt file fails here: Pillow raises on missing entropy-coded data.
    """
    try:
        img = Image.open(io.BytesIO(data))
        full_w = img.width
        factor = reduction_for(full_w, factor, min_width_px)
        if img.format in ("JPEG", "MPO"):  # DJI files are MPO: a JPEG with a preview image appended
            img.draft("L", (max(1, img.width // factor), max(1, img.height // factor)))
        img.load()
        if img.mode != "L":
            img = img.convert("L")
            if factor > 1 and img.width > full_w // factor * 2:
                img = img.reduce(factor)
        pixels = np.asarray(img)
    except (UnidentifiedImageError, ImportError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise ImageReadError(f"cannot decode the image: {e}", hint="the file is truncated or corrupt; copy it "
                             "from the drone's card again") from None
    return ReducedImage(pixels, pixels.shape[1] / full_w)


def laplacian_variance(gray: np.ndarray, tiles_rc: tuple[int, int] = (6, 8), percentile: float = 90.0) -> float:
    """Sharpness of a grey image: the ``percentile`` of the 4-neighbour Laplacian's variance over a grid of
    ``tiles_rc`` (rows, cols) tiles (grey levels squared).

    Taking a high percentile over tiles rather than the whole image's variance keeps a frame that is
    half water or bare concrete from looking blurred: its textured half still counts.
    """
    import cv2

    lap = cv2.Laplacian(gray, cv2.CV_32F, ksize=1)[1:-1, 1:-1]  # ksize=1: the 4-neighbour kernel
    rows, cols = (max(1, min(n, s // 8)) for n, s in zip(tiles_rc, lap.shape, strict=True))
    th, tw = lap.shape[0] // rows, lap.shape[1] // cols
    per_tile = lap[: th * rows, : tw * cols].reshape(rows, th, cols, tw).var(axis=(1, 3))
    return float(np.percentile(per_tile, percentile))


def edge_sharpness(gray: np.ndarray, smoothing_px: float = 2.0, edge_share: float = 0.02) -> float:
    """Median gradient ratio (raw / after a ``smoothing_px`` Gaussian) at the ``edge_share`` strongest
    edges (by smoothed gradient); see the module docstring. Dimensionless."""
    import cv2

    def magnitude(a: np.ndarray) -> np.ndarray:
        return cv2.magnitude(cv2.Sobel(a, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(a, cv2.CV_32F, 0, 1, ksize=3))

    g = gray.astype(np.float32)
    coarse = magnitude(cv2.GaussianBlur(g, (0, 0), smoothing_px))
    sample = coarse[::3, ::3].ravel()  # the threshold from a ninth of the pixels: plenty, and cheap
    k = max(1, int(edge_share * sample.size))
    threshold = np.partition(sample, sample.size - k)[sample.size - k]
    edges = coarse >= threshold
    return float(np.median(magnitude(g)[edges] / (coarse[edges] + 1e-3)))


def frame_stats(image: ReducedImage) -> FrameStats:
    """Exposure percentiles (from the grey-level histogram) and blur figures of a reduced decode."""
    g = image.pixels
    cum = np.cumsum(np.bincount(g.ravel(), minlength=256)) / g.size
    p02, p98 = (float(np.searchsorted(cum, q)) for q in (0.02, 0.98))
    levels = np.arange(256)
    hist = np.diff(cum, prepend=0.0)
    return FrameStats(mean=float(hist @ levels), p02=p02, p98=p98, clipped_share=float(1.0 - cum[249]),
                      sharpness=laplacian_variance(g), edge_sharpness=edge_sharpness(g))


def exposure_problem(stats: FrameStats, settings: QualitySettings = QualitySettings()) -> tuple[str, str] | None:
    """``("dark" | "washed_out", detail)`` when the frame is unusable for its exposure, else None."""
    if stats.p98 < settings.dark_p98:
        return "dark", f"near-black frame (98 % of pixels below grey {stats.p98:.0f})"
    if stats.p02 > settings.bright_p02:
        return "washed_out", f"washed-out frame (98 % of pixels above grey {stats.p02:.0f})"
    if stats.clipped_share > settings.clipped_share:
        return "washed_out", f"washed-out frame ({stats.clipped_share:.0%} of pixels clipped white)"
    if stats.p98 - stats.p02 < settings.min_contrast:
        kind = "dark" if stats.mean < 128 else "washed_out"
        return kind, f"flat frame (contrast {stats.p98 - stats.p02:.0f} grey levels, mean {stats.mean:.0f})"
    return None


def blur_verdicts(sharpness: Sequence[float], edge: Sequence[float | None], xy: np.ndarray | None,
                  settings: QualitySettings = QualitySettings()) -> list[str | None]:
    """Per frame: why it is blurred (text) or None. See the module docstring for the rule.

    ``sharpness`` and ``edge`` are per frame (``edge`` None for frames only used as neighbours, e.g.
    ones stored by an earlier run); ``xy`` (N x 2, metres) their positions, or None to compare each
    frame with the whole flight. Fewer than ``min_frames_for_blur`` frames: nothing is judged.
    """
    s = np.asarray(sharpness, dtype=float)
    n = len(s)
    if n < settings.min_frames_for_blur:
        return [None] * n
    edges = np.array([np.nan if e is None else e for e in edge], dtype=float)
    have_edges = np.isfinite(edges).sum() >= settings.min_frames_for_blur
    edge_median = float(np.nanmedian(edges)) if have_edges else float("nan")
    out: list[str | None] = []
    for i in range(n):
        if not np.isfinite(edges[i]):
            out.append(None)
            continue
        if xy is not None:
            d = np.hypot(*(np.asarray(xy, dtype=float) - np.asarray(xy, dtype=float)[i]).T)
            d[i] = np.inf
            others = s[np.argsort(d)[: settings.blur_neighbours]]
        else:
            others = np.delete(s, i)
        ref = float(np.median(others))
        rel = s[i] / ref if ref > 0 else 1.0
        rel_edge = edges[i] / edge_median if have_edges and edge_median > 0 else 0.0
        if rel < settings.blur_ratio and rel_edge < settings.edge_ratio:
            out.append(f"sharpness {rel:.2f} of its neighbours' (limit {settings.blur_ratio:g}), edge sharpness "
                       f"{rel_edge:.2f} of the flight's median (limit {settings.edge_ratio:g})")
        else:
            out.append(None)
    return out
