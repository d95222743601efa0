"""The flight simulator: camera geometry (flat ground and relief), DJI metadata, and ingest of a simulated flight."""

from __future__ import annotations

import json
import re

import cv2
import numpy as np
import pytest
from PIL import Image
from shapely.geometry import Polygon

from skysieve.camera import Camera, Pose, footprint, project
from skysieve.crs import parse_crs, to_lonlat
from skysieve.datasets import FlightPlan, fly
from skysieve.datasets.optics import cast
from skysieve.datasets.paint import GridView, Layers
from skysieve.errors import DatasetError


def _blob_centres(img: np.ndarray) -> np.ndarray:
    dark = (img.mean(axis=2) < 0.5).astype(np.uint8)
    n, _, stats, centroids = cv2.connectedComponentsWithStats(dark)
    return centroids[1:][stats[1:, cv2.CC_STAT_AREA] > 20]


def _patch(markers_xy: np.ndarray, radius_px: float, view: GridView, heights=None) -> Layers:
    rgb = np.ones((view.rows, view.cols, 3), np.float32)
    height = np.zeros((view.rows, view.cols), np.float32)
    px = view.to_px(markers_xy) - 0.5
    for k, (c, r) in enumerate(px):
        cv2.circle(rgb, (int(round(c * 16)), int(round(r * 16))), int(radius_px * 16), (0, 0, 0), -1, cv2.LINE_8, 4)
        if heights is not None:
            cv2.circle(height, (int(round(c * 16)), int(round(r * 16))), int(radius_px * 16), float(heights[k]), -1,
                       cv2.LINE_8, 4)
    return Layers(rgb, np.ones_like(rgb), height)  # white walls: only the dark tops are blobs


@pytest.mark.parametrize("yaw,pitch,roll", [(0, -90, 0), (37, -86, 2), (-120, -93, -3)])
def test_flat_ground_pixels_are_where_the_camera_projects_them(yaw, pitch, roll):
    camera = Camera(800, 450, 700.0)
    pose = Pose(3.0, -2.0, 50.0, yaw, pitch, roll)
    rng = np.random.default_rng(1)
    xy = rng.uniform(-20, 20, (12, 2))
    view = GridView(-45, 45, 0.02, 4500, 4500)
    img = cast(_patch(xy, 12, view), view, camera, pose, np.array([0.0, 1.0]))
    expected = project(camera, pose, np.column_stack([xy, np.zeros(len(xy))]))
    found = _blob_centres(img) + 0.5  # connected-component centroids are in index units: centres at +0.5
    inside = (expected[:, 0] > 10) & (expected[:, 0] < 790) & (expected[:, 1] > 10) & (expected[:, 1] < 440)
    assert inside.sum() >= 6
    for e in expected[inside]:
        assert np.hypot(*(found - e).T).min() < 1.0


def test_tall_objects_lean_away_from_the_nadir_as_projected():
    camera = Camera(800, 800, 600.0)
    pose = Pose(0.0, 0.0, 60.0, 20.0)
    xy = np.array([[18.0, 10.0], [-10.0, -8.0]])
    tops = np.array([12.0, 25.0])
    view = GridView(-50, 50, 0.02, 5000, 5000)
    img = cast(_patch(xy, 20, view, tops), view, camera, pose, np.array([0.0, 1.0]), step_m=0.25)
    top_px = project(camera, pose, np.column_stack([xy, tops]))
    base_px = project(camera, pose, np.column_stack([xy, np.zeros(2)]))
    centre = np.array([camera.cx, camera.cy])
    found = _blob_centres(img) + 0.5
    for t, b in zip(top_px, base_px, strict=True):
        assert np.hypot(*(t - centre)) > np.hypot(*(b - centre)) + 10  # relief displacement, outwards
        assert np.hypot(*(found - t).T).min() < 1.0  # the top is drawn where it projects


def _xmp(data: bytes) -> dict[str, float]:
    return {k: float(v) for k, v in re.findall(rb'drone-dji:(\w+)="([-+0-9.]+)"', data)}


def test_flight_writes_dji_photos_and_poses(exact_flight, small_world):
    poses = json.loads(exact_flight.poses_json.read_text())
    files = sorted(exact_flight.images.glob("*.JPG"))
    assert len(files) == exact_flight.n_images == len(poses["images"]) >= 4
    crs = parse_crs(poses["crs"])
    for f, p in zip(files, poses["images"], strict=True):
        assert p["true"]["x"] == p["recorded"]["x"]  # zero GPS noise
        data = f.read_bytes()
        xmp = {k.decode(): v for k, v in _xmp(data).items()}
        img = Image.open(f)
        assert img.size == (exact_flight.camera.width_px, exact_flight.camera.height_px)
        exif = img.getexif()
        assert exif[0x0110] == "FC300S"
        gps = exif.get_ifd(0x8825)
        lat = sum(float(v) / 60 ** i for i, v in enumerate(gps[2]))
        lon = sum(float(v) / 60 ** i for i, v in enumerate(gps[4]))
        elon, elat = to_lonlat(crs, p["true"]["x"], p["true"]["y"])
        assert (lon, lat) == pytest.approx((elon, elat), abs=2e-7)
        assert xmp["RelativeAltitude"] == pytest.approx(p["true"]["z"], abs=0.01)
        assert float(gps[6]) == pytest.approx(exact_flight.ground_elevation_m + p["true"]["z"], abs=0.01)
        assert xmp["GimbalPitchDegree"] == pytest.approx(p["true"]["pitch_deg"], abs=0.01)
        # GimbalYawDegree is from true north; the pose's yaw from grid north (meridian convergence < 1 deg here)
        assert abs((xmp["GimbalYawDegree"] - p["true"]["yaw_deg"] + 180) % 360 - 180) < 1.0


def test_same_plan_same_bytes(small_world, tmp_path):
    plan = FlightPlan(altitude_m=30, scale=0.08, area_m=(50, 50, 60, 60), seed=3)
    a = fly(small_world.root, tmp_path / "a", plan, workers=1)
    b = fly(small_world.root, tmp_path / "b", plan, workers=2)  # same bytes whatever the workers
    names = sorted(p.name for p in a.images.iterdir())
    assert names and names == sorted(p.name for p in b.images.iterdir())
    for n in names:
        assert (a.images / n).read_bytes() == (b.images / n).read_bytes()
    assert a.poses_csv.read_bytes() == b.poses_csv.read_bytes()
    # a rerun resumes: only the missing photo is rendered again, to the same bytes
    gone, kept = a.images / names[0], a.images / names[-1]
    before, stamp = gone.read_bytes(), kept.stat().st_mtime_ns
    gone.unlink()
    fly(small_world.root, tmp_path / "a", plan, workers=1)
    assert gone.read_bytes() == before and kept.stat().st_mtime_ns == stamp


def test_bad_flight_plans(small_world, tmp_path):
    with pytest.raises(DatasetError, match="camera"):
        fly(small_world.root, tmp_path / "x", FlightPlan(camera="NOPE"))
    with pytest.raises(DatasetError, match="overlap"):
        fly(small_world.root, tmp_path / "x", FlightPlan(overlap=1.2))
    with pytest.raises(DatasetError, match="area"):
        fly(small_world.root, tmp_path / "x", FlightPlan(area_m=(0, 0, 500, 500)))
    with pytest.raises(DatasetError, match="no synthetic world"):
        fly(tmp_path, tmp_path / "x")


def test_ingest_recovers_true_footprints(exact_flight, tmp_path):
    """``skysieve ingest`` reads the simulated flight like a real one: footprints within 0.5 m of the truth."""
    ingest = pytest.importorskip("skysieve.mosaic.ingest")
    from skysieve.workspace import Workspace

    ws = Workspace.create(tmp_path / "ws", crs=exact_flight.crs)
    result = ingest.ingest_flight(ws, exact_flight.images, flight_id="sim")
    rows = {r["image_id"].split("/")[-1]: r for r in ws.gpkg.select("images")}
    poses = {p["name"]: p["true"] for p in json.loads(exact_flight.poses_json.read_text())["images"]}
    assert len(rows) == len(poses), result
    for name, row in rows.items():
        assert row["status"] == "accepted", (name, row["reason"])
        t = poses[name]
        truth = footprint(exact_flight.camera, Pose(t["x"], t["y"], t["z"], t["yaw_deg"], t["pitch_deg"],
                                                    t["roll_deg"]))
        got: Polygon = row["geometry"]
        assert truth.hausdorff_distance(got) < 0.5, (name, truth.hausdorff_distance(got))


def test_photo_preview_draws_the_truth(exact_flight, tmp_path):
    from skysieve.datasets.sheet import photo_preview

    name = sorted(p.name for p in exact_flight.images.glob("*.JPG"))[0]
    out = photo_preview(exact_flight.root, name, tmp_path / "p.png")
    img = cv2.imread(str(out))
    assert img.shape == (exact_flight.camera.height_px, exact_flight.camera.width_px, 3)
    with pytest.raises(DatasetError, match="no photo"):
        photo_preview(exact_flight.root, "DJI_9999.JPG", tmp_path / "q.png")
