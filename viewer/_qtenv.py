"""Keep Qt from loading the wrong plugins: the cv2 trap.

``opencv-python`` (pulled in by ultralytics) ships its own Qt and, when ``cv2`` is imported, points
``QT_QPA_PLATFORM_PLUGIN_PATH`` and ``QT_QPA_FONTDIR`` at its private copies. A napari
application (PyQt6; PyQt5 before) started afterwards then loads cv2's xcb plugin and aborts with "Could
not load the Qt platform plugin xcb". Qt reads these variables once, when the ``QApplication`` is built, so
dropping them any time before that is enough.
"""

from __future__ import annotations

import logging
import os

__all__ = ["sanitize_qt_environment", "FOREIGN_QT_VARIABLES"]

log = logging.getLogger(__name__)

#: environment variables that cv2 sets and that must not reach napari's Qt
FOREIGN_QT_VARIABLES = ("QT_QPA_PLATFORM_PLUGIN_PATH", "QT_QPA_FONTDIR")


def sanitize_qt_environment() -> list[str]:
    """Drop the Qt plugin and font paths that point into ``cv2``; return the names removed.

    Only values inside a ``cv2`` folder are removed, so a deliberate setting by the user survives.
    """
    removed = []
    for name in FOREIGN_QT_VARIABLES:
        value = os.environ.get(name)
        if value is not None and "cv2" in value.replace("\\", "/").split("/"):
            del os.environ[name]
            removed.append(name)
    if removed:
        log.debug("dropped %s (set by cv2) before starting Qt", ", ".join(removed))
    return removed
