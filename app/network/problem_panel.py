"""The network problem editor: the data set, how to train on it, and the network that learns it.

The left-dock counterpart of `ProblemPanel` for network labs, with the same contract: it edits
nothing in place. Every change builds a new `Lab` (``dataclasses.replace``), checks it with
`validate_lab` exactly as a lab file would be checked, and only then emits
``lab_edited(lab, description)``; the document makes it an undoable step and calls `set_lab`
back, which refreshes the widgets without emitting. A refused edit is explained in red under its
section, naming the field (``problem.model.layers[2].conv2d: conv2d needs image inputs …``), and
emits nothing.

A refused edit stays on screen: the panel keeps a *draft* `NetworkProblem` that every edit
builds on, so a user can add a conv layer (refused on 2-D points) and then a flatten layer and
have both applied once the network is valid. `set_lab` replaces the draft with the lab's problem.

Sections, top to bottom (made for a ~370 px dock):

* **Data set**: which set, its parameters (the shared `HyperParamForm`), the data seed with a
  Regenerate button, Playground-style extra features and standardization for 2-D sets, a preview
  of the points (or a one-line summary for images and tables).
* **Training**: the loss (only those that fit the task), batch size or full batch, how often to
  evaluate, the device.
* **Network**: the ordered layers, each with its kind and value, its description and output
  shape; the initialisation; the parameter count; and `NetworkDiagram`, drawn from freshly
  initialised weights (the same ones a race starts from). ``panel.diagram`` is public so the main
  window can recolour it from the weights of a running race.

Changing the data set keeps the network when it still fits. When it does not, the panel resizes
the output layer if that is enough (moons → blobs with 3 classes), and otherwise replaces the
network with `default_model_for` the new data (moons → digits); either way it says so.
"""

from __future__ import annotations

import csv
import json
import os
import random
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
import torch
from PySide6.QtCore import QEvent, QObject, QSize, Qt, Signal
from PySide6.QtGui import QPalette, QValidator
from PySide6.QtWidgets import (
    QAbstractItemView,
    QAbstractSpinBox,
    QApplication,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.network.diagram import NetworkDiagram
from app.shell.theme import CLASS_COLORS, FOREGROUND, class_color, class_point_style
from app.widgets.hyperparam_form import (
    HyperParamForm,
    ScientificSpinBox,
    WholeNumberBox,
    format_float,
    show_refused,
    typed_whole,
)
from app.widgets.tables import header_table
from core.engine.devices import DEVICES
from core.engine.network_race import DIAGRAM_MAX_PARAMS
from core.errors import LabError
from core.lab.format import MAX_SEEDS, MAX_STEPS, Lab, NetworkProblem, validate_lab
from core.problems.datasets import (
    DATASETS,
    DEFAULT_FEATURES,
    POINT_FEATURES,
    Dataset,
    DatasetInfo,
    make_dataset,
)
from core.problems.metrics import CLASSIFICATION_LOSSES, LOSSES, REGRESSION_LOSSES
from core.problems.models import (
    ACTIVATIONS,
    INIT_NAMES,
    LAYER_KINDS,
    MAX_KERNEL,
    MAX_NORMAL_SIGMA,
    MAX_WIDTH,
    ModelSpec,
    build_model,
    default_model_for,
    linear_layers,
    validate_model,
)

# Dataset keys with their own widgets (a seed with Regenerate, an explicit check box) rather
# than a row of the generic form.
OWN_WIDGET_KEYS = ("seed", "standardize")
# Keys that mean the same for every set, so they survive a change of data set.
CARRIED_KEYS = ("val_fraction", "seed", "standardize")

FEATURE_LABELS = {
    "x": "x", "y": "y", "x2": "x²", "y2": "y²", "xy": "xy", "sinx": "sin x", "siny": "sin y",
}

KIND_TITLES = {
    "linear": "Linear", "act": "Activation", "dropout": "Dropout", "batchnorm": "BatchNorm",
    "conv2d": "Conv2d", "maxpool": "MaxPool", "flatten": "Flatten",
}
KIND_TIPS = {
    "linear": "A fully connected layer: every output is a weighted sum of every input plus a bias",
    "act": "An activation function applied to each value (the network's non-linearity)",
    "dropout": "Zeroes each value with probability p while training (a regulariser)",
    "batchnorm": "Normalises each channel over the mini-batch, then scales and shifts it",
    "conv2d": "A 2-D convolution over images: small kernels slid over every position",
    "maxpool": "Keeps the largest value of each size×size patch of an image",
    "flatten": "Turns images into one flat vector, for the linear layers after it",
}
# What a row becomes when its kind is changed (a new linear layer at the end: the output width).
KIND_DEFAULTS: dict[str, Any] = {
    "linear": 16, "act": "relu", "dropout": 0.1, "batchnorm": True, "conv2d": 8, "maxpool": 2,
    "flatten": True,
}
NEW_LINEAR_WIDTH = 16
NEW_CONV_CHANNELS = 8
MAX_DROPOUT = 0.95

INIT_TIPS = {
    "default": "PyTorch's own init: uniform in ±1/√fan_in",
    "xavier": "Xavier/Glorot uniform: keeps the variance of values and gradients across layers",
    "kaiming": "Kaiming/He uniform, scaled for the activation that follows each layer",
    "zeros": "All weights 0: every unit of a layer stays identical (symmetry never breaks)",
    "normal": "Weights drawn from a normal distribution with mean 0 and the standard deviation σ",
}
DEFAULT_SIGMA = 0.1

DEVICE_TIPS = {
    "auto": "The GPU when CUDA is available, else the CPU",
    "cpu": "Always the CPU",
    "cuda": "The GPU (falls back to the CPU, with a notice, when CUDA is not available)",
}

# A preview of 100k points would cost more to draw than it shows; a regular subsample of this
# many per split looks the same.
MAX_PREVIEW_POINTS = 1500
PREVIEW_LEVELS = 12  # colour steps of a 2-D regression target
PREVIEW_HEIGHT = 118
DIAGRAM_HEIGHT = 160
# Regenerate draws seeds short enough to read off the box and type back.
NEW_SEED_LOW, NEW_SEED_HIGH = 1, 99_999
MAX_DATA_SEED = 2**32 - 1
DEFAULT_BATCH = 64
DATASET_CACHE_SIZE = 6
MAX_TABLE_ROWS_SHOWN = 8

COL_KIND, COL_VALUE, COL_DESCRIBE, COL_SHAPE = range(4)
_TABLE_HEADERS = (
    ("Kind", "What the layer does"),
    ("Value", "The layer's setting: width, activation, p, channels and kernel, or pool size"),
    ("Layer", "The layer as PyTorch builds it for this data"),
    ("Out", "The shape of one sample after this layer"),
)
_LAYER_INDEX = re.compile(r"^problem\.model\.layers\[(\d+)\]")


def _error_color(palette: QPalette) -> str:
    """A red that reads on the current background (light red on dark, dark red on light)."""
    return "#ff6b6b" if palette.color(QPalette.ColorRole.Window).lightness() < 128 else "#b00020"


def _shape_text(shape: Sequence[int]) -> str:
    return "×".join(str(d) for d in shape)


def _plural(count: int, word: str, plural: str = "") -> str:
    return f"{count:,} {word}" if count == 1 else f"{count:,} {plural or word + 's'}"


def _fitting_losses(task: str) -> tuple[str, ...]:
    return CLASSIFICATION_LOSSES if task == "classification" else REGRESSION_LOSSES


def _loss_title(name: str) -> str:
    return LOSSES[name].split(":")[0] if name in LOSSES else name


def _as_int(value: Any, fallback: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return fallback


def _as_float(value: Any, fallback: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return fallback


def _conv_values(value: Any) -> tuple[int, int]:
    """(out channels, kernel) of a conv2d entry, short form ``8`` or ``{"out": 8, "kernel": 5}``."""
    if isinstance(value, Mapping):
        return _as_int(value.get("out"), NEW_CONV_CHANNELS), _as_int(value.get("kernel", 3), 3)
    return _as_int(value, NEW_CONV_CHANNELS), 3


class _StepsOrOffBox(WholeNumberBox):
    """``every N steps``, or ``off`` for 0, where any whole number can be typed (a negative one
    is refused by validation in red). Qt's own special value text would show only at the box's
    minimum, which is far below 0 here, so the text is made here."""

    # The words around the number may be half deleted while typing ("every 5 step").
    _TEXT = re.compile(r"\s*[a-z]*\s*([+-]?\d*)\s*[a-z]*\s*")

    def textFromValue(self, value: int) -> str:  # noqa: N802 (Qt override)
        return "off" if value == 0 else f"every {value} steps"

    def valueFromText(self, text: str) -> int:  # noqa: N802 (Qt override)
        if text.strip().lower() == "off":
            return 0
        match = self._TEXT.fullmatch(text.lower())
        try:
            return int(match.group(1)) if match else self.value()
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int):  # Qt override
        lower = text.strip().lower()
        if lower == "off":
            return QValidator.State.Acceptable, text, pos
        if lower and "off".startswith(lower):
            return QValidator.State.Intermediate, text, pos
        match = self._TEXT.fullmatch(lower)
        if match is None:
            return QValidator.State.Invalid, text, pos
        return super().validate(match.group(1), 0)[0], text, pos


def _csv_columns(path: Path) -> list[str]:
    """The header row of a CSV file, or [] when it cannot be read (validation says why)."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            header = next(csv.reader(handle), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return []
    return [column.strip() for column in header if column.strip()]


class _PreviewPlot(pg.PlotWidget):
    """The data preview: small, not interactive, and the wheel scrolls the panel instead."""

    def wheelEvent(self, event) -> None:  # noqa: N802 (Qt override)
        event.ignore()

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        # pyqtgraph asks for 600×480, which would widen the whole dock.
        return QSize(300, PREVIEW_HEIGHT)


class NetworkProblemPanel(QWidget):
    """Editor of a network lab's problem. See the module docstring."""

    lab_edited = Signal(object, str)  # the new Lab, an undo description

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("networkPanel")
        self._lab: Lab | None = None
        self._draft: NetworkProblem | None = None
        self._last_emitted: Lab | None = None
        self._dataset: Dataset | None = None
        self._model_spec: ModelSpec | None = None
        self._diagram_key: tuple | None = None
        self._previewed: Dataset | None = None
        self._preview_items: list[pg.ScatterPlotItem] = []
        self._dataset_cache: OrderedDict[tuple, Dataset] = OrderedDict()
        self._row_to_select: int | None = None
        self._refreshing = False
        # Replaceable, for tests (no modal dialog) and for a window that brings its own dialog.
        self.open_file_dialog: Callable[..., tuple[str, str]] = QFileDialog.getOpenFileName
        self.new_seed: Callable[[], int] = lambda: random.randint(NEW_SEED_LOW, NEW_SEED_HIGH)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(6)
        layout.addWidget(self._build_dataset_group())
        layout.addWidget(self._build_training_group())
        layout.addWidget(self._build_network_group())
        layout.addStretch(1)
        self.setEnabled(False)  # until a network lab is shown

    # ================================================================ building

    def _error_label(self, name: str) -> QLabel:
        label = QLabel(objectName=name)
        label.setWordWrap(True)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        label.setStyleSheet(f"color: {_error_color(self.palette())};")
        label.hide()
        return label

    @staticmethod
    def _row(*widgets: QWidget, stretch_first: bool = True) -> QWidget:
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        for i, widget in enumerate(widgets):
            layout.addWidget(widget, 1 if (i == 0 and stretch_first) else 0)
        return row

    @staticmethod
    def _form(group: QGroupBox) -> QFormLayout:
        form = QFormLayout(group)
        form.setContentsMargins(6, 6, 6, 6)
        form.setHorizontalSpacing(8)
        form.setVerticalSpacing(4)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.DontWrapRows)
        return form

    def _build_dataset_group(self) -> QGroupBox:
        group = QGroupBox("Data set", objectName="datasetGroup")
        form = self._form(group)
        self._dataset_form = form

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
        self._csv_path_row = self._row(self.csv_path_edit, self.csv_browse_button)
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
        form.addRow("Seed", self._row(self.seed_box, self.seed_auto, self.regenerate_button))

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

        self.preview = _PreviewPlot(objectName="dataPreview")
        self.preview.setToolTip("The training points (filled) and validation points (hollow)")
        self.preview.setAccessibleName("Data preview")
        self.preview.setFixedHeight(PREVIEW_HEIGHT)
        self.preview.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.preview.setMouseEnabled(x=False, y=False)
        self.preview.setMenuEnabled(False)
        self.preview.hideButtons()
        plot_item = self.preview.getPlotItem()
        for axis in ("left", "bottom"):
            plot_item.getAxis(axis).setStyle(tickLength=-4)
            plot_item.getAxis(axis).setTextPen(pg.mkPen("#8a8d93"))
        plot_item.setContentsMargins(0, 2, 4, 0)
        form.addRow(self.preview)

        self.summary_label = QLabel(objectName="datasetSummary")
        self.summary_label.setWordWrap(True)
        self.summary_label.setToolTip("Size, shape and classes of the data set")
        form.addRow(self.summary_label)
        self.dataset_error = self._error_label("datasetError")
        form.addRow(self.dataset_error)
        return group

    def _build_training_group(self) -> QGroupBox:
        group = QGroupBox("Training", objectName="trainingGroup")
        form = self._form(group)

        self.loss_combo = QComboBox(objectName="lossCombo")
        self.loss_combo.setToolTip("What training minimises (only losses that fit the task)")
        self.loss_combo.setAccessibleName("Loss")
        self.loss_combo.currentIndexChanged.connect(self._on_loss)
        self.device_combo = QComboBox(objectName="deviceCombo")
        for name in DEVICES:
            self.device_combo.addItem(name, name)
            self.device_combo.setItemData(
                self.device_combo.count() - 1, DEVICE_TIPS.get(name, ""),
                Qt.ItemDataRole.ToolTipRole,
            )
        self.device_combo.setToolTip("Where the networks are trained: auto, the CPU or the GPU")
        self.device_combo.setAccessibleName("Device")
        self.device_combo.currentIndexChanged.connect(self._on_device)
        form.addRow("Loss", self._row(self.loss_combo, QLabel("Device"), self.device_combo))

        # Whole-number boxes that take any typed number: one out of range is refused in red
        # (with the field marked) by validation, not silently reverted (app/widgets/hyperparam_form.py).
        self.batch_box = WholeNumberBox(objectName="batchSizeBox")
        self.batch_box.set_allowed(1, 1_000_000)
        self.batch_box.setKeyboardTracking(False)
        self.batch_box.setToolTip("Samples per optimizer step (a mini-batch)")
        self.batch_box.setAccessibleName("Batch size")
        self.batch_box.valueChanged.connect(self._on_batch_size)
        self.full_batch_check = QCheckBox("Full batch", objectName="fullBatchCheck")
        self.full_batch_check.setToolTip(
            "Use every training sample at every step (exact gradients, no mini-batch noise)"
        )
        self.full_batch_check.toggled.connect(self._on_full_batch)
        self.eval_box = WholeNumberBox(objectName="evalEveryBox")
        self.eval_box.set_allowed(1, MAX_STEPS)
        self.eval_box.setKeyboardTracking(False)
        self.eval_box.setToolTip(
            "Measure validation metrics and redraw boundaries every this many steps"
        )
        self.eval_box.setAccessibleName("Evaluate every")
        self.eval_box.valueChanged.connect(self._on_eval_every)
        self.seeds_box = WholeNumberBox(objectName="seedsBox")
        self.seeds_box.set_allowed(1, MAX_SEEDS)
        self.seeds_box.setKeyboardTracking(False)
        self.seeds_box.setToolTip(
            "Train every run this many times from different initial weights and batch orders; "
            "curves show the mean with a ± std band"
        )
        self.seeds_box.setAccessibleName("Seeds per run")
        self.seeds_box.valueChanged.connect(self._on_seeds)
        form.addRow("Batch", self._row(self.batch_box, self.full_batch_check))
        form.addRow("Eval every", self._row(self.eval_box, QLabel("steps"), QLabel("Seeds"),
                                            self.seeds_box))
        self.sharpness_box = _StepsOrOffBox(objectName="sharpnessEveryBox")
        self.sharpness_box.set_allowed(0, MAX_STEPS)  # a typed -5 is refused in red
        self.sharpness_box.setKeyboardTracking(False)
        self.sharpness_box.setToolTip(
            "Track sharpness every N steps: each run's top Hessian eigenvalue λ_max, measured "
            "during training (a few Hessian-vector products each time) and drawn live on the "
            "Surface tab's Sharpness page against 2/lr, the edge of stability of gradient "
            "descent; also in the comparison table. 0 (off) measures nothing."
        )
        self.sharpness_box.setAccessibleName("Track sharpness every")
        self.sharpness_box.valueChanged.connect(self._on_sharpness_every)
        form.addRow("Track sharpness", self._row(self.sharpness_box))
        self.training_error = self._error_label("trainingError")
        form.addRow(self.training_error)
        return group

    def _build_network_group(self) -> QGroupBox:
        group = QGroupBox("Network", objectName="networkGroup")
        layout = QVBoxLayout(group)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(4)

        table = header_table(_TABLE_HEADERS, "layerList", "Layers")
        table.setToolTip(
            "The layers, input at the top; select one to add after it, move or remove it"
        )
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setTabKeyNavigation(False)  # Tab moves through the row's editors, then leaves
        table.setWordWrap(False)
        table.setTextElideMode(Qt.TextElideMode.ElideRight)
        table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        table.verticalHeader().setVisible(False)
        self._row_height = QComboBox().sizeHint().height() + 2
        table.verticalHeader().setDefaultSectionSize(self._row_height)
        table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        header = table.horizontalHeader()
        header.setHighlightSections(False)
        for column, mode, width in (
            (COL_KIND, QHeaderView.ResizeMode.Fixed, 98),
            (COL_VALUE, QHeaderView.ResizeMode.Fixed, 96),
            (COL_DESCRIBE, QHeaderView.ResizeMode.Stretch, 0),
            (COL_SHAPE, QHeaderView.ResizeMode.ResizeToContents, 0),
        ):
            header.setSectionResizeMode(column, mode)
            if width:
                header.resizeSection(column, width)
        table.itemSelectionChanged.connect(self._update_layer_buttons)
        self.layer_table = table
        layout.addWidget(table)

        def button(text: str, name: str, tip: str, slot) -> QPushButton:
            widget = QPushButton(text, objectName=name)
            widget.setToolTip(tip)
            widget.setAutoDefault(False)
            widget.clicked.connect(slot)
            return widget

        self.add_layer_button = button(
            "Add", "addLayerButton",
            "Insert a layer after the selected one (before the output layer when none is "
            "selected): a 16-unit linear layer, or a conv layer among image layers",
            self.add_layer,
        )
        self.remove_layer_button = button(
            "Remove", "removeLayerButton", "Remove the selected layer", self.remove_layer
        )
        self.move_up_button = button("▲", "moveLayerUpButton", "Move the selected layer up",
                                     lambda: self.move_layer(-1))
        self.move_down_button = button("▼", "moveLayerDownButton",
                                       "Move the selected layer down", lambda: self.move_layer(1))
        for arrow in (self.move_up_button, self.move_down_button):
            arrow.setFixedWidth(arrow.sizeHint().height() + 8)
        self.default_model_button = button(
            "Default", "defaultModelButton",
            "Replace the network with a sensible default for this data set", self.use_default_model,
        )
        buttons = QHBoxLayout()
        buttons.setSpacing(4)
        for widget in (self.add_layer_button, self.remove_layer_button, self.move_up_button,
                       self.move_down_button):
            buttons.addWidget(widget)
        buttons.addStretch(1)
        buttons.addWidget(self.default_model_button)
        layout.addLayout(buttons)

        self.init_combo = QComboBox(objectName="initCombo")
        for name in (*INIT_NAMES, "normal"):
            self.init_combo.addItem(name, name)
            self.init_combo.setItemData(
                self.init_combo.count() - 1, INIT_TIPS[name], Qt.ItemDataRole.ToolTipRole
            )
        self.init_combo.setToolTip("How the weights are initialised before training")
        self.init_combo.setAccessibleName("Initialisation")
        self.init_combo.currentIndexChanged.connect(self._on_init)
        self.sigma_box = ScientificSpinBox(log=True, log_floor=0.01)
        self.sigma_box.setObjectName("initSigmaBox")
        self.sigma_box.set_allowed(1e-6, MAX_NORMAL_SIGMA)  # typed beyond: refused in red
        self.sigma_box.setToolTip("σ: the standard deviation of the normal init, in (0, 10]")
        self.sigma_box.setAccessibleName("Init sigma")
        self.sigma_box.valueChanged.connect(self._on_sigma)
        self.sigma_label = QLabel("σ")
        self.param_count = QLabel(objectName="paramCount")
        self.param_count.setToolTip("Trainable parameters: weights and biases of every layer")
        self.param_count.setAlignment(
            Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        )
        init_row = QHBoxLayout()
        init_row.setSpacing(6)
        init_row.addWidget(QLabel("Init"))
        init_row.addWidget(self.init_combo)
        init_row.addWidget(self.sigma_label)
        init_row.addWidget(self.sigma_box)
        init_row.addStretch(1)
        init_row.addWidget(self.param_count)
        layout.addLayout(init_row)

        self.model_error = self._error_label("modelError")
        layout.addWidget(self.model_error)
        self.status_label = QLabel(objectName="networkStatus")
        self.status_label.setWordWrap(True)
        self.status_label.setStyleSheet("color: #e0b45a;")
        self.status_label.setToolTip("What the panel changed by itself to fit the data")
        self.status_label.hide()
        layout.addWidget(self.status_label)

        self.diagram = NetworkDiagram()
        self.diagram.setMinimumHeight(DIAGRAM_HEIGHT)
        self.diagram.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        layout.addWidget(self.diagram, 1)
        return group

    # ================================================================ showing a lab

    def set_lab(self, lab: Lab) -> None:
        """Show ``lab``'s problem; never emits. A function lab leaves the panel disabled."""
        if not lab.is_network:
            self._lab = self._draft = None
            self.setEnabled(False)
            return
        self.setEnabled(True)
        # The note about an automatic change belongs to the edit that made it: keep it while
        # the document hands that very lab back, drop it for any other lab (undo, open, …).
        if self._last_emitted is None or lab != self._last_emitted:
            self.status_label.hide()
        self._last_emitted = None
        self._lab = lab
        self._draft = lab.problem
        self._hide_errors()
        self._refresh()

    def lab(self) -> Lab | None:
        return self._lab

    def dataset(self) -> Dataset | None:
        """The data set the panel shows (built from the draft), or None when it is invalid."""
        return self._dataset

    def model_spec(self) -> ModelSpec | None:
        return self._model_spec

    def _refresh(self) -> None:
        """Show the draft in every widget, without emitting."""
        self._refreshing = True
        try:
            self._show_dataset()
            self._show_training()
            self._show_layers()
        finally:
            self._refreshing = False

    # ---------------------------------------------------------------- data set

    def _dataset_info(self) -> DatasetInfo | None:
        return DATASETS.get(self._draft.dataset.get("name"))

    def _build_dataset(self, spec: Mapping) -> Dataset:
        """``make_dataset`` for the lab's seed and folder, cached (validation builds it again)."""
        lab = self._lab
        key_spec = json.dumps(spec, sort_keys=True, default=str)
        stamp = None
        if spec.get("name") == "csv" and isinstance(spec.get("path"), str):
            base = Path(lab.base_dir) if lab.base_dir else Path.cwd()
            path = Path(spec["path"]).expanduser()
            try:
                stamp = (base / path).stat().st_mtime_ns  # an edited file is read again
            except OSError:
                stamp = None
        key = (key_spec, lab.seed, lab.base_dir, stamp)
        if key in self._dataset_cache:
            self._dataset_cache.move_to_end(key)
            return self._dataset_cache[key]
        base_dir = Path(lab.base_dir) if lab.base_dir else None
        # The first digits set imports scikit-learn (seconds); a CSV may be large. Say we're busy.
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            dataset = make_dataset(spec, lab.seed, base_dir=base_dir)
        finally:
            QApplication.restoreOverrideCursor()
        self._dataset_cache[key] = dataset
        while len(self._dataset_cache) > DATASET_CACHE_SIZE:
            self._dataset_cache.popitem(last=False)
        return dataset

    def _show_dataset(self) -> None:
        spec = self._draft.dataset
        info = self._dataset_info()
        name = spec.get("name")
        widgets = (self.dataset_combo, self.csv_path_edit, self.csv_label_combo, self.seed_box,
                   self.seed_auto, self.standardize_check, *self.feature_checks.values())
        for widget in widgets:
            widget.blockSignals(True)
        try:
            self.dataset_combo.setCurrentIndex(self.dataset_combo.findData(name))
            is_csv = name == "csv"
            self._dataset_form.setRowVisible(self._csv_path_row, is_csv)
            self._dataset_form.setRowVisible(self.csv_label_combo, is_csv)
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
            two_d = info is not None and info.two_d
            self._dataset_form.setRowVisible(self._features_row, two_d)
            chosen = spec.get("features", DEFAULT_FEATURES)
            for key, check in self.feature_checks.items():
                check.setChecked(key in chosen)
            self.standardize_check.setChecked(bool(spec.get("standardize", False)))
        finally:
            for widget in widgets:
                widget.blockSignals(False)

        self._dataset = None
        if not (name == "csv" and not spec.get("path")):
            try:
                self._dataset = self._build_dataset(spec)
            except LabError:
                pass  # the commit that follows (or the lab's own validation) explains it
        self._show_preview(self._dataset)
        self._show_summary(self._dataset)

    def _fill_label_columns(self, spec: Mapping) -> None:
        combo = self.csv_label_combo
        combo.clear()
        path = spec.get("path")
        if isinstance(path, str) and path:
            base = Path(self._lab.base_dir) if self._lab.base_dir else Path.cwd()
            combo.addItems(_csv_columns(base / Path(path).expanduser()))
        label = str(spec.get("label", ""))
        index = combo.findText(label)
        if index >= 0:
            combo.setCurrentIndex(index)
        else:
            combo.setEditText(label)

    def _show_preview(self, dataset: Dataset | None) -> None:
        if dataset is self._previewed and dataset is not None:
            return  # same (cached) data: an edit elsewhere does not redraw the points
        self._previewed = dataset
        plot_item = self.preview.getPlotItem()
        for item in self._preview_items:
            plot_item.removeItem(item)
        self._preview_items = []
        points = self._preview_points(dataset) if dataset is not None else None
        self._dataset_form.setRowVisible(self.preview, points is not None)
        if points is None:
            return
        (train, val), (train_codes, val_codes, palette) = points, self._color_codes(dataset)
        classes = dataset.task == "classification"
        plot_item.setAspectLocked(dataset.is_2d)
        # One scatter item per split and colour, each with one pen and brush: per-point styles
        # make pyqtgraph render a symbol per point (~0.4 s for 1,000 points).
        for split, codes, hollow in ((train, train_codes, False), (val, val_codes, True)):
            pick = self._subsample(len(split))
            shown, shown_codes = split[pick], codes[pick]
            for code in np.unique(shown_codes):
                color = palette[int(code)]
                if classes:  # the classes' points exactly as the decision boundaries draw them
                    pen, brush = class_point_style(int(code), hollow)
                    style = {"pen": pen, "brush": brush, "size": 6 if hollow else 5}
                else:
                    style = ({"pen": pg.mkPen(color, width=1.2), "brush": None, "size": 6}
                             if hollow else {"pen": None, "brush": pg.mkBrush(color), "size": 5})
                item = pg.ScatterPlotItem(pos=shown[shown_codes == code], pxMode=True, **style)
                plot_item.addItem(item)
                self._preview_items.append(item)
        plot_item.autoRange(padding=0.04)

    def _preview_points(self, dataset: Dataset) -> tuple[np.ndarray, np.ndarray] | None:
        """(train, val) plane positions to plot, or None when the set has no picture."""
        if dataset.is_2d:
            colored_by = "class" if dataset.task == "classification" else \
                "target (blue low, orange high)"
            self.preview.setToolTip(
                f"The training points (filled) and validation points (hollow), by {colored_by}"
            )
            return dataset.points_train, dataset.points_val
        if dataset.input_shape == (1,) and dataset.task == "regression":
            # One input and one target: the set is a curve, shown as target over input.
            self.preview.setToolTip("Target over input: training (filled), validation (hollow)")
            return (np.column_stack([dataset.x_train[:, 0], dataset.y_train[:, 0]]),
                    np.column_stack([dataset.x_val[:, 0], dataset.y_val[:, 0]]))
        return None

    @staticmethod
    def _subsample(count: int) -> np.ndarray:
        step = max(1, -(-count // MAX_PREVIEW_POINTS))  # ceil division
        return np.arange(0, count, step)

    @staticmethod
    def _color_codes(dataset: Dataset) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """A colour index per train and val sample, and the colours: the class, or (2-D
        regression) the target in `PREVIEW_LEVELS` steps from blue (low) to orange (high)."""
        if dataset.task == "classification":
            return (dataset.y_train % len(CLASS_COLORS), dataset.y_val % len(CLASS_COLORS),
                    list(CLASS_COLORS))
        if not dataset.is_2d:
            return (np.zeros(len(dataset.y_train), np.int64),
                    np.zeros(len(dataset.y_val), np.int64), [FOREGROUND])
        train, val = dataset.y_train[:, 0], dataset.y_val[:, 0]
        both = np.concatenate([train, val])
        low, high = float(both.min()), float(both.max())
        span = high - low if high > low else 1.0  # one scale for both splits

        def codes(values: np.ndarray) -> np.ndarray:
            t = np.clip((values - low) / span, 0.0, 1.0)
            return np.round(t * (PREVIEW_LEVELS - 1)).astype(np.int64)

        color_map = pg.ColorMap([0.0, 0.5, 1.0], [class_color(0), "#e6e6e6", class_color(1)])
        levels = np.linspace(0.0, 1.0, PREVIEW_LEVELS)
        palette = [c.name() for c in color_map.map(levels, mode="qcolor")]
        return codes(train), codes(val), palette

    def _show_summary(self, dataset: Dataset | None) -> None:
        if dataset is None:
            spec = self._draft.dataset
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
        else:
            what = f"{total:,} samples of {_plural(shape[0], 'feature')}"
        if dataset.task == "classification":
            target = _plural(dataset.n_classes, "class", "classes")
        else:
            target = f"{_plural(dataset.n_outputs, 'target')} to predict"
        split = f"{train:,} train / {val:,} validation" if val else "no validation split"
        self.summary_label.setText(f"{what}, {target}; {split}")

    # ---------------------------------------------------------------- training

    def _task(self) -> str:
        if self._dataset is not None:
            return self._dataset.task
        info = self._dataset_info()
        if info is None or info.task == "any":
            return str(self._draft.dataset.get("task", "classification"))
        return info.task

    def _show_training(self) -> None:
        problem = self._draft
        widgets = (self.loss_combo, self.batch_box, self.full_batch_check, self.eval_box,
                   self.seeds_box, self.device_combo, self.sharpness_box)
        for widget in widgets:
            widget.blockSignals(True)
        try:
            names = list(_fitting_losses(self._task()))
            if problem.loss not in names:
                names.append(problem.loss)  # show the truth; validation explains the mismatch
            if [self.loss_combo.itemData(i) for i in range(self.loss_combo.count())] != names:
                self.loss_combo.clear()
                for name in names:
                    self.loss_combo.addItem(_loss_title(name), name)
                    self.loss_combo.setItemData(
                        self.loss_combo.count() - 1, LOSSES.get(name, ""),
                        Qt.ItemDataRole.ToolTipRole,
                    )
            self.loss_combo.setCurrentIndex(self.loss_combo.findData(problem.loss))
            self.loss_combo.setToolTip(
                f"What training minimises: {LOSSES.get(problem.loss, problem.loss)}"
            )
            full = problem.batch_size is None
            self.full_batch_check.setChecked(full)
            self.batch_box.setEnabled(not full)
            if not full:
                self.batch_box.setValue(int(problem.batch_size))
            elif self.batch_box.value() <= 1:
                self.batch_box.setValue(DEFAULT_BATCH)
            self.eval_box.setValue(int(problem.eval_every))
            self.seeds_box.setValue(int(problem.seeds))
            self.sharpness_box.setValue(int(problem.sharpness_every))
            self.device_combo.setCurrentIndex(max(0, self.device_combo.findData(problem.device)))
        finally:
            for widget in widgets:
                widget.blockSignals(False)

    # ---------------------------------------------------------------- layers

    def _layers(self) -> list:
        return list(self._draft.model.get("layers", []))

    def _show_layers(self) -> None:
        layers = self._layers()
        table = self.layer_table
        if table.rowCount() != len(layers):
            # Only buttons change the number of layers, so no row editor is mid-signal here.
            selected = self._selected_row()
            self._retire_row_widgets(range(table.rowCount()))
            table.setRowCount(0)
            table.setRowCount(len(layers))
            for row in range(len(layers)):
                table.setItem(row, COL_DESCRIBE, QTableWidgetItem())
                table.setItem(row, COL_SHAPE, QTableWidgetItem())
            target = self._row_to_select if self._row_to_select is not None else selected
            if 0 <= target < len(layers):
                table.selectRow(target)
        elif self._row_to_select is not None and 0 <= self._row_to_select < len(layers):
            table.selectRow(self._row_to_select)
        self._row_to_select = None
        for row, entry in enumerate(layers):
            self._show_layer_row(row, entry)
        visible = min(max(len(layers), 3), MAX_TABLE_ROWS_SHOWN)
        table.setFixedHeight(
            table.horizontalHeader().sizeHint().height() + visible * self._row_height
            + 2 * table.frameWidth()
        )
        self._show_init()
        self._check_model()
        self._update_layer_buttons()

    def _show_layer_row(self, row: int, entry: Any) -> None:
        kind, value = (next(iter(entry.items())) if isinstance(entry, Mapping) and len(entry) == 1
                       else ("linear", None))
        combo = self.layer_table.cellWidget(row, COL_KIND)
        if combo is None:
            combo = QComboBox(objectName=f"layerKind_{row}")
            for name in LAYER_KINDS:
                combo.addItem(KIND_TITLES[name], name)
                combo.setItemData(combo.count() - 1, KIND_TIPS[name], Qt.ItemDataRole.ToolTipRole)
            combo.setToolTip("What this layer does")
            combo.setAccessibleName(f"Layer {row + 1} kind")
            combo.currentIndexChanged.connect(
                lambda _index, row=row: self._on_layer_kind(row)
            )
            self._track_focus(combo, row)
            self.layer_table.setCellWidget(row, COL_KIND, combo)
        combo.blockSignals(True)
        combo.setCurrentIndex(max(0, combo.findData(kind)))
        combo.blockSignals(False)

        editor = self.layer_table.cellWidget(row, COL_VALUE)
        if editor is None or editor.property("layerKind") != kind:
            # The sender of a kind change is the combo, never the editor replaced here.
            if editor is not None:
                self._retire(editor)
            editor = self._value_editor(row, kind)
            self.layer_table.setCellWidget(row, COL_VALUE, editor)
        self._set_editor_value(editor, kind, value)

    def _retire_row_widgets(self, rows) -> None:
        for row in rows:
            for column in (COL_KIND, COL_VALUE):
                widget = self.layer_table.cellWidget(row, column)
                if widget is not None:
                    self._retire(widget)

    def _retire(self, widget: QWidget) -> None:
        """Take a row widget out of sight now: the table only deletes it later (deleteLater),
        and until then it would be painted at the viewport's top-left corner."""
        widget.hide()
        for named in [widget, *widget.findChildren(QWidget)]:
            named.setObjectName("")  # findChild must not find it before it is deleted
        widget.removeEventFilter(self)

    def _value_editor(self, row: int, kind: str) -> QWidget:
        """The editor of a layer's value, by kind (a dash for the kinds that take none)."""
        on_change = lambda *_args, row=row: self._on_layer_value(row)  # noqa: E731
        name = f"layerValue_{row}"
        if kind in ("linear", "maxpool"):
            # A typed 0 is not reverted silently: the row says in red what is allowed.
            editor = WholeNumberBox(objectName=name)
            if kind == "linear":
                editor.set_allowed(1, MAX_WIDTH)
                editor.setToolTip("Width: the number of outputs (neurons) of this layer")
            else:
                editor.set_allowed(1, MAX_KERNEL)
                editor.setPrefix("size ")
                editor.setToolTip("Pool size: each size×size patch becomes its largest value")
            editor.setKeyboardTracking(False)
            editor.valueChanged.connect(on_change)
        elif kind == "act":
            editor = QComboBox(objectName=name)
            for activation, module in ACTIVATIONS.items():
                editor.addItem(activation, activation)
                editor.setItemData(editor.count() - 1, f"torch.nn.{module.__name__}",
                                   Qt.ItemDataRole.ToolTipRole)
            editor.setToolTip("The activation function")
            editor.currentIndexChanged.connect(on_change)
        elif kind == "dropout":
            # The arrows keep to [0, MAX_DROPOUT]; a typed 1 is said in red, not clamped to 0.95.
            editor = ScientificSpinBox()
            editor.setObjectName(name)
            editor.set_allowed(0.0, MAX_DROPOUT)
            editor.setSingleStep(0.05)
            editor.setPrefix("p ")
            editor.setKeyboardTracking(False)
            editor.setToolTip("p: the probability that each value is zeroed while training")
            editor.valueChanged.connect(on_change)
        elif kind == "conv2d":
            editor = QWidget(objectName=name)
            row_layout = QHBoxLayout(editor)
            row_layout.setContentsMargins(0, 0, 0, 0)
            row_layout.setSpacing(2)
            channels = WholeNumberBox(objectName=f"layerChannels_{row}")
            channels.set_allowed(1, MAX_WIDTH)
            channels.setToolTip("Output channels: how many kernels (feature maps) this layer has")
            kernel = WholeNumberBox(objectName=f"layerKernel_{row}")
            kernel.set_allowed(1, MAX_KERNEL)
            kernel.setPrefix("k")
            kernel.setToolTip("Kernel size: each kernel covers k×k pixels")
            for box in (channels, kernel):
                box.setKeyboardTracking(False)
                box.setButtonSymbols(QSpinBox.ButtonSymbols.NoButtons)
                box.valueChanged.connect(on_change)
                self._track_focus(box, row)
                row_layout.addWidget(box, 1)
            editor.setToolTip("Output channels and kernel size")
        else:
            editor = QLabel("—", objectName=name)
            editor.setAlignment(Qt.AlignmentFlag.AlignCenter)
            editor.setToolTip(f"{KIND_TITLES.get(kind, kind)} takes no setting")
        editor.setProperty("layerKind", kind)
        editor.setAccessibleName(f"Layer {row + 1} value")
        self._track_focus(editor, row)
        return editor

    @staticmethod
    def _set_editor_value(editor: QWidget, kind: str, value: Any) -> None:
        widgets = [editor, *editor.findChildren(QSpinBox)]
        for widget in widgets:
            widget.blockSignals(True)
        try:
            if kind == "linear":
                editor.setValue(_as_int(value, NEW_LINEAR_WIDTH))
            elif kind == "maxpool":
                editor.setValue(_as_int(value, 2))
            elif kind == "act":
                editor.setCurrentIndex(max(0, editor.findData(value)))
            elif kind == "dropout":
                editor.setValue(_as_float(value, 0.1))
            elif kind == "conv2d":
                channels, kernel = editor.findChildren(QSpinBox)
                out, size = _conv_values(value)
                channels.setValue(out)
                kernel.setValue(size)
        finally:
            for widget in widgets:
                widget.blockSignals(False)

    def _track_focus(self, widget: QWidget, row: int) -> None:
        """Selecting a row's editor selects the row, so Add/Move/Remove act on it."""
        widget.setProperty("layerRow", row)
        widget.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt override)
        if event.type() == QEvent.Type.FocusIn:
            row = watched.property("layerRow")
            if isinstance(row, int) and 0 <= row < self.layer_table.rowCount():
                if self._selected_row() != row:
                    self.layer_table.selectRow(row)
        return super().eventFilter(watched, event)

    def _selected_row(self) -> int:
        rows = self.layer_table.selectionModel().selectedRows()
        return rows[0].row() if rows else -1

    def _update_layer_buttons(self) -> None:
        row = self._selected_row()
        count = self.layer_table.rowCount()
        self.remove_layer_button.setEnabled(row >= 0 and count > 1)
        self.move_up_button.setEnabled(row > 0)
        self.move_down_button.setEnabled(0 <= row < count - 1)
        self.default_model_button.setEnabled(self._dataset is not None)

    def _show_init(self) -> None:
        init = self._draft.model.get("init", "default")
        is_normal = isinstance(init, Mapping)
        for widget in (self.init_combo, self.sigma_box):
            widget.blockSignals(True)
        self.init_combo.setCurrentIndex(
            max(0, self.init_combo.findData("normal" if is_normal else init))
        )
        if is_normal:
            self.sigma_box.setValue(_as_float(init.get("normal"), DEFAULT_SIGMA))
        elif self.sigma_box.value() <= self.sigma_box.allowed()[0]:
            self.sigma_box.setValue(DEFAULT_SIGMA)
        for widget in (self.init_combo, self.sigma_box):
            widget.blockSignals(False)
        self.sigma_box.setVisible(is_normal)
        self.sigma_label.setVisible(is_normal)

    def _check_model(self) -> None:
        """Validate the draft network against the data: describe each layer, count, draw."""
        table = self.layer_table
        spec: ModelSpec | None = None
        error: LabError | None = None
        if self._dataset is not None:
            try:
                spec = validate_model(self._draft.model, self._dataset.input_shape,
                                      self._dataset.n_outputs, field="problem.model")
            except LabError as exc:
                error = exc
        self._model_spec = spec
        bad_row = self._error_row(error)
        red = _error_color(self.palette())
        for row in range(table.rowCount()):
            describe, shape = table.item(row, COL_DESCRIBE), table.item(row, COL_SHAPE)
            if spec is not None:
                layer = spec.layers[row]
                describe.setText(layer.describe)
                describe.setToolTip(
                    f"{layer.describe}\n{_shape_text(layer.in_shape)} → "
                    f"{_shape_text(layer.out_shape)}, {_plural(layer.n_params, 'parameter')}"
                )
                shape.setText(_shape_text(layer.out_shape))
                shape.setToolTip(f"One sample after this layer: {_shape_text(layer.out_shape)}")
                describe.setData(Qt.ItemDataRole.ForegroundRole, None)
            else:
                is_bad = row == bad_row
                describe.setText("⚠ " + error.message if is_bad and error else "")
                describe.setToolTip(str(error) if is_bad and error else "")
                describe.setData(Qt.ItemDataRole.ForegroundRole,
                                 pg.mkColor(red) if is_bad else None)
                shape.setText("")
                shape.setToolTip("")
        if spec is not None:
            self.param_count.setText(_plural(spec.n_params, "parameter"))
        else:
            self.param_count.setText("— parameters")
        self._show_diagram(spec)

    @staticmethod
    def _error_row(error: LabError | None) -> int:
        if error is None:
            return -1
        match = _LAYER_INDEX.match(error.field)
        return int(match.group(1)) if match else -1

    def _show_diagram(self, spec: ModelSpec | None) -> None:
        if spec is None:
            if self._diagram_key != ("invalid",):
                self.diagram.set_architecture(None, message="No diagram until the network is valid")
                self._diagram_key = ("invalid",)
            return
        names = self._dataset.feature_names if self._dataset.is_2d else None
        key = (repr(spec.to_dict()), spec.input_shape, spec.n_outputs, self._lab.seed,
               tuple(names or ()))
        if key == self._diagram_key:
            return
        self._diagram_key = key
        self.diagram.set_architecture(spec, input_names=names)
        if spec.n_params <= DIAGRAM_MAX_PARAMS:
            # The very weights a race starts from: the engine builds with the same seed.
            with torch.no_grad():
                model = build_model(spec, torch.Generator().manual_seed(self._lab.seed))
                weights = [m.weight.detach().numpy().copy() for _, m in linear_layers(model)]
            self.diagram.set_weights(weights)

    # ================================================================ edits

    def _edit(self, problem: NetworkProblem, description: str, fit_to_data: bool = False) -> bool:
        """Make ``problem`` the draft, show it, and emit it when the lab validates."""
        if self._lab is None or self._refreshing:
            return False
        self._draft = problem
        note = ""
        if fit_to_data:
            note = self._fit_to_data()
        self._refresh()
        if note:
            self.status_label.setText(note)
            self.status_label.show()
        elif fit_to_data:
            self.status_label.hide()
        return self._commit(description)

    def _commit(self, description: str) -> bool:
        lab = replace(self._lab, problem=self._draft)
        try:
            validate_lab(lab)
        except LabError as exc:
            self._show_error(exc)
            return False
        self._hide_errors()
        if lab != self._lab:
            self._last_emitted = lab
            self.lab_edited.emit(lab, description)
        return True

    def _show_error(self, error: LabError) -> None:
        self._hide_errors()
        if error.field.startswith("problem.model"):
            label = self.model_error
        elif error.field.startswith("problem.dataset"):
            label = self.dataset_error
        else:
            label = self.training_error
        label.setText(f"{error.field}: {error.message}" if error.field else error.message)
        label.setToolTip(str(error))
        label.show()
        # The field that holds the refused value stays marked until a valid one replaces it.
        field = error.field
        if field.startswith("problem.dataset."):
            self.data_form.mark_refused(field.removeprefix("problem.dataset."))
        boxes = {"problem.batch_size": self.batch_box, "problem.eval_every": self.eval_box,
                 "problem.seeds": self.seeds_box, "problem.model.init.normal": self.sigma_box,
                 "problem.sharpness_every": self.sharpness_box,
                 "problem.dataset.seed": self.seed_box}
        if field in boxes:
            show_refused(boxes[field], True)
        layer = _LAYER_INDEX.match(field)
        if layer:  # the box of that row holding a value its arrows could not reach (a typed 0)
            for box in self._layer_value_boxes(int(layer.group(1))):
                low, high = box.allowed()
                if not low <= box.value() <= high:
                    show_refused(box, True)

    def _hide_errors(self) -> None:
        for label in (self.dataset_error, self.training_error, self.model_error):
            label.hide()
            label.clear()
        self.data_form.clear_refused()
        for box in (self.batch_box, self.eval_box, self.seeds_box, self.sigma_box,
                    self.sharpness_box, self.seed_box):
            show_refused(box, False)
        for row in range(self.layer_table.rowCount()):
            for box in self._layer_value_boxes(row):
                show_refused(box, False)

    def _layer_value_boxes(self, row: int) -> list[QAbstractSpinBox]:
        """The spin boxes of a layer row's value (conv2d has two; an activation none)."""
        editor = self.layer_table.cellWidget(row, COL_VALUE)
        if editor is None:
            return []
        return [w for w in (editor, *editor.findChildren(QAbstractSpinBox)) if hasattr(w, "allowed")]

    def _fit_to_data(self) -> str:
        """Make the draft's loss and network fit its data set; say what changed (or "")."""
        try:
            dataset = self._build_dataset(self._draft.dataset)
        except LabError:
            return ""  # the commit names the data set's problem
        notes = []
        problem = self._draft
        allowed = _fitting_losses(dataset.task)
        if problem.loss not in allowed:
            problem = replace(problem, loss=allowed[0])
            notes.append(f"Loss set to {_loss_title(allowed[0]).lower()} for {dataset.task}.")
        shape, outputs = dataset.input_shape, dataset.n_outputs
        what = self._data_phrase(dataset)
        model = dict(problem.model)
        previous = self._dataset  # still the data shown before this edit
        if self._model_fits(model, shape, outputs):
            if previous is not None and (previous.input_shape, previous.n_outputs) != (
                shape, outputs
            ):
                notes.append(f"The network still fits {what}; Default offers one made for it.")
        else:
            layers = list(model.get("layers", []))
            resized = None
            if layers and isinstance(layers[-1], Mapping) and "linear" in layers[-1]:
                resized = {**model, "layers": [*layers[:-1], {"linear": outputs}]}
            if resized is not None and self._model_fits(resized, shape, outputs):
                model = resized
                notes.append(f"Output layer resized to {outputs} for {what}.")
            else:
                model = default_model_for(shape, outputs)
                init = problem.model.get("init")
                if init is not None and self._model_fits({**model, "init": init}, shape, outputs):
                    model["init"] = init
                if model.get("init") == "default":
                    del model["init"]
                notes.append(f"The network did not fit {what}: replaced by a default one.")
            problem = replace(problem, model=model)
        self._draft = problem
        return " ".join(notes)

    @staticmethod
    def _model_fits(model: Mapping, shape: tuple[int, ...], outputs: int) -> bool:
        try:
            validate_model(model, shape, outputs)
        except LabError:
            return False
        return True

    @staticmethod
    def _data_phrase(dataset: Dataset) -> str:
        shape = dataset.input_shape
        inputs = (f"{_shape_text(shape)} images" if len(shape) == 3
                  else _plural(shape[0], "input"))
        outputs = (f"{dataset.n_classes} classes" if dataset.task == "classification"
                   else _plural(dataset.n_outputs, "output"))
        return f"{inputs} and {outputs}"

    # ---------------------------------------------------------------- data set edits

    def _with_dataset(self, spec: Mapping) -> NetworkProblem:
        return replace(self._draft, dataset=dict(spec))

    def _on_dataset_chosen(self, index: int) -> None:
        if self._draft is None or self._refreshing:
            return
        name = self.dataset_combo.itemData(index)
        old = self._draft.dataset
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
            # Nothing to learn from until a file is chosen: show the picker, emit nothing yet.
            self._draft = self._with_dataset(spec)
            self._refresh()
            self._hide_errors()
            self.status_label.hide()
            return
        self._edit(self._with_dataset(spec), f"Data set: {info.title}", fit_to_data=True)

    def _on_data_param(self, name: str, value: Any) -> None:
        if self._draft is None:
            return
        spec = dict(self._draft.dataset)
        if value is None:
            spec.pop(name, None)
        else:
            spec[name] = value
        shown = format_float(value) if isinstance(value, float) else value
        self._edit(self._with_dataset(spec), f"Data set {name}: {shown}",
                   fit_to_data=name in ("classes", "task"))

    def _on_seed_typed(self, value: float) -> None:
        if self._draft is None:
            return
        spec = dict(self._draft.dataset)
        spec["seed"] = typed_whole(value)
        self._edit(self._with_dataset(spec), f"Data seed: {format_float(value)}")

    def _on_seed_auto(self, checked: bool) -> None:
        if self._draft is None:
            return
        spec = dict(self._draft.dataset)
        if checked:
            spec.pop("seed", None)
            description = "Data seed: the lab's"
        else:
            spec["seed"] = typed_whole(self.seed_box.value())
            description = f"Data seed: {format_float(self.seed_box.value())}"
        self._edit(self._with_dataset(spec), description)

    def regenerate(self) -> None:
        """New data: a new explicit data seed, different from the one in use."""
        if self._draft is None:
            return
        current = int(self.seed_box.value())
        seed = self.new_seed()
        for _ in range(100):
            if seed != current:
                break
            seed = self.new_seed()
        spec = dict(self._draft.dataset)
        spec["seed"] = int(seed)
        self._edit(self._with_dataset(spec), f"Regenerate data (seed {seed})")

    def _on_feature(self, key: str, checked: bool) -> None:
        if self._draft is None:
            return
        spec = dict(self._draft.dataset)
        features = [f for f in spec.get("features", DEFAULT_FEATURES) if f != key]
        if checked:
            # Appended rather than sorted: the inputs the network already has keep their order.
            features.append(key)
        spec["features"] = features
        # More or fewer inputs only changes the first layer's width: a network of linear layers
        # still fits, so nothing is refitted here.
        shown = ", ".join(FEATURE_LABELS[f] for f in features) or "none"
        self._edit(self._with_dataset(spec), f"Inputs: {shown}")

    def _on_standardize(self, checked: bool) -> None:
        if self._draft is None:
            return
        spec = dict(self._draft.dataset)
        spec["standardize"] = checked
        self._edit(self._with_dataset(spec), "Standardize features" if checked
                   else "Do not standardize features")

    def browse_csv(self) -> None:
        """Ask for a CSV file (through the replaceable ``open_file_dialog``) and use it."""
        if self._draft is None:
            return
        start = self._lab.base_dir or str(Path.cwd())
        path, _filter = self.open_file_dialog(
            self, "Open a CSV data set", start, "CSV files (*.csv);;All files (*)"
        )
        if path:
            self._use_csv(path)

    def _on_csv_path_typed(self) -> None:
        text = self.csv_path_edit.text().strip()
        if self._draft is None or not text or text == self._draft.dataset.get("path"):
            return
        self._use_csv(text)

    def _use_csv(self, path: str) -> None:
        stored = self._relative_to_lab(path)
        base = Path(self._lab.base_dir) if self._lab.base_dir else Path.cwd()
        columns = _csv_columns(base / Path(stored).expanduser())
        spec = dict(self._draft.dataset)
        spec.update(name="csv", path=stored)
        if spec.get("label") not in columns and columns:
            spec["label"] = columns[-1]  # the usual place of the target
        self._edit(self._with_dataset(spec), f"Data set: {Path(stored).name}", fit_to_data=True)

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
        if self._draft is None or not label or label == self._draft.dataset.get("label"):
            return
        spec = dict(self._draft.dataset)
        spec["label"] = label
        self._edit(self._with_dataset(spec), f"Label column: {label}", fit_to_data=True)

    # ---------------------------------------------------------------- training edits

    def _on_loss(self, index: int) -> None:
        name = self.loss_combo.itemData(index)
        if self._draft is None or name is None or name == self._draft.loss:
            return
        self._edit(replace(self._draft, loss=name), f"Loss: {_loss_title(name)}")

    def _on_batch_size(self, value: int) -> None:
        if self._draft is None or self.full_batch_check.isChecked():
            return
        self._edit(replace(self._draft, batch_size=int(value)), f"Batch size: {value}")

    def _on_full_batch(self, checked: bool) -> None:
        if self._draft is None:
            return
        batch = None if checked else int(self.batch_box.value())
        self._edit(replace(self._draft, batch_size=batch),
                   "Full batch" if checked else f"Batch size: {batch}")

    def _on_eval_every(self, value: int) -> None:
        if self._draft is not None:
            self._edit(replace(self._draft, eval_every=int(value)), f"Evaluate every {value} steps")

    def _on_seeds(self, value: int) -> None:
        if self._draft is not None:
            self._edit(replace(self._draft, seeds=int(value)), f"Seeds per run: {value}")

    def _on_sharpness_every(self, value: int) -> None:
        if self._draft is not None:
            text = f"Track sharpness every {value} steps" if value else "Stop tracking sharpness"
            self._edit(replace(self._draft, sharpness_every=int(value)), text)

    def _on_device(self, index: int) -> None:
        name = self.device_combo.itemData(index)
        if self._draft is not None and name:
            self._edit(replace(self._draft, device=name), f"Device: {name}")

    # ---------------------------------------------------------------- network edits

    def _with_layers(self, layers: list, select: int | None = None) -> NetworkProblem:
        self._row_to_select = select
        return replace(self._draft, model={**self._draft.model, "layers": layers})

    def _on_layer_kind(self, row: int) -> None:
        if self._draft is None or self._refreshing:
            return
        combo = self.layer_table.cellWidget(row, COL_KIND)
        kind = combo.currentData()
        layers = self._layers()
        value = KIND_DEFAULTS[kind]
        if kind == "linear" and row == len(layers) - 1 and self._dataset is not None:
            value = self._dataset.n_outputs  # the output layer
        layers[row] = {kind: value}
        self._edit(self._with_layers(layers, select=row),
                   f"Layer {row + 1}: {KIND_TITLES[kind]}")

    def _on_layer_value(self, row: int) -> None:
        if self._draft is None or self._refreshing:
            return
        editor = self.layer_table.cellWidget(row, COL_VALUE)
        kind = editor.property("layerKind")
        layers = self._layers()
        old = layers[row].get(kind) if isinstance(layers[row], Mapping) else None
        if kind in ("linear", "maxpool"):
            value: Any = int(editor.value())
        elif kind == "act":
            value = editor.currentData()
        elif kind == "dropout":
            value = round(float(editor.value()), 12)  # 0.1 + 0.05 is 0.15, not 0.15000000000000002
        elif kind == "conv2d":
            channels, kernel = (box.value() for box in editor.findChildren(QSpinBox))
            if isinstance(old, Mapping):
                # Keep the stride and padding the lab file gave; the editor shows out and kernel.
                value = {**old, "out": channels, "kernel": kernel}
            elif kernel == 3:
                value = channels  # the short form: 3×3, padding 1
            else:
                value = {"out": channels, "kernel": kernel}
        else:
            return
        layers[row] = {kind: value}
        shown = value if not isinstance(value, Mapping) else f"{channels}, {kernel}×{kernel}"
        self._edit(self._with_layers(layers, select=row),
                   f"Layer {row + 1}: {KIND_TITLES[kind]} {shown}")

    def add_layer(self) -> None:
        """Insert a layer after the selected one (before the output layer when none is)."""
        if self._draft is None:
            return
        layers = self._layers()
        selected = self._selected_row()
        at = selected + 1 if selected >= 0 else max(len(layers) - 1, 0)
        entry: dict[str, Any] = {"linear": NEW_LINEAR_WIDTH}
        shape = self._shape_before(at)
        if shape is not None and len(shape) == 3:
            entry = {"conv2d": NEW_CONV_CHANNELS}
        layers.insert(at, entry)
        kind = next(iter(entry))
        self._edit(self._with_layers(layers, select=at), f"Add {KIND_TITLES[kind].lower()} layer")

    def _shape_before(self, index: int) -> tuple[int, ...] | None:
        """One sample's shape entering layer ``index`` of the (valid) current network."""
        if self._model_spec is None:
            return self._dataset.input_shape if self._dataset is not None and index == 0 else None
        if index == 0:
            return self._model_spec.input_shape
        return self._model_spec.layers[min(index, len(self._model_spec.layers)) - 1].out_shape

    def remove_layer(self) -> None:
        row = self._selected_row()
        layers = self._layers()
        if self._draft is None or row < 0 or len(layers) <= 1:
            return
        removed = layers.pop(row)
        kind = next(iter(removed)) if isinstance(removed, Mapping) and removed else "layer"
        self._edit(self._with_layers(layers, select=min(row, len(layers) - 1)),
                   f"Remove {KIND_TITLES.get(kind, kind).lower()} layer")

    def move_layer(self, offset: int) -> None:
        row = self._selected_row()
        layers = self._layers()
        target = row + offset
        if self._draft is None or row < 0 or not 0 <= target < len(layers):
            return
        layers[row], layers[target] = layers[target], layers[row]
        self._edit(self._with_layers(layers, select=target),
                   f"Move layer {row + 1} {'up' if offset < 0 else 'down'}")

    def use_default_model(self) -> None:
        """Replace the network by `default_model_for` the current data."""
        if self._draft is None or self._dataset is None:
            return
        model = default_model_for(self._dataset.input_shape, self._dataset.n_outputs)
        del model["init"]  # "default": the file keeps only what differs
        self._edit(replace(self._draft, model=model), "Default network")

    def _on_init(self, index: int) -> None:
        name = self.init_combo.itemData(index)
        if self._draft is None or name is None:
            return
        model = dict(self._draft.model)
        if name == "normal":
            model["init"] = {"normal": float(self.sigma_box.value())}
        elif name == "default":
            model.pop("init", None)
        else:
            model["init"] = name
        self._edit(replace(self._draft, model=model), f"Init: {name}")

    def _on_sigma(self, value: float) -> None:
        if self._draft is None or self.init_combo.currentData() != "normal":
            return
        model = {**self._draft.model, "init": {"normal": float(value)}}
        self._edit(replace(self._draft, model=model), f"Init: normal σ={format_float(value)}")
