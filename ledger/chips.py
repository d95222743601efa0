"""Image chips: small PNG cut-outs of a cell's orthomosaic around a spot (evidence and map chips).

Reads by window (``rasterio.windows.from_bounds``) with a decimated ``out_shape`` so that a chip
costs the same whatever the size of the mosaic; overviews are used where the COG has them.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
from PIL import Image

from skysieve.atomic import atomic_path
from skysieve.workspace import Workspace

__all__ = ["read_patch", "save_chip", "chip_path", "ortho_path"]

log = logging.getLogger(__name__)


def ortho_path(ws: Workspace, cell_id: str) -> Path:
    """Where the cell's orthomosaic lives (``cells/<cell_id>/ortho.tif``)."""
    return ws.cell_dir(cell_id) / "ortho.tif"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "chip"


def chip_path(ws: Workspace, name: str) -> Path:
    """``chips/<name>.png`` in the workspace (name made file-system safe)."""
    return ws.root / "chips" / f"{_safe(name)}.png"


def read_patch(ortho: Path, bounds: tuple[float, float, float, float], max_px: int = 512) -> np.ndarray | None:
    """RGB uint8 array (rows, cols, 3) of ``ortho`` inside ``bounds`` (minx, miny, maxx, maxy; raster CRS, metres).

    The patch is at most ``max_px`` on its longer side (decimated read). Parts outside the raster
    come back black. ``None`` when the file is missing or the bounds miss the raster.
    """
    import rasterio
    from rasterio.windows import from_bounds

    if not ortho.exists():
        return None
    with rasterio.open(ortho) as src:
        minx, miny, maxx, maxy = bounds
        win = from_bounds(minx, miny, maxx, maxy, transform=src.transform)
        if win.width <= 0 or win.height <= 0:
            return None
        scale = min(1.0, max_px / max(win.width, win.height))
        rows = max(1, int(round(win.height * scale)))
        cols = max(1, int(round(win.width * scale)))
        bands = [1, 2, 3] if src.count >= 3 else [1, 1, 1]
        data = src.read(bands, window=win, out_shape=(3, rows, cols), boundless=True, fill_value=0)
        if src.count >= 4:  # alpha: outside the mosaic is black
            alpha = src.read(4, window=win, out_shape=(rows, cols), boundless=True, fill_value=0)
            data = np.where(alpha[None] > 0, data, 0)
        if not data.any():
            return None
    if data.dtype != np.uint8:
        hi = float(np.percentile(data, 99.5)) or 1.0
        data = np.clip(data.astype(np.float32) * (255.0 / hi), 0, 255).astype(np.uint8)
    return np.moveaxis(data, 0, -1)


def save_chip(rgb: np.ndarray, target: Path) -> Path:
    """Write an RGB uint8 array as PNG, atomically."""
    with atomic_path(target) as tmp:
        Image.fromarray(rgb).save(tmp, format="PNG", optimize=False)
    return target
