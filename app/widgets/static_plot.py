"""A small plot inside a scrolling panel that only shows: `StaticPlot`.

The previews of the side panels (the data set's points in app/network/data_preview.py, a run's
learning rate in app/runs/lr_preview.py) are pictures, not tools: no mouse zoom or pan, no
context menu, no auto-range button, no keyboard focus. They sit in panels that scroll, so a wheel
notch over one goes to the panel (the event is ignored here) instead of being eaten by the plot.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt


class StaticPlot(pg.PlotWidget):
    """A plot of fixed ``height`` that takes no mouse, wheel, menu or focus."""

    def __init__(self, height: int, parent=None, **kwargs):
        super().__init__(parent, **kwargs)
        self.setFixedHeight(height)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setMouseEnabled(x=False, y=False)
        self.setMenuEnabled(False)
        self.hideButtons()

    def wheelEvent(self, event) -> None:  # noqa: N802 (Qt override)
        event.ignore()
