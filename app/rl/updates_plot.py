"""Each update's gradient norm (log y) with a mark at every target-network copy, and the
optimizer's moment estimates ‖m‖ and ‖v‖ around them (what Adam-Rel's reset acts on)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from app.widgets.curves import add_key_row, decimate
from core.engine.rl_history import RLHistory

_FLOOR = 1e-12


def _log(values: np.ndarray) -> np.ndarray:
    return np.log10(np.maximum(values, _FLOOR))


class UpdatesPlot(pg.GraphicsLayoutWidget):
    """Top: ‖gradient‖ per update, one colour per run, ▼ where a target update followed.
    Bottom: the selected run's ‖m‖ and ‖v‖ (NaN gaps when the optimizer keeps none)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.grad = self.addPlot(row=0, col=0, title="Gradient norm (▼ target update)")
        self.grad.setLabel("bottom", "update")
        self.grad.setLabel("left", "log₁₀ ‖g‖")
        self.key = add_key_row(self.grad)
        self.moments = self.addPlot(row=1, col=0, title="Moments of the selected run")
        self.moments.setLabel("bottom", "update")
        self.moments.setLabel("left", "log₁₀ norm")
        self.moments.setXLink(self.grad)
        self.moment_key = add_key_row(self.moments)
        for plot in (self.grad, self.moments):  # log values: no "(x0.001)" prefix on the axis
            plot.getAxis("left").enableAutoSIPrefix(False)
        self.m_curve = self.moments.plot([], [], pen=pg.mkPen("#ccbb44", width=2), name="‖m‖ (exp_avg)")
        self.v_curve = self.moments.plot([], [], pen=pg.mkPen("#88ccee", width=2), name="‖v‖ (exp_avg_sq)")
        self.v_marks = pg.ScatterPlotItem(symbol="t", size=8, brush="#ee6677", pen=None)
        self.moments.addItem(self.v_marks)
        self.curves: list[pg.PlotDataItem] = []
        self.marks: list[pg.ScatterPlotItem] = []
        self.selected = 0

    def set_runs(self, labels: list[str], colors: list[str]) -> None:
        for item in self.curves + self.marks:
            self.grad.removeItem(item)
        self.key.clear()
        self.curves, self.marks = [], []
        for label, color in zip(labels, colors):
            curve = self.grad.plot([], [], pen=pg.mkPen(color, width=1))
            self.key.addItem(curve, label)
            marks = pg.ScatterPlotItem(symbol="t", size=9, brush=color, pen=None)
            self.grad.addItem(marks)
            self.curves.append(curve)
            self.marks.append(marks)

    def update_from(self, history: RLHistory, selected: int) -> None:
        for i, (curve, marks) in enumerate(zip(self.curves, self.marks)):
            number, grad, targets = history.updates(i)
            curve.setData(*decimate(number, _log(grad)))
            at = targets.astype(np.int64) - 1
            marks.setData(targets, _log(grad[at]) if len(at) else [])
        if not 0 <= selected < len(self.curves):
            return
        number, _, targets = history.updates(selected)
        m, v = history.moments(selected)
        self.moments.setTitle(f"Moments of {history.labels[selected]}")
        self.m_curve.setData(*decimate(number, _log(m)), connect="finite")
        self.v_curve.setData(*decimate(number, _log(v)), connect="finite")
        at = targets.astype(np.int64) - 1
        self.v_marks.setData(targets, _log(v[at]) if len(at) else [])
