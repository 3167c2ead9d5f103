"""The Network section of the network problem panel: the network that learns the data.

`LayerEditor` shows the ordered layers (`LayerRows`, app/network/layer_rows.py) with Add, Remove,
Move and Default buttons, the initialisation, the parameter count, what the panel changed by
itself to fit new data (a note), and `NetworkDiagram` drawn from the very weights a race starts
from (`core.engine.race_setup.initial_model`). It proposes each change as an edited copy of the
draft (`ProblemSection`); the panel (app/network/problem_panel.py) validates and commits it.
``diagram`` is public so the main window can recolour it from the weights of a running race.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import torch
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from app.network.diagram import NetworkDiagram
from app.network.editor_parts import ProblemSection, as_float, plural
from app.network.layer_rows import KIND_TITLES, NEW_CONV_CHANNELS, NEW_LINEAR_WIDTH, LayerRows
from app.widgets.hyperparam_form import show_refused
from app.widgets.number_boxes import ScientificSpinBox, format_float
from core.engine.network_records import DIAGRAM_MAX_PARAMS
from core.engine.race_setup import initial_model
from core.errors import LabError
from core.lab.format import Lab
from core.problems.datasets.dataset import Dataset
from core.problems.model_spec import (
    INIT_NAMES,
    MAX_NORMAL_SIGMA,
    ModelSpec,
    default_model_for,
    validate_model,
)
from core.problems.models import linear_layers

# What a row becomes when its kind is changed (a new linear layer at the end: the output width).
KIND_DEFAULTS: dict[str, Any] = {
    "linear": NEW_LINEAR_WIDTH, "act": "relu", "dropout": 0.1, "batchnorm": True,
    "conv2d": NEW_CONV_CHANNELS, "maxpool": 2, "flatten": True,
    "rnn": NEW_LINEAR_WIDTH, "lstm": NEW_LINEAR_WIDTH, "gru": NEW_LINEAR_WIDTH, "last": True,
}
INIT_TIPS = {
    "default": "PyTorch's own init: uniform in ±1/√fan_in",
    "xavier": "Xavier/Glorot uniform: keeps the variance of values and gradients across layers",
    "kaiming": "Kaiming/He uniform, scaled for the activation that follows each layer",
    "zeros": "All weights 0: every unit of a layer stays identical (symmetry never breaks)",
    "normal": "Weights drawn from a normal distribution with mean 0 and the standard deviation σ",
}
DEFAULT_SIGMA = 0.1
DIAGRAM_HEIGHT = 160


class LayerEditor(ProblemSection):
    """The Network section. See the module docstring."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Network", "networkGroup", "modelError", parent)
        self._lab: Lab | None = None
        self._dataset: Dataset | None = None
        self._model_spec: ModelSpec | None = None
        self._diagram_key: tuple | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(4)

        self.rows = LayerRows(self)
        self.rows.kind_chosen.connect(self._on_layer_kind)
        self.rows.value_edited.connect(self._on_layer_value)
        self.layer_table = self.rows.table
        self.layer_table.itemSelectionChanged.connect(self._update_buttons)
        layout.addWidget(self.layer_table)
        layout.addLayout(self._build_buttons())
        layout.addLayout(self._build_init_row())
        layout.addWidget(self.error_label)
        self.note_label = QLabel(objectName="networkStatus")
        self.note_label.setWordWrap(True)
        self.note_label.setStyleSheet("color: #e0b45a;")
        self.note_label.setToolTip("What the panel changed by itself to fit the data")
        self.note_label.hide()
        layout.addWidget(self.note_label)

        self.diagram = NetworkDiagram()
        self.diagram.setMinimumHeight(DIAGRAM_HEIGHT)
        self.diagram.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        layout.addWidget(self.diagram, 1)

    def _build_buttons(self) -> QHBoxLayout:
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
        return buttons

    def _build_init_row(self) -> QHBoxLayout:
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
        return init_row

    # ---------------------------------------------------------------- showing

    def set_problem(self, lab: Lab, dataset: Dataset | None) -> None:
        """Show ``lab.problem``'s network checked against ``dataset`` (None: it cannot be built);
        ``lab`` is the lab with the draft problem, whose seed gives the diagram's weights. Never
        emits."""
        self._lab, self._problem, self._dataset = lab, lab.problem, dataset
        self._showing = True
        try:
            self.rows.show_layers(self._layers())
            self._show_init()
        finally:
            self._showing = False
        self._check_model()
        self._update_buttons()

    def model_spec(self) -> ModelSpec | None:
        """The draft network as built for the data, or None when it does not fit."""
        return self._model_spec

    def show_note(self, text: str) -> None:
        """Say what the panel changed by itself to fit new data ("" hides the note)."""
        self.note_label.setText(text)
        self.note_label.setVisible(bool(text))

    def _layers(self) -> list:
        return list(self._problem.model.get("layers", []))

    def _update_buttons(self) -> None:
        row = self.rows.selected_row()
        count = self.layer_table.rowCount()
        self.remove_layer_button.setEnabled(row >= 0 and count > 1)
        self.move_up_button.setEnabled(row > 0)
        self.move_down_button.setEnabled(0 <= row < count - 1)
        self.default_model_button.setEnabled(self._dataset is not None)

    def _show_init(self) -> None:
        init = self._problem.model.get("init", "default")
        is_normal = isinstance(init, Mapping)
        for widget in (self.init_combo, self.sigma_box):
            widget.blockSignals(True)
        self.init_combo.setCurrentIndex(
            max(0, self.init_combo.findData("normal" if is_normal else init))
        )
        if is_normal:
            self.sigma_box.setValue(as_float(init.get("normal"), DEFAULT_SIGMA))
        elif self.sigma_box.value() <= self.sigma_box.allowed()[0]:
            self.sigma_box.setValue(DEFAULT_SIGMA)
        for widget in (self.init_combo, self.sigma_box):
            widget.blockSignals(False)
        self.sigma_box.setVisible(is_normal)
        self.sigma_label.setVisible(is_normal)

    def _check_model(self) -> None:
        """Validate the draft network against the data: describe each layer, count, draw."""
        spec: ModelSpec | None = None
        error: LabError | None = None
        if self._dataset is not None:
            try:
                spec = validate_model(self._problem.model, self._dataset.input_shape,
                                      self._dataset.n_outputs, field="problem.model")
            except LabError as exc:
                error = exc
        self._model_spec = spec
        self.rows.describe(spec, error)
        self.param_count.setText(plural(spec.n_params, "parameter") if spec is not None
                                 else "— parameters")
        self._show_diagram(spec)

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
            # The very weights a race starts from: core builds them for both.
            with torch.no_grad():
                model = initial_model(self._lab, self._dataset)
                weights = [m.weight.detach().numpy().copy() for _, m in linear_layers(model)]
            self.diagram.set_weights(weights)

    def mark_refused(self, field: str) -> None:
        if field == "problem.model.init.normal":
            show_refused(self.sigma_box, True)
        self.rows.mark_refused(field)

    def clear_refused(self) -> None:
        show_refused(self.sigma_box, False)
        self.rows.clear_refused()

    # ---------------------------------------------------------------- edits

    def _propose_layers(self, layers: list, select: int, description: str) -> None:
        if self._problem is None or self._showing:
            return
        self.rows.select_after_show(select)
        self.propose(replace(self._problem, model={**self._problem.model, "layers": layers}),
                     description)

    def _on_layer_kind(self, row: int, kind: str) -> None:
        layers = self._layers() if self._problem is not None else []
        if not 0 <= row < len(layers):
            return
        value = KIND_DEFAULTS[kind]
        if kind == "linear" and row == len(layers) - 1 and self._dataset is not None:
            value = self._dataset.n_outputs  # the output layer
        layers[row] = {kind: value}
        self._propose_layers(layers, row, f"Layer {row + 1}: {KIND_TITLES[kind]}")

    def _on_layer_value(self, row: int, kind: str, value: Any, shown: str) -> None:
        layers = self._layers() if self._problem is not None else []
        if not 0 <= row < len(layers):
            return
        old = layers[row]
        layers[row] = {kind: value}
        if kind == "rnn" and isinstance(old, dict) and "nonlinearity" in old:
            layers[row]["nonlinearity"] = old["nonlinearity"]  # the editor shows the width only
        if kind == "linear" and isinstance(old, dict) and "bias" in old:
            layers[row]["bias"] = old["bias"]  # likewise: a width edit keeps "no bias"
        self._propose_layers(layers, row, f"Layer {row + 1}: {KIND_TITLES[kind]} {shown}")

    def add_layer(self) -> None:
        """Insert a layer after the selected one (before the output layer when none is)."""
        if self._problem is None:
            return
        layers = self._layers()
        selected = self.rows.selected_row()
        at = selected + 1 if selected >= 0 else max(len(layers) - 1, 0)
        entry: dict[str, Any] = {"linear": NEW_LINEAR_WIDTH}
        shape = self._shape_before(at)
        if shape is not None and len(shape) == 3:
            entry = {"conv2d": NEW_CONV_CHANNELS}
        elif shape is not None and len(shape) == 2:  # a sequence: another recurrent layer
            entry = {"lstm": NEW_LINEAR_WIDTH}
        layers.insert(at, entry)
        kind = next(iter(entry))
        self._propose_layers(layers, at, f"Add {KIND_TITLES[kind].lower()} layer")

    def _shape_before(self, index: int) -> tuple[int, ...] | None:
        """One sample's shape entering layer ``index`` of the (valid) current network."""
        if self._model_spec is None:
            return self._dataset.input_shape if self._dataset is not None and index == 0 else None
        if index == 0:
            return self._model_spec.input_shape
        return self._model_spec.layers[min(index, len(self._model_spec.layers)) - 1].out_shape

    def remove_layer(self) -> None:
        row = self.rows.selected_row()
        if self._problem is None or row < 0 or len(self._layers()) <= 1:
            return
        layers = self._layers()
        removed = layers.pop(row)
        kind = next(iter(removed)) if isinstance(removed, Mapping) and removed else "layer"
        self._propose_layers(layers, min(row, len(layers) - 1),
                             f"Remove {KIND_TITLES.get(kind, kind).lower()} layer")

    def move_layer(self, offset: int) -> None:
        row = self.rows.selected_row()
        target = row + offset
        if self._problem is None or row < 0 or not 0 <= target < len(self._layers()):
            return
        layers = self._layers()
        layers[row], layers[target] = layers[target], layers[row]
        self._propose_layers(layers, target,
                             f"Move layer {row + 1} {'up' if offset < 0 else 'down'}")

    def use_default_model(self) -> None:
        """Replace the network by `default_model_for` the current data."""
        if self._problem is None or self._dataset is None:
            return
        model = default_model_for(self._dataset.input_shape, self._dataset.n_outputs)
        del model["init"]  # "default": the file keeps only what differs
        self.propose(replace(self._problem, model=model), "Default network")

    def _on_init(self, index: int) -> None:
        name = self.init_combo.itemData(index)
        if self._problem is None or name is None:
            return
        model = dict(self._problem.model)
        if name == "normal":
            model["init"] = {"normal": float(self.sigma_box.value())}
        elif name == "default":
            model.pop("init", None)
        else:
            model["init"] = name
        self.propose(replace(self._problem, model=model), f"Init: {name}")

    def _on_sigma(self, value: float) -> None:
        if self._problem is None or self.init_combo.currentData() != "normal":
            return
        model = {**self._problem.model, "init": {"normal": float(value)}}
        self.propose(replace(self._problem, model=model), f"Init: normal σ={format_float(value)}")
