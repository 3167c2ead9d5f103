"""The look: Qt's Fusion style with a dark or a light palette, and pyqtgraph settings that match;
and the class colours every view of a network lab draws its classes in (`CLASS_COLORS`).

pyqtgraph options are global and only reach plots created afterwards, so `apply_theme` also
restyles the plots that already exist (background, axes, titles): the switch is live. Antialiasing
stays off: antialiased pens wider than 1 px cost 5–30× in redraw time on these machines.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtGui import QBrush, QColor, QPalette, QPen
from PySide6.QtWidgets import QApplication

from app.widgets.plot_style import install_plot_defaults

THEMES = ("dark", "light")
DEFAULT_THEME = "dark"
THEME_KEY = "theme"  # QSettings key

BACKGROUND = "#1b1d21"
FOREGROUND = "#d6d6d6"

# Class colours (Tableau 10; class 0 blue, class 1 orange), the one palette of every view that
# draws a lab's classes: the data preview (app/network/data_preview.py) and the decision
# boundaries' points and background (app/network/boundaries_tab.py): one colour in all.
CLASS_COLORS = (
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1",
    "#76b7b2", "#edc948", "#ff9da7", "#9c755f", "#bab0ac",
)


def class_color(k: int) -> QColor:
    """Class ``k``'s colour, cycling past ten classes."""
    return QColor(CLASS_COLORS[int(k) % len(CLASS_COLORS)])


def class_point_style(k: int, hollow: bool) -> tuple[QPen, QBrush]:
    """(pen, brush) of a data point of class ``k``: filled (training) or a ring (validation).

    Lighter than the class colour, so points stand out on the decision boundaries' background,
    which is drawn in the same colours (darker)."""
    color = class_color(k)
    if hollow:
        return pg.mkPen(color.lighter(130), width=1), pg.mkBrush(0, 0, 0, 0)
    return pg.mkPen(20, 20, 20, 220, width=1), pg.mkBrush(color.lighter(115))


# Per theme: the plots' background and foreground, then the palette roles.
_PLOT_COLORS = {"dark": (BACKGROUND, FOREGROUND), "light": ("#ffffff", "#2b2b2b")}
_ROLES = {
    "dark": {
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
    },
    "light": {
        QPalette.ColorRole.Window: "#eff0f1",
        QPalette.ColorRole.WindowText: "#232629",
        QPalette.ColorRole.Base: "#fcfcfc",
        QPalette.ColorRole.AlternateBase: "#f1f2f3",
        QPalette.ColorRole.ToolTipBase: "#ffffe8",
        QPalette.ColorRole.ToolTipText: "#232629",
        QPalette.ColorRole.Text: "#232629",
        QPalette.ColorRole.Button: "#e3e5e7",
        QPalette.ColorRole.ButtonText: "#232629",
        QPalette.ColorRole.BrightText: "#c0392b",
        QPalette.ColorRole.Highlight: "#3d7fd9",
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Link: "#1d5fbf",
        QPalette.ColorRole.PlaceholderText: "#8a8d93",
    },
}
_DISABLED_TEXT = {"dark": "#7a7d83", "light": "#a0a3a7"}


def configure_pyqtgraph(theme: str = DEFAULT_THEME) -> None:
    background, foreground = _PLOT_COLORS[theme]
    install_plot_defaults()  # plain axis numbers, no "(x0.001)" (app/widgets/plot_style.py)
    pg.setConfigOptions(
        background=background, foreground=foreground, antialias=False, imageAxisOrder="row-major"
    )


def palette_for(theme: str) -> QPalette:
    palette = QPalette()
    for role, color in _ROLES[theme].items():
        palette.setColor(role, QColor(color))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(_DISABLED_TEXT[theme]))
    return palette


def apply_theme(app: QApplication, theme: str = DEFAULT_THEME) -> str:
    """Switch the whole application to ``theme`` (unknown names fall back to the default)."""
    theme = theme if theme in THEMES else DEFAULT_THEME
    configure_pyqtgraph(theme)
    if app.style().name().lower() != "fusion":  # setStyle re-polishes every widget
        app.setStyle("Fusion")
    app.setPalette(palette_for(theme))
    app.setProperty("descentLabTheme", theme)
    for widget in app.allWidgets():
        if isinstance(widget, pg.GraphicsView):
            restyle_plot(widget, theme)
    return theme


def current_theme(app: QApplication) -> str:
    theme = app.property("descentLabTheme")
    return theme if theme in THEMES else DEFAULT_THEME


def restyle_plot(view: pg.GraphicsView, theme: str) -> None:
    """An existing plot in the theme's colours: background, axes and their labels, the title."""
    background, foreground = _PLOT_COLORS[theme]
    view.setBackground(background)
    for item in view.scene().items():
        if isinstance(item, pg.AxisItem):
            item.setPen(foreground)
            item.setTextPen(foreground)
            if item.label is not None:
                item.label.setDefaultTextColor(QColor(foreground))
        elif isinstance(item, pg.LabelItem):
            item.setAttr("color", foreground)
            item.setText(item.text)


def apply_dark_theme(app: QApplication) -> None:
    apply_theme(app, "dark")
