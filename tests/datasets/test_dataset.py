"""Training tiles: labels that fit the pixels, a dataset ultralytics accepts, reproducibility, options, bad input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from skysieve.camera import Camera, Pose
from skysieve.datasets import CLASSES, build_dataset
from skysieve.datasets.optics import cast
from skysieve.datasets.paint import GridView, PaintStyle, paint
from skysieve.datasets.props import chimney, drum_stockpile, vertical_tank
from skysieve.datasets.realdata import class_map, import_real
from skysieve.datasets.scene import Scene, Sun
from skysieve.datasets.tiles import TRUE_ORTHO_HEIGHT_M, TileSpec, boxes_for, render_tile
from skysieve.errors import DatasetError


@pytest.mark.parametrize("maker,tan,height", [(vertical_tank, (0.0, 0.0), 60.0), (vertical_tank, (0.3, -0.2), 60.0),
                                              (chimney, (0.15, 0.1), 60.0), (drum_stockpile, (-0.3, 0.1), 60.0),
                                              (chimney, (0.0, 0.0), TRUE_ORTHO_HEIGHT_M)])
def test_box_is_the_object_in_the_pixels(maker, tan, height):
    """On plain ground, without shadow, the label box is the bounding box of the pixels the object covers;
    in a true-ortho tile (a camera so high its rays are parallel) a chimney is just its round top."""
    rng = np.random.default_rng(5)
    scene = Scene()
    shapes, truth = maker(rng, 0.0, 0.0, np.array([0.0, 1.0]))
    scene.add(shapes, truth)
    gsd, n = 0.04, 640
    f = height / gsd
    pose = Pose(-tan[0] * height, -tan[1] * height, height)
    camera = Camera(n, n, f, n / 2 - f * tan[0], n / 2 + f * tan[1])
    view = GridView(-30, 30, 0.02, 3000, 3000)
    style = PaintStyle(ground=(0.5, 0.5, 0.5), sun=Sun(180, 60, shadow=0.0))
    layers = paint(scene.shapes, scene.bounds_array(), view, style)
    img = cast(layers, view, camera, pose, np.array([0.0, -1.0]), step_m=0.1)
    mask = (np.abs(img - 0.5).max(axis=2) > 0.01).astype(np.uint8)
    x, y, w, h = cv2.boundingRect(mask)
    (cls, x0, y0, x1, y1), = boxes_for(scene, camera, pose, (0, 0), (n, n))
    assert CLASSES[int(cls)] == truth.cls
    assert abs(x - x0) <= 1.5 and abs(y - y0) <= 1.5 and abs(x + w - x1) <= 1.5 and abs(y + h - y1) <= 1.5
    if height == TRUE_ORTHO_HEIGHT_M:
        (fx0, fy0), (fx1, fy1) = truth.polygon.min(axis=0), truth.polygon.max(axis=0)
        assert abs((x1 - x0) - (fx1 - fx0) / gsd) <= 1.5 and abs((y1 - y0) - (fy1 - fy0) / gsd) <= 1.5


def test_tile_is_deterministic_and_labelled_in_range():
    spec = TileSpec(seed=12, imgsz=256, gsd_m=0.05, height_m=80, tan_xy=(0.2, -0.1), jpeg_quality=80)
    a, b = render_tile(spec), render_tile(spec)
    assert a.pixels.shape == (256, 256, 3) and a.pixels.dtype == np.uint8
    assert (a.pixels == b.pixels).all() and (a.boxes == b.boxes).all()
    assert ((a.boxes[:, 1:] >= 0) & (a.boxes[:, 1:] <= 256)).all()


def test_dataset_is_accepted_by_ultralytics(tmp_path):
    from ultralytics.data.utils import check_det_dataset

    yaml_path = build_dataset(tmp_path / "ds", 12, imgsz=160, seed=3, workers=1)
    info = check_det_dataset(str(yaml_path))
    assert info["nc"] == 3 and list(info["names"].values()) == list(CLASSES)
    train = sorted((tmp_path / "ds" / "images" / "train").glob("*.jpg"))
    val = sorted((tmp_path / "ds" / "images" / "val").glob("*.jpg"))
    assert len(train) + len(val) == 12 and len(val) >= 1
    rows = [line.split() for p in (tmp_path / "ds" / "labels").rglob("*.txt") for line in p.read_text().splitlines()]
    assert rows, "some tiles hold objects"
    vals = np.array([[float(v) for v in r] for r in rows])
    assert set(vals[:, 0].astype(int)) <= {0, 1, 2}
    assert ((vals[:, 1:] >= 0) & (vals[:, 1:] <= 1)).all()
    # same seed, same bytes; a rerun keeps what is there
    again = build_dataset(tmp_path / "ds2", 12, imgsz=160, seed=3, workers=1)
    for p in train:
        assert p.read_bytes() == (again.parent / "images" / "train" / p.name).read_bytes()


def test_tank_farm_tiles_hold_rows_of_large_tanks_only(tmp_path):
    yaml_path = build_dataset(tmp_path / "farm", 6, imgsz=128, seed=4, workers=1, farm_fraction=1.0)
    rows = [line.split() for p in (yaml_path.parent / "labels").rglob("*.txt") for line in p.read_text().splitlines()]
    vals = np.array([[float(v) for v in r] for r in rows])
    assert set(vals[:, 0].astype(int)) == {0}, "tank farms label tanks only (drums and chimneys are sub-pixel)"
    assert len(vals) >= 6 * 2, "a farm shows several tanks"
    # 8-45 m tanks at 0.3-1 m/px on a 128 px tile: 6 px or more across
    assert np.median(vals[:, 3] * 128) >= 6
    with pytest.raises(DatasetError, match="share"):
        build_dataset(tmp_path / "bad", 2, farm_fraction=1.5)


def test_small_tiles_keep_their_labelled_objects(tmp_path):
    """Labelled objects are placed before buildings: on a 256 px tile (about 10 m) buildings used to take
    the room and most tiles came out empty."""
    from skysieve.datasets.tiles import random_tile_spec

    rng = np.random.default_rng(0)
    n_boxes = [len(render_tile(random_tile_spec(rng, 500 + i, 256, (0.03, 0.05))).boxes) for i in range(40)]
    assert sum(b > 0 for b in n_boxes) >= 28


def test_a_background_of_known_gsd_keeps_the_ground_s_true_scale(tmp_path):
    """A checkerboard photographed at 1 cm/px (squares of 0.2 m) painted under a 4 cm/px tile: its period
    in the tile is 0.4 m / 4 cm = 10 px (give or take the 10 % jitter)."""
    from skysieve.datasets.tiles import background_crop

    yy, xx = np.mgrid[0:1200, 0:1600]
    board = (((yy // 20) + (xx // 20)) % 2 * 200 + 30).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "board.png"), np.dstack([board] * 3))
    rng = np.random.default_rng(1)
    for _ in range(3):
        crop = background_crop(rng, tmp_path / "board.png", 128, 128, zoom=2 * 0.01 / 0.04)
        spectrum = np.abs(np.fft.rfft(crop[64, :, 0] - crop[64, :, 0].mean()))
        period = 128 / int(np.argmax(spectrum))
        assert 8.5 <= period <= 11.5


def test_backgrounds_and_real_data(tmp_path):
    bg = tmp_path / "bg"
    bg.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        cv2.imwrite(str(bg / f"b{i}.jpg"), rng.integers(0, 255, (400, 500, 3), dtype=np.uint8))
    real = tmp_path / "real"
    (real / "images").mkdir(parents=True)
    (real / "labels").mkdir()
    (real / "classes.txt").write_text("storage_tank\nperson\n")
    cv2.imwrite(str(real / "images" / "r1.jpg"), np.zeros((64, 64, 3), np.uint8))
    (real / "labels" / "r1.txt").write_text("0 0.5 0.5 0.2 0.2\n1 0.1 0.1 0.05 0.05\n")
    cv2.imwrite(str(real / "images" / "r2.jpg"), np.zeros((64, 64, 3), np.uint8))
    (real / "labels" / "r2.txt").write_text("0 0.5 0.5 not-a-number 0.2\n")
    yaml_path = build_dataset(tmp_path / "ds", 6, imgsz=128, seed=1, backgrounds=bg, real=real, workers=1,
                              backgrounds_gsd_m=0.017)
    root = yaml_path.parent
    assert (root / "labels" / "train" / "real_r1.txt").read_text() == "0 0.5 0.5 0.2 0.2\n"  # person dropped
    assert not (root / "images" / "train" / "real_r2.jpg").exists()  # bad label: skipped, batch went on
    assert len(list((root / "images").rglob("*.jpg"))) == 7


def test_class_names_map_by_meaning():
    assert class_map(["oil_tank", "Chimney", "flue stack", "barrels", "car"]) == {0: 0, 1: 1, 2: 1, 3: 2, 4: None}


def test_bad_dataset_arguments(tmp_path):
    with pytest.raises(DatasetError, match="at least one"):
        build_dataset(tmp_path / "x", 0)
    with pytest.raises(DatasetError, match="GSD"):
        build_dataset(tmp_path / "x", 2, gsd_range=(0.1, 0.02))
    with pytest.raises(DatasetError, match="metres per pixel"):
        build_dataset(tmp_path / "x", 2, backgrounds_gsd_m=17.0)
    with pytest.raises(DatasetError, match="model GSD"):
        build_dataset(tmp_path / "x", 2, model_gsd_m=4.0)
    with pytest.raises(DatasetError, match="multiple of 32"):
        build_dataset(tmp_path / "x", 2, imgsz=100)
    with pytest.raises(DatasetError, match="no images"):
        build_dataset(tmp_path / "x", 2, backgrounds=tmp_path / "x")
    (tmp_path / "r" / "images").mkdir(parents=True)
    (tmp_path / "r" / "labels").mkdir()
    with pytest.raises(DatasetError, match="class names"):
        import_real(tmp_path / "r", tmp_path / "x")
    (tmp_path / "r" / "classes.txt").write_text("person\n")
    with pytest.raises(DatasetError, match="maps onto"):
        import_real(tmp_path / "r", tmp_path / "x")


def test_clutter_sets_how_many_hard_negatives_a_tile_holds(tmp_path):
    """``clutter`` bounds the hard negatives per tile: none at 0, about twice the default's at 14 (trees
    and scrap have no truth object; planters, cars, silos... do)."""
    from skysieve.datasets.tiles import tile_scene

    def negatives(clutter: int) -> list[int]:
        counts = []
        for i in range(60):
            scene = tile_scene(np.random.default_rng(i), 10.0, (0.6, 0.8), "summer", negative_only=True,
                               ground=False, clutter=clutter)
            counts.append(sum(o.cls is None for o in scene.objects))
        return counts

    assert sum(negatives(0)) == 0
    default, dense = np.mean(negatives(7)), np.mean(negatives(14))
    assert default > 0.5 and dense > 1.5 * default
    with pytest.raises(DatasetError, match="clutter"):
        build_dataset(tmp_path / "bad", 2, clutter=-1)


@pytest.mark.parametrize("gsd", [0.02, 0.08])
def test_a_tile_at_its_own_gsd_is_resampled_to_the_model_s_as_detect_resamples_a_mosaic(gsd):
    """With ``model_gsd_m`` a tile is rendered at its own GSD over ``imgsz * model_gsd_m`` of ground, then
    resampled to ``imgsz`` px: its pixels are what detect's resampler makes of the native tile (area average
    down from 2 cm, bilinear up from 8 cm), and its boxes are the native boxes scaled to the model grid."""
    from dataclasses import replace

    from skysieve.datasets.tiles import native_size
    from skysieve.detect.sliced import SliceWindow, resample_window

    spec = TileSpec(seed=31, imgsz=256, gsd_m=gsd, height_m=70, tan_xy=(0.1, 0.0), jpeg_quality=90,
                    model_gsd_m=0.04)
    n = native_size(spec)
    assert n == round(256 * 0.04 / gsd)
    native = render_tile(replace(spec, imgsz=n, model_gsd_m=None))
    tile = render_tile(spec)
    assert tile.pixels.shape == (256, 256, 3) and native.pixels.shape == (n, n, 3)
    assert len(native.boxes) > 0 and np.allclose(tile.boxes[:, 1:], native.boxes[:, 1:] * 256 / n)
    assert (tile.boxes[:, 0] == native.boxes[:, 0]).all()
    k = n / 256
    w = SliceWindow(0.0, 0.0, k, k, 256, 256, 0, 0, n, n)
    detect_view, _ = resample_window(native.pixels, None, w)
    diff = np.abs(detect_view.astype(float) - tile.pixels.astype(float))
    assert diff.mean() < 1.5 and np.percentile(diff, 99) < 12
    if gsd > 0.04:  # an 8 cm tile at 4 cm is soft: half the gradient energy of a tile rendered at 4 cm
        sharp = render_tile(replace(spec, gsd_m=0.04))
        energy = [np.abs(np.diff(t.pixels.astype(float), axis=1)).mean() for t in (tile, sharp)]
        assert energy[0] < 0.75 * energy[1]
