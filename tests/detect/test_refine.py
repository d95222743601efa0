"""The second look (:mod:`skysieve.detect.refine`): where its slices lie, that its mirror images map back to
the grid exactly, which boxes it leaves alone, and that with the shipped model it keeps every flag and score
and moves no centre away from the truth."""

from __future__ import annotations

import numpy as np
import pytest

from skysieve.detect.refine import LookSettings, look_slice, plan_looks, second_look, well_inside
from skysieve.detect.runtime import PixelBoxes

SIZE = 64


def bright_boxes(batch: np.ndarray, cls: int = 0, score: float = 0.9) -> list[PixelBoxes]:
    """A detector of white rectangles: the exact pixel box of each bright blob in each slice."""
    import cv2

    out = []
    for img in batch:
        n, _, stats, _ = cv2.connectedComponentsWithStats((img[..., 0] > 127).astype(np.uint8))
        xyxy = np.array([[x, y, x + w, y + h] for x, y, w, h, _ in stats[1:n]], np.float32).reshape(-1, 4)
        out.append(PixelBoxes(xyxy, np.full(len(xyxy), score, np.float32), np.full(len(xyxy), cls, np.int64)))
    return out


def grid_reader(grid: np.ndarray):
    """Slices of a (H, W, 3) model grid, zero beyond its edges, all valid."""
    def read(sl):
        rgb = np.zeros((sl.size, sl.size, 3), np.uint8)
        part = grid[sl.row_off:sl.row_off + sl.size, sl.col_off:sl.col_off + sl.size]
        rgb[:part.shape[0], :part.shape[1]] = part
        return rgb, np.ones((sl.size, sl.size), bool)
    return read


def scene(*boxes) -> np.ndarray:
    grid = np.zeros((200, 300, 3), np.uint8)
    for x0, y0, x1, y1 in boxes:
        grid[y0:y1, x0:x1] = 255
    return grid


def test_look_slice_is_centred_and_pulled_back_inside_the_grid():
    sl = look_slice(np.array([140, 90, 160, 110]), SIZE, 300, 200)
    assert (sl.col_off, sl.row_off) == (118, 68) and sl.cut_left and sl.cut_right and sl.cut_top and sl.cut_bottom
    edge = look_slice(np.array([2, 190, 12, 199]), SIZE, 300, 200)  # at the bottom-left corner
    assert (edge.col_off, edge.row_off) == (0, 200 - SIZE)
    assert not edge.cut_left and not edge.cut_bottom and edge.cut_right and edge.cut_top
    small = look_slice(np.array([5, 5, 10, 10]), SIZE, 40, 30)  # a grid smaller than one slice
    assert (small.col_off, small.row_off) == (0, 0) and not (small.cut_right or small.cut_bottom)


@pytest.mark.parametrize("views", [1, 2, 4])
def test_every_mirror_image_maps_back_to_the_grid_and_the_corners_are_averaged(views):
    true = np.array([137, 81, 158, 96])  # odd sizes and offsets: a flip off by one pixel would show
    sloppy = true + np.array([-3, 2, -3, 2])  # the sliced pass's box: 3 px west, 2 px south (IoU 0.59)
    calls = []

    def predict(batch):
        calls.append(len(batch))
        return bright_boxes(batch)

    out = second_look(np.array([sloppy], np.float32), np.array([0.6]), np.array([0]), grid_reader(scene(true)),
                      predict, SIZE, 300, 200, LookSettings(views=views), batch=3)
    expected = (0.6 * sloppy + views * 0.9 * true) / (0.6 + views * 0.9)  # score-weighted mean
    np.testing.assert_allclose(out[0], expected, atol=1e-4)
    assert max(calls) <= 3 and sum(calls) == views  # in batches of at most the model's batch size


def test_boxes_it_leaves_alone():
    true = np.array([137, 81, 158, 96])
    read, run = grid_reader(scene(true)), bright_boxes
    box = np.array([true + 4], np.float32)

    def look(**kw):
        args = dict(settings=LookSettings(views=4), batch=4)
        args.update(kw)
        return second_look(args.pop("xyxy", box), np.array([0.6]), args.pop("cls", np.array([0])), read,
                           args.pop("predict", run), SIZE, 300, 200, **args)

    np.testing.assert_array_equal(look(settings=LookSettings(views=0)), box)  # off
    np.testing.assert_array_equal(look(which=np.array([False])), box)  # not asked for (drum piles)
    np.testing.assert_array_equal(look(cls=np.array([1])), box)  # the views find only another class
    far = np.array([true + np.array([15, 0, 15, 0])], np.float32)  # IoU 0.17 with what the views find
    np.testing.assert_array_equal(look(xyxy=far), far)
    big = np.array([[100, 60, 100 + 0.7 * SIZE, 100]], np.float32)  # wider than max_side of a slice
    np.testing.assert_array_equal(look(xyxy=big), big)
    np.testing.assert_array_equal(look(predict=lambda b: [PixelBoxes.empty() for _ in b]), box)  # found nowhere
    for bad in (5, -1, 2.0, True):
        with pytest.raises(ValueError, match="0 to 4 views"):
            LookSettings(views=bad)


def test_a_view_cut_by_the_look_edge_is_not_averaged_in():
    long = np.array([100, 90, 190, 100])  # 90 px long: no look of 64 px holds it whole
    box = np.array([long], np.float32)
    out = second_look(box, np.array([0.6]), np.array([0]), grid_reader(scene(long)), bright_boxes, SIZE, 300, 200,
                      LookSettings(views=4, max_side=2.0), batch=4)
    np.testing.assert_array_equal(out, box)  # every view saw a cut part (touching both side edges)


def test_a_view_under_the_class_threshold_does_not_move_a_flag():
    true = np.array([137, 81, 158, 96])
    box = np.array([true + np.array([-3, 2, -3, 2])], np.float32)

    def doubtful(batch):
        return bright_boxes(batch, score=0.4)

    args = (np.array([0.6]), np.array([0]), grid_reader(scene(true)), doubtful, SIZE, 300, 200, LookSettings(views=4))
    np.testing.assert_array_equal(second_look(box, *args, floor=np.array([0.5])), box)
    assert not np.array_equal(second_look(box, *args, floor=np.array([0.4])), box)  # at the threshold it counts


def test_nearby_flags_share_a_look_and_far_ones_get_their_own():
    a, b, far = np.array([137, 81, 150, 94]), np.array([155, 84, 161, 95]), np.array([20, 20, 30, 30])
    xyxy = np.array([a, b, far], np.float64)
    looks = plan_looks(xyxy, [0, 1, 2], SIZE, 300, 200, (1 - 0.6) / 2 * SIZE)
    assert [m for _, m in looks] == [[0, 1], [2]]  # b lies well inside a's look; far does not
    assert all(well_inside(xyxy[i], sl, 0.2 * SIZE) for sl, m in looks for i in m)
    calls = []

    def predict(batch):
        calls.append(len(batch))
        return bright_boxes(batch)

    out = second_look(xyxy.astype(np.float32) + 1, np.full(3, 0.6), np.zeros(3, np.int64),
                      grid_reader(scene(a, b, far)), predict, SIZE, 300, 200, LookSettings(views=2), batch=8)
    assert sum(calls) == 2 * 2  # two looks of two views each, for three flags
    for i in range(3):  # each flag drawn to its own object, not to its neighbour's
        np.testing.assert_allclose(out[i], (0.6 * (xyxy[i] + 1) + 2 * 0.9 * xyxy[i]) / (0.6 + 2 * 0.9), atol=1e-4)


def test_no_data_in_a_look_and_an_empty_read():
    true = np.array([137, 81, 158, 96])
    box = np.array([true + np.array([-3, 2, -3, 2])], np.float32)
    grid = scene(true)
    base = grid_reader(grid)

    def half_no_data(sl):  # the object lies on no-data in this look: its views' boxes do not count
        rgb, mask = base(sl)
        mask[:, :] = False
        return rgb, mask

    for read in (half_no_data, lambda sl: (None, None)):
        out = second_look(box, np.array([0.6]), np.array([0]), read, bright_boxes, SIZE, 300, 200,
                          LookSettings(views=4))
        np.testing.assert_array_equal(out, box)


@pytest.mark.slow
def test_the_shipped_model_keeps_its_flags_and_places_them_no_worse(mosaic, model_gsd):
    from skysieve.detect import detect_raster, load_detector
    from skysieve.detect.evaluate import match_boxes
    from skysieve.detect.sliced import SliceSettings
    from skysieve.detect.thresholds import class_thresholds

    det = load_detector()
    thr = tuple(float(t) for t in class_thresholds(det.meta))
    runs = {v: detect_raster(mosaic.path, det, SliceSettings(conf=min(thr), class_conf=thr, look=LookSettings(views=v)))
            for v in (0, 4)}
    off, on = runs[0], runs[4]
    assert len(on) == len(off) > 0
    np.testing.assert_array_equal(on.cls, off.cls)
    np.testing.assert_array_equal(on.score, off.score)  # geometry only: calibrated thresholds keep their meaning
    errors = {}
    for v, r in runs.items():
        pred = np.array([p.bounds for p in r.polygons])
        _, matched = match_boxes(pred, r.cls, r.score, mosaic.truth_xyxy, mosaic.truth_cls)
        t = mosaic.truth_xyxy[matched[matched >= 0]]
        p = pred[matched >= 0]
        errors[v] = np.hypot((p[:, 0] + p[:, 2] - t[:, 0] - t[:, 2]) / 2, (p[:, 1] + p[:, 3] - t[:, 1] - t[:, 3]) / 2)
    assert len(errors[4]) >= len(errors[0]) > 0
    moved = np.abs(on.xyxy_px - off.xyxy_px).max(axis=1) > 1e-6
    piles = np.isin(on.cls, [det.meta.classes.index("drum_stockpile")])
    assert moved[~piles].any() and not moved[piles].any()  # tanks and chimneys looked at again, piles not
    assert np.median(errors[4]) <= np.median(errors[0]) + 0.01
    assert errors[4].max() <= errors[0].max() + 0.02  # no flag pushed off by a doubtful view
