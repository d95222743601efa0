"""Slicing the model grid and merging boxes across slice borders (pure functions)."""

from __future__ import annotations

import numpy as np
import pytest

from skysieve.detect.merge import MergeSettings, group_piles, merge_boxes, truncated_mask, valid_fraction
from skysieve.detect.sliced import (
    SliceSettings,
    _read_slice,
    fill_no_data,
    overview_level,
    slice_source,
    slice_window,
)
from skysieve.detect.slicing import Slice, axis_offsets, plan_slices


def test_axis_offsets_cover_the_axis_and_end_on_the_edge():
    offs = axis_offsets(1000, 416, 104)
    assert offs[0] == 0 and offs[-1] == 1000 - 416
    assert all(b - a <= 416 - 104 for a, b in zip(offs, offs[1:], strict=False))  # never less overlap than asked


def test_raster_smaller_than_a_slice_gets_one_slice():
    assert axis_offsets(100, 416, 104) == [0]
    (only,) = plan_slices(100, 50, 416, 104)
    assert not (only.cut_left or only.cut_right or only.cut_top or only.cut_bottom)


@pytest.mark.parametrize("size,overlap", [(0, 0), (416, 416), (416, -1)])
def test_bad_slice_geometry_is_refused(size, overlap):
    with pytest.raises(ValueError):
        axis_offsets(1000, size, overlap)


def test_plan_marks_inner_edges_as_cut():
    slices = plan_slices(700, 700, 416, 104)
    assert len(slices) == 4
    top_left = slices[0]
    assert (top_left.cut_left, top_left.cut_top, top_left.cut_right, top_left.cut_bottom) == (False, False, True, True)
    bottom_right = slices[-1]
    assert (bottom_right.cut_left, bottom_right.cut_top, bottom_right.cut_right, bottom_right.cut_bottom) == \
        (True, True, False, False)


def test_truncated_mask_only_on_cut_edges():
    sl = Slice(0, 0, 100, cut_left=False, cut_top=False, cut_right=True, cut_bottom=False)
    boxes = np.array([[0, 10, 20, 30],      # on the raster's own left edge: complete
                      [80, 10, 99.5, 30],   # touches the cut right edge: truncated
                      [40, 40, 60, 99.9]])  # touches the bottom, which is the raster edge: complete
    assert truncated_mask(boxes, sl).tolist() == [False, True, False]


def test_duplicate_from_the_neighbouring_slice_becomes_one_box():
    xyxy = np.array([[100, 100, 120, 120], [100.5, 99.5, 120.5, 120]])
    out, score, cls = merge_boxes(xyxy, np.array([0.8, 0.9]), np.array([0, 0]), np.array([False, False]))
    assert len(out) == 1 and score[0] == pytest.approx(0.9)


def test_fragment_is_dropped_for_the_complete_view_even_if_it_scores_higher():
    complete = [300, 100, 340, 140]
    fragment = [300, 100, 316, 140]  # the part a slice ending at x=316 saw
    out, score, _ = merge_boxes(np.array([fragment, complete]), np.array([0.95, 0.6]), np.array([1, 1]),
                                np.array([True, False]))
    # ... with the fragment's score: one object, its best view's (a complete view under its class threshold
    # must not take a confident fragment down with it)
    assert out.tolist() == [complete] and score[0] == pytest.approx(0.95)


def test_two_truncated_halves_of_a_large_object_join_into_their_union():
    left = [100, 50, 300, 90]   # slice 1 ends at 300
    right = [200, 52, 420, 88]  # slice 2 starts at 200
    out, _, _ = merge_boxes(np.array([left, right]), np.array([0.7, 0.8]), np.array([2, 2]), np.array([True, True]))
    assert out.tolist() == [[100, 50, 420, 90]]


def test_a_weak_part_beside_a_strong_one_does_not_grow_it():
    # a run sliced at 0.001 (for AP) sees, beside a tank's truncated box at 0.8, the model's doubts about
    # the ground next to it; joined into their union, the grown box overlapped the tank by IoU 0.35 only
    tank = [100, 50, 300, 90]
    doubt = [150, 40, 330, 140]
    out, score, _ = merge_boxes(np.array([tank, doubt]), np.array([0.8, 0.03]), np.array([0, 0]),
                                np.array([True, True]))
    assert out.tolist() == [tank] and score.tolist() == pytest.approx([0.8])
    # alike scores: two parts of one object, joined as before
    out, _, _ = merge_boxes(np.array([tank, doubt]), np.array([0.8, 0.5]), np.array([0, 0]), np.array([True, True]))
    assert out.tolist() == [[100, 40, 330, 140]]


def test_neighbouring_objects_and_other_classes_are_kept_apart():
    xyxy = np.array([[0, 0, 20, 20], [22, 0, 42, 20], [0, 0, 20, 20]])
    out, _, cls = merge_boxes(xyxy, np.array([0.9, 0.9, 0.8]), np.array([0, 0, 1]), np.zeros(3, bool),
                              MergeSettings())
    assert len(out) == 3 and sorted(cls.tolist()) == [0, 0, 1]


def test_merging_nothing():
    out, score, cls = merge_boxes(np.zeros((0, 4)), np.zeros(0), np.zeros(0, int), np.zeros(0, bool))
    assert out.shape == (0, 4) and len(score) == len(cls) == 0


def test_drum_pile_boxes_within_the_gap_join_into_one_pile_and_other_classes_stay_apart():
    """Three drum-pile boxes in a chain (gaps 10 and 15 px, under 20) become one box with the best score; a
    fourth 30 px away stays a pile of its own; two tanks 5 px apart (class 0) are left alone."""
    xyxy = np.array([[0, 0, 40, 20], [50, 0, 90, 20], [90, 35, 120, 60], [150, 0, 170, 20],
                     [0, 100, 30, 130], [35, 100, 65, 130]], float)
    score = np.array([0.8, 0.9, 0.75, 0.7, 0.95, 0.85])
    cls = np.array([2, 2, 2, 2, 0, 0])
    b, s, c = group_piles(xyxy, score, cls, [2], gap=20)
    piles = sorted(map(tuple, b[c == 2].tolist()))
    assert piles == [(0, 0, 120, 60), (150, 0, 170, 20)]
    assert sorted(s[c == 2].tolist()) == pytest.approx([0.7, 0.9])
    assert sorted(map(tuple, b[c == 0].tolist())) == [(0, 100, 30, 130), (35, 100, 65, 130)]
    # a gap below zero turns grouping off; nothing in, nothing out
    assert len(group_piles(xyxy, score, cls, [2], gap=-1)[0]) == 6
    assert len(group_piles(np.zeros((0, 4)), np.zeros(0), np.zeros(0, int), [2], gap=20)[0]) == 0



def test_weak_pile_boxes_only_join_a_pile_and_never_flag_alone():
    """Hysteresis: a weak drum-pile box (a stray drum boxed at a low score) beside a strong pile widens it,
    and the pile keeps the strong box's score; a weak box with no strong one in reach is dropped, as is a
    group of weak boxes only; a weak mark on a tank changes nothing."""
    xyxy = np.array([[100, 100, 200, 200], [205, 150, 220, 165],  # strong pile + a stray drum 5 px beside it
                     [400, 400, 415, 415], [420, 400, 435, 415],  # two weak strays together, no strong box
                     [0, 300, 50, 350]], float)  # a tank
    score = np.array([0.8, 0.35, 0.4, 0.38, 0.9])
    cls = np.array([2, 2, 2, 2, 0])
    weak = np.array([False, True, True, True, False])
    b, s, c = group_piles(xyxy, score, cls, [2], gap=20, weak=weak)
    assert b[c == 2].tolist() == [[100, 100, 220, 200]]
    assert s[c == 2].tolist() == pytest.approx([0.8])
    assert b[c == 0].tolist() == [[0, 300, 50, 350]]
    # weak boxes link to strong ones only: a string of strays does not bridge two piles
    chain = np.array([[0, 0, 50, 50], [60, 0, 70, 10], [80, 0, 90, 10], [100, 0, 110, 10], [120, 0, 170, 50]], float)
    b, _, _ = group_piles(chain, np.array([0.8, 0.4, 0.4, 0.4, 0.8]), np.full(5, 2), [2], gap=15,
                          weak=np.array([False, True, True, True, False]))
    assert sorted(map(tuple, b.tolist())) == [(0, 0, 70, 50), (100, 0, 170, 50)]
    # grouping off: weak boxes are dropped, strong ones pass as they are
    b, s, c = group_piles(xyxy, score, cls, [2], gap=-1, weak=weak)
    assert sorted(map(tuple, b.tolist())) == [(0, 300, 50, 350), (100, 100, 200, 200)]


def test_slicing_goes_down_to_the_join_share_only_when_weak_piles_are_on():
    names = ("tank", "chimney", "drum_stockpile")
    on = SliceSettings(conf=0.5, class_conf=(0.7, 0.5, 0.6), merge=MergeSettings(pile_join_share=0.5))
    assert on.predict_conf(names) == pytest.approx(0.3)
    off = SliceSettings(conf=0.5, class_conf=(0.7, 0.5, 0.6), merge=MergeSettings(pile_join_share=0.0))
    assert off.predict_conf(names) == 0.5
    # without operating thresholds (AP, calibration) every box down to conf is kept anyway
    assert SliceSettings(conf=0.001, merge=MergeSettings(pile_join_share=0.5)).predict_conf(names) == 0.001



def test_flags_widen_a_pile_by_its_weak_strays_only_when_the_join_is_on():
    """Cut at the class thresholds (tank 0.7, drums 0.6): a drum pile at 0.8 with a stray drum at 0.35 (over
    half its threshold) 10 px away; a tank at 0.4 (under its threshold) stays out whatever the join. Piles
    get no second look (no slice is read)."""
    from types import SimpleNamespace

    from skysieve.detect.sliced import _flags

    def read(sl):
        raise AssertionError(f"a pile was looked at again: {sl}")

    det = SimpleNamespace(meta=SimpleNamespace(classes=("tank", "chimney", "drum_stockpile"), gsd_m=0.04))
    xyxy = np.array([[100, 100, 200, 200], [210, 150, 225, 165], [400, 400, 500, 500]], np.float32)
    score, cls = np.array([0.8, 0.35, 0.4], np.float32), np.array([2, 2, 0])
    for share, pile in ((0.5, [100, 100, 225, 200]), (0.0, [100, 100, 200, 200])):
        settings = SliceSettings(conf=0.3, class_conf=(0.7, 0.5, 0.6), merge=MergeSettings(pile_join_share=share))
        b, s, c = _flags(xyxy, score, cls, read, (1000, 1000), settings, det)
        assert b.tolist() == [pile] and c.tolist() == [2] and s.tolist() == pytest.approx([0.8]), share

def test_valid_fraction_of_boxes():
    mask = np.zeros((100, 100), bool)
    mask[:, :50] = True
    boxes = np.array([[10, 10, 30, 30],     # all valid
                      [40, 0, 60, 10],      # half
                      [60, 60, 90, 90],     # on no-data
                      [45, 5, 45, 20],      # empty
                      [-10, -10, 10, 10]])  # partly outside the slice: the part inside counts
    assert valid_fraction(boxes, mask).tolist() == [1.0, 0.5, 0.0, 0.0, 1.0]


def test_fill_no_data_continues_the_ground_and_keeps_valid_pixels():
    rng = np.random.default_rng(3)
    ground = (np.array([90, 120, 60]) + rng.integers(-8, 9, (200, 300, 3))).astype(np.uint8)
    ground[:, :100] += np.array([40, 20, 10], np.uint8)  # a lighter field on the left
    mask = np.ones((200, 300), bool)
    mask[:, 220:] = False  # a straight edge ...
    mask[np.arange(200) % 7 == 0, 200:] = False  # ... made ragged
    rgb = np.where(mask[..., None], ground, 0).astype(np.uint8)
    out = fill_no_data(rgb.copy(), mask)
    assert np.array_equal(out[mask], rgb[mask])
    filled = out[~mask].astype(int)
    assert np.abs(filled - [90, 120, 60]).max() <= 10  # the colour next to it, not black
    across = np.abs(np.diff(out[:, 210:230].astype(int).mean((0, 2))))
    assert across.max() < 3  # no step where the data ends
    assert np.array_equal(fill_no_data(ground.copy(), np.ones((200, 300), bool)), ground)
    assert not fill_no_data(ground.copy(), np.zeros((200, 300), bool)).any()


@pytest.fixture(scope="module", params=[False, True], ids=["full", "overviews"])
def masked_raster(tmp_path_factory, request):
    """A 700 x 500 px GeoTIFF: noise smoothed at several scales, an internal mask with a ragged edge, and
    (second run) overviews 2x and 4x, as a mosaic's COG has."""
    import cv2
    import rasterio
    from affine import Affine
    from rasterio.enums import Resampling

    rng = np.random.default_rng(11)
    h, w = 500, 700
    img = sum(cv2.resize(rng.uniform(0, 255, (h // s + 1, w // s + 1, 3)).astype(np.float32), (w, h),
                         interpolation=cv2.INTER_CUBIC) for s in (1, 3, 9)) / 3
    rgb = np.clip(img, 0, 255).astype(np.uint8)
    edge = 520 + np.clip(np.cumsum(rng.integers(-4, 5, h)), -60, 60)
    mask = np.arange(w)[None, :] < edge[:, None]
    mask[:37, :] = False  # and a straight top edge
    rgb[~mask] = 0
    path = tmp_path_factory.mktemp("raster") / "masked.tif"
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=3, dtype="uint8", crs="EPSG:4547",
                       transform=Affine(0.0854, 0, 399000.0, 0, -0.0854, 3999000.0), tiled=True,
                       blockxsize=256, blockysize=256, photometric="RGB") as dst:
        dst.write(np.moveaxis(rgb, 2, 0))
        dst.write_mask(mask.astype(np.uint8) * 255)
        if request.param:
            dst.build_overviews([2, 4], Resampling.average)
    return path


@pytest.mark.parametrize("k", [0.46838, 1.0, 1.15, 1.33333, 2.0, 3.1, 4.6])
def test_slices_read_on_whole_pixels_land_where_gdal_puts_them(masked_raster, k):
    """Each slice read on whole pixels and resampled in skysieve (bilinear up to 1.2 source pixels per model
    pixel, area average above, from the overview GDAL would use) has GDAL's valid mask pixel for pixel and
    GDAL's RGB (resampled read of the fractional window) within rounding: nothing moves, not even at the
    no-data edge."""
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.windows import Window

    diffs = []
    with rasterio.open(masked_raster) as src, slice_source(masked_raster, src, k) as (level, kx, ky):
        gw, gh = round(src.width / k), round(src.height / k)
        for sl in plan_slices(gw, gh, 96, 24):
            rgb, mask, _ = _read_slice(level, sl, kx, 0.0, ky, area=k > 1.2)
            w = slice_window(sl, k, src.width, src.height)
            win = Window(w.c0, w.r0, w.out_w * w.sx, w.out_h * w.sy)
            ref_mask = src.dataset_mask(window=win, out_shape=(w.out_h, w.out_w)) > 0
            ref = src.read(window=win, out_shape=(3, w.out_h, w.out_w),
                           resampling=Resampling.average if k > 1.2 else Resampling.bilinear).transpose(1, 2, 0)
            assert np.array_equal(mask[:w.out_h, :w.out_w], ref_mask)
            assert not mask[w.out_h:].any() and not mask[:, w.out_w:].any()
            if level is not src:  # GDAL's overview read leaves out the part of a source pixel that the first
                ref_mask[0] = ref_mask[:, 0] = False  # output row/column starts in: only those differ
            diffs.append(np.abs(rgb[:w.out_h, :w.out_w].astype(int) - ref)[ref_mask])
    d = np.concatenate(diffs)
    assert len(d) > 10_000 and d.mean() < 0.25 and np.percentile(d, 99) <= 1


def test_overview_level_is_the_one_gdal_reads(masked_raster):
    """The coarsest overview with a decimation up to 1.01 k (GDAL's threshold for resampled reads: at k
    1.99 it reads the 2x overview); none at or below 1.2 source pixels per model pixel."""
    import rasterio

    with rasterio.open(masked_raster) as src:
        levels = [overview_level(src, k) for k in (0.5, 1.15, 1.5, 1.99, 3.1, 3.97, 4.6, 9.0)]
        assert levels == ([None, None, None, 0, 0, 1, 1, 1] if src.overviews(1) else [None] * 8)
