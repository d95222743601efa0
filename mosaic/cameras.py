"""Camera intrinsics of a photo: the camera table (:mod:`skysieve.camera_specs`, shared with the flight
simulator), else the EXIF 35 mm-equivalent focal length.

A DJI photo names its camera in EXIF ``Model`` (``FC300S`` for the Phantom 3 Standard, ``FC6310`` for
the Phantom 4 Pro); the table gives the sensor area a photo of its size covers (a crop or a downscale),
which is what :meth:`skysieve.camera.Camera.from_sensor` needs.

Without a table entry, the 35 mm-equivalent focal length (EXIF ``FocalLengthIn35mmFilm``) is used: by
the CIPA DC-008 definition it scales the sensor's diagonal to the 43.27 mm of a 36 x 24 mm frame. Cameras
write it for the full sensor even in a cropped mode, so for a photo wider than 4:3 the diagonal of a 4:3
frame of the same width is used (the usual drone sensor).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from skysieve.camera import Camera
from skysieve.camera_specs import CAMERAS, FULL_FRAME_DIAGONAL_MM, SensorSpec, lookup_sensor

__all__ = ["SensorSpec", "CameraInfo", "CAMERAS", "lookup_sensor", "camera_info", "FULL_FRAME_DIAGONAL_MM"]


@dataclass(frozen=True)
class CameraInfo:
    """Intrinsics of one photo and where they came from (``table`` or ``focal35``).

    ``sensor_width_mm``/``sensor_height_mm`` are the sensor area the photo covers (after any crop).
    For the ``focal35`` source they are the 35 mm-equivalent frame's, and ``focal_mm`` the equivalent focal.
    """

    model: str
    focal_mm: float
    sensor_width_mm: float
    sensor_height_mm: float
    width_px: int
    height_px: int
    source: str

    def camera(self) -> Camera:
        return Camera.from_sensor(self.width_px, self.height_px, self.focal_mm, self.sensor_width_mm)


def camera_info(model: str | None, width_px: int, height_px: int, focal_mm: float | None,
                focal_35mm: float | None) -> CameraInfo | None:
    """Intrinsics of a photo from its EXIF fields; None when neither the table nor a 35 mm focal helps.

    The photo's own EXIF focal length wins over the table's (zoom and interchangeable lenses).
    """
    name = (model or "unknown").replace("\x00", "").strip() or "unknown"
    spec = lookup_sensor(model)
    if spec is not None and (focal_mm or spec.focal_mm):
        w_mm, h_mm = spec.covered_sensor_mm(width_px, height_px)
        return CameraInfo(name, float(focal_mm or spec.focal_mm), w_mm, h_mm, width_px, height_px, "table")
    if focal_35mm:
        # diagonal of the full frame in pixels: a 4:3 frame of the same width for wider photos
        frame_h = width_px * 3 / 4 if width_px / height_px > 4 / 3 else height_px
        diag_px = math.hypot(width_px, frame_h)
        focal_px = float(focal_35mm) / FULL_FRAME_DIAGONAL_MM * diag_px
        # express as an equivalent sensor with the 35 mm focal: width_mm = focal * width_px / focal_px
        w_mm = float(focal_35mm) * width_px / focal_px
        return CameraInfo(name, float(focal_35mm), w_mm, w_mm * height_px / width_px, width_px, height_px,
                          "focal35")
    return None
