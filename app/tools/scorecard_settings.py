"""The scorecard window's settings form (app/tools/scorecard_window.py shows and runs it).

`ScorecardSettings` holds the entries (torch.optim's optimizers ticked in a list, a zoo name or
the user's ``file.py:Class`` added by name or from a file, each shown with its lr search space
from core/tools/scorecard/run.py's `entry`), the workloads of the shipped suite
(resources/workloads/) as checkboxes, the ruleset, O trials, S studies, the held-out rule, the
seed and the Optuna storage (default: ``scorecard.db`` in the user data folder,
core/user_data.py). `spec` turns it into a `ScorecardSpec` or raises a `LabError` naming the
field. User code runs only after the consent the main window asks ("Run this code?",
app/shell/code_trust.py's `WindowConsent`), as for a lab file that names it.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QInputDialog,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.shell.code_trust import WindowConsent, optimizer_classes
from app.widgets.layouts import hbox
from core.errors import LabError
from core.optim import user_code
from core.optim.catalog import get_optimizer_info
from core.optim.optimizers import OPTIMIZERS
from core.tools.scorecard.run import RULESETS, Entry, ScorecardSpec, entry
from core.tools.scorecard.workloads import load_suite
from core.user_data import user_data_dir

DEFAULT_ENTRIES = ("adam", "sgd")
FIELD = "Entries"  # how a refused entry's message names the field


def default_storage() -> str:
    """The scorecard's SQLite file in the user data folder (its studies resume from there)."""
    return str(user_data_dir() / "scorecard" / "scorecard.db")


def space_text(e: Entry) -> str:
    return f"lr {e.low:.3g} … {e.high:.3g} (log), default {e.default:.3g}"


class ScorecardSettings(QWidget):
    """Entries, workloads and the protocol's numbers; `spec` reads them (module docstring)."""

    error = Signal(str)  # "Field: what is wrong" for the window's red line ("" clears it)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.consent = WindowConsent(self)
        self.suite = load_suite()
        self.entries: dict[str, Entry] = {}  # by name, every entry listed
        self._build()
        for name in OPTIMIZERS:
            try:
                self._list(name, name)
            except LabError:
                continue  # no lr to search: it cannot enter a scorecard
        for i in range(self.entry_list.count()):
            item = self.entry_list.item(i)
            if item.data(Qt.ItemDataRole.UserRole) in DEFAULT_ENTRIES:
                item.setCheckState(Qt.CheckState.Checked)

    def _build(self) -> None:
        self.entry_list = QListWidget(objectName="scorecardEntryList")
        self.entry_list.setToolTip("Tick the optimizers to compare. Each is shown with its "
                                   "search space: its lr on a log scale over the catalog's range")
        self.entry_edit = QLineEdit(objectName="scorecardEntryEdit")
        self.entry_edit.setPlaceholderText("pytorch_optimizer:Lion or opts/my.py:Mine")
        self.entry_edit.setToolTip("Add an optimizer by name: a zoo class "
                                   "(pytorch_optimizer:Lion) or your own file.py:Class (asks "
                                   "before its code runs); Enter adds it")
        self.entry_edit.returnPressed.connect(self._add_typed)
        self.add_button = QPushButton("Add", objectName="scorecardAddEntry")
        self.add_button.setToolTip("Add the optimizer named on the left, ticked")
        self.add_button.clicked.connect(self._add_typed)
        self.file_button = QPushButton("From file…", objectName="scorecardAddFile")
        self.file_button.setToolTip("Add an optimizer class from a .py file (asks before its "
                                    "code runs)")
        self.file_button.clicked.connect(self._add_from_dialog)
        entries_box = QGroupBox("Entries")
        entries_box.setToolTip("The optimizers the scorecard compares")
        layout = QVBoxLayout(entries_box)
        layout.addWidget(self.entry_list, 1)
        layout.addLayout(hbox((self.entry_edit, 1), self.add_button, self.file_button))

        workloads_box = QGroupBox("Workloads")
        workloads_box.setToolTip("The shipped suite (resources/workloads/): each workload's "
                                 "target and step budget come from suite.json")
        grid = QVBoxLayout(workloads_box)
        self.workload_checks: dict[str, QCheckBox] = {}
        for name, w in self.suite.items():
            check = QCheckBox(f"{name}  (target {w.target:.3g}, budget {w.budget} steps)",
                              objectName=f"scorecardWorkload_{name}")
            check.setChecked(True)
            check.setToolTip(f"Run {name}: the first step its monitored value is ≤ "
                             f"{w.target:.4g} counts, within {w.budget} steps")
            self.workload_checks[name] = check
            grid.addWidget(check)

        self.ruleset_combo = QComboBox(objectName="scorecardRuleset")
        for name, text in (("external", "external tuning (search lr)"),
                           ("self", "self-tuning (default lr, 1.5 × budget)")):
            self.ruleset_combo.addItem(text, name)
        assert [self.ruleset_combo.itemData(i) for i in range(2)] == list(RULESETS)
        self.ruleset_combo.setToolTip("External: S studies of O quasirandom lr trials, fastest "
                                      "per study, median over studies. Self: the default lr "
                                      "only, one trial per seed")
        self.trials_spin = self._spin("scorecardTrials", 5, "O: trials per study (external "
                                      "ruleset), drawn by a seeded Sobol sampler")
        self.studies_spin = self._spin("scorecardStudies", 5, "S: independent studies "
                                       "(external) or seeds (self) per workload; the median "
                                       "over them counts")
        self.seed_spin = QSpinBox(objectName="scorecardSeed")
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setToolTip("Seeds the samplers and the held-out draw: the same seed "
                                  "gives the same scorecard")
        self.heldout_check = QCheckBox("Held-out variants", objectName="scorecardHeldout")
        self.heldout_check.setChecked(True)
        self.heldout_check.setToolTip("Also run one variant per workload (another activation, "
                                      "noise, batch size or start); missing it voids the "
                                      "entry's time on the base workload")
        self.storage_edit = QLineEdit(default_storage(), objectName="scorecardStorage")
        self.storage_edit.setCursorPosition(0)  # the folder, not the file name's end
        self.storage_edit.setToolTip("Where the studies live: a SQLite file or an Optuna "
                                     "storage URL. Running the same scorecard again reads the "
                                     "finished studies and completes the rest")
        form = QFormLayout()
        form.addRow("Ruleset", self.ruleset_combo)
        form.addRow("Trials per study (O)", self.trials_spin)
        form.addRow("Studies (S)", self.studies_spin)
        form.addRow("Seed", self.seed_spin)
        form.addRow("", self.heldout_check)
        form.addRow("Storage", self.storage_edit)
        self.ruleset_combo.currentIndexChanged.connect(
            lambda: self.trials_spin.setEnabled(self.ruleset_combo.currentData() == "external"))

        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(entries_box, 1)
        outer.addWidget(workloads_box)
        outer.addLayout(form)

    @staticmethod
    def _spin(name: str, value: int, tip: str) -> QSpinBox:
        spin = QSpinBox(objectName=name)
        spin.setRange(1, 1000)
        spin.setValue(value)
        spin.setToolTip(tip)
        return spin

    # ---------------------------------------------------------------- entries

    def _list(self, name: str, optimizer: str) -> QListWidgetItem:
        """List ``optimizer`` as entry ``name`` with its search space (LabError: no space)."""
        e = entry(name, optimizer)
        try:
            title = get_optimizer_info(optimizer).title
        except LabError:
            title = name
        item = QListWidgetItem(f"{title}  ({name})   {space_text(e)}")
        item.setData(Qt.ItemDataRole.UserRole, name)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        item.setCheckState(Qt.CheckState.Unchecked)
        item.setToolTip(f"{name}: its search space is {space_text(e)}")
        self.entry_list.addItem(item)
        self.entries[name] = e
        return item

    def add_entry(self, text: str) -> str:
        """Add (and tick) the entry ``text``: a torch.optim or zoo name, or ``file.py:Class``
        (loaded after consent). Returns its name; a `LabError` naming Entries otherwise."""
        text = text.strip()
        if not text:
            raise LabError(FIELD, "type an optimizer: adam, pytorch_optimizer:Lion or "
                                  "opts/my.py:Mine")
        if user_code.is_code_ref(text):
            ref = user_code.parse_code_ref(text, None, FIELD)
            if not user_code.is_current(ref):
                sha256 = user_code.code_hash(ref, FIELD)
                self.consent.where = f"The scorecard entry {text}"
                if not self.consent(ref, sha256):
                    raise LabError(FIELD, f"{text}: you chose not to run it; nothing in it ran")
                user_code.load_code(ref, FIELD)
            optimizer = ref.name
            name = f"{Path(ref.target).name}:{ref.class_name}" if ref.kind == "file" else text
        else:
            optimizer = text.lower() if ":" not in text else text
            name = optimizer
        if name not in self.entries:
            try:
                self._list(name, optimizer)
            except LabError as exc:
                raise LabError(FIELD, exc.message) from None
        self.entries[name] = entry(name, optimizer)  # the code may have been reloaded
        self.set_chosen([*self.chosen(), name])
        return name

    def _add_typed(self) -> None:
        self._try_add(self.entry_edit.text())

    def _add_from_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Optimizer from file", "",
                                              "Python files (*.py)")
        if not path:
            return
        classes = optimizer_classes(path)
        if not classes:
            self.error.emit(f"{FIELD}: {Path(path).name} defines no class (or is not valid "
                            "Python)")
            return
        name = classes[0]
        if len(classes) > 1:
            name, ok = QInputDialog.getItem(self, "Optimizer from file",
                                            f"{Path(path).name} defines several classes. "
                                            "Which one?", classes, 0, False)
            if not ok:
                return
        self._try_add(f"{path}:{name}")

    def _try_add(self, text: str) -> None:
        try:
            self.add_entry(text)
        except LabError as exc:
            self.error.emit(f"{exc.field}: {exc.message}")
            return
        self.error.emit("")
        self.entry_edit.clear()

    def chosen(self) -> list[str]:
        items = [self.entry_list.item(i) for i in range(self.entry_list.count())]
        return [item.data(Qt.ItemDataRole.UserRole) for item in items
                if item.checkState() == Qt.CheckState.Checked]

    def set_chosen(self, names: list[str]) -> None:
        for i in range(self.entry_list.count()):
            item = self.entry_list.item(i)
            on = item.data(Qt.ItemDataRole.UserRole) in names
            item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)

    def set_workloads(self, names: list[str]) -> None:
        for name, check in self.workload_checks.items():
            check.setChecked(name in names)

    # ---------------------------------------------------------------- the spec

    def spec(self) -> ScorecardSpec:
        """The settings as a spec; a `LabError` naming the field when they cannot run."""
        names = self.chosen()
        if not names:
            raise LabError(FIELD, "tick at least one optimizer")
        workloads = [self.suite[n] for n, c in self.workload_checks.items() if c.isChecked()]
        if not workloads:
            raise LabError("Workloads", "tick at least one workload")
        storage = self.storage_edit.text().strip()
        if not storage:
            raise LabError("Storage", "name a SQLite file or an Optuna storage URL")
        if "://" not in storage:
            try:
                Path(storage).expanduser().parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise LabError("Storage", f"cannot create the folder of {storage}: "
                                          f"{exc.strerror or exc}") from None
        return ScorecardSpec([self.entries[n] for n in names], workloads,
                             ruleset=self.ruleset_combo.currentData(),
                             trials=self.trials_spin.value(), studies=self.studies_spin.value(),
                             heldout=self.heldout_check.isChecked(),
                             seed=self.seed_spin.value(), storage=storage)

    def set_enabled(self, on: bool) -> None:
        for widget in (self.entry_list, self.entry_edit, self.add_button, self.file_button,
                       self.ruleset_combo, self.trials_spin, self.studies_spin, self.seed_spin,
                       self.heldout_check, self.storage_edit, *self.workload_checks.values()):
            widget.setEnabled(on)
        if on:
            self.trials_spin.setEnabled(self.ruleset_combo.currentData() == "external")
