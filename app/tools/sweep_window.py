"""The sweep and fair-race windows (Tools ▸ Sweep…, Tools ▸ Fair race…).

Sweep: pick the run to tune, tick the hyperparameters to search (rows from the optimizer's
registry specs, ranges editable, log scale toggle, grid points), the sampler, objective,
trials, seeds, pruning, storage and study name. The settings become a `core.tools.sweep.SweepSpec`;
the search space is checked at once (an inverted range: one message, nothing started), and the
sweep runs in the controller's worker thread, as a race does. That thread first opens the
storage and the study (`core.tools.sweep.Sweep`: a PostgreSQL server over the network, a locked
SQLite file, up to its connect timeout) while the Start button says "Connecting to the
storage…"; a storage that cannot be opened, or a study made with another search space, comes
back as the same one-line message naming the field. Cancel while connecting lets the thread end
as soon as the storage answers, without starting a trial. Progress arrives throttled; the views
redraw from the study a few times a second. Cancel stops at the next step: finished trials stay
in the study, the ones in flight are marked cancelled. "Watch" attaches to an existing study (e.g.
one that `main.py sweep` workers are filling) and reads its storage again a second after each
read: every read (`core.tools.sweep_views.read_study`) runs in a `CallbackTask` thread and arrives by
signal, so a slow database server or a locked SQLite file never freezes the window. The user's
own sweep is read the same way (the redraws while it runs, the final read after it ends or is
cancelled), and a double-clicked trial is opened from the trials of the last read: the window
never reads the storage on the main thread, from Start on.

Fair race: `core.tools.sweep.fair_race` tunes each chosen optimizer with the same budget, seeds,
sampler seed and objective, in app.shell.controller's `CallbackTask`; at the end the tuned lab (network labs with
the chosen seeds, so the race view shows mean ± std bands) replaces the main window's lab as
one undoable edit and plays.
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.shell.controller import CallbackTask, RaceController
from app.shell.document import LabDocument
from app.shell.layouts import hbox
from app.shell.tool_window import ToolWindow
from app.shell.worker import error_text
from app.tools.sweep_views import SweepViews
from app.widgets.tables import save_table_csv
from core.errors import LabError
from core.lab.format import MAX_SEEDS as LAB_MAX_SEEDS
from core.optim.hyperparams import HyperParam, format_number
from core.tools.sweep import (
    DEFAULT_GRID_POINTS,
    MAX_GRID_POINTS,
    OBJECTIVES,
    SAMPLERS,
    Sweep,
    SweepProgress,
    SweepSpec,
    build_search_space,
    default_storage,
    default_study_name,
    fair_race,
    shown_url,
    storage_url,
    trial_rows,
)
from core.tools.sweep_views import (
    StudySnapshot,
    base_run_for,
    lab_with_trial,
    param_flag,
    param_importance,
    read_study,
    searchable_params,
    study_optimizer,
)

SAMPLER_TITLES = {"grid": "Grid", "random": "Random", "tpe": "TPE (Bayesian)",
                  "cmaes": "CMA-ES"}
SAMPLER_TIPS = {
    "grid": "Every combination of the ticked values (ranges get N points each)",
    "random": "Independent random draws from the ranges",
    "tpe": "Bayesian: proposes where good trials cluster (Optuna's TPE, seeded)",
    "cmaes": "Evolution strategy for continuous ranges (no lists of values)",
}
STORAGE_MEMORY, STORAGE_SQLITE, STORAGE_URL = "memory", "sqlite", "url"
REFRESH_INTERVAL_MS = 400  # views redraw at most this often while a sweep runs
WATCH_INTERVAL_MS = 1000  # from one read of a watched study's storage to the next
READ_WATCH, READ_SWEEP = "watch", "sweep"  # whose read: a watched study, or the user's sweep
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
    """The trials of one read, shaped like a study for `core.tools.sweep.trial_rows`."""

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


def _clock(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "—"
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def progress_text(p: SweepProgress) -> str:
    """One line: trials done / running / pruned / failed, time, estimate, best."""
    parts = [f"{p.done} / {p.trials_planned} trials", f"{p.running} running",
             f"{p.pruned} pruned"]
    if p.failed:
        parts.append(f"{p.failed} failed")
    parts.append(f"{_clock(p.elapsed_s)} elapsed")
    if not p.final:
        parts.append(f"~{_clock(p.eta_s)} left")
    if p.best_value is not None:
        parts.append(f"best {p.best_value:.4g} (trial {p.best_trial})")
    if p.final:
        parts.append("cancelled — finished trials kept" if p.cancelled else "done")
    return " · ".join(parts)


# -- the search-space editor -----------------------------------------------------------------------


class ParamRow:
    """One hyperparameter in the search-space table: tick, low, high, log, grid points."""

    def __init__(self, table: QTableWidget, row: int, hp: HyperParam, ticked: bool):
        self.hp = hp
        self.check = QCheckBox(hp.name)
        self.check.setChecked(ticked)
        self.check.setToolTip(f"Search {hp.name}. {hp.tooltip}")
        table.setCellWidget(row, 0, self.check)
        numeric = hp.kind in ("float", "int")
        if numeric:
            low, high = hp.search
            self.low = QLineEdit(format_number(low))
            self.high = QLineEdit(format_number(high))
            allowed = hp.describe_range()
            self.low.setToolTip(f"Lowest value to try (registry range: {allowed})")
            self.high.setToolTip(f"Highest value to try (registry range: {allowed})")
            self.log = QCheckBox()
            self.log.setChecked(hp.log and low > 0)
            self.log.setToolTip("Search on a log scale (each decade equally often); needs a "
                                "low value > 0")
            self.points = QSpinBox()
            self.points.setRange(2, MAX_GRID_POINTS)
            self.points.setValue(DEFAULT_GRID_POINTS)
            self.points.setToolTip("Points of this range a grid sweep visits")
            for column, widget in ((1, self.low), (2, self.high), (3, self.log),
                                   (4, self.points)):
                table.setCellWidget(row, column, widget)
        else:
            values = "true, false" if hp.kind == "bool" else ", ".join(hp.choices)
            item = QTableWidgetItem(f"all of: {values}")
            item.setToolTip(f"{hp.name} is searched over all its values")
            item.setFlags(Qt.ItemFlag.ItemIsEnabled)
            table.setItem(row, 1, item)
            table.setSpan(row, 1, 1, 4)
            self.low = self.high = self.log = self.points = None

    def flag(self) -> str:
        """The ``--param`` text for this row (core.tools.sweep parses and checks it)."""
        if self.low is None:
            return param_flag(self.hp)
        low, high = self.low.text().strip(), self.high.text().strip()
        if not low or not high:
            raise LabError(self.hp.name, "the range is empty: give both a low and a high value")
        return param_flag(self.hp, low, high, self.log.isChecked(), self.points.value())

    def set_range(self, low: str, high: str, log: bool | None = None,
                  points: int | None = None) -> None:
        self.low.setText(low)
        self.high.setText(high)
        if log is not None:
            self.log.setChecked(log)
        if points is not None:
            self.points.setValue(points)


class SpaceEditor(QTableWidget):
    """The optimizer's searchable hyperparameters; lr ticked by default."""

    HEADERS = (("search", "Tick the hyperparameters to search"),
               ("low", "Lowest value to try"), ("high", "Highest value to try"),
               ("log", "Log scale"), ("grid N", "Points per range for a grid sweep"))

    def __init__(self, parent=None):
        super().__init__(0, len(self.HEADERS), parent, objectName="spaceTable")
        for column, (text, tip) in enumerate(self.HEADERS):
            item = QTableWidgetItem(text)
            item.setToolTip(tip)
            self.setHorizontalHeaderItem(column, item)
        self.verticalHeader().setVisible(False)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.setToolTip("What the sweep searches: tick rows, narrow their ranges. Defaults "
                        "are the registry's search ranges.")
        self.rows: dict[str, ParamRow] = {}
        self.optimizer: str | None = None

    def set_optimizer(self, optimizer: str) -> None:
        if optimizer == self.optimizer:
            return
        self.optimizer = optimizer
        specs = searchable_params(optimizer)
        self.clearSpans()
        self.setRowCount(len(specs))
        self.rows = {hp.name: ParamRow(self, r, hp, hp.name == "lr")
                     for r, hp in enumerate(specs)}
        if "lr" not in self.rows and self.rows:  # e.g. an optimizer without lr
            next(iter(self.rows.values())).check.setChecked(True)

    def flags(self) -> tuple[str, ...]:
        ticked = [row for row in self.rows.values() if row.check.isChecked()]
        if not ticked:
            raise LabError("search", "tick at least one hyperparameter to search")
        return tuple(row.flag() for row in ticked)

    def tick(self, name: str, on: bool = True) -> ParamRow:
        row = self.rows[name]
        row.check.setChecked(on)
        return row


# -- the sweep window ------------------------------------------------------------------------------


class SweepWindow(ToolWindow):
    """Settings on the left; progress and the five views on the right."""

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
        # Every read of the storage (watching, or the user's own sweep): one at a time, in a
        # worker thread. When watching, the next is due a second after the last arrived (single
        # shot), so a slow database never has reads piling up; a sweep read asked for while
        # one is in flight is queued (`_pending_read`) and starts when it arrives.
        self.read_task = CallbackTask(self)
        self.read_task.done.connect(self._on_read)
        self.read_task.failed.connect(self._on_read_failed)
        self._pending_read = False  # a read of the user's sweep waits for the one in flight
        self._finishing: bool | None = None  # the sweep ended (cancelled?): finish on a read
        self._trials: list = []  # the trials of the last read shown (double-click opens them)
        self._watch_optimizer: str | None = None
        self._watching = False
        self._watch_target: tuple[str | None, str] | None = None  # (storage, study name)
        self._watch_timer = QTimer(self, singleShot=True, interval=WATCH_INTERVAL_MS)
        self._watch_timer.timeout.connect(self._read_watched)
        self._build()
        document.lab_changed.connect(self._refresh_runs)
        document.path_changed.connect(self._refresh_storage_choices)
        self._refresh_runs()
        self._refresh_storage_choices()
        self._update_buttons()
        self.resize(1280, 780)

    # -- construction ----------------------------------------------------------------------------

    def _build(self) -> None:
        self.run_combo = QComboBox(objectName="sweepRunCombo")
        self.run_combo.setToolTip("The run to tune: its optimizer, schedule and other "
                                  "hyperparameters stay; the ticked ones are searched")
        self.run_combo.currentIndexChanged.connect(self._on_run_changed)
        self.space = SpaceEditor()
        self.sampler_combo = QComboBox(objectName="samplerCombo")
        for name in SAMPLERS:
            self.sampler_combo.addItem(SAMPLER_TITLES[name], name)
            self.sampler_combo.setItemData(self.sampler_combo.count() - 1, SAMPLER_TIPS[name],
                                           Qt.ItemDataRole.ToolTipRole)
        self.sampler_combo.setCurrentIndex(SAMPLERS.index("tpe"))
        self.sampler_combo.setToolTip("How Optuna picks the next trial")
        self.objective_combo = QComboBox(objectName="objectiveCombo")
        for name, text in OBJECTIVES.items():
            self.objective_combo.addItem(name.replace("_", " "), name)
            self.objective_combo.setItemData(self.objective_combo.count() - 1, text,
                                             Qt.ItemDataRole.ToolTipRole)
        self.objective_combo.setToolTip("What the sweep minimises, averaged over the seeds")
        self.objective_combo.currentIndexChanged.connect(self._update_buttons)
        self.target_spin = QDoubleSpinBox(objectName="targetSpin")
        self.target_spin.setDecimals(4)
        self.target_spin.setRange(-1e9, 1e9)
        self.target_spin.setValue(0.1)
        self.target_spin.setToolTip("steps to target: the loss a run has to reach")
        self.trials_spin = QSpinBox(objectName="trialsSpin")
        self.trials_spin.setRange(1, 100_000)
        self.trials_spin.setValue(20)
        self.trials_spin.setToolTip("New trials to run (a resumed study keeps its old ones; a "
                                    "grid stops when every point is done)")
        self.seeds_spin = QSpinBox(objectName="seedsSpin")
        self.seeds_spin.setRange(1, 100)
        self.seeds_spin.setToolTip("Each trial trains from this many seeds (initial weights, "
                                   "batch order) and scores their mean; network labs only")
        self.prune_check = QCheckBox("Median pruning", objectName="pruneCheck")
        self.prune_check.setChecked(True)
        self.prune_check.setToolTip("Stop a trial early when it is worse than the median of "
                                    "the finished trials at the same step")
        self.storage_combo = QComboBox(objectName="storageCombo")
        self.storage_combo.setToolTip("Where the study is kept: memory (gone when the window "
                                      "closes), a SQLite file next to the lab (resume later), "
                                      "or any database URL Optuna accepts (several workers)")
        self.storage_combo.currentIndexChanged.connect(self._update_buttons)
        self.url_edit = QLineEdit(objectName="storageUrlEdit")
        self.url_edit.setPlaceholderText("sqlite:///path/study.db or postgresql://user@host/db")
        self.url_edit.setToolTip("A database URL Optuna accepts, or a plain file path "
                                 "(a SQLite file)")
        self.study_edit = QLineEdit(objectName="studyEdit")
        self.study_edit.setToolTip("The study's name in the storage: the same name resumes it "
                                   "(or lets several workers share it)")

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

        form = QFormLayout()
        form.addRow("Run", self.run_combo)
        form.addRow("Sampler", self.sampler_combo)
        form.addRow("Objective", self.objective_combo)
        form.addRow("Target loss", self.target_spin)
        form.addRow("Trials", self.trials_spin)
        form.addRow("Seeds", self.seeds_spin)
        form.addRow("", self.prune_check)
        form.addRow("Storage", self.storage_combo)
        form.addRow("URL", self.url_edit)
        form.addRow("Study", self.study_edit)
        self._make_error_label("sweepErrorLabel", "What is wrong with the settings")
        buttons = hbox(self.start_button, self.cancel_button, self.watch_button)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.addWidget(QLabel("<b>Search space</b>"))
        left_layout.addWidget(self.space, 1)
        left_layout.addLayout(form)
        left_layout.addLayout(buttons)
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
        right_layout.addWidget(self.views, 1)
        right_layout.addWidget(self.status_label)

        splitter = QSplitter()
        splitter.addWidget(scroll)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([440, 840])
        self.setCentralWidget(splitter)

    def _refresh_runs(self, *_args) -> None:
        current = self.run_combo.currentData()
        self.run_combo.blockSignals(True)
        self.run_combo.clear()
        for run in self.document.lab.enabled_runs():
            self.run_combo.addItem(f"{run.label}  ({run.optimizer})", run.label)
        self.run_combo.setCurrentIndex(max(0, self.run_combo.findData(current)))
        self.run_combo.blockSignals(False)
        network = self.document.lab.is_network
        if not network:
            self.seeds_spin.setValue(1)
            self.seeds_spin.setToolTip("A 2-D function lab has no randomness: one seed")
        self._on_run_changed()
        self._update_buttons()  # seeds: network labs only, and not while a sweep runs

    def _on_run_changed(self, *_args) -> None:
        run = self._run()
        if run is not None:
            self.space.set_optimizer(run.optimizer)

    def _run(self):
        label = self.run_combo.currentData()
        for run in self.document.lab.runs:
            if run.label == label:
                return run
        return None

    def _refresh_storage_choices(self, *_args) -> None:
        current = self.storage_combo.currentData()
        self.storage_combo.blockSignals(True)
        self.storage_combo.clear()
        self.storage_combo.addItem("In memory", STORAGE_MEMORY)
        path = self.document.path
        if path is not None:
            url = default_storage(path)
            self.storage_combo.addItem(f"SQLite next to the lab ({Path(url[10:]).name})",
                                       STORAGE_SQLITE)
        self.storage_combo.addItem("Database URL…", STORAGE_URL)
        index = self.storage_combo.findData(current)
        if index < 0:  # a saved lab keeps its sweeps beside it by default
            index = self.storage_combo.findData(STORAGE_SQLITE if path else STORAGE_MEMORY)
        self.storage_combo.setCurrentIndex(index)
        self.storage_combo.blockSignals(False)
        self._update_buttons()

    def _update_buttons(self, *_args) -> None:
        running = self.controller.is_running()
        watching = self._watching
        connecting = running and self._connecting
        self.start_button.setText(CONNECTING_TEXT if connecting else START_TEXT)
        self.start_button.setEnabled(not running and not watching)
        self.cancel_button.setEnabled(running and not (connecting
                                                       and self._connect_cancelled.is_set()))
        self.watch_button.setEnabled(not running)
        idle = not running and not watching
        self.url_edit.setEnabled(idle and self.storage_combo.currentData() == STORAGE_URL)
        self.target_spin.setEnabled(idle and self.objective_combo.currentData()
                                    == "steps_to_target")
        self.seeds_spin.setEnabled(idle and self.document.lab.is_network)
        for widget in (self.run_combo, self.space, self.sampler_combo, self.objective_combo,
                       self.trials_spin, self.prune_check, self.storage_combo, self.study_edit):
            widget.setEnabled(idle)

    # -- settings → spec -------------------------------------------------------------------------

    def storage(self) -> str | None:
        kind = self.storage_combo.currentData()
        if kind == STORAGE_SQLITE and self.document.path is not None:
            return default_storage(self.document.path)
        if kind == STORAGE_URL:
            text = self.url_edit.text().strip()
            if not text:
                raise LabError("URL", "give a database URL (sqlite:///file.db, "
                                      "postgresql://user@host/db) or pick another storage")
            return text
        return None

    def build_spec(self) -> SweepSpec:
        """The settings as a `SweepSpec` (a `LabError` names the first wrong field)."""
        run = self._run()
        if run is None:
            raise LabError("Run", "the lab has no enabled run to tune; add or enable one")
        objective = self.objective_combo.currentData()
        lab = self.document.lab
        if lab.is_network and lab.problem.seeds > 1:
            lab = replace(lab, problem=replace(lab.problem, seeds=1))  # the sweep seeds itself
        spec = SweepSpec(
            lab=lab, run=run.label, params=self.space.flags(), trials=self.trials_spin.value(),
            sampler=self.sampler_combo.currentData(), objective=objective,
            target=self.target_spin.value() if objective == "steps_to_target" else None,
            seeds=self.seeds_spin.value(), prune=self.prune_check.isChecked(),
            storage=self.storage(), study=self.study_edit.text().strip() or None,
        )
        return spec

    # -- running ---------------------------------------------------------------------------------

    def start(self) -> bool:
        """Check the settings and start the sweep's thread, which opens the storage first;
        False (with the message shown) if a setting is wrong. A storage that cannot be opened
        is reported when the thread says so (`_on_opened`)."""
        if self.controller.is_running():
            return False
        try:
            spec = self.build_spec()
            build_search_space(self._run().optimizer, spec.params)  # an inverted range: now
        except LabError as exc:
            self._show_error(error_text(exc))
            return False
        self._show_error("")
        self.spec, self.sweep, self.study = spec, None, None
        self.last_progress = None
        self._finishing, self._trials = None, []
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
        self._watching = False
        self._pending_read = False
        self._watch_timer.stop()
        self._refresh_timer.stop()
        self.read_task.stop()  # a read in flight ends (it cannot be interrupted), then the thread
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
                f"Cancelled after {_clock(p.elapsed_s)}: {counts['complete']} complete, "
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
        if self.read_task.is_running():
            self._pending_read = True
            return
        self._pending_read = False
        sweep, study = self.sweep, self.study
        final = self._finishing is not None and not self.controller.is_running()
        names = [p.name for p in sweep.space]
        self.read_task.start(lambda _stop, _report: read_for_window(
            READ_SWEEP, sweep, final, None, study.study_name, study, names, False))

    def _on_sweep_read(self, read: StudyRead) -> None:
        if read.target is not self.sweep:
            return  # a read of an earlier sweep
        self._show_trials(read)
        if read.final and self._finishing is not None:
            self._finish_run(self._finishing, read.snapshot.counts)

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
            self._watching = False
            self._watch_timer.stop()
            # Not stop(): that would wait for a slow read. Its result is dropped on arrival.
            self.read_task.cancel()
            self.progress_label.setText("Stopped watching.")
            self._start_importance()
            self._update_buttons()
            return
        try:
            storage = self.storage()
            name = self.study_edit.text().strip()
            if not name:
                run = self._run()
                if run is None:
                    raise LabError("Study", "name the study to watch")
                name = default_study_name(SweepSpec(self.document.lab, run=run.label,
                                                    objective=self.objective_combo.currentData()))
        except LabError as exc:
            self._show_error(error_text(exc))
            self._uncheck_watch()
            return
        self._show_error("")
        self.sweep, self.study, self.spec = None, None, None
        self._trials, self._watch_optimizer, self._finishing = [], None, None
        self._watch_target = (storage, name)
        self._watching = True
        self.progress_label.setText(f"Opening study {name!r}…")
        self._update_buttons()
        self._read_watched()

    def _uncheck_watch(self) -> None:
        self.watch_button.blockSignals(True)
        self.watch_button.setChecked(False)
        self.watch_button.blockSignals(False)

    def is_reading(self) -> bool:
        """Whether a read of the study is in flight (in its worker thread)."""
        return self.read_task.is_running()

    def _read_watched(self) -> None:
        """Start one read of the watched study in a worker thread (the first one opens it)."""
        if not self._watching or self.read_task.is_running():
            return  # a read in flight: its arrival starts the next one
        target = self._watch_target
        storage, name = target
        study = self.study
        want_optimizer = study is None  # read once: which optimizer made the study
        self.read_task.start(lambda _stop, _report: read_for_window(
            READ_WATCH, target, False, storage, name, study, None, want_optimizer))

    @Slot(object)
    def _on_read(self, read: StudyRead) -> None:
        if read.kind == READ_SWEEP:
            self._on_sweep_read(read)
        else:
            self._on_watch_read(read)
        self._start_next_read()

    def _start_next_read(self) -> None:
        """After a read arrived or failed: the one queued meanwhile, if any."""
        if self._pending_read:
            self.refresh_views()
        elif self._watching and not self._watch_timer.isActive():
            self._read_watched()  # a read for an earlier target was in flight: read this one

    def _on_watch_read(self, read: StudyRead) -> None:
        if not self._watching or read.target != self._watch_target:
            return  # stopped watching (or watching another study) while this read was under way
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
        self._watch_timer.start()

    def _show_trials(self, read: StudyRead) -> None:
        self._trials = read.snapshot.trials
        self.views.update_trials(read.snapshot.trials, read.header, read.rows)

    @Slot(str)
    def _on_read_failed(self, text: str) -> None:
        if self._finishing is not None and not self._watching:
            # The final read of the user's sweep failed: finish anyway, and say why.
            line = text.strip().splitlines()[-1] if text.strip() else "unknown error"
            self._show_error(f"Could not read the finished trials: {line}")
            self._finish_run(self._finishing, None)
        else:
            self._on_watch_failed(text)
        self._start_next_read()

    def _on_watch_failed(self, text: str) -> None:
        if not self._watching:
            return
        line = text.strip().splitlines()[-1] if text.strip() else "unknown error"
        if self.study is None:  # could not attach: say why and stop
            self._watching = False
            self._show_error(line)
            self.progress_label.setText("Not watching.")
            self._uncheck_watch()
            self._update_buttons()
            return
        # Attached, and one read failed (a busy or unreachable server): keep trying.
        self.progress_label.setText(f"Could not read the study ({line}); trying again.")
        self._watch_timer.start()

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


# -- the fair race window --------------------------------------------------------------------------


class FairRaceWindow(ToolWindow):
    """Pick optimizers and a budget; tune each the same way; race the tuned ones."""

    race_opened = Signal(object)  # the tuned lab, now the main window's lab

    def __init__(self, document: LabDocument, parent: QWidget | None = None):
        super().__init__(document, parent, "fairRaceWindow", "Fair race")
        self.task = self._callback_task()
        self.tuned_lab = None
        self._optimizers: list[str] = []
        self._best: dict[str, tuple] = {}
        self._build()
        document.lab_changed.connect(self._tick_lab_optimizers)
        self._tick_lab_optimizers()
        self._update_buttons()
        self.resize(760, 620)

    def _build(self) -> None:
        from core.optim.optimizers import OPTIMIZERS

        self.optimizer_list = QListWidget(objectName="fairOptimizerList")
        self.optimizer_list.setToolTip("Tick the optimizers to compare; each gets the same "
                                       "budget of trials")
        for name, info in OPTIMIZERS.items():
            item = QListWidgetItem(f"{info.title}  ({name})")
            item.setData(Qt.ItemDataRole.UserRole, name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Unchecked)
            item.setToolTip(info.description or info.title)
            self.optimizer_list.addItem(item)
        self.trials_spin = QSpinBox(objectName="fairTrialsSpin")
        self.trials_spin.setRange(1, 10_000)
        self.trials_spin.setValue(12)
        self.trials_spin.setToolTip("Trials per optimizer: the same budget for each")
        self.seeds_spin = QSpinBox(objectName="fairSeedsSpin")
        self.seeds_spin.setRange(1, LAB_MAX_SEEDS)
        self.seeds_spin.setValue(3)
        self.seeds_spin.setToolTip("Seeds per trial and for the final race (mean ± std bands); "
                                   "network labs only")
        self.sampler_combo = QComboBox(objectName="fairSamplerCombo")
        for name in SAMPLERS:
            self.sampler_combo.addItem(SAMPLER_TITLES[name], name)
        self.sampler_combo.setCurrentIndex(SAMPLERS.index("tpe"))
        self.sampler_combo.setToolTip("How each optimizer's lr is searched (same for all)")
        self.objective_combo = QComboBox(objectName="fairObjectiveCombo")
        for name, text in OBJECTIVES.items():
            if name != "steps_to_target":
                self.objective_combo.addItem(name.replace("_", " "), name)
                self.objective_combo.setItemData(self.objective_combo.count() - 1, text,
                                                 Qt.ItemDataRole.ToolTipRole)
        self.objective_combo.setToolTip("What each tuning minimises")
        self._make_run_buttons("fair", "Start fair race",
                               "Tune every ticked optimizer, then race them",
                               "Stop tuning; the optimizers tuned so far still race")
        self.progress = QProgressBar(objectName="fairProgress")
        self.progress.setRange(0, 1000)
        self.progress.setToolTip("All optimizers' tuning, done so far")
        self.progress_label = QLabel("Ready.", objectName="fairProgressLabel")
        self.progress_label.setWordWrap(True)
        self.progress_label.setToolTip("Which optimizer is being tuned, and how far")
        self.best_table = QTableWidget(0, 3, objectName="fairBestTable")
        for column, (text, tip) in enumerate((("optimizer", "Tuned optimizer"),
                                              ("best", "Best objective of its tuning"),
                                              ("params", "Its best hyperparameters"))):
            item = QTableWidgetItem(text)
            item.setToolTip(tip)
            self.best_table.setHorizontalHeaderItem(column, item)
        self.best_table.horizontalHeader().setStretchLastSection(True)
        self.best_table.verticalHeader().setVisible(False)
        self.best_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.best_table.setToolTip("Each optimizer's best configuration after tuning")
        self._make_error_label("fairErrorLabel", "What is wrong with the settings")

        form = QFormLayout()
        form.addRow("Trials per optimizer", self.trials_spin)
        form.addRow("Seeds", self.seeds_spin)
        form.addRow("Sampler", self.sampler_combo)
        form.addRow("Objective", self.objective_combo)
        buttons = hbox(self.start_button, self.cancel_button, (self.progress, 1))
        central = QWidget()
        layout = QVBoxLayout(central)
        intro = QLabel("Every optimizer gets the same number of trials, the same seeds and the "
                       "same sampler to find its learning rate; then the tuned ones race.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        layout.addWidget(self.optimizer_list, 1)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress_label)
        layout.addWidget(self.error_label)
        layout.addWidget(self.best_table, 1)
        self.setCentralWidget(central)

    def _tick_lab_optimizers(self, *_args) -> None:
        """Tick the optimizers the lab's runs use (only while nothing is ticked yet)."""
        if self.task.is_running() or self.chosen():
            return
        used = {run.optimizer for run in self.document.lab.runs}
        for i in range(self.optimizer_list.count()):
            item = self.optimizer_list.item(i)
            if item.data(Qt.ItemDataRole.UserRole) in used:
                item.setCheckState(Qt.CheckState.Checked)
        network = self.document.lab.is_network
        self.seeds_spin.setEnabled(network)
        if not network:
            self.seeds_spin.setValue(1)

    def chosen(self) -> list[str]:
        return [self.optimizer_list.item(i).data(Qt.ItemDataRole.UserRole)
                for i in range(self.optimizer_list.count())
                if self.optimizer_list.item(i).checkState() == Qt.CheckState.Checked]

    def set_chosen(self, names: list[str]) -> None:
        for i in range(self.optimizer_list.count()):
            item = self.optimizer_list.item(i)
            on = item.data(Qt.ItemDataRole.UserRole) in names
            item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)

    def _update_buttons(self, *_args) -> None:
        running = self.task.is_running()
        self.start_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        for widget in (self.optimizer_list, self.trials_spin, self.sampler_combo,
                       self.objective_combo):
            widget.setEnabled(not running)

    def start(self) -> bool:
        if self.task.is_running():
            return False
        optimizers = self.chosen()
        if not optimizers:
            self._show_error("Optimizers: tick at least one optimizer to tune")
            return False
        self._show_error("")
        lab = self.document.lab
        seeds = self.seeds_spin.value() if lab.is_network else 1
        if lab.is_network:
            lab = replace(lab, problem=replace(lab.problem, seeds=1))  # the sweeps seed themselves
        budget = self.trials_spin.value()
        sampler, objective = self.sampler_combo.currentData(), self.objective_combo.currentData()
        self._optimizers, self._best = optimizers, {}
        self.best_table.setRowCount(0)
        self.progress.setValue(0)
        self.progress_label.setText(f"Tuning {len(optimizers)} optimizers, {budget} trials each…")

        def call(stop, report):
            def on_progress(name: str, progress: SweepProgress) -> None:
                report((name, progress), force=progress.final)

            return fair_race(lab, optimizers, budget, seeds, sampler=sampler,
                             objective=objective, stop=stop, on_progress=on_progress), seeds

        self.task.start(call)
        self._update_buttons()
        return True

    def cancel(self) -> None:
        self.task.cancel()
        self.progress_label.setText("Cancelling: the optimizers tuned so far will race…")

    def shutdown(self) -> None:
        self.task.stop()

    @Slot(object)
    def _on_progress(self, payload) -> None:
        name, p = payload
        index = self._optimizers.index(name)
        overall = (index + p.fraction) / len(self._optimizers)
        self.progress.setValue(int(1000 * overall))
        self.progress_label.setText(f"Tuning {name} ({index + 1} / {len(self._optimizers)}): "
                                    + progress_text(p))
        if p.best_value is not None:
            self._best[name] = (p.best_value, p.best_params)
            self._show_best_table()

    def _show_best_table(self) -> None:
        self.best_table.setRowCount(len(self._best))
        for row, (name, (value, params)) in enumerate(self._best.items()):
            shown = ", ".join(f"{k} = {v:.3g}" if isinstance(v, float) else f"{k} = {v}"
                              for k, v in params.items())
            for column, text in enumerate((name, f"{value:.4g}", shown)):
                self.best_table.setItem(row, column, QTableWidgetItem(text))
        self.best_table.resizeColumnsToContents()

    @Slot(object)
    def _on_done(self, result) -> None:
        tuned, seeds = result
        if tuned.is_network and seeds > 1:
            tuned = replace(tuned, problem=replace(tuned.problem, seeds=seeds))
        self.tuned_lab = tuned
        self.progress.setValue(1000)
        self.document.edit(tuned, "Fair race: tuned optimizers")
        runs = ", ".join(r.label for r in tuned.runs)
        self.progress_label.setText(f"Racing the tuned runs in the main window: {runs}"
                                    + (f" over {seeds} seeds (mean ± std)." if seeds > 1
                                       else ".") + " Ctrl+Z brings the old lab back.")
        self._update_buttons()
        self.race_opened.emit(tuned)

    @Slot(str)
    def _on_failed(self, text: str) -> None:
        self._report_failure("The fair race stopped", text)
        self.progress_label.setText("The fair race stopped.")
        self._update_buttons()


# -- opening them from the main window ---------------------------------------------------------------


TOOL_WINDOWS = {"lr_finder": "lrFinderWindow", "sweep": "sweepWindow", "fair_race": "fairRaceWindow"}


def open_tool_window(main_window, kind: str) -> QMainWindow:
    """Show (creating once) the main window's LR range test, sweep or fair race window."""
    from app.tools.lr_finder_window import LrFinderWindow

    window = main_window.findChild(QMainWindow, TOOL_WINDOWS[kind])
    if window is None:
        cls = {"lr_finder": LrFinderWindow, "sweep": SweepWindow,
               "fair_race": FairRaceWindow}[kind]
        window = cls(main_window.document, main_window)
        if kind == "fair_race":
            window.race_opened.connect(partial(_play_tuned, main_window))
    if window.isVisible():  # already open behind the main window: bring it forward
        window.raise_()
        window.activateWindow()
    window.show()
    return window


def _play_tuned(main_window, _lab) -> None:
    main_window.play()


def close_tool_windows(main_window) -> None:
    """Stop every tool window's thread (the main window is closing)."""
    for name in TOOL_WINDOWS.values():
        window = main_window.findChild(QMainWindow, name)
        if window is not None:
            window.shutdown()
            window.close()
