"""The scorecard window's views (app/tools/scorecard_window.py runs the scorecard).

* `ProfilePlot` — the performance profiles ρ(τ), τ ∈ [1, 4], one step curve per entry, drawn
  from a `core.tools.scorecard.live.LiveTables` (the math is core/tools/scorecard/profiles.py's);
  it fills in as studies finish.
* `TimesTable` — time to target per entry (rows) and workload (columns) in steps, a miss and a
  base voided by a missed held-out variant marked, each entry's score B; double-clicking a cell
  asks for its best trial (``cell_opened``), which the window opens as a lab; selecting one
  (``cell_selected``) asks for its trials' curves.
* the trials plot (`make_trials_plot` / `show_trials`) — every trial of the selected entry ×
  workload (all studies) as its target metric against step, read from the storage by
  core/tools/scorecard/curves.py: each study's best trial bright, the others faint, the target
  dashed across, the budget a vertical line, a dot where a best trial reached the target; log
  y where the values span more than a decade.
"""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QAbstractItemView, QTableWidget, QTableWidgetItem

from app.widgets.curves import add_key_row
from app.widgets.plot_style import named_plot
from core.lab.format import RUN_COLORS
from core.tools.scorecard.cell_curves import CellCurves
from core.tools.scorecard.live import LiveTables
from core.tools.scorecard.profiles import TAU_MAX

MISS_COLOR = QColor("#ff6b6b")
TARGET_COLOR = "#e6e6e6"
BUDGET_COLOR = "#9a9a9a"
LOG_SPAN = 10.0  # values spanning more than a decade get a log y axis (a target near 0 shows)
TRIALS_EMPTY_TITLE = "Trials of a cell: select a time in the table"
VOID_COLOR = QColor("#e6c35c")


def staircase(points: list[tuple[float, float]], tau_max: float = TAU_MAX):
    """The (x, y) of a step curve through ``points`` (τ, ρ at its jumps) out to ``tau_max``."""
    xs, ys = [], []
    for i, (tau, value) in enumerate(points):
        end = points[i + 1][0] if i + 1 < len(points) else tau_max
        xs += [tau, end]
        ys += [value, value]
    return xs, ys


def make_profile_plot() -> pg.PlotWidget:
    """The ρ(τ) plot: τ from 1 to 4, ρ from 0 to 1, a legend of entries with their B."""
    plot = named_plot("scorecardProfilePlot")
    plot.setToolTip("Performance profiles: for each entry, the fraction of workloads it reached "
                    "within τ times the fastest entry's time (higher and further left is "
                    "better)")
    item = plot.getPlotItem()
    item.setLabel("bottom", "τ  (time ÷ the fastest entry's time)")
    item.setLabel("left", "ρ(τ)  (fraction of workloads)")
    item.setXRange(1.0, TAU_MAX, padding=0.02)
    item.setYRange(0.0, 1.0, padding=0.05)
    item.showGrid(x=True, y=True, alpha=0.25)
    item.setMouseEnabled(x=False, y=False)
    # The key is a row above the data (app/widgets/curves.py): a box in the corner covered
    # the best curves where they end, at the top right.
    plot.legend = add_key_row(item)
    plot.curves = {}
    return plot


def show_profiles(plot: pg.PlotWidget, live: LiveTables) -> None:
    """Redraw ``plot``'s curves from ``live`` (an entry's curve named by its B so far)."""
    item = plot.getPlotItem()
    for curve in plot.curves.values():
        item.removeItem(curve)
    plot.legend.clear()
    plot.curves = {}
    if not any(live.raw()[e] for e in live.entries):
        return  # no workload begun yet: nothing to draw
    scores = live.scores()
    count = len(live.entries)
    for i, entry in enumerate(live.entries):
        xs, ys = staircase(live.profile(entry))
        color = RUN_COLORS[i % len(RUN_COLORS)]
        # Equal profiles lie on top of each other: the earlier a curve, the wider it is drawn,
        # so every colour still shows along a shared stretch.
        width = 2.0 + min(4.0, 1.2 * (count - 1 - i))
        curve = item.plot(xs, ys, pen=pg.mkPen(color, width=width),
                          name=f"{entry}  B = {scores[entry]:.3f}")
        plot.curves[entry] = curve


def make_trials_plot() -> pg.PlotWidget:
    """The trials plot of the selected cell (empty until a cell is selected)."""
    plot = named_plot("scorecardTrialsPlot")
    plot.setToolTip("Every trial of the selected entry and workload: its target metric "
                    "against step, each study's best trial bright, the others faint; the "
                    "dashed line is the target, the vertical line the budget")
    item = plot.getPlotItem()
    item.setTitle(TRIALS_EMPTY_TITLE, size="10pt")
    item.setLabel("bottom", "step")
    item.showGrid(x=True, y=True, alpha=0.25)
    plot.legend = add_key_row(item)
    plot.trial_curves, plot.crossings, plot.target_line, plot.budget_line = [], [], None, None
    plot.cell = None
    return plot


def _span_decades(cell: CellCurves) -> bool:
    values = [v for t in cell.trials for v in t.values if v is not None]
    return bool(values) and min(values) > 0 and max(values) / min(values) > LOG_SPAN


def show_trials(plot: pg.PlotWidget, cell: CellCurves | None) -> None:
    """Draw ``cell``'s trials on ``plot`` (None: clear it). A trial without a stored curve (a
    storage from before curves were kept) draws nothing; the title says how many have one."""
    item = plot.getPlotItem()
    for drawn in [*plot.trial_curves, *plot.crossings, plot.target_line, plot.budget_line]:
        if drawn is not None:
            item.removeItem(drawn)
    plot.legend.clear()
    plot.trial_curves, plot.crossings, plot.target_line, plot.budget_line = [], [], None, None
    plot.cell = cell
    if cell is None:
        item.setTitle(TRIALS_EMPTY_TITLE, size="10pt")
        return
    drawn = [t for t in cell.trials if t.steps]
    studies = len({t.study for t in cell.trials})
    title = f"Trials of {cell.entry} on {cell.workload}"
    if len(drawn) < len(cell.trials):
        title += f"  ({len(cell.trials) - len(drawn)} trial(s) stored without a curve)"
    item.setTitle(title, size="10pt")
    item.setLabel("left", cell.metric)
    log = _span_decades(cell)
    item.setLogMode(x=False, y=log)
    faint_named = False
    # The faint ones first, so each study's best trial is drawn over them.
    for trial in sorted(drawn, key=lambda t: (t.best, t.study, t.trial)):
        color = QColor(RUN_COLORS[trial.study % len(RUN_COLORS)])
        ys = [math.nan if v is None else v for v in trial.values]
        if trial.best:
            pen = pg.mkPen(color, width=2.5)
            time = f"{trial.steps_to_target} steps" if trial.steps_to_target else "miss"
            name = (f"best of study {trial.study}" if studies > 1 else "best trial") + \
                f" (lr {trial.lr:.3g}): {time}"
        else:
            color.setAlpha(90)
            pen = pg.mkPen(color, width=1.0)
            name = None if faint_named else "other trials"
            faint_named = True
        curve = item.plot(list(trial.steps), ys, pen=pen, name=name, connect="finite")
        curve.trial = trial
        plot.trial_curves.append(curve)
        if trial.best and trial.steps_to_target in trial.steps:  # where it reached the target
            at = trial.steps.index(trial.steps_to_target)
            plot.crossings.append(item.plot([trial.steps[at]], [trial.values[at]], pen=None,
                                            symbol="o", symbolSize=8, symbolPen=None,
                                            symbolBrush=QColor(RUN_COLORS[trial.study
                                                                          % len(RUN_COLORS)])))
    plot.target_line = item.plot([0, cell.budget], [cell.target, cell.target],
                                 pen=pg.mkPen(TARGET_COLOR, width=1.5,
                                              style=Qt.PenStyle.DashLine),
                                 name=f"target {cell.target:.4g}")
    finite = [v for t in drawn for v in t.values if v is not None and (v > 0 or not log)]
    low = min([cell.target, *finite])
    high = max([cell.target, *finite])
    plot.budget_line = item.plot([cell.budget, cell.budget], [low, high],
                                 pen=pg.mkPen(BUDGET_COLOR, width=1.5),
                                 name=f"budget {cell.budget} steps")
    item.enableAutoRange()


class TimesTable(QTableWidget):
    """Entries × workloads: steps to target, misses and voided bases marked, the score B."""

    cell_opened = Signal(str, str)  # entry, workload: open its best trial as a lab
    cell_selected = Signal(str, str)  # entry, workload: draw its trials

    def __init__(self, parent=None):
        super().__init__(0, 0, parent)
        self.setObjectName("scorecardTable")
        self.setToolTip("Steps to the target per entry and workload: the median over the "
                        "studies of each study's fastest trial. miss: never reached (hover for "
                        "why); voided: the entry missed the workload's held-out variant. "
                        "Double-click a time to open its best trial as a lab.")
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.verticalHeader().setVisible(True)
        self.cellDoubleClicked.connect(self._double_clicked)
        self.currentCellChanged.connect(self._selected)
        self.entries: list[str] = []
        self.workloads: list[str] = []

    def show_live(self, live: LiveTables, workloads: list[str]) -> None:
        """Fill the table from ``live``: ``workloads`` as columns (a column not begun: "…")."""
        self.entries, self.workloads = list(live.entries), list(workloads)
        raw, times, scores = live.raw(), live.times(), live.scores()
        grad_scores = live.scores("grad_evals")
        heldout = live.heldout_times()
        self.setRowCount(len(self.entries))
        self.setColumnCount(len(self.workloads) + 2)
        headers = [*self.workloads, "B (steps)", "B (grad evals)"]
        for column, text in enumerate(headers):
            item = QTableWidgetItem(text)
            if column < len(self.workloads):
                variant = live.variants.get(text)
                item.setToolTip(f"{text}: steps to its target"
                                + (f"; held-out variant {variant}" if variant else ""))
            else:
                item.setToolTip("B = ∫₁⁴ ρ(τ) dτ / 3: 1 for the fastest entry everywhere, 0 "
                                "for one that misses everything")
            self.setHorizontalHeaderItem(column, item)
        self.setVerticalHeaderLabels(self.entries)
        for row, entry in enumerate(self.entries):
            for column, workload in enumerate(self.workloads):
                self.setItem(row, column, self._cell(live, entry, workload, raw, times, heldout))
            for offset, value in enumerate((scores, grad_scores)):
                shown = f"{value[entry]:.3f}" if raw[entry] else "…"
                item = QTableWidgetItem(shown)
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                self.setItem(row, len(self.workloads) + offset, item)
        self.resizeColumnsToContents()

    @staticmethod
    def _cell(live: LiveTables, entry: str, workload: str, raw, times, heldout) -> QTableWidgetItem:
        if workload not in raw[entry]:
            item = QTableWidgetItem("…")
            item.setToolTip("Not begun yet")
        elif math.isfinite(times[entry][workload]):
            best = live.best(entry, workload)
            item = QTableWidgetItem(f"{times[entry][workload]:g}")
            item.setToolTip(f"median steps to target; best trial {best.row['trial']} "
                            f"(lr {best.row['lr']:.4g}, study {best.study}) — double-click to "
                            "open it as a lab" if best else "median steps to target")
        elif math.isfinite(raw[entry][workload]):
            variant = live.variants.get(workload, "")
            item = QTableWidgetItem(f"voided ({raw[entry][workload]:g})")
            item.setForeground(QBrush(VOID_COLOR))
            item.setToolTip(f"Reached in {raw[entry][workload]:g} steps, but the held-out "
                            f"variant {variant} was missed "
                            f"({live.reason(entry, variant) or 'no time'}), so it counts as a "
                            "miss")
        else:
            item = QTableWidgetItem("miss")
            item.setForeground(QBrush(MISS_COLOR))
            item.setToolTip(live.reason(entry, workload) or "the median study missed the target")
        item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
        return item

    def selected_cell(self) -> tuple[str, str] | None:
        """The (entry, workload) of the current cell, None off the workload columns."""
        row, column = self.currentRow(), self.currentColumn()
        if 0 <= row < len(self.entries) and 0 <= column < len(self.workloads):
            return self.entries[row], self.workloads[column]
        return None

    def _selected(self, *_args) -> None:
        cell = self.selected_cell()
        if cell is not None:
            self.cell_selected.emit(*cell)

    def _double_clicked(self, row: int, column: int) -> None:
        if 0 <= row < len(self.entries) and 0 <= column < len(self.workloads):
            self.cell_opened.emit(self.entries[row], self.workloads[column])
