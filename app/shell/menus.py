"""The main window's actions, menu bar and playback toolbar, built from tables.

Each action is a row (window attribute, text, the window's slot, shortcut, tip, icon); the menus
list the actions in their order. The slots are the `MainWindow`'s own methods (app/shell/main_window.py),
so a test that replaces one on the window is the one the action calls.
"""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QComboBox, QLabel, QMenu, QStyle, QToolBar

from app.shell.timeline_slider import Timeline

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "resources" / "labs"
# Steps per second offered in the speed box; 0 means as fast as the machine allows.
SPEEDS = (("10 steps/s", 10), ("30 steps/s", 30), ("100 steps/s", 100), ("300 steps/s", 300),
          ("1000 steps/s", 1000), ("Max", 0))
DEFAULT_SPEED_INDEX = 2

_SP = QStyle.StandardPixmap
# (window attribute, text, window slot, shortcut, tip, icon), in the order they are made.
FILE_ACTIONS = (
    ("new_action", "&New 2-D race", "new_lab", QKeySequence.StandardKey.New,
     "A new race of optimizers on a 2-D test function", None),
    ("new_network_action", "New &network race", "new_network_lab", "Ctrl+Shift+N",
     "A new race of optimizers training a small network on a data set", None),
    ("new_rl_action", "New r&l race (CartPole)", "new_rl_lab", None,
     "A new race of optimizers training a REINFORCE agent to balance CartPole", None),
    ("open_action", "&Open…", "open_dialog", QKeySequence.StandardKey.Open, "", None),
    ("save_action", "&Save", "save", QKeySequence.StandardKey.Save, "", None),
    ("save_as_action", "Save &As…", "save_as", "Ctrl+Shift+S", "", None),
    ("quit_action", "&Quit", "close", "Ctrl+Q", "", None),
)
RACE_ACTIONS = (
    ("play_action", "&Play", "toggle_play", Qt.Key.Key_Space, "Play / pause the race (Space)",
     _SP.SP_MediaPlay),
    ("step_action", "S&tep", "step", Qt.Key.Key_Right, "Advance every run by one step (→)",
     _SP.SP_MediaSeekForward),
    ("reset_action", "&Reset", "reset", Qt.Key.Key_R, "Back to step 0 (R)",
     _SP.SP_MediaSkipBackward),
)
# The tool windows (app/tools/tool_windows.py): text, kind, shortcut, tip.
TOOLS = (
    ("&LR range test…", "lr_finder", "Ctrl+L", "Ramp the lr to find a good one"),
    ("&Sweep…", "sweep", None, "Search hyperparameters with Optuna"),
    ("&Fair race…", "fair_race", None, "Tune each optimizer equally, then race them"),
    ("Optimizer &fingerprint…", "fingerprint", None,
     "Measure an optimizer's properties (scale invariance, stable lr, …) beside theory"),
    ("S&corecard…", "scorecard", None,
     "Compare optimizers AlgoPerf's way: time to target, performance profiles"),
)


def example_labs() -> list[tuple[str, Path]]:
    """The bundled examples as (title, path), by title: the title is the lab's own "name"
    ("Moons race"), the file stem ("moons_race") only for a file without one."""
    found = []
    for path in EXAMPLES_DIR.glob("*.lab.json"):
        try:  # the name only: the whole lab is read and checked when it is opened
            name = json.loads(path.read_text(encoding="utf-8")).get("name")
        except (OSError, ValueError, AttributeError):
            name = None
        stem = path.name.removesuffix(".lab.json")
        found.append((name.strip() if isinstance(name, str) and name.strip() else stem, path))
    return sorted(found, key=lambda item: item[0].casefold())


def make_action(window, text: str, slot, shortcut=None, tip: str = "", icon=None) -> QAction:
    """An action of the window: its shortcut works anywhere in the window, its tip shows in
    the status bar too."""
    action = QAction(text, window)
    if shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    if tip:
        action.setToolTip(tip)
        action.setStatusTip(tip)
    if icon is not None:
        action.setIcon(window.style().standardIcon(icon))
    action.triggered.connect(slot)
    window.addAction(action)
    return action


def _make_table(window, rows) -> None:
    for attribute, text, slot, shortcut, tip, icon in rows:
        setattr(window, attribute, make_action(window, text, getattr(window, slot), shortcut, tip, icon))


def build_actions(window) -> None:
    """The File, Edit and Race actions, the timeline, then the menu bar."""
    _make_table(window, FILE_ACTIONS)
    undo_stack = window.document.undo_stack
    window.undo_action = undo_stack.createUndoAction(window, "&Undo")
    window.undo_action.setShortcut(QKeySequence.StandardKey.Undo)
    window.redo_action = undo_stack.createRedoAction(window, "&Redo")
    window.redo_action.setShortcut(QKeySequence("Ctrl+Shift+Z"))
    _make_table(window, RACE_ACTIONS)
    window.timeline = Timeline(window)  # scrub, step back (←), branch (Ctrl+B): app/shell/timeline_slider.py
    _build_menu_bar(window)


def _build_menu_bar(window) -> None:
    bar = window.menuBar()
    file_menu = bar.addMenu("&File")
    for action in (window.new_action, window.new_network_action, window.new_rl_action,
                   window.open_action):
        file_menu.addAction(action)
    window.recent_menu = file_menu.addMenu("Open &Recent")
    window.examples_menu = file_menu.addMenu("&Examples")
    for title, path in example_labs():
        act = window.examples_menu.addAction(title)
        act.setToolTip(path.name)
        # Asks about unsaved edits first, like Open, Recent, New and Lessons.
        act.triggered.connect(lambda _=False, p=path: window.open_lab_after_asking(p))
    file_menu.addSeparator()
    for action in (window.save_action, window.save_as_action):
        file_menu.addAction(action)
    file_menu.addSeparator()
    file_menu.addAction(window.quit_action)
    edit_menu = bar.addMenu("&Edit")
    edit_menu.addAction(window.undo_action)
    edit_menu.addAction(window.redo_action)
    add_menu = bar.addMenu("&Add")  # runs: Adam, or a class from the user's own file
    add_menu.addAction(make_action(window, "&Run", window.runs_panel.runs_table.add_run,
                                   tip="Add a run (Adam with torch's default lr)"))
    window.add_code_action = make_action(
        window, "&Optimizer from file…", window.user_code.add_from_file_dialog,
        tip="Race your own torch.optim.Optimizer subclass from a .py file (asks before it runs; "
            "dropping a .py on the runs table does the same)")
    add_menu.addAction(window.add_code_action)
    race_menu = bar.addMenu("&Race")
    for action in (window.play_action, window.timeline.step_back_action, window.step_action,
                   window.reset_action, window.timeline.branch_action):
        race_menu.addAction(action)
    window.internals_action = window.internals_dock.toggleViewAction()
    window.internals_action.setShortcut(QKeySequence("Ctrl+I"))
    window.internals_action.setToolTip("Show the optimizers' gradient, momentum and step arrows")
    race_menu.addAction(window.internals_action)
    window.lessons_menu = bar.addMenu("&Lessons")
    window.lesson_wiring.fill_menu(window.lessons_menu)
    tools_menu = bar.addMenu("&Tools")  # the windows: app/tools/tool_windows.py
    for text, kind, shortcut, tip in TOOLS:
        tools_menu.addAction(make_action(window, text, lambda _=False, k=kind: window.open_tool(k),
                                         shortcut, tip))
    help_menu = bar.addMenu("&Help")
    from app.shell.help_menu import build_help_menu

    build_help_menu(window, help_menu, make_action)  # Getting started, shortcuts, About
    window.file_actions.refresh_recent_menu()


def build_toolbar(window) -> None:
    """Play, step back, step, reset, the timeline slider and the speed box."""
    bar = QToolBar("Playback", window, objectName="playbackBar")
    bar.setMovable(False)
    bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    for action in (window.play_action, window.timeline.step_back_action, window.step_action,
                   window.reset_action):
        bar.addAction(action)
    bar.addWidget(window.timeline.slider)
    bar.addSeparator()
    bar.addWidget(QLabel(" Speed "))
    window.speed_combo = QComboBox(objectName="speedCombo")
    for text, value in SPEEDS:
        window.speed_combo.addItem(text, value)
    window.speed_combo.setToolTip("How many steps per second the race advances")
    window.speed_combo.currentIndexChanged.connect(window.race_wiring.on_speed)
    window.speed_combo.setCurrentIndex(DEFAULT_SPEED_INDEX)
    window.controller.set_speed(SPEEDS[DEFAULT_SPEED_INDEX][1])
    bar.addWidget(window.speed_combo)
    window.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)


def view_menu(window) -> QMenu:
    """The window's View menu (another module may have made it), else a new one before Help."""
    bar = window.menuBar()
    for action in bar.actions():
        if action.menu() is not None and action.text().replace("&", "") == "View":
            return action.menu()
    menu = QMenu("&View", window)
    help_action = next((a for a in bar.actions() if a.text().replace("&", "") == "Help"), None)
    if help_action is not None:
        bar.insertMenu(help_action, menu)
    else:
        bar.addMenu(menu)
    return menu
