"""Step-series plots: loss vs step (log y) and learning rate vs step, one curve per run.

Follows pyqtgraph's streaming examples: each curve gets ``setData`` once per batch with views of
the history's growable buffers; ``setClipToView`` and peak downsampling keep long races cheap.
On a log axis the loss is shown as the gap to the known minimum, f − f*, so a run that reaches
the minimum keeps falling on the plot instead of flattening at f* (and negative minima such as
Styblinski–Tang's −78.3 still work); values are floored at `LOG_FLOOR` so log10 stays finite.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QColor

LOG_FLOOR = 1e-16


class SeriesPlot(pg.PlotWidget):
    """One curve per run over the step axis."""

    def __init__(
        self, title: str, y_label: str, log_y: bool, object_name: str, legend: bool = True,
        parent=None,
    ):
        super().__init__(parent)
        self.setObjectName(object_name)
        self.plotItem.setTitle(title, size="10pt")
        self.plotItem.setLabel("bottom", "step")
        self.plotItem.setLabel("left", y_label)
        self.plotItem.showGrid(x=True, y=True, alpha=0.2)
        self.plotItem.setClipToView(True)
        self.plotItem.setDownsampling(auto=True, mode="peak")
        self.legend = None
        if legend:
            self.legend = self.plotItem.addLegend(offset=(-10, 10), labelTextSize="8pt")
            # Translucent, so the curves behind the legend stay visible.
            self.legend.setBrush(pg.mkBrush(27, 29, 33, 170))
        self.curves: list[pg.PlotDataItem] = []
        self.offset = 0.0
        self.set_log_y(log_y)

    def set_log_y(self, log_y: bool) -> None:
        self.log_y = log_y
        self.plotItem.setLogMode(x=False, y=log_y)

    def set_runs(self, labels: list[str], colors: list[str]) -> None:
        for curve in self.curves:
            self.plotItem.removeItem(curve)
        if self.legend is not None:
            self.legend.clear()
        self.curves = []
        for label, color in zip(labels, colors):
            curve = pg.PlotDataItem(pen=pg.mkPen(QColor(color), width=1), name=label)
            self.plotItem.addItem(curve)
            self.curves.append(curve)

    def update_series(self, series: list[tuple[np.ndarray, np.ndarray]]) -> None:
        for curve, (x, y) in zip(self.curves, series):
            if self.offset:
                y = y - self.offset
            if self.log_y:
                y = np.maximum(y, LOG_FLOOR)
            curve.setData(x, y)


class LossPlot(SeriesPlot):
    def __init__(self, parent=None):
        super().__init__("Loss", "f − f*", True, "lossPlot", parent=parent)

    def set_minimum(self, min_value: float | None) -> None:
        """Show f − f* on a log axis when f* is known; otherwise f itself on a linear axis."""
        if min_value is None:
            self.offset = 0.0
            self.set_log_y(False)
            self.plotItem.setLabel("left", "f(x, y)")
        else:
            self.offset = float(min_value)
            self.set_log_y(True)
            self.plotItem.setLabel("left", "f − f*")


class LrPlot(SeriesPlot):
    def __init__(self, parent=None):
        super().__init__("Learning rate", "lr", False, "lrPlot", legend=False, parent=parent)
