"""View ▸ Theme ▸ Dark / Light: the theme switched live and remembered in QSettings.

The themes themselves (palettes, pyqtgraph settings, restyling live plots) are in app/shell/theme.py.
"""

from __future__ import annotations

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QApplication

from app.shell.menus import view_menu
from app.shell.race_edits import recolor_curves
from app.shell.theme import THEME_KEY, THEMES, apply_theme, current_theme


class ThemeMenu(QObject):
    """One window's theme actions; applies the theme the user chose last time."""

    def __init__(self, window):
        super().__init__(window)
        self.settings = window.settings
        self.window = window
        self.group = QActionGroup(window)
        self.actions: dict[str, QAction] = {}
        for name in THEMES:
            action = QAction(name.capitalize(), window, checkable=True)
            action.setToolTip(f"Switch to the {name} theme (remembered)")
            action.triggered.connect(lambda _=False, n=name: self.set_theme(n))
            self.group.addAction(action)
            self.actions[name] = action
        themes = view_menu(window).addMenu("&Theme")
        for action in self.actions.values():
            themes.addAction(action)

    def apply_stored(self) -> None:
        """Apply the theme stored in QSettings, if the user chose one, and tick the current one."""
        # Only a theme the user chose is applied here; otherwise the app keeps the one
        # `launch` set (so building a window never restyles the whole application).
        stored = self.settings.value(THEME_KEY)
        if stored in THEMES and stored != self.theme:
            self.set_theme(str(stored), remember=False)
        self.actions[self.theme].setChecked(True)

    def set_theme(self, name: str, remember: bool = True) -> None:
        app = QApplication.instance()
        name = apply_theme(app, name)
        self.actions[name].setChecked(True)
        recolor_curves(self.window.race_wiring)  # run colours per theme (app/shell/run_palette.py)
        if remember:
            self.settings.setValue(THEME_KEY, name)

    @property
    def theme(self) -> str:
        return current_theme(QApplication.instance())
