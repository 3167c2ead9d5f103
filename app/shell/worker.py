"""The worker: iterates a core generator in a QThread and hands batches to the main thread.

Design (after napari / superqt's generator workers and Orange3's throttled partial results):

* The work is any core generator factory ``make(stop_event) -> Iterator[record]``; the worker knows
  nothing about optimizers. Tests can run the same generator without threads.
* Control crosses threads through `threading` primitives, never queued slots: a busy loop never
  runs its event loop, so a queued "stop" would never arrive. ``stop`` ends the loop at the next
  step; ``play``/``pause`` gate it; ``request_steps(n)`` lets a paused race advance n steps.
* Records are batched and emitted at most `MAX_EMIT_HZ` times a second, and at most
  `MAX_IN_FLIGHT` batches may wait unconsumed in the main thread's queue: if the window falls
  behind, the worker keeps computing and batches grow instead of the event queue.
* ``speed`` (steps per second, 0 = as fast as possible) paces the loop with ``stop.wait`` so that
  a stop request is never stuck behind a sleep.

`CallbackWorker` is the same idea for a blocking core function that reports through a callback
instead of yielding (the LR range test, the fair race): ``call(stop_event, report)``; progress is
throttled at the source and a `LabError` arrives as its one-line text.
"""

from __future__ import annotations

import math
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from core.engine.devices import configure_threads
from core.errors import LabError

MAX_EMIT_HZ = 60
MAX_IN_FLIGHT = 1
# The engine is Python-heavy and holds the GIL between torch calls. With CPython's default 5 ms
# switch interval the main thread waits up to 5 ms every time it needs the GIL back (a convoy:
# a redraw makes hundreds of such handovers). 0.5 ms keeps the window responsive.
GIL_SWITCH_INTERVAL = 0.0005
REPORT_INTERVAL_S = 0.05  # a callback's progress at most 20 times a second (Orange3's rule)


def error_text(exc: LabError) -> str:
    """A `LabError` as one line for a window: "field: message"."""
    return f"{exc.field}: {exc.message}" if exc.field else exc.message


class GeneratorWorker(QObject):
    """Runs ``make(stop)`` to exhaustion (or stop) on whatever thread it is moved to."""

    # Every signal carries the worker's generation, so a receiver can drop what a replaced
    # worker had already queued (QObject.sender() is not reliable across queued connections).
    batch_ready = Signal(int, object)  # generation, list of records
    finished = Signal(int, bool)  # generation; True when the generator ran to its end
    failed = Signal(int, str)  # generation, traceback text of an unexpected exception

    def __init__(
        self,
        make: Callable[[threading.Event], Iterator],
        playing: bool = True,
        generation: int = 0,
        main_idle: threading.Event | None = None,
    ):
        super().__init__()
        self._make = make
        self.generation = generation
        # Cleared by the window while it draws: the loop waits between steps, so the drawing
        # main thread does not queue for the GIL behind the engine hundreds of times a frame.
        self._main_idle = main_idle
        self.stop_event = threading.Event()
        self._playing = threading.Event()
        if playing:
            self._playing.set()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._step_budget = 0
        self._speed = 0.0
        self._in_flight = threading.Semaphore(MAX_IN_FLIGHT)

    # -- thread-safe controls (called from the main thread) -------------------------------------

    def stop(self) -> None:
        self.stop_event.set()
        self._wake.set()

    def play(self) -> None:
        self._playing.set()
        self._wake.set()

    def pause(self) -> None:
        self._playing.clear()

    def is_playing(self) -> bool:
        return self._playing.is_set()

    def request_steps(self, n: int = 1) -> None:
        with self._lock:
            self._step_budget += n
        self._wake.set()

    def set_speed(self, steps_per_second: float) -> None:
        self._speed = max(0.0, float(steps_per_second))
        self._wake.set()

    def batch_consumed(self) -> None:
        """The main thread has drawn a batch: room for another in the queue."""
        self._in_flight.release()

    # -- the loop (runs on the worker thread) ----------------------------------------------------

    def _take_step_permit(self) -> bool:
        if self._playing.is_set():
            return True
        with self._lock:
            if self._step_budget > 0:
                self._step_budget -= 1
                return True
        return False

    @Slot()
    def run(self) -> None:
        # Per-thread setting: two cores, and the main thread must keep one to paint.
        configure_threads()
        if sys.getswitchinterval() > GIL_SWITCH_INTERVAL:
            sys.setswitchinterval(GIL_SWITCH_INTERVAL)
        batch: list = []
        last_emit = 0.0
        next_due = time.perf_counter()
        completed = False
        try:
            records = self._make(self.stop_event)
            while not self.stop_event.is_set():
                if self._main_idle is not None and not self._main_idle.is_set():
                    self._main_idle.wait(0.1)
                if not self._take_step_permit():
                    last_emit = self._flush(batch, last_emit, force=True)
                    self._wake.wait(0.05)
                    self._wake.clear()
                    next_due = time.perf_counter()
                    continue
                try:
                    record = next(records)
                except StopIteration:
                    completed = True
                    break
                batch.append(record)
                speed = self._speed
                if speed > 0:
                    next_due += 1.0 / speed
                    delay = next_due - time.perf_counter()
                    if delay > 0:
                        self._flush(batch, last_emit, force=False)
                        self.stop_event.wait(delay)
                    else:
                        next_due = max(next_due, time.perf_counter() - 0.25)
                last_emit = self._flush(batch, last_emit, force=False)
            if not self.stop_event.is_set():
                # Finished: deliver everything. (Stopped: the user asked to drop the rest.)
                self._flush(batch, last_emit, force=True, block=True)
        except Exception:  # noqa: BLE001 - reported to the user, not swallowed
            # What the generator produced before it failed is real: deliver it first (a
            # throttled batch was otherwise lost, e.g. a sweep's first progress).
            self._flush(batch, last_emit, force=True, block=True)
            self.failed.emit(self.generation, traceback.format_exc())
        self.finished.emit(self.generation, completed)

    def _flush(self, batch: list, last_emit: float, force: bool, block: bool = False) -> float:
        """Emit the batch if it is time (≤ MAX_EMIT_HZ) and the main thread has room."""
        if not batch:
            return last_emit
        now = time.perf_counter()
        if not force and now - last_emit < 1.0 / MAX_EMIT_HZ:
            return last_emit
        if block:
            # The final batch goes out even if the window is slow; waiting bounds the queue.
            self._in_flight.acquire(timeout=1.0)
        elif not self._in_flight.acquire(blocking=False):
            return last_emit
        self.batch_ready.emit(self.generation, list(batch))
        batch.clear()
        return now


class CallbackWorker(QObject):
    """Runs ``call(stop_event, report)`` once on whatever thread it is moved to."""

    # Each signal carries the worker's generation, as GeneratorWorker's do.
    progress = Signal(int, object)
    done = Signal(int, object)
    failed = Signal(int, str)

    def __init__(self, call: Callable[[threading.Event, Callable[[Any], None]], Any],
                 generation: int):
        super().__init__()
        self._call = call
        self.generation = generation
        self.stop_event = threading.Event()
        self._last = -math.inf

    def report(self, payload: Any, force: bool = False) -> None:
        """Called by the core function on the worker thread; throttled at the source."""
        now = time.perf_counter()
        if force or now - self._last >= REPORT_INTERVAL_S:
            self._last = now
            self.progress.emit(self.generation, payload)

    @Slot()
    def run(self) -> None:
        configure_threads()
        try:
            result = self._call(self.stop_event, self.report)
        except LabError as exc:
            self.failed.emit(self.generation, error_text(exc))
        except Exception:  # noqa: BLE001 - shown to the user, not swallowed
            self.failed.emit(self.generation, traceback.format_exc())
        else:
            self.done.emit(self.generation, result)
