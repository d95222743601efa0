"""Camera intrinsics of a photo: a table of common DJI cameras, else the EXIF 35 mm-equivalent focal length.

A DJI photo names its camera in EXIF ``Model`` (``FC300S`` for the Phantom 3 Standard, ``FC6310`` for
the Phantom 4 Pro). The table gives the sensor's size in millimetres and its native image size in
pixels. A photo whose aspect ratio differs from the sensor's is a centred crop (DJI's 16:9 mode keeps
the sensor's full width and crops rows; a narrower aspect keeps the full height); a photo of the same
aspect but fewer pixels is a downscale of the full sensor. Either way the sensor width the photo
covers is what :meth:`skysieve.camera.Camera.from_sensor` needs.

Without a table entry, the 35 mm-equivalent focal length (EXIF ``FocalLengthIn35mmFilm``) is used: by
the CIPA DC-008 definition it scales the sensor's diagonal to the 43.27 mm of a 36 x 24 mm frame. Cameras
write it for the full sensor even in a cropped mode, so for a photo wider than 4:3 the diagonal of a 4:3
frame of the same width is used (the usual drone sensor).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from skysieve.camera import Camera

__all__ = ["SensorSpec", "CameraInfo", "CAMERAS", "lookup_sensor", "camera_info", "FULL_FRAME_DIAGONAL_MM"]

FULL_FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)  # 43.27 mm


@dataclass(frozen=True)
class SensorSpec:
    """A camera's sensor: size in mm (width x height), native image size in px (cols x rows), lens focal mm."""

    name: str
    sensor_width_mm: float
    sensor_height_mm: float
    native_width_px: int
    native_height_px: int
    focal_mm: float | None = None  # fixed-lens focal length (None for interchangeable/zoom lenses)


#: EXIF Model -> sensor. Figures from DJI's published specifications (1/2.3" = 6.17 x 4.55 mm,
#: 1" = 13.2 x 8.8 mm, 1/2" (Air 2) = 6.4 x 4.8 mm, 4/3 = 17.3 x 13.0 mm, full frame 35.9 x 24 mm).
CAMERAS: dict[str, SensorSpec] = {s.name.upper(): s for s in (
    SensorSpec("FC300S", 6.17, 4.55, 4000, 3000, 3.61),  # Phantom 3 Standard
    SensorSpec("FC300X", 6.17, 4.55, 4000, 3000, 3.61),  # Phantom 3 Professional / Advanced
    SensorSpec("FC300C", 6.17, 4.55, 4000, 3000, 3.61),  # Phantom 3 4K
    SensorSpec("FC330", 6.17, 4.55, 4000, 3000, 3.61),  # Phantom 4
    SensorSpec("FC6310", 13.2, 8.8, 5472, 3648, 8.8),  # Phantom 4 Pro
    SensorSpec("FC6310S", 13.2, 8.8, 5472, 3648, 8.8),  # Phantom 4 Pro V2.0
    SensorSpec("FC6310R", 13.2, 8.8, 5472, 3648, 8.8),  # Phantom 4 RTK
    SensorSpec("FC220", 6.17, 4.55, 4000, 3000, 4.73),  # Mavic Pro
    SensorSpec("FC2103", 6.17, 4.55, 4056, 3040, 4.5),  # Mavic Air
    SensorSpec("FC2204", 6.17, 4.55, 4000, 3000, 4.38),  # Mavic 2 Zoom (at its wide end)
    SensorSpec("FC7203", 6.17, 4.55, 4000, 3000, 4.49),  # Mavic Mini
    SensorSpec("FC3170", 6.4, 4.8, 4000, 3000, 4.49),  # Mavic Air 2 (12 MP binned; 48 MP is 8000 x 6000)
    SensorSpec("FC3411", 13.2, 8.8, 5472, 3648, 8.38),  # DJI Air 2S
    SensorSpec("L1D-20C", 13.2, 8.8, 5472, 3648, 10.26),  # Mavic 2 Pro (Hasselblad)
    SensorSpec("FC6520", 17.3, 13.0, 5280, 3956, None),  # Zenmuse X5S (M4/3, interchangeable lens)
    SensorSpec("FC6540", 23.5, 15.7, 6016, 4008, None),  # Zenmuse X7 (APS-C, interchangeable lens)
    SensorSpec("M3E", 17.3, 13.0, 5280, 3956, 12.29),  # Mavic 3 Enterprise wide camera
    SensorSpec("ZENMUSEP1", 35.9, 24.0, 8192, 5460, None),  # Zenmuse P1 (24 / 35 / 50 mm lenses)
)}


def lookup_sensor(model: str | None) -> SensorSpec | None:
    """The table entry for an EXIF ``Model`` string (padding, case and spaces ignored), or None."""
    if not model:
        return None
    key = model.replace("\x00", "").replace(" ", "").strip().upper()
    return CAMERAS.get(key)


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


def _covered_sensor(spec: SensorSpec, width_px: int, height_px: int) -> tuple[float, float]:
    """Sensor area (mm) a ``width_px`` x ``height_px`` photo covers: a centred crop to its aspect."""
    native = spec.native_width_px / spec.native_height_px
    aspect = width_px / height_px
    if aspect >= native:  # wider (16:9 on a 4:3 sensor): full width, fewer rows
        return spec.sensor_width_mm, spec.sensor_width_mm / aspect
    return spec.sensor_height_mm * aspect, spec.sensor_height_mm  # narrower: full height


def camera_info(model: str | None, width_px: int, height_px: int, focal_mm: float | None,
                focal_35mm: float | None) -> CameraInfo | None:
    """Intrinsics of a photo from its EXIF fields; None when neither the table nor a 35 mm focal helps.

    The photo's own EXIF focal length wins over the table's (zoom and interchangeable lenses).
    """
    name = (model or "unknown").replace("\x00", "").strip() or "unknown"
    spec = lookup_sensor(model)
    if spec is not None and (focal_mm or spec.focal_mm):
        w_mm, h_mm = _covered_sensor(spec, width_px, height_px)
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
