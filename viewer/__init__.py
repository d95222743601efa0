"""The napari side of skysieve: the review widget, the workspace reader (npe2 manifest ``napari.yaml``).

``skysieve review WORKSPACE`` (or :func:`open_review`) opens a cell's mosaic with its flags and the
review widget; the widget only calls :mod:`skysieve.ledger` services. Importing this package drops
the Qt plugin paths that ``cv2`` sets (see :mod:`skysieve.viewer._qtenv`) and nothing heavier:
napari reads the manifest through it, and the names below load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from skysieve.viewer._qtenv import sanitize_qt_environment

__all__ = ["open_review", "plan_review", "review_command", "ReviewPlan", "sanitize_qt_environment",
           "start_qt"]

_LAZY = {"open_review": "launch", "plan_review": "launch", "review_command": "launch", "ReviewPlan": "launch",
         "start_qt": "launch"}

sanitize_qt_environment()


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"skysieve.viewer.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'skysieve.viewer' has no attribute {name!r}")
