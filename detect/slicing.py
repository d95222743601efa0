"""Cutting a raster into overlapping square slices, in the model's pixel grid (pure functions).

The *model grid* is the mosaic resampled to the model's ground sample distance: model pixel
``(col, row)`` covers source pixels ``(col * k, row * k)`` to ``((col + 1) * k, (row + 1) * k)`` where
``k = model_gsd / source_gsd`` (source pixels per model pixel). Slices are laid on that grid with a
stride of ``size - overlap``; the last slice of a row or column is pulled back so that it ends on the
raster's edge (no slice sticks out, unless the raster is smaller than one slice).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Slice", "plan_slices", "axis_offsets"]


@dataclass(frozen=True)
class Slice:
    """A square slice of the model grid: top-left ``(row_off, col_off)`` and side ``size``, in model pixels.

    ``cut_left`` ... ``cut_bottom`` are True where the slice's edge lies inside the raster (another slice
    continues there), so a box touching that edge may be a truncated part of an object.
    """

    row_off: int
    col_off: int
    size: int
    cut_left: bool
    cut_top: bool
    cut_right: bool
    cut_bottom: bool


def axis_offsets(length: int, size: int, overlap: int) -> list[int]:
    """Slice start offsets along one axis of ``length`` pixels (the last one ends on the edge)."""
    if size <= 0 or not 0 <= overlap < size:
        raise ValueError(f"need 0 <= overlap < size, got size={size}, overlap={overlap}")
    if length <= size:
        return [0]
    stride = size - overlap
    n = math.ceil((length - size) / stride) + 1
    offsets = [min(i * stride, length - size) for i in range(n)]
    return sorted(set(offsets))


def plan_slices(width_px: int, height_px: int, size: int, overlap: int) -> list[Slice]:
    """Slices covering a ``width_px`` x ``height_px`` model grid, row by row (top to bottom)."""
    cols = axis_offsets(width_px, size, overlap)
    rows = axis_offsets(height_px, size, overlap)
    out = []
    for r in rows:
        for c in cols:
            out.append(Slice(row_off=r, col_off=c, size=size, cut_left=c > 0, cut_top=r > 0,
                             cut_right=c + size < width_px, cut_bottom=r + size < height_px))
    return out
