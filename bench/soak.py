"""soak-2d / soak-network: a long race streamed into the real window — does anything creep?

The issue's figures: a 2-D race of 12 runs for 10⁶ steps and a network race of 8 runs for 10⁵
steps; resident memory growth after warm-up ≤ 50 MB, and the event-loop p99 gap unchanged.

A real MainWindow (offscreen, temp settings and recovery dir) plays the 12-run Rosenbrock lab of
`engine_overhead` / the 8-run moons lab of `gui_latency` at speed Max until the race ends. A 5 ms
precise timer stamps the event loop all along (lateness = gap - 5 ms); resident memory (VmRSS) is
sampled every 0.5 s. Warm-up = the first 10 % of the steps (history buffers grow to their bound,
caches fill). Reported: RSS growth from the end of the warm-up to the largest later sample, and the
ratio of the late event-loop p99 (last 20 % of the steps) to the early one (10-30 %): x1.00 means
unchanged.

The full sizes take long on 2 cores (the window's own drawing paces a race at Max), so
``make bench`` runs 2·10⁴ / 5·10³ steps; ``DESCENT_LAB_SOAK_FULL=1`` runs the issue's 10⁶ / 10⁵.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from bench.common import report

TICK_MS = 5
FULL = os.environ.get("DESCENT_LAB_SOAK_FULL") == "1"
STEPS_2D = 1_000_000 if FULL else 20_000
STEPS_NETWORK = 100_000 if FULL else 5_000
MEMORY_GOAL_MB = 50


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class _Probe:
    """Main-thread stamps: timer ticks (with the step shown) and memory samples."""

    def __init__(self, window):
        self.window = window
        self.ticks: list[tuple[float, int]] = []
        self.memory: list[tuple[int, float]] = []
        self.step = 0
        self._last_sample = 0.0
        self.done = False

    def on_batch(self, records: list) -> None:
        self.step = records[-1].step

    def tick(self) -> None:
        now = time.perf_counter()
        self.ticks.append((now, self.step))
        if now - self._last_sample >= 0.5:
            self._last_sample = now
            self.memory.append((self.step, _rss_mb()))

    def finished(self, _completed: bool) -> None:
        self.done = True


def soak(name: str, lab, what: str) -> dict:
    from PySide6.QtCore import QEventLoop, QSettings, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from app.controller import LIVE_THREADS
    from app.main_window import MainWindow
    from app.recovery import RecoveryStore
    from app.theme import apply_dark_theme

    app = QApplication.instance() or QApplication(["descent-lab-soak"])
    apply_dark_theme(app)
    with tempfile.TemporaryDirectory() as tmp:
        settings = QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat)
        window = MainWindow(lab, settings=settings, recovery=RecoveryStore(Path(tmp)))
        window._confirm_discard = lambda: True
        probe = _Probe(window)
        window.controller.batch.connect(probe.on_batch)
        window.race_finished.connect(probe.finished)
        window.speed_combo.setCurrentIndex(window.speed_combo.count() - 1)  # Max
        window.show()
        timer = QTimer()
        timer.setTimerType(Qt.TimerType.PreciseTimer)
        timer.setInterval(TICK_MS)
        timer.timeout.connect(probe.tick)
        loop = QEventLoop()
        window.race_finished.connect(loop.quit)
        started = time.perf_counter()
        timer.start()
        window.play()
        loop.exec()
        timer.stop()
        wall = time.perf_counter() - started
        window.controller.shutdown()
        window.close()
        window.deleteLater()
        app.processEvents()
    dangling = sum(1 for t in list(LIVE_THREADS) if t.isRunning())

    stamps = np.array([t for t, _ in probe.ticks])
    steps = np.array([s for _, s in probe.ticks])
    late = np.diff(stamps) * 1000 - TICK_MS
    at = steps[1:]
    total = lab.steps
    early = late[(at >= 0.1 * total) & (at < 0.3 * total)]
    final = late[at >= 0.8 * total]
    early_p99 = float(np.percentile(early, 99)) if early.size else float("nan")
    late_p99 = float(np.percentile(final, 99)) if final.size else float("nan")
    mem_steps = np.array([s for s, _ in probe.memory])
    mem = np.array([m for _, m in probe.memory])
    warm = mem[mem_steps <= 0.1 * total]
    after = mem[mem_steps > 0.1 * total]
    base = float(warm[-1]) if warm.size else float(mem[0])
    growth = float(after.max() - base) if after.size else 0.0
    ratio = late_p99 / early_p99 if early_p99 > 0 else float("nan")
    note = (f"RSS +{growth:.1f} MB after warm-up (goal <= {MEMORY_GOAL_MB} MB; "
            f"{base:.0f} -> {mem.max():.0f} MB); p99 gap early {early_p99:.1f} ms, "
            f"late {late_p99:.1f} ms; {total:,} steps of {what} in {wall:.0f} s "
            f"({total / wall:.0f} steps/s); {dangling} threads left")
    return report(name, late_p99, "ms late p99 gap", ratio, "early p99 gap", note,
                  rss_growth_mb=growth, early_p99_ms=early_p99, late_p99_ms=late_p99,
                  steps=total, seconds=wall, dangling_threads=dangling,
                  memory=[(int(s), float(m)) for s, m in probe.memory])


def run() -> dict:
    from bench.engine_overhead import race_lab
    from bench.gui_latency import network_lab
    from core.engine import FunctionRace

    FunctionRace(race_lab(1))  # one-time imports (torch._dynamo) are not soak
    return {
        "soak-2d": soak("soak-2d", race_lab(STEPS_2D), "12 runs on Rosenbrock"),
        "soak-network": soak("soak-network", replace(network_lab(), steps=STEPS_NETWORK),
                             "8 MLP runs on moons"),
    }
