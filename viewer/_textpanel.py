"""A read-only text area whose text changes every review step without re-laying out napari's window."""

from __future__ import annotations

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QFrame, QSizePolicy, QTextBrowser

__all__ = ["TextPanel"]


class TextPanel(QTextBrowser):
    """Text (HTML when ``rich``) shown like a label, ``height_px`` tall.

    A ``QLabel`` asks its parent layout for a new geometry on every ``setText``; in a dock widget the
    request climbs to napari's main window, which re-lays out and repaints a large part of the window,
    and under software OpenGL every such repaint composes the whole window again. A text browser's
    size does not follow its text, so a new text repaints only the panel. Text is selectable, links
    are not followed, and a longer text scrolls.
    """

    def __init__(self, height_px: int, *, rich: bool = False, parent=None) -> None:
        super().__init__(parent)
        self._rich = rich
        self._text = ""
        self._alarm = False
        self.setReadOnly(True)
        self.setOpenLinks(False)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)  # inside the panel: no re-layout outside
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # review keys keep going to the table or the map
        self._restyle()
        self.document().setDocumentMargin(0)
        self.setFixedHeight(height_px)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)

    def setText(self, text: str) -> None:  # noqa: N802 (QLabel's API)
        """Show ``text`` (HTML if the panel is ``rich``, else plain); nothing happens when it is unchanged."""
        if text != self._text:
            self._text = text
            if self._rich:
                self.setHtml(text)
            else:
                self.setPlainText(text)

    def text(self) -> str:
        """The text last set (HTML as given), like ``QLabel.text``."""
        return self._text

    def set_alarm(self, alarm: bool) -> None:
        """Red text (an error) or the theme's colour; restyles only on a change (restyling re-polishes)."""
        if alarm != self._alarm:
            self._alarm = alarm
            self._restyle()

    def _restyle(self) -> None:
        colour = " color: #f66;" if self._alarm else ""
        self.setStyleSheet(f"QTextBrowser {{ background: transparent;{colour} }}")
