"""The one table of drone cameras: sensor size, native image size and lens, by EXIF ``Model``.

Ingest reads it to turn a photo's EXIF into a pinhole :class:`~skysieve.camera.Camera`; the flight
simulator reads it to write photos whose EXIF a real camera would write. A DJI photo names its camera in
EXIF ``Model`` (``FC300S`` for the Phantom 3, ``FC6310`` for the Phantom 4 Pro).

A photo whose aspect ratio differs from the sensor's is a centred crop (DJI's 16:9 mode keeps the
sensor's full width and crops rows; a narrower aspect keeps the full height); a photo of the same aspect
but fewer pixels is a downscale of the full sensor. :meth:`SensorSpec.covered_sensor_mm` gives the sensor
area a photo of a given size covers, which is what :meth:`skysieve.camera.Camera.from_sensor` needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["SensorSpec", "CAMERAS", "lookup_sensor", "FULL_FRAME_DIAGONAL_MM"]

FULL_FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)  # 43.27 mm


@dataclass(frozen=True)
class SensorSpec:
    """A camera's sensor: size in mm (width x height), native image size in px (cols x rows), lens focal
    length in mm and its published 35 mm-equivalent (EXIF ``FocalLengthIn35mmFilm``)."""

    name: str
    sensor_width_mm: float
    sensor_height_mm: float
    native_width_px: int
    native_height_px: int
    focal_mm: float | None = None  # fixed-lens focal length (None for interchangeable/zoom lenses)
    focal_35mm: int | None = None  # as the maker publishes it (None where the lens varies)

    def covered_sensor_mm(self, width_px: int, height_px: int) -> tuple[float, float]:
        """Sensor area (mm, width x height) a ``width_px`` x ``height_px`` photo covers: a centred crop to
        its aspect, or the whole sensor downscaled."""
        native = self.native_width_px / self.native_height_px
        aspect = width_px / height_px
        if aspect >= native:  # wider (16:9 on a 4:3 sensor): full width, fewer rows
            return self.sensor_width_mm, self.sensor_width_mm / aspect
        return self.sensor_height_mm * aspect, self.sensor_height_mm  # narrower: full height


#: EXIF Model -> sensor. Figures from DJI's published specifications (1/2.3" = 6.17 x 4.55 mm,
#: 1" = 13.2 x 8.8 mm, 1/2" (Air 2) = 6.4 x 4.8 mm, 4/3 = 17.3 x 13.0 mm, full frame 35.9 x 24 mm).
CAMERAS: dict[str, SensorSpec] = {s.name.upper(): s for s in (
    SensorSpec("FC300S", 6.17, 4.55, 4000, 3000, 3.61, 20),  # Phantom 3 Standard
    SensorSpec("FC300X", 6.17, 4.55, 4000, 3000, 3.61, 20),  # Phantom 3 Professional / Advanced
    SensorSpec("FC300C", 6.17, 4.55, 4000, 3000, 3.61, 20),  # Phantom 3 4K
    SensorSpec("FC330", 6.17, 4.55, 4000, 3000, 3.61, 20),  # Phantom 4
    SensorSpec("FC6310", 13.2, 8.8, 5472, 3648, 8.8, 24),  # Phantom 4 Pro
    SensorSpec("FC6310S", 13.2, 8.8, 5472, 3648, 8.8, 24),  # Phantom 4 Pro V2.0
    SensorSpec("FC6310R", 13.2, 8.8, 5472, 3648, 8.8, 24),  # Phantom 4 RTK
    SensorSpec("FC220", 6.17, 4.55, 4000, 3000, 4.73, 26),  # Mavic Pro
    SensorSpec("FC2103", 6.17, 4.55, 4056, 3040, 4.5),  # Mavic Air
    SensorSpec("FC2204", 6.17, 4.55, 4000, 3000, 4.38),  # Mavic 2 Zoom (at its wide end)
    SensorSpec("FC7203", 6.17, 4.55, 4000, 3000, 4.49),  # Mavic Mini
    SensorSpec("FC3170", 6.4, 4.8, 4000, 3000, 4.49),  # Mavic Air 2 (12 MP binned; 48 MP is 8000 x 6000)
    SensorSpec("FC3411", 13.2, 8.8, 5472, 3648, 8.38, 22),  # DJI Air 2S
    SensorSpec("L1D-20C", 13.2, 8.8, 5472, 3648, 10.26, 28),  # Mavic 2 Pro (Hasselblad)
    SensorSpec("FC6520", 17.3, 13.0, 5280, 3956, None),  # Zenmuse X5S (M4/3, interchangeable lens)
    SensorSpec("FC6540", 23.5, 15.7, 6016, 4008, None),  # Zenmuse X7 (APS-C, interchangeable lens)
    SensorSpec("M3E", 17.3, 13.0, 5280, 3956, 12.29, 24),  # Mavic 3 Enterprise wide camera
    SensorSpec("ZENMUSEP1", 35.9, 24.0, 8192, 5460, None),  # Zenmuse P1 (24 / 35 / 50 mm lenses)
)}


def lookup_sensor(model: str | None) -> SensorSpec | None:
    """The table entry for an EXIF ``Model`` string (padding, case and spaces ignored), or None."""
    if not model:
        return None
    key = model.replace("\x00", "").replace(" ", "").strip().upper()
    return CAMERAS.get(key)
