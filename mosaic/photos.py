"""The photos a mosaic is made of: camera, GPS pose, and the image-to-ground homography.

A nadir (or near-nadir) photo of flat ground is a plane-to-plane projection, so each photo's pixels map
to the ground (workspace CRS, metres) by one 3 x 3 homography. Pixels are (col, row) = (u, v) with pixel
centres at integer + 0.5, as in :mod:`skysieve.camera`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from skysieve.camera import Camera, Pose, backproject, camera_pose_from_row
from skysieve.errors import ImageReadError, MosaicError

__all__ = ["Photo", "photo_from_row", "ground_homography", "apply_homography", "read_image", "decode_reduced", "shrink",
           "jpeg_reduction",
           "homography_from_points"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Photo:
    """One accepted photo: where it is on disk, its pinhole camera and its GPS pose (workspace CRS)."""

    image_id: str
    path: str
    camera: Camera
    pose: Pose
    sha256: str = ""
    flight_id: str = ""

    @property
    def gsd_m(self) -> float:
        """Native ground sample distance at the image centre (metres per pixel)."""
        return self.camera.gsd_m(self.pose.z)

    @property
    def centre_xy(self) -> tuple[float, float]:
        """Camera position on the ground (x east, y north; workspace CRS, metres)."""
        return (self.pose.x, self.pose.y)


def photo_from_row(row: Mapping[str, Any]) -> Photo:
    """A :class:`Photo` from a row of the ``images`` layer (:data:`skysieve.schema.IMAGES`).

    The table is read by :func:`skysieve.camera.camera_pose_from_row` (ground at z = 0, ``altitude_m``
    above it, yaw against grid north), the one reading ingest uses too. Raises :class:`~skysieve.errors.MetadataError` when the row has no camera or pose.
    """
    camera, pose = camera_pose_from_row(row)
    return Photo(str(row["image_id"]), str(row["path"]), camera, pose, str(row.get("sha256") or ""),
                 str(row.get("flight_id") or ""))


def ground_homography(photo: Photo, scale: float = 1.0) -> np.ndarray:
    """3 x 3 homography from pixels (col, row) of the photo reduced by ``scale`` to ground x/y (metres).

    ``scale`` < 1 is for a reduced copy (a pixel of it covers 1/scale native pixels).
    """
    cam = photo.camera
    inset = 0.1
    uv = np.array([[inset * cam.width_px, inset * cam.height_px], [(1 - inset) * cam.width_px, inset * cam.height_px],
                   [(1 - inset) * cam.width_px, (1 - inset) * cam.height_px],
                   [inset * cam.width_px, (1 - inset) * cam.height_px]])
    xy = backproject(cam, photo.pose, uv)
    if not np.isfinite(xy).all():
        raise MosaicError("the photo looks at the horizon: it cannot be placed on the ground", ref=photo.image_id,
                          hint="reject oblique photos at ingest")
    return homography_from_points(uv * scale, xy)


def homography_from_points(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Exact 3 x 3 homography taking four points ``src`` to ``dst`` (N x 2), in float64.

    (cv2.getPerspectiveTransform works in float32, which loses decimetres on UTM northings.)
    """
    src, dst = np.asarray(src, float), np.asarray(dst, float)
    o = dst.mean(0)  # solve about the centroid for conditioning
    d = dst - o
    a = np.zeros((8, 8))
    b = np.zeros(8)
    for k, ((x, y), (u, v)) in enumerate(zip(src, d, strict=False)):
        a[2 * k] = [x, y, 1, 0, 0, 0, -u * x, -u * y]
        a[2 * k + 1] = [0, 0, 0, x, y, 1, -v * x, -v * y]
        b[2 * k], b[2 * k + 1] = u, v
    h = np.append(np.linalg.solve(a, b), 1.0).reshape(3, 3)
    shift = np.array([[1.0, 0.0, o[0]], [0.0, 1.0, o[1]], [0.0, 0.0, 1.0]])
    return shift @ h


def apply_homography(h: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """N x 2 points through a 3 x 3 homography (points as x/y or col/row alike)."""
    pts = np.atleast_2d(np.asarray(pts, dtype=float))
    p = np.column_stack([pts, np.ones(len(pts))]) @ np.asarray(h, dtype=float).T
    return p[:, :2] / p[:, 2:3]


def grid_pixels(m: np.ndarray, cols: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(u, v): a grid's ``cols``/``rows`` (arrays of one shape) through the 3 x 3 homography ``m``, element
    by element (e.g. output-grid pixel -> photo pixel)."""
    den = m[2, 0] * cols + m[2, 1] * rows + m[2, 2]
    return (m[0, 0] * cols + m[0, 1] * rows + m[0, 2]) / den, (m[1, 0] * cols + m[1, 1] * rows + m[1, 2]) / den


def jpeg_reduction(scale: float) -> int:
    """Largest power-of-two decoder reduction (1, 2, 4, 8) not coarser than ``scale`` (< 1 = shrink)."""
    for r in (8, 4, 2):
        if scale <= 1.0 / r + 1e-9:
            return r
    return 1


_REDUCED = {(1, True): None, (2, True): "IMREAD_REDUCED_GRAYSCALE_2", (4, True): "IMREAD_REDUCED_GRAYSCALE_4",
            (8, True): "IMREAD_REDUCED_GRAYSCALE_8", (1, False): None, (2, False): "IMREAD_REDUCED_COLOR_2",
            (4, False): "IMREAD_REDUCED_COLOR_4", (8, False): "IMREAD_REDUCED_COLOR_8"}


def read_image(photo: Photo, scale: float = 1.0, gray: bool = False,
               bgr: bool = False) -> tuple[np.ndarray, float, float]:
    """Decode the photo shrunk by about ``scale`` (<= 1); returns (pixels, exact col scale, row scale).

    Colour comes back as RGB (rows, cols, 3) uint8 (``bgr``: in OpenCV's BGR order, not converted), grey
    as (rows, cols). The JPEG decoder's own 1/2, 1/4,
    1/8 reduction does most of the shrinking (fast, low memory); the rest is INTER_AREA. EXIF orientation
    is ignored so pixels match the camera model's (col, row) frame.
    """
    import cv2

    img = decode_reduced(photo, scale, gray)
    if not gray and not bgr:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    img = shrink(img, photo, scale)
    return img, img.shape[1] / photo.camera.width_px, img.shape[0] / photo.camera.height_px


def decode_reduced(photo: Photo, scale: float = 1.0, gray: bool = False) -> np.ndarray:
    """The photo as the JPEG decoder reduces it (1/2, 1/4, 1/8; never below ``scale``), BGR or grey."""
    import cv2

    name = _REDUCED[(jpeg_reduction(scale), gray)]
    flags = (getattr(cv2, name) if name else (cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR))
    img = cv2.imread(str(photo.path), flags | cv2.IMREAD_IGNORE_ORIENTATION)
    if img is None:
        raise ImageReadError("cannot decode the photo", path=Path(photo.path),
                             hint="check the file; re-ingest the flight if it moved")
    return img


def shrink(img: np.ndarray, photo: Photo, scale: float) -> np.ndarray:
    """A decoded (possibly decoder-reduced) image resized to ``scale`` of the photo's native size."""
    import cv2

    w = max(1, round(photo.camera.width_px * scale))
    h = max(1, round(photo.camera.height_px * scale))
    if abs(img.shape[1] - w) > 1 or abs(img.shape[0] - h) > 1:
        img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
    return img
