"""Where a tall object stands on the ground, from its box on a ground-plane mosaic.

A mosaic made on the ground plane shows a chimney as the photo saw it: leaning away from the photo's nadir,
its top displaced by ``h / (H - h)`` of its distance from the nadir (``h`` the chimney's height, ``H`` the
camera's). Its box spans base to top, so the box's centre lies half the lean from the base: 5-8 m for
35 m chimneys under an 80 m flight. Field teams walk to the flag's coordinates, so a chimney's flag is put
at its base.

The leaning chimney's image is a disc of radius ``r`` (its top, and its base) swept along the ray from the
nadir: the box shrunk by ``r`` on every side has the base centre at its corner nearest the nadir and the
top centre at the opposite corner, and the two lie on one line with the nadir. That line condition is
linear in ``r`` (:func:`base_point`), so the base follows from the box and the nadir alone, without the
chimney's height. The nadir is that of the photo the mosaic shows there: the seams' label map
(``cells/<id>/views.tif``) and the cameras in ``ortho.json`` (``view_cameras``) say which photo and where
its camera was. Without them (an imported ortho, nearest-centre seams, an older mosaic) the box centre
stays the flag's point.

Only chimneys: a lying tank's box is its footprint, and a tank or a drum pile stands low.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["TALL_CLASSES", "base_point", "ViewCameras"]

TALL_CLASSES = ("chimney",)


def base_point(box: tuple[float, float, float, float], nadir: tuple[float, float]) -> tuple[float, float]:
    """Ground point (x, y) of the base of a tall round object whose leaning image has the axis-aligned box
    ``(x0, y0, x1, y1)``, seen from a camera over ``nadir`` (same units; y up or down alike)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    nx, ny = float(nadir[0]), float(nadir[1])
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    if x0 <= nx <= x1 and y0 <= ny <= y1:  # seen from straight above: it does not lean out of its box
        return cx, cy
    sx, sy = (1.0 if cx >= nx else -1.0), (1.0 if cy >= ny else -1.0)  # it leans away from the nadir
    near_x, near_y = (x0 if sx > 0 else x1), (y0 if sy > 0 else y1)
    ax, ay = sx * (near_x - nx), sy * (near_y - ny)  # nadir to the box's near edges, along the lean
    w, h = x1 - x0, y1 - y0
    r_max = min(w, h) / 2
    # base (near + s r), top (far - s r) and the nadir on one line: (ax + r)(h - 2r) = (ay + r)(w - 2r)
    den = h - w - 2 * ax + 2 * ay
    r = (ay * w - ax * h) / den if abs(den) > 1e-9 else r_max
    r = min(max(r, 0.0), r_max)
    return near_x + sx * r, near_y + sy * r


class ViewCameras:
    """Which photo a cell's mosaic shows where (``views.tif``) and where its camera was (``ortho.json``)."""

    def __init__(self, labels: np.ndarray, transform, cameras: np.ndarray):
        self.labels, self.transform, self.cameras = labels, transform, cameras

    @classmethod
    def open(cls, cell_dir: str | Path) -> ViewCameras | None:
        """The cell's views, or None where the mosaic has none (or they do not read)."""
        import rasterio

        cell_dir = Path(cell_dir)
        try:
            report = json.loads((cell_dir / "ortho.json").read_text())
            cameras = np.asarray(report.get("view_cameras") or [], float).reshape(-1, 3)
            if not len(cameras) or not (cell_dir / "views.tif").exists():
                return None
            with rasterio.open(cell_dir / "views.tif") as src:
                if src.tags().get("SKYSIEVE_INPUTS") != report.get("inputs_digest"):
                    # from another build than the report's cameras (a mosaic run killed half-way): the labels
                    # would index the wrong cameras
                    log.warning("%s: views.tif is not from the mosaic ortho.json describes; flags stay at their "
                                "box centres (rerun `skysieve mosaic`)", cell_dir)
                    return None
                return cls(src.read(1), src.transform, cameras)
        except (OSError, ValueError, rasterio.errors.RasterioError):
            return None

    def nadir(self, x: float, y: float) -> tuple[float, float] | None:
        """Ground x/y under the camera of the photo shown at (x, y); None where no photo is known."""
        col, row = ~self.transform @ (x, y)
        r, c = int(np.floor(row)), int(np.floor(col))
        if not (0 <= r < self.labels.shape[0] and 0 <= c < self.labels.shape[1]):
            return None
        k = int(self.labels[r, c]) - 1
        if not 0 <= k < len(self.cameras):
            return None
        return float(self.cameras[k, 0]), float(self.cameras[k, 1])
