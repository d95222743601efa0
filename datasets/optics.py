"""From a painted ground patch to a photo: ray casting over the height raster, then the camera's faults.

:func:`cast` renders what a pinhole camera (``skysieve.camera``) sees of a painted patch
(:class:`~skysieve.datasets.paint.Layers`): each pixel's ray is marched down through height levels
until it meets the surface, so roofs, tanks and chimneys lean away from the nadir point (relief
displacement) and show their sunlit or shaded sides. On flat ground a pixel sees exactly
``backproject(camera, pose, pixel)``.

:func:`camera_faults` adds what a small drone camera does to that image: vignetting, exposure and
white balance drift, optical blur, sensor noise. All pure functions on arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from skysieve.camera import Camera, Pose, rotation_cam_to_world
from skysieve.datasets.paint import GridView, Layers

__all__ = ["cast", "CameraFaults", "camera_faults", "march_levels"]


def march_levels(z_max: float, step_low: float, split_m: float = 10.0) -> np.ndarray:
    """Descending heights (m) to test rays at: ``step_low`` apart below ``split_m``, twice that above."""
    if z_max <= 0:
        return np.zeros(0, np.float32)
    low = np.arange(step_low, min(z_max, split_m) + step_low, step_low)
    high = np.arange(split_m + 2 * step_low, z_max + 2 * step_low, 2 * step_low) if z_max > split_m else []
    return np.concatenate([low, high])[::-1].astype(np.float32)


def cast(layers: Layers, view: GridView, camera: Camera, pose: Pose, toward_sun: np.ndarray,
         step_m: float | None = None, uv_offset: tuple[float, float] = (0.0, 0.0),
         out_shape: tuple[int, int] | None = None, coarse: int = 1) -> np.ndarray:
    """The camera's image (rows x cols x 3 float32) of the painted patch ``layers`` on grid ``view``.

    ``pose`` is in the same frame as ``view`` (scene metres, ground at z = 0). ``uv_offset`` and
    ``out_shape`` (rows, cols) render only a sub-window of the sensor starting at that (col, row):
    training tiles are such crops. Rays that leave the patch see its edge colour. ``coarse`` = 2 marches
    rays on every other pixel (4 times less work; object outlines may be off by a pixel).
    """
    rows, cols = out_shape if out_shape is not None else (camera.height_px, camera.width_px)
    u = (np.arange(cols, dtype=np.float32) + 0.5 + uv_offset[0] - camera.cx) / camera.focal_px
    v = (np.arange(rows, dtype=np.float32) + 0.5 + uv_offset[1] - camera.cy) / camera.focal_px
    r = rotation_cam_to_world(pose).astype(np.float32)
    dx = r[0, 0] * u[None, :] + r[0, 1] * v[:, None] + r[0, 2]
    dy = r[1, 0] * u[None, :] + r[1, 1] * v[:, None] + r[1, 2]
    dz = r[2, 0] * u[None, :] + r[2, 1] * v[:, None] + r[2, 2]
    dz = np.minimum(dz, -1e-6)
    # pixel coordinates (cv2 remap: integer = pixel centre) of the ground hit and their change per metre up
    g = view.gsd_m
    tx, ty = dx / dz, dy / dz  # horizontal metres per metre of height along the ray
    mx0 = ((pose.x - pose.z * tx) - view.x0) / g - 0.5
    my0 = (view.y_top - (pose.y - pose.z * ty)) / g - 0.5
    mdx, mdy = tx / g, -ty / g
    height = layers.height
    z_max = float(height.max()) if height.size else 0.0
    hit = np.zeros((rows, cols), np.float32)
    on_wall = np.zeros((rows, cols), bool)
    if z_max > 0:
        corners = (0, -1)  # off-nadir angle is largest at a corner of the frame
        tan_max = max(float(np.hypot(tx[i, j], ty[i, j])) for i in corners for j in corners)
        step = step_m if step_m is not None else max(0.3, min(1.0, 4.0 * g / max(tan_max, 1e-3)))
        levels = march_levels(z_max, step)[::-1]  # ascending: the highest level inside the surface wins
        # march on every ``coarse``-th pixel (a ray's neighbours meet nearly the same surface), then check
        # each full-resolution pixel at the level found: where it is not inside anything it sees the ground
        k = max(1, int(coarse))
        cx0, cy0, cdx, cdy = (np.ascontiguousarray(a[::k, ::k]) for a in (mx0, my0, mdx, mdy))
        level = np.zeros(cx0.shape, np.float32)
        mx, my = np.empty_like(cx0), np.empty_like(cy0)
        for z in levels:
            cv2.scaleAdd(cdx, float(z), cx0, dst=mx)
            cv2.scaleAdd(cdy, float(z), cy0, dst=my)
            hz = cv2.remap(height, mx, my, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
            np.copyto(level, z, where=hz >= z)
        if k > 1:
            level = np.repeat(np.repeat(level, k, axis=0), k, axis=1)[:rows, :cols]
            hz = cv2.remap(height, mx0 + level * mdx, my0 + level * mdy, cv2.INTER_NEAREST,
                           borderMode=cv2.BORDER_REPLICATE)
            bad = np.flatnonzero(hz < level)  # edge pixels the coarse march got wrong: march them one by one
            if bad.size:
                fx0, fy0, fdx, fdy = (a.reshape(-1)[bad] for a in (mx0, my0, mdx, mdy))
                found = np.zeros(bad.size, np.float32)
                hr, hc = height.shape
                for z in levels:
                    ix = np.clip(np.rint(fx0 + z * fdx), 0, hc - 1).astype(np.intp)
                    iy = np.clip(np.rint(fy0 + z * fdy), 0, hr - 1).astype(np.intp)
                    np.copyto(found, z, where=height[iy, ix] >= z)
                level.reshape(-1)[bad] = found
        # at the highest level inside, the surface is a roof if its height is below the next level up
        # (the ray crossed the top between two levels): then it is seen at its own height; else a wall
        hz = cv2.remap(height, mx0 + level * mdx, my0 + level * mdy, cv2.INTER_NEAREST,
                       borderMode=cv2.BORDER_REPLICATE)
        steps = np.diff(levels)
        wide_from = float(levels[1:][steps > 1.5 * step].min()) - 2 * step if (steps > 1.5 * step).any() else np.inf
        upper = level + np.where(level >= wide_from - 1e-4, np.float32(2 * step), np.float32(step))
        inside = level > 0
        roof = inside & (hz < upper)
        on_wall = inside & ~roof
        hit = np.where(roof, hz, level).astype(np.float32)
    mx, my = mx0 + hit * mdx, my0 + hit * mdy
    img = cv2.remap(layers.rgb, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if on_wall.any():
        wall = cv2.remap(layers.wall, mx, my, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
        # the wall we see faces back towards the camera: normal = -(ray's horizontal direction)
        nx, ny = -dx[on_wall], -dy[on_wall]
        lit = 0.55 + 0.45 * np.clip((nx * toward_sun[0] + ny * toward_sun[1]) / (np.hypot(nx, ny) + 1e-6), 0, 1)
        img[on_wall] = wall[on_wall] * lit[:, None]
    return img


@dataclass(frozen=True)
class CameraFaults:
    """What a small drone camera adds: vignetting strength (0..1 at the corners), exposure gain,
    white balance (RGB gains), optical blur (Gaussian sigma, px), sensor noise (sigma, 0..1 scale),
    haze (0..1 blend towards ``haze_rgb``)."""

    vignetting: float = 0.25
    gain: float = 1.0
    white_balance: tuple[float, float, float] = (1.0, 1.0, 1.0)
    blur_px: float = 0.6
    noise: float = 0.012
    haze: float = 0.0
    haze_rgb: tuple[float, float, float] = (0.75, 0.78, 0.82)

    @classmethod
    def random(cls, rng: np.random.Generator, weather: str = "clear") -> CameraFaults:
        haze = {"clear": (0.0, 0.08), "hazy": (0.12, 0.3), "overcast": (0.05, 0.15)}[weather]
        return cls(vignetting=float(rng.uniform(0.1, 0.35)), gain=float(rng.uniform(0.88, 1.12)),
                   white_balance=tuple(float(x) for x in rng.uniform(0.95, 1.05, 3)),
                   blur_px=float(rng.uniform(0.4, 1.1)), noise=float(rng.uniform(0.005, 0.02)),
                   haze=float(rng.uniform(*haze)))


def camera_faults(img: np.ndarray, faults: CameraFaults, rng: np.random.Generator,
                  full_size: tuple[int, int] | None = None, offset: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Apply ``faults`` to ``img`` (rows x cols x 3 float32 0..1); returns uint8 RGB.

    Vignetting is computed over the full sensor (``full_size`` = (rows, cols)) when ``img`` is a crop
    starting at ``offset`` (col, row). Deterministic in ``rng``.
    """
    out = img
    if faults.haze > 0:
        h = faults.haze
        out = cv2.add(cv2.multiply(out, (1 - h,) * 3 + (0,)), tuple(float(c * h) for c in faults.haze_rgb) + (0,))
    if faults.blur_px > 0.2:
        out = cv2.GaussianBlur(out, (0, 0), faults.blur_px)
    rows, cols = out.shape[:2]
    fr, fc = full_size if full_size is not None else (rows, cols)
    if faults.vignetting > 0:
        yy = (np.arange(rows, dtype=np.float32) + offset[1] - fr / 2) / (fr / 2)
        xx = (np.arange(cols, dtype=np.float32) + offset[0] - fc / 2) / (fc / 2) * (fc / max(fr, 1))
        rr = (xx[None, :] ** 2 + yy[:, None] ** 2) / (1 + (fc / max(fr, 1)) ** 2)
        out = out * (1 - faults.vignetting * rr)[:, :, None]
    gains = faults.gain * np.array(faults.white_balance, np.float32)
    out = cv2.multiply(out, (*(float(g) for g in gains), 0.0))
    if faults.noise > 0:
        grain = np.empty_like(out)
        cv2.setRNGSeed(int(rng.integers(0, 2**31 - 1)))
        cv2.randn(grain, (0.0, 0.0, 0.0), (faults.noise,) * 3)
        out = cv2.add(out, grain)
    return cv2.convertScaleAbs(cv2.max(out, (0.0, 0.0, 0.0, 0.0)), alpha=255.0)  # rounds, saturates at 255
