"""The scorecard window (Tools ▸ Scorecard…): optimizers compared AlgoPerf's way, as
``main.py scorecard`` does (docs/scorecard.md), with the profiles filling in as studies finish.

What lives where: the settings form and its `ScorecardSpec` in `app.tools.scorecard_settings`;
the profile plot and the time table in `app.tools.scorecard_views`; the partial tables (medians
so far, the held-out rule, ratios, ρ(τ), B) in core/tools/scorecard/live.py, from the
`StudyDone` events of core/tools/scorecard/run.py's `run_scorecard`, which runs here on a
`CallbackTask` thread (app/shell/controller.py) and stops when the window closes. scorecard.json
is written by core/tools/scorecard/report.py, the CLI's writer. A double-clicked time opens its
best trial as the main window's lab (one undoable edit, as the fair race's tuned lab is). A
selected time draws its trials' curves beside the profiles: core/tools/scorecard/curves.py reads
them from the storage on a second `CallbackTask` thread (a database may be slow or locked), one
read at a time, the latest selection read next.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.export.pictures import export_picture
from app.shell.controller import CallbackTask
from app.shell.document import LabDocument
from app.shell.tool_window import ToolWindow
from app.tools.scorecard_settings import ScorecardSettings
from app.tools.scorecard_views import (
    TimesTable,
    make_profile_plot,
    make_trials_plot,
    show_profiles,
    show_trials,
)
from app.tools.sweep_text import clock
from app.widgets.layouts import hbox
from core.errors import LabError
from core.lab.format import RunSpec, validate_lab
from core.optim import user_code
from core.tools.scorecard.cell_curves import read_cell_curves
from core.tools.scorecard.live import LiveTables
from core.tools.scorecard.report import markdown_table, write_result
from core.tools.scorecard.run import SELF_BUDGET_MULTIPLE, ScorecardSpec, run_scorecard
from core.tools.scorecard.workloads import heldout_variants


class ScorecardWindow(ToolWindow):
    """Pick entries, workloads and the protocol; run; watch ρ(τ) and the times fill in."""

    lab_opened = Signal(object)  # a cell's best trial, now the main window's lab

    def __init__(self, document: LabDocument, parent: QWidget | None = None):
        super().__init__(document, parent, "scorecardWindow", "Scorecard")
        self.task = self._callback_task()
        self.spec: ScorecardSpec | None = None
        self.live: LiveTables | None = None
        self.result: dict | None = None
        self._total = self._per_study = 0
        self.curve_reads = CallbackTask(self)
        self.curve_reads.done.connect(self._on_curves)
        self.curve_reads.failed.connect(self._on_curves_failed)
        self._curves_due: tuple | None = None  # (spec, entry, workload) asked during a read
        self._build()
        self._update_buttons()
        self.resize(1280, 800)

    def _build(self) -> None:
        self.settings = ScorecardSettings(self)
        self.settings.error.connect(self._show_error)
        self._make_run_buttons("scorecard", "Start scorecard",
                               "Run the scorecard (finished studies in the storage are read, "
                               "not trained again)",
                               "Stop after the trials training now; Start resumes")
        self._make_error_label("scorecardErrorLabel", "What is wrong with the settings")
        self.progress = QProgressBar(objectName="scorecardProgress")
        self.progress.setRange(0, 1000)
        self.progress.setToolTip("Studies done out of all (entries × workloads × studies)")
        self.progress_label = QLabel("Tick entries and workloads, then Start.",
                                     objectName="scorecardProgressLabel")
        self.progress_label.setWordWrap(True)
        self.progress_label.setToolTip("Studies and trials done and left, time spent and an "
                                       "estimate of the time left")
        self.plot = make_profile_plot()
        self.table = TimesTable()
        self.table.cell_opened.connect(self.open_cell)
        self.trials_plot = make_trials_plot()
        self.table.cell_selected.connect(self.show_cell)
        self.export_buttons = []
        for text, tip, slot in (
                ("Save scorecard.json…", "The result as the CLI writes it (main.py scorecard)",
                 self._export_json_dialog),
                ("Save plot…", "The profile plot as PNG or SVG", self._export_plot_dialog),
                ("Save table (markdown)…", "The times and scores as a markdown table",
                 self._export_markdown_dialog)):
            button = QPushButton(text)
            button.setToolTip(tip)
            button.clicked.connect(slot)
            self.export_buttons.append(button)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        intro = QLabel("Time to a fixed target on small workloads, tuned under a fixed "
                       "ruleset, summed up by performance profiles (docs/scorecard.md).")
        intro.setWordWrap(True)
        left_layout.addWidget(intro)
        left_layout.addWidget(self.settings, 1)
        left_layout.addLayout(hbox(self.start_button, self.cancel_button))
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(left)
        scroll.setMinimumWidth(420)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.addWidget(self.progress)
        right_layout.addWidget(self.progress_label)
        right_layout.addWidget(self.error_label)
        plots = QSplitter(Qt.Orientation.Horizontal)
        plots.addWidget(self.plot)
        plots.addWidget(self.trials_plot)
        plots.setSizes([420, 420])
        right_layout.addWidget(plots, 4)
        right_layout.addWidget(self.table, 2)
        right_layout.addLayout(hbox(*self.export_buttons))
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(scroll)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([440, 840])
        self.setCentralWidget(splitter)

    def _update_buttons(self, *_args) -> None:
        running = self.task.is_running()
        self.start_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.settings.set_enabled(not running)
        for button in self.export_buttons[::2]:  # the JSON and the table: a finished result
            button.setEnabled(self.result is not None and not running)
        self.export_buttons[1].setEnabled(self.live is not None)

    # ---------------------------------------------------------------- running

    def start(self) -> bool:
        if self.task.is_running():
            return False
        try:
            spec = self.settings.spec()
        except LabError as exc:
            self._show_error(f"{exc.field}: {exc.message}")
            return False
        self._show_error("")
        self.spec, self.result = spec, None
        variants = sum(1 for w in spec.workloads if heldout_variants(w)) if spec.heldout else 0
        self._total = len(spec.entries) * (len(spec.workloads) + variants) * spec.studies
        self._per_study = 1 if spec.ruleset == "self" else spec.trials
        names = [e.name for e in spec.entries]
        self.live = LiveTables(names, [w.name for w in spec.workloads])
        self._show_live()
        self.progress.setValue(0)
        self.progress_label.setText(f"Starting: {self._total} studies of {self._per_study} "
                                    f"trial(s) on {len(spec.workloads)} workload(s)…")

        def call(stop, report):
            import optuna

            optuna.logging.set_verbosity(optuna.logging.WARNING)
            events, started = [], time.perf_counter()

            def on_study(event) -> None:
                events.append(event)
                report((tuple(events), time.perf_counter() - started),
                       force=len(events) == self._total)

            try:
                result = run_scorecard(spec, stop, on_study=on_study)
            except InterruptedError:
                result = None
            return result, tuple(events), time.perf_counter() - started

        self.task.start(call)
        self._update_buttons()
        return True

    def cancel(self) -> None:
        self.task.cancel()
        self.progress_label.setText("Stopping after the trials training now…")

    def shutdown(self) -> None:
        self.task.stop()
        self.curve_reads.stop()

    def _take(self, events) -> None:
        self.live = LiveTables(self.live.entries, self.live.bases, events)
        self._show_live()

    def _show_live(self) -> None:
        show_profiles(self.plot, self.live)
        self.table.show_live(self.live, self.live.bases)

    @Slot(object)
    def _on_progress(self, payload) -> None:
        events, elapsed = payload
        self._take(events)
        done = len(events)
        self.progress.setValue(int(1000 * done / max(1, self._total)))
        eta = elapsed / done * (self._total - done) if done else math.inf
        self.progress_label.setText(
            f"{done} / {self._total} studies done, {self._total - done} left "
            f"({done * self._per_study} / {self._total * self._per_study} trials); "
            f"{clock(elapsed)} elapsed, ~{clock(eta)} left")

    @Slot(object)
    def _on_done(self, payload) -> None:
        result, events, elapsed = payload
        self._take(events)
        self.result = result
        if result is None:
            self.progress_label.setText(
                f"Stopped after {len(events)} / {self._total} studies ({clock(elapsed)}). The "
                "finished studies stay in the storage: Start again completes the rest.")
        else:
            self.progress.setValue(1000)
            best = max(result["entries"], key=lambda r: r["score"])
            self.progress_label.setText(
                f"Done: {self._total} studies in {clock(elapsed)}. Best B: {best['name']} "
                f"{best['score']:.3f}. Double-click a time to open its best trial as a lab.")
        self._update_buttons()
        cell = self.table.selected_cell()
        if cell is not None:  # its last trials have finished since it was read
            self.show_cell(*cell)

    @Slot(str)
    def _on_failed(self, text: str) -> None:
        self._report_failure("The scorecard stopped", text)
        self.progress_label.setText("The scorecard stopped.")
        self._update_buttons()

    # ---------------------------------------------------------------- a cell's trials

    @Slot(str, str)
    def show_cell(self, entry: str, workload: str) -> None:
        """Read the trials of ``entry`` on ``workload`` off this thread, then draw them."""
        if self.spec is None:
            return
        request = (self.spec, entry, workload)
        if self.curve_reads.is_running():
            self._curves_due = request  # read when the one in flight has arrived
            return
        self._curves_due = None

        def call(stop, report):
            return read_cell_curves(*request)

        self.curve_reads.start(call)

    @Slot(object)
    def _on_curves(self, cell) -> None:
        if self._curves_due is not None:
            request, self._curves_due = self._curves_due, None
            self.show_cell(*request[1:])
            return  # the user has moved on: draw the newer cell when it arrives
        if (cell.entry, cell.workload) == self.table.selected_cell():
            show_trials(self.trials_plot, cell)

    @Slot(str)
    def _on_curves_failed(self, text: str) -> None:
        self._show_error("Reading the trials' curves failed: "
                         + (text.strip().splitlines() or [""])[-1])
        if self._curves_due is not None:
            request, self._curves_due = self._curves_due, None
            self.show_cell(*request[1:])

    # ---------------------------------------------------------------- a cell as a lab

    def cell_lab(self, entry: str, workload: str):
        """The lab of the best trial of ``entry`` on ``workload``: the workload's lab on that
        study's seed, for the study's budget, one run of the entry's optimizer at the trial's
        lr; None when no study of it reached the target."""
        best = self.live.best(entry, workload) if self.live is not None else None
        if best is None or self.spec is None:
            return None
        e = next(x for x in self.spec.entries if x.name == entry)
        w = next(x for x in self.spec.workloads if x.name == workload)
        budget = (int(math.ceil(w.budget * SELF_BUDGET_MULTIPLE)) if self.spec.ruleset == "self"
                  else w.budget)
        run = RunSpec(f"{entry} (trial {best.row['trial']})", e.optimizer,
                      {"lr": best.row["lr"]},
                      code_sha256=(user_code.loaded_hash(e.optimizer)
                                   if user_code.is_code_ref(e.optimizer) else None))
        return validate_lab(replace(
            w.lab, name=f"Scorecard: {entry} on {workload}", seed=w.lab.seed + best.study,
            steps=budget, runs=(run,)))

    @Slot(str, str)
    def open_cell(self, entry: str, workload: str) -> bool:
        lab = self.cell_lab(entry, workload)
        if lab is None:
            self._show_error(f"{entry} on {workload}: no trial reached the target, so there is "
                             "no best trial to open")
            return False
        self._show_error("")
        self.document.edit(lab, f"Scorecard: {entry} on {workload}")
        self.progress_label.setText(f"Opened {entry} on {workload} (lr "
                                    f"{lab.runs[0].params['lr']:.4g}, seed {lab.seed}) in the "
                                    "main window; Ctrl+Z brings the old lab back.")
        self.lab_opened.emit(lab)
        return True

    # ---------------------------------------------------------------- export

    def export_json(self, path: str | Path) -> Path:
        return write_result(path, self.result)

    def export_markdown(self, path: str | Path) -> Path:
        Path(path).write_text(markdown_table(self.result), encoding="utf-8")
        return Path(path)

    def export_plot(self, path: str | Path) -> Path:
        return export_picture(self.plot, path)

    def _save(self, title: str, name: str, filters: str, write) -> None:
        path, _ = QFileDialog.getSaveFileName(self, title, name, filters)
        if not path:
            return
        try:
            write(path)
        except (OSError, ValueError) as exc:
            self._show_error(f"{title}: {exc}")
            return
        self.progress_label.setText(f"Wrote {path}.")

    def _export_json_dialog(self) -> None:
        self._save("Save scorecard.json", "scorecard.json", "JSON (*.json)", self.export_json)

    def _export_plot_dialog(self) -> None:
        self._save("Save the profile plot", "scorecard-profiles.png",
                   "PNG (*.png);;SVG (*.svg)", self.export_plot)

    def _export_markdown_dialog(self) -> None:
        self._save("Save the table", "scorecard.md", "Markdown (*.md)", self.export_markdown)
