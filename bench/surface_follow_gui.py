"""surface-follow-gui: the race's steps/s in the real window while the Surface tab follows it.

A real ``app.shell.main_window.MainWindow`` (dark theme, settings in a temp ini) runs the race of
``bench.surface_follow`` — 4 runs of a 2-16-16-2 MLP on 512 moons points, full batch — at speed
"Max" with the Surface tab shown. Ours: "Follow training every 50 steps" ticked (the view
recomputes a coarse surface around run A's current weights in its own worker thread, skipping a
recomputation while the last one still runs). Baseline: the same window, same tab, following
off. Each timing is play() → ``race_finished``, with the window drawing as a user sees it;
interleaved, best of ``REPEATS``.

Value: steps/s with following; ratio: steps/s with / steps/s without (goal ≥ 0.7: following
costs the race at most 30 %). The note says how many surfaces were computed while following.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.common import report

STEPS = 600
EVERY = 50
REPEATS = 3
TIMEOUT_S = 20.0  # one race; a stuck window must not hang `make bench`


def _lab():
    from dataclasses import replace

    from bench.surface_follow import _lab as follow_lab

    # Evaluations (boundaries, table) as a user's race has them; the window draws them.
    lab = follow_lab()
    return replace(lab, steps=STEPS, problem=replace(lab.problem, eval_every=EVERY))


class _Count:
    """Records the window received (a bound-method slot)."""

    def __init__(self):
        self.count = 0

    def add(self, records: list) -> None:
        self.count += len(records)


def _race(app, window, follow: bool) -> tuple[float, int]:
    """Seconds from play() to the end of the race, and the surfaces following computed."""
    surface = window.network_view.surface_view
    surface.controls.follow_check.setChecked(follow)
    before = surface.follow_count
    done, records = [], _Count()
    window.race_finished.connect(done.append)
    window.controller.batch.connect(records.add)
    started = time.perf_counter()
    window.play()
    while not done and time.perf_counter() - started < TIMEOUT_S:
        app.processEvents()
        time.sleep(0.001)
    seconds = time.perf_counter() - started
    window.race_finished.disconnect(done.append)
    window.controller.batch.disconnect(records.add)
    if not done:
        window.controller.shutdown()
        raise RuntimeError(f"the race did not finish within {TIMEOUT_S:.0f} s")
    if records.count != STEPS + 1:
        raise RuntimeError(f"the window got {records.count} records, not the race's "
                           f"{STEPS + 1}: it did not run the race it was asked to")
    surface.controller.stop()  # a follow-up still computing after the race ends
    return seconds, surface.follow_count - before


def run() -> dict:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from app.shell.controller import LIVE_THREADS
    from app.shell.main_window import MainWindow
    from app.shell.theme import apply_dark_theme

    app = QApplication.instance() or QApplication(["descent-lab-bench"])
    apply_dark_theme(app)
    lab = _lab()
    with tempfile.TemporaryDirectory() as tmp:
        settings = QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat)
        window = MainWindow(lab, settings=settings)
        window._confirm_discard = lambda: True  # no modal question on close
        window.resize(1400, 900)
        window.speed_combo.setCurrentIndex(window.speed_combo.count() - 1)  # "Max"
        surface = window.network_view.surface_view
        window.network_view.tabs.setCurrentWidget(surface)
        surface.controls.follow_spin.setValue(EVERY)
        window.show()
        app.processEvents()
        try:
            _race(app, window, True)  # warm-up: lazy imports, first-call paths, first layout
            with_times, without_times, surfaces = [], [], 0
            for _ in range(REPEATS):
                seconds, surfaces = _race(app, window, True)
                with_times.append(seconds)
                without_times.append(_race(app, window, False)[0])
        finally:
            window.controller.shutdown()
            surface.shutdown()
            window.close()
            app.processEvents()
            window.deleteLater()
            app.processEvents()
    dangling = sum(1 for t in list(LIVE_THREADS) if t.isRunning())
    steps = STEPS + 1
    with_s, without_s = min(with_times), min(without_times)
    return report(
        "surface-follow-gui", steps / with_s, "steps/s", without_s / with_s,
        "the same window without following",
        note=(f"follow every {EVERY} steps ({surfaces} surfaces), 4 runs of a 2-16-16-2 MLP, "
              f"512 moons points, full batch, {without_s and steps / without_s:.0f} steps/s "
              f"without"),
        with_s=with_s, without_s=without_s, surfaces=surfaces, every=EVERY,
        dangling_threads=dangling,
    )


if __name__ == "__main__":
    run()
