"""The 1-D slices page of the Surface tab: the loss along straight lines through weight space.

Linear interpolation (Goodfellow et al. 2015) from the initial weights to each run's weights, from
run A to run B, or a random filter-normalised direction around each run (`SLICE_CHOICES`).
`SlicePage` holds the choice, its Compute button and the `SlicePlot` (one curve per run, or one
for A → B, on a log axis); the Surface view starts the computation and feeds the curves.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QPushButton, QVBoxLayout, QWidget

from app.widgets.curves import add_key_row
from core.landscape.live import SliceUpdate

SLICE_CHOICES = (
    ("init_final", "Interpolation: init → current (each run)",
     "loss((1−t)·θ₀ + t·θ) for each run: t = 0 is the shared initial weights, t = 1 the "
     "run's current weights (Goodfellow et al. 2015)."),
    ("runs", "Interpolation: run A → run B",
     "loss((1−t)·θ_A + t·θ_B): is there a barrier between the two runs' minima?"),
    ("random", "Random direction (each run)",
     "loss(θ + α·d) along one filter-normalised random direction d around each run's weights."),
)


class SlicePlot(pg.PlotWidget):
    """1-D slices: one curve per run (or one for A → B), loss on a log axis."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("slicePlot")
        self.setMenuEnabled(False)
        self.plotItem.setLabel("left", "loss")
        self.plotItem.setLogMode(y=True)
        add_key_row(self.plotItem)  # above the data, never over a curve (app/widgets/curves.py)
        self.curves: dict[int, pg.PlotDataItem] = {}
        for x in (0.0, 1.0):
            line = pg.InfiniteLine(pos=x, angle=90, pen=pg.mkPen(200, 200, 200, 80, width=1))
            self.addItem(line)
        self.setToolTip("The loss along a straight line through weight space.")

    def clear_curves(self, kind: str) -> None:
        for item in self.curves.values():
            self.removeItem(item)
        self.curves = {}
        self.plotItem.legend.clear()
        axis = "α (0: the run's weights)" if kind == "random" else "t (0: first point, 1: second)"
        self.plotItem.setLabel("bottom", axis)

    def add_curve(self, update: SliceUpdate, color: str) -> None:
        ok = np.isfinite(update.losses) & (update.losses > 0)
        item = pg.PlotDataItem(update.ts[ok], update.losses[ok], pen=pg.mkPen(color, width=2),
                               name=update.label)
        if update.run in self.curves:
            self.removeItem(self.curves[update.run])
        self.curves[update.run] = item
        self.addItem(item)


class SlicePage(QWidget):
    """The slice choice and its Compute button above the `SlicePlot`."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.plot = SlicePlot()
        row = QHBoxLayout()
        row.setContentsMargins(6, 4, 6, 0)
        self.kind = QComboBox(objectName="sliceKind")
        for key, text, tip in SLICE_CHOICES:
            self.kind.addItem(text, key)
            self.kind.setItemData(self.kind.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        self.kind.setToolTip("Which straight line through weight space to follow.")
        self.button = QPushButton("Compute slices", objectName="sliceCompute")
        self.button.setToolTip("Compute the 1-D slices with the current weights (runs A and "
                               "B are chosen above).")
        row.addWidget(self.kind)
        row.addWidget(self.button)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.plot, 1)
