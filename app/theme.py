"""The look: Qt's Fusion style with a dark palette, and pyqtgraph settings that match it.

pyqtgraph options are global; they are set once here, before any plot exists. Antialiasing stays
off: antialiased pens wider than 1 px cost 5–30× in redraw time on these machines.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

BACKGROUND = "#1b1d21"
FOREGROUND = "#d6d6d6"


def configure_pyqtgraph() -> None:
    pg.setConfigOptions(
        background=BACKGROUND, foreground=FOREGROUND, antialias=False, imageAxisOrder="row-major"
    )


def apply_dark_theme(app: QApplication) -> None:
    configure_pyqtgraph()
    app.setStyle("Fusion")
    palette = QPalette()
    roles = {
        QPalette.ColorRole.Window: "#2a2c31",
        QPalette.ColorRole.WindowText: FOREGROUND,
        QPalette.ColorRole.Base: "#1f2125",
        QPalette.ColorRole.AlternateBase: "#282a2f",
        QPalette.ColorRole.ToolTipBase: "#34363c",
        QPalette.ColorRole.ToolTipText: "#f0f0f0",
        QPalette.ColorRole.Text: "#e6e6e6",
        QPalette.ColorRole.Button: "#33363c",
        QPalette.ColorRole.ButtonText: "#e6e6e6",
        QPalette.ColorRole.BrightText: "#ff6b6b",
        QPalette.ColorRole.Highlight: "#3d7fd9",
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Link: "#6aa9ff",
        QPalette.ColorRole.PlaceholderText: "#8a8d93",
    }
    for role, color in roles.items():
        palette.setColor(role, QColor(color))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor("#7a7d83"))
    app.setPalette(palette)
