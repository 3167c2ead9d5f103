"""gui-latency: how late the main thread's event loop runs while a race streams into the window.

A real ``app.shell.main_window.MainWindow`` (dark theme as ``launch`` sets it, settings in a temp ini,
``_confirm_discard`` patched to say yes) shows the 12-run Rosenbrock lab of `engine_overhead`
with enough steps to stream for the whole window, at speed "Max" (the speed box's last item).
A 5 ms precise QTimer on the main thread stamps every timeout; lateness = gap - 5 ms. Anything
that blocks the event loop (history appends, setData, repaints, the GIL held by the worker thread)
shows up as lateness, which is what a user feels as a stuck or jerky window.

Value: p99 lateness in ms while racing. Ratio: one 60 Hz frame (16 ms) / p99, so >= 1 means 99 %
of ticks came within a frame. Baseline, same run, same window: the timer with the window idle.
One-time costs (torch.optim's first optimizer imports torch._dynamo, 2-4 s) are paid before
measuring. The race is ended through ``controller.shutdown`` and the window closed; a QThread
left running is reported.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from bench.common import report

DURATION_S = 5.0
TICK_MS = 5
FRAME_MS = 16.0
RACE_STEPS = 100_000  # far more than 5 s of Max speed: the race streams the whole window


class _Probe:
    """Timer timeouts and received batches, as bound-method slots (no lambdas across signals)."""

    def __init__(self):
        self.stamps: list[float] = []
        self.batches = 0
        self.records = 0
        self.last_step = -1

    def tick(self) -> None:
        self.stamps.append(time.perf_counter())

    def on_batch(self, records: list) -> None:
        self.batches += 1
        self.records += len(records)
        self.last_step = records[-1].step


def _measure(probe: _Probe, stop_race=None) -> tuple[np.ndarray, float, int]:
    """Run the event loop ~DURATION_S with the 5 ms timer: (lateness ms, wall s, ticks fired).

    The loop's start and end count as stamps too, so a stall at either end is not lost.
    """
    from PySide6.QtCore import QEventLoop, Qt, QTimer

    probe.stamps.clear()
    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(TICK_MS)
    timer.timeout.connect(probe.tick)
    loop = QEventLoop()
    QTimer.singleShot(int(DURATION_S * 1000), loop.quit)
    # A starved main thread runs its own quit timer late; so at the deadline a plain thread also
    # sets the race's stop event (a threading.Event, thread-safe by design) to bound the window.
    deadline = threading.Timer(DURATION_S, stop_race) if stop_race is not None else None
    t0 = time.perf_counter()
    timer.start()
    if deadline is not None:
        deadline.start()
    loop.exec()
    timer.stop()
    end = time.perf_counter()
    if deadline is not None:
        deadline.cancel()
    stamps = np.asarray([t0, *probe.stamps, end])
    return np.diff(stamps) * 1000.0 - TICK_MS, end - t0, len(probe.stamps)


def _settle(app, seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.005)


def network_lab():
    """8 runs of a 2-16-16-2 MLP on the moons, evaluated (boundaries redrawn) every 10 steps."""
    from core.lab.format import Lab, NetworkProblem, RunSpec, validate_lab

    runs = [RunSpec(f"Adam {i}", "adam", {"lr": 0.002 * (i + 1)}) for i in range(4)]
    runs += [RunSpec(f"SGD {i}", "sgd", {"lr": 0.05 * (i + 1), "momentum": 0.9}) for i in range(4)]
    problem = NetworkProblem(dataset={"name": "moons", "n": 512, "noise": 0.2},
                             batch_size=64, eval_every=10, device="cpu")
    return validate_lab(Lab(name="bench", steps=RACE_STEPS, problem=problem, runs=tuple(runs)))


def run() -> dict:
    from bench.engine_overhead import race_lab

    return {
        "gui-latency": _run_window("gui-latency", race_lab(RACE_STEPS), "12 runs, Rosenbrock"),
        "gui-latency-network": _run_window(
            "gui-latency-network", network_lab(), "8 MLP runs on moons, curves tab"
        ),
        # A heavy drawing case: the decision-boundary tab shown, its 8 panels
        # redrawn at every evaluation (every 10 steps) while the race streams.
        "gui-latency-boundaries": _run_window(
            "gui-latency-boundaries", network_lab(),
            "8 MLP runs on moons, decision boundaries shown, redrawn every 10 steps",
            tab="boundaries",
        ),
    }


def _run_window(name: str, lab, what: str, tab: str | None = None) -> dict:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from app.shell.controller import LIVE_THREADS
    from app.shell.main_window import MainWindow
    from app.shell.theme import apply_dark_theme
    from bench.engine_overhead import race_lab
    from core.engine.factory import make_race

    make_race(race_lab(1))  # one-time lazy imports of torch.optim, not streaming cost
    app = QApplication.instance() or QApplication(["descent-lab-bench"])
    apply_dark_theme(app)
    with tempfile.TemporaryDirectory() as tmp:
        settings = QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat)
        window = MainWindow(lab, settings=settings)
        window._confirm_discard = lambda: True  # no modal question on close
        probe = _Probe()
        window.controller.batch.connect(probe.on_batch)
        window.speed_combo.setCurrentIndex(window.speed_combo.count() - 1)  # "Max"
        window.show()
        if tab == "boundaries":
            from app.network.views import TAB_BOUNDARIES

            window.network_view.tabs.setCurrentIndex(TAB_BOUNDARIES)
        _settle(app, 0.5)  # first layout and paint out of the way

        idle, _, _ = _measure(probe)
        window.play()
        racing, wall, ticks = _measure(probe, window.controller._worker.stop_event.set)

        window.controller.shutdown()
        window.close()
        _settle(app, 0.1)
        window.deleteLater()
        _settle(app, 0.05)
        del settings
    dangling = sum(1 for t in list(LIVE_THREADS) if t.isRunning())
    if dangling:
        print(f"WARNING gui-latency: {dangling} QThread(s) still running after shutdown",
              flush=True)

    idle_p99 = float(np.percentile(idle, 99))
    p99 = float(np.percentile(racing, 99))
    worst = float(racing.max())
    result = report(
        name, p99, "ms p99", FRAME_MS / max(p99, 1e-3), f"{FRAME_MS:g} ms frame",
        note=f"idle p99 {idle_p99:.2f} ms",
        p99_ms=p99, max_ms=worst, idle_p99_ms=idle_p99, idle_max_ms=float(idle.max()),
        ticks=ticks, expected_ticks=int(wall * 1000 / TICK_MS),
        batches=probe.batches, records=probe.records, last_step=probe.last_step,
        seconds=wall, dangling_threads=dangling,
    )
    print(f"  {name}: max lateness {worst:.1f} ms (idle max {idle.max():.1f} ms); "
          f"{ticks} of ~{int(wall * 1000 / TICK_MS)} ticks fired in {wall:.2f} s; "
          f"window got {probe.batches} batches / "
          f"{probe.records} records (last step {probe.last_step}; {what})", flush=True)
    return result
