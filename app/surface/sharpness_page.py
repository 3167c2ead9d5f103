"""The Sharpness page of the Surface tab: the top Hessian eigenvalue along each run.

`SharpnessPlot` draws λ_max per run against the step with its edge-of-stability line (dashed,
the run's colour). A race that tracks sharpness gives each run its own line: 2/lr for gradient
descent, (2+2β)/lr for heavy-ball momentum, and for Adam/RMSprop the curve is the
*preconditioned* sharpness λ₁(P⁻¹H) against (2+2β₁)/((1−β₁)·lr) or 2/lr
(core/landscape/adaptive_edge.py); a run whose optimizer has no known edge gets no line, and its
legend entry says so. On-demand measurements (no optimizer state) keep the plain 2/lr line. Its points come live from the race's `NetworkHistory` when the lab
tracks sharpness (``problem.sharpness_every``; redrawn only when new points arrived and the page
is visible), else from on-demand measurements. A measurement whose eigensolver did not converge
(NaN, `core.landscape.eigensolver`) is a gap in its curve, listed in the plot's title as
"not converged" (`not_converged_note`).

`SharpnessPage` holds the plot, the Measure button and the line saying where the curves come from,
and keeps the last on-demand value of each run (the comparison table and the info line read it).
"""

from __future__ import annotations

import math
from html import escape

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.widgets.curves import add_key_row
from core.landscape.live import SharpnessUpdate

EDGE_LEGEND = ("dashed, run colour: that run's edge of stability — 2/lr gradient descent, "
               "(2+2β)/lr momentum, (2+2β₁)/((1−β₁)lr) Adam, 2/lr RMSprop")
PRECONDITIONED = "λ₁(P⁻¹H)"  # legend suffix of an Adam/RMSprop run's preconditioned curve
NO_EDGE = "no known edge"  # legend suffix of a run whose optimizer has none (no line drawn)
MAX_DOTS = 200
NOTE_STEPS = 4  # not-converged steps named per run in the plot's title (then a count)


def not_converged_note(labels: list[str], missing: dict[int, np.ndarray]) -> str:
    """The plot title naming each run's not-converged measurements ("" when none)."""
    parts = []
    for run, steps in sorted(missing.items()):
        if not len(steps):
            continue
        label = escape(labels[run]) if run < len(labels) else f"run {run}"
        shown = ", ".join(str(int(s)) for s in steps[:NOTE_STEPS])
        more = f" … ({len(steps)} in all)" if len(steps) > NOTE_STEPS else ""
        word = "step" if len(steps) == 1 else "steps"
        parts.append(f"{label} at {word} {shown}{more}")
    if not parts:
        return ""
    return ("<span style='color:#e0b060'>not converged (gaps): " + "; ".join(parts)
            + "</span>")


def _gapped(steps: np.ndarray, values: np.ndarray, ok: np.ndarray):
    """The drawable points and pyqtgraph's ``connect`` array: no segment across a point that
    is not drawn (a not-converged measurement), so it shows as a gap."""
    index = np.flatnonzero(ok)
    connect = np.zeros(len(index), dtype=bool)
    if len(index) > 1:
        connect[:-1] = np.diff(index) == 1
    return steps[index], values[index], connect


class SharpnessPlot(pg.PlotWidget):
    """λ_max per run vs step (solid, dots) and its 2/lr edge-of-stability line (dashed).

    Fed either by the race's own tracked sharpness (`show_history`: redrawn only when new
    points arrived, and only while the plot is visible) or by on-demand measurements
    (`set_series`)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("sharpnessPlot")
        self.setMenuEnabled(False)
        self.plotItem.setLabel("bottom", "step")
        self.plotItem.setLabel("left", "sharpness λ_max or λ₁(P⁻¹H)")
        self.plotItem.setLogMode(y=True)
        add_key_row(self.plotItem)  # above the data, never over a curve (app/widgets/curves.py)
        self.items: dict[int, tuple[pg.PlotDataItem, pg.PlotDataItem]] = {}
        self.series: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self.labels: list[str] = []
        self.colors: list[str] = []
        self._history = None  # the tracked history waiting to be drawn (None: nothing new)
        self._drawn_counts: tuple[int, ...] = ()
        # Per run: steps whose measurement did not converge (NaN), named in the title.
        self.not_converged: dict[int, np.ndarray] = {}
        # One neutral legend entry explains every dashed line (not one entry per run).
        self._edge_sample = pg.PlotDataItem(
            pen=pg.mkPen(200, 200, 200, width=1, style=Qt.PenStyle.DashLine))
        self.setToolTip("Sharpness (top Hessian eigenvalue λ_max) along each run. Dashed, in "
                        "the run's colour: its edge of stability — gradient descent at learning "
                        "rate lr is stable only while λ_max < 2/lr; with momentum β the edge is "
                        "(2+2β)/lr; Adam and RMSprop are drawn as their preconditioned "
                        "sharpness λ₁(P⁻¹H) against 38/lr (Adam, β₁ = 0.9) or 2/lr (RMSprop).")

    def set_runs(self, labels: list[str], colors: list[str]) -> None:
        self.labels, self.colors = list(labels), list(colors)
        self.clear_series()

    def clear_series(self) -> None:
        for pair in self.items.values():
            for item in pair:
                self.removeItem(item)
        self.items, self.series = {}, {}
        self.plotItem.legend.clear()
        self._history = None
        self._drawn_counts = ()
        self.not_converged = {}
        self.plotItem.setTitle(None)

    def show_history(self, history) -> bool:
        """Draw a `core.engine.history.NetworkHistory`'s tracked sharpness if it has new points.

        Cheap to call every frame: it compares point counts; a hidden plot only remembers the
        history and draws when shown. True when the history tracks sharpness at all."""
        tracked = getattr(history, "sharpness", None)
        if tracked is None:
            return False
        counts = tuple(len(series) for series in tracked)
        if counts != self._drawn_counts:
            self._history = history
            if self.isVisible():
                self._draw_history()
        return True

    def _draw_history(self) -> None:
        history, self._history = self._history, None
        if history is None:
            return
        counts = tuple(len(series) for series in history.sharpness)
        for run, count in enumerate(counts):
            seen = self._drawn_counts[run] if run < len(self._drawn_counts) else -1
            if count != seen and run < len(self.labels):
                _, preconditioned, edge = history.edge_series(run)
                self.set_series(run, self.labels[run], self.colors[run],
                                *history.sharpness_series(run), edge=edge,
                                preconditioned=preconditioned)
        self._drawn_counts = counts

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        self._draw_history()

    def set_series(self, run: int, label: str, color: str, steps, sharpness, lr,
                   edge=None, preconditioned=None) -> None:
        """Run ``run``'s curve and dashed edge line. ``edge`` (the race's own per-run threshold,
        NaN where its optimizer has none) replaces 2/lr; ``preconditioned`` with any finite
        value (Adam/RMSprop) is drawn instead of the raw sharpness, as the legend says."""
        steps = np.asarray(steps, dtype=np.float64)
        sharpness = np.asarray(sharpness, dtype=np.float64)
        lr = np.asarray(lr, dtype=np.float64)
        self.series[run] = (steps, sharpness, lr)
        kind = ""
        if preconditioned is not None and np.isfinite(preconditioned).any():
            kind = PRECONDITIONED
            finite = np.flatnonzero(np.isfinite(preconditioned))
            # Before the optimizer's first update there is no P (no gap worth naming); after
            # it a NaN is a solve that did not converge.
            missing = steps[finite[0]:][np.isnan(preconditioned[finite[0]:])]
            sharpness = np.asarray(preconditioned, dtype=np.float64)
        else:
            missing = steps[np.isnan(sharpness)]
            if edge is not None and len(edge) and not np.isfinite(edge).any():
                kind = NO_EDGE
        name = f"{label} — {kind}" if kind else label
        if run not in self.items:
            line = pg.PlotDataItem(pen=pg.mkPen(color, width=2), symbol="o", symbolSize=4,
                                   symbolBrush=color, symbolPen=None, name=name)
            edge_pen = pg.mkPen(color, width=1.5, style=Qt.PenStyle.DashLine)
            edge_line = pg.PlotDataItem(pen=edge_pen)  # explained once, by the grey entry
            self.addItem(line)
            self.addItem(edge_line)
            self.items[run] = (line, edge_line)
            legend = self.plotItem.legend
            legend.removeItem(self._edge_sample)  # keep the explanation last
            legend.addItem(self._edge_sample, EDGE_LEGEND)
        line, edge_item = self.items[run]
        if line.name() != name:  # the run turned out adaptive (its first P) or edgeless
            line.opts["name"] = name
            legend = self.plotItem.legend
            legend.removeItem(line)
            legend.removeItem(self._edge_sample)
            legend.addItem(line, name)
            legend.addItem(self._edge_sample, EDGE_LEGEND)
        ok = np.isfinite(sharpness) & (sharpness > 0)  # ≤ 0 has no place on the log axis
        # Dots mark the measured steps while they are few enough to tell apart.
        line.setSymbol("o" if int(ok.sum()) <= MAX_DOTS else None)
        xs, ys, connect = _gapped(steps, sharpness, ok)
        line.setData(xs, ys, connect=connect)
        self.not_converged[run] = missing
        note = not_converged_note(self.labels, self.not_converged)
        self.plotItem.setTitle(note or None, size="9pt")
        if edge is not None:
            edge = np.asarray(edge, dtype=np.float64)
            good = np.isfinite(edge) & (edge > 0)
            edge_item.setData(steps[good], edge[good])
        else:
            good = np.isfinite(lr) & (lr > 0)
            edge_item.setData(steps[good], 2.0 / lr[good])


class SharpnessPage(QWidget):
    """The Measure button, where the curves come from, the edge-of-stability note, the plot."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.plot = SharpnessPlot()
        self.every = 0  # the lab's problem.sharpness_every (0: not tracked)
        self.tracked = False  # the race's history carries sharpness
        self.measured: dict[int, float] = {}  # each run's last on-demand value (NaN: failed)
        row = QHBoxLayout()
        row.setContentsMargins(6, 4, 6, 0)
        self.button = QPushButton("Measure sharpness", objectName="sharpnessCompute")
        self.source = QLabel(objectName="sharpnessSource")
        self.source.setWordWrap(True)
        self.source.setTextFormat(Qt.TextFormat.RichText)
        self.source.setToolTip(
            "Where the curves come from: the race's own tracking (problem.sharpness_every, set "
            "in the network problem's Training box) or an on-demand measurement.")
        note = QLabel("Gradient descent at learning rate lr is stable only while "
                      "λ_max &lt; 2/lr: the <i>edge of stability</i>. Each run's own edge is "
                      "dashed in its colour: (2+2β)/lr with momentum β; Adam and RMSprop "
                      "precondition by P = diag(√v̂+ε), so their curve is λ₁(P⁻¹H) against "
                      "38/lr (Adam, β₁ = 0.9) or 2/lr (RMSprop). Other optimizers have no "
                      "known edge and no line. (Measure sharpness, which has no optimizer "
                      "state, draws 2/lr only.)")
        note.setWordWrap(True)
        note.setTextFormat(Qt.TextFormat.RichText)
        note.setToolTip("Cohen et al. 2021, 'Gradient descent on neural networks typically "
                        "occurs at the edge of stability': at a fixed lr, the sharpness of "
                        "full-batch gradient descent rises until it reaches 2/lr and then "
                        "hovers there.")
        text = QVBoxLayout()
        text.setSpacing(0)
        text.addWidget(self.source)
        text.addWidget(note)
        row.addWidget(self.button, 0, Qt.AlignmentFlag.AlignTop)
        row.addLayout(text, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.plot, 1)
        self.show_source()

    def show_source(self) -> None:
        """Say on the page where sharpness comes from; the button only where it is needed."""
        tracking = self.tracked or self.every > 0
        self.button.setEnabled(not tracking)
        if tracking:
            every = f" every {self.every} steps" if self.every > 0 else ""
            self.source.setText(
                f"This lab tracks sharpness{every} while it trains: the curves grow live "
                f"with the race.")
            self.button.setToolTip(
                "Not needed: this lab tracks sharpness while it trains (problem.sharpness_every)."
                " Set it to 0 in the network problem to measure on demand instead.")
        else:
            self.source.setText(
                "This lab does not track sharpness while it trains (set <b>Track sharpness "
                "every</b> in the network problem's Training box to do so): <b>Measure "
                "sharpness</b> computes it now, at up to 12 kept steps of each run.")
            self.button.setToolTip(
                "Top Hessian eigenvalue (Lanczos on Hessian-vector products) at up to 12 kept "
                "steps of each run, on the full training set. A measurement that does not "
                "converge is a gap, named in the plot's title.")

    def set_runs(self, labels: list[str], colors: list[str]) -> None:
        """A new race: no curves, no measurements, tracking as the lab says."""
        self.plot.set_runs(labels, colors)
        self.measured = {}
        self.tracked = False
        self.show_source()

    def set_every(self, every: int) -> None:
        """The lab's problem.sharpness_every (0: it does not track sharpness)."""
        self.every = max(0, int(every))
        self.show_source()

    def show_history(self, history) -> None:
        """The race's `NetworkHistory`, each frame: its tracked sharpness (only new points are
        drawn)."""
        tracked = self.plot.show_history(history)
        if tracked and not self.tracked:
            self.tracked = True
            self.show_source()

    def clear_measurements(self) -> None:
        """Before an on-demand measurement: no curves, no values."""
        self.plot.clear_series()
        self.measured = {}

    def add_measurement(self, update: SharpnessUpdate, label: str, color: str) -> None:
        """One run's on-demand measurement: its curve and its last value."""
        self.plot.set_series(update.run, label, color, update.steps, update.sharpness, update.lr)
        self.measured[update.run] = float(update.sharpness[-1])

    def value(self, run: int) -> float:
        """Run ``run``'s last on-demand measurement (NaN when none, or when it did not
        converge: `has_value` tells the two apart)."""
        return self.measured.get(run, math.nan)

    def has_value(self, run: int) -> bool:
        """Whether run ``run`` has an on-demand measurement (converged or not)."""
        return run in self.measured
