"""The small live preview of a run's learning rate over the lab's steps (in the run editor).

The curve comes from `core.optim.schedules.preview`, which steps the real torch scheduler; this
widget only draws it, or says in the plot why there is none (too many steps, a schedule the
registry refuses).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QPalette

from app.runs.run_text import run_lr, schedule_name
from app.widgets.static_plot import StaticPlot
from core.errors import LabError
from core.lab.format import RunSpec
from core.optim.schedules import preview

# Beyond this many steps the preview is skipped: core's preview steps the real torch scheduler
# (~0.1 ms a step), and it runs on the GUI thread.
PREVIEW_MAX_STEPS = 5000
PREVIEW_HEIGHT = 110


class LrPreview(StaticPlot):
    """The lr preview: small, not interactive, and wheel events scroll the panel instead."""

    def __init__(self, parent=None):
        super().__init__(PREVIEW_HEIGHT, parent)
        self.setObjectName("lrPreview")
        self.setAccessibleName("Learning rate over the run")
        self.setToolTip("The lr this run uses at each step (a preview: nothing is trained)")
        plot_item = self.getPlotItem()
        plot_item.setContentsMargins(0, 4, 6, 0)
        for side in ("left", "bottom"):
            axis = plot_item.getAxis(side)
            small = axis.font() if hasattr(axis, "font") else self.font()
            small.setPointSizeF(max(6.0, self.font().pointSizeF() * 0.8))
            axis.setStyle(tickFont=small, tickLength=-4)
        plot_item.getAxis("left").setWidth(48)
        self.curve = self.plot([], [], name="lr")
        self.note = pg.TextItem(anchor=(0.5, 0.5))
        plot_item.addItem(self.note, ignoreBounds=True)
        self.note.hide()
        self._key: tuple | None = None  # what the curve shows now

    def show_run(self, run: RunSpec | None, steps: int = 0, color: str = "#ffffff") -> None:
        """Draw ``run``'s lr over ``steps`` steps in ``color``; None clears the plot."""
        if run is None:
            self._key = None
            self.curve.setData([], [])
            self.note.hide()
            return
        name = schedule_name(run)
        params = dict(run.schedule.params) if run.schedule else {}
        lr = run_lr(run)
        key = (name, tuple(sorted((k, repr(v)) for k, v in params.items())), steps, lr, color)
        if key == self._key:
            return  # another run's edit: this curve has not changed, skip the torch stepping
        self._key = key
        if steps > PREVIEW_MAX_STEPS:
            self._message(f"No preview beyond {PREVIEW_MAX_STEPS} steps")
            return
        try:
            curve = preview(name, params, steps, base_lr=lr)
        except LabError as error:
            self._message(error.message)
            return
        self.note.hide()
        self.curve.setData(np.arange(steps + 1), curve, pen=pg.mkPen(color, width=2))
        top = float(curve.max()) if curve.size else 0.0
        self.setXRange(0, steps, padding=0.02)
        # From 0, so that a decay looks like one; a constant lr sits just under the top.
        self.setYRange(0, top * 1.1 if top > 0 else 1.0, padding=0)

    def _message(self, text: str) -> None:
        self.curve.setData([], [])
        self.note.setText(text)
        self.note.setColor(self.palette().color(QPalette.ColorRole.PlaceholderText))
        self.setXRange(0, 1, padding=0)
        self.setYRange(0, 1, padding=0)
        self.note.setPos(0.5, 0.5)
        self.note.show()
