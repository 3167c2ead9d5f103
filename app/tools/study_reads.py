"""Reads of a sweep's study for the sweep window, never on the main thread.

Every read of the storage (`core.tools.sweep_views.read_study`: a PostgreSQL server over the
network, a locked SQLite file) runs in a `CallbackTask` thread and arrives by signal, one read at
a time. Two kinds: the user's own sweep (the redraws while it runs, the final read after it
ends), and a watched study (one that `main.py sweep` workers are filling), read again a second
after each read arrived (single shot, so a slow database never has reads piling up). A read of
the user's sweep asked for while another is in flight waits, and `sweep_read_due` asks for it
again when that one has arrived. What the window shows of a read is up to `app.tools.sweep_window`.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from app.shell.controller import CallbackTask
from core.tools.sweep.run import trial_rows
from core.tools.sweep_views import StudySnapshot, read_study, study_optimizer

WATCH_INTERVAL_MS = 1000  # from one read of a watched study's storage to the next
READ_WATCH, READ_SWEEP = "watch", "sweep"  # whose read: a watched study, or the user's sweep


@dataclass(frozen=True)
class StudyRead:
    """One background read of a study, with what it answers (so a stale read is dropped)."""

    kind: str  # READ_WATCH or READ_SWEEP
    target: object  # (storage, study name) when watching; the Sweep when it is the user's
    final: bool  # the read after the user's sweep ended: the window finishes the run on it
    snapshot: StudySnapshot
    header: list[str]
    rows: list[list]
    optimizer: str | None  # the study's optimizer, read once when watching (for open_trial)


class _Trials:
    """The trials of one read, shaped like a study for `core.tools.sweep.run.trial_rows`."""

    def __init__(self, trials: list):
        self._trials = trials

    def get_trials(self, deepcopy: bool = False) -> list:
        return self._trials


def read_for_window(kind: str, target, final: bool, storage: str | None, name: str, study,
                    space_names: list[str] | None, want_optimizer: bool) -> StudyRead:
    """Everything one redraw needs from the storage (called in a worker thread)."""
    snapshot = read_study(storage, name, study)
    header, rows = snapshot.header, snapshot.rows
    if space_names:  # the user's sweep: its columns in the order of its search space
        header, rows = trial_rows(_Trials(snapshot.trials), space_names)
    optimizer = study_optimizer(snapshot.study) if want_optimizer else None
    return StudyRead(kind, target, final, snapshot, header, rows, optimizer)


class StudyReads(QObject):
    """The reads of one window, one at a time. See the module docstring."""

    sweep_read = Signal(object)  # a StudyRead of the user's sweep
    watch_read = Signal(object)  # a StudyRead of the study being watched (not a stale one)
    failed = Signal(str)  # a read failed: the error's text
    sweep_read_due = Signal()  # the read of the user's sweep asked for during another: ask now

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.task = CallbackTask(self)
        self.task.done.connect(self._on_done)
        self.task.failed.connect(self._on_failed)
        self.watching = False
        self._target: tuple[str | None, str] | None = None  # (storage, study name) watched
        self._study = None  # the watched study, once the first read has opened it
        self._sweep_read_waits = False
        self._timer = QTimer(self, singleShot=True, interval=WATCH_INTERVAL_MS)
        self._timer.timeout.connect(self._read_watched)

    def is_reading(self) -> bool:
        """Whether a read is in flight (in its worker thread)."""
        return self.task.is_running()

    def read_sweep(self, sweep, study, final: bool) -> None:
        """Read the user's sweep now, or (a read in flight) when that one arrives."""
        if self.task.is_running():
            self._sweep_read_waits = True
            return
        self._sweep_read_waits = False
        names = [p.name for p in sweep.space]
        self.task.start(lambda _stop, _report: read_for_window(
            READ_SWEEP, sweep, final, None, study.study_name, study, names, False))

    def watch(self, storage: str | None, name: str) -> None:
        """Follow study ``name`` in ``storage``: read it now (this opens it), then again and
        again."""
        self._target, self._study = (storage, name), None
        self.watching = True
        self._read_watched()

    def stop_watching(self) -> None:
        """No more reads of the watched study. A read in flight is not waited for (a slow
        database); its result is dropped on arrival."""
        self.watching = False
        self._timer.stop()
        self.task.cancel()

    def give_up_watching(self) -> None:
        """The watched study could not be opened: no more reads of it."""
        self.watching = False

    def read_again_later(self) -> None:
        """A read of the watched study failed (a busy server): try again after the interval."""
        self._timer.start()

    def stop(self) -> None:
        """The window is closing: no more reads; a read in flight ends first (it cannot be
        interrupted), then its thread."""
        self.watching = False
        self._sweep_read_waits = False
        self._timer.stop()
        self.task.stop()

    def _read_watched(self) -> None:
        """Start one read of the watched study in a worker thread (the first one opens it)."""
        if not self.watching or self.task.is_running():
            return  # a read in flight: its arrival starts the next one
        target = self._target
        storage, name = target
        study = self._study
        want_optimizer = study is None  # read once: which optimizer made the study
        self.task.start(lambda _stop, _report: read_for_window(
            READ_WATCH, target, False, storage, name, study, None, want_optimizer))

    @Slot(object)
    def _on_done(self, read: StudyRead) -> None:
        if read.kind == READ_SWEEP:
            self.sweep_read.emit(read)
        elif self.watching and read.target == self._target:
            self._study = read.snapshot.study
            self.watch_read.emit(read)
            self._timer.start()
        # else: stopped watching (or watching another study) while this read was under way
        self._start_next_read()

    @Slot(str)
    def _on_failed(self, text: str) -> None:
        self.failed.emit(text)
        self._start_next_read()

    def _start_next_read(self) -> None:
        """After a read arrived or failed: the one asked for meanwhile, if any."""
        if self._sweep_read_waits:
            self.sweep_read_due.emit()
        elif self.watching and not self._timer.isActive():
            self._read_watched()  # a read for an earlier target was in flight: read this one
