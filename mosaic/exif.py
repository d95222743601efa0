"""Reading what a drone records with a photo: EXIF (camera, focal length, GPS) and DJI XMP (angles, heights).

Only the file's header is parsed here; no pixel is decoded. The JPEG marker segments are walked up
to the start of scan, so a truncated or non-JPEG file is told apart early, and the XMP packet is
read from its own APP1 segment (DJI writes ``drone-dji:`` attributes such as ``RelativeAltitude``
and ``GimbalYawDegree``; a few tools rewrite them as elements, which are read too).

Units: degrees for angles and WGS 84 lon/lat, metres for altitudes, millimetres for focal lengths.
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from skysieve.errors import ImageReadError

__all__ = ["PhotoMeta", "read_meta", "jpeg_segments", "parse_dji_xmp", "is_jpeg", "iso_time"]

log = logging.getLogger(__name__)

_XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825

_DJI_FIELDS = ("AbsoluteAltitude", "RelativeAltitude", "GimbalRollDegree", "GimbalYawDegree",
               "GimbalPitchDegree", "FlightRollDegree", "FlightYawDegree", "FlightPitchDegree")


@dataclass(frozen=True)
class PhotoMeta:
    """Metadata of one photo. ``None`` where the file does not say.

    ``width_px``/``height_px`` are the stored image's size (cols, rows). ``gps_altitude_m`` is EXIF
    GPSAltitude (above sea level on DJI); ``relative_altitude_m`` is DJI XMP ``RelativeAltitude``
    (above the take-off point). Gimbal and flight angles are DJI's: yaw clockwise from true north,
    gimbal pitch -90 straight down. ``taken_at`` is UTC (aware) when EXIF gives the time's offset
    (``OffsetTimeOriginal``), else the camera's local time (naive), as DJI writes it.
    """

    width_px: int
    height_px: int
    make: str | None = None
    model: str | None = None
    taken_at: datetime | None = None
    lon: float | None = None
    lat: float | None = None
    gps_altitude_m: float | None = None
    focal_mm: float | None = None
    focal_35mm: float | None = None
    has_xmp: bool = False
    relative_altitude_m: float | None = None
    gimbal_yaw_deg: float | None = None
    gimbal_pitch_deg: float | None = None
    gimbal_roll_deg: float | None = None
    flight_yaw_deg: float | None = None
    flight_pitch_deg: float | None = None
    flight_roll_deg: float | None = None

    @property
    def has_gps(self) -> bool:
        return self.lon is not None and self.lat is not None


def is_jpeg(head: bytes) -> bool:
    """True when ``head`` (the first bytes of a file) starts like a JPEG (SOI then a marker)."""
    return len(head) >= 3 and head[:3] == b"\xff\xd8\xff"


def jpeg_segments(data: bytes) -> list[tuple[int, bytes]]:
    """The marker segments before the image data: ``(marker, payload)`` up to and including SOS.

    Raises :class:`ImageReadError` when the marker structure is broken or ends before SOS.
    """
    if not is_jpeg(data):
        raise ImageReadError("not a JPEG file (no start-of-image marker)")
    out: list[tuple[int, bytes]] = []
    pos = 2
    n = len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            raise ImageReadError(f"broken JPEG marker structure at byte {pos}")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01,) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        if length < 2 or pos + 2 + length > n:
            raise ImageReadError("JPEG header ends early (truncated file)")
        out.append((marker, data[pos + 4:pos + 2 + length]))
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            return out
        pos += 2 + length
    raise ImageReadError("JPEG ends before its image data (truncated file)")


def _float(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text.strip())
    except ValueError:
        return None


def parse_dji_xmp(packet: bytes) -> dict[str, float]:
    """``drone-dji:`` numeric fields of an XMP packet (attribute or element form), by field name."""
    text = packet.decode("utf-8", errors="replace")
    out: dict[str, float] = {}
    for name in _DJI_FIELDS:
        m = re.search(rf'drone-dji:{name}\s*=\s*"([^"]*)"', text) or \
            re.search(rf"<drone-dji:{name}>([^<]*)</drone-dji:{name}>", text)
        value = _float(m.group(1)) if m else None
        if value is not None:
            out[name] = value
    return out


def _ratio(v) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError, ZeroDivisionError):
        return None


def _dms(value, ref) -> float | None:
    try:
        d, m, s = (float(x) for x in value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    deg = d + m / 60.0 + s / 3600.0
    if isinstance(ref, bytes):
        ref = ref.decode("ascii", errors="replace")
    if str(ref).strip().upper() in ("S", "W"):
        deg = -deg
    return deg


def _text(v) -> str | None:
    if v is None:
        return None
    if isinstance(v, bytes):
        v = v.decode("utf-8", errors="replace")
    v = str(v).replace("\x00", "").strip()
    return v or None


def _datetime(v, offset=None) -> datetime | None:
    """EXIF ``YYYY:MM:DD HH:MM:SS``; with an EXIF offset (``+08:00``) it becomes an aware UTC time."""
    text = _text(v)
    if not text:
        return None
    try:
        dt = datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    m = re.fullmatch(r"([+-])(\d{2}):?(\d{2})", _text(offset) or "")
    if m:
        sign = 1 if m.group(1) == "+" else -1
        tz = timezone(sign * timedelta(hours=int(m.group(2)), minutes=int(m.group(3))))
        dt = dt.replace(tzinfo=tz).astimezone(UTC)
    return dt


def iso_time(dt: datetime | None) -> str | None:
    """ISO 8601 text: ``...Z`` for a UTC time, no zone for a camera's local time (no EXIF offset)."""
    if dt is None:
        return None
    if dt.tzinfo is not None:
        return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return dt.strftime("%Y-%m-%dT%H:%M:%S")


def read_meta(data: bytes, path: str | Path | None = None) -> PhotoMeta:
    """Metadata from a JPEG file's bytes (EXIF via Pillow, XMP from its APP1 segment).

    Raises :class:`ImageReadError` when the bytes are not a readable JPEG header.
    """
    try:
        segments = jpeg_segments(data)
    except ImageReadError as e:
        raise ImageReadError(str(e), path=path, hint="copy the file from the drone's card again") from None
    packet = next((p[len(_XMP_HEADER):] for m, p in segments if m == 0xE1 and p.startswith(_XMP_HEADER)), None)
    try:
        img = Image.open(io.BytesIO(data))
        width, height = img.size
        exif = img.getexif()
    except (UnidentifiedImageError, ImportError, OSError, SyntaxError, ValueError) as e:
        raise ImageReadError(f"unreadable JPEG header: {e}", path=path) from None
    sub = exif.get_ifd(_EXIF_IFD)
    gps = exif.get_ifd(_GPS_IFD)
    lat = _dms(gps.get(2), gps.get(1)) if 2 in gps else None
    lon = _dms(gps.get(4), gps.get(3)) if 4 in gps else None
    if lat is not None and lon is not None and (abs(lat) > 90 or abs(lon) > 180 or (lat == 0 and lon == 0)):
        lat = lon = None  # no fix: DJI writes 0/0 before the GPS locks
    alt = _ratio(gps.get(6))
    if alt is not None and gps.get(5) in (1, b"\x01"):
        alt = -alt
    focal35 = _ratio(sub.get(0xA405))
    dji = parse_dji_xmp(packet) if packet is not None else {}
    return PhotoMeta(
        width_px=int(width),
        height_px=int(height),
        make=_text(exif.get(0x010F)),
        model=_text(exif.get(0x0110)),
        taken_at=_datetime(sub.get(0x9003), sub.get(0x9011)) or _datetime(exif.get(0x0132), sub.get(0x9010)),
        lon=lon,
        lat=lat,
        gps_altitude_m=alt,
        focal_mm=_ratio(sub.get(0x920A)) or None,
        focal_35mm=focal35 or None,
        has_xmp=packet is not None and bool(dji),
        relative_altitude_m=dji.get("RelativeAltitude"),
        gimbal_yaw_deg=dji.get("GimbalYawDegree"),
        gimbal_pitch_deg=dji.get("GimbalPitchDegree"),
        gimbal_roll_deg=dji.get("GimbalRollDegree"),
        flight_yaw_deg=dji.get("FlightYawDegree"),
        flight_pitch_deg=dji.get("FlightPitchDegree"),
        flight_roll_deg=dji.get("FlightRollDegree"),
    )
