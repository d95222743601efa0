"""The review widget driven as an analyst would, in a real napari viewer under Xvfb.

Each test checks the workspace (the GeoPackage) afterwards, not just the widget.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from qtpy.QtCore import Qt

from skysieve import ledger
from skysieve.viewer import layers as L
from skysieve.viewer._napari_internals import canvas_widget
from skysieve.viewer.widget import ReviewWidget

pytestmark = pytest.mark.gui


def open_widget(make_napari_viewer, qtbot, ws, reviewer: str = "alice", **kwargs) -> ReviewWidget:
    viewer = make_napari_viewer()
    widget = ReviewWidget(viewer, reviewer=reviewer)
    viewer.window.add_dock_widget(widget, name="skysieve review")
    with qtbot.waitSignal(widget.cellOpened, timeout=15_000):
        widget.open_workspace(ws, kwargs.get("cell_id"))
    return widget


def _canvas(widget: ReviewWidget):
    canvas = canvas_widget(widget.viewer)  # where an analyst's keys land when the map has focus
    assert canvas is not None, "napari 0.9's canvas widget is gone: see skysieve.viewer._napari_internals"
    return canvas


def _db(ws, det_id: str) -> dict:
    return ledger.get_detection(ws, det_id)


def test_open_cell_shows_mosaic_outlines_flags_and_the_first_flag(make_napari_viewer, qtbot, review_ws):
    widget = open_widget(make_napari_viewer, qtbot, review_ws)
    viewer = widget.viewer
    names = [layer.name for layer in viewer.layers]
    assert names[0].startswith("mosaic ") and {L.CELLS_LAYER, L.SITES_LAYER, L.BOXES_LAYER,
                                                L.DETECTIONS_LAYER} <= set(names)
    assert len(viewer.layers[L.BOXES_LAYER].data) == 4 * 40  # every box's outline
    mosaic = viewer.layers[names[0]]
    assert mosaic.multiscale and len(mosaic.data) >= 2  # full resolution + the COG's overview
    assert type(mosaic.data[0]).__name__ == "CogLevel"  # lazy: windows are read on demand
    points = viewer.layers[L.DETECTIONS_LAYER]
    assert len(points.data) == 40 and set(points.symbol) == {points.symbol[0]}
    priorities = [r["priority"] for r in widget.queue.rows]
    assert priorities == sorted(priorities, reverse=True)
    first = widget.queue.current
    assert first["det_id"] == widget.queue.rows[0]["det_id"]
    html = widget.details.text()
    assert first["class"] in html and "WGS 84" in html and f"{first['lat']:.6f}" in html
    assert widget.chip.pixmap() is not None and not widget.chip.pixmap().isNull()
    # the camera is on the flag, the current-box layer outlines it
    centre = widget.frame.to_world(first["x"], first["y"])[0]
    assert np.allclose(viewer.scene.camera.center[-2:], centre, atol=1e-6)
    assert widget._flag_frame.visible  # noqa: SLF001 (the yellow square around the current flag)
    assert "C confirm" in widget.help.text() and "Ctrl+Z undo" in widget.help.text()
    assert widget.buttons["next"].toolTip().endswith("[N or Right]")  # every button says its keys
    assert all("[" in b.toolTip() for b in widget.buttons.values())
    shot = viewer.screenshot(canvas_only=True, flash=False)
    assert shot.std() > 5  # the mosaic really renders
    # double-clicking a box on the map makes it current
    third = widget.queue.rows[2]
    click = SimpleNamespace(position=tuple(widget.frame.to_world(third["x"], third["y"])[0]))
    viewer.mouse_double_click_callbacks[-1](viewer, click)
    assert widget.queue.current["det_id"] == third["det_id"]


def test_keys_on_the_canvas_decide_advance_and_undo(make_napari_viewer, qtbot, review_ws):
    widget = open_widget(make_napari_viewer, qtbot, review_ws, reviewer="alice")
    canvas = _canvas(widget)
    ids = [r["det_id"] for r in widget.queue.rows[:4]]
    qtbot.keyClick(canvas, Qt.Key.Key_C)
    qtbot.keyClick(canvas, Qt.Key.Key_X)
    qtbot.keyClick(canvas, Qt.Key.Key_U)
    got = [_db(review_ws, i) for i in ids[:3]]
    assert [g["review_status"] for g in got] == ["confirmed", "rejected", "unsure"]
    assert all(g["reviewed_by"] == "alice" and g["reviewed_at"] for g in got)
    assert widget.queue.current["det_id"] == ids[3]  # advanced past each decision
    # the map shows the status: the confirmed point is filled green
    points = widget.viewer.layers[L.DETECTIONS_LAYER]
    assert np.allclose(points.face_color[widget._point_index[ids[0]]], L.STATUS_FILL["confirmed"])  # noqa: SLF001
    # next / previous
    qtbot.keyClick(canvas, Qt.Key.Key_N)
    assert widget.queue.current["det_id"] == widget.queue.rows[4]["det_id"]
    qtbot.keyClick(canvas, Qt.Key.Key_P)
    qtbot.keyClick(canvas, Qt.Key.Key_Left)
    assert widget.queue.current["det_id"] == ids[2]
    # undo the last decision: back on that flag, pending again
    qtbot.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert _db(review_ws, ids[2])["review_status"] == "pending"
    assert widget.queue.current["det_id"] == ids[2]
    assert widget.queue.rows[2]["review_status"] == "pending"
    trail = ledger.audit_trail(review_ws, "detection")
    assert [(t["ref"], t["action"], t["who"]) for t in trail if t["action"] in ("decide", "undo")] == [
        (ids[0], "decide", "alice"), (ids[1], "decide", "alice"), (ids[2], "decide", "alice"),
        (ids[2], "undo", "alice")]


def test_keys_in_the_widget_note_and_category(make_napari_viewer, qtbot, review_ws):
    widget = open_widget(make_napari_viewer, qtbot, review_ws, reviewer="bob")
    det = widget.queue.current["det_id"]
    widget.table.setFocus()
    qtbot.keyClick(widget.table, Qt.Key.Key_3)  # category (三) unlicensed workshop
    assert _db(review_ws, det)["category"] == ledger.SUSPECT_CATEGORIES[2].code
    qtbot.keyClick(widget.table, Qt.Key.Key_E)  # edit the note
    assert widget.note_edit.hasFocus() or widget.note_edit.selectedText() == ""
    widget.note_edit.clear()
    qtbot.keyClicks(widget.note_edit, "blue drums by the back wall")
    qtbot.keyClick(widget.note_edit, Qt.Key.Key_Return)
    assert _db(review_ws, det)["note"] == "blue drums by the back wall"
    qtbot.keyClick(widget.table, Qt.Key.Key_C)  # confirm, from the widget's own shortcut
    row = _db(review_ws, det)
    assert (row["review_status"], row["reviewed_by"], row["category"]) == (
        "confirmed", "bob", ledger.SUSPECT_CATEGORIES[2].code)
    # a key with a modifier through the widget's own shortcuts (PyQt6 gives modifiers as enum.Flag)
    qtbot.keyClick(widget.table, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert _db(review_ws, det)["review_status"] == "pending"
    assert widget.queue.current["det_id"] == det


def test_push_confirmed_makes_one_suspect_per_site_and_locks_review(make_napari_viewer, qtbot, review_ws):
    widget = open_widget(make_napari_viewer, qtbot, review_ws, reviewer="alice")
    in_site, later = [r["det_id"] for r in widget.queue.rows if r["site_id"] == "S001"][:3], \
        [r["det_id"] for r in widget.queue.rows if r["site_id"] == "S001"][3]
    for det in in_site:
        assert widget.select_detection(det)
        widget.confirm()
    with qtbot.waitSignal(widget.pushed, timeout=20_000) as blocker:
        qtbot.mouseClick(widget.push_button, Qt.MouseButton.LeftButton)
    result = blocker.args[0]
    assert len(result.created) == 1 and not result.extended
    suspect = result.created[0]
    assert {_db(review_ws, d)["suspect_id"] for d in in_site} == {suspect}
    assert "new suspects" in widget.message.text()
    assert all(widget.queue.rows[widget.queue.position(d)]["suspect_id"] == suspect for d in in_site)
    # a pushed flag's review is closed: the ledger refuses, the widget says why and keeps going
    widget.select_detection(in_site[0])
    assert widget.reject() is False
    assert _db(review_ws, in_site[0])["review_status"] == "confirmed"
    assert "suspect" in widget.message.text()
    # a flag confirmed later at the same place joins that suspect instead of making a new one
    widget.select_detection(later)
    widget.confirm()
    with qtbot.waitSignal(widget.pushed, timeout=20_000) as blocker:
        widget.push_to_suspects()
    assert blocker.args[0].extended == [suspect] and not blocker.args[0].created
    assert _db(review_ws, later)["suspect_id"] == suspect


@pytest.mark.slow
def test_filters_and_neighbouring_cells(make_napari_viewer, qtbot, review_ws):
    widget = open_widget(make_napari_viewer, qtbot, review_ws)
    widget.class_combo.setCurrentText("tank")
    with qtbot.waitSignal(widget.queueLoaded, timeout=10_000):
        widget.apply_filter()
    assert widget.queue.rows and {r["class"] for r in widget.queue.rows} == {"tank"}
    assert len(widget.viewer.layers[L.DETECTIONS_LAYER].data) == 40  # the map still shows every flag
    widget.class_combo.setCurrentText("any")
    widget.site_combo.setCurrentText("S001")
    with qtbot.waitSignal(widget.queueLoaded, timeout=10_000):
        widget.apply_filter()
    assert {r["site_id"] for r in widget.queue.rows} == {"S001"}
    # east neighbour: flags but no mosaic -> opens, and says which command makes the mosaic
    with qtbot.waitSignal(widget.cellOpened, timeout=10_000):
        qtbot.mouseClick(widget.neighbour_buttons["east"], Qt.MouseButton.LeftButton)
    assert widget.cell_id.startswith("E500250")
    assert len(widget.queue) == 5 and widget.site_combo.currentText() == "any"  # S001's filter did not follow
    assert "no mosaic" in widget.message.text() and "skysieve mosaic" in widget.message.text()
    names = [layer.name for layer in widget.viewer.layers]
    assert f"mosaic {widget.cell_id}" not in names
    assert "mosaic E500000N3300000 (neighbour)" in names  # the west neighbour's mosaic gives context


def test_two_analysts_lose_no_decision(make_napari_viewer, qtbot, review_ws):
    alice = open_widget(make_napari_viewer, qtbot, review_ws, reviewer="alice")
    first, second = (r["det_id"] for r in alice.queue.rows[:2])
    alice.confirm()
    # bob, in another process, decides the flag alice is looking at now
    ledger.decide(review_ws, second, "rejected", "bob")
    assert alice.refresh_statuses() >= 1
    assert alice.queue.rows[1]["review_status"] == "rejected" and "bob" in alice.details.text()
    # alice's undo reverts alice's decision, never bob's
    assert alice.undo()
    assert _db(review_ws, first)["review_status"] == "pending"
    assert _db(review_ws, second)["review_status"] == "rejected"
    assert alice.undo() is False and "no decision left" in alice.message.text()


@pytest.mark.slow
def test_plugin_reader_and_widget_from_the_plugins_menu(make_napari_viewer, qtbot, review_ws):
    from skysieve.viewer.reader import napari_get_reader

    assert napari_get_reader(str(review_ws.root / "flights")) is None
    reader = napari_get_reader(str(review_ws.root / "survey.gpkg"))
    assert reader is not None
    viewer = make_napari_viewer()
    for data, kwargs, kind in reader(str(review_ws.root)):
        getattr(viewer, f"add_{kind}")(data, **kwargs)
    assert {L.DETECTIONS_LAYER, L.BOXES_LAYER, L.CELLS_LAYER} <= {layer.name for layer in viewer.layers}
    assert len(viewer.layers[L.DETECTIONS_LAYER].data) == 45  # both cells' flags
    # the widget found through the Plugins menu picks the workspace up from the layers
    _dock, widget = viewer.window.add_plugin_dock_widget("skysieve", "Review flags")
    qtbot.waitUntil(lambda: widget.cell_id is not None and not widget.busy, timeout=15_000)
    assert widget.ws.root == review_ws.root
    assert [layer.name for layer in viewer.layers].count(L.DETECTIONS_LAYER) == 1  # replaced, not doubled


def test_toasts_are_closed_before_a_window_picture(make_napari_viewer, qtbot):
    from napari.utils.notifications import show_warning
    from qtpy.QtWidgets import QLabel

    from skysieve.viewer._napari_internals import close_notifications

    viewer = make_napari_viewer(show=True)
    viewer.window.add_dock_widget(QLabel("docked"), name="docked")
    qtbot.wait(50)
    close_notifications(viewer)  # any toast napari raised itself
    show_warning("a toast over the map")
    qtbot.wait(50)
    assert close_notifications(viewer) == 1  # found through public Qt, by napari's class name
    assert close_notifications(viewer) == 0
