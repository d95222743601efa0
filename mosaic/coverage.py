"""The coverage picture of a flight: footprints over grid cells, as a PNG drawn with OpenCV.

Each pixel of the picture is coloured by how many accepted footprints cover it (overlap is what the
mosaic needs), cells are outlined with their id and the share of the cell that is covered, cameras
are dots with a tick towards the image top, rejected photos with a known position are red crosses.
OpenCV's built-in Hershey fonts are used, so nothing is downloaded.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from skysieve.atomic import atomic_path
from skysieve.workspace import Workspace

__all__ = ["draw_coverage", "render_coverage"]

_MAX_SIDE_PX = 1200
_MARGIN_PX = 40


def render_coverage(cells: Sequence[tuple[str, shapely.Polygon, float]], accepted: Sequence[dict[str, Any]],
                    rejected_xy: Sequence[tuple[float, float]], title: str) -> np.ndarray:
    """The picture as rows x cols x 3 uint8 (BGR).

    ``cells``: (cell id, polygon, covered share 0-1); ``accepted``: rows with ``geometry`` (footprint),
    ``x``, ``y``, ``yaw_deg``; ``rejected_xy``: camera positions of rejected photos. Workspace CRS metres.
    """
    import cv2

    geoms = [c[1] for c in cells] + [r["geometry"] for r in accepted if r.get("geometry") is not None]
    if not geoms and not rejected_xy:
        img = np.full((200, 400, 3), 255, np.uint8)
        cv2.putText(img, "nothing to draw", (20, 100), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 1, cv2.LINE_AA)
        return img
    bounds = np.array([g.bounds for g in geoms] + [(x, y, x, y) for x, y in rejected_xy], dtype=float)
    minx, miny = bounds[:, 0].min(), bounds[:, 1].min()
    maxx, maxy = bounds[:, 2].max(), bounds[:, 3].max()
    span = max(maxx - minx, maxy - miny, 1e-6)
    scale = (_MAX_SIDE_PX - 2 * _MARGIN_PX) / span  # px per metre
    w = int(math.ceil((maxx - minx) * scale)) + 2 * _MARGIN_PX
    h = int(math.ceil((maxy - miny) * scale)) + 2 * _MARGIN_PX + 30

    def to_px(xy: np.ndarray) -> np.ndarray:
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        return np.column_stack([(xy[:, 0] - minx) * scale + _MARGIN_PX,
                                (maxy - xy[:, 1]) * scale + _MARGIN_PX + 30]).round().astype(np.int32)

    img = np.full((h, w, 3), 255, np.uint8)
    count = np.zeros((h, w), np.uint16)
    for r in accepted:
        g = r.get("geometry")
        if g is None:
            continue
        layer = np.zeros((h, w), np.uint8)
        cv2.fillPoly(layer, [to_px(np.asarray(g.exterior.coords))], 1)
        count += layer
    if count.max() > 0:
        levels = np.clip(count, 0, 8).astype(np.float32) / 8.0
        colour = cv2.applyColorMap((levels * 255).astype(np.uint8), cv2.COLORMAP_VIRIDIS)
        covered = count > 0
        img[covered] = (0.55 * colour[covered] + 0.45 * 255).astype(np.uint8)
    for _, poly, _ in cells:
        cv2.polylines(img, [to_px(np.asarray(poly.exterior.coords))], True, (80, 80, 80), 2, cv2.LINE_AA)
    for r in accepted:
        g = r.get("geometry")
        if g is not None:
            cv2.polylines(img, [to_px(np.asarray(g.exterior.coords))], True, (140, 90, 30), 1, cv2.LINE_AA)
        if r.get("x") is None:
            continue
        c = to_px([(r["x"], r["y"])])[0]
        yaw = math.radians(r.get("yaw_deg") or 0.0)
        tip = c + np.array([math.sin(yaw), -math.cos(yaw)]) * 12
        cv2.line(img, tuple(int(v) for v in c), tuple(int(v) for v in tip), (20, 20, 20), 2, cv2.LINE_AA)
        cv2.circle(img, tuple(int(v) for v in c), 3, (20, 20, 20), -1, cv2.LINE_AA)
    for cell_id, poly, share in cells:  # labels last, on a white box, so footprints never hide them
        pts = to_px(np.asarray(poly.exterior.coords))
        label = f"{cell_id} {share:.0%}"
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        x0, y0 = int(pts[:, 0].min()) + 4, int(pts[:, 1].min()) + 4
        cv2.rectangle(img, (x0, y0), (x0 + tw + 4, y0 + th + 8), (255, 255, 255), -1)
        cv2.putText(img, label, (x0 + 2, y0 + th + 3), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (40, 40, 40), 1, cv2.LINE_AA)
    for x, y in rejected_xy:
        c = to_px([(x, y)])[0]
        cv2.drawMarker(img, tuple(int(v) for v in c), (30, 30, 220), cv2.MARKER_TILTED_CROSS, 12, 2)
    cv2.putText(img, title, (10, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    # scale bar: a round number of metres about a fifth of the width
    bar_m = 10 ** math.floor(math.log10(max(span / 5, 1e-3)))
    bar_m *= 5 if span / 5 >= 5 * bar_m else (2 if span / 5 >= 2 * bar_m else 1)
    x0, y0 = 10, h - 12
    cv2.line(img, (x0, y0), (x0 + int(bar_m * scale), y0), (0, 0, 0), 2)
    cv2.putText(img, f"{bar_m:g} m", (x0 + int(bar_m * scale) + 6, y0 + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                (0, 0, 0), 1, cv2.LINE_AA)
    return img


def draw_coverage(ws: Workspace, path: str | Path, flight_rows: Sequence[dict[str, Any]], title: str) -> Path:
    """Write the coverage PNG of a flight's ``images`` rows to ``path`` (atomically); returns the path.

    ``title`` heads the picture (the flight and its counts).
    """
    import cv2

    accepted = [r for r in flight_rows if r["status"] == "accepted"]
    rejected_xy = [(r["x"], r["y"]) for r in flight_rows if r["status"] != "accepted" and r.get("x") is not None]
    cell_ids = sorted({c for r in accepted for c in (r.get("cells") or "").split(",") if c})
    cells = []
    if cell_ids:
        union = shapely.union_all([r["geometry"] for r in accepted if r.get("geometry") is not None])
        for cell in ws.cells(f"cell_id IN ({','.join('?' * len(cell_ids))})", tuple(cell_ids)):
            cells.append((cell.cell_id, cell.geometry, cell.geometry.intersection(union).area / cell.geometry.area))
    img = render_coverage(cells, accepted, rejected_xy, f"{title} (colour: photos overlapping; x: rejected)")
    with atomic_path(path, suffix=".png") as tmp:
        if not cv2.imwrite(str(tmp), img):
            raise OSError(f"could not write {path}")
    return Path(path)
