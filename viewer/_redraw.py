"""Redraw only what a review step changed: one point's colour, and the mosaic tiles for the new view.

A decide-and-advance step changes one flag's fill colour and moves the camera. Through napari's public
API that costs more than it needs to, measured here with 10,000 flags under Xvfb (software OpenGL):

- recolouring one point (``layer.events.face_color``) re-sends every point to vispy: 10,000 positions,
  sizes, colours and symbols (``str()`` of each), then a full upload of the vertex buffer;
- napari's layer list re-emits every event of every layer (a refreshed tile, a moved marker) as a
  change of that layer's row; the list view answers each with a delayed re-layout, and each of those
  made Qt compose the whole window again (three compositions per step, at 1600x1000 the dearest part
  of a step in software OpenGL). Nothing a step changes shows in the layer list;
- moving a marker layer (a one-point Points layer) changes its extent, and napari re-validates the
  viewer's dimensions on every extent change (pydantic; ~60 % of the marker's cost);
- a camera move draws a frame with the old mosaic tiles; napari picks the new tiles *inside* that draw
  (``VispyCanvas.on_draw`` -> ``layer._update_draw``) and schedules a second frame to show them. Every
  step drew two frames, the first one stale.

The functions here do the same work napari would, restricted to what changed, through napari's private
vispy objects (all reached through :mod:`skysieve.viewer._napari_internals`, which says what breaks
without each); when those are not what this napari version is known to have, they fall back to the
public path (correct, only slower). Tested against napari 0.9.2 / vispy 0.17.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np

from skysieve.viewer._napari_internals import (
    marker_buffers,
    points_colour_buffer,
    points_view_indices,
    vispy_canvas,
)

__all__ = ["vispy_canvas", "recolour_point", "settle_multiscale", "quiet_layer_list", "FlagFrame", "ShapesFrame"]

log = logging.getLogger(__name__)


def recolour_point(canvas, layer, index: int, rgba: Sequence[float]) -> bool:
    """Set the fill of point ``index`` of a 2D Points ``layer`` to ``rgba`` (0-1); redraw only that point.

    The layer's own colour array is changed in place (what napari redraws from on its next full
    refresh) and the one matching vertex is rewritten in vispy's buffer. Returns False when the
    public path was used instead (the whole layer re-sent once).
    """
    colours = points_colour_buffer(layer)
    if colours is None:
        all_colours = np.array(layer.face_color)
        all_colours[index] = rgba
        layer.face_color = all_colours
        return False
    colours[index] = rgba
    buffers = marker_buffers(canvas, layer) if canvas is not None else None
    view = points_view_indices(layer)
    if buffers is not None and view is not None:
        markers, data, vbo = buffers
        if len(data) == len(view) == len(colours) and 0 <= index < len(view) and view[index] == index:
            data["a_bg_color"][index] = rgba
            vbo.set_subdata(data[index:index + 1], offset=index)
            markers.update()
            return True
    layer.events.face_color()  # napari re-sends the layer once
    return False


def settle_multiscale(canvas) -> None:
    """Let napari choose the multiscale levels and tiles for the camera *now*, before the next frame.

    Runs the per-layer update napari runs at the start of every draw, so the frame after a camera move
    already has the right mosaic tiles (read from the block cache the prefetcher filled) and no second
    frame is needed. Without napari's canvas (headless) this does nothing: the draw does it.
    """
    on_draw = getattr(canvas, "on_draw", None)
    if on_draw is None:
        return
    try:
        on_draw(None)
    except Exception:  # an optimisation: the draw itself does the same update
        log.debug("could not update the multiscale tiles before the draw", exc_info=True)


@contextmanager
def quiet_layer_list(viewer) -> Iterator[None]:
    """Within the block, layers' events do not reach napari's layer list (its rows are not re-laid out).

    Only the list's catch-all re-emission is blocked: the layers' own events, which vispy draws from,
    still fire. Use it around changes that do not alter what the layer list shows (name, visibility,
    order; a thumbnail only in trivial ways).
    """
    group = getattr(getattr(viewer, "layers", None), "events", None)
    blocker = getattr(group, "blocker", None)
    if blocker is None:
        yield
        return
    with blocker():
        yield


class FlagFrame:
    """The square drawn around the current flag: a vispy line in napari's scene, not a napari layer.

    Moving it re-sends five vertices; nothing in napari hears of it (no extent, dims or layer-list
    update). Its width is in screen pixels, so it reads the same at every zoom. Coordinates are
    napari world ``(row, col)``; napari's 2D scene is world ``(col, row)``.
    """

    ORDER = 10**6  # drawn after every layer (napari orders layers 0..n)

    def __init__(self, canvas, colour: str = "yellow", width_px: float = 3.0) -> None:
        from vispy.color import Color
        from vispy.scene.visuals import Line

        # RGBA, not the name: vispy's agg line re-reads its colour on every draw, and a name is first looked
        # up as a colormap (matplotlib's, whose miss builds a did-you-mean message: ~2 ms a frame)
        self.rgba = tuple(float(v) for v in Color(colour).rgba)
        self._line = Line(pos=np.zeros((5, 2), np.float32), color=self.rgba, width=width_px, method="agg",
                          parent=canvas.view.scene)
        self._line.order = self.ORDER
        self._line.set_gl_state("translucent", depth_test=False)
        self._line.visible = False
        self.corners_rc: np.ndarray | None = None  # ((row0, col0), (row1, col1)) last shown

    @classmethod
    def create(cls, canvas) -> FlagFrame | None:
        """A frame on napari's vispy ``canvas``, or None (with a log line) when that canvas is not as expected."""
        try:
            return cls(canvas)
        except Exception:
            log.warning("no frame around the current flag: napari's canvas is not what this version expects",
                        exc_info=True)
            return None

    @property
    def visible(self) -> bool:
        return bool(self._line.visible)

    def show(self, top_left_rc: Sequence[float], bottom_right_rc: Sequence[float]) -> None:
        """Frame the world rectangle between two corners (rows grow southwards)."""
        (r0, c0), (r1, c1) = top_left_rc, bottom_right_rc
        self.corners_rc = np.array([[r0, c0], [r1, c1]], float)
        pos = np.array([[c0, r0], [c1, r0], [c1, r1], [c0, r1], [c0, r0]], np.float32)
        self._line.set_data(pos=pos)
        self._line.visible = True

    def hide(self) -> None:
        self._line.visible = False

    def remove(self) -> None:
        """Take the frame off the canvas for good."""
        self._line.parent = None


class ShapesFrame:
    """The same frame through napari's public API (a one-rectangle Shapes layer): slower to move (napari
    re-triangulates and updates the layer list), used when :class:`FlagFrame` cannot reach the canvas."""

    NAME = "current flag"

    def __init__(self, viewer, colour: str = "yellow", width: float = 3.0) -> None:
        self._viewer = viewer
        self._layer = viewer.add_shapes([np.zeros((4, 2))], shape_type="rectangle", edge_color=colour,
                                        face_color="transparent", edge_width=width, name=self.NAME, visible=False)
        self._layer.editable = False
        self.corners_rc: np.ndarray | None = None

    @property
    def visible(self) -> bool:
        return bool(self._layer.visible)

    def show(self, top_left_rc: Sequence[float], bottom_right_rc: Sequence[float]) -> None:
        (r0, c0), (r1, c1) = top_left_rc, bottom_right_rc
        self.corners_rc = np.array([[r0, c0], [r1, c1]], float)
        self._layer.data = [np.array([[r0, c0], [r0, c1], [r1, c1], [r1, c0]], float)]
        self._layer.visible = True

    def hide(self) -> None:
        self._layer.visible = False

    def remove(self) -> None:
        if self._layer in self._viewer.layers:
            self._viewer.layers.remove(self._layer)
