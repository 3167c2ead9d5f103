"""Nothing lost: a SIGKILLed app leaves its lab in the recovery file; the next start restores it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

from app.shell.recovery import RecoveryStore

ROOT = Path(__file__).resolve().parents[2]
RAVINE = ROOT / "resources" / "labs" / "ravine.lab.json"

CHILD = textwrap.dedent(
    """
    import sys, time
    from dataclasses import replace
    sys.path.insert(0, {root!r})
    from PySide6.QtWidgets import QApplication
    from app.shell.main_window import MainWindow
    app = QApplication([])
    window = MainWindow()
    window._confirm_discard = lambda: True
    window.open_lab({lab!r})
    window.document.edit(replace(window.document.lab, seed=77), "Change seed")
    app.processEvents()
    print("ready", flush=True)
    window.speed_combo.setCurrentIndex(0)
    window.play()
    while True:
        app.processEvents()
        time.sleep(0.01)
    """
)


def test_sigkill_then_restart_offers_the_edited_lab(qtbot, tmp_path, settings):
    env = dict(os.environ, DESCENT_LAB_RECOVERY_DIR=str(tmp_path), QT_QPA_PLATFORM="offscreen")
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(root=str(ROOT), lab=str(RAVINE))],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = child.stdout.readline()
        assert line.strip() == "ready", child.stderr.read()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    store = RecoveryStore(tmp_path)
    found = store.load()
    assert found is not None
    lab, source, dirty = found
    assert lab.seed == 77 and source == RAVINE and dirty

    from app.shell.main_window import MainWindow

    window = MainWindow(settings=settings, recovery=store)
    window._confirm_discard = lambda: True
    window._ask_restore = lambda source, dirty: True
    qtbot.addWidget(window)
    assert window.offer_recovery()
    assert window.document.lab == lab
    assert window.document.path == RAVINE
    assert "*" in window.windowTitle()
    window.close()
    assert store.load() is None, "a clean exit must remove the recovery file"


def test_declining_keeps_the_default_lab(qtbot, tmp_path, settings):
    from app.shell.main_window import MainWindow
    from core.lab.format import default_lab, load_lab

    store = RecoveryStore(tmp_path)
    store.save(replace(load_lab(RAVINE), seed=5), RAVINE, dirty=True)
    window = MainWindow(settings=settings, recovery=store)
    window._ask_restore = lambda source, dirty: False
    qtbot.addWidget(window)
    assert not window.offer_recovery()
    assert window.document.lab == default_lab()


def test_a_corrupt_recovery_file_is_ignored(tmp_path):
    (tmp_path / "recovery.json").write_text("{ not json")
    assert RecoveryStore(tmp_path).load() is None


def test_sigkill_mid_race_and_after_the_finish_loses_neither_the_lab_nor_the_results(tmp_path):
    """Two of the crash drills `make bench` runs 20 of (bench/crash_recovery.py), in parallel:
    killed right after the edit (racing or not), and just after a short race finished."""
    from concurrent.futures import ThreadPoolExecutor

    from bench.crash_recovery import expected_final_losses, kill_at

    expected = expected_final_losses(steps=30)
    moments = ((0.0, "ready"), (0.2, "finished"))
    with ThreadPoolExecutor(max_workers=2) as pool:
        drills = list(pool.map(
            lambda i: kill_at(moments[i][0], tmp_path / str(i), expected, steps=30,
                              anchor=moments[i][1]), range(2)))
    for drill in drills:
        assert drill.ready and drill.lab_back, drill
        assert drill.ok, drill
    late = drills[1]
    assert late.finished and late.results_back and late.results_match, late


def test_the_restored_window_shows_the_finished_race(qtbot, tmp_path, settings):
    from app.shell.main_window import MainWindow
    from core.engine.function_race import race
    from core.engine.history import RaceHistory
    from core.lab.format import load_lab

    lab = replace(load_lab(RAVINE), seed=3, steps=25)
    history = RaceHistory([r.label for r in lab.enabled_runs()])
    history.extend(race(lab))
    store = RecoveryStore(tmp_path)
    store.save(lab, RAVINE, dirty=True)
    store.save_results(lab, history)

    window = MainWindow(settings=settings, recovery=store)
    window._ask_restore = lambda source, dirty: True
    window._confirm_discard = lambda: True  # the restored lab is unsaved: no question at close
    qtbot.addWidget(window)
    assert window.offer_recovery()
    assert "finished race" in window.status_label.text()
    assert window.step_label.text().startswith("step 25 ")
    # The loss plot holds the restored curves, not an empty race.
    assert window.history.last_step == 25
    assert window.history.runs[0].last("loss") == history.runs[0].last("loss")
