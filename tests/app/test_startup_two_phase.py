"""Start fast: the entry point paints the window before torch is imported, then fills it in.

Each test starts ``launch`` (app/shell/main_window.py, what ``descent-lab`` runs) in a fresh
process — torch may already be imported in this one — with its settings, data and recovery file in
a temporary folder. The child watches for the window's first Paint (as bench/startup.py does),
notes what is imported and shown then, waits for the panels (app/shell/startup.py), and reports
one JSON line. No timing is asserted: the speed goal lives in ``make bench`` (startup).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

from app.shell.recovery import RecoveryStore
from core.lab.format import default_lab, save_lab

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import json, os, sys, traceback
    sys.path.insert(0, {root!r})
    from PySide6.QtCore import QEvent, QObject, QTimer
    from PySide6.QtWidgets import QApplication, QMainWindow, QWidget
    from app.shell.main_window import MainWindow, launch

    report = {{}}
    asked = []
    # The crash-recovery question, answered "restore" (a dialog cannot be clicked offscreen).
    MainWindow._ask_restore = lambda self, source, dirty: asked.append(dirty) or True
    app = QApplication(sys.argv[:1])

    def finish():
        print("REPORT " + json.dumps(report), flush=True)
        app.quit()

    def crashed(*exc_info):  # an error in a slot: report what there is and stop at once
        traceback.print_exception(*exc_info)
        print("REPORT " + json.dumps(report), flush=True)
        os._exit(1)

    sys.excepthook = crashed

    class FirstPaint(QObject):
        def eventFilter(self, obj, event):
            if (event.type() == QEvent.Type.Paint and isinstance(obj, QWidget)
                    and isinstance(QWidget.window(obj), QMainWindow)):
                app.removeEventFilter(self)
                window = QWidget.window(obj)
                report["torch_at_first_paint"] = "torch" in sys.modules
                central = window.centralWidget()
                report["central_at_first_paint"] = central.objectName()
                report["text_at_first_paint"] = getattr(central, "text", lambda: "")()
                window.panels_ready.connect(lambda: QTimer.singleShot(0, lambda: ready(window)))
            return False

    def ready(window):
        report["torch_after_panels"] = "torch" in sys.modules
        report["asked_restore"] = asked
        report["lab_name"] = window.document.lab.name
        report["lab_path"] = str(window.document.path or "")
        report["menus"] = [a.text() for a in window.menuBar().actions()]
        window.speed_combo.setCurrentIndex(window.speed_combo.count() - 1)  # Max

        def done(ok):
            report["race_ok"] = ok
            report["last_step"] = window.history.last_step
            report["runs"] = len(window.history.runs)
            window._confirm_discard = lambda: True
            QTimer.singleShot(0, finish)

        window.race_finished.connect(done)
        window.play()

    probe = FirstPaint()
    app.installEventFilter(probe)
    QTimer.singleShot(120_000, finish)  # a hang reports what it has instead of blocking pytest
    sys.exit(launch(*sys.argv[1:]))
    """
)


def _launch(tmp_path: Path, *args: str) -> dict:
    env = dict(
        os.environ,
        QT_QPA_PLATFORM="offscreen",
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        DESCENT_LAB_DATA_DIR=str(tmp_path / "data"),
        DESCENT_LAB_RECOVERY_DIR=str(tmp_path / "recovery"),
    )
    proc = subprocess.run(
        [sys.executable, "-c", CHILD.format(root=str(ROOT)), *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("REPORT ")]
    assert lines, f"exit {proc.returncode}, no report:\n{proc.stderr[-3000:]}"
    return json.loads(lines[-1][len("REPORT "):])


def _short_lab(name: str):
    return replace(default_lab(), name=name, steps=60)


def test_a_lab_from_the_command_line_paints_before_torch_then_races(tmp_path):
    lab_path = tmp_path / "short.lab.json"
    save_lab(_short_lab("Short start"), lab_path)

    report = _launch(tmp_path, str(lab_path))

    # The first frame the user sees: the window, saying what it waits for, and no torch yet.
    assert report["torch_at_first_paint"] is False
    assert report["central_at_first_paint"] == "loadingPlaceholder"
    assert report["text_at_first_paint"] == "Loading PyTorch…"
    # Then the panels: the menus, the lab named on the command line, and a race that plays.
    assert report["torch_after_panels"] is True
    assert report["menus"][:2] == ["&File", "&Edit"]
    assert (report["lab_name"], report["lab_path"]) == ("Short start", str(lab_path))
    assert report["race_ok"] is True
    assert report["runs"] == 4
    assert report["last_step"] == 60


def test_the_crash_recovery_prompt_still_comes_after_the_panels(tmp_path):
    left = _short_lab("Left by a crash")
    RecoveryStore(tmp_path / "recovery").save(left, None, True)

    report = _launch(tmp_path)

    assert report["torch_at_first_paint"] is False
    assert report["asked_restore"] == [True]  # asked once, about an unsaved lab
    assert report["lab_name"] == "Left by a crash"
    assert report["race_ok"] is True
