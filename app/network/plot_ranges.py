"""Axes and view ranges of the network view's streaming plots, set here rather than by pyqtgraph.

`LogAxis` / `plain_axes`: log ticks in levels, plain numbers, an axis that never shrinks.
`range_change` / `fit_range`: the range for the drawn data's extent, with hysteresis (a new
range re-lays out the axes and repaints every curve: the costliest frame of a race).
`SharedUserX` / `copy_x`: two plots side by side that show one x axis without pyqtgraph's
``setXLink``. Used by `app.network.run_curves` and `app.network.layer_stats`.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg

from app.widgets.plot_style import axis_log_ticks

X_HEADROOM = 1.6  # a re-ranged x axis spans the data × this (see `fit_range`)
X_END_ROOM = 0.02  # ... but ends this share of the race past its last step, when that is known
Y_PAD = 0.05  # y room on both sides of the data (share of its span) when re-ranged
Y_LEAD = 0.25  # more room where the data left the y range (it tends to go on that way)
Y_FILL = 0.6  # y is re-ranged when the data fills less than this share of it (< 1/1.35)


class LogAxis(pg.AxisItem):
    """A y axis whose log-mode ticks come in levels: 1×10ᵏ, then 2 and 5×10ᵏ, then the rest.

    pyqtgraph puts every minor tick of a range under a few decades (0.09, 0.08, 0.07, …) in one
    level, which is always labelled, so the texts overlap on a short plot. With levels, its
    text-density check drops the finer labels when they do not fit (`axis_log_ticks` of
    app/widgets/plot_style.py, which every axis of the app now uses; this one adds bounds).
    """

    # No tick outside these values (the accuracy axis: 0 … 1; its view may reach a hair beyond).
    tick_bounds: tuple[float, float] = (-math.inf, math.inf)

    def tickValues(self, minVal, maxVal, size):  # noqa: N802 - pyqtgraph's name
        levels = super().tickValues(minVal, maxVal, size)
        low, high = self.tick_bounds
        if low == -math.inf and high == math.inf:
            return levels
        slack = 1e-9 * max(1.0, abs(maxVal - minVal))  # 1.0000000000000002 is still 1
        return [(spacing, [v for v in values if low - slack <= v <= high + slack])
                for spacing, values in levels]

    def logTickValues(self, minVal, maxVal, size, stdTicks):  # noqa: N802, N803 - pyqtgraph's
        return axis_log_ticks(self, minVal, maxVal, size, stdTicks)


def plain_axes(plot: pg.PlotItem) -> None:
    """A `LogAxis` on the left (keeping label and log mode); plain numbers, no "(x0.001)"."""
    old = plot.getAxis("left")
    label, log_y = old.labelText, old.logMode
    plot.setAxisItems({"left": LogAxis("left")})
    plot.setLabel("left", label)
    # PlotItem.setLogMode only acts on a change of its check box: toggle so the new axis hears it.
    plot.setLogMode(x=False, y=not log_y)
    plot.setLogMode(x=False, y=log_y)
    # ... which also switches pyqtgraph's auto-range back on: the ranges are set here instead
    # (`fit_range`), and an auto-range on every setData re-laid out the axes again and again.
    plot.vb.disableAutoRange()
    for name in ("left", "bottom"):
        plot.getAxis(name).enableAutoSIPrefix(False)
    # The left axis grows to fit its widest label but never shrinks: a label one character
    # narrower would otherwise re-lay out the whole plot (and repaint every curve) mid-race.
    plot.getAxis("left").setStyle(autoReduceTextSpace=False)


def fit_range(vb: pg.ViewBox, extent, set_x: bool) -> None:
    """Set ``vb``'s range to fit ``extent`` when `range_change` says so."""
    change = range_change(vb, extent, set_x)
    if change is not None:
        vb.setRange(xRange=change[0], yRange=change[1], padding=0)


def range_change(vb: pg.ViewBox, extent, set_x: bool):
    """The (x range, y range) ``vb`` should get for ``extent`` = (x0, x1, y0, y1) of the drawn
    data, or None to keep the current one (arithmetic only: cheap to ask). With hysteresis:
    a new range re-lays out the axis ticks and repaints every curve of the plot (the costliest
    frames of a race), so the current one is kept while the data fits and fills most of it.
    x gets `X_HEADROOM` (a growing series re-ranges ~5 times per decade of steps) and spans at
    least ``vb.min_x_span`` when set (the first `MIN_STEP_SPAN` steps need no re-range at all);
    y gets extra room on the side the data left through (a falling loss keeps falling)."""
    x0, x1, y0, y1 = extent
    if not (math.isfinite(x0) and math.isfinite(y0)):
        return None
    (vx0, vx1), (vy0, vy1) = vb.viewRange()
    x_range = y_range = None
    if set_x:
        span = max(x1 - x0, 0.0)
        least = getattr(vb, "min_x_span", 0.0)
        # Re-ranged a little before the data reaches the right edge: while streaming the new
        # range comes one redraw after the data, which then has not left the plot yet.
        # Nor when the range already reaches the race's last step (``vb.x_end``): no data can
        # come past it (a 60-step race ends on 0 … 60, not 0 … 96).
        end = getattr(vb, "x_end", math.inf)
        fits = (vx0 <= x0 and (x1 <= vx1 - 0.03 * (vx1 - vx0) or x1 <= end <= vx1)
                and (vx1 - vx0) <= max(span / 0.55, least * 1.001))
        if not fits:
            x_range = (x0, x0 + max(span * X_HEADROOM if span > 0 else 1.0, least))
            if math.isfinite(end) and x1 <= end:
                # Never past the race's last step (a 1000-step race once ended on 0 … 1600),
                # with a little room after it so the last tick's label is not cut.
                x_range = (x0, min(x_range[1], end + X_END_ROOM * (end - x0)))
    if y1 <= y0:
        y1 = y0 + (abs(y0) * 0.1 or 1.0)
    if not (vy0 <= y0 and y1 <= vy1 and (y1 - y0) >= Y_FILL * (vy1 - vy0)):
        span = y1 - y0
        below = Y_LEAD if y0 < vy0 else 0.0
        above = Y_LEAD if y1 > vy1 else 0.0
        y_range = (y0 - (Y_PAD + below) * span, y1 + (Y_PAD + above) * span)
        # A bounded quantity (accuracy) is never shown far past its bounds; clamped, the range
        # may be the current one: no change then.
        low, high = getattr(vb, "y_bounds", (-math.inf, math.inf))
        y_range = (max(y_range[0], low), min(y_range[1], high))
        if y_range == (vy0, vy1):
            y_range = None
    if x_range is None and y_range is None:
        return None
    return x_range or (vx0, vx1), y_range or (vy0, vy1)


class SharedUserX:
    """Two views that show the same x axis side by side, kept aligned without pyqtgraph's
    ``setXLink``: the user's pan or zoom on either moves the other with it at once, and the
    other stops following the data too (``on_manual``); while streaming, the follower copies
    the leader's new x range in a redraw of its own (`x_behind`). Linked, both re-laid out
    their axes and repainted every curve in one event-loop turn: the race's slowest frames."""

    def __init__(self, a: pg.ViewBox, b: pg.ViewBox, on_manual):
        self._views = (a, b)
        self._on_manual = on_manual
        a.sigRangeChangedManually.connect(self._a_moved)
        b.sigRangeChangedManually.connect(self._b_moved)

    def _a_moved(self, *_args) -> None:
        self._copy(*self._views)

    def _b_moved(self, *_args) -> None:
        self._copy(*reversed(self._views))

    def _copy(self, source: pg.ViewBox, target: pg.ViewBox) -> None:
        self._on_manual()
        x0, x1 = source.viewRange()[0]
        target.setXRange(x0, x1, padding=0)


def x_behind(vb: pg.ViewBox, leader: pg.ViewBox) -> bool:
    """Whether ``vb`` (which shows ``leader``'s x axis) has yet to copy its x range."""
    return tuple(vb.viewRange()[0]) != tuple(leader.viewRange()[0])


def copy_x(vb: pg.ViewBox, leader: pg.ViewBox, extent) -> None:
    """``leader``'s x range and, when `range_change` says so, a y range fitting ``extent``."""
    change = range_change(vb, extent, False)
    if change is None and not x_behind(vb, leader):
        return
    y_range = change[1] if change is not None else vb.viewRange()[1]
    vb.setRange(xRange=tuple(leader.viewRange()[0]), yRange=y_range, padding=0)


def mostly_hidden(vb: pg.ViewBox, extent) -> bool:
    """Whether less than half of the data's x or y span is inside ``vb``'s range: a range
    that cannot wait for a redraw of its own (the first data, a jump)."""
    x0, x1, y0, y1 = extent
    if not (math.isfinite(x0) and math.isfinite(y0)):
        return False
    (vx0, vx1), (vy0, vy1) = vb.viewRange()
    for lo, hi, vlo, vhi in ((x0, x1, vx0, vx1), (y0, y1, vy0, vy1)):
        shown = min(hi, vhi) - max(lo, vlo)
        if shown < 0.5 * (hi - lo):
            return True
    return False


def extent_of(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float, float] | None:
    if not len(x):
        return None
    return float(x[0]), float(x[-1]), float(y.min()), float(y.max())


def union_of(extents) -> tuple[float, float, float, float]:
    extents = [e for e in extents if e is not None]
    if not extents:
        return (math.nan,) * 4
    return (min(e[0] for e in extents), max(e[1] for e in extents),
            min(e[2] for e in extents), max(e[3] for e in extents))
