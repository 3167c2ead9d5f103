"""The fair-race window (Tools ▸ Fair race…).

`core.tools.sweep.fair_race.fair_race` tunes each chosen optimizer with the same budget, seeds,
sampler seed and objective, in a `CallbackTask` (app.shell.controller); at the end the tuned lab
(network labs with the chosen seeds, so the race view shows mean ± std bands) replaces the main
window's lab as one undoable edit and plays.
"""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.shell.document import LabDocument
from app.shell.tool_window import ToolWindow
from app.tools.sweep_text import SAMPLER_TITLES, progress_text
from app.widgets.layouts import hbox
from core.errors import LabError
from core.lab.format import MAX_SEEDS as LAB_MAX_SEEDS
from core.optim.catalog import get_optimizer_info
from core.optim.optimizers import OPTIMIZERS
from core.tools.sweep.fair_race import fair_race
from core.tools.sweep.objective import OBJECTIVES
from core.tools.sweep.spec import SAMPLERS, SweepProgress


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
        self.optimizer_list = QListWidget(objectName="fairOptimizerList")
        self.optimizer_list.setToolTip("Tick the optimizers to compare; each gets the same "
                                       "budget of trials")
        for name, info in OPTIMIZERS.items():
            self._add_optimizer(name, info)
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

    def _add_optimizer(self, name: str, info) -> None:
        """One tickable row: torch.optim's by title and name, others by title and group."""
        shown = name if info.group == "torch.optim" else info.group
        item = QListWidgetItem(f"{info.title}  ({shown})")
        item.setData(Qt.ItemDataRole.UserRole, name)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        item.setCheckState(Qt.CheckState.Unchecked)
        item.setToolTip(info.description or info.origin or info.title)
        self.optimizer_list.addItem(item)

    def _listed(self) -> set[str]:
        return {self.optimizer_list.item(i).data(Qt.ItemDataRole.UserRole)
                for i in range(self.optimizer_list.count())}

    def _tick_lab_optimizers(self, *_args) -> None:
        """List the lab's zoo and own optimizers beside torch.optim's (an optimizer joins the
        fair race by joining the lab: the picker and its consent are the way in), and tick the
        optimizers the lab's runs use (only while nothing is ticked yet)."""
        listed = self._listed()
        for run in self.document.lab.runs:
            if run.optimizer not in listed:
                try:
                    self._add_optimizer(run.optimizer, get_optimizer_info(run.optimizer))
                except LabError:
                    continue  # a run the lab itself refuses; it is not offered
                listed.add(run.optimizer)
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
