"""Every napari (and vispy) internal that skysieve touches, in one place. Nothing else in skysieve may.

napari 0.9 has no public API for these (its QtViewer / canvas deprecation has been postponed release
after release for want of one: napari issues #4947, #6337). Each accessor returns None when the
internal is not what napari 0.9.2 / vispy 0.17 have (both pinned in pyproject), and every caller then
takes a public path that is correct, only slower or plainer. What breaks if napari removes each one:

``Window._qt_viewer.canvas`` (napari's ``VispyCanvas``), in :func:`vispy_canvas`
    The review's fast redraw (:mod:`skysieve.viewer._redraw`): the yellow frame around the current
    flag becomes a Shapes layer, a decision re-sends the whole Points layer to vispy instead of one
    vertex, and a step draws two frames instead of one. Reviewing itself keeps working (tested:
    ``test_without_napari_s_canvas_the_current_flag_is_framed_by_a_shapes_layer``).
    The tests and ``benchmarks/review_bench.py`` also send their key presses to ``canvas.native``
    (:func:`canvas_widget`), the widget an analyst's keys reach when the map has focus.
``Points._face.colors`` and ``Points._view_indices``, in :func:`points_colour_buffer` / :func:`points_view_indices`
    The colour array napari redraws from and the visible-point order: without them a decision
    recolours through ``layer.face_color`` (all points re-sent; at 10,000 flags a visibly slower step).
``MarkersVisual._data`` / ``._vbo`` (vispy), in :func:`marker_buffers`
    The vertex buffer one decided point is rewritten in; without them, as above.
``NapariQtNotification`` (``napari._qt.dialogs``), matched by class name in :func:`close_notifications`
    napari's toasts; without the match a saved window picture keeps any toast on it.

napari hands plugin widgets a ``PublicOnlyProxy`` of the viewer that warns on private attributes (and
may refuse them from 0.10); :func:`_unproxied` unwraps it (``__wrapped__``, wrapt's public attribute)
so the widget behaves the same when opened from the Plugins menu as from ``skysieve review``, and a
per-step attribute lookup does not inspect the caller's stack frame.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

__all__ = ["vispy_canvas", "canvas_widget", "points_colour_buffer", "points_view_indices", "marker_buffers",
           "close_notifications"]

log = logging.getLogger(__name__)


def _unproxied(obj: Any) -> Any:
    """The object behind napari's ``PublicOnlyProxy`` (what a plugin widget is given), else ``obj``."""
    return getattr(obj, "__wrapped__", obj)


def vispy_canvas(viewer) -> Any | None:
    """napari's ``VispyCanvas`` of ``viewer`` (``Window._qt_viewer.canvas``), or None.

    Look it up once (per cell) and pass it on.
    """
    window = getattr(_unproxied(viewer), "window", None)
    return getattr(getattr(_unproxied(window), "_qt_viewer", None), "canvas", None)


def canvas_widget(viewer) -> Any | None:
    """The Qt widget of napari's canvas (where key presses on the map arrive), or None."""
    return getattr(vispy_canvas(viewer), "native", None)


def points_colour_buffer(layer) -> np.ndarray | None:
    """The (n, 4) fill colours a Points ``layer`` is drawn from (``_face.colors``), or None.

    Changed in place, the layer reports the new colour (``layer.face_color``) without an event.
    """
    layer = _unproxied(layer)
    colours = getattr(getattr(layer, "_face", None), "colors", None)
    if isinstance(colours, np.ndarray) and colours.shape == (len(layer.data), 4):
        return colours
    return None


def points_view_indices(layer) -> np.ndarray | None:
    """Which of a Points ``layer``'s points vispy holds, in its vertex order (``_view_indices``), or None."""
    view = getattr(_unproxied(layer), "_view_indices", None)
    return None if view is None else np.asarray(view)


def marker_buffers(canvas, layer) -> tuple[Any, np.ndarray, Any] | None:
    """``(markers, vertices, vbo)`` of a Points ``layer`` on napari's ``canvas``, or None.

    ``markers`` is the vispy ``MarkersVisual`` (``markers.update()`` asks for a redraw), ``vertices``
    its structured vertex array (fields ``a_position``, ``a_bg_color``, ...) and ``vbo`` the GPU
    buffer it was uploaded to (``vbo.set_subdata`` rewrites part of it).
    """
    visual = getattr(canvas, "layer_to_visual", {}).get(_unproxied(layer))
    markers = getattr(getattr(visual, "node", None), "points_markers", None)
    data, vbo = getattr(markers, "_data", None), getattr(markers, "_vbo", None)
    if data is None or vbo is None or not data.dtype.names or "a_bg_color" not in data.dtype.names:
        return None
    return markers, data, vbo


def close_notifications(viewer) -> int:
    """Close napari's toast notifications shown in ``viewer``'s window; returns how many were closed.

    The window is found through public Qt (the top-level window of a docked widget); the toasts by
    their napari class name, without importing napari's private Qt modules.
    """
    from qtpy.QtWidgets import QDialog

    docked = list(_unproxied(viewer).window.dock_widgets.values())
    if not docked:
        return 0
    inner = docked[0]
    window = getattr(inner, "native", inner).window()
    toasts = [d for d in window.findChildren(QDialog)
              if type(d).__name__ == "NapariQtNotification" and d.isVisible()]
    for toast in toasts:
        toast.close()
    return len(toasts)
