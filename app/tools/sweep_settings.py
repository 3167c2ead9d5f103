"""The settings of the sweep window (its left side): the run to tune, the search space
(`app.tools.space_editor`), sampler, objective, target, trials, seeds, pruning, storage and study
name; and what they become, a `core.tools.sweep.spec.SweepSpec`.

The settings follow the main window's lab (its enabled runs; one seed for a 2-D function lab)
and its file (a saved lab keeps its sweeps in a SQLite file beside it by default). A wrong
setting is a `LabError` naming the field; the window says it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.shell.document import LabDocument
from app.tools.space_editor import SpaceEditor
from app.tools.sweep_text import SAMPLER_TIPS, SAMPLER_TITLES
from core.errors import LabError
from core.tools.sweep.objective import OBJECTIVES
from core.tools.sweep.spec import SAMPLERS, SweepSpec
from core.tools.sweep.storage import default_storage
from core.tools.sweep.study import default_study_name
from core.user_data import is_bundled

STORAGE_MEMORY, STORAGE_SQLITE, STORAGE_URL = "memory", "sqlite", "url"


class SweepSettings(QWidget):
    """The sweep's settings form. See the module docstring."""

    def __init__(self, document: LabDocument, parent: QWidget | None = None):
        super().__init__(parent)
        self.document = document
        self._idle = True  # no sweep running, no study watched: the settings can change
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
        self.objective_combo.currentIndexChanged.connect(self._update_enabled)
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
        self.storage_combo.currentIndexChanged.connect(self._update_enabled)
        self.url_edit = QLineEdit(objectName="storageUrlEdit")
        self.url_edit.setPlaceholderText("sqlite:///path/study.db or postgresql://user@host/db")
        self.url_edit.setToolTip("A database URL Optuna accepts, or a plain file path "
                                 "(a SQLite file)")
        self.study_edit = QLineEdit(objectName="studyEdit")
        self.study_edit.setToolTip("The study's name in the storage: the same name resumes it "
                                   "(or lets several workers share it)")

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
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("<b>Search space</b>"))
        layout.addWidget(self.space, 1)
        layout.addLayout(form)

        document.lab_changed.connect(self.refresh_runs)
        document.path_changed.connect(self.refresh_storage_choices)
        self.refresh_runs()
        self.refresh_storage_choices()

    # -- following the main window's lab ---------------------------------------------------------

    def refresh_runs(self, *_args) -> None:
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
        self._update_enabled()  # seeds: network labs only, and not while a sweep runs

    def _on_run_changed(self, *_args) -> None:
        run = self.run()
        if run is not None:
            self.space.set_optimizer(run.optimizer)

    def run(self):
        """The lab's run chosen for tuning (None: the lab has no enabled run)."""
        label = self.run_combo.currentData()
        for run in self.document.lab.runs:
            if run.label == label:
                return run
        return None

    def refresh_storage_choices(self, *_args) -> None:
        current = self.storage_combo.currentData()
        self.storage_combo.blockSignals(True)
        self.storage_combo.clear()
        self.storage_combo.addItem("In memory", STORAGE_MEMORY)
        path = self.document.path
        if path is not None:
            url = default_storage(path)
            # An example shipped with the app keeps its studies in the user data folder.
            where = "in your data folder" if is_bundled(path) else "next to the lab"
            self.storage_combo.addItem(f"SQLite {where} ({Path(url[10:]).name})", STORAGE_SQLITE)
            self.storage_combo.setItemData(self.storage_combo.count() - 1, url[10:],
                                           Qt.ItemDataRole.ToolTipRole)
        self.storage_combo.addItem("Database URL…", STORAGE_URL)
        index = self.storage_combo.findData(current)
        if index < 0:  # a saved lab keeps its sweeps beside it by default
            index = self.storage_combo.findData(STORAGE_SQLITE if path else STORAGE_MEMORY)
        self.storage_combo.setCurrentIndex(index)
        self.storage_combo.blockSignals(False)
        self._update_enabled()

    def set_idle(self, idle: bool) -> None:
        """Settings change only while no sweep runs and no study is watched."""
        self._idle = idle
        self._update_enabled()

    def _update_enabled(self, *_args) -> None:
        idle = self._idle
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
        run = self.run()
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

    def watched_study(self) -> tuple[str | None, str]:
        """(storage, study name) to watch: the name typed, else the name a sweep of the chosen
        run would get."""
        storage = self.storage()
        name = self.study_edit.text().strip()
        if not name:
            run = self.run()
            if run is None:
                raise LabError("Study", "name the study to watch")
            name = default_study_name(SweepSpec(self.document.lab, run=run.label,
                                                objective=self.objective_combo.currentData()))
        return storage, name
