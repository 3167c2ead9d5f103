"""Qt test setup: the app's theme, isolated settings, and a guard against dangling QThreads."""

from __future__ import annotations

import pytest

from app.shell.controller import LIVE_THREADS
from app.shell.theme import configure_pyqtgraph

configure_pyqtgraph()


@pytest.fixture(autouse=True)
def no_dangling_threads(qapp):
    """Fail any test that leaves a worker QThread running (napari does the same)."""
    yield
    running = [t for t in list(LIVE_THREADS) if t.isRunning()]
    for thread in running:  # stop them so one failure does not cascade
        thread.quit()
        thread.wait(2000)
    assert not running, f"{len(running)} QThread(s) left running by this test"


@pytest.fixture(autouse=True)
def no_zoo_descriptions_left():
    """Opening the optimizer picker describes the zoo in a daemon thread (app/runs/zoo_listing.py);
    it must not outlive the test that started it (it would take the CPU of the next ones)."""
    yield
    from app.runs.zoo_listing import stop_describing

    stop_describing()


@pytest.fixture
def settings(tmp_path):
    from PySide6.QtCore import QSettings

    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def window(qtbot, settings):
    from app.shell.main_window import MainWindow

    win = MainWindow(settings=settings)
    win._confirm_discard = lambda: True  # no modal questions in tests
    qtbot.addWidget(win)
    yield win
    win.controller.shutdown()
