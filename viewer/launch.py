"""Start a review session: checks that say what is missing, then napari with the review widget."""

from __future__ import annotations

import logging
import shlex
from dataclasses import dataclass
from pathlib import Path

from skysieve.errors import SkysieveError
from skysieve.viewer._qtenv import sanitize_qt_environment
from skysieve.viewer.survey import cell_problems, choose_cell
from skysieve.workspace import Workspace

__all__ = ["ReviewPlan", "ViewerError", "plan_review", "open_review", "review_command", "start_qt"]

log = logging.getLogger(__name__)


class ViewerError(SkysieveError, RuntimeError):
    """The review window could not do what was asked (a cell that never opened, a failed window grab)."""


@dataclass(frozen=True)
class ReviewPlan:
    """What ``skysieve review`` will open, and what is missing there (readable, with the command to run)."""

    workspace: Path
    cell_id: str
    problems: tuple[str, ...]


def plan_review(workspace: str | Path | Workspace, cell_id: str | None = None) -> ReviewPlan:
    """Check a workspace before any window opens.

    Raises :class:`~skysieve.errors.WorkspaceError` for a workspace with neither mosaics nor
    detections (naming the commands that make them) and :class:`~skysieve.errors.NotFoundError`
    for an unknown cell; a cell that lacks only its mosaic or only its flags is reviewable, with
    ``problems`` saying what is missing.
    """
    ws = workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)
    ws.require_crs()
    chosen = choose_cell(ws, cell_id)
    return ReviewPlan(ws.root, chosen, tuple(cell_problems(ws, chosen)))


def review_command(workspace: str | Path, cell_id: str | None = None) -> str:
    """The command line that opens the review on ``workspace`` (for ``skysieve demo`` to print)."""
    parts = ["skysieve", "review", str(workspace)]
    if cell_id:
        parts += ["--cell", cell_id]
    return shlex.join(parts)


def start_qt():
    """napari's ``QApplication``, created after dropping the Qt paths ``cv2`` sets (the cv2 trap).

    Everything in skysieve that may be first to start Qt goes through here.
    """
    sanitize_qt_environment()
    from napari.qt import get_qapp

    return get_qapp()


def open_review(workspace: str | Path | Workspace, cell_id: str | None = None, *, reviewer: str | None = None,
                viewer=None):
    """Open (or reuse) a napari viewer with the review widget docked; returns the widget.

    Call ``napari.run()`` afterwards to hand control to the user (the CLI does).
    """
    sanitize_qt_environment()
    import napari

    from skysieve.viewer.widget import ReviewWidget

    if viewer is None:
        viewer = napari.Viewer(title="skysieve review")
    widget = ReviewWidget(viewer, workspace, cell_id=cell_id, reviewer=reviewer)
    viewer.window.add_dock_widget(widget, name="skysieve review", area="right")
    return widget
