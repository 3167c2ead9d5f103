"""The sweep window's pictures of a study: trials table, best so far, 2-parameter heatmap,
isolation plot (its own module, app/tools/isolation_view.py), parallel coordinates and parameter
importance.

Every view takes the study's trials (Optuna ``FrozenTrial``s) and draws what core.tools.sweep_views
computes from them, so the numbers are tested in core and these classes only draw. Colours
follow one rule everywhere: lower objective = brighter (the "plasma" map, best = yellow), on a
log scale when the values are positive (core.tools.sweep_views.color_scale).
"""

from __future__ import annotations

import copy
import csv
import io
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.shell.theme import FOREGROUND
from app.tools.isolation_view import IsolationView
from app.widgets.curves import add_key_row
from app.widgets.plot_style import named_plot
from core.errors import LabError
from core.lab.format import write_atomic
from core.tools.sweep_views import (
    best_so_far,
    color_levels,
    color_scale,
    complete_trials,
    grid_2d,
    parallel_coordinates,
    space_names,
)

# Plasma reversed (on a copy: colormap.get may hand out a shared object): the lowest (best)
# objective is the brightest colour.
COLORMAP = copy.deepcopy(pg.colormap.get("plasma"))
COLORMAP.reverse()
BEST_COLOR = "#ffd54a"
MAX_CELL_TEXTS = 150  # write values into heatmap cells up to this many cells


def _value_color(fraction: float, alpha: int = 255) -> QColor:
    """Colour of a value at ``fraction`` (0 = best) of the colour levels: best is brightest."""
    color = COLORMAP.map(min(1.0, max(0.0, fraction)), mode="qcolor")
    color.setAlpha(alpha)
    return color


def _message_label(object_name: str) -> QLabel:
    label = QLabel(objectName=object_name)
    label.setWordWrap(True)
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setStyleSheet("color: #a0a4ab; padding: 12px;")
    return label


# -- trials table --------------------------------------------------------------------------------


class _SortItem(QTableWidgetItem):
    """A cell that sorts by its number (empty cells last), not by its text."""

    def __init__(self, value):
        text = _cell_text(value)
        super().__init__(text)
        self.value = value
        number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
        self.key = (0, float(number), "") if number is not None and math.isfinite(number) \
            else (1 if value in ("", None) else 0, math.inf, text)

    def __lt__(self, other):  # noqa: D105 - Qt calls it to sort
        if isinstance(other, _SortItem):
            return self.key < other.key
        return super().__lt__(other)


def _cell_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


COLUMN_TIPS = {
    "number": "Optuna's trial number (double-click a row to open the trial as a run)",
    "state": "complete, pruned (stopped early by the median rule), failed or cancelled",
    "value": "The objective, averaged over the seeds (lower is better)",
    "pruned_at_step": "The step where the median pruner stopped the trial",
    "steps_run": "Training steps the trial ran, over all its seeds",
    "duration_s": "Seconds from the start of its batch (trials of a batch train together)",
    "message": "Why a trial failed or was cancelled",
}


class TrialsTable(QTableWidget):
    """Every trial of the study, sortable by any column; double-click opens a trial as a run."""

    trial_activated = Signal(int)  # trial number

    def __init__(self, parent=None):
        super().__init__(0, 0, parent, objectName="trialsTable")
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setAlternatingRowColors(True)
        self.verticalHeader().setVisible(False)
        self.setToolTip("One row per trial; click a header to sort, double-click a row to "
                        "open that trial as a run in the lab.")
        self.header: list[str] = []
        self.rows: list[list] = []
        self.cellDoubleClicked.connect(self._on_double_click)

    def set_rows(self, header: list[str], rows: list[list]) -> None:
        """Show ``header`` and ``rows`` (core.tools.sweep.run.trial_rows), keeping the user's
        sort."""
        self.header, self.rows = list(header), [list(r) for r in rows]
        sort_column = self.horizontalHeader().sortIndicatorSection()
        order = self.horizontalHeader().sortIndicatorOrder()
        self.setSortingEnabled(False)
        self.setColumnCount(len(header))
        for c, name in enumerate(header):
            item = QTableWidgetItem(name)
            tip = COLUMN_TIPS.get(name) or (
                f"The objective of seed {name.removeprefix('value_seed')}"
                if name.startswith("value_seed") else f"The trial's {name}")
            item.setToolTip(tip)
            self.setHorizontalHeaderItem(c, item)
        self.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                self.setItem(r, c, _SortItem(value))
        self.setSortingEnabled(True)
        if 0 <= sort_column < len(header):
            self.sortItems(sort_column, order)
        self.resizeColumnsToContents()

    def shown_rows(self) -> list[list]:
        """The rows in display order, each cell the value it stands for."""
        return [[self.item(r, c).value for c in range(self.columnCount())]
                for r in range(self.rowCount())]

    def export_csv(self, path: str | os.PathLike) -> Path:
        """Write the table (display order, full precision) atomically to ``path``."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(self.header)
        for row in self.shown_rows():
            writer.writerow(["true" if v is True else "false" if v is False
                             else repr(v) if isinstance(v, float) else v for v in row])
        write_atomic(path, buffer.getvalue())
        return Path(path)

    def _on_double_click(self, row: int, _column: int) -> None:
        column = self.header.index("number") if "number" in self.header else 0
        self.trial_activated.emit(int(self.item(row, column).value))


# -- best so far ---------------------------------------------------------------------------------


class BestSoFarPlot(pg.PlotWidget):
    """Each complete trial's objective (dots) and the best so far (a step line)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("bestSoFarPlot")
        self.setMenuEnabled(False)
        self.setToolTip("Each dot is a complete trial's objective; the line is the best found "
                        "so far. A line that is still falling says more trials may pay off.")
        item = self.plotItem
        item.setLabel("bottom", "trial")
        item.setLabel("left", "objective")
        add_key_row(item)  # above the data, never over a curve (app/widgets/curves.py)
        # Symbols of a PlotDataItem, not a ScatterPlotItem: only a PlotDataItem follows the
        # plot's log mode, so the dots and the line share one y axis.
        self.dots = pg.PlotDataItem(pen=None, symbol="o", symbolSize=7, symbolPen=None,
                                    symbolBrush=pg.mkBrush(150, 170, 200, 170), name="trial")
        self.best_line = pg.PlotDataItem(pen=pg.mkPen(BEST_COLOR, width=2), stepMode=None,
                                         name="best so far")
        item.addItem(self.dots)
        item.addItem(self.best_line)
        self.dots.setZValue(1)  # a trial that set a new best stays visible on the line
        self.data = (np.zeros(0), np.zeros(0), np.zeros(0))

    def update_trials(self, trials: Sequence) -> None:
        numbers, values, best = best_so_far(trials)
        self.data = (numbers, values, best)
        log = bool(len(values) > 0 and values.min() > 0)
        self.plotItem.setLogMode(x=False, y=log)
        self.plotItem.setLabel("left", "objective (log)" if log else "objective")
        self.dots.setData(numbers, values)
        if len(numbers):
            # A staircase: the best holds until the next improvement.
            x = np.repeat(numbers, 2)[1:]
            y = np.repeat(best, 2)[:-1]
            self.best_line.setData(x, y)
        else:
            self.best_line.setData([], [])


# -- heatmap -------------------------------------------------------------------------------------


class HeatmapView(QWidget):
    """The best objective per cell of two chosen parameters (e.g. lr × momentum)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.x_combo = QComboBox(objectName="heatmapXCombo")
        self.y_combo = QComboBox(objectName="heatmapYCombo")
        self.x_combo.setToolTip("The parameter across (x)")
        self.y_combo.setToolTip("The parameter up (y)")
        controls = QHBoxLayout()
        controls.setContentsMargins(6, 4, 6, 0)
        controls.addWidget(QLabel("x"))
        controls.addWidget(self.x_combo)
        controls.addWidget(QLabel("y"))
        controls.addWidget(self.y_combo)
        controls.addStretch(1)
        self.plot = named_plot("heatmapPlot")
        self.plot.setMenuEnabled(False)
        self.plot.setToolTip("Each cell shows the best (lowest) objective of the trials that "
                             "fall in it; brighter is better, empty cells had no trial.")
        self.plot.plotItem.hideButtons()
        self.image = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.image)
        self.colorbar = pg.ColorBarItem(colorMap=COLORMAP, interactive=False, width=14)
        # Placed where setImageItem(insert_in=...) would put it, but not linked: the image is
        # RGBA (empty cells transparent), so the bar must not re-level it.
        self.plot.plotItem.layout.addItem(self.colorbar, 2, 5)
        self._lut = COLORMAP.getLookupTable(nPts=256, alpha=True)
        self.message = _message_label("heatmapMessage")
        self.texts: list[pg.TextItem] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addWidget(self.message)
        layout.addWidget(self.plot, 1)
        self.grid = None
        self._trials: Sequence = ()
        self.x_combo.currentTextChanged.connect(self._redraw)
        self.y_combo.currentTextChanged.connect(self._redraw)

    def update_trials(self, trials: Sequence) -> None:
        self._trials = trials
        names = space_names(complete_trials(trials))
        for combo, default in ((self.x_combo, 0), (self.y_combo, 1)):
            current = combo.currentText()
            if [combo.itemText(i) for i in range(combo.count())] != names:
                combo.blockSignals(True)
                combo.clear()
                combo.addItems(names)
                index = names.index(current) if current in names else min(default,
                                                                          len(names) - 1)
                combo.setCurrentIndex(index)
                combo.blockSignals(False)
        self._redraw()

    def _redraw(self, *_args) -> None:
        x_name, y_name = self.x_combo.currentText(), self.y_combo.currentText()
        for text in self.texts:
            self.plot.removeItem(text)
        self.texts = []
        self.grid = None
        if self.x_combo.count() < 2:
            self._show_message("The heatmap needs two searched parameters (tick a second one, "
                               "e.g. momentum beside lr).")
            return
        try:
            grid = grid_2d(self._trials, x_name, y_name)
        except LabError as exc:
            self._show_message(exc.message[0].upper() + exc.message[1:] + ".")
            return
        self.grid = grid
        self.message.hide()
        self.plot.show()
        shown, log = color_scale(grid.best)
        low, high = color_levels(shown)
        fractions = np.clip((shown - low) / (high - low), 0, 1)
        rgba = self._lut[np.nan_to_num(fractions * 255, nan=0).astype(np.int64)].copy()
        rgba[~np.isfinite(shown), 3] = 0  # empty cells transparent: "no trial", not "bad"
        self.image.setImage(rgba, autoLevels=False, levels=(0, 255))
        self.colorbar.setLevels((low, high))
        self.colorbar.axis.setLabel("best objective (log10)" if log else "best objective")
        item = self.plot.plotItem
        item.getAxis("bottom").setTicks([list(enumerate(grid.x.labels))])
        item.getAxis("left").setTicks([list(enumerate(grid.y.labels))])
        item.setLabel("bottom", x_name + (" (log bins)" if grid.x.log else ""))
        item.setLabel("left", y_name + (" (log bins)" if grid.y.log else ""))
        self.image.setRect(-0.5, -0.5, len(grid.x.labels), len(grid.y.labels))
        if grid.best.size <= MAX_CELL_TEXTS:
            for i in range(grid.best.shape[0]):
                for j in range(grid.best.shape[1]):
                    value = grid.best[i, j]
                    fraction = (shown[i, j] - low) / (high - low)
                    # Dark text on the bright (good) cells, light text on the dark ones.
                    color = ("#808080" if not math.isfinite(value)
                             else "#101010" if fraction < 0.55 else "#f0f0f0")
                    text = pg.TextItem("–" if not math.isfinite(value) else f"{value:.3g}",
                                       color=color, anchor=(0.5, 0.5))
                    text.setPos(j, i)
                    self.plot.addItem(text)
                    self.texts.append(text)
        item.setRange(xRange=(-0.5, len(grid.x.labels) - 0.5),
                      yRange=(-0.5, len(grid.y.labels) - 0.5), padding=0.02)

    def _show_message(self, text: str) -> None:
        self.message.setText(text)
        self.message.show()
        self.plot.hide()


# -- parallel coordinates ------------------------------------------------------------------------


class ParallelCoordsPlot(pg.PlotWidget):
    """Every complete trial as a line across one axis per parameter and the objective."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("parallelCoordsPlot")
        self.setMenuEnabled(False)
        self.setToolTip("One line per complete trial over each parameter's search range "
                        "(bottom = low, top = high; log ranges on a log scale) and the "
                        "objective; brighter lines are better trials, the best is thickest.")
        item = self.plotItem
        item.hideButtons()
        item.hideAxis("left")
        item.getAxis("bottom").setLabel("")
        self.lines: list[pg.PlotCurveItem] = []
        self.labels: list[pg.TextItem] = []
        self.data = None

    def update_trials(self, trials: Sequence) -> None:
        item = self.plotItem
        for line in self.lines:
            item.removeItem(line)
        for label in self.labels:
            item.removeItem(label)
        self.lines, self.labels = [], []
        par = parallel_coordinates(trials)
        self.data = par
        n_axes = len(par.names)
        x = np.arange(n_axes, dtype=np.float64)
        item.getAxis("bottom").setTicks([list(enumerate(par.names))])
        for k in range(n_axes):
            axis = pg.PlotCurveItem([k, k], [0, 1], pen=pg.mkPen(FOREGROUND, width=1))
            item.addItem(axis)
            self.lines.append(axis)
            low, high = par.ticks[k]
            for text, y, anchor in ((high, 1.0, (0.5, 1.0)), (low, 0.0, (0.5, 0.0))):
                label = pg.TextItem(text, color=FOREGROUND, anchor=anchor)
                label.setPos(k, y)
                item.addItem(label)
                self.labels.append(label)
        if len(par.values):
            order = np.argsort(-par.values)  # worst first, so the best are drawn on top
            fractions = par.positions[:, -1]
            best = int(np.argmin(par.values))
            for r in order:
                width = 3 if r == best else 1
                pen = pg.mkPen(_value_color(fractions[r], 220), width=width)
                line = pg.PlotCurveItem(x, par.positions[r], pen=pen)
                item.addItem(line)
                self.lines.append(line)
        item.setRange(xRange=(-0.3, n_axes - 0.7), yRange=(-0.12, 1.12), padding=0)


# -- importance ----------------------------------------------------------------------------------


class ImportanceView(QWidget):
    """Optuna's parameter importances (fANOVA) as horizontal bars, or why there are none."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.plot = named_plot("importancePlot")
        self.plot.setMenuEnabled(False)
        self.plot.plotItem.hideButtons()
        self.plot.setToolTip("How much of the objective's variation each parameter explains "
                             "(Optuna's fANOVA importance; the bars sum to 1).")
        self.plot.plotItem.setLabel("bottom", "importance")
        self.message = _message_label("importanceMessage")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.message)
        layout.addWidget(self.plot, 1)
        self.bars = None
        self.importances: dict[str, float] | None = None
        self.texts: list[pg.TextItem] = []
        self.set_importance(None, "Importance appears once the sweep has finished trials.")

    def set_importance(self, importances: dict[str, float] | None, message: str) -> None:
        item = self.plot.plotItem
        if self.bars is not None:
            item.removeItem(self.bars)
            self.bars = None
        for text in self.texts:
            item.removeItem(text)
        self.texts = []
        self.importances = importances
        if not importances:
            self.message.setText(message)
            self.message.show()
            self.plot.hide()
            return
        self.message.hide()
        self.plot.show()
        names = list(importances)[::-1]  # largest at the top
        values = np.array([importances[n] for n in names])
        self.bars = pg.BarGraphItem(x0=0, y=np.arange(len(names)), height=0.6, width=values,
                                    brush=pg.mkBrush("#3d7fd9"), pen=pg.mkPen(None))
        item.addItem(self.bars)
        for k, value in enumerate(values):
            text = pg.TextItem(f"{value:.2f}", color=FOREGROUND, anchor=(0, 0.5))
            text.setPos(value, k)
            item.addItem(text)
            self.texts.append(text)
        item.getAxis("left").setTicks([list(enumerate(names))])
        item.setRange(xRange=(0, max(1.0, values.max() * 1.15)),
                      yRange=(-0.6, len(names) - 0.4), padding=0)


# -- all of them ---------------------------------------------------------------------------------


class SweepViews(QTabWidget):
    """The six views in tabs; ``update_trials`` redraws them from the study's trials."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("sweepViews")
        self.table = TrialsTable()
        self.best_plot = BestSoFarPlot()
        self.heatmap = HeatmapView()
        self.isolation = IsolationView()
        self.parallel = ParallelCoordsPlot()
        self.importance = ImportanceView()
        for widget, title, tip in (
            (self.table, "Trials", "Every trial: parameters, objective, state"),
            (self.best_plot, "Best so far", "The best objective found after each trial"),
            (self.heatmap, "Heatmap", "Best objective over two parameters"),
            (self.isolation, "Isolation", "Best objective per value of one parameter, the "
             "others optimized away (app/tools/isolation_view.py)"),
            (self.parallel, "Parallel coordinates", "Every trial across all parameters"),
            (self.importance, "Importance", "Which parameter matters most (Optuna's fANOVA)"),
        ):
            index = self.addTab(widget, title)
            self.setTabToolTip(index, tip)

    def update_trials(self, trials: Sequence, header: list[str], rows: list[list]) -> None:
        self.table.set_rows(header, rows)
        self.best_plot.update_trials(trials)
        self.heatmap.update_trials(trials)
        self.isolation.update_trials(trials)
        self.parallel.update_trials(trials)
