"""Episode return per run: the raw returns faint, their debiased EMA (core/engine/smoothing.py)
bold, and the 195 line that counts as solving CartPole."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtGui import QColor

from app.widgets.curves import add_key_row, decimate
from core.engine.rl_history import RLHistory
from core.problems.rl.cartpole import SOLVED_RETURN


class ReturnsPlot(pg.PlotWidget):
    """Return of every finished episode (x: episode number), one colour per run."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setLabel("bottom", "episode")
        self.setLabel("left", "return (steps balanced)")
        self.setTitle("Episode return")
        self.setToolTip("Each run's episode returns: faint, every episode; bold, smoothed "
                        "(debiased EMA 0.9). Dashed: 195, CartPole's 'solved'.")
        self.following = False  # the axes follow the data once there is some
        self.key = add_key_row(self.getPlotItem())
        goal = pg.InfiniteLine(SOLVED_RETURN, angle=0, pen=pg.mkPen("#888888", style=pg.QtCore.Qt.PenStyle.DashLine))
        self.addItem(goal)
        self.raw: list[pg.PlotDataItem] = []
        self.smooth: list[pg.PlotDataItem] = []

    def set_runs(self, labels: list[str], colors: list[str]) -> None:
        for item in self.raw + self.smooth:
            self.removeItem(item)
        self.key.clear()
        self.raw, self.smooth = [], []
        self.setYRange(0, 500)  # CartPole's returns, until the first episode ends
        self.following = False
        for label, color in zip(labels, colors):
            faint = QColor(color)
            faint.setAlpha(70)
            self.raw.append(self.plot([], [], pen=pg.mkPen(faint, width=1)))
            curve = self.plot([], [], pen=pg.mkPen(color, width=2))
            self.smooth.append(curve)
            self.key.addItem(curve, label)

    def update_from(self, history: RLHistory) -> None:
        if not self.following and any(history.returns):
            self.enableAutoRange()
            self.following = True
        for i, (raw, smooth) in enumerate(zip(self.raw, self.smooth)):
            x, y = history.episode_returns(i)
            raw.setData(*decimate(x, y))
            smooth.setData(*decimate(x, history.smoothed_returns(i)))
