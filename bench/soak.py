"""soak-2d / soak-network: a long race streamed into the real window — does anything creep?

The goals: a 2-D race of 12 runs for 10⁶ steps and a network race of 8 runs for 10⁵
steps; resident memory growth after warm-up ≤ 50 MB, and the event-loop p99 gap unchanged.

A real MainWindow (offscreen, temp settings and recovery dir) plays the 12-run Rosenbrock lab of
`engine_overhead` / the 8-run moons lab of `gui_latency` at speed Max until the race ends. A 5 ms
precise timer stamps the event loop all along (lateness = gap - 5 ms); resident memory (VmRSS) is
sampled every 0.5 s. Warm-up = the first 10 % of the steps (history buffers grow to their bound,
caches fill). Reported: RSS growth from the end of the warm-up to the largest later sample, and the
ratio of the late event-loop p99 (last 20 % of the steps) to the early one (10-30 %): x1.00 means
unchanged.

Found with it: late in the network soak every other loss-plot frame was painted under a clip of
two rectangles (the changed curves' rects union to an L), under which Qt strokes every curve about
twice as slowly (that plot's paint 5.6 -> 11.2 ms, the late p99 gap x1.29). The curve plots now
repaint one rectangle per frame (`app.widgets.curves.SeriesPlot`). And each frame's data
preparation read every point of every run (finite and positive checks, decimation: 3.2 ms per
frame at 15k steps, 5.6 ms at 95k); it now reads the new points only (`ValidPrefix`,
`GrowingThinning` in app/network/series_curve.py: 2.2 ms at any length).

The full sizes take long on 2 cores (the window's own drawing paces a race at Max), so
``make bench`` runs 2·10⁴ / 5·10³ steps; ``DESCENT_LAB_SOAK_FULL=1`` runs the full 10⁶ / 10⁵.
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


HISTOGRAM_BIN_MS = 0.05  # lateness histograms: 0.05 ms bins up to HISTOGRAM_MAX_MS
HISTOGRAM_MAX_MS = 2_000.0


class _Probe:
    """Main-thread stamps: timer-tick lateness (as histograms) and memory samples.

    The probe must not grow itself: a list of every tick (a tuple, a float, ~100 bytes) is
    ~70 MB over the 10⁶-step soak's 78 minutes — it was the whole "growth" of the first full
    run. So each tick's lateness goes into one fixed histogram for the early window (10–30 %
    of the steps) and one for the late window (the last 20 %), and memory is sampled into a
    preallocated array (one sample every 0.5 s).
    """

    def __init__(self, window, total_steps: int):
        self.window = window
        self.total = total_steps
        bins = int(HISTOGRAM_MAX_MS / HISTOGRAM_BIN_MS) + 1
        self.early = np.zeros(bins, dtype=np.int64)
        self.late = np.zeros(bins, dtype=np.int64)
        # The main thread's own CPU time per tick interval, same bins: lateness with the CPU
        # time flat means waiting (the GIL, the other core's load), not more drawing work.
        self.early_cpu = np.zeros(bins, dtype=np.int64)
        self.late_cpu = np.zeros(bins, dtype=np.int64)
        self._last_cpu = 0.0
        self.memory = np.full((1 << 16, 2), np.nan)  # (step, RSS MB); 9 hours of samples
        self.samples = 0
        self.step = 0
        self._last_tick = None
        self._last_sample = 0.0
        self.done = False

    def on_batch(self, records: list) -> None:
        self.step = records[-1].step

    def tick(self) -> None:
        now, cpu = time.perf_counter(), time.thread_time()
        if self._last_tick is not None:
            late = (now - self._last_tick) * 1000 - TICK_MS
            phase = self.step / self.total
            window = 0 if 0.1 <= phase < 0.3 else 1 if phase >= 0.8 else None
            if window is not None:
                last = len(self.early) - 1
                lateness = (self.early, self.late)[window]
                lateness[min(last, max(0, int(late / HISTOGRAM_BIN_MS)))] += 1
                busy = (self.early_cpu, self.late_cpu)[window]
                busy[min(last, int((cpu - self._last_cpu) * 1000 / HISTOGRAM_BIN_MS))] += 1
        self._last_tick, self._last_cpu = now, cpu
        if now - self._last_sample >= 0.5 and self.samples < len(self.memory):
            self._last_sample = now
            self.memory[self.samples] = (self.step, _rss_mb())
            self.samples += 1

    def finished(self, _completed: bool) -> None:
        self.done = True


def _percentile(histogram: np.ndarray, q: float) -> float:
    """The q-th percentile (ms) of the lateness counted in ``histogram`` (bin upper edges)."""
    total = int(histogram.sum())
    if total == 0:
        return float("nan")
    index = int(np.searchsorted(np.cumsum(histogram), q / 100 * total))
    return (index + 1) * HISTOGRAM_BIN_MS


def soak(name: str, lab, what: str) -> dict:
    from PySide6.QtCore import QEventLoop, QSettings, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from app.shell.controller import LIVE_THREADS
    from app.shell.main_window import MainWindow
    from app.shell.recovery import RecoveryStore
    from app.shell.theme import apply_dark_theme

    app = QApplication.instance() or QApplication(["descent-lab-soak"])
    apply_dark_theme(app)
    with tempfile.TemporaryDirectory() as tmp:
        settings = QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat)
        window = MainWindow(lab, settings=settings, recovery=RecoveryStore(Path(tmp)))
        window._confirm_discard = lambda: True
        probe = _Probe(window, lab.steps)
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

    total = lab.steps
    early_p99 = _percentile(probe.early, 99)
    late_p99 = _percentile(probe.late, 99)
    samples = probe.memory[:probe.samples]
    mem_steps, mem = samples[:, 0], samples[:, 1]
    warm = mem[mem_steps <= 0.1 * total]
    after = mem[mem_steps > 0.1 * total]
    base = float(warm[-1]) if warm.size else float(mem[0])
    growth = float(after.max() - base) if after.size else 0.0
    ratio = late_p99 / early_p99 if early_p99 > 0 else float("nan")
    early_cpu, late_cpu = _percentile(probe.early_cpu, 99), _percentile(probe.late_cpu, 99)
    note = (f"RSS +{growth:.1f} MB after warm-up (goal <= {MEMORY_GOAL_MB} MB; "
            f"{base:.0f} -> {mem.max():.0f} MB); p99 gap early {early_p99:.1f} ms, "
            f"late {late_p99:.1f} ms; main-thread CPU per tick p99 early {early_cpu:.1f} ms, "
            f"late {late_cpu:.1f} ms; "
            f"{total:,} steps of {what} in {wall:.0f} s "
            f"({total / wall:.0f} steps/s); {dangling} threads left")
    return report(name, late_p99, "ms late p99 gap", ratio, "early p99 gap", note,
                  rss_growth_mb=growth, early_p99_ms=early_p99, late_p99_ms=late_p99,
                  early_cpu_p99_ms=early_cpu, late_cpu_p99_ms=late_cpu,
                  steps=total, seconds=wall, dangling_threads=dangling,
                  memory=[(int(s), float(m)) for s, m in samples])


def run() -> dict:
    from bench.engine_overhead import race_lab
    from bench.gui_latency import network_lab
    from core.engine.factory import make_race

    make_race(race_lab(1))  # one-time imports (torch._dynamo) are not soak
    return {
        "soak-2d": soak("soak-2d", race_lab(STEPS_2D), "12 runs on Rosenbrock"),
        "soak-network": soak("soak-network", replace(network_lab(), steps=STEPS_NETWORK),
                             "8 MLP runs on moons"),
    }
