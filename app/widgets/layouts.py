"""Small layout helpers shared by the windows and dialogs (the export dialog, the tool windows),
and the scroll area of a dock's column (`ColumnScrollArea`: the run editor, the left dock's pages,
the lesson text)."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QScrollArea, QWidget


def hbox(*parts: QWidget | str | tuple[QWidget, int]) -> QHBoxLayout:
    """Widgets side by side: a str becomes a plain label, ``(widget, stretch)`` stretches."""
    row = QHBoxLayout()
    for part in parts:
        if isinstance(part, str):
            row.addWidget(QLabel(part))
        elif isinstance(part, tuple):
            row.addWidget(*part)
        else:
            row.addWidget(part)
    return row


class ColumnScrollArea(QScrollArea):
    """A scroll area for a column of a dock: it scrolls up and down, never sideways, and asks
    its dock for the width its contents need (a plain QScrollArea asks for ~70 px, so a dock
    narrower than its form cut the form's right edge off, e.g. the run editor's Check button).
    """

    def __init__(self, parent: QWidget | None = None, object_name: str = ""):
        super().__init__(parent)
        if object_name:
            self.setObjectName(object_name)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        hint = super().minimumSizeHint()
        inner = self.widget()
        if inner is None:
            return hint
        needed = inner.minimumSizeHint().expandedTo(inner.minimumSize()).width()
        margins = self.contentsMargins()
        width = (needed + self.verticalScrollBar().sizeHint().width()
                 + margins.left() + margins.right())
        return QSize(max(hint.width(), width), hint.height())
