"""The review keys: one table drives the viewer bindings, the widget shortcuts and the help line."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ReviewKey", "REVIEW_KEYS", "CATEGORY_KEYS", "help_line"]


@dataclass(frozen=True)
class ReviewKey:
    """``napari`` is napari's key spec (``viewer.bind_key``), ``qt`` the QKeySequence string."""

    napari: str
    qt: str
    action: str  # name of the ReviewWidget method it calls
    label: str  # for the help line


REVIEW_KEYS: tuple[ReviewKey, ...] = (
    ReviewKey("c", "C", "confirm", "C confirm"),
    ReviewKey("x", "X", "reject", "X reject"),
    ReviewKey("u", "U", "unsure", "U unsure"),
    ReviewKey("n", "N", "next", "N/→ next"),
    ReviewKey("Right", "Right", "next", ""),
    ReviewKey("p", "P", "previous", "P/← previous"),
    ReviewKey("Left", "Left", "previous", ""),
    ReviewKey("Control-z", "Ctrl+Z", "undo", "Ctrl+Z undo"),
    ReviewKey("e", "E", "edit_note", "E note"),
)

#: digit keys choose the suspect category (the campaign's six kinds, in work-plan order)
CATEGORY_KEYS: tuple[str, ...] = ("1", "2", "3", "4", "5", "6")


def help_line() -> str:
    """One line listing the keys, shown under the queue."""
    labels = [k.label for k in REVIEW_KEYS if k.label]
    return "  ·  ".join([*labels, "1-6 category", "double-click a box to select it"])
