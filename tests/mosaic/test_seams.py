"""Seamlines around tall objects: a tank that leans differently in two photos, right on the nearest-centre seam
between them, comes out whole (as one photo saw it) with cut seams, and doubled with Voronoi seams."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import shapely
from ortho_scene import CRS, ORIGIN, grid_shots, make_ground, make_workspace, render_photo

from skysieve.camera import Camera, Pose, project
from skysieve.errors import MosaicError
from skysieve.mosaic.ortho import MosaicSettings, mosaic_cell
from skysieve.mosaic.photos import Photo, ground_homography
from skysieve.mosaic.render import OutputGrid, PlacedPhoto, render_windows
from skysieve.mosaic.seamcut import SeamSettings, find_seams
from skysieve.mosaic.seams import BlendSettings

CAM = Camera(800, 600, 800.0)  # 40 m up: 5 cm/px, a 40 x 30 m footprint
HEIGHT = 40.0
CENTRES = (24.0, 40.0, 56.0)  # photo centres east of ORIGIN, 16 m apart (60 % overlap), all at y = 40
TANK = (32.0, 41.0, 1.5, 5.0)  # x, y (metres from ORIGIN) on the seam of photos 0 and 1, radius, height
TOP = (235, 200, 40)  # RGB of the tank's roof
GSD = 0.05


def _draw_tank(img: np.ndarray, pose: Pose) -> None:
    """A vertical cylinder, painted bottom to top (higher rings are nearer a nadir camera): grey walls,
    a yellow roof with a dark hatch in the middle."""
    x, y, r, h = ORIGIN[0] + TANK[0], ORIGIN[1] + TANK[1], TANK[2], TANK[3]
    t = np.linspace(0, 2 * math.pi, 72, endpoint=False)

    def ring(z: float, radius: float) -> np.ndarray:
        uv = project(CAM, pose, np.column_stack([x + radius * np.cos(t), y + radius * np.sin(t), np.full_like(t, z)]))
        return np.round((uv - 0.5) * 16).astype(np.int32)  # cv2 index convention, 4 fractional bits

    for z in np.linspace(0.0, h, 30):
        shade = int(70 + 90 * z / h)
        cv2.fillPoly(img, [ring(z, r)], (shade, shade, shade + 10), cv2.LINE_AA, shift=4)
    cv2.fillPoly(img, [ring(h, r)], TOP, cv2.LINE_AA, shift=4)
    cv2.fillPoly(img, [ring(h, 0.25)], (60, 50, 20), cv2.LINE_AA, shift=4)


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("tank")
    ground = make_ground(80.0, 0.04, seed=5)
    placed = []
    for k, cx in enumerate(CENTRES):
        pose = Pose(ORIGIN[0] + cx, ORIGIN[1] + 40.0, HEIGHT)
        img = render_photo(ground, CAM, pose)
        _draw_tank(img, pose)
        path = folder / f"IMG_{k}.JPG"
        cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
        photo = Photo(f"f/IMG_{k}.JPG", str(path), CAM, pose)
        placed.append(PlacedPhoto(photo, ground_homography(photo)))
    grid = OutputGrid.covering(shapely.union_all([pp.footprint() for pp in placed]).bounds, GSD)
    return {"placed": placed, "grid": grid}


def _render(placed, grid, seams=None) -> tuple[np.ndarray, np.ndarray]:
    rgb = np.zeros((grid.height, grid.width, 3), np.uint8)
    cov = np.zeros((grid.height, grid.width), bool)
    for win, block, covered in render_windows(placed, grid, 256, BlendSettings(), threads=2, seams=seams):
        rgb[win.row_off:win.row_off + win.height, win.col_off:win.col_off + win.width] = block
        cov[win.row_off:win.row_off + win.height, win.col_off:win.col_off + win.width] = covered
    return rgb, cov


def _around_tank(grid: OutputGrid, img: np.ndarray, half_m: float = 3.0) -> np.ndarray:
    col = (ORIGIN[0] + TANK[0] - grid.x_min) / grid.gsd_m
    row = (grid.y_max - ORIGIN[1] - TANK[1]) / grid.gsd_m
    h = int(half_m / grid.gsd_m)
    return img[int(row) - h:int(row) + h, int(col) - h:int(col) + h].astype(np.float32)


def _roof_px(patch: np.ndarray) -> int:
    return int((np.abs(patch - np.float32(TOP)).max(-1) < 40).sum())


def test_a_tank_on_a_voronoi_seam_comes_out_whole_as_one_photo_saw_it(scene: dict) -> None:
    placed, grid = scene["placed"], scene["grid"]
    singles = [_around_tank(grid, _render([pp], grid)[0]) for pp in placed[:2]]
    # the scene is what it should be: the two photos place the roof ~2.3 m apart, so they disagree here
    assert np.abs(singles[0] - singles[1]).mean() > 10
    roof = [_roof_px(s) for s in singles]
    assert min(roof) > 0.8 * math.pi * (TANK[2] / GSD) ** 2  # each shows the whole roof

    voronoi, voronoi_cov = _render(placed, grid)
    seam_map, stats = find_seams(placed, grid, BlendSettings(), SeamSettings())
    cut, cut_cov = _render(placed, grid, seam_map)
    v_patch, c_patch = _around_tank(grid, voronoi), _around_tank(grid, cut)

    def misfit(p: np.ndarray) -> float:  # mean |difference| to the nearer of the two single-photo views
        return min(float(np.abs(p - s).mean()) for s in singles)

    print(f"vs one photo: voronoi {misfit(v_patch):.1f}, cut {misfit(c_patch):.1f}; roof px voronoi "
          f"{_roof_px(v_patch)}, cut {_roof_px(c_patch)}, one photo {roof}; {stats}")
    # Voronoi seams cut the tank in two: far from either photo's view, the roof mostly gone
    assert misfit(v_patch) > 8
    assert _roof_px(v_patch) < 0.8 * min(roof)
    # the cut seam goes around it: the patch is one photo's view (JPEG noise apart), the roof whole and once
    assert misfit(c_patch) < 2
    assert 0.95 * min(roof) < _roof_px(c_patch) < 1.05 * max(roof)
    # nothing is lost at the survey's edges, and the seams stay near the photo centres' bisectors
    assert (cut_cov == voronoi_cov).mean() > 0.9995
    assert stats["seam_pairs_cut"] >= 2 and stats["seam_seconds"] < 5


def test_seams_keep_to_the_photo_centres_where_the_photos_agree(scene: dict) -> None:
    placed, grid = scene["placed"], scene["grid"]
    cut, _ = find_seams(placed, grid, BlendSettings(), SeamSettings())
    nearest, _ = find_seams(placed, grid, BlendSettings(), SeamSettings(method="voronoi"))
    labelled = (cut.labels >= 0) & (nearest.labels >= 0)
    assert (cut.labels >= 0).sum() == (nearest.labels >= 0).sum()  # the same cells get a photo
    same = (cut.labels == nearest.labels)[labelled].mean()
    assert same > 0.9  # only around the tank (and a little texture) does a seam move
    # every cell keeps within the corridor: at most ~0.4 of the 16 m spacing from its Voronoi seam
    cm = cut.k * grid.gsd_m
    rows, cols = np.nonzero(labelled & (cut.labels != nearest.labels))
    x = grid.x_min + (cols + 0.5) * cm - ORIGIN[0]
    seams_x = np.array([(CENTRES[0] + CENTRES[1]) / 2, (CENTRES[1] + CENTRES[2]) / 2])
    assert np.abs(x[:, None] - seams_x[None, :]).min(1).max() < 0.4 * 16 + cm


def test_bad_seam_settings_are_a_clear_error() -> None:
    with pytest.raises(MosaicError, match="unknown seam method"):
        SeamSettings(method="dp").check()
    with pytest.raises(MosaicError):
        SeamSettings(cell_m=0).check()


def test_the_seam_method_is_part_of_a_cells_inputs(tmp_path: Path) -> None:
    """A rerun with other seam settings rebuilds the cell; the same settings skip it; the report says how
    the seams were found."""
    ground = make_ground(60.0, 0.05, seed=4)
    cam = Camera(400, 300, 400.0)  # 30 m up: 7.5 cm/px
    ws = make_workspace(tmp_path / "ws", ground, grid_shots(cam, 30.0, 18, 20, 3, 2, 9.0, 9.0, seed=1))
    assert ws.settings.crs == CRS
    cell = "E576000N5188000"
    first = mosaic_cell(ws.root, cell)
    assert first["status"] == "built" and first["seams"] == "graphcut" and first["seam_pairs_cut"] >= 1
    assert 0 < first["seam_seconds"] < first["seconds"]
    assert mosaic_cell(ws.root, cell)["status"] == "skipped"
    other = mosaic_cell(ws.root, cell, MosaicSettings(seams="voronoi"))
    assert other["status"] == "built" and other["seams"] == "voronoi" and "seam_pairs_cut" not in other
    assert mosaic_cell(ws.root, cell, MosaicSettings(seam_object_m=2.0))["status"] == "built"
    with pytest.raises(MosaicError, match="unknown seam method"):
        mosaic_cell(ws.root, cell, MosaicSettings(seams="nearest"))


@pytest.mark.realdata
def test_the_small_copy_for_seams_comes_from_the_dji_preview_and_matches_the_photo(brighton: Path) -> None:
    """Seams are searched on ~0.35 m copies of the photos: a DJI photo's embedded 960 x 540 preview gives one
    several times faster than decoding the 12 MP photo, and it shows the same frame."""
    import time

    from skysieve.mosaic.photos import read_image
    from skysieve.mosaic.seamcut import read_small

    path = sorted((brighton / "images").glob("*.JPG"))[0]
    photo = Photo("b/0", str(path), Camera(4000, 2250, 2300.0), Pose(0.0, 0.0, 50.0))
    t0 = time.process_time()
    small, sx, sy = read_small(photo, 0.1)
    t1 = time.process_time()
    decoded, dx, dy = read_image(photo, 0.1, bgr=True)
    t2 = time.process_time()
    assert small.shape == decoded.shape == (225, 400, 3) and (sx, sy) == (dx, dy)
    assert t1 - t0 < 0.5 * (t2 - t1)  # not the photo decoded again
    grey = [cv2.cvtColor(x, cv2.COLOR_BGR2GRAY).astype(np.float32) for x in (small, decoded)]
    (shift_x, shift_y), _ = cv2.phaseCorrelate(*grey)
    assert math.hypot(shift_x, shift_y) < 0.3  # the same frame, not a crop
    assert 0 < np.abs(small.astype(int) - decoded).mean() < 10  # another rendering of it, the same colours
