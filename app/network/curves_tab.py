"""The network view's Curves tab: loss, accuracy or R², learning rate, per-layer statistics.

`CurvesTab` holds the control row (smoothing, x axis, log loss, the run whose layers are shown)
and four plots: `RunCurvesPlot` for the loss, the score and the learning rate
(app/network/run_curves.py), `LayerStatsPlot` for the selected run's layers
(app/network/layer_stats.py). It draws one part at a time from the shown race's history ("loss",
"accuracy", "lr", "layers": `PARTS`) when `NetworkView` says so; a change of a control redraws
what it changes at once and says so with `redrawn`. Evaluation curves are full-data
measurements and are drawn as measured; only the per-step mini-batch series are smoothed.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QLabel,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from app.network.layer_stats import LayerStatsPlot
from app.network.race_state import ShownRace
from app.network.run_curves import RunCurvesPlot
from app.widgets.curves import settle_view_transform
from app.widgets.flow_layout import flow_row
from core.engine.smoothing import DEFAULT_SMOOTHING

# x-axis choices: combo text → (column in the history series, axis label)
X_AXES = {
    "step": ("step", "step"),
    "epoch": ("epoch", "epoch"),
    "wall time": ("wall", "wall time (s)"),
}
SMOOTHING_MAX = 0.99
SMOOTHING_TICKS = 99  # slider positions 0 … 99 → smoothing 0.00 … 0.99
UNIT_HEADROOM = 0.02  # how far the accuracy view may reach past 0 and 1 (no ticks there)
MIN_STEP_SPAN = 100  # on the step axis, the x range covers at least this many steps
PARTS = ("loss", "accuracy", "lr", "layers")


class CurvesTab(QWidget):
    """The control row over the loss, score, learning-rate and per-layer plots."""

    redrawn = Signal(object)  # the parts a control just redrew (no longer pending)

    def __init__(self, race: ShownRace, parent=None):
        super().__init__(parent)
        self.race = race
        self.smoothing_slider = QSlider(Qt.Orientation.Horizontal, objectName="smoothingSlider")
        self.smoothing_slider.setRange(0, SMOOTHING_TICKS)
        # On by default: an unsmoothed mini-batch loss is a band of noise (core/engine/smoothing.py).
        self.smoothing_slider.setValue(round(DEFAULT_SMOOTHING / SMOOTHING_MAX * SMOOTHING_TICKS))
        self.smoothing_slider.setFixedWidth(140)
        self.smoothing_slider.setToolTip(
            "Smoothing of the mini-batch training loss: TensorBoard's debiased exponential "
            "moving average, last = w·last + (1−w)·x, shown = last / (1 − wⁿ) (0 = off, 0.99 = "
            "strongest). The raw data stays drawn as a faint line behind it."
        )
        self.smoothing_slider.valueChanged.connect(self._on_smoothing)
        self.smoothing_label = QLabel(f"{self.smoothing:.2f}", objectName="smoothingLabel")
        self.smoothing_label.setMinimumWidth(32)
        self.x_axis_combo = QComboBox(objectName="xAxisCombo")
        self.x_axis_combo.addItems(list(X_AXES))
        self.x_axis_combo.setToolTip(
            "What the curves are plotted against: optimizer steps, epochs (passes over the "
            "training data) or seconds since the race started."
        )
        self.x_axis_combo.currentIndexChanged.connect(self._on_x_axis)
        self.log_loss_check = QCheckBox("log loss", objectName="logLossCheck")
        self.log_loss_check.setChecked(True)
        self.log_loss_check.setToolTip(
            "Draw the loss on a logarithmic axis, where steady progress looks like a straight "
            "line."
        )
        self.log_loss_check.toggled.connect(self._on_log_loss)
        # Its selection is the view's (`NetworkView._on_run_selected`), shared with the
        # confusion matrix.
        self.layer_run_combo = QComboBox(objectName="layerRunCombo")
        self.layer_run_combo.setToolTip(
            "The run whose per-layer gradient norms and update ratios are shown."
        )
        # A row that wraps (app/widgets/flow_layout.py): as one row its width was the network
        # view's minimum, and the window widened itself past the screen for it.
        controls = self.curve_controls = flow_row(
            (QLabel("Smoothing"), self.smoothing_slider, self.smoothing_label),
            (QLabel("x axis"), self.x_axis_combo), self.log_loss_check,
            (QLabel("Layers of"), self.layer_run_combo), spacing=16,
        )
        controls.setContentsMargins(6, 4, 6, 0)

        self.loss_plot = RunCurvesPlot(
            "Loss  (solid: mini-batch train, dashed: validation)", "loss", True, "lossCurves"
        )
        self.loss_plot.setToolTip("Training loss of each mini-batch and validation loss.")
        self.accuracy_plot = RunCurvesPlot(
            "Accuracy  (solid: train, dashed: validation)", "accuracy", False, "accuracyCurves",
            legend=False,
        )
        self.accuracy_plot.setToolTip("Accuracy on the full training and validation sets.")
        # Log y: the runs' learning rates often differ by decades (SGD 0.1, Adam 0.001).
        self.lr_plot = RunCurvesPlot("Learning rate", "lr", True, "lrCurves", legend=False)
        self.lr_plot.setToolTip("The learning rate each run used for its next update.")
        self.layer_plot = LayerStatsPlot()
        self.layer_plot.setToolTip(
            "Per-layer gradient norm and relative update size of the selected run, at each "
            "evaluation."
        )
        # The loss plot sets the x axis; accuracy and learning rate show the same steps at the
        # same moment (on their own, the lr plot re-ranged in other frames than the loss plot).
        self.accuracy_plot.follow_x_of(self.loss_plot)
        self.lr_plot.follow_x_of(self.loss_plot)
        self.layer_plot.follow_x_of(self.loss_plot.plotItem.vb)

        grid = QGridLayout()
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(2)
        # Six columns: loss and accuracy share the top row; below, the learning rate takes a
        # third and the two per-layer plots two thirds.
        grid.addWidget(self.loss_plot, 0, 0, 1, 3)
        grid.addWidget(self.accuracy_plot, 0, 3, 1, 3)
        grid.addWidget(self.lr_plot, 1, 0, 1, 2)
        grid.addWidget(self.layer_plot, 1, 2, 1, 4)
        for column in range(6):
            grid.setColumnStretch(column, 1)
        grid.setRowStretch(0, 3)
        grid.setRowStretch(1, 2)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(controls)
        layout.addLayout(grid, 1)

    def hide_controls(self) -> None:
        """Only the plots (for exported frames, app/export/animation.py): the control row goes."""
        self.curve_controls.setContentsMargins(0, 0, 0, 0)
        for i in range(self.curve_controls.count()):
            widget = self.curve_controls.itemAt(i).widget()
            if widget is not None:
                widget.hide()

    def set_runs(self) -> None:
        """New items for the race's runs (after `ShownRace` changed); clears all drawn data."""
        race = self.race
        self._set_min_x_span()
        regression = race.regression
        self.accuracy_plot.plotItem.setTitle(
            f"{'R²' if regression else 'Accuracy'}  (solid: train, dashed: validation)",
            size="10pt",
        )
        self.accuracy_plot.plotItem.setLabel("left", "R²" if regression else "accuracy")
        # Accuracy lies in [0, 1] and R² ≤ 1: the view stops a hair past them (the curves at 1
        # stay clear of the frame) and the axis has no tick there (no "1.1" from padding).
        low = -math.inf if regression else -UNIT_HEADROOM
        accuracy_vb = self.accuracy_plot.plotItem.vb
        accuracy_vb.y_bounds = (low, 1.0 + UNIT_HEADROOM)
        accuracy_vb.setLimits(yMin=None if regression else low, yMax=1.0 + UNIT_HEADROOM)
        self.accuracy_plot.getAxis("left").tick_bounds = (-math.inf if regression else 0.0, 1.0)
        for plot in self.run_plots():
            plot.set_runs(race.labels, race.colors)
        self.layer_plot.reset_log()
        self._start_x_ranges()

    def _start_x_ranges(self) -> None:
        """Before the first step every plot shows the x range the race's first steps will
        have (its first `MIN_STEP_SPAN` steps), none the last race's."""
        least = getattr(self.loss_plot.plotItem.vb, "min_x_span", 0.0) or 1.0
        for vb in (self.loss_plot.plotItem.vb, self.accuracy_plot.plotItem.vb,
                   self.lr_plot.plotItem.vb, self.layer_plot.grad_plot.vb,
                   self.layer_plot.ratio_plot.vb):
            vb.setXRange(0, least, padding=0)

    # -- state ---------------------------------------------------------------------------------

    @property
    def smoothing(self) -> float:
        # Rounded to the slider's 0.01 steps: position 60 is 0.6 itself, not 0.6000000000000001.
        return round(self.smoothing_slider.value() / SMOOTHING_TICKS * SMOOTHING_MAX, 2)

    @property
    def x_column(self) -> str:
        return X_AXES[self.x_axis_combo.currentText()][0]

    def run_plots(self) -> tuple[RunCurvesPlot, RunCurvesPlot, RunCurvesPlot]:
        return (self.loss_plot, self.accuracy_plot, self.lr_plot)

    def plots(self) -> tuple:
        return (*self.run_plots(), self.layer_plot)

    # -- view ranges ---------------------------------------------------------------------------

    def fit_pending(self, every: bool = False) -> bool:
        """Set the range a plot is waiting for (one, or ``every``); True if one was set."""
        done = False
        for plot in self.plots():
            if plot.needs_fit():
                plot.fit_view(one=not every)
                done = True
                if not every:
                    break
        return done

    @contextmanager
    def streaming(self):
        """While drawing a part for the round-robin: a new range waits for a turn of its own."""
        plots = self.plots()
        for plot in plots:
            plot.defer_fit = True
        try:
            yield
        finally:
            for plot in plots:
                plot.defer_fit = False

    def settle_view_transforms(self) -> None:
        """Apply a new view range now rather than at paint time.

        pyqtgraph updates a view's transform lazily, in its first paint; the curves' bounds
        change with it, which schedules a second paint of the same plot. Done here (and for
        the plot linked to the one re-ranged) a new range costs one paint: measured 20 -> 16 ms
        for the loss plot with the accuracy plot linked to it.
        """
        for plot in self.run_plots():
            settle_view_transform(plot.plotItem.vb)
        settle_view_transform(self.layer_plot.grad_plot.vb)
        settle_view_transform(self.layer_plot.ratio_plot.vb)

    # -- drawing -------------------------------------------------------------------------------

    def draw(self, part: str) -> None:
        """Draw one of `PARTS` from the race's history."""
        if self.race.history is None:
            return
        {"loss": self._draw_loss, "accuracy": self._draw_accuracy, "lr": self._draw_lr,
         "layers": self.draw_layers}[part]()

    def _draw_all(self) -> None:
        """Every part now (after a change of the x axis)."""
        self.redrawn.emit(PARTS)
        self._draw_loss()
        self._draw_accuracy()
        self._draw_lr()
        self.draw_layers()

    def _eval_series(self, name: str) -> tuple[list, list]:
        """Per run: (x, evaluation column ``name``) and its std over seeds (or None)."""
        history = self.race.history
        xcol = self.x_column
        empty = (np.empty(0), np.empty(0))
        series, stds = [], []
        for i in range(len(history.steps)):
            evals = history.evals[i] if history.evals is not None else None
            if evals is None or len(evals) == 0 or name not in history.eval_fields:
                series.append(empty)
                stds.append(None)
                continue
            series.append((evals.column(xcol), evals.column(name)))
            std_name = f"{name}_std"
            stds.append(evals.column(std_name) if std_name in history.eval_fields else None)
        return series, stds

    def _draw_loss(self) -> None:
        history = self.race.history
        if history is None:
            return
        xcol = self.x_column
        solid = [(steps.column(xcol), steps.column("loss")) for steps in history.steps]
        solid_std = ([steps.column("loss_std") for steps in history.steps]
                     if history.has_seeds else None)
        dashed, dashed_std = self._eval_series("val_loss")
        self.loss_plot.update_runs(solid, dashed, self.smoothing, solid_std=solid_std,
                                   dashed_std=dashed_std if history.has_seeds else None)

    def _draw_lr(self) -> None:
        history = self.race.history
        if history is None:
            return
        xcol = self.x_column
        self.lr_plot.update_runs([(steps.column(xcol), steps.column("lr"))
                                  for steps in history.steps])

    def _draw_accuracy(self) -> None:
        history = self.race.history
        if history is None:
            return
        metric = self.race.metric
        solid, solid_std = self._eval_series(f"train_{metric}")
        dashed, dashed_std = self._eval_series(f"val_{metric}")
        seeded = history.has_seeds
        self.accuracy_plot.update_runs(solid, dashed, solid_std=solid_std if seeded else None,
                                       dashed_std=dashed_std if seeded else None)

    def draw_layers(self) -> None:
        """The selected run's per-layer statistics, up to its last own step."""
        run = self.race.selected_run
        self.layer_plot.show_run(run, self.x_column, self.race.last_valid_step(run))

    # -- slots ---------------------------------------------------------------------------------

    def _on_smoothing(self, _value: int) -> None:
        self.smoothing_label.setText(f"{self.smoothing:.2f}")
        self.redrawn.emit(("loss",))
        self._draw_loss()

    def _on_x_axis(self, _index: int) -> None:
        label = X_AXES[self.x_axis_combo.currentText()][1]
        for plot in self.run_plots():
            plot.plotItem.setLabel("bottom", label)
        self.layer_plot.set_x_label(label)
        for plot in self.run_plots():
            plot.invalidate()
        self.layer_plot.forget()
        for plot in self.plots():
            plot.follow = True
        self.loss_plot.plotItem.vb.setXRange(0, 1)  # a new column: a new x range
        self.layer_plot.grad_plot.vb.setXRange(0, 1)
        self._set_min_x_span()
        self._draw_all()

    def _set_min_x_span(self) -> None:
        """On the step axis the plots start `MIN_STEP_SPAN` steps wide (or the race's length):
        the first steps of a race then re-range nothing (epochs and seconds have no such unit)."""
        least, end = 0.0, math.inf
        total_steps = self.race.total_steps
        if self.x_column == "step":
            least = float(min(MIN_STEP_SPAN, total_steps or MIN_STEP_SPAN))
            end = float(total_steps) if total_steps else math.inf
        for vb in (self.loss_plot.plotItem.vb, self.accuracy_plot.plotItem.vb,
                   self.lr_plot.plotItem.vb, self.layer_plot.grad_plot.vb):
            vb.min_x_span, vb.x_end = least, end

    def _on_log_loss(self, checked: bool) -> None:
        self.loss_plot.set_log_y(checked)
        self.loss_plot.invalidate()
        self.loss_plot.follow = True
        self.loss_plot.plotItem.vb.setYRange(0, 1)  # the old range means nothing on the new axis
        self.redrawn.emit(("loss",))
        self._draw_loss()
