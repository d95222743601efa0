"""Pinhole camera geometry shared by ingest (footprints), the simulator (rendering) and the mosaic.

Frames and conventions (all angles in degrees, lengths in metres, pixels as (col, row) = (u, v)):

- World: a local east/north/up frame in the workspace CRS: x east, y north, z up. The ground is
  the plane ``z = ground_z`` (0 unless given); :class:`Pose` ``z`` is the camera's height in the same
  frame, so with ``ground_z = 0`` it is the height above ground.
- Camera: x to the image's right, y to its bottom, z along the optical axis (into the scene).
  Pixel centres are at integer (u, v) + 0.5 in this convention: ``u = f * x / z + cx``.
- ``yaw_deg``: heading of the image's top edge, clockwise from north (DJI ``GimbalYawDegree`` for a
  nadir shot). ``pitch_deg``: gimbal pitch, -90 is straight down; -80 tilts the axis 10 degrees
  towards the image top. ``roll_deg``: turns the axis towards the image's right side.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from shapely.geometry import Polygon

from skysieve.errors import MetadataError

__all__ = ["Camera", "Pose", "rotation_cam_to_world", "project", "backproject", "footprint",
           "off_nadir_deg", "camera_pose_from_row"]


@dataclass(frozen=True)
class Camera:
    """Pinhole intrinsics: image size in pixels, focal length in pixels, principal point (col, row)."""

    width_px: int
    height_px: int
    focal_px: float
    cx_px: float | None = None
    cy_px: float | None = None

    @classmethod
    def from_sensor(cls, width_px: int, height_px: int, focal_mm: float, sensor_width_mm: float) -> Camera:
        """Intrinsics from the focal length and the width of the sensor area the image covers (mm)."""
        return cls(width_px, height_px, focal_mm / sensor_width_mm * width_px)

    @property
    def cx(self) -> float:
        return self.width_px / 2.0 if self.cx_px is None else self.cx_px

    @property
    def cy(self) -> float:
        return self.height_px / 2.0 if self.cy_px is None else self.cy_px

    def gsd_m(self, height_m: float) -> float:
        """Ground sample distance (metres per pixel) at the image centre of a nadir shot."""
        return height_m / self.focal_px


@dataclass(frozen=True)
class Pose:
    """Camera position (x east, y north in the workspace CRS; z height, metres) and orientation (degrees)."""

    x: float
    y: float
    z: float
    yaw_deg: float = 0.0
    pitch_deg: float = -90.0
    roll_deg: float = 0.0


def off_nadir_deg(pose: Pose) -> float:
    """Angle between the optical axis and straight down, degrees."""
    r = rotation_cam_to_world(pose)
    return math.degrees(math.acos(max(-1.0, min(1.0, -r[2, 2]))))


def rotation_cam_to_world(pose: Pose) -> np.ndarray:
    """3 x 3 rotation taking camera-frame vectors to world (east, north, up) vectors."""
    psi = math.radians(pose.yaw_deg)
    forward = np.array([math.sin(psi), math.cos(psi), 0.0])  # image top on the ground
    right = np.array([math.cos(psi), -math.sin(psi), 0.0])
    nadir = np.column_stack([right, -forward, [0.0, 0.0, -1.0]])  # camera x, y, z in world
    tilt = math.radians(pose.pitch_deg + 90.0)
    c, s = math.cos(tilt), math.sin(tilt)
    rx = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    roll = math.radians(pose.roll_deg)
    c, s = math.cos(roll), math.sin(roll)
    ry = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return nadir @ rx @ ry


def project(camera: Camera, pose: Pose, xyz: np.ndarray) -> np.ndarray:
    """World points (N x 3: x, y, z) to pixels (N x 2: col, row). Points behind the camera give NaN."""
    xyz = np.atleast_2d(np.asarray(xyz, dtype=float))
    d = (xyz - np.array([pose.x, pose.y, pose.z])) @ rotation_cam_to_world(pose)
    z = np.where(d[:, 2] > 1e-9, d[:, 2], np.nan)
    return np.column_stack([camera.focal_px * d[:, 0] / z + camera.cx, camera.focal_px * d[:, 1] / z + camera.cy])


def backproject(camera: Camera, pose: Pose, uv: np.ndarray, ground_z: float | np.ndarray = 0.0) -> np.ndarray:
    """Pixels (N x 2: col, row) to points on the plane z = ground_z (N x 2: x, y). Rays above the horizon give NaN."""
    uv = np.atleast_2d(np.asarray(uv, dtype=float))
    rays = np.column_stack([(uv[:, 0] - camera.cx) / camera.focal_px, (uv[:, 1] - camera.cy) / camera.focal_px,
                            np.ones(len(uv))]) @ rotation_cam_to_world(pose).T
    dz = np.where(rays[:, 2] < -1e-9, rays[:, 2], np.nan)
    t = (np.asarray(ground_z, dtype=float) - pose.z) / dz
    return np.column_stack([pose.x + t * rays[:, 0], pose.y + t * rays[:, 1]])


def footprint(camera: Camera, pose: Pose, ground_z: float = 0.0) -> Polygon:
    """The image's four corners on the ground plane, as a polygon (workspace CRS, metres)."""
    w, h = camera.width_px, camera.height_px
    corners = backproject(camera, pose, np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=float), ground_z)
    if not np.isfinite(corners).all():
        raise ValueError("the camera sees the horizon: no ground footprint")
    return Polygon(corners)


def camera_pose_from_row(row: Mapping[str, Any]) -> tuple[Camera, Pose]:
    """The pinhole camera and pose of a row of the ``images`` layer (:data:`skysieve.schema.IMAGES`).

    The one reading of that contract, shared by ingest and the mosaic: the pose is in the workspace CRS
    with the ground at z = 0 (``altitude_m`` is the height above it) and ``yaw_deg`` is against the
    workspace's grid north. Raises :class:`~skysieve.errors.MetadataError` for a row without camera or
    pose (a rejected photo).
    """
    missing = [k for k in ("width_px", "height_px", "focal_mm", "sensor_width_mm", "x", "y", "altitude_m")
               if row.get(k) is None]
    if missing:
        raise MetadataError(f"image {row.get('image_id')} has no {', '.join(missing)}", ref=row.get("image_id"),
                            hint="only accepted images carry a camera and pose; re-ingest with `skysieve ingest`")
    camera = Camera.from_sensor(int(row["width_px"]), int(row["height_px"]), float(row["focal_mm"]),
                                float(row["sensor_width_mm"]))
    pose = Pose(float(row["x"]), float(row["y"]), float(row["altitude_m"]), float(row.get("yaw_deg") or 0.0),
                float(row["pitch_deg"]) if row.get("pitch_deg") is not None else -90.0,
                float(row.get("roll_deg") or 0.0))
    return camera, pose
