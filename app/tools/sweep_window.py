"""The sweep window (Tools ▸ Sweep…): settings on the left, progress and the six views on the
right (and the Tuning Playbook's warning when the best trial lies at an edge of the search space,
core/tools/sweep/playbook.py).

What lives where: the settings form and what it becomes (a `core.tools.sweep.spec.SweepSpec`) in
`app.tools.sweep_settings`, its search-space table in `app.tools.space_editor`, the background
reads of the study in `app.tools.study_reads`, the views in `app.tools.sweep_views`. This module
runs the sweep and shows how it goes.

The search space is checked at once (an inverted range: one message, nothing started), and the
sweep runs in the controller's worker thread, as a race does. That thread first opens the
storage and the study (`core.tools.sweep.run.Sweep`: a PostgreSQL server over the network, a locked
SQLite file, up to its connect timeout) while the Start button says "Connecting to the
storage…"; a storage that cannot be opened, or a study made with another search space, comes
back as the same one-line message naming the field. Cancel while connecting lets the thread end
as soon as the storage answers, without starting a trial. Progress arrives throttled; the views
redraw from the study a few times a second. Cancel stops at the next step: finished trials stay
in the study, the ones in flight are marked cancelled. "Watch" attaches to an existing study
(e.g. one that `main.py sweep` workers are filling) and follows it. Every read of the storage,
the user's own sweep's too, arrives by signal from a worker thread, and a double-clicked trial
is opened from the trials of the last read: the window never reads the storage on the main
thread, from Start on.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from PySide6.QtCore import QTimer, Signal, Slot
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.shell.controller import CallbackTask, RaceController
from app.shell.document import LabDocument
from app.shell.tool_window import ToolWindow
from app.shell.worker import error_text
from app.tools.isolation_view import boundary_label, show_boundary
from app.tools.study_reads import StudyRead, StudyReads
from app.tools.sweep_settings import SweepSettings
from app.tools.sweep_text import clock, progress_text
from app.tools.sweep_views import SweepViews
from app.widgets.layouts import hbox
from app.widgets.tables import save_table_csv
from core.errors import LabError
from core.tools.sweep.run import Sweep
from core.tools.sweep.space import build_search_space
from core.tools.sweep.spec import SweepProgress, SweepSpec
from core.tools.sweep.storage import shown_url, storage_url
from core.tools.sweep_views import base_run_for, lab_with_trial, param_importance

REFRESH_INTERVAL_MS = 400  # views redraw at most this often while a sweep runs
START_TEXT, CONNECTING_TEXT = "Start sweep", "Connecting to the storage…"


@dataclass(frozen=True)
class SweepOpened:
    """The first record of a sweep's thread: its storage and study are open, or why not."""

    sweep: Sweep | None
    error: str = ""  # "field: message" when the storage or the study could not be opened


def open_and_run(spec: SweepSpec, cancelled: threading.Event):
    """The sweep thread's generator: open the storage and the study, say so, run the trials.

    Opening is a blocking database round trip (it cannot be interrupted), so it happens here,
    in the worker thread. ``cancelled`` is the window's Cancel while connecting: the window
    does not wait for the thread then, and the sweep stops before its first trial."""

    def make(stop: threading.Event):
        try:
            sweep = Sweep(spec)
        except LabError as exc:
            yield SweepOpened(None, error_text(exc))
            return
        yield SweepOpened(sweep)
        if not (stop.is_set() or cancelled.is_set()):
            yield from sweep.run(stop)

    return make


class SweepWindow(ToolWindow):
    """Settings on the left; progress and the six views on the right."""

    # The final SweepProgress; None when no trial ran (watching ended, the storage could not be
    # opened, or Cancel came while connecting).
    sweep_finished = Signal(object)

    def __init__(self, document: LabDocument, parent: QWidget | None = None):
        super().__init__(document, parent, "sweepWindow", "Sweep")
        self.controller = RaceController(self)
        self.controller.batch.connect(self._on_batch)
        self.controller.finished.connect(self._on_finished)
        self.controller.failed.connect(self._on_failed)
        self.importance_task = CallbackTask(self)
        self.importance_task.done.connect(self._on_importance)
        self.importance_task.failed.connect(self._on_importance_failed)
        self.sweep: Sweep | None = None
        self.study = None
        self.spec: SweepSpec | None = None
        self.last_progress: SweepProgress | None = None
        # From Start until the sweep's thread has opened the storage (or failed to).
        self._connecting = False
        self._connect_cancelled = threading.Event()
        self._refresh_timer = QTimer(self, singleShot=True, interval=REFRESH_INTERVAL_MS)
        self._refresh_timer.timeout.connect(self.refresh_views)
        self.reads = StudyReads(self)
        self.reads.sweep_read.connect(self._on_sweep_read)
        self.reads.watch_read.connect(self._on_watch_read)
        self.reads.failed.connect(self._on_read_failed)
        self.reads.sweep_read_due.connect(self.refresh_views)
        self._finishing: bool | None = None  # the sweep ended (cancelled?): finish on a read
        self._trials: list = []  # the trials of the last read shown (double-click opens them)
        self._watch_optimizer: str | None = None
        self._build()
        self._update_buttons()
        self.resize(1280, 780)

    # -- construction ----------------------------------------------------------------------------

    def _build(self) -> None:
        settings = self.settings = SweepSettings(self.document)
        # The settings tests reach through the window (tests/app/test_sweep_window.py,
        # tests/app/test_close_during_work.py).
        self.space, self.sampler_combo = settings.space, settings.sampler_combo
        self.trials_spin, self.prune_check = settings.trials_spin, settings.prune_check
        self.storage_combo, self.url_edit = settings.storage_combo, settings.url_edit
        self.study_edit = settings.study_edit
        self._make_run_buttons("sweep", START_TEXT, "Run the trials",
                               "Stop now: finished trials are kept")
        self.watch_button = QPushButton("Watch study", objectName="watchButton")
        self.watch_button.setCheckable(True)
        self.watch_button.setToolTip("Attach to the named study in the chosen storage and "
                                     "follow it as other workers add trials")
        self.watch_button.toggled.connect(self._on_watch_toggled)
        self.export_button = QPushButton("Export CSV…", objectName="sweepExportButton")
        self.export_button.setToolTip("Save the trials table as a CSV file (Ctrl+E)")
        self.export_button.setShortcut(QKeySequence("Ctrl+E"))
        self.export_button.clicked.connect(self._on_export)
        self._make_error_label("sweepErrorLabel", "What is wrong with the settings")

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.addWidget(settings, 1)
        left_layout.addLayout(hbox(self.start_button, self.cancel_button, self.watch_button))
        left_layout.addWidget(self.error_label)
        scroll = QScrollArea()
        scroll.setWidget(left)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(430)

        self.progress = QProgressBar(objectName="sweepProgress")
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.setToolTip("This call's share of the planned trials (pruned ones count "
                                 "as done)")
        self.progress_label = QLabel("Ready.", objectName="sweepProgressLabel")
        self.progress_label.setToolTip("Trials done / running / pruned, time and estimate")
        self.best_label = QLabel(objectName="sweepBestLabel")
        self.best_label.setWordWrap(True)
        self.best_label.setToolTip("The best trial so far and its parameters")
        self.boundary_label = boundary_label()
        self.views = SweepViews()
        self.views.table.trial_activated.connect(self.open_trial)
        self.status_label = QLabel(objectName="sweepStatusLabel")
        self.status_label.setWordWrap(True)
        self.status_label.setToolTip("What the last action did")
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.addLayout(hbox((self.progress, 1), self.export_button))
        right_layout.addWidget(self.progress_label)
        right_layout.addWidget(self.best_label)
        right_layout.addWidget(self.boundary_label)
        right_layout.addWidget(self.views, 1)
        right_layout.addWidget(self.status_label)

        splitter = QSplitter()
        splitter.addWidget(scroll)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([440, 840])
        self.setCentralWidget(splitter)

    def _update_buttons(self, *_args) -> None:
        running = self.controller.is_running()
        connecting = running and self._connecting
        self.start_button.setText(CONNECTING_TEXT if connecting else START_TEXT)
        self.start_button.setEnabled(not running and not self.reads.watching)
        self.cancel_button.setEnabled(running and not (connecting
                                                       and self._connect_cancelled.is_set()))
        self.watch_button.setEnabled(not running)
        self.settings.set_idle(not running and not self.reads.watching)

    # -- running ---------------------------------------------------------------------------------

    def start(self) -> bool:
        """Check the settings and start the sweep's thread, which opens the storage first;
        False (with the message shown) if a setting is wrong. A storage that cannot be opened
        is reported when the thread says so (`_on_opened`)."""
        if self.controller.is_running():
            return False
        try:
            spec = self.settings.build_spec()
            # An inverted range: said now, not by the thread.
            build_search_space(self.settings.run().optimizer, spec.params)
        except LabError as exc:
            self._show_error(error_text(exc))
            return False
        self._show_error("")
        self.spec, self.sweep, self.study = spec, None, None
        self.last_progress = None
        self._finishing, self._trials = None, []
        show_boundary(self.boundary_label, [])
        self._connecting = True
        self._connect_cancelled = threading.Event()  # one per start: an old thread keeps its own
        self.views.importance.set_importance(None, "Importance is computed when the sweep ends.")
        self.progress.setRange(0, 0)  # busy: how long a server takes to answer is unknown
        self.progress_label.setText(
            f"Connecting to {shown_url(storage_url(spec.storage))}…")
        self.controller.start(open_and_run(spec, self._connect_cancelled))
        self._update_buttons()
        return True

    def is_connecting(self) -> bool:
        """Whether the sweep's thread is still opening the storage and the study."""
        return self._connecting and self.controller.is_running()

    def is_reading(self) -> bool:
        """Whether a read of the study is in flight (in its worker thread)."""
        return self.reads.is_reading()

    def cancel(self) -> None:
        """Stop the sweep now; finished trials stay in the study. The views and the counts
        follow from a read in the background; `sweep_finished` is emitted when it arrives.

        While the storage is being opened the window does not wait for it (a server's connect
        timeout): the thread ends by itself once the storage answers, before any trial."""
        if not self.controller.is_running():
            return
        if self._connecting:
            self._connect_cancelled.set()
            self.progress_label.setText("Cancelling: no trial will start; waiting for the "
                                        "storage to answer…")
            self._update_buttons()
            return
        self.controller.stop()  # waits for the thread: in-flight trials are told "cancelled"
        self._after_run(cancelled=True)

    def shutdown(self) -> None:
        self._refresh_timer.stop()
        self.reads.stop()  # a read in flight ends (it cannot be interrupted), then the thread
        self.controller.shutdown()  # opening the storage, too, ends first: it cannot be cut short
        if self._connecting:
            self._end_connecting()
        self.importance_task.stop()

    @Slot(object)
    def _on_batch(self, records: list) -> None:
        if isinstance(records[0], SweepOpened):  # the thread's first record
            self._on_opened(records[0])
            records = records[1:]
            if not records:
                return
        progress = records[-1]
        self.last_progress = progress
        self.progress.setValue(int(1000 * progress.fraction))
        self.progress_label.setText(progress_text(progress))
        self._show_best(progress.best_value, progress.best_trial, progress.best_params)
        if not self._refresh_timer.isActive():
            self._refresh_timer.start()

    def _on_opened(self, opened: SweepOpened) -> None:
        """The sweep's thread has opened the storage and the study (or could not)."""
        self._end_connecting()
        spec = self.spec
        if opened.error:
            self._show_error(opened.error)
            self.progress_label.setText("Not started: see the message under the settings.")
        elif self._connect_cancelled.is_set():
            self.progress_label.setText("Cancelled before the first trial.")
        else:
            sweep = self.sweep = opened.sweep
            self.study = sweep.study
            self.study_edit.setPlaceholderText(sweep.name)
            self.progress_label.setText(f"Starting {spec.trials} trials of study "
                                        f"{sweep.name!r} in {sweep.storage}…")
            self.refresh_views()
        self._update_buttons()

    def _end_connecting(self) -> None:
        self._connecting = False
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)

    @Slot(bool)
    def _on_finished(self, _completed: bool) -> None:
        self._after_run(cancelled=False)

    @Slot(str)
    def _on_failed(self, details: str) -> None:
        self._report_failure("The sweep stopped", details)

    def _after_run(self, cancelled: bool) -> None:
        """The sweep ended: read the study once more (in the background), then finish."""
        if self._connecting:  # the thread failed before it opened the storage
            self._end_connecting()
        self._refresh_timer.stop()
        self._update_buttons()
        if self.study is None or self.sweep is None:
            self._finish_run(cancelled, None)
            return
        self._finishing = cancelled
        self.progress_label.setText("Reading the finished trials…")
        self.refresh_views()

    def _finish_run(self, cancelled: bool, counts: dict[str, int] | None) -> None:
        self._finishing = None
        p = self.last_progress
        if p is not None and cancelled and counts is not None:
            self.progress_label.setText(
                f"Cancelled after {clock(p.elapsed_s)}: {counts['complete']} complete, "
                f"{counts['pruned']} pruned trials kept; {counts['failed']} failed or "
                "cancelled.")
        elif p is not None:
            self.progress_label.setText(progress_text(p))
            self.progress.setValue(1000)
        self._start_importance()
        self._update_buttons()
        self.sweep_finished.emit(p)

    def _show_best(self, value, number, params) -> None:
        if value is None:
            self.best_label.setText("")
            return
        shown = ", ".join(f"{k} = {v:.4g}" if isinstance(v, float) else f"{k} = {v}"
                          for k, v in (params or {}).items())
        self.best_label.setText(f"<b>Best</b>: {value:.4g} (trial {number}) — {shown}. "
                                "Double-click a trial in the table to open it as a run.")

    def refresh_views(self) -> None:
        """Read the user's sweep in the background; the views redraw when the read arrives
        (one read at a time: asked for during one, it follows it)."""
        if self.study is None or self.sweep is None:
            return
        final = self._finishing is not None and not self.controller.is_running()
        self.reads.read_sweep(self.sweep, self.study, final)

    @Slot(object)
    def _on_sweep_read(self, read: StudyRead) -> None:
        if read.target is not self.sweep:
            return  # a read of an earlier sweep
        self._show_trials(read)
        if read.final and self._finishing is not None:
            self._finish_run(self._finishing, read.snapshot.counts)

    def _show_trials(self, read: StudyRead) -> None:
        self._trials = read.snapshot.trials
        self.views.update_trials(read.snapshot.trials, read.header, read.rows)
        show_boundary(self.boundary_label, read.snapshot.trials)

    def _start_importance(self) -> None:
        """Optuna's fANOVA takes a second or two: computed off the main thread."""
        study = self.study
        if study is None:
            return
        self.importance_task.start(lambda stop, report: param_importance(study))

    @Slot(object)
    def _on_importance(self, result) -> None:
        importances, message = result
        self.views.importance.set_importance(importances, message)

    @Slot(str)
    def _on_importance_failed(self, text: str) -> None:
        self.views.importance.set_importance(None, f"Importance failed: {text.splitlines()[-1]}")

    # -- watching a study --------------------------------------------------------------------------

    def _on_watch_toggled(self, on: bool) -> None:
        if not on:
            self.reads.stop_watching()
            self.progress_label.setText("Stopped watching.")
            self._start_importance()
            self._update_buttons()
            return
        try:
            storage, name = self.settings.watched_study()
        except LabError as exc:
            self._show_error(error_text(exc))
            self._uncheck_watch()
            return
        self._show_error("")
        self.sweep, self.study, self.spec = None, None, None
        self._trials, self._watch_optimizer, self._finishing = [], None, None
        show_boundary(self.boundary_label, [])
        self.progress_label.setText(f"Opening study {name!r}…")
        self.reads.watch(storage, name)
        self._update_buttons()

    def _uncheck_watch(self) -> None:
        self.watch_button.blockSignals(True)
        self.watch_button.setChecked(False)
        self.watch_button.blockSignals(False)

    @Slot(object)
    def _on_watch_read(self, read: StudyRead) -> None:
        snapshot = read.snapshot
        if self.study is None:
            self._watch_optimizer = read.optimizer
        self.study = snapshot.study
        counts = snapshot.counts
        self.progress_label.setText(
            f"Watching {snapshot.study.study_name!r}: {counts['complete']} complete · "
            f"{counts['running']} running · {counts['pruned']} pruned · "
            f"{counts['failed']} failed")
        self._show_best(*(snapshot.best or (None, None, None)))
        self._show_trials(read)

    @Slot(str)
    def _on_read_failed(self, text: str) -> None:
        line = text.strip().splitlines()[-1] if text.strip() else "unknown error"
        if self._finishing is not None and not self.reads.watching:
            # The final read of the user's sweep failed: finish anyway, and say why.
            self._show_error(f"Could not read the finished trials: {line}")
            self._finish_run(self._finishing, None)
        elif not self.reads.watching:
            return
        elif self.study is None:  # could not attach: say why and stop
            self.reads.give_up_watching()
            self._show_error(line)
            self.progress_label.setText("Not watching.")
            self._uncheck_watch()
            self._update_buttons()
        else:
            # Attached, and one read failed (a busy or unreachable server): keep trying.
            self.progress_label.setText(f"Could not read the study ({line}); trying again.")
            self.reads.read_again_later()

    # -- actions on trials -----------------------------------------------------------------------

    def open_trial(self, number: int) -> bool:
        """Add trial ``number`` to the main lab as a run (or update it): one undoable edit.

        The trial comes from the last read (the one the table shows), not from the storage:
        a double-click never waits for the database."""
        trial = next((t for t in self._trials if t.number == number), None)
        if trial is None or not trial.params:
            return False
        lab = self.document.lab
        optimizer = (self.sweep.base.optimizer if self.sweep is not None
                     else self._watch_optimizer)
        if optimizer is None:
            self._show_error("This study was not made by Descent Lab: its optimizer is unknown.")
            return False
        label = self.sweep.base.label if self.sweep is not None else None
        try:
            base = base_run_for(lab, optimizer, label)
            new_lab, run_label = lab_with_trial(lab, base, trial.params, number)
        except LabError as exc:
            self._show_error(error_text(exc))
            return False
        self.document.edit(new_lab, f"Open sweep trial {number} as a run")
        self.status_label.setText(f"Run {run_label!r} is in the lab (Ctrl+Z undoes it).")
        return True

    def _on_export(self) -> None:
        if not self.views.table.rowCount():
            self.status_label.setText("No trials to export yet.")
            return
        name = (self.study.study_name if self.study is not None else "trials")
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
        path = save_table_csv(self, "Export trials", f"{safe}.csv", self.views.table.export_csv)
        if path:
            self.status_label.setText(f"Wrote {os.path.basename(path)}.")
