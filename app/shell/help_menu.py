"""The Help menu: Getting started (the start page, app/shell/start_page.py), Keyboard shortcuts,
What's This? (app/shell/plot_help.py gives every plot its paragraph), About.

`ShortcutsDialog` is generated from the window's actual actions each time it opens (an action
added by any part of the window, with a shortcut, is listed with the menu it sits in), so the
list cannot drift from the keys that work. `about_text` names the versions a bug report needs:
the app, Python, PyTorch, Qt / PySide6, pyqtgraph, and the device the races can use.
"""

from __future__ import annotations

import platform
import sys

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QMenu,
    QMessageBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWhatsThis,
)

from app.shell.plot_help import install_plot_help

OTHER = "Elsewhere in the window"


def build_help_menu(window, menu: QMenu, make_action) -> None:
    """Fill Help, and give the window's plots their "What is this plot?" (again after each lab
    change: a network lab builds its views on first use). ``make_action`` is app/shell/menus.py's
    (passed in: menus imports this module)."""
    from app.shell.start_page import LessonProgress, show_start_page

    window.lesson_progress = LessonProgress(window)  # the start page's ✓ / ◐ per lesson
    window.getting_started_action = make_action(
        window, "&Getting started", lambda: show_start_page(window), "F1",
        "The start page: play a race, compare optimizers on a network, lessons, open a lab")
    window.shortcuts_action = make_action(
        window, "&Keyboard shortcuts", lambda: show_shortcuts(window), "Ctrl+/",
        "Every keyboard shortcut of the window")
    whats_this = QWhatsThis.createAction(window)
    whats_this.setText("What's &This? (click a plot)")
    whats_this.setShortcut(QKeySequence("Shift+F1"))
    window.whats_this_action = whats_this
    window.about_action = make_action(window, "&About Descent Lab", lambda: show_about(window))
    for action in (window.getting_started_action, window.shortcuts_action, whats_this):
        menu.addAction(action)
    menu.addSeparator()
    menu.addAction(window.about_action)
    install_plot_help(window)
    # Deferred: this connection is made before the views' own, which build a network lab's
    # plots; by the next turn of the event loop they exist.
    window.document.lab_changed.connect(
        lambda *_: QTimer.singleShot(0, window, lambda: install_plot_help(window)))


# -- keyboard shortcuts -------------------------------------------------------------------------


def _menu_paths(window) -> dict[QAction, str]:
    """Each action of the menu bar with its menu path ("Race", "File ▸ Open Recent")."""
    paths: dict[QAction, str] = {}

    def walk(menu: QMenu, path: str) -> None:
        for action in menu.actions():
            if action.menu() is not None:
                walk(action.menu(), f"{path} ▸ {action.menu().title().replace('&', '')}")
            elif not action.isSeparator():
                paths.setdefault(action, path)

    for top in window.menuBar().actions():
        if top.menu() is not None:
            walk(top.menu(), top.menu().title().replace("&", ""))
    return paths


def shortcut_rows(window) -> list[tuple[str, str, str]]:
    """(action, keys, where) for every action of the window that has a shortcut, in menu order."""
    paths = _menu_paths(window)
    actions = list(paths)
    for action in [*window.actions(), *window.findChildren(QAction)]:
        if action not in paths:
            actions.append(action)
    rows, seen = [], set()
    for action in actions:
        keys = [k for k in action.shortcuts() if not k.isEmpty()]
        if not keys or id(action) in seen:
            continue
        seen.add(id(action))
        text = action.text().replace("&&", "\0").replace("&", "").replace("\0", "&")
        text = text.removesuffix("…").strip() or action.toolTip()
        native = ", ".join(k.toString(QKeySequence.SequenceFormat.NativeText) for k in keys)
        rows.append((text, native, paths.get(action, OTHER)))
    return rows


class ShortcutsDialog(QDialog):
    """A table of the window's shortcuts, made from its actions when it opens."""

    def __init__(self, window):
        super().__init__(window)
        self.setWindowTitle("Keyboard shortcuts")
        self.setObjectName("shortcutsDialog")
        rows = shortcut_rows(window)
        self.table = QTableWidget(len(rows), 3, objectName="shortcutsTable")
        self.table.setHorizontalHeaderLabels(("Action", "Keys", "Menu"))
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                self.table.setItem(r, c, QTableWidgetItem(text))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in (1, 2):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        note = QLabel("Made from the window's own actions, so the list is always current. Hold "
                      "the mouse over a plot and click its ? for what it shows.", wordWrap=True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(note)
        layout.addWidget(buttons)
        self.resize(560, 560)

    def rows(self) -> list[tuple[str, ...]]:
        return [tuple(self.table.item(r, c).text() for c in range(3))
                for r in range(self.table.rowCount())]


def show_shortcuts(window) -> ShortcutsDialog:
    dialog = ShortcutsDialog(window)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.show()
    return dialog


# -- about --------------------------------------------------------------------------------------


def app_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("descent-lab")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "(not installed)"


def device_text() -> str:
    """Where races can run: the CUDA device's name, or the CPU."""
    import torch

    try:
        if torch.cuda.is_available():
            return f"CUDA: {torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
    except Exception as exc:  # noqa: BLE001 - a broken driver is reported, not raised
        return f"CPU (CUDA failed to initialise: {exc})"
    return f"CPU ({platform.processor() or platform.machine()}; no CUDA device)"


def versions() -> dict[str, str]:
    import pyqtgraph
    import PySide6
    import torch
    from PySide6.QtCore import qVersion

    return {
        "Descent Lab": app_version(),
        "Python": sys.version.split()[0],
        "PyTorch": torch.__version__,
        "Qt": qVersion(),
        "PySide6": PySide6.__version__,
        "pyqtgraph": pyqtgraph.__version__,
        "Device": device_text(),
    }


def about_text() -> str:
    rows = "".join(f"<tr><td><b>{name}</b>&nbsp;&nbsp;</td><td>{value}</td></tr>"
                   for name, value in versions().items())
    return ("<p><b>Descent Lab</b>: watch real torch.optim optimizers race over loss "
            f"landscapes.</p><table>{rows}</table>")


def show_about(window) -> QMessageBox:
    box = QMessageBox(QMessageBox.Icon.NoIcon, "About Descent Lab", about_text(),
                      QMessageBox.StandardButton.Close, window)
    box.setObjectName("aboutBox")
    box.setTextFormat(Qt.TextFormat.RichText)
    from app.shell.desktop_entry import app_icon

    box.setIconPixmap(app_icon().pixmap(64, 64))
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.show()
    return box
