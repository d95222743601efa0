"""A review step redraws only what it changed (what keeps a step near one frame with 10,000 flags).

These check behaviour, not timings (``benchmarks/review_bench.py`` times it): after a step, before any
event is processed, the decided point's colour is in vispy's buffer, the mosaic tiles for the next
flag are already chosen, the frame is on the next flag, and napari's layer list heard nothing.
"""

from __future__ import annotations

import numpy as np
import pytest

from skysieve.viewer import layers as L
from skysieve.viewer._napari_internals import marker_buffers
from skysieve.viewer._redraw import recolour_point, vispy_canvas
from skysieve.viewer.widget import ReviewWidget

pytestmark = pytest.mark.gui


def _open(make_napari_viewer, qtbot, ws) -> ReviewWidget:
    viewer = make_napari_viewer(show=True)
    widget = ReviewWidget(viewer, reviewer="alice")
    viewer.window.add_dock_widget(widget, name="skysieve review")
    with qtbot.waitSignal(widget.cellOpened, timeout=15_000):
        widget.open_workspace(ws)
    qtbot.wait(50)
    return widget


def _vertices(widget: ReviewWidget) -> np.ndarray:
    """The detections layer's vertex array as vispy holds it (what the GPU buffer is filled from)."""
    buffers = marker_buffers(vispy_canvas(widget.viewer), widget.viewer.layers[L.DETECTIONS_LAYER])
    assert buffers is not None, "napari 0.9's marker buffers are gone: see skysieve.viewer._napari_internals"
    return buffers[1]


def test_a_step_changes_one_vertex_picks_tiles_first_and_leaves_the_layer_list_alone(
        make_napari_viewer, qtbot, review_ws):
    widget = _open(make_napari_viewer, qtbot, review_ws)
    viewer = widget.viewer
    points = viewer.layers[L.DETECTIONS_LAYER]
    mosaic = next(layer for layer in viewer.layers if layer.name == f"mosaic {widget.cell_id}")
    first = widget.queue.current["det_id"]
    p = widget._point_index[first]  # noqa: SLF001
    before = _vertices(widget).copy()
    heard = []
    viewer.layers.events.connect(heard.append)

    assert widget.confirm()  # no Qt event is processed from here to the asserts

    green = np.array(L.STATUS_FILL["confirmed"])
    assert np.allclose(points.face_color[p], green)  # napari's model
    after = _vertices(widget)
    assert np.allclose(after["a_bg_color"][p], green)  # the vertex vispy draws
    changed = np.flatnonzero(np.any(after["a_bg_color"] != before["a_bg_color"], axis=1))
    assert changed.tolist() == [p]  # and no other one
    assert np.array_equal(after["a_position"], before["a_position"])
    # the next flag's mosaic tiles were chosen with the camera move, not in a second frame
    nxt = widget.queue.current
    centre = widget.frame.to_world(nxt["x"], nxt["y"])[0]
    assert np.allclose(viewer.scene.camera.center[-2:], centre)
    level_px = mosaic.world_to_data(centre) / mosaic.downsample_factors[mosaic.data_level]
    lo, hi = mosaic.corner_pixels[:, :2]
    assert np.all(lo <= level_px) and np.all(level_px <= hi)
    # the frame is around the new flag's box; none of this reached the layer list
    frame = widget._flag_frame  # noqa: SLF001
    (r0, c0), (r1, c1) = frame.corners_rc
    minx, miny, maxx, maxy = nxt["geometry"].bounds
    (br0, bc0), (br1, bc1) = widget.frame.to_world([minx, maxx], [maxy, miny])
    assert frame.visible and r0 < br0 < br1 < r1 and c0 < bc0 < bc1 < c1
    assert np.allclose([(r0 + r1) / 2, (c0 + c1) / 2], [(br0 + br1) / 2, (bc0 + bc1) / 2])
    assert heard == []
    assert widget.table.currentIndex().row() == widget.queue.index  # the queue table follows
    # a status change made elsewhere still reaches the map (the same path, from refresh_statuses)
    from skysieve import ledger

    ledger.decide(review_ws, nxt["det_id"], "rejected", "bob")
    assert widget.refresh_statuses() == 1
    q = widget._point_index[nxt["det_id"]]  # noqa: SLF001
    assert np.allclose(_vertices(widget)["a_bg_color"][q], L.STATUS_FILL["rejected"])


def test_walking_the_queue_scrolls_the_table_once_a_screenful_and_keeps_the_flag_in_sight(
        make_napari_viewer, qtbot, review_ws):
    """Each scroll repaints every visible row: stepping down must not scroll the table on every step."""
    widget = _open(make_napari_viewer, qtbot, review_ws)
    table = widget.table
    table.setFixedHeight(10 * 20)  # a table a few rows tall, so 30 steps walk past its end
    qtbot.wait(50)
    scrolls = []
    table.verticalScrollBar().valueChanged.connect(scrolls.append)

    def in_sight(row: int) -> bool:
        where, shown = table.visualRect(widget.model.index(row, 0)), table.viewport().rect()
        return where.top() >= shown.top() and where.bottom() <= shown.bottom()

    steps = 30
    for _ in range(steps):
        assert widget.confirm()
        assert table.currentIndex().row() == widget.queue.index and in_sight(widget.queue.index)
    assert 1 <= len(scrolls) <= steps // 4  # Qt's EnsureVisible scrolled on all but the first few steps
    assert table.verticalScrollBar().value() > 0
    for _ in range(12):  # walking back keeps it in sight too
        widget.previous()
        assert in_sight(widget.queue.index)
    assert in_sight(widget.queue.index)


def test_the_frame_around_the_flag_is_drawn_in_rgba_not_by_colour_name(make_napari_viewer, qtbot, review_ws):
    """vispy's agg line re-reads its colour on every draw; a name costs a colormap lookup each time."""
    from vispy.color import Color

    widget = _open(make_napari_viewer, qtbot, review_ws)
    frame = widget._flag_frame  # noqa: SLF001
    assert frame.rgba == tuple(Color("yellow").rgba)
    assert frame._line.color == frame.rgba  # noqa: SLF001 (what vispy is given)
    assert widget.confirm()
    assert frame.visible and frame._line.color == frame.rgba  # noqa: SLF001


def test_without_napari_s_canvas_the_current_flag_is_framed_by_a_shapes_layer(
        make_napari_viewer, qtbot, review_ws, monkeypatch):
    """If a napari version hides its vispy canvas, reviewing still works and the flag is still framed."""
    from skysieve.viewer import widget as widget_mod
    from skysieve.viewer._redraw import ShapesFrame

    monkeypatch.setattr(widget_mod, "vispy_canvas", lambda viewer: None)
    widget = _open(make_napari_viewer, qtbot, review_ws)
    frame = widget._flag_frame  # noqa: SLF001
    assert isinstance(frame, ShapesFrame) and ShapesFrame.NAME in widget.viewer.layers
    assert widget.confirm()
    nxt = widget.queue.current
    minx, miny, maxx, maxy = nxt["geometry"].bounds
    (br0, bc0), (br1, bc1) = widget.frame.to_world([minx, maxx], [maxy, miny])
    (r0, c0), (r1, c1) = frame.corners_rc
    assert frame.visible and r0 < br0 < br1 < r1 and c0 < bc0 < bc1 < c1
    rect = widget.viewer.layers[ShapesFrame.NAME].data[0]
    assert np.allclose(rect.min(axis=0), [r0, c0]) and np.allclose(rect.max(axis=0), [r1, c1])


def test_recolour_point_falls_back_to_napari_without_a_canvas(make_napari_viewer):
    viewer = make_napari_viewer()
    layer = viewer.add_points(np.array([[0.0, 0.0], [5.0, 5.0]]), face_color="white")
    assert recolour_point(None, layer, 1, (0.0, 1.0, 0.0, 1.0)) is False  # the public path
    assert np.allclose(layer.face_color, [[1, 1, 1, 1], [0, 1, 0, 1]])
    assert recolour_point(vispy_canvas(viewer), layer, 0, (1.0, 0.0, 0.0, 1.0)) is True  # the vertex path
    assert np.allclose(layer.face_color, [[1, 0, 0, 1], [0, 1, 0, 1]])


def test_text_panel_changes_text_without_asking_for_a_new_layout(qtbot):
    from qtpy.QtCore import QEvent, QObject
    from qtpy.QtWidgets import QLabel, QVBoxLayout, QWidget

    from skysieve.viewer._textpanel import TextPanel

    class LayoutRequests(QObject):
        def __init__(self) -> None:
            super().__init__()
            self.n = 0

        def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt API)
            self.n += event.type() == QEvent.Type.LayoutRequest
            return False

    parent = QWidget()
    qtbot.addWidget(parent)
    box = QVBoxLayout(parent)
    panel, label = TextPanel(60, rich=True), QLabel("")
    label.setWordWrap(True)
    box.addWidget(panel)
    box.addWidget(label)
    parent.resize(300, 200)
    parent.show()
    qtbot.waitExposed(parent)
    qtbot.wait(50)  # the first layout is done
    requests = LayoutRequests()
    parent.installEventFilter(requests)
    long = "<b>tank</b> · score 0.91<br>" + "inside a known idle factory; " * 12
    panel.setText(long)
    qtbot.wait(20)
    assert requests.n == 0 and panel.text() == long and panel.height() == 60
    label.setText(long)  # what the widget used before: every new text re-lays out the parent
    qtbot.wait(20)
    assert requests.n >= 1
    panel.set_alarm(True)
    assert "#f66" in panel.styleSheet()
