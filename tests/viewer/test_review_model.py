"""The viewer's non-GUI parts: lazy COG levels, world frame, queue walking, cell choice, messages, CLI."""

from __future__ import annotations

import os

import numpy as np
import pytest
import rasterio
from affine import Affine

from skysieve.cli import main
from skysieve.errors import MosaicError, NotFoundError, WorkspaceError
from skysieve.viewer import plan_review, review_command, sanitize_qt_environment
from skysieve.viewer.cog import open_mosaic, read_chip
from skysieve.viewer.layers import (
    CLASS_COLOURS,
    MARK_MIN_PX,
    MARK_PX,
    STATUS_FILL,
    box_layer,
    detection_layer,
)
from skysieve.viewer.queue import QueueFilter, ReviewQueue
from skysieve.viewer.survey import load_cell, neighbour, reviewable_cells
from skysieve.viewer.world import WorldFrame
from skysieve.workspace import Workspace

CENTRE = "E500000N3300000"
EAST = "E500250N3300000"


def test_cog_levels_read_exactly_the_window_they_are_sliced_with(review_ws):
    mosaic = open_mosaic(review_ws.cell_dir(CENTRE) / "ortho.tif")
    full, half = mosaic.levels[0], mosaic.levels[1]
    assert full.shape == (1000, 1000, 3) and half.shape == (500, 500, 3) and mosaic.rgb
    with rasterio.open(mosaic.path) as ds:
        whole = np.moveaxis(ds.read(), 0, -1)
    assert np.array_equal(full[120:380, 40:333], whole[120:380, 40:333])
    assert np.array_equal(full[-3:, 7], whole[-3:, 7])
    assert np.array_equal(full[::4, 10:20, 1], whole[::4, 10:20, 1])
    assert np.array_equal(full[..., 2][5:9, 5:9], whole[5:9, 5:9, 2])
    with rasterio.open(mosaic.path, overview_level=0) as ds:
        assert np.array_equal(np.asarray(half), np.moveaxis(ds.read(), 0, -1))
    with pytest.raises(IndexError):
        full[1000, 0]
    assert mosaic.bounds_xy == (500000.0, 3300000.0, 500250.0, 3300250.0)


def test_prefetched_blocks_are_served_from_the_cache(review_ws):
    mosaic = open_mosaic(review_ws.cell_dir(CENTRE) / "ortho.tif")
    full = mosaic.levels[0]
    assert full.block_rc == (512, 512)
    full.prefetch(300, 700, 450, 620)  # as the widget's read-ahead thread does
    misses = full.cache.misses
    window = full[300:700, 450:620]
    assert full.cache.misses == misses and full.cache.hits >= 4  # no decode on the main thread
    # blocks are kept pixel-interleaved: a read copies whole rows (a band-major view made it a strided copy)
    block = full.cache.get((full.overview, 0, 1))
    assert block.shape == (512, 1000 - 512, 3) and block.flags.c_contiguous
    with rasterio.open(mosaic.path) as ds:
        assert np.array_equal(window, np.moveaxis(ds.read(window=((300, 700), (450, 620))), 0, -1))
    small = type(full.cache)(max_bytes=1)
    small.put(("a",), np.zeros(10, np.uint8))
    small.put(("b",), np.zeros(10, np.uint8))
    assert small.get(("a",)) is None and small.nbytes <= 10  # least recently used goes first


def test_chip_is_enlarged_and_clipped_to_the_mosaic(review_ws):
    path = review_ws.cell_dir(CENTRE) / "ortho.tif"
    assert read_chip(path, (500100, 3300100, 500112, 3300112), 192).shape == (192, 192, 3)
    edge = read_chip(path, (499990, 3300100, 500010, 3300120), 100)  # half outside, west
    assert edge.shape[0] == 100 and 45 <= edge.shape[1] <= 55
    assert read_chip(path, (0, 0, 10, 10)).size == 0


def test_missing_and_rotated_mosaics_get_clear_errors(tmp_path):
    with pytest.raises(MosaicError, match="skysieve mosaic"):
        open_mosaic(tmp_path / "nope.tif")
    with pytest.raises(MosaicError, match="north-up"):
        WorldFrame().placement(Affine(0.1, 0.02, 0, 0.0, -0.1, 0))


def test_world_frame_keeps_north_up_and_small_numbers():
    frame = WorldFrame.around((500_012.0, 3_299_900.0, 500_300.0, 3_300_250.0))
    assert (frame.x0, frame.y0) == (500_000.0, 3_301_000.0)
    world = frame.to_world([500_100.0, 500_100.0], [3_300_200.0, 3_300_100.0])
    assert world[0, 0] < world[1, 0]  # the northern point is higher on screen (smaller row)
    assert np.abs(world).max() < 2_000  # float32-safe for vispy
    assert frame.to_xy(*world[0]) == (500_100.0, 3_300_200.0)
    placement = frame.placement(Affine(0.25, 0, 500_000.0, 0, -0.25, 3_300_250.0))
    # centre of pixel (0, 0) is 0.125 m in from the corner
    assert np.allclose(placement.translate_rc, frame.to_world(500_000.125, 3_300_249.875)[0])
    assert placement.scale_rc == (0.25, 0.25)


def test_queue_walks_and_skips_what_is_decided():
    rows = [{"det_id": f"d{i}", "review_status": s} for i, s in
            enumerate(["pending", "confirmed", "rejected", "pending", "pending"])]
    q = ReviewQueue(rows)
    assert q.current["det_id"] == "d0"
    assert q.upcoming() == 3
    assert q.advance()["det_id"] == "d3"  # skips d1, d2 already decided
    assert q.previous()["det_id"] == "d2"
    q.select(99)
    assert q.current["det_id"] == "d4" and q.next()["det_id"] == "d4"  # stays at the end
    assert q.replace({"det_id": "d4", "review_status": "unsure"}) == 4
    assert q.replace({"det_id": "zz"}) is None
    assert q.counts() == {"pending": 2, "confirmed": 1, "rejected": 1, "unsure": 1}
    assert ReviewQueue([]).current is None and ReviewQueue([]).advance() is None
    assert QueueFilter(classes=("tank",)).as_kwargs()["classes"] == ("tank",)


def test_cells_neighbours_and_loading(review_ws):
    cells = reviewable_cells(review_ws)
    assert [(c.cell_id, c.has_mosaic, c.detections, c.pending) for c in cells] == [
        (CENTRE, True, 40, 40), (EAST, False, 5, 5)]
    all_cells = review_ws.cells()
    assert neighbour(all_cells, CENTRE, "east") == EAST
    assert neighbour(all_cells, CENTRE, "north") == "E500000N3300250"
    assert neighbour(all_cells, EAST, "east") is None  # edge of the surveyed block
    data = load_cell(review_ws, CENTRE, QueueFilter(classes=("chimney",), min_score=0.5))
    assert len(data.detections) == 40 and data.mosaic is not None and len(data.cells) == 9
    assert data.queue and all(r["class"] == "chimney" and r["score"] >= 0.5 for r in data.queue)
    assert [s["site_id"] for s in data.sites] == ["S001"] and data.problems == []


def test_detection_marks_and_boxes_are_placed_and_coloured(review_ws):
    rows = load_cell(review_ws, CENTRE).detections
    rows[0] = {**rows[0], "review_status": "confirmed"}
    frame = WorldFrame(500_000, 3_301_000)
    data, kwargs, kind = detection_layer(rows, frame)
    assert kind == "points" and data.shape == (40, 2)
    minx, miny, maxx, maxy = rows[0]["geometry"].bounds
    assert np.allclose(data[0], frame.to_world(minx, maxy)[0])  # the mark sits on the box's north-west corner
    assert kwargs["canvas_size_limits"] == (MARK_MIN_PX, MARK_PX)  # never bigger on screen than this
    assert np.allclose(kwargs["size"][0], max(maxx - minx, maxy - miny) / 2)  # else half the box
    assert np.allclose(kwargs["face_color"][0], STATUS_FILL["confirmed"])
    assert np.allclose(kwargs["face_color"][1:, 3], 0)  # pending: hollow
    assert np.allclose(kwargs["border_color"][0], CLASS_COLOURS[rows[0]["class"]])
    vectors, vkw, vkind = box_layer(rows, frame)
    assert vkind == "vectors" and vectors.shape == (160, 2, 2)  # four edges a box
    corners = vectors[:4, 0]  # the first box's edges start at its NW, NE, SE, SW corners
    assert np.allclose(corners, frame.to_world([minx, maxx, maxx, minx], [maxy, maxy, miny, miny]))
    assert np.allclose(vectors[:4, 1].sum(axis=0), 0)  # and close the ring
    assert np.allclose(vkw["edge_color"][:4], CLASS_COLOURS[rows[0]["class"]])
    assert box_layer([], frame)[0].shape == (0, 2, 2) and detection_layer([], frame)[0].shape == (0, 2)


def test_plan_review_picks_the_busiest_cell_and_names_what_is_missing(review_ws):
    assert plan_review(review_ws) .cell_id == CENTRE
    east = plan_review(review_ws.root, EAST)
    assert east.problems == (f"cell {EAST} has no mosaic yet: run `skysieve mosaic {review_ws.root} --cell {EAST}`",)
    with pytest.raises(NotFoundError, match="E500000N3300000"):
        plan_review(review_ws, "nowhere")


def test_empty_workspace_is_refused_with_the_commands_to_run(tmp_path, capsys):
    ws = Workspace.create(tmp_path / "empty", crs="EPSG:32650")
    with pytest.raises(WorkspaceError, match="no mosaics and no detections"):
        plan_review(ws)
    assert main(["review", str(ws.root)]) == 1
    err = capsys.readouterr().err
    assert "skysieve mosaic" in err and "skysieve detect" in err
    assert main(["review", str(tmp_path / "not-a-workspace")]) == 1
    assert "skysieve init" in capsys.readouterr().err


def test_review_check_and_the_command_for_the_demo(review_ws, capsys):
    assert main(["review", str(review_ws.root), "--cell", EAST, "--reviewer", "li.wei", "--check"]) == 0
    out = capsys.readouterr().out
    assert f"would review cell {EAST}" in out and "li.wei" in out and "no mosaic" in out
    assert review_command(review_ws.root, CENTRE) == f"skysieve review {review_ws.root} --cell {CENTRE}"
    assert review_command("my survey") == "skysieve review 'my survey'"


def test_cv2_qt_paths_are_dropped_but_the_users_own_are_kept(monkeypatch):
    monkeypatch.setenv("QT_QPA_PLATFORM_PLUGIN_PATH", "/venv/lib/python3.11/site-packages/cv2/qt/plugins")
    monkeypatch.setenv("QT_QPA_FONTDIR", "/venv/lib/python3.11/site-packages/cv2/qt/fonts")
    assert sanitize_qt_environment() == ["QT_QPA_PLATFORM_PLUGIN_PATH", "QT_QPA_FONTDIR"]
    assert "QT_QPA_PLATFORM_PLUGIN_PATH" not in os.environ
    monkeypatch.setenv("QT_QPA_PLATFORM_PLUGIN_PATH", "/opt/qt/plugins")
    assert sanitize_qt_environment() == []
    assert os.environ["QT_QPA_PLATFORM_PLUGIN_PATH"] == "/opt/qt/plugins"


def test_decisions_elsewhere_are_found_from_the_audit_mark(review_ws):
    """The widget's 10 s check: nothing decided -> nothing read; a decision -> only that flag re-read;
    a push (a suspect touched) -> the whole cell re-read."""
    from skysieve import ledger
    from skysieve.viewer.survey import audit_mark, changed_since, review_state

    data = load_cell(review_ws, CENTRE)
    mark = data.audit_mark
    assert changed_since(review_ws, mark) == (mark, set())
    a, b = (d["det_id"] for d in data.detections[:2])
    ledger.decide(review_ws, a, "confirmed", "bob")
    new_mark, touched = changed_since(review_ws, mark)
    assert new_mark > mark and touched == {a} and new_mark == audit_mark(review_ws)
    state = review_state(review_ws, CENTRE, touched)
    assert list(state) == [a] and state[a][:2] == ("confirmed", "bob")
    assert review_state(review_ws, CENTRE)[a] == state[a] and b in review_state(review_ws, CENTRE)
    ledger.push_confirmed(review_ws, "bob")
    assert changed_since(review_ws, new_mark)[1] is None


def test_review_without_a_display_says_how_to_run_it(monkeypatch):
    """Qt aborts the whole process (rc 134) without a display; the command says why first."""
    import sys

    from skysieve.viewer.cli import _check_display
    from skysieve.viewer.launch import ViewerError

    if not sys.platform.startswith("linux"):
        pytest.skip("displays are a Linux question")
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ViewerError, match="xvfb-run"):
        _check_display()
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    _check_display()  # Qt can run without one
    monkeypatch.delenv("QT_QPA_PLATFORM")
    monkeypatch.setenv("DISPLAY", ":99")
    _check_display()
