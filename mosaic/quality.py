"""Photo quality from a reduced decode: exposure (near-black, washed-out) and sharpness.

A JPEG is decoded in Pillow's draft mode: the decoder scales the DCT blocks by 1/2, 1/4 or 1/8 and
decodes only the luma channel, so a 4000 x 2250 photo becomes a 1000 x 563 grey image at a fraction
of a full decode's cost (measured in ``benchmarks/ingest_bench.py``). The same reduced image serves the
exposure checks, the sharpness figure and, when a flight needs it, the height estimate from pixel shift.

Sharpness is the variance of the discrete Laplacian of that reduced image (grey levels squared), taken
per tile and summarised by a high percentile so that a frame half over water is not called blurred.
Its scale still depends on the scene (lawn is busier than a car park), so blur is judged against the
flight's own distribution: a frame is blurred when its sharpness falls below ``blur_ratio`` times the
flight's median.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from skysieve.errors import ImageReadError

__all__ = ["QualitySettings", "ReducedImage", "FrameStats", "reduced_decode", "frame_stats", "exposure_problem",
           "blur_threshold", "laplacian_variance"]


@dataclass(frozen=True)
class QualitySettings:
    """Thresholds of the quality checks. Grey levels are 0-255 (JPEG luma)."""

    reduce_factor: int = 4  # draft-mode reduction (1/2, 1/4 or 1/8 of each side)
    dark_p98: float = 40.0  # near-black: 98 % of pixels darker than this
    bright_p02: float = 215.0  # washed-out: 98 % of pixels brighter than this ...
    clipped_share: float = 0.5  # ... or this share of pixels clipped at >= 250
    min_contrast: float = 12.0  # p98 - p02 below this: a flat frame (lens cap, fog, sky)
    blur_ratio: float = 0.4  # blurred: sharpness below this times the flight's median
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


def reduced_decode(data: bytes, factor: int = 4) -> ReducedImage:
    """Decode a JPEG's luma at 1/``factor`` of its size (draft mode); raises :class:`ImageReadError`.

    A truncated or corrupt file fails here: Pillow raises on missing entropy-coded data.
    """
    try:
        img = Image.open(io.BytesIO(data))
        full_w = img.width
        if img.format in ("JPEG", "MPO"):  # DJI files are MPO: a JPEG with a preview image appended
            img.draft("L", (max(1, img.width // factor), max(1, img.height // factor)))
        img.load()
        if img.mode != "L":
            img = img.convert("L")
            if img.width > full_w // factor * 2:
                img = img.reduce(factor)
        pixels = np.asarray(img)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise ImageReadError(f"cannot decode the image: {e}", hint="the file is truncated or corrupt; copy it "
                             "from the drone's card again") from None
    return ReducedImage(pixels, pixels.shape[1] / full_w)


def laplacian_variance(gray: np.ndarray, tiles_rc: tuple[int, int] = (6, 8), percentile: float = 90.0) -> float:
    """Sharpness of a grey image: the ``percentile`` of the 4-neighbour Laplacian's variance over a grid of
    ``tiles_rc`` (rows, cols) tiles (grey levels squared).

    Taking a high percentile over tiles rather than the whole image's variance keeps a frame that is
    half water or bare concrete from looking blurred: its textured half still counts.
    """
    g = gray.astype(np.float32)
    lap = g[1:-1, 2:] + g[1:-1, :-2] + g[2:, 1:-1] + g[:-2, 1:-1] - 4.0 * g[1:-1, 1:-1]
    rows, cols = (max(1, min(n, s // 8)) for n, s in zip(tiles_rc, lap.shape, strict=True))
    th, tw = lap.shape[0] // rows, lap.shape[1] // cols
    per_tile = lap[: th * rows, : tw * cols].reshape(rows, th, cols, tw).var(axis=(1, 3))
    return float(np.percentile(per_tile, percentile))


def frame_stats(image: ReducedImage) -> FrameStats:
    """Exposure percentiles and sharpness of a reduced decode."""
    g = image.pixels
    sample = g[::2, ::2]
    p02, p98 = np.percentile(sample, [2, 98])
    return FrameStats(mean=float(sample.mean()), p02=float(p02), p98=float(p98),
                      clipped_share=float((sample >= 250).mean()), sharpness=laplacian_variance(g))


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


def blur_threshold(sharpness: list[float] | np.ndarray, settings: QualitySettings = QualitySettings()) -> float | None:
    """Sharpness below which a frame of this flight counts as blurred; None when too few frames to judge."""
    values = np.asarray([s for s in sharpness if np.isfinite(s)], dtype=float)
    if len(values) < settings.min_frames_for_blur:
        return None
    return float(settings.blur_ratio * np.median(values))
