"""BENCH crash-recovery: SIGKILL the real app at random moments; is everything back every time?

Each drill starts the GUI in a child process (offscreen), opens the ravine lab, edits it (an
unsaved change), plays it at full speed and is killed with SIGKILL after a random delay: while
starting, while racing, or after the race finished. Then, as the next start would, it checks the
recovery directory: the edited lab must come back every time, and when the child had reported the
race finished before it died, the finished results too, equal to a headless run of the same lab.

The baseline of the ratio is the number of drills: x1.00 means every one recovered everything.
tests/app/test_recovery.py runs a few drills in the regular suite; this runs 20.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAB = ROOT / "resources" / "labs" / "ravine.lab.json"
EDITED_SEED = 77
STEPS = 300
DRILLS = 20

CHILD = textwrap.dedent(
    """
    import sys
    from dataclasses import replace
    sys.path.insert(0, {root!r})
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication
    from app.shell.main_window import MainWindow

    app = QApplication([])
    window = MainWindow()
    window._confirm_discard = lambda: True
    window.race_finished.connect(lambda done: print("finished" if done else "stopped", flush=True))

    def begin():
        window.open_lab({lab!r})
        window.document.edit(replace(window.document.lab, seed={seed}, steps={steps}), "Edit")
        print("ready", flush=True)
        window.speed_combo.setCurrentIndex(window.speed_combo.count() - 1)  # Max
        window.play()

    QTimer.singleShot(0, begin)
    app.exec()
    """
)


@dataclass
class Drill:
    delay: float  # seconds after "ready" (negative: before it, during startup)
    ready: bool = False
    finished: bool = False
    lab_back: bool = False
    results_back: bool = False
    results_match: bool = False

    @property
    def ok(self) -> bool:
        # Before "ready" the edit may not have happened yet: then nothing edited was lost.
        lab_ok = self.lab_back or not self.ready
        return lab_ok and (self.results_back and self.results_match or not self.finished)


def edited_lab(steps: int = STEPS):
    from core.lab.format import load_lab

    return replace(load_lab(LAB), seed=EDITED_SEED, steps=steps)


def expected_final_losses(steps: int = STEPS):
    """What the finished race must show: a headless run of the edited lab."""
    import numpy as np

    from core.engine.function_race import race

    last = None
    for last in race(edited_lab(steps)):
        pass
    return np.asarray(last.loss)


def kill_at(delay: float, recovery_dir: Path, expected=None, steps: int = STEPS,
            anchor: str = "ready", startup_timeout: float = 60) -> Drill:
    """One drill: start the app, SIGKILL it ``delay`` s after it said ``anchor`` ("ready" or
    "finished"; a negative delay kills during startup), then check what a restart recovers."""
    import numpy as np

    from app.shell.recovery import RecoveryStore

    drill = Drill(delay)
    env = dict(os.environ, DESCENT_LAB_RECOVERY_DIR=str(recovery_dir), QT_QPA_PLATFORM="offscreen",
               DESCENT_LAB_THREADS="1")
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(root=str(ROOT), lab=str(LAB), seed=EDITED_SEED,
                                            steps=steps)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        if delay < 0:  # during startup: kill before the child can say anything
            time.sleep(-delay)
        else:
            deadline = time.monotonic() + startup_timeout
            while time.monotonic() < deadline:
                line = child.stdout.readline().strip()
                if not line:
                    break
                drill.ready |= line == "ready"
                drill.finished |= line == "finished"
                if line == anchor:
                    break
            time.sleep(delay)
    finally:
        child.send_signal(signal.SIGKILL)
        out, _ = child.communicate(timeout=30)
    drill.finished |= "finished" in out.split()

    store = RecoveryStore(recovery_dir)
    found = store.load()
    lab = edited_lab(steps)
    drill.lab_back = found is not None and found[0] == lab and found[2]
    history = store.load_results(lab)
    drill.results_back = history is not None
    if history is not None:
        if expected is None:
            expected = expected_final_losses(steps)
        finals = np.array([series.last("loss") for series in history.runs])
        drill.results_match = history.last_step == lab.steps and np.allclose(
            finals, expected, rtol=0, atol=0
        )
    return drill


def run() -> dict:
    from bench.common import report

    rng = random.Random(2026)
    # Moments: during startup, some time into the race (mid-race or after it, the machine
    # decides), and just after the finish.
    moments = [rng.choice([(-rng.uniform(0.2, 2.0), "ready"), (rng.uniform(0.0, 3.0), "ready"),
                           (rng.uniform(0.0, 0.5), "finished")]) for _ in range(DRILLS)]
    expected = expected_final_losses()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        dirs = [Path(tmp) / f"drill{i}" for i in range(DRILLS)]
        with ThreadPoolExecutor(max_workers=2) as pool:
            drills = list(pool.map(
                lambda a: kill_at(a[0][0], a[1], expected, anchor=a[0][1]), zip(moments, dirs)))
    ok = sum(d.ok for d in drills)
    finished = sum(d.finished for d in drills)
    mid = sum(d.ready and not d.finished for d in drills)
    note = (f"{finished} killed after the finish (results recovered: "
            f"{sum(d.results_back and d.results_match for d in drills)}), {mid} mid-race, "
            f"{sum(not d.ready for d in drills)} during startup; "
            f"{time.perf_counter() - started:.0f} s")
    return report("crash-recovery", ok, f"of {DRILLS} drills recovered everything", ok / DRILLS,
                  f"{DRILLS} drills", note, drills=[d.__dict__ for d in drills])
