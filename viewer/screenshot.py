"""Pictures of a review session (for the README and reports): the whole window, widget included."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["wait_until_open", "save_window"]

log = logging.getLogger(__name__)


def wait_until_open(widget, timeout_s: float = 60.0) -> bool:
    """Run Qt's event loop until the widget has opened its cell and no worker runs; False on timeout."""
    from qtpy.QtWidgets import QApplication

    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        QApplication.processEvents()
        if widget.cell_id is not None and not widget.busy:
            return True
        time.sleep(0.01)
    return False


def save_window(viewer, path: str | Path, size_wh: tuple[int, int] = (1600, 1000)) -> Path:
    """Save the napari window (canvas, layer list and the docked review widget) as a PNG."""
    from qtpy.QtWidgets import QApplication

    from skysieve.atomic import atomic_path
    from skysieve.viewer._napari_internals import close_notifications

    viewer.window.resize(*size_wh)
    close_notifications(viewer)  # napari's toasts would sit on the picture
    for _ in range(20):
        QApplication.processEvents()
        time.sleep(0.02)
    image = None
    for _ in range(3):  # a grab on a loaded X server can come back empty; the next one works
        try:
            image = viewer.screenshot(canvas_only=False, flash=False)
            break
        except AttributeError:
            QApplication.processEvents()
            time.sleep(0.2)
    if image is None:
        from skysieve.viewer.launch import ViewerError

        raise ViewerError("could not grab the napari window", path=path, hint="run it again")
    path = Path(path)
    with atomic_path(path) as tmp:
        Image.fromarray(np.asarray(image)).save(tmp, format="PNG")
    log.info("saved %s (%d x %d px)", path, image.shape[1], image.shape[0])
    return path
