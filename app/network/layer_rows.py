"""The rows of the layer editor (app/network/layer_editor.py): one row per layer of the network.

`LayerRows` owns the table (``layerList``): each row has a combo of its kind, an editor of its
value by kind (a width, an activation, p, channels and kernel, a pool size, or a dash), the layer
as PyTorch builds it and its output shape, or the red reason when the network does not fit the
data. It edits no network: a change of a row's kind or value is signalled (``kind_chosen``,
``value_edited``) and the layer editor proposes the edit. Selecting a row's editor selects the
row, so the editor's Add / Move / Remove buttons act on it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QAbstractSpinBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSpinBox,
    QTableWidgetItem,
    QWidget,
)

from app.network.editor_parts import as_float, as_int, plural, shape_text
from app.widgets.hyperparam_form import error_color, show_refused
from app.widgets.number_boxes import ScientificSpinBox, WholeNumberBox
from app.widgets.tables import row_table, size_columns
from core.errors import LabError
from core.problems.model_spec import (
    ACTIVATIONS,
    LAYER_KINDS,
    MAX_KERNEL,
    MAX_WIDTH,
    RECURRENT_GATES,
    ModelSpec,
)

KIND_TITLES = {
    "linear": "Linear", "act": "Activation", "dropout": "Dropout", "batchnorm": "BatchNorm",
    "conv2d": "Conv2d", "maxpool": "MaxPool", "flatten": "Flatten",
    "rnn": "RNN", "lstm": "LSTM", "gru": "GRU", "last": "Last step",
}
KIND_TIPS = {
    "linear": "A fully connected layer: every output is a weighted sum of every input plus a bias",
    "act": "An activation function applied to each value (the network's non-linearity)",
    "dropout": "Zeroes each value with probability p while training (a regulariser)",
    "batchnorm": "Normalises each channel over the mini-batch, then scales and shifts it",
    "conv2d": "A 2-D convolution over images: small kernels slid over every position",
    "maxpool": "Keeps the largest value of each size×size patch of an image",
    "flatten": "Turns images into one flat vector, for the linear layers after it",
    "rnn": "A recurrent layer over a sequence: h_t = tanh(W x_t + U h_(t-1) + b), every step",
    "lstm": "A long short-term memory layer over a sequence: gated, so gradients carry further",
    "gru": "A gated recurrent unit layer over a sequence (two gates, no separate cell)",
    "last": "Reads out a sequence's last step, for the linear layers after it",
}
NEW_LINEAR_WIDTH = 16
NEW_CONV_CHANNELS = 8
MAX_DROPOUT = 0.95
MAX_TABLE_ROWS_SHOWN = 8

COL_KIND, COL_VALUE, COL_DESCRIBE, COL_SHAPE = range(4)
_TABLE_HEADERS = (
    ("Kind", "What the layer does"),
    ("Value", "The layer's setting: width, activation, p, channels and kernel, or pool size"),
    ("Layer", "The layer as PyTorch builds it for this data"),
    ("Out", "The shape of one sample after this layer"),
)
LAYER_FIELD = re.compile(r"^problem\.model\.layers\[(\d+)\]")


def _conv_values(value: Any) -> tuple[int, int]:
    """(out channels, kernel) of a conv2d entry, short form ``8`` or ``{"out": 8, "kernel": 5}``."""
    if isinstance(value, Mapping):
        return as_int(value.get("out"), NEW_CONV_CHANNELS), as_int(value.get("kernel", 3), 3)
    return as_int(value, NEW_CONV_CHANNELS), 3


def layer_row_of(error: LabError | None) -> int:
    """The row a model error is about (``problem.model.layers[2]…`` → 2), else -1."""
    match = LAYER_FIELD.match(error.field) if error is not None else None
    return int(match.group(1)) if match else -1


class LayerRows(QObject):
    """The layer table and its row editors. See the module docstring.

    ``kind_chosen(row, kind)``: the user picked another kind for a row. ``value_edited(row,
    kind, value, shown)``: the user set a row's value (``shown``: how the undo text writes it).
    """

    kind_chosen = Signal(int, str)
    value_edited = Signal(int, str, object, str)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._layers: list = []
        self._row_to_select: int | None = None
        # Tab moves through the row's editors, then leaves the table.
        table = row_table(_TABLE_HEADERS, "layerList", "Layers")
        table.setToolTip(
            "The layers, input at the top; select one to add after it, move or remove it"
        )
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._row_height = QComboBox().sizeHint().height() + 2
        table.verticalHeader().setDefaultSectionSize(self._row_height)
        table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        size_columns(table, (
            (COL_KIND, QHeaderView.ResizeMode.Fixed, 98),
            (COL_VALUE, QHeaderView.ResizeMode.Fixed, 96),
            (COL_DESCRIBE, QHeaderView.ResizeMode.Stretch, 0),
            (COL_SHAPE, QHeaderView.ResizeMode.ResizeToContents, 0),
        ))
        self.table = table

    # ---------------------------------------------------------------- showing

    def select_after_show(self, row: int) -> None:
        """Select ``row`` when the layers are next shown (the row an edit was about)."""
        self._row_to_select = row

    def show_layers(self, layers: Sequence) -> None:
        """One row per layer entry, each editor showing its value; never signals."""
        self._layers = list(layers)
        table = self.table
        if table.rowCount() != len(layers):
            # Only buttons change the number of layers, so no row editor is mid-signal here.
            selected = self.selected_row()
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
            self._show_row(row, entry)
        visible = min(max(len(layers), 3), MAX_TABLE_ROWS_SHOWN)
        table.setFixedHeight(
            table.horizontalHeader().sizeHint().height() + visible * self._row_height
            + 2 * table.frameWidth()
        )

    def describe(self, spec: ModelSpec | None, error: LabError | None) -> None:
        """Each layer as built for the data (``spec``), or the reason on the row it is about."""
        bad_row = layer_row_of(error)
        red = error_color(self.table.palette())
        for row in range(self.table.rowCount()):
            describe, shape = self.table.item(row, COL_DESCRIBE), self.table.item(row, COL_SHAPE)
            if spec is not None:
                layer = spec.layers[row]
                describe.setText(layer.describe)
                describe.setToolTip(
                    f"{layer.describe}\n{shape_text(layer.in_shape)} → "
                    f"{shape_text(layer.out_shape)}, {plural(layer.n_params, 'parameter')}"
                )
                shape.setText(shape_text(layer.out_shape))
                shape.setToolTip(f"One sample after this layer: {shape_text(layer.out_shape)}")
                describe.setData(Qt.ItemDataRole.ForegroundRole, None)
            else:
                is_bad = row == bad_row
                describe.setText("⚠ " + error.message if is_bad and error else "")
                describe.setToolTip(str(error) if is_bad and error else "")
                describe.setData(Qt.ItemDataRole.ForegroundRole,
                                 pg.mkColor(red) if is_bad else None)
                shape.setText("")
                shape.setToolTip("")

    def selected_row(self) -> int:
        rows = self.table.selectionModel().selectedRows()
        return rows[0].row() if rows else -1

    def mark_refused(self, error_field: str) -> None:
        """Mark the box of the row ``error_field`` names that holds a value its arrows could not
        reach (a typed 0)."""
        match = LAYER_FIELD.match(error_field)
        if match:
            for box in self._value_boxes(int(match.group(1))):
                low, high = box.allowed()
                if not low <= box.value() <= high:
                    show_refused(box, True)

    def clear_refused(self) -> None:
        for row in range(self.table.rowCount()):
            for box in self._value_boxes(row):
                show_refused(box, False)

    def _value_boxes(self, row: int) -> list[QAbstractSpinBox]:
        """The spin boxes of a layer row's value (conv2d has two; an activation none)."""
        editor = self.table.cellWidget(row, COL_VALUE)
        if editor is None:
            return []
        return [w for w in (editor, *editor.findChildren(QAbstractSpinBox)) if hasattr(w, "allowed")]

    def _show_row(self, row: int, entry: Any) -> None:
        kind, value = (next(iter(entry.items())) if isinstance(entry, Mapping) and len(entry) == 1
                       else ("linear", None))
        if isinstance(entry, Mapping) and "rnn" in entry:  # {"rnn": 32, "nonlinearity": "relu"}
            kind, value = "rnn", entry["rnn"]
        if isinstance(entry, Mapping) and "linear" in entry:  # {"linear": 16, "bias": false}
            kind, value = "linear", entry["linear"]
        combo = self.table.cellWidget(row, COL_KIND)
        if combo is None:
            combo = QComboBox(objectName=f"layerKind_{row}")
            for name in LAYER_KINDS:
                combo.addItem(KIND_TITLES[name], name)
                combo.setItemData(combo.count() - 1, KIND_TIPS[name], Qt.ItemDataRole.ToolTipRole)
            combo.setToolTip("What this layer does")
            combo.setAccessibleName(f"Layer {row + 1} kind")
            combo.currentIndexChanged.connect(lambda _index, row=row: self._on_kind(row))
            self._track_focus(combo, row)
            self.table.setCellWidget(row, COL_KIND, combo)
        combo.blockSignals(True)
        combo.setCurrentIndex(max(0, combo.findData(kind)))
        combo.blockSignals(False)

        editor = self.table.cellWidget(row, COL_VALUE)
        if editor is None or editor.property("layerKind") != kind:
            # The sender of a kind change is the combo, never the editor replaced here.
            if editor is not None:
                self._retire(editor)
            editor = self._value_editor(row, kind)
            self.table.setCellWidget(row, COL_VALUE, editor)
        _set_editor_value(editor, kind, value)

    def _retire_row_widgets(self, rows) -> None:
        for row in rows:
            for column in (COL_KIND, COL_VALUE):
                widget = self.table.cellWidget(row, column)
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
        on_change = lambda *_args, row=row: self._on_value(row)  # noqa: E731
        name = f"layerValue_{row}"
        if kind in ("linear", "maxpool", *RECURRENT_GATES):
            # A typed 0 is not reverted silently: the row says in red what is allowed.
            editor = WholeNumberBox(objectName=name)
            if kind in RECURRENT_GATES:
                editor.set_allowed(1, MAX_WIDTH)
                editor.setToolTip("Hidden units: the size of the state carried from step to step")
            elif kind == "linear":
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

    def _on_kind(self, row: int) -> None:
        self.kind_chosen.emit(row, self.table.cellWidget(row, COL_KIND).currentData())

    def _on_value(self, row: int) -> None:
        """Read a row's editor into a layer value and signal it."""
        editor = self.table.cellWidget(row, COL_VALUE)
        kind = editor.property("layerKind")
        entry = self._layers[row] if row < len(self._layers) else None
        old = entry.get(kind) if isinstance(entry, Mapping) else None
        if kind in ("linear", "maxpool", *RECURRENT_GATES):
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
        shown = value if not isinstance(value, Mapping) else f"{channels}, {kernel}×{kernel}"
        self.value_edited.emit(row, kind, value, str(shown))

    def _track_focus(self, widget: QWidget, row: int) -> None:
        """Selecting a row's editor selects the row, so Add/Move/Remove act on it."""
        widget.setProperty("layerRow", row)
        widget.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt override)
        if event.type() == QEvent.Type.FocusIn:
            row = watched.property("layerRow")
            if isinstance(row, int) and 0 <= row < self.table.rowCount():
                if self.selected_row() != row:
                    self.table.selectRow(row)
        return super().eventFilter(watched, event)


def _set_editor_value(editor: QWidget, kind: str, value: Any) -> None:
    widgets = [editor, *editor.findChildren(QSpinBox)]
    for widget in widgets:
        widget.blockSignals(True)
    try:
        if kind == "linear" or kind in RECURRENT_GATES:
            editor.setValue(as_int(value, NEW_LINEAR_WIDTH))
        elif kind == "maxpool":
            editor.setValue(as_int(value, 2))
        elif kind == "act":
            editor.setCurrentIndex(max(0, editor.findData(value)))
        elif kind == "dropout":
            editor.setValue(as_float(value, 0.1))
        elif kind == "conv2d":
            channels, kernel = editor.findChildren(QSpinBox)
            out, size = _conv_values(value)
            channels.setValue(out)
            kernel.setValue(size)
    finally:
        for widget in widgets:
            widget.blockSignals(False)
