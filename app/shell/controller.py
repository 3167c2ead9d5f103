"""The controller: owns the QThread and the worker, and is the only place that starts or ends them.

Lifecycle: ``start`` makes a worker for a core generator, moves it to a fresh QThread and starts
it. ``stop`` sets the worker's stop event, then ``quit()`` + ``wait()`` — never ``terminate()``.
``shutdown`` is ``stop`` and is wired to the main window's ``closeEvent`` and to
``QApplication.aboutToQuit``. Batches of a worker that has been replaced are dropped (a queued
signal can still arrive after its worker stopped), so a restart never mixes two races.

`CallbackTask` does the same for a blocking core call that reports through a callback
(`CallbackWorker`: the LR range test, the fair race, parameter importance), with the same thread
start and stop.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from app.shell.worker import CallbackWorker, GeneratorWorker

# Every QThread this app starts, while it exists: tests assert none is left running.
LIVE_THREADS: weakref.WeakSet[QThread] = weakref.WeakSet()


def start_thread(worker: QObject, name: str) -> QThread:
    """Move ``worker`` (signals already connected) to a new QThread that runs ``worker.run``."""
    thread = QThread()
    thread.setObjectName(name)
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    LIVE_THREADS.add(thread)
    thread.start()
    return thread


def end_thread(thread: QThread) -> None:
    """Let ``thread`` leave its event loop and wait for it: never ``terminate()``."""
    thread.quit()
    thread.wait()
    LIVE_THREADS.discard(thread)


class RaceController(QObject):
    """Start / play / pause / step / stop a background generator; re-emit its batches."""

    batch = Signal(object)  # list of records, on the main thread
    finished = Signal(bool)  # True: ran to the end; False: stopped or failed
    failed = Signal(str)  # traceback text
    state_changed = Signal(str)  # "idle" | "playing" | "paused"

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._thread: QThread | None = None
        self._worker: GeneratorWorker | None = None
        self._speed = 0.0
        self._generation = 0
        # Set except while the window draws (see GeneratorWorker); shared by every worker.
        self.main_idle = threading.Event()
        self.main_idle.set()

    # -- queries -----------------------------------------------------------------------------

    def is_running(self) -> bool:
        return self._thread is not None

    def is_playing(self) -> bool:
        return self._worker is not None and self._worker.is_playing()

    def state(self) -> str:
        if self._worker is None:
            return "idle"
        return "playing" if self._worker.is_playing() else "paused"

    # -- commands ----------------------------------------------------------------------------

    def start(self, make: Callable[[threading.Event], Iterator], playing: bool = True) -> None:
        """Run ``make(stop_event)`` on a new thread (stopping any previous one first)."""
        self.stop()
        self._generation += 1
        worker = GeneratorWorker(
            make, playing=playing, generation=self._generation, main_idle=self.main_idle
        )
        worker.set_speed(self._speed)
        worker.batch_ready.connect(self._on_batch)
        worker.failed.connect(self._on_failed)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self._thread = start_thread(worker, "descent-lab-worker")
        self.state_changed.emit(self.state())

    def play(self) -> None:
        if self._worker is not None:
            self._worker.play()
            self.state_changed.emit(self.state())

    def pause(self) -> None:
        if self._worker is not None:
            self._worker.pause()
            self.state_changed.emit(self.state())

    def step(self, n: int = 1) -> None:
        if self._worker is not None:
            self._worker.pause()
            self._worker.request_steps(n)
            self.state_changed.emit(self.state())

    def set_speed(self, steps_per_second: float) -> None:
        """Steps per second; 0 runs as fast as the machine allows."""
        self._speed = steps_per_second
        if self._worker is not None:
            self._worker.set_speed(steps_per_second)

    def stop(self) -> None:
        """End the worker and its thread; returns when the thread has finished."""
        worker, thread = self._worker, self._thread
        if worker is None or thread is None:
            return
        self._worker = self._thread = None
        worker.stop()
        end_thread(thread)
        self._dispose(worker)
        self.state_changed.emit("idle")

    shutdown = stop

    # -- worker signals (main thread) ------------------------------------------------------------

    def _is_current(self, generation: int) -> bool:
        return self._worker is not None and generation == self._worker.generation

    @Slot(int, object)
    def _on_batch(self, generation: int, records: list) -> None:
        if not self._is_current(generation):
            return  # queued by a worker that was stopped or replaced
        worker = self._worker
        self.batch.emit(records)
        # Only now may the worker queue the next batch: the window never falls behind a queue.
        worker.batch_consumed()

    @Slot(int, str)
    def _on_failed(self, generation: int, text: str) -> None:
        if self._is_current(generation):
            self.failed.emit(text)

    @Slot(int, bool)
    def _on_finished(self, generation: int, completed: bool) -> None:
        if not self._is_current(generation) or self._thread is None:
            return
        worker, thread = self._worker, self._thread
        self._worker = self._thread = None
        end_thread(thread)
        self._dispose(worker)
        self.state_changed.emit("idle")
        self.finished.emit(completed)

    def _dispose(self, worker: GeneratorWorker) -> None:
        for signal, slot in (
            (worker.batch_ready, self._on_batch),
            (worker.failed, self._on_failed),
            (worker.finished, self._on_finished),
        ):
            try:
                signal.disconnect(slot)
            except (RuntimeError, TypeError):
                pass
        # Both are Python-owned (no Qt parent): dropping the last reference deletes them, now
        # that the thread has finished. deleteLater would never run for the worker, whose
        # thread no longer has an event loop.


class CallbackTask(QObject):
    """Run ``call(stop_event, report)`` on a new QThread; re-emit its signals on this thread."""

    progress = Signal(object)
    done = Signal(object)  # the call's result
    failed = Signal(str)  # "field: message" for a LabError, else a traceback
    stopped = Signal()  # the thread has ended (after done / failed, or after stop)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._thread: QThread | None = None
        self._worker: CallbackWorker | None = None
        self._generation = 0

    def is_running(self) -> bool:
        return self._thread is not None

    def start(self, call: Callable[[threading.Event, Callable[[Any], None]], Any]) -> None:
        self.stop()
        self._generation += 1
        worker = CallbackWorker(call, self._generation)
        worker.progress.connect(self._on_progress)
        worker.done.connect(self._on_done)
        worker.failed.connect(self._on_failed)
        self._worker = worker
        self._thread = start_thread(worker, "descent-lab-task")

    def cancel(self) -> None:
        """Ask the call to stop at its next check; its result (or error) still arrives."""
        if self._worker is not None:
            self._worker.stop_event.set()

    def stop(self) -> None:
        """Stop the call and wait for the thread (shutdown, close); its result is dropped."""
        if self._worker is not None:
            self._worker.stop_event.set()
        self._end_thread()

    def _end_thread(self) -> None:
        worker, thread = self._worker, self._thread
        if worker is None or thread is None:
            return
        self._worker = self._thread = None
        end_thread(thread)
        worker.deleteLater()
        thread.deleteLater()
        self.stopped.emit()

    def _is_current(self, generation: int) -> bool:
        return self._worker is not None and generation == self._worker.generation

    @Slot(int, object)
    def _on_progress(self, generation: int, payload) -> None:
        if self._is_current(generation):
            self.progress.emit(payload)

    @Slot(int, object)
    def _on_done(self, generation: int, result) -> None:
        if self._is_current(generation):
            self._end_thread()  # run() has returned or is about to: a short wait
            self.done.emit(result)

    @Slot(int, str)
    def _on_failed(self, generation: int, text: str) -> None:
        if self._is_current(generation):
            self._end_thread()
            self.failed.emit(text)
