"""Small layout helpers shared by the windows and dialogs (the export dialog, the tool windows)."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QWidget


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
