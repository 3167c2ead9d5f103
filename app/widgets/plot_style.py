"""What every plot of the app shares, set in one place: `install_plot_defaults`.

pyqtgraph scales an axis whose numbers are small or large by an SI prefix and writes the factor
into the label ("lr (x0.001)", a colourbar reading −900 … 900 "(x0.001)"): a reader then has to
multiply every tick in their head. Every `AxisItem` the app makes (the plots' own axes, the
colourbars', the log axes of app/network/plot_ranges.py) starts with that scaling off, so the
ticks show the values themselves (0.0005, 630). Installed by app/shell/theme.py's
`configure_pyqtgraph`, before any plot is built.
"""

from __future__ import annotations

import pyqtgraph as pg

_INSTALLED = "_descent_lab_plain_axes"


def install_plot_defaults() -> None:
    """From now on every new `pg.AxisItem` (and subclass) has automatic SI prefixes off."""
    if getattr(pg.AxisItem, _INSTALLED, False):
        return
    original_init = pg.AxisItem.__init__

    def __init__(self, *args, **kwargs):  # noqa: N807 - wraps pyqtgraph's constructor
        original_init(self, *args, **kwargs)
        self.enableAutoSIPrefix(False)

    __init__.__doc__ = original_init.__doc__
    pg.AxisItem.__init__ = __init__
    setattr(pg.AxisItem, _INSTALLED, True)
