"""Pictures for people: a contact sheet of dataset tiles with their boxes (what the model learns from) and a
preview of a world with its truth drawn on."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from skysieve.atomic import atomic_path
from skysieve.datasets.scene import CLASSES
from skysieve.errors import DatasetError

__all__ = ["contact_sheet", "world_preview", "photo_preview", "CLASS_COLORS_BGR"]

#: box colours per class (OpenCV BGR): tank red, chimney green, drum stockpile blue
CLASS_COLORS_BGR = ((40, 40, 230), (40, 200, 40), (230, 120, 30))


def contact_sheet(dataset_dir: str | Path, out_png: str | Path, n: int = 16, cols: int = 4, cell_px: int = 320,
                  split: str = "train", gsd_range: tuple[float, float] | None = None) -> Path:
    """Draw the first ``n`` synthetic tiles of ``split`` with their YOLO boxes into a ``cols``-wide grid PNG;
    ``gsd_range`` (m/px), when given, is named in the caption."""
    root = Path(dataset_dir)
    images = sorted(p for p in (root / "images" / split).glob("*.jpg") if not p.name.startswith("real_"))[:n]
    if not images:
        raise DatasetError(f"no tiles in images/{split}", path=root, hint="build the dataset first")
    cells = []
    for img_path in images:
        img = cv2.imread(str(img_path))
        h, w = img.shape[:2]
        scale = cell_px / max(h, w)
        img = cv2.resize(img, (int(w * scale), int(h * scale)), interpolation=cv2.INTER_AREA)
        label = root / "labels" / split / (img_path.stem + ".txt")
        for line in label.read_text().splitlines() if label.exists() else []:
            c, cx, cy, bw, bh = (float(v) for v in line.split())
            p0 = (int((cx - bw / 2) * img.shape[1]), int((cy - bh / 2) * img.shape[0]))
            p1 = (int((cx + bw / 2) * img.shape[1]), int((cy + bh / 2) * img.shape[0]))
            cv2.rectangle(img, p0, p1, CLASS_COLORS_BGR[int(c)], 2)
        cell = np.full((cell_px, cell_px, 3), 255, np.uint8)
        cell[:img.shape[0], :img.shape[1]] = img
        cells.append(cv2.copyMakeBorder(cell, 2, 2, 2, 2, cv2.BORDER_CONSTANT, value=(255, 255, 255)))
    while len(cells) % cols:
        cells.append(np.full_like(cells[0], 255))
    grid = np.vstack([np.hstack(cells[i:i + cols]) for i in range(0, len(cells), cols)])
    legend = np.full((36, grid.shape[1], 3), 255, np.uint8)
    x = 10
    for name, color in zip(CLASSES, CLASS_COLORS_BGR, strict=True):
        cv2.rectangle(legend, (x, 10), (x + 22, 28), color, 2)
        cv2.putText(legend, name, (x + 30, 26), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (30, 30, 30), 1, cv2.LINE_AA)
        x += 60 + 12 * len(name)
    gsd = f", {gsd_range[0] * 100:g}-{gsd_range[1] * 100:g} cm/px" if gsd_range else ""
    cv2.putText(legend, f"synthetic tiles{gsd}; unboxed round things are hard negatives", (x + 10, 26),
                cv2.FONT_HERSHEY_SIMPLEX, 0.5, (90, 90, 90), 1, cv2.LINE_AA)
    out = Path(out_png)
    with atomic_path(out, suffix=".png") as tmp:
        cv2.imwrite(str(tmp), np.vstack([legend, grid]))
    return out


def world_preview(world_dir: str | Path, out_png: str | Path, max_px: int = 1600) -> Path:
    """A downsampled view of a world's ortho with its truth drawn on: site outlines (red: hosts illegal work,
    white: clean) with their kind, and each labelled object's footprint in its class colour."""
    import json

    import rasterio

    from skysieve.datasets.world import WorldInfo

    info = WorldInfo.at(world_dir)
    with rasterio.open(info.ortho) as src:
        k = max(1, int(np.ceil(max(src.width, src.height) / max_px)))
        rgb = src.read(out_shape=(3, src.height // k, src.width // k))
        inv = ~(src.transform * rasterio.Affine.scale(k))
    img = cv2.cvtColor(np.ascontiguousarray(np.moveaxis(rgb, 0, 2)), cv2.COLOR_RGB2BGR)

    def px(coords) -> np.ndarray:
        pts = np.array([inv * (x, y) for x, y in coords[0]])
        return np.round(pts).astype(np.int32)

    for feat in json.loads(info.sites.read_text())["features"]:
        p = feat["properties"]
        pts = px(feat["geometry"]["coordinates"])
        cv2.polylines(img, [pts], True, (40, 40, 230) if p["illegal"] else (235, 235, 235), 2, cv2.LINE_AA)
        cv2.putText(img, p["kind"], tuple(int(v) for v in pts.min(axis=0) + (4, 16)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.5, (255, 255, 255), 1, cv2.LINE_AA)
    for feat in json.loads(info.objects.read_text())["features"]:
        pts = px(feat["geometry"]["coordinates"])
        color = CLASS_COLORS_BGR[CLASSES.index(feat["properties"]["class"])]
        x, y, w, h = cv2.boundingRect(pts)
        cv2.rectangle(img, (x - 3, y - 3), (x + w + 3, y + h + 3), color, 2)
    out = Path(out_png)
    with atomic_path(out, suffix=".png") as tmp:
        cv2.imwrite(str(tmp), img)
    return out


def photo_preview(flight_dir: str | Path, name: str, out_png: str | Path) -> Path:
    """A simulated photo with the truth boxes drawn on: each labelled object's base and top outlines
    projected through the true pose (so the boxes lean with the objects)."""
    import json

    from skysieve.camera import Camera, Pose, project

    root = Path(flight_dir)
    poses = json.loads((root / "poses.json").read_text())
    flight = json.loads((root / "flight.json").read_text())
    entry = next((p for p in poses["images"] if p["name"] == name), None)
    if entry is None:
        raise DatasetError(f"no photo {name} in this flight", path=root)
    cam = poses["camera"]
    camera = Camera(cam["width_px"], cam["height_px"], cam["focal_px"], cam.get("cx_px"), cam.get("cy_px"))
    t = entry["true"]
    pose = Pose(t["x"], t["y"], t["z"], t["yaw_deg"], t["pitch_deg"], t["roll_deg"])
    img = cv2.imread(str(root / "images" / name))
    objects = json.loads((Path(flight["world"]) / "truth" / "objects.geojson").read_text())["features"]
    for feat in objects:
        ring = np.asarray(feat["geometry"]["coordinates"][0], float)
        h = feat["properties"]["height_m"]
        pts = np.vstack([np.column_stack([ring, np.zeros(len(ring))]), np.column_stack([ring, np.full(len(ring), h)])])
        uv = project(camera, pose, pts)
        if not np.isfinite(uv).all():
            continue
        (x0, y0), (x1, y1) = uv.min(axis=0), uv.max(axis=0)
        if x1 < 0 or y1 < 0 or x0 > camera.width_px or y0 > camera.height_px:
            continue
        color = CLASS_COLORS_BGR[CLASSES.index(feat["properties"]["class"])]
        cv2.rectangle(img, (int(x0) - 2, int(y0) - 2), (int(x1) + 2, int(y1) + 2), color, 2)
    out = Path(out_png)
    with atomic_path(out, suffix=".png") as tmp:
        cv2.imwrite(str(tmp), img)
    return out
