"""Which tool windows the Tools menu opens, and how the main window opens and closes them: one
window of each kind (LR range test, sweep, fair race), a child of the main window found by its
object name, created on first use."""

from __future__ import annotations

from functools import partial

from PySide6.QtWidgets import QMainWindow

from app.tools.fair_race_window import FairRaceWindow
from app.tools.fingerprint_window import FingerprintWindow
from app.tools.lr_finder_window import LrFinderWindow
from app.tools.scorecard_window import ScorecardWindow
from app.tools.sweep_window import SweepWindow

TOOL_WINDOWS = {"lr_finder": "lrFinderWindow", "sweep": "sweepWindow", "fair_race": "fairRaceWindow"}
TOOL_WINDOWS["fingerprint"] = "fingerprintWindow"
TOOL_WINDOWS["scorecard"] = "scorecardWindow"


def open_tool_window(main_window, kind: str) -> QMainWindow:
    """Show (creating once) the main window's LR range test, sweep or fair race window."""
    window = main_window.findChild(QMainWindow, TOOL_WINDOWS[kind])
    if window is None:
        cls = {"lr_finder": LrFinderWindow, "sweep": SweepWindow,
               "fingerprint": FingerprintWindow,
               "fair_race": FairRaceWindow, "scorecard": ScorecardWindow}[kind]
        window = cls(main_window.document, main_window)
        if kind == "fair_race":
            window.race_opened.connect(partial(_play_tuned, main_window))
        if kind == "scorecard":
            window.lab_opened.connect(partial(_show_main, main_window))
    if window.isVisible():  # already open behind the main window: bring it forward
        window.raise_()
        window.activateWindow()
    window.show()
    return window


def _play_tuned(main_window, _lab) -> None:
    main_window.play()


def _show_main(main_window, _lab) -> None:
    """A scorecard cell opened as the lab: the main window comes forward to race it."""
    main_window.raise_()
    main_window.activateWindow()


def close_tool_windows(main_window) -> None:
    """Stop every tool window's thread (the main window is closing)."""
    for name in TOOL_WINDOWS.values():
        window = main_window.findChild(QMainWindow, name)
        if window is not None:
            window.shutdown()
            window.close()
