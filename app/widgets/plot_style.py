"""What every plot of the app shares, set in one place: `install_plot_defaults`.

pyqtgraph scales an axis whose numbers are small or large by an SI prefix and writes the factor
into the label ("lr (x0.001)", a colourbar reading −900 … 900 "(x0.001)"): a reader then has to
multiply every tick in their head. Every `AxisItem` the app makes (the plots' own axes, the
colourbars', the log axes of app/network/plot_ranges.py) starts with that scaling off, so the
ticks show the values themselves (0.0005, 630). A horizontal axis may draw its last tick's
label `LABEL_OVERHANG` px past its end (pyqtgraph dropped a label that did not fit: "1000" of
a 1000-step race was missing), and every `PlotItem` keeps that much room on its right.
Installed by app/shell/theme.py's `configure_pyqtgraph`, before any plot is built.
"""

from __future__ import annotations

import pyqtgraph as pg

_INSTALLED = "_descent_lab_plain_axes"
LABEL_OVERHANG = 18  # px: half of "100000" in the tick font, with a margin


def install_plot_defaults() -> None:
    """From now on every new `pg.AxisItem` (and subclass) has automatic SI prefixes off and
    room for its last label, and every new `pg.PlotItem` room on its right for it."""
    if getattr(pg.AxisItem, _INSTALLED, False):
        return
    original_init = pg.AxisItem.__init__

    def __init__(self, *args, **kwargs):  # noqa: N807 - wraps pyqtgraph's constructor
        original_init(self, *args, **kwargs)
        self.enableAutoSIPrefix(False)
        if self.orientation in ("bottom", "top"):
            self.setStyle(hideOverlappingLabels=LABEL_OVERHANG)

    __init__.__doc__ = original_init.__doc__
    pg.AxisItem.__init__ = __init__
    setattr(pg.AxisItem, _INSTALLED, True)

    original_plot_init = pg.PlotItem.__init__

    def plot_init(self, *args, **kwargs):
        original_plot_init(self, *args, **kwargs)
        left, top, right, bottom = self.layout.getContentsMargins()
        self.layout.setContentsMargins(left, top, max(right, LABEL_OVERHANG), bottom)

    plot_init.__doc__ = original_plot_init.__doc__
    pg.PlotItem.__init__ = plot_init
