"""Write JPEGs with EXIF and DJI XMP exactly as a DJI drone does.

Used by the flight simulator (so ``skysieve ingest`` reads a simulated flight like a real one) and by
tests that need real files with real metadata (no mocks). Layout follows a Phantom 3 / Mavic file:
IFD0 Make/Model/DateTime, Exif IFD FocalLength / FocalLengthIn35mmFilm / image size, GPS IFD with
degrees-minutes-seconds rationals and altitude above sea level, and an XMP packet in an APP1 segment
with ``drone-dji:`` attributes (RelativeAltitude, Gimbal*/Flight* angles in degrees).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["DJIMeta", "write_dji_jpeg", "xmp_packet", "insert_xmp"]

_XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"


@dataclass(frozen=True)
class DJIMeta:
    """What a DJI drone records with a photo. Angles in degrees, altitudes in metres, lon/lat WGS 84.

    ``None`` fields are left out of the file (a photo without GPS, without XMP, ...).
    """

    lon: float | None
    lat: float | None
    gps_altitude_m: float | None = None  # EXIF GPSAltitude (above sea level on DJI)
    relative_altitude_m: float | None = None  # XMP RelativeAltitude (above take-off)
    gimbal_yaw_deg: float | None = 0.0
    gimbal_pitch_deg: float | None = -90.0
    gimbal_roll_deg: float | None = 0.0
    flight_yaw_deg: float | None = None
    flight_pitch_deg: float | None = 0.0
    flight_roll_deg: float | None = 0.0
    make: str = "DJI"
    model: str = "FC300S"
    focal_length_mm: float | None = 3.61
    focal_length_35mm: int | None = 20
    taken_at: datetime = datetime(2024, 3, 20, 10, 0, 0)
    xmp: bool = True


def _rational_dms(value: float) -> tuple[float, float, float]:
    value = abs(value)
    d = int(value)
    m = int((value - d) * 60)
    s = (value - d - m / 60) * 3600
    return (float(d), float(m), round(s, 4))


def _signed(v: float) -> str:
    return f"{v:+.2f}"


def xmp_packet(meta: DJIMeta) -> bytes:
    """The XMP packet a DJI drone writes (``drone-dji`` namespace)."""
    attrs = {
        "xmp:CreateDate": meta.taken_at.strftime("%Y-%m-%d"),
        "tiff:Make": meta.make,
        "tiff:Model": meta.model,
        "dc:format": "image/jpeg",
    }
    if meta.gps_altitude_m is not None:
        attrs["drone-dji:AbsoluteAltitude"] = _signed(meta.gps_altitude_m)
    for key, value in (
        ("RelativeAltitude", meta.relative_altitude_m),
        ("GimbalRollDegree", meta.gimbal_roll_deg),
        ("GimbalYawDegree", meta.gimbal_yaw_deg),
        ("GimbalPitchDegree", meta.gimbal_pitch_deg),
        ("FlightRollDegree", meta.flight_roll_deg),
        ("FlightYawDegree", meta.flight_yaw_deg),
        ("FlightPitchDegree", meta.flight_pitch_deg),
    ):
        if value is not None:
            attrs[f"drone-dji:{key}"] = _signed(value)
    body = "\n".join(f'   {k}="{v}"' for k, v in attrs.items())
    text = (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        '  <rdf:Description rdf:about="DJI Meta Data"\n'
        '    xmlns:tiff="http://ns.adobe.com/tiff/1.0/"\n'
        '    xmlns:xmp="http://ns.adobe.com/xap/1.0/"\n'
        '    xmlns:dc="http://purl.org/dc/elements/1.1/"\n'
        '    xmlns:drone-dji="http://www.dji.com/drone-dji/1.0/"\n'
        f"{body}>\n"
        "  </rdf:Description>\n"
        " </rdf:RDF>\n"
        "</x:xmpmeta>\n"
        '<?xpacket end="w"?>'
    )
    return text.encode("utf-8")


def insert_xmp(jpeg: bytes, packet: bytes) -> bytes:
    """Insert an APP1 XMP segment after the JPEG's APP0/APP1 (EXIF) segments."""
    if jpeg[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG")
    segment = _XMP_HEADER + packet
    app1 = b"\xff\xe1" + (len(segment) + 2).to_bytes(2, "big") + segment
    pos = 2
    while jpeg[pos] == 0xFF and jpeg[pos + 1] in (0xE0, 0xE1):
        length = int.from_bytes(jpeg[pos + 2:pos + 4], "big")
        pos += 2 + length
    return jpeg[:pos] + app1 + jpeg[pos:]


def _exif(meta: DJIMeta, width: int, height: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = meta.make  # Make
    exif[0x0110] = meta.model  # Model
    exif[0x0112] = 1  # Orientation
    exif[0x0132] = meta.taken_at.strftime("%Y:%m:%d %H:%M:%S")  # DateTime
    sub = exif.get_ifd(0x8769)
    sub[0x9003] = meta.taken_at.strftime("%Y:%m:%d %H:%M:%S")  # DateTimeOriginal
    if meta.focal_length_mm is not None:
        sub[0x920A] = float(meta.focal_length_mm)  # FocalLength
    if meta.focal_length_35mm is not None:
        sub[0xA405] = int(meta.focal_length_35mm)  # FocalLengthIn35mmFilm
    sub[0xA002] = width  # ExifImageWidth
    sub[0xA003] = height  # ExifImageHeight
    if meta.lat is not None and meta.lon is not None:
        gps = exif.get_ifd(0x8825)
        gps[0x0000] = b"\x02\x03\x00\x00"  # GPSVersionID
        gps[0x0001] = "N" if meta.lat >= 0 else "S"
        gps[0x0002] = _rational_dms(meta.lat)
        gps[0x0003] = "E" if meta.lon >= 0 else "W"
        gps[0x0004] = _rational_dms(meta.lon)
        if meta.gps_altitude_m is not None:
            gps[0x0005] = b"\x00" if meta.gps_altitude_m >= 0 else b"\x01"
            gps[0x0006] = abs(float(meta.gps_altitude_m))
    return exif


def write_dji_jpeg(path: str | Path | None, pixels: np.ndarray, meta: DJIMeta, quality: int = 90) -> bytes:
    """Encode ``pixels`` (rows x cols x 3, uint8, RGB) as a DJI-style JPEG; write it if ``path`` given.

    Returns the file's bytes.
    """
    img = Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8), "RGB")
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality, exif=_exif(meta, img.width, img.height).tobytes())
    data = buf.getvalue()
    if meta.xmp:
        data = insert_xmp(data, xmp_packet(meta))
    if path is not None:
        Path(path).write_bytes(data)
    return data
