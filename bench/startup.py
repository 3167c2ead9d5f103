"""startup: cold start to a painted main window, against the bare ``import torch``.

Ours: a fresh ``python -c`` that does what ``main.py`` does for the GUI (``app.shell.main_window.launch``:
QApplication, theme, the window's frame, show, exec: the two-phase start of docs/architecture.md)
with an application-wide event filter that waits for the first Paint of a widget of the main
window; once that frame is done (a zero timer after it) the child prints a line and quits through
the app's own quit path (aboutToQuit, which waits for the torch import begun after that paint;
process exit is not timed). Settings are isolated in a temp XDG_CONFIG_HOME.

Baseline: a fresh ``python -c "import torch"`` that prints a line. Both are timed the same way,
from just before the parent spawns the process to the moment it reads that line (interpreter
start-up included, process exit excluded); best of ``REPEATS``, interleaved. Value: app seconds;
ratio: torch seconds / app seconds (the goal, first paint <= 0.8x the torch import, is a ratio
>= 1.25; before the two-phase start it was < 1: torch was imported before the first paint).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import report

REPEATS = 3
TIMEOUT_S = 120
ROOT = Path(__file__).resolve().parent.parent

_APP_CHILD = r"""
import sys, time
t_launch = float(sys.argv[1])
import_start = time.time()
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QMainWindow, QWidget
from app.shell.main_window import launch
imported = time.time()

class FirstPaint(QObject):
    def eventFilter(self, obj, event):
        if (event.type() == QEvent.Type.Paint and isinstance(obj, QWidget)
                and isinstance(obj.window(), QMainWindow)):
            app.removeEventFilter(self)
            QTimer.singleShot(0, self.done)
        return False

    def done(self):
        now = time.time()
        print(f"painted {imported - t_launch:.4f} {now - imported:.4f}", flush=True)
        app.quit()

app = QApplication(sys.argv[:1])
probe = FirstPaint()
app.installEventFilter(probe)
sys.exit(launch())
"""

_TORCH_CHILD = "import torch; print('ready', flush=True)"


def _time_child(code: str, marker: str, env: dict) -> tuple[float, str]:
    """Seconds from spawn to the child's ``marker`` line; the line itself."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", code, repr(time.time())], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        for line in proc.stdout:
            if line.startswith(marker):
                elapsed = time.perf_counter() - t0
                proc.communicate(timeout=TIMEOUT_S)
                return elapsed, line.strip()
        _, err = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise RuntimeError(f"startup child timed out after {TIMEOUT_S} s") from None
    raise RuntimeError(f"startup child exited {proc.returncode} without {marker!r}:\n{err[-2000:]}")


def run() -> dict:
    app_times, torch_times, phases = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, XDG_CONFIG_HOME=tmp)
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
        for _ in range(REPEATS):
            t, _line = _time_child(_TORCH_CHILD, "ready", env)
            torch_times.append(t)
            t, line = _time_child(_APP_CHILD, "painted", env)
            app_times.append(t)
            phases.append(tuple(float(v) for v in line.split()[1:3]))
    app_s, torch_s = min(app_times), min(torch_times)
    imports_s, window_s = phases[app_times.index(app_s)]
    result = report(
        "startup", app_s, "s to first paint", torch_s / app_s,
        f"python -c 'import torch' {torch_s:.2f} s",
        app_s=app_s, torch_s=torch_s, app_imports_s=imports_s, window_to_paint_s=window_s,
        app_all_s=app_times, torch_all_s=torch_times,
    )
    print(f"  startup: of the best app start, {imports_s:.2f} s until the app's imports are done, "
          f"{window_s:.2f} s from there to the first painted frame", flush=True)
    return result
