"""The review keys: one table drives the viewer bindings, the widget shortcuts and the help line."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ReviewKey", "REVIEW_KEYS", "CATEGORY_KEYS", "ACTION_HELP", "help_line", "keys_for", "tooltip"]


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


#: what each review action does, for tooltips
ACTION_HELP: dict[str, str] = {
    "confirm": "Confirm the current flag (a suspect to check on the ground) and go to the next undecided one",
    "reject": "Reject the current flag (not a workshop) and go to the next undecided one",
    "unsure": "Mark the current flag unsure (look again later) and go to the next undecided one",
    "next": "Go to the next flag in the queue without deciding",
    "previous": "Go back to the previous flag in the queue",
    "undo": "Undo your last decision still in effect and go back to that flag",
    "edit_note": "Write a note for the field team on the current flag (Enter saves)",
}


def keys_for(action: str) -> list[str]:
    """The keys bound to a review action, as Qt writes them (``["N", "Right"]`` for next)."""
    return [k.qt for k in REVIEW_KEYS if k.action == action]


def tooltip(action: str) -> str:
    """Tooltip text: what the action does and its keys."""
    return f"{ACTION_HELP[action]}  [{' or '.join(keys_for(action))}]"


def help_line() -> str:
    """One line listing the keys, shown under the queue."""
    labels = [k.label for k in REVIEW_KEYS if k.label]
    return "  ·  ".join([*labels, "1-6 category", "double-click a box to select it"])
