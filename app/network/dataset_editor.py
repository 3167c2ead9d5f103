"""The Data set section of the network problem panel: which data the network learns from.

`DatasetEditor` edits the set and its parameters (the shared `HyperParamForm`), a CSV file and its
label column, the data seed (the lab's, one typed, or a new one from Regenerate), Playground-style
extra features and standardization for 2-D sets; it shows a preview of the points
(app/network/data_preview.py) or a one-line summary for images and tables. It proposes each
change as an edited copy of the draft (`ProblemSection`); the panel (app/network/problem_panel.py)
refits the loss and network to new data, validates and commits. The data set it builds for the
draft (cached: validation builds it again) is `dataset()`, which the other sections are shown with.
"""

from __future__ import annotations

import csv
import json
import os
import random
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QGridLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QWidget,
)

from app.network.data_preview import DataPreview
from app.network.editor_parts import ProblemSection, plural, section_form, widget_row
from app.shell.user_folders import documents_dir
from app.widgets.hyperparam_form import HyperParamForm, show_refused
from app.widgets.number_boxes import ScientificSpinBox, format_float, typed_whole
from core.errors import LabError
from core.lab.format import Lab, NetworkProblem
from core.problems.datasets.build import make_dataset
from core.problems.datasets.dataset import Dataset
from core.problems.datasets.features import DEFAULT_FEATURES, POINT_FEATURES
from core.problems.datasets.sequences import SEQUENCE_BASELINES
from core.problems.datasets.spec import DATASETS, DatasetInfo
from core.user_data import is_bundled

# Dataset keys with their own widgets (a seed with Regenerate, an explicit check box) rather
# than a row of the generic form.
OWN_WIDGET_KEYS = ("seed", "standardize")
# Keys that mean the same for every set, so they survive a change of data set.
CARRIED_KEYS = ("val_fraction", "seed", "standardize")

FEATURE_LABELS = {
    "x": "x", "y": "y", "x2": "x²", "y2": "y²", "xy": "xy", "sinx": "sin x", "siny": "sin y",
}
# Regenerate draws seeds short enough to read off the box and type back.
NEW_SEED_LOW, NEW_SEED_HIGH = 1, 99_999
MAX_DATA_SEED = 2**32 - 1
DATASET_CACHE_SIZE = 6


def csv_columns(path: Path) -> list[str]:
    """The header row of a CSV file, or [] when it cannot be read (validation says why)."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            header = next(csv.reader(handle), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return []
    return [column.strip() for column in header if column.strip()]


class DatasetEditor(ProblemSection):
    """The Data set section. See the module docstring.

    Besides ``edited``, ``drafted(problem)`` shows a draft without committing it: choosing "CSV"
    before a file is chosen leaves nothing to learn from yet.
    """

    drafted = Signal(object)

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Data set", "datasetGroup", "datasetError", parent)
        self._lab: Lab | None = None
        self._dataset: Dataset | None = None
        self._cache: OrderedDict[tuple, Dataset] = OrderedDict()
        # Replaceable, for tests (no modal dialog) and for a window that brings its own dialog.
        self.open_file_dialog: Callable[..., tuple[str, str]] = QFileDialog.getOpenFileName
        self.new_seed: Callable[[], int] = lambda: random.randint(NEW_SEED_LOW, NEW_SEED_HIGH)
        self._build()

    def _build(self) -> None:
        form = self._form = section_form(self)
        combo = QComboBox(objectName="datasetCombo")
        for info in DATASETS.values():
            combo.addItem(info.title, info.name)
            combo.setItemData(combo.count() - 1, info.description, Qt.ItemDataRole.ToolTipRole)
        combo.setToolTip("The data set the network learns from")
        combo.setAccessibleName("Data set")
        combo.currentIndexChanged.connect(self._on_dataset_chosen)
        self.dataset_combo = combo
        form.addRow("Data", combo)

        self.csv_path_edit = QLineEdit(objectName="csvPathEdit")
        self.csv_path_edit.setPlaceholderText("path/to/table.csv")
        self.csv_path_edit.setToolTip(
            "The CSV file, relative to the lab file's folder (press Enter after typing a path)"
        )
        self.csv_path_edit.editingFinished.connect(self._on_csv_path_typed)
        self.csv_browse_button = QPushButton("Browse…", objectName="csvBrowseButton")
        self.csv_browse_button.setToolTip("Choose the CSV file to learn from")
        self.csv_browse_button.setAutoDefault(False)
        self.csv_browse_button.clicked.connect(self.browse_csv)
        self._csv_path_row = widget_row(self.csv_path_edit, self.csv_browse_button)
        form.addRow("File", self._csv_path_row)

        self.csv_label_combo = QComboBox(objectName="csvLabelCombo")
        self.csv_label_combo.setEditable(True)
        self.csv_label_combo.setToolTip(
            "The column the network must predict (the others are inputs)"
        )
        self.csv_label_combo.activated.connect(self._on_csv_label)
        self.csv_label_combo.lineEdit().editingFinished.connect(self._on_csv_label)
        form.addRow("Label", self.csv_label_combo)

        self.data_form = HyperParamForm("dataParam_", objectName="datasetParams")
        self.data_form.value_edited.connect(self._on_data_param)
        form.addRow(self.data_form)

        # A double spin box: QSpinBox stops at 2³¹−1, data seeds go to 2³²−1. Any number can be
        # typed (the arrows keep to the range): -1 or 1.5 is refused in red, not clamped.
        self.seed_box = ScientificSpinBox()
        self.seed_box.setObjectName("dataSeedBox")
        self.seed_box.set_allowed(0, MAX_DATA_SEED)
        self.seed_box.setSingleStep(1)
        self.seed_box.setKeyboardTracking(False)
        self.seed_box.setToolTip(
            "Seed of the data (points, noise, split): same seed, same data. Type one to make it "
            "the data's own seed"
        )
        self.seed_box.setAccessibleName("Data seed")
        self.seed_box.valueChanged.connect(self._on_seed_typed)
        self.seed_auto = QCheckBox("lab's", objectName="dataSeedAuto")
        self.seed_auto.setToolTip(
            "Use the lab's seed for the data (untick to keep a seed of its own)"
        )
        self.seed_auto.toggled.connect(self._on_seed_auto)
        self.regenerate_button = QPushButton("Regenerate", objectName="regenerateButton")
        self.regenerate_button.setToolTip("Draw new data with a new data seed (shown in the box)")
        self.regenerate_button.setAutoDefault(False)
        self.regenerate_button.clicked.connect(self.regenerate)
        form.addRow("Seed", widget_row(self.seed_box, self.seed_auto, self.regenerate_button))

        features = QWidget(objectName="featureChecks")
        grid = QGridLayout(features)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(2)
        self.feature_checks: dict[str, QCheckBox] = {}
        for i, key in enumerate(POINT_FEATURES):
            check = QCheckBox(FEATURE_LABELS[key], objectName=f"feature_{key}")
            check.setToolTip(f"Give the network {FEATURE_LABELS[key]} of each point as an input")
            check.toggled.connect(lambda checked, key=key: self._on_feature(key, checked))
            grid.addWidget(check, i // 4, i % 4)
            self.feature_checks[key] = check
        self._features_row = features
        form.addRow("Inputs", features)

        self.standardize_check = QCheckBox("Standardize features", objectName="standardizeCheck")
        self.standardize_check.setToolTip(
            "Rescale each input to mean 0 and standard deviation 1, using training statistics only"
        )
        self.standardize_check.toggled.connect(self._on_standardize)
        form.addRow(self.standardize_check)

        self.preview = DataPreview(objectName="dataPreview")
        form.addRow(self.preview)
        self.summary_label = QLabel(objectName="datasetSummary")
        self.summary_label.setWordWrap(True)
        self.summary_label.setToolTip("Size, shape and classes of the data set")
        form.addRow(self.summary_label)
        form.addRow(self.error_label)

    # ---------------------------------------------------------------- showing

    def set_problem(self, lab: Lab, problem: NetworkProblem) -> None:
        """Show ``problem``'s data set (``lab`` gives the seed and folder); never emits."""
        self._lab, self._problem = lab, problem
        self._showing = True
        try:
            self._show_widgets(problem.dataset)
        finally:
            self._showing = False
        spec = problem.dataset
        self._dataset = None
        if not (spec.get("name") == "csv" and not spec.get("path")):
            try:
                self._dataset = self.build_dataset(spec)
            except LabError:
                pass  # the commit that follows (or the lab's own validation) explains it
        self._form.setRowVisible(self.preview, self.preview.show_data(self._dataset))
        self._show_summary(self._dataset)

    def dataset(self) -> Dataset | None:
        """The data set of the draft shown, or None when it cannot be built."""
        return self._dataset

    def task(self) -> str:
        """The draft's task: its data set's, else what its kind of set or its spec says."""
        if self._dataset is not None:
            return self._dataset.task
        info = self._info()
        if info is None or info.task == "any":
            return str(self._problem.dataset.get("task", "classification"))
        return info.task

    def build_dataset(self, spec: Mapping) -> Dataset:
        """``make_dataset`` for the lab's seed and folder, cached (validation builds it again)."""
        lab = self._lab
        key_spec = json.dumps(spec, sort_keys=True, default=str)
        stamp = None
        if spec.get("name") == "csv" and isinstance(spec.get("path"), str):
            path = Path(spec["path"]).expanduser()
            try:
                stamp = (self._base() / path).stat().st_mtime_ns  # an edited file is read again
            except OSError:
                stamp = None
        key = (key_spec, lab.seed, lab.base_dir, stamp)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        base_dir = lab.base_path
        # The first digits set imports scikit-learn (seconds); a CSV may be large. Say we're busy.
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            dataset = make_dataset(spec, lab.seed, base_dir=base_dir)
        finally:
            QApplication.restoreOverrideCursor()
        self._cache[key] = dataset
        while len(self._cache) > DATASET_CACHE_SIZE:
            self._cache.popitem(last=False)
        return dataset

    def _info(self) -> DatasetInfo | None:
        return DATASETS.get(self._problem.dataset.get("name"))

    def _base(self) -> Path:
        """The folder a relative CSV path is read from: the lab file's, else the working one."""
        return self._lab.base_path or Path.cwd()

    def _show_widgets(self, spec: Mapping) -> None:
        info = self._info()
        name = spec.get("name")
        widgets = (self.dataset_combo, self.csv_path_edit, self.csv_label_combo, self.seed_box,
                   self.seed_auto, self.standardize_check, *self.feature_checks.values())
        for widget in widgets:
            widget.blockSignals(True)
        try:
            self.dataset_combo.setCurrentIndex(self.dataset_combo.findData(name))
            is_csv = name == "csv"
            self._form.setRowVisible(self._csv_path_row, is_csv)
            self._form.setRowVisible(self.csv_label_combo, is_csv)
            if is_csv:
                self.csv_path_edit.setText(str(spec.get("path", "")))
                self._fill_label_columns(spec)
            if info is not None:
                specs = [p for p in info.params if p.name not in OWN_WIDGET_KEYS]
                self.data_form.set_params(specs, spec)
            explicit_seed = spec.get("seed")
            shown_seed = explicit_seed if explicit_seed is not None else self._lab.seed
            self.seed_box.setValue(float(shown_seed))
            self.seed_auto.setChecked(explicit_seed is None)
            self._form.setRowVisible(self._features_row, info is not None and info.two_d)
            chosen = spec.get("features", DEFAULT_FEATURES)
            for key, check in self.feature_checks.items():
                check.setChecked(key in chosen)
            self.standardize_check.setChecked(bool(spec.get("standardize", False)))
        finally:
            for widget in widgets:
                widget.blockSignals(False)

    def _fill_label_columns(self, spec: Mapping) -> None:
        combo = self.csv_label_combo
        combo.clear()
        path = spec.get("path")
        if isinstance(path, str) and path:
            combo.addItems(csv_columns(self._base() / Path(path).expanduser()))
        label = str(spec.get("label", ""))
        index = combo.findText(label)
        if index >= 0:
            combo.setCurrentIndex(index)
        else:
            combo.setEditText(label)

    def _show_summary(self, dataset: Dataset | None) -> None:
        if dataset is None:
            spec = self._problem.dataset
            if spec.get("name") == "csv" and not spec.get("path"):
                self.summary_label.setText("Choose a CSV file (Browse…) and its label column.")
            else:
                self.summary_label.setText("")
            return
        train, val = len(dataset.y_train), len(dataset.y_val)
        total = train + val
        shape = dataset.input_shape
        if len(shape) == 3:
            channels, height, width = shape
            what = f"{total:,} images {height}×{width}"
            if channels > 1:
                what += f" ({channels} channels)"
        elif dataset.is_2d:
            what = f"{total:,} points"
        elif len(shape) == 2:
            what = f"{total:,} sequences of {shape[0]} steps × {plural(shape[1], 'feature')}"
        else:
            what = f"{total:,} samples of {plural(shape[0], 'feature')}"
        if dataset.task == "classification":
            target = plural(dataset.n_classes, "class", "classes")
            if self._problem.dataset.get("imbalance") is not None:  # the counts it made
                counts = np.bincount(np.concatenate([dataset.y_train, dataset.y_val]),
                                     minlength=dataset.n_classes)
                target += " (" + " : ".join(f"{c:,}" for c in counts) + ")"
        else:
            target = f"{plural(dataset.n_outputs, 'target')} to predict"
        split = f"{train:,} train / {val:,} validation" if val else "no validation split"
        text = f"{what}, {target}; {split}"
        if dataset.name in SEQUENCE_BASELINES:  # what a network must beat to have learned it
            text += f". Baseline: {SEQUENCE_BASELINES[dataset.name]}"
        self.summary_label.setText(text)

    def mark_refused(self, field: str) -> None:
        if field.startswith("problem.dataset."):
            self.data_form.mark_refused(field.removeprefix("problem.dataset."))
        if field == "problem.dataset.seed":
            show_refused(self.seed_box, True)

    def clear_refused(self) -> None:
        self.data_form.clear_refused()
        show_refused(self.seed_box, False)

    # ---------------------------------------------------------------- edits

    def _propose_spec(self, spec: Mapping, description: str, fit_to_data: bool = False) -> None:
        self.propose(replace(self._problem, dataset=dict(spec)), description, fit_to_data)

    def _on_dataset_chosen(self, index: int) -> None:
        if self._problem is None or self._showing:
            return
        name = self.dataset_combo.itemData(index)
        old = self._problem.dataset
        if name == old.get("name"):
            return
        info, old_info = DATASETS[name], DATASETS.get(old.get("name"))
        spec: dict[str, Any] = {"name": name}
        accepted = {p.name for p in info.params}
        for key in CARRIED_KEYS:
            if key in old and key in accepted:
                spec[key] = old[key]
        if info.two_d and old_info is not None and old_info.two_d and "features" in old:
            spec["features"] = list(old["features"])
        if name == "csv":
            # Nothing to learn from until a file is chosen: show the picker, commit nothing yet.
            self.drafted.emit(replace(self._problem, dataset=dict(spec)))
            return
        self._propose_spec(spec, f"Data set: {info.title}", fit_to_data=True)

    def _on_data_param(self, name: str, value: Any) -> None:
        if self._problem is None:
            return
        spec = dict(self._problem.dataset)
        if value is None:
            spec.pop(name, None)
        else:
            spec[name] = value
        shown = format_float(value) if isinstance(value, float) else value
        self._propose_spec(spec, f"Data set {name}: {shown}",
                           fit_to_data=name in ("classes", "task"))

    def _on_seed_typed(self, value: float) -> None:
        if self._problem is None:
            return
        spec = {**self._problem.dataset, "seed": typed_whole(value)}
        self._propose_spec(spec, f"Data seed: {format_float(value)}")

    def _on_seed_auto(self, checked: bool) -> None:
        if self._problem is None:
            return
        spec = dict(self._problem.dataset)
        if checked:
            spec.pop("seed", None)
            description = "Data seed: the lab's"
        else:
            spec["seed"] = typed_whole(self.seed_box.value())
            description = f"Data seed: {format_float(self.seed_box.value())}"
        self._propose_spec(spec, description)

    def regenerate(self) -> None:
        """New data: a new explicit data seed, different from the one in use."""
        if self._problem is None:
            return
        current = int(self.seed_box.value())
        seed = self.new_seed()
        for _ in range(100):
            if seed != current:
                break
            seed = self.new_seed()
        spec = {**self._problem.dataset, "seed": int(seed)}
        self._propose_spec(spec, f"Regenerate data (seed {seed})")

    def _on_feature(self, key: str, checked: bool) -> None:
        if self._problem is None:
            return
        spec = dict(self._problem.dataset)
        features = [f for f in spec.get("features", DEFAULT_FEATURES) if f != key]
        if checked:
            # Appended rather than sorted: the inputs the network already has keep their order.
            features.append(key)
        spec["features"] = features
        # More or fewer inputs only changes the first layer's width: a network of linear layers
        # still fits, so nothing is refitted here.
        shown = ", ".join(FEATURE_LABELS[f] for f in features) or "none"
        self._propose_spec(spec, f"Inputs: {shown}")

    def _on_standardize(self, checked: bool) -> None:
        if self._problem is None:
            return
        spec = {**self._problem.dataset, "standardize": checked}
        self._propose_spec(spec, "Standardize features" if checked
                           else "Do not standardize features")

    def browse_csv(self) -> None:
        """Ask for a CSV file (through the replaceable ``open_file_dialog``) and use it."""
        if self._problem is None:
            return
        start = self._lab.base_dir
        if not start or is_bundled(start):  # an example's folder is the app's, not the user's
            start = documents_dir()
        path, _filter = self.open_file_dialog(
            self, "Open a CSV data set", start, "CSV files (*.csv);;All files (*)"
        )
        if path:
            self._use_csv(path)

    def _on_csv_path_typed(self) -> None:
        text = self.csv_path_edit.text().strip()
        if self._problem is None or not text or text == self._problem.dataset.get("path"):
            return
        self._use_csv(text)

    def _use_csv(self, path: str) -> None:
        stored = self._relative_to_lab(path)
        columns = csv_columns(self._base() / Path(stored).expanduser())
        spec = {**self._problem.dataset, "name": "csv", "path": stored}
        if spec.get("label") not in columns and columns:
            spec["label"] = columns[-1]  # the usual place of the target
        self._propose_spec(spec, f"Data set: {Path(stored).name}", fit_to_data=True)

    def _relative_to_lab(self, path: str) -> str:
        """Inside the lab's folder: relative (the lab can move with its data); else absolute."""
        if not self._lab.base_dir or not os.path.isabs(path):
            return path
        try:
            return Path(path).resolve().relative_to(Path(self._lab.base_dir).resolve()).as_posix()
        except ValueError:
            return path

    def _on_csv_label(self, *_args) -> None:
        label = self.csv_label_combo.currentText().strip()
        if self._problem is None or not label or label == self._problem.dataset.get("label"):
            return
        spec = {**self._problem.dataset, "label": label}
        self._propose_spec(spec, f"Label column: {label}", fit_to_data=True)
