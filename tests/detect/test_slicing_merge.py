"""Slicing the model grid and merging boxes across slice borders (pure functions)."""

from __future__ import annotations

import numpy as np
import pytest

from skysieve.detect.merge import MergeSettings, merge_boxes, truncated_mask
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
    assert out.tolist() == [complete] and score[0] == pytest.approx(0.6)


def test_two_truncated_halves_of_a_large_object_join_into_their_union():
    left = [100, 50, 300, 90]   # slice 1 ends at 300
    right = [200, 52, 420, 88]  # slice 2 starts at 200
    out, _, _ = merge_boxes(np.array([left, right]), np.array([0.7, 0.8]), np.array([2, 2]), np.array([True, True]))
    assert out.tolist() == [[100, 50, 420, 90]]


def test_neighbouring_objects_and_other_classes_are_kept_apart():
    xyxy = np.array([[0, 0, 20, 20], [22, 0, 42, 20], [0, 0, 20, 20]])
    out, _, cls = merge_boxes(xyxy, np.array([0.9, 0.9, 0.8]), np.array([0, 0, 1]), np.zeros(3, bool),
                              MergeSettings())
    assert len(out) == 3 and sorted(cls.tolist()) == [0, 0, 1]


def test_merging_nothing():
    out, score, cls = merge_boxes(np.zeros((0, 4)), np.zeros(0), np.zeros(0, int), np.zeros(0, bool))
    assert out.shape == (0, 4) and len(score) == len(cls) == 0
