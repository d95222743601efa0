"""Small seeded scenes for the orthomosaic tests: a textured ground raster photographed by pinhole cameras.

Photos are rendered with :mod:`skysieve.camera` (the true poses) and written as real JPEGs; the images
layer gets the noisy GPS poses, as ingest would record them. The ground raster itself is the true ortho.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
from affine import Affine

from skysieve.camera import Camera, Pose, footprint
from skysieve.mosaic.photos import Photo, ground_homography
from skysieve.schema import IMAGES
from skysieve.workspace import Workspace

CRS = "EPSG:32615"
ORIGIN = (576000.0, 5188000.0)  # a round corner in UTM 15N (Duluth), so cells are predictable


@dataclass(frozen=True)
class Ground:
    """True ortho: RGB (rows, cols, 3) uint8 with a north-up transform (workspace CRS)."""

    rgb: np.ndarray
    transform: Affine


def make_ground(size_m: float = 120.0, gsd_m: float = 0.05, seed: int = 0, water: tuple | None = None) -> Ground:
    """Fields, roads and roofs over multi-scale noise; ``water``: (minx, miny, maxx, maxy) metres from ORIGIN
    painted flat blue-grey (featureless)."""
    rng = np.random.default_rng(seed)
    n = int(round(size_m / gsd_m))
    img = np.zeros((n, n, 3), np.float32)
    for octave, amp in ((8, 60), (32, 40), (128, 25), (512, 15)):
        small = rng.random((octave, octave, 3)).astype(np.float32)
        img += amp * cv2.resize(small, (n, n), interpolation=cv2.INTER_CUBIC)
    img += 40
    for _ in range(int(size_m * size_m / 60)):
        x, y = rng.integers(0, n, 2)
        w, h = rng.integers(int(1 / gsd_m), int(8 / gsd_m), 2)
        colour = rng.integers(30, 230, 3).tolist()
        if rng.random() < 0.5:
            cv2.rectangle(img, (int(x), int(y)), (int(x + w), int(y + h)), colour, -1)
        else:
            cv2.circle(img, (int(x), int(y)), int(w // 2), colour, -1)
    img = np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)
    transform = Affine(gsd_m, 0, ORIGIN[0], 0, -gsd_m, ORIGIN[1] + size_m)
    if water is not None:
        inv = ~transform
        c0, r1 = inv @ (ORIGIN[0] + water[0], ORIGIN[1] + water[1])
        c1, r0 = inv @ (ORIGIN[0] + water[2], ORIGIN[1] + water[3])
        img[int(r0):int(r1), int(c0):int(c1)] = (70, 90, 110)
    return Ground(img, transform)


def render_photo(ground: Ground, camera: Camera, pose: Pose) -> np.ndarray:
    """What the camera at ``pose`` sees of the flat ground (RGB uint8)."""
    h = ground_homography(Photo("x", "", camera, pose))  # photo pixel (camera convention) -> ground
    inv = ~ground.transform
    g2p = np.array([[inv.a, inv.b, inv.c - 0.5], [inv.d, inv.e, inv.f - 0.5], [0, 0, 1]])
    shift = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])  # cv2 index -> camera convention
    m = g2p @ h @ shift
    area = cv2.pyrDown(ground.rgb) if camera.gsd_m(pose.z) > 2.5 * ground.transform.a else None
    if area is not None:  # pre-filter against aliasing when the photo is much coarser than the ground
        m = np.array([[0.5, 0, -0.25], [0, 0.5, -0.25], [0, 0, 1]]) @ m
        src = area
    else:
        src = ground.rgb
    return cv2.warpPerspective(src, m, (camera.width_px, camera.height_px),
                               flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT)


@dataclass(frozen=True)
class Shot:
    """A photo to take: true pose, and the error its GPS fix carries (metres)."""

    image_id: str
    camera: Camera
    pose: Pose
    gps_error: tuple[float, float] = (0.0, 0.0)


def grid_shots(camera: Camera, height_m: float, x0: float, y0: float, nx: int, ny: int, step_x: float,
               step_y: float, gps_sigma_m: float = 0.0, seed: int = 1, prefix: str = "f1") -> list[Shot]:
    """A lawnmower pattern of nadir shots starting at (x0, y0) metres from ORIGIN."""
    rng = np.random.default_rng(seed)
    shots = []
    for j in range(ny):
        for i in range(nx):
            yaw = 0.0 if j % 2 == 0 else 180.0
            pose = Pose(ORIGIN[0] + x0 + i * step_x, ORIGIN[1] + y0 + j * step_y, height_m, yaw, -90.0, 0.0)
            err = tuple(rng.normal(0, gps_sigma_m, 2)) if gps_sigma_m else (0.0, 0.0)
            shots.append(Shot(f"{prefix}/IMG_{j:02d}{i:02d}.JPG", camera, pose, err))
    return shots


def make_workspace(root: Path, ground: Ground, shots: list[Shot], cell_size_m: float = 100.0,
                   height=None) -> Workspace:
    """A workspace whose images layer holds the shots (rendered to JPEGs) with their GPS poses; ``height``:
    the ground's relief (:func:`render_photo_on_relief`), None: flat."""
    ws = Workspace.create(root, crs=CRS, cell_size_m=cell_size_m)
    ws.layer(IMAGES)
    rows = []
    photo_dir = root / "flights"
    for s in shots:
        path = photo_dir / s.image_id
        path.parent.mkdir(parents=True, exist_ok=True)
        rgb = render_photo(ground, s.camera, s.pose) if height is None else render_photo_on_relief(
            ground, s.camera, s.pose, height)
        cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, 92])
        gps = replace(s.pose, x=s.pose.x + s.gps_error[0], y=s.pose.y + s.gps_error[1])
        fp = footprint(s.camera, gps)
        ws.cells_touching(fp)
        sensor_w = 6.0
        rows.append({
            "image_id": s.image_id, "flight_id": s.image_id.split("/")[0], "path": str(path), "sha256": "",
            "x": gps.x, "y": gps.y, "altitude_m": gps.z, "yaw_deg": gps.yaw_deg, "pitch_deg": gps.pitch_deg,
            "roll_deg": gps.roll_deg, "focal_mm": s.camera.focal_px * sensor_w / s.camera.width_px,
            "sensor_width_mm": sensor_w, "sensor_height_mm": sensor_w * s.camera.height_px / s.camera.width_px,
            "width_px": s.camera.width_px, "height_px": s.camera.height_px, "gsd_m": s.camera.gsd_m(gps.z),
            "status": "accepted", "geometry": fp,
        })
    ws.gpkg.insert("images", rows)
    ws.gpkg.update_extent("images")
    return ws


def truth_window(ground: Ground, bounds: tuple[float, float, float, float], gsd_m: float) -> np.ndarray:
    """The true ortho resampled to a north-up grid (x_min, y_min, x_max, y_max) at ``gsd_m``."""
    x0, y0, x1, y1 = bounds
    w, h = int(round((x1 - x0) / gsd_m)), int(round((y1 - y0) / gsd_m))
    inv = ~ground.transform
    # output index (c, r) -> ground (x0 + (c+.5) g, y1 - (r+.5) g) -> ground raster index
    out2g = np.array([[gsd_m, 0, x0 + 0.5 * gsd_m], [0, -gsd_m, y1 - 0.5 * gsd_m], [0, 0, 1]])
    g2p = np.array([[inv.a, inv.b, inv.c - 0.5], [inv.d, inv.e, inv.f - 0.5], [0, 0, 1]])
    return cv2.warpPerspective(ground.rgb, g2p @ out2g, (w, h), flags=cv2.INTER_AREA | cv2.WARP_INVERSE_MAP)


def render_photo_on_relief(ground: Ground, camera: Camera, pose: Pose, height) -> np.ndarray:
    """What the camera at ``pose`` sees of the ground raised by ``height(x, y)`` (metres above the plane z = 0,
    a smooth function of N-arrays): each pixel's ray meets the relief (fixed-point iteration, fine for slopes
    well under the ray's), and takes the true ortho's colour there (RGB uint8)."""
    from skysieve.camera import rotation_cam_to_world

    cols, rows = np.meshgrid(np.arange(camera.width_px) + 0.5, np.arange(camera.height_px) + 0.5)
    rays = np.stack([(cols - camera.cx) / camera.focal_px, (rows - camera.cy) / camera.focal_px,
                     np.ones_like(cols)], -1) @ rotation_cam_to_world(pose).T
    z = np.zeros(cols.shape)
    for _ in range(30):
        t = (z - pose.z) / rays[..., 2]
        x, y = pose.x + t * rays[..., 0], pose.y + t * rays[..., 1]
        z = height(x, y)
    inv = ~ground.transform
    mx = (inv.a * x + inv.b * y + inv.c - 0.5).astype(np.float32)
    my = (inv.d * x + inv.e * y + inv.f - 0.5).astype(np.float32)
    return cv2.remap(ground.rgb, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
