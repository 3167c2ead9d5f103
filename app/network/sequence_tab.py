"""The network view's Sequence tab: how gradients travel back through time in a recurrent network.

For the selected run (the view's selection, as the confusion matrix), drawn from the history's
records (core/engine/history.py ``sequence_stats`` and ``clip_steps``; computed in
core/engine/sequence_probe.py):

* a heat map of log10 ‖∂L/∂h_t‖ over the time steps t (x) and the training steps of the
  evaluations (y), on a fixed probe batch: a vanishing gradient fades towards t = 0 (dark on
  the left), an exploding one blows up (bright rows, then the run freezes);
* the spectral radius of each recurrent layer's recurrent matrix over training, with the line
  at 1 (above it a linear recurrence grows without bound);
* the gradient norm before clipping over training, with the run's clip_norm steps marked
  (where norm clipping fired).

Only a network with a recurrent layer has these numbers; for others the tab says so.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from app.network.race_state import ShownRace
from app.shell.theme import FOREGROUND
from app.widgets.curves import add_key_row
from app.widgets.plot_style import named_plot

COLORMAP = pg.colormap.get("inferno")
_STYLES = (Qt.PenStyle.SolidLine, Qt.PenStyle.DashLine, Qt.PenStyle.DotLine)
EMPTY_TEXT = ("This tab shows recurrent networks: a model with an rnn, lstm or gru layer on a "
              "sequence data set (adding, memory, parity, sine_next).")


class SequenceTab(QWidget):
    """Heat map of ‖∂L/∂h_t‖, spectral radius and clipping markers of the selected run."""

    def __init__(self, race: ShownRace, parent=None):
        super().__init__(parent)
        self.setObjectName("sequenceTab")
        self.race = race
        self.caption = QLabel(EMPTY_TEXT, objectName="sequenceCaption")
        self.caption.setWordWrap(True)
        self.shown: np.ndarray | None = None  # the log10 image drawn, rows = evaluations

        self.heat_plot = named_plot("hiddenGradPlot")
        self.heat_plot.setMenuEnabled(False)
        item = self.heat_plot.plotItem
        item.setTitle("log10 ‖∂L/∂h_t‖ on the probe batch", color=FOREGROUND)
        item.setLabel("bottom", "time step t (the loss is read at the last)")
        item.setLabel("left", "training step")
        self.image = pg.ImageItem(axisOrder="row-major")
        self.heat_plot.addItem(self.image)
        self.colorbar = pg.ColorBarItem(colorMap=COLORMAP, interactive=False, width=14)
        self.colorbar.setImageItem(self.image, insert_in=item)
        self.colorbar.axis.enableAutoSIPrefix(False)

        self.radius_plot = named_plot("spectralRadiusPlot")
        self.radius_plot.setMenuEnabled(False)
        self.radius_plot.plotItem.setTitle("Spectral radius of the recurrent matrix",
                                           color=FOREGROUND)
        self.radius_plot.setLabel("bottom", "step")
        # A key row above the data: pyqtgraph's legend box sat on the radius line
        # (app/widgets/curves.py).
        add_key_row(self.radius_plot.plotItem)
        # The line at 1 is named in the key: its label "1" sat on the radius curve where the
        # curve crosses 1 (the crossing is what the plot is read for).
        one = pg.mkPen("#999", style=Qt.PenStyle.DashLine)
        self.radius_plot.addItem(pg.PlotDataItem(pen=one, name="1: above it a linear recurrence grows"))
        self.radius_plot.addItem(pg.InfiniteLine(1.0, angle=0, pen=one))
        self.radius_curves: list[pg.PlotDataItem] = []

        self.grad_plot = named_plot("clipGradPlot")
        self.grad_plot.setMenuEnabled(False)
        self.grad_plot.plotItem.setTitle("Gradient norm before clipping (× where clipping fired)",
                                         color=FOREGROUND)
        self.grad_plot.setLabel("bottom", "step")
        self.grad_plot.setLogMode(y=True)
        self.grad_curve = self.grad_plot.plot(pen=pg.mkPen("#8ab4f8", width=1))
        self.clip_markers = pg.ScatterPlotItem(symbol="x", size=8, pen=pg.mkPen("#ff6b6b"),
                                               brush=None)
        self.grad_plot.addItem(self.clip_markers)
        self.marked_steps: np.ndarray = np.empty(0)

        layout = QVBoxLayout(self)
        layout.addWidget(self.caption)
        layout.addWidget(self.heat_plot, 3)
        layout.addWidget(self.radius_plot, 2)
        layout.addWidget(self.grad_plot, 2)

    def set_runs(self) -> None:
        self.image.clear()
        self.shown = None
        for curve in self.radius_curves:
            self.radius_plot.removeItem(curve)
        self.radius_curves = []
        self.grad_curve.setData([], [])
        self.clip_markers.setData([], [])
        self.marked_steps = np.empty(0)
        self.caption.setText(EMPTY_TEXT)

    def draw(self) -> None:
        """Redraw the selected run's heat map, radius and clipping from the history."""
        history, run = self.race.history, self.race.selected_run
        if history is None or run >= len(self.race.labels):
            return
        # A frozen run (diverged, stopped early) keeps being evaluated with its frozen weights:
        # only the evaluations up to its last own step are its own.
        last = self.race.last_valid_step(run)
        stats = [row for row in history.sequence_stats if row[0] <= last]
        if not stats:
            self.caption.setText(EMPTY_TEXT)
            return
        steps = np.array([step for step, _, _ in stats])
        norms = np.stack([grad[run] for _, grad, _ in stats])  # (evaluations, T)
        with np.errstate(divide="ignore", invalid="ignore"):
            logs = np.log10(norms)
        finite = np.isfinite(logs)
        if finite.any():
            low, high = float(logs[finite].min()), float(logs[finite].max())
            # Underflowed to 0 (−inf): the darkest; overflowed or NaN: the brightest.
            image = np.where(finite, logs, np.where(np.isneginf(logs), low, high))
            self.shown = image
            t = norms.shape[1]
            span = max(steps[-1] - steps[0], 1.0)
            height = span * len(steps) / max(len(steps) - 1, 1)  # one row per evaluation
            self.image.setImage(image, autoLevels=False)
            self.image.setRect(-0.5, steps[0] - height / len(steps) / 2, t, height)
            self.colorbar.setLevels((low, high if high > low else low + 1.0))
        radius = np.stack([r[run] for _, _, r in stats])  # (evaluations, layers)
        color = self.race.colors[run] if run < len(self.race.colors) else "#ffffff"
        while len(self.radius_curves) < radius.shape[1]:
            k = len(self.radius_curves)
            self.radius_curves.append(self.radius_plot.plot(
                pen=pg.mkPen(color, width=2, style=_STYLES[k % len(_STYLES)]), name=f"recurrent layer {k}"))
        for k, curve in enumerate(self.radius_curves):
            keep = np.isfinite(radius[:, k])
            curve.setData(steps[keep], radius[keep, k])
        series = history.steps[run]
        x, grad = series.column("step"), series.column("grad_norm")
        keep = np.isfinite(grad) & (grad > 0)
        self.grad_curve.setData(x[keep], grad[keep])
        marked = np.asarray(history.clip_steps[run], dtype=np.float64)
        self.marked_steps = marked
        if len(marked):
            at = np.searchsorted(x, marked).clip(0, max(len(x) - 1, 0))
            self.clip_markers.setData(marked, np.log10(np.maximum(grad[at], 1e-30)))
        else:
            self.clip_markers.setData([], [])
        self._caption(norms, radius, marked)

    def _caption(self, norms: np.ndarray, radius: np.ndarray, marked: np.ndarray) -> None:
        run = self.race.selected_run
        label = self.race.labels[run]
        last = norms[-1]
        text = f"{label}: ‖∂L/∂h_t‖ at the newest evaluation "
        diverged = self.race.history.divergences.get(run)
        if diverged is not None:
            text = f"{label} diverged at step {diverged.step}; at its last evaluation ‖∂L/∂h_t‖ "
        if np.isfinite(last).all() and last[-1] > 0:
            ratio = last[0] / last[-1]
            text += f"is {ratio:.2g} × at t = 0 what it is at the last step"
            if ratio < 1e-3:
                text += " — it vanishes on the way back"
        else:
            text += "is not finite — it exploded"
        if radius.size:
            text += f"; spectral radius {radius[-1, 0]:.3g}"
        text += f"; clipping fired at {len(marked)} steps." if len(marked) else "."
        self.caption.setText(text)
