"""The napari side of skysieve: the review widget, the workspace reader (npe2 manifest ``napari.yaml``).

``skysieve review WORKSPACE`` (or :func:`open_review`) opens a cell's mosaic with its flags and the
review widget; the widget only calls :mod:`skysieve.ledger` services. Importing this package drops
the Qt plugin paths that ``cv2`` sets (see :mod:`skysieve.viewer._qtenv`), so napari starts even
after ultralytics/OpenCV were imported; napari itself is imported only when a viewer is made.
"""

from skysieve.viewer._qtenv import sanitize_qt_environment
from skysieve.viewer.launch import ReviewPlan, open_review, plan_review, review_command, start_qt

__all__ = ["open_review", "plan_review", "review_command", "ReviewPlan", "sanitize_qt_environment",
           "start_qt"]

sanitize_qt_environment()
