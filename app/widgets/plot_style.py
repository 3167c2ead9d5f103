"""What every plot of the app shares, set in one place: `install_plot_defaults`.

pyqtgraph scales an axis whose numbers are small or large by an SI prefix and writes the factor
into the label ("lr (x0.001)", a colourbar reading −900 … 900 "(x0.001)"): a reader then has to
multiply every tick in their head. Every `AxisItem` the app makes (the plots' own axes, the
colourbars', the log axes of app/network/plot_ranges.py) starts with that scaling off, so the
ticks show the values themselves (0.0005, 630). A horizontal axis may draw its last tick's
label `LABEL_OVERHANG` px past its end (pyqtgraph dropped a label that did not fit: "1000" of
a 1000-step race was missing), and every `PlotItem` keeps that much room on its right.
A log axis labels its ticks in levels (`log_tick_levels`), so labels that do not fit are left
out instead of piling up (a short plot, presenter mode's large fonts); a level whose labels would
touch (9 beside 10¹) keeps its ticks unlabelled (`crowded_log_levels`).
Installed by app/shell/theme.py's `configure_pyqtgraph`, before any plot is built.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QFontMetricsF

_INSTALLED = "_descent_lab_plain_axes"
LABEL_OVERHANG = 18  # px: half of "100000" in the tick font, with a margin


def log_tick_levels(min_val: float, max_val: float, std_ticks):
    """A log axis's ticks (log10 values) in levels: 1×10ᵏ, then 2 and 5×10ᵏ, then the rest.

    pyqtgraph puts every minor tick of a range under a few decades (0.09, 0.08, 0.07, …) in one
    level, which is always labelled, so the texts overlap on a short plot. With levels, its
    text-density check drops the finer labels when they do not fit. ``std_ticks``: pyqtgraph's
    own levels, kept when they are whole decades (many decades)."""
    decade_ticks = [(spacing, t) for spacing, t in std_ticks if spacing >= 1.0]
    if len(decade_ticks) >= 3:  # many decades: whole decades are the ticks (as pyqtgraph)
        return decade_ticks
    decades = np.arange(math.floor(min_val), math.ceil(max_val) + 1)

    def level(multipliers: tuple[int, ...]) -> list[float]:
        values = (decades[:, None] + np.log10(multipliers)[None, :]).ravel()
        return [float(v) for v in values if min_val <= v <= max_val]

    # pyqtgraph's own whole-decade levels first (every 5th decade, then every decade: over
    # twenty decades one level of all of them piled up), else the decades as one level.
    first = decade_ticks or [(None, level((1,)))]
    return [*first, (None, level((2, 5))), (None, level((3, 4, 6, 7, 8, 9)))]


UNLABELLED = "unlabelled"  # a log level's spacing: its ticks are drawn without labels
LOG_LABEL_GAP = 4  # px at least between two labels of a log axis


def crowded_log_levels(levels, min_val: float, max_val: float, size: float,
                       label_px: float):
    """``levels`` of a log axis (from `log_tick_levels`) with the finer levels whose labels
    would crowd marked `UNLABELLED`: their ticks and grid lines stay, their labels go.

    On a log axis 9 and 10 are 0.046 decades apart (1 and 2: 0.3), so pyqtgraph's check of how
    much of the axis the labels fill let "8 9 10¹" touch on a one-decade plot (the
    fingerprint's update size). A level is labelled only when each of its labels is at least
    ``label_px`` + `LOG_LABEL_GAP` px from every label of itself and the coarser levels;
    the first level (the decades) always is. ``size``: the axis length in px."""
    span = max_val - min_val
    if size <= 0 or span <= 0 or len(levels) < 2:
        return levels
    per_decade = size / span
    labelled = [v for v in levels[0][1] if min_val <= v <= max_val]
    out = [levels[0]]
    crowded = False
    for spacing, values in levels[1:]:
        if not crowded:
            shown = sorted(labelled + [v for v in values if min_val <= v <= max_val])
            gaps = np.diff(shown) * per_decade
            crowded = bool(len(gaps)) and float(gaps.min()) < label_px + LOG_LABEL_GAP
            labelled = shown
        out.append((UNLABELLED, values) if crowded else (spacing, values))
    return out


def axis_log_ticks(axis: pg.AxisItem, min_val: float, max_val: float, size: float, std_ticks):
    """The log ticks of ``axis`` in levels (`log_tick_levels`); on a vertical axis, crowded
    levels unlabelled (`crowded_log_levels`, a label a line of the tick font tall: at
    pyqtgraph's own 0.8 of it "9" and "10¹" 15 px apart still passed and looked as one).
    A horizontal axis's labels differ in width: left as they were."""
    levels = log_tick_levels(min_val, max_val, std_ticks)
    if axis.orientation not in ("left", "right"):
        return levels
    height = QFontMetricsF(axis.style.get("tickFont") or axis.font()).height()
    return crowded_log_levels(levels, min_val, max_val, size, height)


TICK_GAP = 10  # px at least between two labels of a horizontal axis


def labelled_spacing(levels, min_val: float, max_val: float, size: float, label_width: float):
    """pyqtgraph's tick ``levels`` for a horizontal axis of ``size`` px, with a major spacing
    wide enough for labels of ``label_width`` px (a round 1, 2 or 5 × 10ᵏ): pyqtgraph always labels the
    major level, whose spacing ignores the text, so "600 800 1000" ran together on a narrow
    plot. The finer levels stay, as unlabelled ticks."""
    major = levels[0][0]
    fits = max(1, int(size // (label_width + TICK_GAP)))
    span = abs(max_val - min_val)
    if span / major < fits:
        return levels
    # The next round spacing (1, 2 or 5 × 10ᵏ) at which the labels fit.
    exponent = math.floor(math.log10(major))
    nice = [m * 10.0 ** (exponent + k) for k in range(4) for m in (1, 2, 5)]
    spacing = next((n for n in nice if n > major and span / n < fits), nice[-1])
    return [(spacing, 0), *[(s, o) for s, o in levels if s < spacing]]


def _label_width(axis: pg.AxisItem, min_val: float, max_val: float) -> float:
    """About the widest tick label of ``axis`` over this range, in px."""
    font = axis.style.get("tickFont") or axis.font()
    widest = max(f"{min_val:g}", f"{max_val:g}", key=len)
    return QFontMetricsF(font).horizontalAdvance(widest.replace("e", "0"))


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

    def logTickValues(self, minVal, maxVal, size, stdTicks):  # noqa: N802, N803 - pyqtgraph's
        return axis_log_ticks(self, minVal, maxVal, size, stdTicks)

    pg.AxisItem.logTickValues = logTickValues

    original_log_strings = pg.AxisItem.logTickStrings

    def logTickStrings(self, values, scale, spacing):  # noqa: N802 - pyqtgraph's name
        if isinstance(spacing, str) and spacing == UNLABELLED:
            return [None] * len(values)  # pyqtgraph skips a None label, keeps the tick
        return original_log_strings(self, values, scale, spacing)

    pg.AxisItem.logTickStrings = logTickStrings

    original_spacing = pg.AxisItem.tickSpacing

    def tickSpacing(self, minVal, maxVal, size):  # noqa: N802, N803 - pyqtgraph's names
        levels = original_spacing(self, minVal, maxVal, size)
        if self.orientation not in ("bottom", "top") or self.logMode or not levels:
            return levels
        return labelled_spacing(levels, minVal, maxVal, size, _label_width(self, minVal, maxVal))

    pg.AxisItem.tickSpacing = tickSpacing
    setattr(pg.AxisItem, _INSTALLED, True)

    original_plot_init = pg.PlotItem.__init__

    def plot_init(self, *args, **kwargs):
        original_plot_init(self, *args, **kwargs)
        left, top, right, bottom = self.layout.getContentsMargins()
        self.layout.setContentsMargins(left, top, max(right, LABEL_OVERHANG), bottom)

    plot_init.__doc__ = original_plot_init.__doc__
    pg.PlotItem.__init__ = plot_init


def named_plot(name: str, **kwargs) -> pg.PlotWidget:
    """A ``pg.PlotWidget`` whose objectName is ``name``: pyqtgraph's constructor drops an
    ``objectName=`` keyword, and the Help menu (app/shell/plot_help.py) and the tests find
    plots by their name."""
    plot = pg.PlotWidget(**kwargs)
    plot.setObjectName(name)
    return plot
