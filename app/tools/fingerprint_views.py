"""What the Fingerprint window (app/tools/fingerprint_window.py) shows of one fingerprint.

* `FingerprintTable`: one row per property of core/optim/fingerprint.py (`PROPERTIES` order): a
  verdict mark, the property, what was measured and what theory says, the texts the command
  line's card prints (``main.py fingerprint``), each property explained in its tooltip.
* `FingerprintPlots`: three plots drawn from the series each `Measurement` keeps in ``traces``:
  the gap between the trajectory on c·f and the one on f at every step (``fingerprintScalePlot``),
  the update RMS and the effective step over the run (``fingerprintUpdatePlot``), and the lrs the
  bisection of the stable lr tried (``fingerprintStabilityPlot``). Their "What is this plot?"
  paragraphs are in app/shell/plot_help.py.

`verdict` decides a row's mark: ✓ / ✗ for the yes/no properties (scale invariance, rotation
equivariance), ✓ for a stable lr within `THEORY_MATCH` of a closed form and ✗ beyond it, "·"
for a number with nothing to hold it against, "!" for a probe that failed, "–" where the
property does not apply.
"""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from app.widgets.curves import add_key_row
from app.widgets.plot_style import named_plot
from core.optim.fingerprint import (
    FAILED,
    INVARIANCE_TOL,
    NOT_APPLICABLE,
    PROPERTIES,
    Fingerprint,
    Measurement,
)

THEORY_MATCH = 0.01  # a stable lr within 1 % of the closed form "matches theory"
GOOD, BAD, NEUTRAL = "#5cb85c", "#ff6b6b", "#9aa0a6"
SERIES_COLORS = ("#56b4e9", "#e69f00", "#009e73")
LOG_FLOOR = 1e-18  # a gap of exactly 0 (identical runs) is drawn here on the log axis

PROPERTY_TIPS = {
    "scale": "Run the optimizer on f and on c·f (c = 10 and 0.1) from the same start. A method "
             "whose step depends only on the gradient's direction and relative size (sign "
             "methods, Adam up to its ε) follows the same path; gradient descent's step is c "
             "times larger, so its path differs. Invariant: the relative gap stays ≤ 1e-6, or "
             "the run on c·f is exactly the run on f with ε/c.",
    "rotation": "Rotate the coordinates by a random orthogonal R, run on f(R·x) and rotate the "
                "path back. Methods built from inner products (gradient descent, momentum) give "
                "the same path; per-coordinate methods (Adam, RMSprop, Adagrad, sign methods) "
                "do not, because their scaling depends on the axes.",
    "stable_lr": "The largest learning rate whose iterates stay bounded on ½·λ·‖x‖², found by "
                 "bisection between a stable and an unstable lr. Theory: 2/λ for gradient "
                 "descent, (2 + 2β)/λ for heavy-ball momentum β. Adam-type steps never blow up "
                 "here: their step is about lr per coordinate whatever the curvature.",
    "update": "How big the steps are over a 50-step run: the RMS of the update Δθ (as a "
              "multiple of lr) and the effective step ‖Δθ‖/(lr·‖g‖), which is 1 for gradient "
              "descent, grows toward 1/(1 − β) with momentum, and is about 1/RMS(g) for "
              "Adam-type methods.",
    "eps": "How much the path moves when ε is made 10 times larger or smaller: ε matters only "
           "where it is not small beside √v̂ ≈ |g|.",
}


def verdict(m: Measurement) -> tuple[str, str, str]:
    """(mark, colour, why) for a row of the table (see the module text)."""
    if m.status == FAILED:
        return "!", BAD, "The probe failed: the optimizer raised or diverged"
    if m.status == NOT_APPLICABLE:
        return "–", NEUTRAL, "Does not apply to this optimizer"
    if m.holds is not None:
        return ("✓", GOOD, "The property holds") if m.holds else (
            "✗", BAD, "The property does not hold")
    error = m.numbers.get("relative_error") if m.key == "stable_lr" else None
    if error is not None and math.isfinite(error):
        if abs(error) <= THEORY_MATCH:
            return "✓", GOOD, f"Within {100 * THEORY_MATCH:g} % of theory ({100 * error:+.3f} %)"
        return "✗", BAD, f"{100 * error:+.2f} % from theory (more than {100 * THEORY_MATCH:g} %)"
    return "·", NEUTRAL, "Measured; no closed form to hold it against"


class FingerprintTable(QTableWidget):
    """One row per property: mark, property, measured, theory (see the module text)."""

    COLUMNS = (("", "Verdict: ✓ holds or matches theory, ✗ does not, · measured, ! failed, "
                    "– does not apply"),
               ("Property", "What is measured (hover a row's property for the details)"),
               ("Measured", "What the probe measured on this optimizer"),
               ("Theory", "What theory says for this kind of optimizer"))

    def __init__(self, parent: QWidget | None = None):
        super().__init__(len(PROPERTIES), len(self.COLUMNS), parent)
        self.setObjectName("fingerprintTable")
        for column, (text, tip) in enumerate(self.COLUMNS):
            item = QTableWidgetItem(text)
            item.setToolTip(tip)
            self.setHorizontalHeaderItem(column, item)
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setWordWrap(True)
        self.setColumnWidth(0, 28)
        self.setColumnWidth(1, 170)
        self.setColumnWidth(2, 390)
        self.horizontalHeader().setStretchLastSection(True)
        self.setToolTip("The optimizer's fingerprint: each property measured, beside theory")
        self.clear_rows()

    def clear_rows(self) -> None:
        for row, key in enumerate(PROPERTIES):
            self._set(row, 0, "")
            self._set(row, 1, PROPERTIES[key], PROPERTY_TIPS[key])
            self._set(row, 2, "—")
            self._set(row, 3, "")
        self.resizeRowsToContents()

    def show_fingerprint(self, fp: Fingerprint) -> None:
        for row, m in enumerate(fp.results):
            mark, color, why = verdict(m)
            item = self._set(row, 0, mark, why)
            item.setForeground(QColor(color))
            item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
            font = item.font()
            font.setBold(True)
            item.setFont(font)
            self._set(row, 1, m.title, PROPERTY_TIPS[m.key])
            self._set(row, 2, m.measured, m.measured)
            self._set(row, 3, m.theory, m.theory)
        self.resizeRowsToContents()

    def cell_text(self, key: str, column: int) -> str:
        return self.item(list(PROPERTIES).index(key), column).text()

    def _set(self, row: int, column: int, text: str, tip: str = "") -> QTableWidgetItem:
        item = QTableWidgetItem(text)
        item.setToolTip(tip)
        self.setItem(row, column, item)
        return item


def _plot(name: str, title: str, x_label: str, y_label: str, tip: str) -> pg.PlotWidget:
    plot = named_plot(name)
    plot.setMenuEnabled(False)
    plot.setToolTip(tip)
    item = plot.plotItem
    item.setTitle(title, size="10pt")
    item.setLogMode(x=False, y=True)
    item.setLabel("bottom", x_label)
    item.setLabel("left", y_label)
    item.showGrid(x=True, y=True, alpha=0.15)
    add_key_row(item)
    return plot


def _dashed(color: str) -> pg.QtGui.QPen:
    return pg.mkPen(color, width=1.5, style=Qt.PenStyle.DashLine)


class FingerprintPlots(QWidget):
    """The scale, update and stability plots side by side (see the module text)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.scale_plot = _plot("fingerprintScalePlot", "Scale: path on c·f vs on f",
                                "step", "relative gap",
                                "Distance between the path on c·f and the path on f at each "
                                "step, over how far the path on f moved (log axis)")
        self.update_plot = _plot("fingerprintUpdatePlot", "Update size over the run", "step",
                                 "ratio", "Update RMS / lr and effective step ‖Δθ‖/(lr·‖g‖) "
                                          "at each step (log axis)")
        self.stability_plot = _plot("fingerprintStabilityPlot", "Bisection of the stable lr",
                                    "run of the search", "lr",
                                    "Each lr the search tried on ½·λ·‖x‖², in order: green "
                                    "stayed bounded, red blew up (log axis)")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for plot in self.plots():
            layout.addWidget(plot)

    def plots(self) -> tuple[pg.PlotWidget, ...]:
        return self.scale_plot, self.update_plot, self.stability_plot

    def clear(self) -> None:
        for plot in self.plots():
            plot.plotItem.clear()

    def show_fingerprint(self, fp: Fingerprint) -> None:
        self.clear()
        self._show_scale(fp.result("scale"))
        self._show_update(fp.result("update"))
        self._show_stability(fp.result("stable_lr"))

    def _show_scale(self, m: Measurement) -> None:
        item = self.scale_plot.plotItem
        for color, (name, gaps) in zip(SERIES_COLORS, m.traces.items()):
            # From step 1: at step 0 both paths are at x₀, a gap of 0 by construction.
            shown = [g if math.isfinite(g) and g > LOG_FLOOR else LOG_FLOOR for g in gaps[1:]]
            item.addItem(pg.PlotDataItem(list(range(1, len(shown) + 1)), shown,
                                         pen=pg.mkPen(color, width=2), name=name.replace("=", " = ")))
        if m.traces:
            item.addItem(pg.PlotDataItem(pen=_dashed(GOOD), name="invariant below"))
            item.addItem(pg.InfiniteLine(pos=math.log10(INVARIANCE_TOL), angle=0,
                                         pen=_dashed(GOOD)))

    def _show_update(self, m: Measurement) -> None:
        item = self.update_plot.plotItem
        names = {"update_rms_over_lr": "update RMS / lr", "effective_step": "effective step",
                 "update_rms": "update RMS"}
        for color, (key, series) in zip(SERIES_COLORS, m.traces.items()):
            shown = [v if math.isfinite(v) and v > LOG_FLOOR else LOG_FLOOR for v in series]
            item.addItem(pg.PlotDataItem(list(range(1, len(shown) + 1)), shown,
                                         pen=pg.mkPen(color, width=2), name=names[key]))

    def _show_stability(self, m: Measurement) -> None:
        item = self.stability_plot.plotItem
        tried = m.traces.get("tried", [])
        if not tried:
            return
        runs = list(range(1, len(tried) + 1))
        item.addItem(pg.PlotDataItem(runs, [lr for lr, _ in tried],
                                     pen=pg.mkPen(NEUTRAL, width=1)))
        for stable, color, name in ((True, GOOD, "stable"), (False, BAD, "unstable")):
            points = [(n, lr) for n, (lr, s) in zip(runs, tried) if s is stable]
            if points:
                item.addItem(pg.PlotDataItem([n for n, _ in points], [lr for _, lr in points],
                                             pen=None, symbol="o", symbolSize=7,
                                             symbolBrush=color, symbolPen=None, name=name))
        theory = m.numbers.get("theory")
        if theory:
            item.addItem(pg.PlotDataItem(pen=_dashed(SERIES_COLORS[1]), name="theory"))
            item.addItem(pg.InfiniteLine(pos=math.log10(theory), angle=0,
                                         pen=_dashed(SERIES_COLORS[1])))
