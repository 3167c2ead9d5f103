"""The network screen's first tab, "Overview": data → network → output on one screen, as
TensorFlow Playground shows a network, with the selected run's live numbers above them.

* **Data**: the training points (filled) and validation points (hollow) over the plane.
* **Network**: the diagram (app/network/diagram.py) with every neuron painted with its value over
  the same plane (`NeuronDiagram`): blue where positive, orange where negative, as the edges'
  weights; the numbers come from core (core/engine/neurons.py, carried by each evaluation), this
  module only colours them.
* **Output**: the selected run's prediction over the plane, drawn as its decision-boundaries
  panel (app/network/boundaries_tab.py).
* Above them, large: the epoch, the training and validation losses of the selected run at its
  newest evaluation, and its score.

Data without a plane (images, tables, a 1-D regression) shows the diagram and the numbers; the
two pictures say where to look instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QFont, QImage, QPixmap, QTransform
from PySide6.QtWidgets import QComboBox, QGridLayout, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from app.network.boundaries_tab import add_plane_points, draw_snapshot
from app.network.diagram import NEGATIVE_COLOR, NEURON_FILL, POSITIVE_COLOR, NetworkDiagram
from app.network.race_state import ShownRace
from core.problems.model_spec import ModelSpec

BIG_POINTS = 20  # the live numbers' font size
MUTED = "#8a8d93"


def neuron_rgba(values: np.ndarray) -> np.ndarray:
    """(G, G, 4) uint8 for one neuron's (G, G) values (rows = y upwards): blue where positive,
    orange where negative, the neutral fill at 0, scaled by the neuron's largest |value|; rows
    flipped so the image's top row is the plane's top. Non-finite values are the neutral fill."""
    v = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    largest = float(np.abs(v).max()) if v.size else 0.0
    t = v / largest if largest > 0 else np.zeros_like(v)
    neutral, pos, neg = (np.array(QColor(c).getRgb()[:3], dtype=np.float64)
                         for c in (NEURON_FILL, POSITIVE_COLOR, NEGATIVE_COLOR))
    target = np.where(t[..., None] >= 0, pos, neg)
    rgb = neutral + np.abs(t)[..., None] * (target - neutral)
    rgba = np.empty((*v.shape, 4), dtype=np.uint8)
    rgba[..., :3] = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    rgba[..., 3] = 255
    return np.ascontiguousarray(rgba[::-1])


class NeuronDiagram(NetworkDiagram):
    """The network diagram with each neuron's picture over the plane inside its circle."""

    max_radius = 17.0
    max_neuron_gap = 46.0

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("neuronDiagram")
        self.setToolTip("Each circle is a neuron, painted with its output over the data's plane "
                        "(blue positive, orange negative); lines are weights")
        self._maps: Sequence[np.ndarray] | None = None
        self.images: dict[tuple[int, int], QImage] = {}  # (column, unit) → what its circle shows

    def set_neuron_maps(self, columns: Sequence[np.ndarray] | None) -> None:
        """One (units, G, G) array per column of neurons (core/engine/neurons.py), or None."""
        self._maps = columns
        self._paint_maps()

    def _layout(self) -> None:
        super()._layout()
        self._paint_maps()

    def _paint_maps(self) -> None:
        self.images = {}
        maps = self._maps
        usable = maps is not None and len(maps) == len(self._columns)  # an MLP's columns
        plain = QBrush(QColor(NEURON_FILL))
        for c, (column, items) in enumerate(zip(self._columns, self.neuron_items)):
            for unit, item in zip(column.drawn, items):
                if not usable or unit >= len(maps[c]):
                    item.setBrush(plain)
                    continue
                rgba = neuron_rgba(maps[c][unit])
                side = rgba.shape[0]
                image = QImage(rgba.data, side, side, 4 * side, QImage.Format.Format_RGBA8888).copy()
                self.images[(c, int(unit))] = image
                brush = QBrush(QPixmap.fromImage(image))
                rect = item.rect()
                # The texture's origin is the item's (0, 0): move and scale it onto the circle.
                brush.setTransform(QTransform.fromTranslate(rect.left(), rect.top())
                                   .scale(rect.width() / side, rect.height() / side))
                item.setBrush(brush)


class _Picture(pg.PlotWidget):
    """A square, axis-less view of the data's plane."""

    def __init__(self, name: str, tip: str):
        super().__init__()
        self.setObjectName(name)
        self.setToolTip(tip)
        self.setMenuEnabled(False)
        self.hideButtons()
        for axis in ("left", "bottom"):
            self.hideAxis(axis)
        self.setAspectLocked(True)
        self.setMouseEnabled(False, False)
        self.setMinimumSize(150, 150)


class _Square(QWidget):
    """Holds a picture as the largest square that fits, centred (the plane is drawn to scale;
    a tall narrow cell would leave the picture a strip)."""

    def __init__(self, picture: QWidget):
        super().__init__()
        self.picture = picture
        picture.setParent(self)
        self.setMinimumSize(150, 150)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        side = min(self.width(), self.height())
        self.picture.setGeometry((self.width() - side) // 2, (self.height() - side) // 2,
                                 side, side)


class OverviewTab(QWidget):
    """Data → network → output, and the selected run's epoch and losses in large type."""

    def __init__(self, race: ShownRace, snapshots, parent=None):
        super().__init__(parent)
        self.setObjectName("overviewTab")
        self.race = race
        self._snapshots = snapshots  # callable: run → its last own evaluation (boundaries tab)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 4)
        layout.setSpacing(6)

        top = QHBoxLayout()
        top.setSpacing(18)
        self.run_combo = QComboBox(objectName="overviewRunCombo")
        self.run_combo.setToolTip("The run whose numbers, neurons and output this screen shows")
        self.run_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        top.addWidget(self.run_combo)
        self.numbers: dict[str, QLabel] = {}
        for key, title in (("epoch", "Epoch"), ("train", "Training loss"),
                           ("val", "Validation loss"), ("score", "Accuracy")):
            box = QVBoxLayout()
            box.setSpacing(0)
            caption = QLabel(title, objectName=f"overviewCaption_{key}")
            caption.setStyleSheet(f"color: {MUTED};")
            value = QLabel("–", objectName=f"overviewNumber_{key}")
            font = QFont(value.font())
            font.setPointSize(BIG_POINTS)
            font.setBold(True)
            value.setFont(font)
            box.addWidget(caption)
            box.addWidget(value)
            top.addLayout(box)
            self.numbers[key] = value
            self.numbers[f"{key}_caption"] = caption
        top.addStretch(1)
        layout.addLayout(top)

        grid = self.grid = QGridLayout()
        grid.setHorizontalSpacing(6)
        self.data_plot = _Picture("overviewData", "The data: training points filled, validation "
                                                  "points hollow")
        self.diagram = NeuronDiagram()
        self.output_plot = _Picture("overviewOutput", "The selected run's output over the plane")
        self.output_image = pg.ImageItem(axisOrder="row-major")
        self.output_image.setZValue(-10)
        self.output_plot.addItem(self.output_image)
        self.titles = []
        self.cells = (_Square(self.data_plot), self.diagram, _Square(self.output_plot))
        for column, (widget, title) in enumerate(zip(self.cells, ("Data →", "Network →",
                                                                   "Output"))):
            label = QLabel(title, alignment=Qt.AlignmentFlag.AlignCenter)
            label.setStyleSheet("font-weight: bold;")
            grid.addWidget(label, 0, column)
            grid.addWidget(widget, 1, column)
            self.titles.append(label)
        self.notes = [QLabel(wordWrap=True, alignment=Qt.AlignmentFlag.AlignCenter)
                      for _ in range(3)]
        for column, note in enumerate(self.notes):
            note.setStyleSheet(f"color: {MUTED};")
            grid.addWidget(note, 2, column)
        grid.setColumnStretch(0, 3)
        grid.setColumnStretch(1, 4)
        grid.setColumnStretch(2, 3)
        grid.setRowStretch(1, 1)
        layout.addLayout(grid, 1)

    # -- what it shows ----------------------------------------------------------------------------

    def set_runs(self, model_spec: ModelSpec | None) -> None:
        """The race's runs, data and network (after `ShownRace` changed); blank numbers."""
        race, data = self.race, self.race.dataset
        for plot in (self.data_plot, self.output_plot):
            for item in list(plot.getPlotItem().items):
                if item is not self.output_image:
                    plot.removeItem(item)
        self.output_image.clear()
        plane = data is not None and data.plane is not None
        names = data.feature_names if data is not None and data.is_2d else None
        self.diagram.set_architecture(model_spec, input_names=names,
                                      message="" if model_spec else "No network to show")
        self.diagram.set_neuron_maps(None)
        if plane:
            for plot in (self.data_plot, self.output_plot):
                add_plane_points(plot, data)
                (x0, x1), (y0, y1) = data.plane
                plot.setRange(xRange=(x0, x1), yRange=(y0, y1), padding=0)
        for cell in (self.cells[0], self.cells[2]):
            cell.setVisible(plane)
        self.titles[0].setVisible(plane)
        self.titles[2].setVisible(plane)
        self.titles[1].setText("Network →" if plane else "Network")
        # Without the two pictures the diagram takes the width (their notes keep a little).
        for column, stretch in ((0, 3), (1, 4), (2, 3)):
            self.grid.setColumnStretch(column, stretch if plane or column == 1 else 1)
        self.notes[0].setText(self._data_note() if plane else
                              "The data are not points of a plane: see the Data tab on the left.")
        self.notes[1].setText("Each neuron shows its output over the plane: blue positive, orange "
                              "negative. Lines are weights." if plane else
                              "Lines are weights: blue positive, orange negative.")
        self.notes[2].setText(self._output_note() if plane else
                              "The predictions are in the Decision boundaries / Fitted curves "
                              "and Comparison tabs.")
        self.numbers["score_caption"].setText("R²" if race.regression else "Accuracy")
        for key in ("epoch", "train", "val", "score"):
            self.numbers[key].setText("–")

    def _data_note(self) -> str:
        data = self.race.dataset
        return f"{data.name}: {len(data.y_train)} training, {len(data.y_val)} validation points"

    def _output_note(self) -> str:
        data = self.race.dataset
        if data.task == "regression":
            return "Colour: the predicted value"
        if data.n_classes == 2:
            return "Colour: P(class 1), blue for class 0 to orange for class 1"
        return "Colour: the predicted class, fainter where the model is less sure"

    def draw(self) -> None:
        """The selected run's numbers, neurons, weights and output, from the history."""
        race, history = self.race, self.race.history
        i = race.selected_run
        if history is None or not (0 <= i < len(race.labels)):
            return
        color = race.colors[i]
        for key in ("epoch", "train", "val", "score"):
            self.numbers[key].setStyleSheet(f"color: {color};")
        steps = history.steps[i]
        if len(steps):
            total = race.total_steps
            step = int(steps.last("step"))
            self.numbers["epoch"].setText(f"{steps.last('epoch'):.1f}")
            self.numbers["epoch"].setToolTip(f"step {step}" + (f" of {total}" if total else ""))
        evals = history.evals[i] if history.evals is not None else None
        if evals is not None and len(evals):
            metric = race.metric
            for key, column in (("train", "train_loss"), ("val", "val_loss"),
                                ("score", f"val_{metric}")):
                if column not in history.eval_fields and key == "score":
                    column = f"train_{metric}"
                value = evals.last(column) if column in history.eval_fields else math.nan
                self.numbers[key].setText(_number(value, percent=key == "score"
                                                  and metric == "accuracy"))
        snap = self._snapshots(i)
        if snap is None:
            return
        if snap.weights is not None:
            self.diagram.set_weights(list(snap.weights[i]))
        self.diagram.set_neuron_maps(snap.neurons[i] if snap.neurons is not None else None)
        if self.output_plot.isVisibleTo(self) and race.dataset is not None:
            draw_snapshot(self.output_image, snap, i, race.dataset)

    def numbers_shown(self) -> dict[str, str]:
        """The big numbers as shown (tests)."""
        return {key: self.numbers[key].text() for key in ("epoch", "train", "val", "score")}


def _number(value: float, percent: bool = False) -> str:
    if not math.isfinite(value):
        return "–"
    if percent:
        return f"{value:.1%}"
    return f"{value:.4f}" if abs(value) >= 1e-3 else f"{value:.2e}"
