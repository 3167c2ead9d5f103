"""The network view's Spectra tab: the singular values of each optimizer's update ΔW.

Drawn from the history's ``update_spectra`` (core/engine/history.py; measured at every evaluation
by core/engine/update_spectra.py) for one weight matrix, picked in the layer box:

* over training, the selected run's singular values σ_i(ΔW) divided by its largest σ_1, one
  line each (log scale): Muon's orthogonalised update keeps them near 1 (flat), Adam's fans out;
* at the newest evaluation, every run's profile σ_i / σ_1 against i, in the runs' colours, to
  compare the optimizers side by side.

The tab draws itself while it is shown: a timer looks for a newer evaluation, another selected
run or another race (so app/network/views.py only adds it).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from app.network.race_state import ShownRace
from app.shell.theme import FOREGROUND
from app.widgets.curves import add_key_row

EMPTY_TEXT = ("The singular values of each run's update ΔW appear here after the first "
              "evaluation (for networks whose weight matrices are at most about 256 × 256). Try the matrix_regression or "
              "low_rank data set with Muon against Adam.")
REFRESH_MS = 500


def _normalised(values: np.ndarray) -> np.ndarray:
    """σ_i / σ_1, NaN when the update is zero or not finite (a stopped or diverged run)."""
    top = float(values[0]) if len(values) else 0.0
    if not np.isfinite(top) or top <= 0:
        return np.full(len(values), np.nan)
    return np.asarray(values, dtype=np.float64) / top


class SpectraTab(QWidget):
    """Singular values of the update of one weight matrix: the selected run over time, every
    run's profile at the newest evaluation."""

    def __init__(self, race: ShownRace, parent=None):
        super().__init__(parent)
        self.setObjectName("spectraTab")
        self.race = race
        self.caption = QLabel(EMPTY_TEXT, objectName="spectraCaption")
        self.caption.setWordWrap(True)
        self.layer_box = QComboBox(objectName="spectraLayer")
        self.layer_box.setToolTip("The weight matrix whose update is shown.")
        self.layer_box.currentIndexChanged.connect(lambda _: self.draw(force=True))

        self.time_plot = pg.PlotWidget()
        self.time_plot.setObjectName("updateSpectraPlot")  # PlotWidget drops the keyword
        self.time_plot.setMenuEnabled(False)
        self.time_plot.plotItem.setTitle("Selected run: σ_i(ΔW) / σ_1(ΔW) over training",
                                         color=FOREGROUND)
        self.time_plot.setLabel("bottom", "step")
        self.time_plot.setLogMode(y=True)
        self.time_curves: list[pg.PlotDataItem] = []

        self.profile_plot = pg.PlotWidget()
        self.profile_plot.setObjectName("updateProfilePlot")
        self.profile_plot.setMenuEnabled(False)
        self.profile_plot.plotItem.setTitle("Newest evaluation: every run's σ_i(ΔW) / σ_1(ΔW)",
                                            color=FOREGROUND)
        self.profile_plot.setLabel("bottom", "index i (largest first)")
        self.profile_plot.setLogMode(y=True)
        # A key row above the data: pyqtgraph's legend box covered the end of Muon's flat
        # profile, the curve this plot is there to show (app/widgets/curves.py).
        add_key_row(self.profile_plot.plotItem)
        self.profile_curves: list[pg.PlotDataItem] = []

        top = QHBoxLayout()
        top.addWidget(QLabel("Weight matrix:"))
        top.addWidget(self.layer_box)
        top.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.caption)
        layout.addLayout(top)
        layout.addWidget(self.time_plot, 3)
        layout.addWidget(self.profile_plot, 2)

        self._drawn: tuple | None = None  # (history, newest step, run, layer) last drawn
        self.timer = QTimer(self, interval=REFRESH_MS)
        self.timer.timeout.connect(self.draw)

    def showEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().showEvent(event)
        self.draw(force=True)
        self.timer.start()

    def hideEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        self.timer.stop()
        super().hideEvent(event)

    def draw(self, force: bool = False) -> None:
        """Redraw from the history when there is something new (or ``force``)."""
        history, run = self.race.history, self.race.selected_run
        stats = getattr(history, "update_spectra", None) or []
        key = (id(history), stats[-1][0] if stats else None, run, self.layer_box.currentIndex())
        if key == self._drawn and not force:
            return
        self._drawn = key
        if not stats or run >= len(self.race.labels):
            self._clear()
            return
        newest = stats[-1][1]
        self._fill_layers(newest)
        layer = max(self.layer_box.currentIndex(), 0)
        last = self.race.last_valid_step(run)
        own = [(step, runs[run][layer]) for step, runs in stats
               if step <= last and run < len(runs) and layer < len(runs[run])]
        color = self.race.colors[run] if run < len(self.race.colors) else "#ffffff"
        if own:
            steps = np.array([step for step, _ in own])
            table = np.stack([_normalised(values) for _, values in own])  # (evaluations, k)
            self._set_curves(self.time_plot, self.time_curves, table.shape[1],
                             lambda _k: pg.mkPen(color, width=1))
            for k, curve in enumerate(self.time_curves):
                keep = np.isfinite(table[:, k]) & (table[:, k] > 0)
                curve.setData(steps[keep], table[keep, k])
        self._draw_profiles(newest, layer)
        self._caption(own, run, layer)

    def _fill_layers(self, newest) -> None:
        shapes = [len(values) for values in newest[0]]
        if self.layer_box.count() == len(shapes):
            return
        self.layer_box.blockSignals(True)
        self.layer_box.clear()
        for i, k in enumerate(shapes):
            self.layer_box.addItem(f"weight {i} ({k} singular values)")
        self.layer_box.blockSignals(False)

    def _draw_profiles(self, newest, layer: int) -> None:
        for curve in self.profile_curves:
            self.profile_plot.removeItem(curve)
        self.profile_curves = []
        for i, runs in enumerate(newest):
            if layer >= len(runs) or i >= len(self.race.labels):
                continue
            profile = _normalised(runs[layer])
            keep = np.isfinite(profile) & (profile > 0)
            if not keep.any():
                continue
            color = self.race.colors[i] if i < len(self.race.colors) else "#ffffff"
            self.profile_curves.append(self.profile_plot.plot(
                np.flatnonzero(keep), profile[keep], pen=pg.mkPen(color, width=2),
                symbol="o", symbolSize=4, symbolBrush=color, name=self.race.labels[i]))

    def _set_curves(self, plot, curves: list, count: int, pen) -> None:
        while len(curves) > count:
            plot.removeItem(curves.pop())
        while len(curves) < count:
            curves.append(plot.plot(pen=pen(len(curves))))
        for k, curve in enumerate(curves):
            curve.setPen(pen(k))

    def _caption(self, own, run: int, layer: int) -> None:
        label = self.race.labels[run]
        if not own:
            self.caption.setText(f"{label}: no update measured yet.")
            return
        values = own[-1][1]
        finite = values[np.isfinite(values) & (values > 0)]
        if len(finite) == 0:
            self.caption.setText(f"{label}: its newest update of weight {layer} is zero or "
                                 "not finite.")
            return
        half = finite[: max(len(finite) // 2, 1)]
        self.caption.setText(
            f"{label}, weight {layer}, step {own[-1][0]:g}: σ_1(ΔW) = {finite[0]:.3g}; the "
            f"largest half of the singular values spans {half[0] / half[-1]:.3g}× "
            f"(1 = flat, as an orthogonalised update), all of them "
            f"{finite[0] / finite[-1]:.3g}×.")

    def _clear(self) -> None:
        for curve in self.time_curves:
            self.time_plot.removeItem(curve)
        self.time_curves = []
        for curve in self.profile_curves:
            self.profile_plot.removeItem(curve)
        self.profile_curves = []
        self.layer_box.blockSignals(True)
        self.layer_box.clear()
        self.layer_box.blockSignals(False)
        self.caption.setText(EMPTY_TEXT)
