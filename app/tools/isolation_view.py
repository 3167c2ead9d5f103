"""The sweep window's Isolation tab: the Deep Learning Tuning Playbook's isolation plot.

For the hyperparameter picked above the plot, the best (lowest) objective of the complete trials
per value of it (per bin of a range, log-spaced for a log-scale one; per value of a list or a
grid), every other hyperparameter optimized away, each point at the value of the trial that
scored it; each trial's own objective as a faint dot behind it, and the ends of a searched range
as dashed lines. The numbers are core/tools/sweep/playbook.py's `isolation`. An end where the
best trial lies (`boundary_warnings`) is drawn in the warning colour; the window states the
warning in words under its best trial (app/tools/sweep_window.py), in the label that
`boundary_label` makes and `show_boundary` fills.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from app.shell.plot_help import install_plot_help
from app.widgets.curves import add_key_row
from app.widgets.plot_style import named_plot
from core.errors import LabError
from core.tools.sweep.playbook import Isolation, boundary_warnings, isolation
from core.tools.sweep_views import complete_trials, space_names

BEST_COLOR = "#ffd54a"  # the best-so-far line's colour (app/tools/sweep_views.py)
EDGE_COLOR = "#8a8f98"
WARNING_COLOR = "#ffb347"
WARNING_STYLE = f"color: {WARNING_COLOR}; font-weight: bold; padding: 2px 6px;"
LOG_Y_SPAN = 10.0  # objectives spanning this factor or more are drawn on a log axis


def boundary_label() -> QLabel:
    """The window's line for the boundary warnings (under its best trial), hidden while none."""
    label = QLabel(objectName="sweepBoundaryLabel")
    label.setWordWrap(True)
    label.setStyleSheet(WARNING_STYLE)
    label.setToolTip("The Tuning Playbook: a best trial at the edge of its searched range (the "
                     "outer 5 %, log ranges on the log scale) says the best may lie beyond it; "
                     "the Isolation tab shows where")
    label.hide()
    return label


def show_boundary(label: QLabel, trials: Sequence) -> None:
    """Each hyperparameter whose best value lies at an edge of its range, one line each."""
    warnings = boundary_warnings(trials)
    label.setText("\n".join(f"⚠ {w.message}" for w in warnings))
    label.setVisible(bool(warnings))


class IsolationView(QWidget):
    """The best objective per value of one picked hyperparameter, the others optimized away."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.combo = QComboBox(objectName="isolationParamCombo")
        self.combo.setToolTip("The hyperparameter across (x); the others are optimized away")
        controls = QHBoxLayout()
        controls.setContentsMargins(6, 4, 6, 0)
        controls.addWidget(QLabel("hyperparameter"))
        controls.addWidget(self.combo)
        controls.addStretch(1)
        self.plot = named_plot("isolationPlot")
        self.plot.setMenuEnabled(False)
        self.plot.plotItem.hideButtons()
        self.plot.setToolTip("For each value (or bin) of the hyperparameter, the best objective "
                             "any trial reached there, whatever the other hyperparameters were. "
                             "Dashed lines: the ends of the searched range (orange: the best "
                             "trial lies at that end, widen the range there).")
        item = self.plot.plotItem
        item.setLabel("left", "objective")
        add_key_row(item)  # above the data, never over a point (app/widgets/curves.py)
        self.dots = pg.PlotDataItem(pen=None, symbol="o", symbolSize=6, symbolPen=None,
                                    symbolBrush=pg.mkBrush(150, 170, 200, 110), name="trial")
        self.best_line = pg.PlotDataItem(pen=pg.mkPen(BEST_COLOR, width=2), symbol="o",
                                         symbolSize=9, symbolBrush=pg.mkBrush(BEST_COLOR),
                                         symbolPen=pg.mkPen("#202020"), name="best per value")
        item.addItem(self.dots)
        item.addItem(self.best_line)
        self.best_line.setZValue(1)
        self.edges: list[pg.InfiniteLine] = []
        self.message = QLabel(objectName="isolationMessage")
        self.message.setWordWrap(True)
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setStyleSheet("color: #a0a4ab; padding: 12px;")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addWidget(self.message)
        layout.addWidget(self.plot, 1)
        self.warned_sides: set[str] = set()  # the ends of the picked range drawn as warnings
        self.data: Isolation | None = None
        self._trials: Sequence = ()
        self.combo.currentTextChanged.connect(self._redraw)
        install_plot_help(self)  # its "?" and What's This (app/shell/plot_help.py)
        self._show_message("The isolation plot appears once a trial has completed.")

    def update_trials(self, trials: Sequence) -> None:
        """Redraw from the study's trials, keeping the picked hyperparameter."""
        self._trials = trials
        names = space_names(complete_trials(trials))
        current = self.combo.currentText()
        if [self.combo.itemText(i) for i in range(self.combo.count())] != names:
            self.combo.blockSignals(True)
            self.combo.clear()
            self.combo.addItems(names)
            self.combo.setCurrentIndex(names.index(current) if current in names else 0)
            self.combo.blockSignals(False)
        self._redraw()

    def pick(self, name: str) -> None:
        """Show ``name`` (as choosing it in the combo does)."""
        self.combo.setCurrentIndex(self.combo.findText(name))

    def _redraw(self, *_args) -> None:
        item = self.plot.plotItem
        for line in self.edges:
            item.removeItem(line)
        self.edges = []
        self.data = None
        self.warned_sides = set()
        name = self.combo.currentText()
        if not name:
            self._show_message("The isolation plot appears once a trial has completed.")
            return
        try:
            iso = isolation(self._trials, name)
        except LabError as exc:
            self._show_message(exc.message[0].upper() + exc.message[1:] + ".")
            return
        self.data = iso
        self.message.hide()
        self.plot.show()
        filled = np.isfinite(iso.best)
        values = iso.trial_values
        # A log axis only where the objectives span decades (a diverged trial): within one
        # decade it would show a single tick.
        log_y = bool(len(values) and values.min() > 0
                     and values.max() >= LOG_Y_SPAN * values.min())
        item.setLogMode(x=iso.log, y=log_y)
        item.setLabel("left", "objective (log)" if log_y else "objective")
        item.setLabel("bottom", name + (" (log scale)" if iso.log else ""))
        bottom = item.getAxis("bottom")
        bottom.setTicks([list(enumerate(iso.labels))] if iso.categorical else None)
        self.dots.setData(iso.trial_x, iso.trial_values)
        self.best_line.setData(iso.best_x[filled], iso.best[filled])
        # Values of a list have no order to draw a line along: points only.
        self.best_line.setPen(None if iso.categorical else pg.mkPen(BEST_COLOR, width=2))
        self.warned_sides = {w.side for w in boundary_warnings(self._trials) if w.name == name}
        if iso.search_range is not None:
            for side, bound in zip(("lower", "upper"), iso.search_range):
                at = math.log10(bound) if iso.log else bound  # a log axis is in decades
                warned = side in self.warned_sides
                line = pg.InfiniteLine(at, angle=90, movable=False,
                                       pen=pg.mkPen(WARNING_COLOR if warned else EDGE_COLOR,
                                                    width=2 if warned else 1,
                                                    style=Qt.PenStyle.DashLine))
                item.addItem(line, ignoreBounds=False)
                self.edges.append(line)
        if iso.categorical:
            item.setXRange(-0.5, len(iso.labels) - 0.5, padding=0.05)
        item.enableAutoRange(axis="y")
        if not iso.categorical:
            item.enableAutoRange(axis="x")

    def _show_message(self, text: str) -> None:
        self.message.setText(text)
        self.message.show()
        self.plot.hide()
