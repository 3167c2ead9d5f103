"""A status-bar label that elides a long message to fit and keeps the whole text in its tooltip.

A divergence's forensics can be a few hundred characters; cut at the window's edge the reader loses
the end of the sentence without knowing it. `ElidedLabel` shows "…" where it cuts (re-eliding when
the bar is resized) and carries the full message in its tooltip, so nothing is lost. ``text()``
returns the full message, so callers and tests read what was said, not what fitted.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

# Shown when the bar is empty, so the label always explains itself on hover.
IDLE_TOOLTIP = "Messages about the race; hover a cut message to read all of it"


class ElidedLabel(QLabel):
    """A one-line QLabel whose text is elided on the right to the label's width."""

    def __init__(self, text: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self._full_text = ""
        # Ignored width: a long message must never widen the window; it is elided instead.
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt's name
        self._full_text = text
        self.setToolTip(text if text else IDLE_TOOLTIP)
        self._elide()

    def text(self) -> str:
        """The full message, however much of it fits."""
        return self._full_text

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        # One line: newlines in a message would otherwise make the status bar grow.
        line = " ".join(self._full_text.split("\n"))
        margins = self.contentsMargins()
        width = self.width() - margins.left() - margins.right() - 2 * self.margin()
        shown = self.fontMetrics().elidedText(line, Qt.TextElideMode.ElideRight, max(width, 0))
        super().setText(shown)
