"""The DSM from the photos' parallax and the true ortho it gives (mosaic/surface.py).

Photos of a textured ground with a flat-roofed building (a box) are ray-cast from their true poses: the
roof where the ray meets the roof plane inside the footprint, a grey wall where the ray passes through the
box's side, the ground otherwise. The plane mosaic shows the roof where the photos saw it lean; the DSM
mosaic should find the roof's height and put it on its footprint.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import rasterio
from ortho_scene import CRS, ORIGIN, Ground, grid_shots, make_ground, make_workspace

from skysieve.camera import Camera, Pose
from skysieve.mosaic.ortho import MosaicSettings, mosaic_cell
from skysieve.mosaic.photos import Photo, apply_homography, ground_homography
from skysieve.mosaic.render import PlacedPhoto
from skysieve.mosaic.surface import DSM_NODATA, camera_centre

CAM = Camera(1000, 750, 1000.0)  # at 40 m: 4 cm/px, a 40 x 30 m footprint
HEIGHT_M = 40.0
CELL = "E576000N5188000"
BOX = (26.0, 22.0, 34.0, 30.0)  # the building's footprint, metres from ORIGIN (minx, miny, maxx, maxy)
BOX_H = 6.0
ROOF = np.array([250, 110, 250], np.float32)  # magenta (RGB), blotched so the roof has texture to match


_ROOF_NOISE = sum(a * cv2.resize(np.random.default_rng(7 + n).random((n, n)).astype(np.float32), (400, 400),
                                  interpolation=cv2.INTER_CUBIC) for n, a in ((10, 0.6), (40, 0.4)))  # 10 x 10 m


def _roof_texture(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The roof's colour at ground x/y (metres from ORIGIN): magenta, darker and lighter in random blotches."""
    c = np.clip(((x - BOX[0]) / 0.025).astype(int), 0, 399)
    r = np.clip(((y - BOX[1]) / 0.025).astype(int), 0, 399)
    k = 0.45 + 0.55 * np.clip(_ROOF_NOISE[r, c], 0, 1)
    return ROOF[None, :] * k[:, None]


def _render(ground: Ground, pose: Pose, box: bool = True) -> np.ndarray:
    """RGB the camera at ``pose`` sees: the ground, the box's roof and its grey walls (``box``)."""
    photo = Photo("x", "", CAM, pose)
    h = ground_homography(photo)
    inv = ~ground.transform
    g2p = np.array([[inv.a, inv.b, inv.c - 0.5], [inv.d, inv.e, inv.f - 0.5], [0, 0, 1]])
    shift = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])
    img = cv2.warpPerspective(ground.rgb, g2p @ h @ shift, (CAM.width_px, CAM.height_px),
                              flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT)
    cols, rows = np.meshgrid(np.arange(CAM.width_px) + 0.5, np.arange(CAM.height_px) + 0.5)
    g = apply_homography(h, np.column_stack([cols.ravel(), rows.ravel()]))  # where each ray meets the ground
    if not box:
        return img
    c = np.array([pose.x, pose.y])
    x0, y0, x1, y1 = ORIGIN[0] + BOX[0], ORIGIN[1] + BOX[1], ORIGIN[0] + BOX[2], ORIGIN[1] + BOX[3]
    out = img.reshape(-1, 3).astype(np.float32)
    wall = np.zeros(len(g), bool)
    for t in np.linspace(0.0, 1.0, 41):  # from the ground (t = 0) up to the roof plane (t = 1) along the ray
        p = g + (c - g) * (t * BOX_H / pose.z)
        inside = (p[:, 0] >= x0) & (p[:, 0] <= x1) & (p[:, 1] >= y0) & (p[:, 1] <= y1)
        wall |= inside
    roof_pt = g + (c - g) * (BOX_H / pose.z)
    roof = (roof_pt[:, 0] >= x0) & (roof_pt[:, 0] <= x1) & (roof_pt[:, 1] >= y0) & (roof_pt[:, 1] <= y1)
    out[wall & ~roof] = (110, 110, 105)
    out[roof] = _roof_texture(roof_pt[roof, 0] - ORIGIN[0], roof_pt[roof, 1] - ORIGIN[1])
    return np.clip(out, 0, 255).astype(np.uint8).reshape(img.shape)


def _scene(root: Path, water=None, n=(3, 2), box: bool = True):
    ground = make_ground(80.0, 0.04, seed=5, water=water)
    shots = grid_shots(CAM, HEIGHT_M, 18, 18, n[0], n[1], 10.0, 14.0, gps_sigma_m=0.3, seed=3)
    ws = make_workspace(root, ground, shots)
    for s in shots:  # the same photos, seen in 3-D
        cv2.imwrite(str(root / "flights" / s.image_id), cv2.cvtColor(_render(ground, s.pose, box), cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, 92])
    return ws


def _roof_mask(ortho: Path) -> tuple[np.ndarray, rasterio.Affine]:
    with rasterio.open(ortho) as ds:
        rgb = np.moveaxis(ds.read([1, 2, 3]), 0, -1).astype(np.int16)
        t = ds.transform
    magenta = (rgb[..., 0] - rgb[..., 1] > 40) & (rgb[..., 2] - rgb[..., 1] > 40) & (np.abs(rgb[..., 0] - rgb[..., 2]) < 30)
    rows, cols = np.mgrid[0:rgb.shape[0], 0:rgb.shape[1]]
    x, y = t.c + (cols + 0.5) * t.a - ORIGIN[0], t.f + (rows + 0.5) * t.e - ORIGIN[1]
    near = (x > BOX[0] - 3) & (x < BOX[2] + 3) & (y > BOX[1] - 3) & (y < BOX[3] + 3)  # not the ground's own magenta
    return magenta & near, t


def _footprint_mask(shape, t) -> np.ndarray:
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]]
    x, y = t.c + (cols + 0.5) * t.a - ORIGIN[0], t.f + (rows + 0.5) * t.e - ORIGIN[1]
    return (x >= BOX[0]) & (x <= BOX[2]) & (y >= BOX[1]) & (y <= BOX[3])


@pytest.fixture(scope="module")
def box_scene(tmp_path_factory: pytest.TempPathFactory) -> dict:
    # the DSM over the plane adjustment's placements: heights above the take-off plane, the ground at 0 (with
    # adjust = "terrain" the ground's level carries the small block's scale uncertainty: tests/mosaic/test_terrain.py)
    root = tmp_path_factory.mktemp("box") / "ws"
    ws = _scene(root)
    out = {"ws": ws, "dsm": mosaic_cell(ws.root, CELL, MosaicSettings(gsd_m=0.08, gps_sigma_m=0.3, surface="dsm", adjust="plane"))}
    out["roof_dsm"] = _roof_mask(Path(out["dsm"]["ortho"]))
    with rasterio.open(ws.cell_dir(CELL) / "dsm.tif") as ds:  # read before the plane build replaces it
        out["heights"], out["dsm_profile"], out["dsm_crs"] = ds.read(1), ds.profile, ds.crs
        out["dsm_tags"], out["dsm_mask"] = ds.tags(), ds.read_masks(1)
    out["plane"] = mosaic_cell(ws.root, CELL, MosaicSettings(gsd_m=0.08, gps_sigma_m=0.3, surface="plane", adjust="plane"), resolve=False)
    out["roof_plane"] = _roof_mask(Path(out["plane"]["ortho"]))
    return out


def test_camera_centre_is_read_off_the_homography() -> None:
    for pose in (Pose(ORIGIN[0] + 10, ORIGIN[1] + 5, 60.0, 0.0), Pose(ORIGIN[0], ORIGIN[1], 45.0, 37.0, -84.0, 3.0)):
        pp = PlacedPhoto(Photo("x", "", CAM, pose), ground_homography(Photo("x", "", CAM, pose)))
        assert camera_centre(pp) == pytest.approx([pose.x, pose.y, pose.z], abs=1e-6)


def test_dsm_finds_the_building_and_the_true_ortho_puts_its_roof_on_its_footprint(box_scene: dict) -> None:
    dsm, plane = box_scene["dsm"], box_scene["plane"]
    assert dsm["surface"] == "dsm" and plane["surface"] == "plane" and plane["dsm"] is None
    assert dsm["dsm_pairs_matched"] >= 3
    # the plane build removed the DSM of the other settings
    assert not (box_scene["ws"].cell_dir(CELL) / "dsm.tif").exists()
    # the heights: the roof's middle (1 m inside its edges) and the ground 2-5 m around it
    heights, t = box_scene["heights"], box_scene["dsm_profile"]["transform"]
    foot = _footprint_mask(heights.shape, t).astype(np.uint8)
    inner = cv2.erode(foot, np.ones((9, 9), np.uint8)) > 0  # 1 m in (0.25 m cells)
    around = (cv2.dilate(foot, np.ones((41, 41), np.uint8)) > 0) & ~(cv2.dilate(foot, np.ones((17, 17), np.uint8)) > 0)
    roof_h = heights[inner & (heights != DSM_NODATA)]
    ground_h = heights[around & (heights != DSM_NODATA)]
    assert len(roof_h) > 0.8 * inner.sum() and len(ground_h) > 0.5 * around.sum()
    print("roof heights p10/50/90", np.percentile(roof_h, [10, 50, 90]), "ground", np.percentile(ground_h, [10, 50, 90]))
    # heights are above the plane the flight's (2-D) adjustment put the photos on; in a block this small the
    # roof's tie points pull that plane up to ~0.4 m near it, so the roof stands 6 m above the ground around it
    assert abs(np.median(ground_h)) < 0.5
    assert np.median(roof_h) - np.median(ground_h) == pytest.approx(BOX_H, abs=0.4)
    assert np.percentile(np.abs(roof_h - np.median(roof_h)), 80) < 0.5
    assert dsm["dsm_height_max_m"] == pytest.approx(BOX_H, abs=1.0)
    # the roof: on its footprint in the true ortho, leaning off it on the plane
    roof_d, t = box_scene["roof_dsm"]
    roof_p, _ = box_scene["roof_plane"]
    fp = _footprint_mask(roof_d.shape, t)
    iou_d = (roof_d & fp).sum() / (roof_d | fp).sum()
    iou_p = (roof_p & fp).sum() / (roof_p | fp).sum()
    centre = np.array([(BOX[0] + BOX[2]) / 2, (BOX[1] + BOX[3]) / 2])
    off_d, off_p = np.hypot(*(_centroid(roof_d, t) - centre)), np.hypot(*(_centroid(roof_p, t) - centre))
    print(f"roof IoU with its footprint: dsm {iou_d:.3f}, plane {iou_p:.3f}; centroid off by dsm {off_d:.2f} m, "
          f"plane {off_p:.2f} m")
    assert iou_d > 0.8 and off_d < 0.35
    assert iou_p < iou_d - 0.08 and off_p > off_d + 0.2


def test_dsm_tif_is_a_georeferenced_float_raster_with_nodata(box_scene: dict) -> None:
    prof, dsm = box_scene["dsm_profile"], box_scene["dsm"]
    assert box_scene["dsm_crs"].to_string() == CRS
    assert prof["dtype"] == "float32" and prof["nodata"] == DSM_NODATA and prof["tiled"]
    assert prof["compress"] == "deflate"
    t = prof["transform"]
    assert t.a == pytest.approx(dsm["dsm_gsd_m"]) == pytest.approx(0.25) and t.e == pytest.approx(-0.25)
    # the DSM covers the ortho (same north-west corner to a cell, at least as far south-east)
    x0, y0, x1, y1 = dsm["bounds"]
    assert t.c <= x0 + 1e-6 and t.f >= y1 - 1e-6
    assert t.c + prof["width"] * t.a >= x1 - 1e-6 and t.f + prof["height"] * t.e <= y0 + 1e-6
    assert box_scene["dsm_tags"]["SKYSIEVE_CELL"] == CELL
    share = float((box_scene["heights"] != DSM_NODATA).mean())
    assert (box_scene["dsm_mask"] > 0).mean() == pytest.approx(share)
    assert dsm["dsm_share_measured"] == pytest.approx(share, abs=1e-3)
    on_disk = json.loads((box_scene["ws"].cell_dir(CELL) / "ortho.json").read_text())
    assert on_disk["surface"] == "plane"  # the last build's
    assert dsm["dsm_height_min_m"] < 0.5 < dsm["dsm_height_max_m"]


def test_featureless_water_gets_no_heights(tmp_path: Path) -> None:
    water = (24.0, 18.0, 44.0, 36.0)  # 20 x 18 m of flat water where the photos overlap
    ws = _scene(tmp_path / "ws", water=water, box=False)
    stale = ws.cell_dir(CELL) / ".ortho.dsm.999.tif"  # a DSM a killed run was writing
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(b"half")
    report = mosaic_cell(ws.root, CELL, MosaicSettings(gsd_m=0.1, gps_sigma_m=0.3, surface="dsm", adjust="plane"))
    assert report["surface"] == "dsm"
    assert sorted(p.name for p in ws.cell_dir(CELL).iterdir()) == ["dsm.tif", "ortho.json", "ortho.tif", "views.tif"]
    with rasterio.open(report["dsm"]) as ds:
        h, t = ds.read(1), ds.transform
    rows, cols = np.mgrid[0:h.shape[0], 0:h.shape[1]]
    x, y = t.c + (cols + 0.5) * t.a - ORIGIN[0], t.f + (rows + 0.5) * t.e - ORIGIN[1]
    in_water = (x > water[0]) & (x < water[2]) & (y > water[1]) & (y < water[3])
    deep = (x > water[0] + 3) & (x < water[2] - 3) & (y > water[1] + 3) & (y < water[3] - 3)
    # deep inside the water (beyond fill_m of anything textured): nodata, not garbage
    assert (h[deep] == DSM_NODATA).mean() > 0.95
    # the textured ground beside it (where the photos overlap): measured, flat
    land = ~in_water & (h != DSM_NODATA)
    assert land.sum() > 2000 and abs(np.median(h[land])) < 0.3 and np.percentile(np.abs(h[land]), 90) < 1.0


def test_single_photo_cell_falls_back_to_the_plane_and_says_so(tmp_path: Path) -> None:
    ws = _scene(tmp_path / "ws", n=(1, 1))
    report = mosaic_cell(ws.root, CELL, MosaicSettings(gsd_m=0.1, surface="dsm"))
    assert report["status"] == "built" and report["surface"] == "plane" and report["dsm"] is None
    assert "one photo" in report["surface_note"]
    assert not (ws.cell_dir(CELL) / "dsm.tif").exists()
    on_disk = json.loads((ws.cell_dir(CELL) / "ortho.json").read_text())
    assert on_disk["surface"] == "plane" and on_disk["surface_note"] == report["surface_note"]


def _centroid(mask: np.ndarray, t) -> np.ndarray:
    rows, cols = np.nonzero(mask)
    return np.array([t.c + (cols.mean() + 0.5) * t.a - ORIGIN[0], t.f + (rows.mean() + 0.5) * t.e - ORIGIN[1]])


def test_an_unknown_surface_or_a_bad_dsm_setting_is_a_clear_error(tmp_path: Path) -> None:
    from skysieve.errors import MosaicError

    with pytest.raises(MosaicError, match="unknown surface 'lidar'") as e:
        mosaic_cell(tmp_path, CELL, MosaicSettings(surface="lidar"))
    assert "dsm, plane" in str(e.value.hint)
    with pytest.raises(MosaicError, match="DSM settings"):
        mosaic_cell(tmp_path, CELL, MosaicSettings(surface="dsm", dsm_gsd_m=0.0))
