"""The central area of a network lab: curves, decision boundaries, confusion matrix, comparison.

`NetworkView` replaces the 2-D arena's landscape + curves when the lab's problem is a network. It
is a view over `core.engine.history.NetworkHistory`: the main window calls ``update_from(history)`` once
per batch on the main thread, and every plot calls ``setData`` once with views of the history's
buffers (pyqtgraph's streaming practice: clip to view, peak downsampling, 1-px pens without
antialiasing, nothing non-finite ever passed in).

Four tabs:

* **Curves** — loss (log y optional), accuracy or R², learning rate, and per-layer gradient norm
  and update/weight ratio of one selected run. Solid lines are training, dashed lines validation,
  one colour per run. The smoothing slider (on by default) is TensorBoard's debiased exponential
  moving average (core/engine/smoothing.py) of the *per-step* mini-batch series only: that is where batch
  noise lives. The raw series stays drawn as a faint line of the same colour, so smoothing never
  hides a spike, and the legend names the weight. The loss and per-layer legends are rows
  between a plot's title and its data (`app.widgets.curves.KeyRow`), so they cover no curve and
  wrap in a narrow plot. Evaluation curves are full-data
  measurements and are drawn as measured. A race over several seeds draws each run's mean with a
  translucent band of ± one standard deviation over the seeds under it (`RunCurvesPlot` bands;
  smoothed like its line), and the comparison table shows "mean ± std".
* **Decision boundaries** — small multiples, one per run: the model's P(class 1) (binary, a
  diverging map with fixed levels 0…1) or its predicted class with alpha by confidence
  (multiclass, an RGBA image computed in numpy) over the data's plane, with the training points
  filled and the validation points hollow. A 1-D regression shows each run's fitted curve over
  the data instead; a 2-D regression shows the predicted surface.
* **Confusion matrix** — the selected run's validation confusion matrix: counts as text, cells
  coloured by the row share (recall), so small classes read as well as big ones.
* **Comparison** — one row per run, sortable by number, exportable to CSV (written atomically).

Snapshots (boundaries, confusion, per-layer statistics) only change when the history's
``last_evaluation_step`` does. A run that diverged keeps its last finite snapshot: the engine
still evaluates its frozen model, whose weights may have become NaN.
"""

from __future__ import annotations

import csv
import functools
import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QSlider,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.shell.theme import BACKGROUND, FOREGROUND, class_color, class_point_style
from app.widgets.curves import (
    MAX_POINTS,
    FastCurve,
    KeyRow,
    SeriesPlot,
    bucket_extremes,
    settle_view_transform,
)
from app.widgets.tables import save_table_csv
from core.engine.history import NetworkHistory
from core.engine.smoothing import DEFAULT_SMOOTHING, DebiasedEma
from core.problems.datasets import Dataset

# x-axis choices: combo text → (column in the history series, axis label)
X_AXES = {
    "step": ("step", "step"),
    "epoch": ("epoch", "epoch"),
    "wall time": ("wall", "wall time (s)"),
}
SMOOTHING_MAX = 0.99
SMOOTHING_TICKS = 99  # slider positions 0 … 99 → smoothing 0.00 … 0.99
RAW_ALPHA_SMOOTHED = 60  # the raw line under a smoothed one: faint, but visible
BAND_ALPHA = 50  # the mean ± std band of a race over several seeds
BAND_POINTS = 1000  # a band is drawn through at most this many points (its envelope)
MAX_CONFUSION_TEXT = 20  # above this many classes the counts would not fit in their cells
LAYER_LOG_CAPACITY = 20_000  # per-layer snapshots kept; thinned by two when full
X_HEADROOM = 1.6  # a re-ranged x axis spans the data × this (see `_fit_range`)
Y_PAD = 0.05  # y room on both sides of the data (share of its span) when re-ranged
Y_LEAD = 0.25  # more room where the data left the y range (it tends to go on that way)
Y_FILL = 0.6  # y is re-ranged when the data fills less than this share of it (< 1/1.35)
UNIT_HEADROOM = 0.02  # how far the accuracy view may reach past 0 and 1 (no ticks there)
MIN_STEP_SPAN = 100  # on the step axis, the x range covers at least this many steps
TAB_CURVES, TAB_BOUNDARIES, TAB_CONFUSION, TAB_TABLE = range(4)
CURVE_PARTS = ("loss", "accuracy", "lr", "layers")


def _finite(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) without non-finite points; the views themselves when all are finite (usual case)."""
    ok = np.isfinite(y) & np.isfinite(x)
    if ok.all():
        return x, y
    return x[ok], y[ok]


class _Grown:
    """Remembers the length and the first and last x of a series, to tell next time whether the
    series only grew since: then work done on its first ``n`` points still holds.

    The history's series only grow, except when one reaches its capacity and thins its older
    half in place (`core.engine.history.RunSeries`): then its length drops, or the point at index
    ``n − 1`` is a later one (x increases). Everything else that changes a plot's data (another
    x column, axis mode or metric, a new race) goes through `RunCurvesPlot.invalidate`, which
    forgets.
    """

    def __init__(self) -> None:
        self.forget()

    def forget(self) -> None:
        self.n, self.first, self.last = 0, 0.0, 0.0

    def extends(self, x: np.ndarray) -> bool:
        n = self.n
        return 0 < n <= len(x) and x[0] == self.first and x[n - 1] == self.last

    def remember(self, x: np.ndarray) -> None:
        self.n = len(x)
        if self.n:
            self.first, self.last = float(x[0]), float(x[-1])


class _ValidPrefix(_Grown):
    """`RunCurvesPlot._points` for a series that grows: only the new points are checked.

    Late in a long race a run's series holds ~30,000 points; checking all of them (finite, and
    positive on a log axis) for every run at every frame made a frame's data preparation grow
    with the race (issue 7's soak: the late event-loop gaps were longer than the early ones).
    Once a series has had a bad point (a mini-batch loss of exactly 0 on a log axis, late in a
    race), the valid points found so far are kept and extended rather than found again.
    """

    def forget(self) -> None:
        super().forget()
        self.kept: tuple[np.ndarray, np.ndarray] | None = None  # None: every point so far valid

    def points(self, x: np.ndarray, y: np.ndarray, positive: bool) -> tuple[np.ndarray,
                                                                            np.ndarray]:
        if not self.extends(x):
            self.forget()
        new_x, new_y = x[self.n:], y[self.n:]
        valid = (np.isfinite(new_x).all() and np.isfinite(new_y).all()
                 and not (positive and len(new_y) and new_y.min() <= 0))
        if valid and self.kept is None:
            self.remember(x)
            return x, y  # all valid, the usual case: the history's own views, untouched
        if not valid:
            new_x, new_y = _finite(new_x, new_y)
            if positive and len(new_y):
                keep = new_y > 0
                new_x, new_y = new_x[keep], new_y[keep]
        # Copies: the history's buffer under the views is rewritten when it thins itself.
        old_x, old_y = self.kept if self.kept is not None else (x[:self.n], y[:self.n])
        self.kept = (np.concatenate([old_x, new_x]), np.concatenate([old_y, new_y]))
        self.remember(x)
        return self.kept


class _GrowingThinning(_Grown):
    """`app.widgets.curves.decimate` for a series that grows, extended by the buckets that new
    points complete.

    The buckets are a power of two points long (between one and two per horizontal pixel, each
    keeping its lowest and highest point in time order, as `decimate`), so they stay the same
    while the series grows up to twice its length: per frame only the new points are read.
    """

    def forget(self) -> None:
        super().forget()
        self.size, self.done = 0, 0
        self.kept_x = self.kept_y = np.empty(0)

    def thin(self, x: np.ndarray, y: np.ndarray, budget: int) -> tuple[np.ndarray, np.ndarray]:
        n = len(x)
        if n <= budget:
            self.forget()
            return x, y
        size = 1 << max(0, math.ceil(math.log2(n / (budget // 2))))
        if size != self.size or not self.extends(x):
            self.forget()
            self.size = size
        full = n // size * size
        if full > self.done:
            new_x, new_y = bucket_extremes(x[self.done:full], y[self.done:full], size)
            self.kept_x = np.concatenate([self.kept_x, new_x])
            self.kept_y = np.concatenate([self.kept_y, new_y])
            self.done = full
        self.remember(x)
        return np.concatenate([self.kept_x, x[full:]]), np.concatenate([self.kept_y, y[full:]])


# -- curves ---------------------------------------------------------------------------------------


class LogAxis(pg.AxisItem):
    """A y axis whose log-mode ticks come in levels: 1×10ᵏ, then 2 and 5×10ᵏ, then the rest.

    pyqtgraph puts every minor tick of a range under a few decades (0.09, 0.08, 0.07, …) in one
    level, which is always labelled, so the texts overlap on a short plot. With levels, its
    text-density check drops the finer labels when they do not fit.
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

    def logTickValues(self, minVal, maxVal, size, stdTicks):
        decade_ticks = [(spacing, t) for spacing, t in stdTicks if spacing >= 1.0]
        if len(decade_ticks) >= 3:  # many decades: whole decades are the ticks (as pyqtgraph)
            return decade_ticks
        decades = np.arange(math.floor(minVal), math.ceil(maxVal) + 1)

        def level(multipliers: tuple[int, ...]) -> list[float]:
            values = (decades[:, None] + np.log10(multipliers)[None, :]).ravel()
            return [float(v) for v in values if minVal <= v <= maxVal]

        return [(None, level((1,))), (None, level((2, 5))), (None, level((3, 4, 6, 7, 8, 9)))]


def _plain_axes(plot: pg.PlotItem) -> None:
    """A `LogAxis` on the left (keeping label and log mode); plain numbers, no "(x0.001)"."""
    old = plot.getAxis("left")
    label, log_y = old.labelText, old.logMode
    plot.setAxisItems({"left": LogAxis("left")})
    plot.setLabel("left", label)
    # PlotItem.setLogMode only acts on a change of its check box: toggle so the new axis hears it.
    plot.setLogMode(x=False, y=not log_y)
    plot.setLogMode(x=False, y=log_y)
    # ... which also switches pyqtgraph's auto-range back on: the ranges are set here instead
    # (`_fit_range`), and an auto-range on every setData re-laid out the axes again and again.
    plot.vb.disableAutoRange()
    for name in ("left", "bottom"):
        plot.getAxis(name).enableAutoSIPrefix(False)
    # The left axis grows to fit its widest label but never shrinks: a label one character
    # narrower would otherwise re-lay out the whole plot (and repaint every curve) mid-race.
    plot.getAxis("left").setStyle(autoReduceTextSpace=False)


def _faded(color: QColor, alpha: int) -> QColor:
    faded = QColor(color)
    faded.setAlpha(alpha)
    return faded


class _SeriesCurve(FastCurve):
    """A `FastCurve` that keeps the series it was given (untransformed, full resolution) and
    draws a decimated, transformed copy of it. ``getOriginalDataset`` answers as PlotDataItem's
    does, so tests and exports read the real numbers."""

    original: tuple = (None, None)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # What is known of the series last given, so the next frame only reads new points.
        self.valid = _ValidPrefix()
        self.thinning = _GrowingThinning()

    def forget(self) -> None:
        self.valid.forget()
        self.thinning.forget()

    def set_series(self, x, y, shown_x, shown_y) -> None:
        self.original = (x, y) if len(x) else (None, None)
        self.setData(shown_x, shown_y)

    def getOriginalDataset(self):  # noqa: N802 - pyqtgraph's name
        return self.original

    def has_data(self) -> bool:
        return self.original[0] is not None


def _fit_range(vb: pg.ViewBox, extent, set_x: bool) -> None:
    """Set ``vb``'s range to fit ``extent`` when `_range_change` says so."""
    change = _range_change(vb, extent, set_x)
    if change is not None:
        vb.setRange(xRange=change[0], yRange=change[1], padding=0)


def _range_change(vb: pg.ViewBox, extent, set_x: bool):
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


class _SharedUserX:
    """Two views that show the same x axis side by side, kept aligned without pyqtgraph's
    ``setXLink``: the user's pan or zoom on either moves the other with it at once, and the
    other stops following the data too (``on_manual``); while streaming, the follower copies
    the leader's new x range in a redraw of its own (`_x_behind`). Linked, both re-laid out
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


def _x_behind(vb: pg.ViewBox, leader: pg.ViewBox) -> bool:
    """Whether ``vb`` (which shows ``leader``'s x axis) has yet to copy its x range."""
    return tuple(vb.viewRange()[0]) != tuple(leader.viewRange()[0])


def _copy_x(vb: pg.ViewBox, leader: pg.ViewBox, extent) -> None:
    """``leader``'s x range and, when `_range_change` says so, a y range fitting ``extent``."""
    change = _range_change(vb, extent, False)
    if change is None and not _x_behind(vb, leader):
        return
    y_range = change[1] if change is not None else vb.viewRange()[1]
    vb.setRange(xRange=tuple(leader.viewRange()[0]), yRange=y_range, padding=0)


def _mostly_hidden(vb: pg.ViewBox, extent) -> bool:
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


def _extent(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float, float] | None:
    if not len(x):
        return None
    return float(x[0]), float(x[-1]), float(y.min()), float(y.max())


def _union(extents) -> tuple[float, float, float, float]:
    extents = [e for e in extents if e is not None]
    if not extents:
        return (math.nan,) * 4
    return (min(e[0] for e in extents), max(e[1] for e in extents),
            min(e[2] for e in extents), max(e[3] for e in extents))


class RunCurvesPlot(SeriesPlot):
    """Per run: a solid line (optionally with a smoothed overlay) and a dashed evaluation line.

    ``curves[i]`` is run i's raw solid line (as in `SeriesPlot`), ``smoothed[i]`` its smoothed
    overlay (empty when smoothing is off), ``dashed[i]`` its validation line. When the series
    come with standard deviations (a race over several seeds), ``bands[i]`` / ``dashed_bands[i]``
    are the translucent mean ± std bands under the solid / dashed line (created on first use;
    None otherwise).

    Built for streaming like `SeriesPlot`: bare `FastCurve` items fed decimated data (about two
    points per horizontal pixel), the log transform done here, the view range set here with
    hysteresis (no pyqtgraph auto-range), the EMA extended incrementally as the series grows.
    """

    def __init__(self, title: str, y_label: str, log_y: bool, object_name: str,
                 legend: bool = True, parent=None):
        super().__init__(title, y_label, log_y, object_name, legend=False, parent=parent)
        self.setMenuEnabled(False)
        if legend:
            # A row between the title and the data (not a box over the newest steps).
            self.legend = KeyRow()
            layout = self.plotItem.layout
            layout.removeItem(self.plotItem.getAxis("top"))  # hidden: its row is the legend's
            layout.addItem(self.legend, 1, 1)
            layout.setAlignment(self.legend, Qt.AlignmentFlag.AlignHCenter)
        _plain_axes(self.plotItem)
        self.smoothed: list[_SeriesCurve] = []
        self.dashed: list[_SeriesCurve] = []
        self._colors: list[QColor] = []
        self._faint = False
        self._labels: list[str] = []
        self._legend_smoothing = 0.0  # the smoothing the legend's key names
        self._drawn: list[tuple | None] = []  # per run: (size, last x, smoothing) last drawn
        self._drawn_dashed: list[tuple | None] = []
        # Per run: (DebiasedEma, _Grown of x, smoothed values) of its solid series.
        self._ema: list[tuple | None] = []
        self._extents: dict[int, tuple | None] = {}  # id(item) → extent of its shown data
        self.bands: list[_Band | None] = []
        self.dashed_bands: list[_Band | None] = []
        # The plot whose x range this one copies (`follow_x_of`), or None: it sets its own.
        self.x_leader: RunCurvesPlot | None = None
        self.x_followers: list[RunCurvesPlot] = []
        self._shared_x: _SharedUserX | None = None
        # While streaming, a new range (axis re-layout + every curve repainted: the costliest
        # frame) is not set with the data but noted here and set in a frame of its own.
        self.defer_fit = False
        self.fit_pending = False

    def _remove_bands(self) -> None:
        for band in self.bands + self.dashed_bands:
            if band is not None:
                band.remove(self.plotItem)
        self.bands = [None] * len(self.curves)
        self.dashed_bands = [None] * len(self.curves)

    def _band(self, bands: list, i: int) -> _Band:
        if bands[i] is None:
            bands[i] = _Band(self.plotItem, self._colors[i])
        return bands[i]

    def set_runs(self, labels: list[str], colors: list[str]) -> None:
        self._remove_bands()
        for item in self.curves + self.smoothed + self.dashed:
            self.plotItem.removeItem(item)
        if self.legend is not None:
            self.legend.clear()
        self.curves, self.smoothed, self.dashed = [], [], []
        self._extents = {}
        self._colors = [QColor(c) for c in colors]
        self._faint = False
        for label, color in zip(labels, self._colors):
            raw = _SeriesCurve(pen=pg.mkPen(color, width=1), skipFiniteCheck=True)
            smooth = _SeriesCurve(pen=pg.mkPen(color, width=1), skipFiniteCheck=True)
            dashed = _SeriesCurve(pen=pg.mkPen(color, width=1, style=Qt.PenStyle.DashLine),
                                  skipFiniteCheck=True)
            smooth.setZValue(2)  # the smoothed line on top of the faint raw one
            dashed.setZValue(3)
            for item in (raw, smooth, dashed):
                self.plotItem.addItem(item)
            self.curves.append(raw)
            self.smoothed.append(smooth)
            self.dashed.append(dashed)
        self.bands = [None] * len(self.curves)
        self.dashed_bands = [None] * len(self.curves)
        self.invalidate()
        self._labels = list(labels)
        self._fill_legend(0.0)
        self.follow = True
        self.plotItem.vb.setRange(xRange=(0, 1), yRange=(0, 1), padding=0.02)

    def _fill_legend(self, smoothing: float) -> None:
        """The runs, then a key for the line styles that says whether and how much the solid
        lines are smoothed and what the faint line under them is (built afresh: it only changes
        with the smoothing slider). Two columns once the list gets long."""
        self._legend_smoothing = smoothing
        if self.legend is None:
            return
        self.legend.clear()
        for smooth, label in zip(self.smoothed, self._labels):
            self.legend.addItem(smooth, label)
        grey = QColor(FOREGROUND)
        # Short texts: a wider legend covers more of the curves' right end.
        keys = [(pg.mkPen(grey, width=1), f"smoothed {smoothing:.2f}" if smoothing > 0 else "train")]
        if smoothing > 0:
            keys.append((pg.mkPen(_faded(grey, RAW_ALPHA_SMOOTHED), width=1), "raw"))
        keys.append((pg.mkPen(grey, width=1, style=Qt.PenStyle.DashLine), "val"))
        self.legend.break_at = len(self._labels)  # the line-style key on a line of its own
        for pen, text in keys:
            self.legend.addItem(pg.PlotCurveItem(pen=pen), text)
        self._fit_legend()

    # The legend (a `KeyRow` above the data) is hidden when its rows would take more than this
    # share of the plot's height (a narrow plot needs many rows): the runs table is the key then.
    LEGEND_MAX_FRACTION = 0.2

    def _fit_legend(self, *_args) -> None:
        if self.legend is None:
            return
        # The row spans the data's column; the left axis's width is known before the data's.
        self.legend.fit(self.width() - self.plotItem.getAxis("left").width() - 12)
        room = self.LEGEND_MAX_FRACTION * self.plotItem.height()
        self.legend.set_shown(bool(self.curves) and self.legend.needed_height() <= room)

    def _points(self, item: _SeriesCurve, x: np.ndarray,
                y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Finite points of ``item``'s series; on a log axis also positive ones only.

        A zero (a learning rate annealed to 0, a loss that underflowed) has no place on a log
        axis; flooring it would stretch the axis down to the floor, so it is left out instead.
        The history's own views are passed through untouched in the usual all-valid case, and
        only the points added since the last frame are checked (`_ValidPrefix`).
        """
        return item.valid.points(x, y, self.log_y)

    def _budget(self) -> int:
        """Two points (min and max) per horizontal pixel are all a screen can show."""
        return max(200, min(MAX_POINTS, 2 * int(self.plotItem.vb.width())))

    def show_series(self, item: _SeriesCurve, x: np.ndarray, y: np.ndarray,
                    thin: bool = True) -> None:
        """Give ``item`` the series (x, y): decimated (`_GrowingThinning`: per frame, work for
        the new points only), log-transformed on a log axis."""
        sx, sy = item.thinning.thin(x, y, self._budget()) if thin else (x, y)
        if self.log_y and len(sy):
            sy = np.log10(np.maximum(sy, 1e-300))
        item.set_series(x, y, sx, sy)
        self._extents[id(item)] = _extent(sx, sy)

    def _smoothed(self, i: int, x: np.ndarray, y: np.ndarray, smoothing: float) -> np.ndarray:
        """`core.engine.smoothing`'s debiased EMA of run i's whole series (non-finite points stay raw,
        so the caller's filter drops them), extended by the new points only when the series only
        grew since the last frame."""
        cache = self._ema[i]
        grown = _Grown()
        grown.remember(x)
        if cache is not None and cache[0].weight == smoothing and cache[1].extends(x):
            state, _, old = cache
            if len(old) == len(y):
                return old
            values = np.concatenate([old, state.extend(y[len(old):])])
        else:
            state = DebiasedEma(smoothing)
            values = state.extend(y)
        self._ema[i] = (state, grown, values)
        return values

    def update_runs(
        self,
        solid: list[tuple[np.ndarray, np.ndarray]] | None = None,
        dashed: list[tuple[np.ndarray, np.ndarray]] | None = None,
        smoothing: float = 0.0,
        solid_std: list[np.ndarray | None] | None = None,
        dashed_std: list[np.ndarray | None] | None = None,
    ) -> None:
        """``setData`` on the items whose series changed: raw solid lines, their EMA when
        smoothing > 0, dashed lines. ``None`` leaves that group as it is.

        ``solid_std`` / ``dashed_std`` (per run, the std of each point of its solid / dashed
        series, or None) draw the mean ± std bands; the solid band is smoothed like its line."""
        faint = smoothing > 0
        if faint != self._faint:  # pens only change when smoothing is switched on or off
            for raw, color in zip(self.curves, self._colors):
                raw.setPen(pg.mkPen(_faded(color, RAW_ALPHA_SMOOTHED) if faint else color, width=1))
            self._faint = faint
        if solid is not None and smoothing != self._legend_smoothing:
            self._fill_legend(smoothing)
        for i, (x, y) in enumerate(solid or []):
            # A finished or diverged run's series no longer grows: skip its redraw.
            key = (len(y), float(x[-1]) if len(x) else None, smoothing)
            if self._drawn[i] == key:
                continue
            self._drawn[i] = key
            std = solid_std[i] if solid_std is not None else None
            if std is not None:
                self._band(self.bands, i).update(self, x, y, std, smoothing)
            shown_x, shown_y = self._points(self.curves[i], x, y)
            self.show_series(self.curves[i], shown_x, shown_y)
            if faint and len(y):
                if self._ema[i] is None or self._ema[i][0].weight != smoothing:
                    self.smoothed[i].forget()  # another EMA: its thinned copy is void
                # Smoothed over every finite point, as TensorBoard does, so the log axis (which
                # cannot draw a raw loss of 0) does not change the curve; then filtered for
                # drawing like the raw line (NaN kept raw by the EMA drops out here).
                smooth_y = self._smoothed(i, x, y, smoothing)
                self.show_series(self.smoothed[i], *self._points(self.smoothed[i], x, smooth_y))
            elif self.smoothed[i].has_data():
                self.show_series(self.smoothed[i], np.empty(0), np.empty(0))
        for i, (item, (x, y)) in enumerate(zip(self.dashed, dashed or [])):
            key = (len(y), float(x[-1]) if len(x) else None)
            if self._drawn_dashed[i] == key:
                continue
            self._drawn_dashed[i] = key
            std = dashed_std[i] if dashed_std is not None else None
            if std is not None:
                self._band(self.dashed_bands, i).update(self, x, y, std, 0.0)
            self.show_series(item, *self._points(item, x, y))
        vb, extent = self.plotItem.vb, _union(self._extents.values())
        if self.defer_fit and not _mostly_hidden(vb, extent):
            self.fit_pending = self.follow and (
                _range_change(vb, extent, self.x_leader is None) is not None
                or self._x_behind())
        else:
            self.fit_view()

    def follow_x_of(self, leader: RunCurvesPlot) -> None:
        """Show ``leader``'s x axis (plots of equal width, one above the other): panned and
        zoomed together, a double click on either follows the data again with both."""
        self.x_leader = leader
        leader.x_followers.append(self)
        self._shared_x = _SharedUserX(leader.plotItem.vb, self.plotItem.vb,
                                      self._stop_following_x)

    def _x_group(self) -> list[RunCurvesPlot]:
        """This plot and those that share its x axis, the leader first."""
        leader = self.x_leader or self
        return [leader, *leader.x_followers]

    def _stop_following_x(self) -> None:
        for plot in self._x_group():
            plot.follow = False

    def _x_behind(self) -> bool:
        return self.x_leader is not None and _x_behind(self.plotItem.vb,
                                                        self.x_leader.plotItem.vb)

    def needs_fit(self) -> bool:
        """A new range is waiting: its data's, or its x leader's new x range."""
        return self.fit_pending or (self.follow and self._x_behind())

    def fit_view(self, force: bool = False, one: bool = False) -> None:
        """Set the view range to the drawn data (unless the user zoomed or panned); the x
        range is the leader's when it has one. (``one``: as `LayerStatsPlot.fit_view`.)"""
        self.fit_pending = False
        if not (self.follow or force):
            return
        extent = _union(self._extents.values())
        if self.x_leader is None:
            _fit_range(self.plotItem.vb, extent, True)
        else:
            _copy_x(self.plotItem.vb, self.x_leader.plotItem.vb, extent)

    def mouseDoubleClickEvent(self, event) -> None:  # noqa: N802 - Qt's name
        for plot in self._x_group():
            plot.follow = True
            plot.fit_view()
        pg.PlotWidget.mouseDoubleClickEvent(self, event)

    def band_data(self, run: int, dashed: bool = False):
        """(x, lower, upper) of run's band as drawn, or None (for tests and exports)."""
        band = (self.dashed_bands if dashed else self.bands)[run]
        return None if band is None else band.data()

    def invalidate(self) -> None:
        """Forget what was drawn (the x column or the axis mode changed): redraw everything."""
        self._drawn = [None] * len(self.curves)
        self._drawn_dashed = [None] * len(self.curves)
        self._ema = [None] * len(self.curves)
        for item in self.curves + self.smoothed + self.dashed:
            item.forget()
        for band in self.bands + self.dashed_bands:
            if band is not None:
                band.forget()

    def clear_data(self) -> None:
        empty = np.empty(0)
        for item in self.curves + self.smoothed + self.dashed:
            self.show_series(item, empty, empty)
        for band in self.bands + self.dashed_bands:
            if band is not None:
                band.clear(self)
        self.invalidate()


def _envelope(x: np.ndarray, lower: np.ndarray, upper: np.ndarray,
              max_points: int = BAND_POINTS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """At most ``max_points`` points: per bucket, min(lower) and max(upper) at the bucket's first
    and last x (so the band never looks narrower than the data)."""
    n = len(x)
    if n <= max_points:
        return x, lower, upper
    size = -(-n // (max_points // 2))
    starts = np.arange(0, n, size)
    ends = np.minimum(starts + size, n) - 1
    lo = np.minimum.reduceat(lower, starts)
    hi = np.maximum.reduceat(upper, starts)
    xs = np.column_stack([x[starts], x[ends]]).ravel()
    return xs, np.repeat(lo, 2), np.repeat(hi, 2)


class _Band:
    """A translucent mean ± std band: two invisible edge curves and the fill between them.

    The edges are `_SeriesCurve` items fed through their plot (log transform there). On a log
    axis a lower edge at or below zero cannot be drawn; it is floored one decade under the mean
    instead. A long series is drawn as its envelope through `BAND_POINTS` points (per bucket the
    lowest lower and highest upper edge): filling a 10⁵-vertex polygon would take seconds.
    """

    def __init__(self, plot: pg.PlotItem, color: QColor):
        # Invisible pens, not pen=None: FillBetweenItem fills between the curves' paths.
        self.lower = _SeriesCurve(pen=pg.mkPen(0, 0, 0, 0), skipFiniteCheck=True)
        self.upper = _SeriesCurve(pen=pg.mkPen(0, 0, 0, 0), skipFiniteCheck=True)
        self.fill = pg.FillBetweenItem(self.lower, self.upper, brush=_faded(color, BAND_ALPHA))
        for item in (self.lower, self.upper, self.fill):
            plot.addItem(item)
        self.fill.setZValue(-5)  # under every line
        self.forget()

    def forget(self) -> None:
        # (weight, _Grown of x, DebiasedEma of the mean and of the std, their smoothed values)
        self._ema: tuple | None = None

    def _smoothed(self, x: np.ndarray, mean: np.ndarray, std: np.ndarray,
                  smoothing: float) -> tuple[np.ndarray, np.ndarray]:
        """The smoothed mean and std (the band is linear in both), extended by the new points
        only while the series only grows, like `RunCurvesPlot._smoothed`."""
        cache = self._ema
        grown = _Grown()
        grown.remember(x)
        if cache is not None and cache[0] == smoothing and cache[1].extends(x):
            _, _, mean_ema, std_ema, smooth_mean, smooth_std = cache
            m = len(smooth_mean)
            if m < len(x):
                smooth_mean = np.concatenate([smooth_mean, mean_ema.extend(mean[m:])])
                smooth_std = np.concatenate([smooth_std, std_ema.extend(std[m:])])
        else:
            mean_ema, std_ema = DebiasedEma(smoothing), DebiasedEma(smoothing)
            smooth_mean, smooth_std = mean_ema.extend(mean), std_ema.extend(std)
        self._ema = (smoothing, grown, mean_ema, std_ema, smooth_mean, smooth_std)
        return smooth_mean, smooth_std

    def update(self, owner: RunCurvesPlot, x: np.ndarray, mean: np.ndarray, std: np.ndarray,
               smoothing: float) -> None:
        log_y = owner.log_y
        if smoothing > 0:  # like the line: over every finite point, on either axis
            mean, std = self._smoothed(x, mean, std, smoothing)
        lower, upper = mean - std, mean + std
        keep = np.isfinite(x) & np.isfinite(lower) & np.isfinite(upper)
        if log_y:
            keep &= mean > 0
        if not keep.all():
            x, mean, lower, upper = x[keep], mean[keep], lower[keep], upper[keep]
        if log_y:
            lower = np.where(lower > 0, lower, mean / 10.0)
        x, lower, upper = _envelope(x, lower, upper)
        owner.show_series(self.lower, x, lower, thin=False)
        owner.show_series(self.upper, x, upper, thin=False)

    def data(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x, lower = self.lower.getOriginalDataset()
        _, upper = self.upper.getOriginalDataset()
        return x, lower, upper

    def clear(self, owner: RunCurvesPlot) -> None:
        empty = np.empty(0)
        owner.show_series(self.lower, empty, empty, thin=False)
        owner.show_series(self.upper, empty, empty, thin=False)

    def remove(self, plot: pg.PlotItem) -> None:
        for item in (self.fill, self.lower, self.upper):
            plot.removeItem(item)


def _layer_colors(count: int) -> list[QColor]:
    """Layer depth as a sequential colour: shallow = dark purple … deep = yellow (plasma)."""
    cmap = pg.colormap.get("plasma")
    positions = np.linspace(0.25, 0.95, max(count, 1))
    return [cmap.mapToQColor(float(p)) for p in positions[:count]]


class _LayerLog:
    """Per-layer statistics of every run at each evaluation the view has seen (bounded)."""

    def __init__(self) -> None:
        self.size = 0
        self.xs = np.empty((0, 3))  # step, epoch, wall
        self.grad = np.empty((0, 0, 0))  # (n, runs, layers)
        self.ratio = np.empty((0, 0, 0))

    @property
    def layers(self) -> int:
        return self.grad.shape[2] if self.size else 0

    def append(self, xs: tuple[float, float, float], grad: np.ndarray, ratio: np.ndarray) -> None:
        if self.size == 0 or grad.shape != self.grad.shape[1:]:
            # All at once (see core/engine/history.py: buffers grown by doubling fragment the heap).
            self.xs = np.empty((LAYER_LOG_CAPACITY, 3))
            self.grad = np.empty((LAYER_LOG_CAPACITY, *grad.shape))
            self.ratio = np.empty((LAYER_LOG_CAPACITY, *grad.shape))
            self.size = 0
        if self.size == LAYER_LOG_CAPACITY:
            # Thin uniformly: the per-layer plot is a trend, every other point is plenty.
            keep = self.size // 2
            for name in ("xs", "grad", "ratio"):
                arr = getattr(self, name)
                arr[:keep] = arr[: 2 * keep : 2]
            self.size = keep
        self.xs[self.size] = xs
        self.grad[self.size] = grad
        self.ratio[self.size] = ratio
        self.size += 1


class LayerStatsPlot(pg.GraphicsLayoutWidget):
    """Gradient norm and update/weight ratio per layer (log y), one curve per layer of one run.

    Bare `_SeriesCurve` items with the log transform and the view range done here (hysteresis),
    like `RunCurvesPlot`; no grid (replaying its picture was the largest paint cost)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("layerStatsPlot")
        # Side by side: stacked, each plot is too short for a readable log axis at 1280×800.
        self.grad_plot = self.addPlot(row=0, col=0)
        self.ratio_plot = self.addPlot(row=0, col=1)
        for plot, title, label in (
            (self.grad_plot, "Gradient norm per layer", "‖∇W‖"),
            (self.ratio_plot, "Update / weight per layer", "‖ΔW‖/‖W‖"),
        ):
            plot.setTitle(title, size="9pt")
            plot.setLabel("left", label)
            plot.setLogMode(x=False, y=True)  # axis ticks only: the data is transformed here
            plot.setMenuEnabled(False)
            plot.vb.disableAutoRange()
            plot.vb.sigRangeChangedManually.connect(self._stop_following)
            _plain_axes(plot)
        self.grad_plot.setLabel("bottom", "step")
        self.ratio_plot.setLabel("bottom", "step")
        # The ratio plot shows the gradient plot's steps: zoomed together, fitted one at a time.
        self._shared_x = _SharedUserX(self.grad_plot.vb, self.ratio_plot.vb, self._stop_following)
        # The layers' key is a row between the gradient plot's title and its data, as the loss
        # plot's (`RunCurvesPlot`); the ratio plot keeps a row as tall, so both data areas align.
        self.legend = KeyRow()
        for plot in (self.grad_plot, self.ratio_plot):
            plot.layout.removeItem(plot.getAxis("top"))  # hidden: its row is the legend's
        self.grad_plot.layout.addItem(self.legend, 1, 1)
        self.grad_plot.layout.setAlignment(self.legend, Qt.AlignmentFlag.AlignHCenter)
        self.grad_plot.vb.sigResized.connect(self._fit_legend)
        self.grad_curves: list[_SeriesCurve] = []
        self.ratio_curves: list[_SeriesCurve] = []
        self.follow = True
        self.defer_fit = False  # as `RunCurvesPlot.defer_fit`
        self.fit_pending = False

    def _stop_following(self, *_args) -> None:
        self.follow = False

    def mouseDoubleClickEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self.follow = True
        self._fit()
        super().mouseDoubleClickEvent(event)

    def set_layers(self, count: int) -> None:
        """One curve per layer (L1 = the first linear/conv layer), coloured by depth."""
        if count == len(self.grad_curves):
            return
        for item in self.grad_curves:
            self.grad_plot.removeItem(item)
        for item in self.ratio_curves:
            self.ratio_plot.removeItem(item)
        self.legend.clear()
        self.grad_curves, self.ratio_curves = [], []
        for k, color in enumerate(_layer_colors(count)):
            grad = _SeriesCurve(pen=pg.mkPen(color, width=1), skipFiniteCheck=True)
            ratio = _SeriesCurve(pen=pg.mkPen(color, width=1), skipFiniteCheck=True)
            self.legend.addItem(grad, f"L{k + 1}")
            self.grad_plot.addItem(grad)
            self.ratio_plot.addItem(ratio)
            self.grad_curves.append(grad)
            self.ratio_curves.append(ratio)
        self._fit_legend()
        self.follow = True

    def _fit_legend(self, *_args) -> None:
        self.legend.fit(self.grad_plot.width() - self.grad_plot.getAxis("left").width() - 12)
        self.ratio_plot.layout.setRowFixedHeight(1, self.legend.needed_height())

    def update_layers(self, x: np.ndarray, grad: np.ndarray, ratio: np.ndarray) -> None:
        """``grad``/``ratio`` are (n, layers); zeros (no update at the last step) are left out."""
        budget = max(200, min(MAX_POINTS, 2 * int(self.grad_plot.vb.width())))
        for items, values in ((self.grad_curves, grad), (self.ratio_curves, ratio)):
            for k, item in enumerate(items):
                # Log axis: 0 means "not measured", not −∞. Per frame only the evaluations
                # added since the last one are read (see `RunCurvesPlot._points`).
                kx, ky = item.valid.points(x, values[:, k], positive=True)
                sx, sy = item.thinning.thin(kx, ky, budget)
                log_y = np.log10(sy) if len(sy) else sy
                item.set_series(kx, ky, sx, log_y)
                item.extent = _extent(sx, log_y)
        extents = self._extents()
        if self.defer_fit and not (_mostly_hidden(self.grad_plot.vb, extents[0])
                                   or _mostly_hidden(self.ratio_plot.vb, extents[1])):
            self.fit_pending = self.follow and self._unfitted(*extents) is not None
        else:
            self._fit()

    def needs_fit(self) -> bool:
        return self.fit_pending

    def fit_view(self, one: bool = False) -> None:
        """Fit both plots, or (``one``, while streaming) the first that needs it: each new
        range re-lays out an axis and repaints its curves, so each gets a redraw of its own."""
        if not one:
            self._fit()
            return
        extents = self._extents()
        plot = self._unfitted(*extents) if self.follow else None
        if plot is self.grad_plot:
            _fit_range(self.grad_plot.vb, extents[0], True)
        elif plot is self.ratio_plot:
            _copy_x(self.ratio_plot.vb, self.grad_plot.vb, extents[1])
        self.fit_pending = self.follow and self._unfitted(*extents) is not None

    def _extents(self):
        """The extents of the gradient plot's and the ratio plot's data; the gradient plot
        sets the x range of both, so its x extent covers both."""
        grad = _union(getattr(item, "extent", None) for item in self.grad_curves)
        ratio = _union(getattr(item, "extent", None) for item in self.ratio_curves)
        both = _union([grad, ratio])
        return (both[0], both[1], grad[2], grad[3]), ratio

    def _unfitted(self, grad_extent, ratio_extent):
        """The first of the two plots whose range should change for these `_extents`, or None."""
        if _range_change(self.grad_plot.vb, grad_extent, True) is not None:
            return self.grad_plot
        ratio_vb = self.ratio_plot.vb
        if (_range_change(ratio_vb, ratio_extent, False) is not None
                or _x_behind(ratio_vb, self.grad_plot.vb)):
            return self.ratio_plot
        return None

    def _fit(self) -> None:
        self.fit_pending = False
        if not self.follow:
            return
        grad_extent, ratio_extent = self._extents()
        _fit_range(self.grad_plot.vb, grad_extent, True)
        _copy_x(self.ratio_plot.vb, self.grad_plot.vb, ratio_extent)

    def set_x_label(self, label: str) -> None:
        self.grad_plot.setLabel("bottom", label)
        self.ratio_plot.setLabel("bottom", label)

    def clear_data(self) -> None:
        empty = np.empty(0)
        for item in self.grad_curves + self.ratio_curves:
            item.set_series(empty, empty, empty, empty)
            item.extent = None
        self.forget()

    def forget(self) -> None:
        """The next series are another run's or another x column's: check and thin afresh."""
        for item in self.grad_curves + self.ratio_curves:
            item.forget()


# -- decision boundaries ---------------------------------------------------------------------------


def _binary_colormap() -> pg.ColorMap:
    """Diverging blue (class 0) … background (undecided) … orange (class 1)."""
    blue, orange = class_color(0).darker(125), class_color(1).darker(125)
    middle = QColor(BACKGROUND).lighter(130)
    return pg.ColorMap([0.0, 0.5, 1.0], [blue, middle, orange])


@functools.lru_cache(maxsize=4)
def _lookup_table(name: str) -> np.ndarray:
    """A 256-entry LUT: "binary" (the diverging class map) or a pyqtgraph colormap name."""
    cmap = _binary_colormap() if name == "binary" else pg.colormap.get(name)
    return cmap.getLookupTable(nPts=256)


def _class_palette(count: int) -> np.ndarray:
    """(count, 3) uint8 RGB class colours, cycling past ten classes."""
    rgb = [class_color(k).getRgb()[:3] for k in range(count)]
    return np.asarray(rgb, dtype=np.uint8).reshape(count, 3)


def confidence_rgba(classes: np.ndarray, confidence: np.ndarray, n_classes: int) -> np.ndarray:
    """(..., G, G, 4) uint8: the predicted class's colour, alpha rising with the confidence.

    The confidence (max probability) runs from 1/k (a guess) to 1 (certain); it is mapped
    linearly to alpha 20 … 215, so an uncertain region fades into the background.
    """
    palette = _class_palette(max(n_classes, 1))
    cls = np.clip(classes.astype(np.intp), 0, len(palette) - 1)
    floor = 1.0 / max(n_classes, 1)
    share = np.clip((np.nan_to_num(confidence, nan=floor) - floor) / (1.0 - floor), 0.0, 1.0)
    rgba = np.empty((*cls.shape, 4), dtype=np.uint8)
    rgba[..., :3] = palette[cls]
    rgba[..., 3] = (20 + 195 * share).astype(np.uint8)
    return rgba


def data_grid_size(values: np.ndarray) -> int:
    """Side of the square grid a flattened (runs, G·G) prediction array came from (0 if none)."""
    side = int(round(math.sqrt(values.shape[1])))
    return side if side * side == values.shape[1] else 0


@dataclass
class _Panel:
    """One run's small multiple."""

    plot: pg.PlotItem
    image: pg.ImageItem | None
    curve: pg.PlotDataItem | None
    color: str
    title: str = ""

    def set_title(self, text: str) -> None:
        if text != self.title:  # re-laying out a title costs more than the image itself
            self.plot.setTitle(text, color=self.color, size="9pt")
            self.title = text


def _point_styles(labels: np.ndarray | None, count: int, hollow: bool):
    """Per-point (pens, brushes) as object arrays, indexed once from a per-class table."""
    styles = [class_point_style(k, hollow) for k in range(max(count, 1))]
    pens = np.array([pen for pen, _ in styles], dtype=object)
    brushes = np.array([brush for _, brush in styles], dtype=object)
    if labels is None:
        return pens[0], brushes[0]
    return pens[labels], brushes[labels]


# -- comparison table ------------------------------------------------------------------------------


class NumericItem(QTableWidgetItem):
    """A cell that sorts by the number in its UserRole (missing values sort after all others)."""

    def __init__(self, text: str = "", key: float = math.inf):
        super().__init__(text)
        self.setData(Qt.ItemDataRole.UserRole, key)
        self.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    def set_value(self, text: str, key: float) -> None:
        self.setText(text)
        self.setData(Qt.ItemDataRole.UserRole, key)

    def key(self) -> float:
        value = self.data(Qt.ItemDataRole.UserRole)
        return math.inf if value is None else float(value)

    def __lt__(self, other: QTableWidgetItem) -> bool:
        if isinstance(other, NumericItem):
            return self.key() < other.key()
        return super().__lt__(other)


# Status ranks for sorting: running < finished < stopped early < diverged.
_STATUS_RANK = {"running": 0, "finished": 1, "stopped": 2, "diverged": 3}
_STATUS_COLORS = {"diverged": QColor("#ff6b6b"), "stopped": QColor("#e6c35c")}


@dataclass(frozen=True)
class _Column:
    header: str
    tooltip: str


def _fmt(value: float, spec: str) -> str:
    return "—" if not math.isfinite(value) else format(value, spec)


def _fmt_pm(value: float, std: float, spec: str, std_spec: str) -> str:
    """``value`` alone, or "value ± std" when a std over seeds is known ("0.123 ± 0.004")."""
    if not math.isfinite(value) or not math.isfinite(std):
        return _fmt(value, spec)
    return f"{format(value, spec)} ± {format(std, std_spec)}"


# -- the view --------------------------------------------------------------------------------------


class NetworkView(QWidget):
    """Tabs of views over a `NetworkHistory`: curves, boundaries, confusion matrix, comparison."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("networkView")
        # Replaceable in tests: (parent, caption, dir, filter) → (path, selected filter).
        self.save_dialog: Callable = QFileDialog.getSaveFileName
        # Replaceable in tests: (parent, title, text) → None.
        self.report_error: Callable = QMessageBox.warning

        self.labels: list[str] = []
        self.colors: list[str] = []
        self.dataset: Dataset | None = None
        self.total_steps: int | None = None
        self._history: NetworkHistory | None = None
        self._drawn_evaluation_step = -1
        self._layer_log = _LayerLog()
        self._layer_stats_seen = 0
        self._selected_run = 0
        self._panels: list[_Panel] = []
        # Per run: the last snapshot taken while the run was alive (shown after it died).
        self._confusions: list[np.ndarray | None] = []
        self._confusion_steps: list[int] = []
        self._table_items: list[list[QTableWidgetItem]] = []
        # Per run: the last evaluation whose snapshot (image / curve) was finite and its own.
        self._snapshots: list = []
        # Round-robin drawing: the parts still to draw, in turn, one per update_from.
        self._parts: list = []
        self._dirty: set = set()
        self._turn = 0
        self._seen_step = None

        self.tabs = QTabWidget(objectName="networkTabs")
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self._build_curves_tab(), "Curves")
        self.tabs.addTab(self._build_boundary_tab(), "Decision boundaries")
        self.tabs.addTab(self._build_confusion_tab(), "Confusion matrix")
        self.tabs.addTab(self._build_comparison_tab(), "Comparison")
        from app.surface.view import SurfaceView  # the loss surface around the weights

        self.surface_view = SurfaceView()
        self.surface_view.sharpness_measured.connect(self._refresh_table)
        self.tabs.addTab(self.surface_view, "Surface")
        self.tabs.currentChanged.connect(self._on_tab_changed)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tabs)

    # -- construction ------------------------------------------------------------------------

    def hide_controls(self) -> None:
        """Only the plots (for exported frames, app/export/dialog.py): the control row goes."""
        self.curve_controls.setContentsMargins(0, 0, 0, 0)
        for i in range(self.curve_controls.count()):
            widget = self.curve_controls.itemAt(i).widget()
            if widget is not None:
                widget.hide()

    def _build_curves_tab(self) -> QWidget:
        page = QWidget()
        controls = self.curve_controls = QHBoxLayout()
        controls.setContentsMargins(6, 4, 6, 0)

        controls.addWidget(QLabel("Smoothing"))
        self.smoothing_slider = QSlider(Qt.Orientation.Horizontal, objectName="smoothingSlider")
        self.smoothing_slider.setRange(0, SMOOTHING_TICKS)
        # On by default: an unsmoothed mini-batch loss is a band of noise (core/engine/smoothing.py).
        self.smoothing_slider.setValue(round(DEFAULT_SMOOTHING / SMOOTHING_MAX * SMOOTHING_TICKS))
        self.smoothing_slider.setFixedWidth(140)
        self.smoothing_slider.setToolTip(
            "Smoothing of the mini-batch training loss: TensorBoard's debiased exponential "
            "moving average, last = w·last + (1−w)·x, shown = last / (1 − wⁿ) (0 = off, 0.99 = "
            "strongest). The raw data stays drawn as a faint line behind it."
        )
        self.smoothing_slider.valueChanged.connect(self._on_smoothing)
        controls.addWidget(self.smoothing_slider)
        self.smoothing_label = QLabel(f"{self.smoothing:.2f}", objectName="smoothingLabel")
        self.smoothing_label.setMinimumWidth(32)
        controls.addWidget(self.smoothing_label)

        controls.addSpacing(12)
        controls.addWidget(QLabel("x axis"))
        self.x_axis_combo = QComboBox(objectName="xAxisCombo")
        self.x_axis_combo.addItems(list(X_AXES))
        self.x_axis_combo.setToolTip(
            "What the curves are plotted against: optimizer steps, epochs (passes over the "
            "training data) or seconds since the race started."
        )
        self.x_axis_combo.currentIndexChanged.connect(self._on_x_axis)
        controls.addWidget(self.x_axis_combo)

        controls.addSpacing(12)
        self.log_loss_check = QCheckBox("log loss", objectName="logLossCheck")
        self.log_loss_check.setChecked(True)
        self.log_loss_check.setToolTip(
            "Draw the loss on a logarithmic axis, where steady progress looks like a straight "
            "line."
        )
        self.log_loss_check.toggled.connect(self._on_log_loss)
        controls.addWidget(self.log_loss_check)

        controls.addStretch(1)
        controls.addWidget(QLabel("Layers of"))
        self.layer_run_combo = QComboBox(objectName="layerRunCombo")
        self.layer_run_combo.setToolTip(
            "The run whose per-layer gradient norms and update ratios are shown."
        )
        self.layer_run_combo.currentIndexChanged.connect(self._on_run_selected)
        controls.addWidget(self.layer_run_combo)

        self.loss_plot = RunCurvesPlot(
            "Loss  (solid: mini-batch train, dashed: validation)", "loss", True, "lossCurves"
        )
        self.loss_plot.setToolTip("Training loss of each mini-batch and validation loss.")
        self.accuracy_plot = RunCurvesPlot(
            "Accuracy  (solid: train, dashed: validation)", "accuracy", False, "accuracyCurves",
            legend=False,
        )
        self.accuracy_plot.setToolTip("Accuracy on the full training and validation sets.")
        # Log y: the runs' learning rates often differ by decades (SGD 0.1, Adam 0.001).
        self.lr_plot = RunCurvesPlot("Learning rate", "lr", True, "lrCurves", legend=False)
        self.lr_plot.setToolTip("The learning rate each run used for its next update.")
        self.layer_plot = LayerStatsPlot()
        self.layer_plot.setToolTip(
            "Per-layer gradient norm and relative update size of the selected run, at each "
            "evaluation."
        )
        # Only plots of equal width share an x axis: the loss plot sets it.
        self.accuracy_plot.follow_x_of(self.loss_plot)

        grid = QGridLayout()
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(2)
        # Six columns: loss and accuracy share the top row; below, the learning rate takes a
        # third and the two per-layer plots two thirds.
        grid.addWidget(self.loss_plot, 0, 0, 1, 3)
        grid.addWidget(self.accuracy_plot, 0, 3, 1, 3)
        grid.addWidget(self.lr_plot, 1, 0, 1, 2)
        grid.addWidget(self.layer_plot, 1, 2, 1, 4)
        for column in range(6):
            grid.setColumnStretch(column, 1)
        grid.setRowStretch(0, 3)
        grid.setRowStretch(1, 2)

        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(controls)
        layout.addLayout(grid, 1)
        return page

    def _build_boundary_tab(self) -> QWidget:
        self.boundary_grid = pg.GraphicsLayoutWidget()
        self.boundary_grid.setObjectName("boundaryGrid")
        self.boundary_grid.setToolTip(
            "Each run's prediction over the data plane: filled dots are training points, "
            "hollow rings validation points."
        )
        return self.boundary_grid

    def _build_confusion_tab(self) -> QWidget:
        page = QWidget()
        controls = QHBoxLayout()
        controls.setContentsMargins(6, 4, 6, 0)
        controls.addWidget(QLabel("Run"))
        self.confusion_run_combo = QComboBox(objectName="confusionRunCombo")
        self.confusion_run_combo.setToolTip("The run whose confusion matrix is shown.")
        self.confusion_run_combo.currentIndexChanged.connect(self._on_run_selected)
        controls.addWidget(self.confusion_run_combo)
        controls.addStretch(1)

        self.confusion_plot = pg.PlotWidget()
        self.confusion_plot.setObjectName("confusionPlot")
        self.confusion_plot.setToolTip(
            "Rows are true classes, columns predictions; numbers are counts and the colour is "
            "the share of the row (the class's recall on the diagonal)."
        )
        self.confusion_plot.setMenuEnabled(False)
        item = self.confusion_plot.plotItem
        item.setLabel("bottom", "predicted class")
        item.setLabel("left", "true class")
        item.invertY(True)  # true class 0 in the top row, as matrices are written
        item.setAspectLocked(True)
        item.hideButtons()
        self.confusion_image = pg.ImageItem(axisOrder="row-major")
        self.confusion_image.setLookupTable(
            pg.ColorMap([0.0, 1.0], [QColor(BACKGROUND).lighter(140), QColor("#3d7fd9")])
            .getLookupTable(nPts=256)
        )
        item.addItem(self.confusion_image)
        self.confusion_texts: list[pg.TextItem] = []

        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addWidget(self.confusion_plot, 1)
        return page

    def _build_comparison_tab(self) -> QWidget:
        page = QWidget()
        controls = QHBoxLayout()
        controls.setContentsMargins(6, 4, 6, 0)
        controls.addWidget(QLabel("Target loss"))
        self.target_spin = QDoubleSpinBox(objectName="targetLossSpin")
        self.target_spin.setDecimals(4)
        self.target_spin.setRange(1e-4, 1e6)
        self.target_spin.setStepType(QDoubleSpinBox.StepType.AdaptiveDecimalStepType)
        self.target_spin.setValue(0.1)
        self.target_spin.setToolTip(
            "The validation loss a run has to reach; the table shows the first step it did."
        )
        self.target_spin.valueChanged.connect(self._refresh_table)
        controls.addWidget(self.target_spin)
        controls.addStretch(1)
        self.export_button = QPushButton("Export CSV…", objectName="exportCsvButton")
        self.export_button.setToolTip("Save this table, one row per run, as a CSV file.")
        self.export_button.clicked.connect(self._on_export)
        controls.addWidget(self.export_button)

        self.table = QTableWidget(0, 0, objectName="comparisonTable")
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        self.table.setAlternatingRowColors(True)
        self.table.setToolTip("One row per run; click a column header to sort by it.")
        self._set_columns("accuracy")

        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addWidget(self.table, 1)
        return page

    def _set_columns(self, metric: str, split: str = "val") -> None:
        """Headers for a classification ("accuracy") or regression ("r2") lab.

        ``split`` is "val", or "train" when the data set has no validation split (the table then
        compares full-training-set numbers and says so).
        """
        name = "R²" if metric == "r2" else "accuracy"
        short = "R²" if metric == "r2" else "acc."
        where = "Validation" if split == "val" else "Full-training-set"
        self._columns = [
            _Column("#", "The run's place in the lab (sort by it to restore the lab's order)."),
            _Column("Run", "The run's label."),
            _Column(f"{split.capitalize()} loss", f"{where} loss at the latest evaluation."),
            _Column(f"Best {split} loss", f"Lowest {where.lower()} loss over all evaluations."),
            _Column(f"{split.capitalize()} {short}", f"{where} {name} at the latest evaluation."),
            _Column(f"Best {split} {short}",
                    f"Highest {where.lower()} {name} over all evaluations."),
            _Column("Step to target", f"First evaluated step whose {where.lower()} loss was at "
                                      "or below the target loss."),
            _Column("Sharpness", "Top Hessian eigenvalue λ_max at the run's latest tracked "
                                 "step (problem.sharpness_every), else the last measurement of "
                                 "the Surface tab's Sharpness page. Gradient descent is stable "
                                 "only while λ_max < 2/lr."),
            _Column("Wall (s)", "Seconds since the race started when the run last trained."),
            _Column("Status", "Running, finished, stopped early or diverged (with the step)."),
        ]
        self.table.setColumnCount(len(self._columns))
        for k, column in enumerate(self._columns):
            item = QTableWidgetItem(column.header)
            item.setToolTip(column.tooltip)
            self.table.setHorizontalHeaderItem(k, item)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)  # spare width goes to the status text

    # -- public API ----------------------------------------------------------------------------

    def set_runs(
        self, labels: list[str], colors: list[str], dataset: Dataset | None,
        total_steps: int | None = None,
    ) -> None:
        """Rebuild every item for these runs and this data set; clears all drawn data.

        ``total_steps`` (the lab's ``steps``) lets the comparison say "finished" rather than
        "running" once the history reaches it.
        """
        self.labels, self.colors = list(labels), list(colors)
        self.dataset = dataset
        self.total_steps = total_steps
        self._set_min_x_span()
        self._history = None
        self._drawn_evaluation_step = -1
        self._layer_log = _LayerLog()
        self._layer_stats_seen = 0  # history.layer_stats.total already in the layer log
        self._confusions = [None] * len(self.labels)
        self._confusion_steps = [0] * len(self.labels)
        self._snapshots = [None] * len(self.labels)
        self._selected_run = 0
        self._parts = [*CURVE_PARTS, "table", "confusion",
                       *(("panel", i) for i in range(len(self.labels)))]
        self._dirty = set()
        self._turn = 0
        self._seen_step = None

        regression = dataset is not None and dataset.task == "regression"
        self.accuracy_plot.plotItem.setTitle(
            f"{'R²' if regression else 'Accuracy'}  (solid: train, dashed: validation)",
            size="10pt",
        )
        self.accuracy_plot.plotItem.setLabel("left", "R²" if regression else "accuracy")
        # Accuracy lies in [0, 1] and R² ≤ 1: the view stops a hair past them (the curves at 1
        # stay clear of the frame) and the axis has no tick there (no "1.1" from padding).
        low = -math.inf if regression else -UNIT_HEADROOM
        accuracy_vb = self.accuracy_plot.plotItem.vb
        accuracy_vb.y_bounds = (low, 1.0 + UNIT_HEADROOM)
        accuracy_vb.setLimits(yMin=None if regression else low, yMax=1.0 + UNIT_HEADROOM)
        self.accuracy_plot.getAxis("left").tick_bounds = (-math.inf if regression else 0.0, 1.0)
        for plot in (self.loss_plot, self.accuracy_plot, self.lr_plot):
            plot.set_runs(self.labels, self.colors)
        self.layer_plot.set_layers(0)

        for combo in (self.layer_run_combo, self.confusion_run_combo):
            combo.blockSignals(True)
            combo.clear()
            for label, color in zip(self.labels, self.colors):
                combo.addItem(label)
                combo.setItemData(combo.count() - 1, QColor(color), Qt.ItemDataRole.DecorationRole)
            combo.blockSignals(False)

        self._build_panels()
        self._build_confusion()
        self._build_table(regression)
        self.surface_view.set_runs(self.labels, self.colors)
        regression_title = "Fitted curves" if self._curve_mode() else "Predictions"
        self.tabs.setTabText(1, regression_title if regression else "Decision boundaries")
        self.tabs.setTabEnabled(2, dataset is not None and dataset.task == "classification")

    def update_from(self, history: NetworkHistory) -> None:
        """Take in the history and draw ONE part of the view that changed (round-robin).

        Parts: loss, accuracy, learning rate and layer curves, the comparison table, the
        confusion matrix and each decision-boundary panel. Qt then repaints only what that part
        touched, so no single call or paint blocks the window for long. Parts on a hidden tab
        are not drawn at all; they are drawn at once when their tab is shown. Snapshots
        (boundaries, confusion, per-layer statistics) are recorded at every new evaluation,
        whichever part is drawn. `flush` draws every pending part now.
        """
        self._history = history
        if history.last_evaluation is not None and (
            history.last_evaluation_step != self._drawn_evaluation_step
        ):
            self._record_evaluation(history)
            self._drawn_evaluation_step = history.last_evaluation_step
            self._dirty.update(self._parts)
        step = (history.last_step, sum(len(s) for s in history.steps))
        if step != self._seen_step:
            self._seen_step = step
            self._dirty.update(("loss", "lr"))
            # Between evaluations only the wall time moves in the table.
            self._dirty.add("table")
        self.surface_view.show_history(history)  # tracked sharpness: only new points are drawn
        self._draw_next()

    def flush(self) -> None:
        """Draw every pending part now, on every tab (the end of a race, tests, screenshots)."""
        for part in self._parts:
            if part in self._dirty:
                self._dirty.discard(part)
                self._draw_part(part)
        self._fit_pending(TAB_CURVES, every=True)

    def _curve_plots(self) -> tuple:
        return (self.loss_plot, self.accuracy_plot, self.lr_plot, self.layer_plot)

    def _fit_pending(self, tab: int, every: bool = False) -> bool:
        """Set the range a curve plot is waiting for (one, or ``every``); True if one was set."""
        if tab != TAB_CURVES:
            return False
        done = False
        for plot in self._curve_plots():
            if plot.needs_fit():
                plot.fit_view(one=not every)
                done = True
                if not every:
                    break
        return done

    def _draw_streaming(self, part) -> None:
        """Draw ``part`` for the round-robin: a curve plot's new range waits for its own turn."""
        plots = self._curve_plots()
        for plot in plots:
            plot.defer_fit = True
        try:
            self._draw_part(part)
        finally:
            for plot in plots:
                plot.defer_fit = False

    def _part_tab(self, part) -> int:
        if part in CURVE_PARTS:
            return TAB_CURVES
        if part == "table":
            return TAB_TABLE
        if part == "confusion":
            return TAB_CONFUSION
        return TAB_BOUNDARIES

    def _draw_next(self) -> None:
        """Draw the next pending part on the current tab, in turn; a pending range first."""
        if not self._parts:
            return
        tab = self.tabs.currentIndex()
        try:
            if self._fit_pending(tab) or not self._dirty:
                return
            count = len(self._parts)
            for k in range(count):
                index = (self._turn + k) % count
                part = self._parts[index]
                if part in self._dirty and self._part_tab(part) == tab:
                    self._dirty.discard(part)
                    self._turn = index + 1
                    self._draw_streaming(part)
                    return
        finally:
            self._settle_view_transforms()

    def _settle_view_transforms(self) -> None:
        """Apply a new view range now rather than at paint time.

        pyqtgraph updates a view's transform lazily, in its first paint; the curves' bounds
        change with it, which schedules a second paint of the same plot. Done here (and for
        the plot linked to the one re-ranged) a new range costs one paint: measured 20 -> 16 ms
        for the loss plot with the accuracy plot linked to it.
        """
        for plot in (self.loss_plot, self.accuracy_plot, self.lr_plot):
            settle_view_transform(plot.plotItem.vb)
        settle_view_transform(self.layer_plot.grad_plot.vb)
        settle_view_transform(self.layer_plot.ratio_plot.vb)

    def _draw_tab(self, tab: int) -> None:
        for part in self._parts:
            if part in self._dirty and self._part_tab(part) == tab:
                self._dirty.discard(part)
                self._draw_part(part)
        self._fit_pending(tab, every=True)

    def _draw_part(self, part) -> None:
        if self._history is None:
            return
        if part == "loss":
            self._draw_loss()
        elif part == "lr":
            self._draw_lr()
        elif part == "accuracy":
            self._draw_accuracy()
        elif part == "layers":
            self._draw_layers()
        elif part == "table":
            self._refresh_table()
        elif part == "confusion":
            self._draw_confusion()
        else:
            self._draw_panel(part[1])

    def clear(self) -> None:
        """Forget the history: empty curves, blank panels and matrix, empty table cells."""
        self.set_runs(self.labels, self.colors, self.dataset, self.total_steps)

    # -- state helpers -------------------------------------------------------------------------

    @property
    def smoothing(self) -> float:
        # Rounded to the slider's 0.01 steps: position 60 is 0.6 itself, not 0.6000000000000001.
        return round(self.smoothing_slider.value() / SMOOTHING_TICKS * SMOOTHING_MAX, 2)

    @property
    def x_column(self) -> str:
        return X_AXES[self.x_axis_combo.currentText()][0]

    def _metric(self) -> str:
        regression = self.dataset is not None and self.dataset.task == "regression"
        return "r2" if regression else "accuracy"

    def _curve_mode(self) -> bool:
        """1-D regression: fitted curves instead of decision boundaries."""
        data = self.dataset
        return data is not None and data.task == "regression" and data.plane is None and (
            data.input_shape == (1,)
        )

    def _last_valid_step(self, run: int) -> float:
        """The last step at which run's numbers are its own: before divergence, at an early stop."""
        history = self._history
        if history is None:
            return math.inf
        # The evaluation at the divergence step still shows the run's own (exploded) model; a
        # non-finite snapshot is skipped where it is drawn.
        if run in history.divergences:
            return history.divergences[run].step
        if run in history.stops:
            return history.stops[run].step
        return math.inf

    # -- curves --------------------------------------------------------------------------------

    def _draw_curves(self) -> None:
        """Every curve part now (after a change of smoothing, x axis or log mode)."""
        for part in CURVE_PARTS:
            self._dirty.discard(part)
        self._draw_loss()
        self._draw_accuracy()
        self._draw_lr()
        self._draw_layers()

    def _stds(self, evals, name: str):
        fields = self._history.eval_fields
        return evals.column(f"{name}_std") if f"{name}_std" in fields else None

    def _eval_series(self, name: str) -> tuple[list, list]:
        """Per run: (x, evaluation column ``name``) and its std over seeds (or None)."""
        history = self._history
        xcol = self.x_column
        empty = (np.empty(0), np.empty(0))
        series, stds = [], []
        for i in range(len(history.steps)):
            evals = history.evals[i] if history.evals is not None else None
            if evals is None or len(evals) == 0 or name not in history.eval_fields:
                series.append(empty)
                stds.append(None)
                continue
            series.append((evals.column(xcol), evals.column(name)))
            stds.append(self._stds(evals, name))
        return series, stds

    def _draw_loss(self) -> None:
        history = self._history
        if history is None:
            return
        xcol = self.x_column
        solid = [(steps.column(xcol), steps.column("loss")) for steps in history.steps]
        solid_std = ([steps.column("loss_std") for steps in history.steps]
                     if history.has_seeds else None)
        dashed, dashed_std = self._eval_series("val_loss")
        self.loss_plot.update_runs(solid, dashed, self.smoothing, solid_std=solid_std,
                                   dashed_std=dashed_std if history.has_seeds else None)

    def _draw_lr(self) -> None:
        history = self._history
        if history is None:
            return
        xcol = self.x_column
        self.lr_plot.update_runs([(steps.column(xcol), steps.column("lr"))
                                  for steps in history.steps])

    def _draw_accuracy(self) -> None:
        history = self._history
        if history is None:
            return
        metric = self._metric()
        solid, solid_std = self._eval_series(f"train_{metric}")
        dashed, dashed_std = self._eval_series(f"val_{metric}")
        seeded = history.has_seeds
        self.accuracy_plot.update_runs(solid, dashed, solid_std=solid_std if seeded else None,
                                       dashed_std=dashed_std if seeded else None)

    def _record_evaluation(self, history: NetworkHistory) -> None:
        """Take in the per-layer statistics of every evaluation since the last call (several
        arrive between two redraws when the race evaluates often) and the newest snapshots."""
        ev = history.last_evaluation
        stats = history.layer_stats
        if stats.total < self._layer_stats_seen:  # a new history (a reset): start over
            self._layer_log = _LayerLog()
            self._layer_stats_seen = 0
        for xs, grad, ratio in zip(*stats.since(self._layer_stats_seen)):
            self._layer_log.append(tuple(xs), grad, ratio)
        self._layer_stats_seen = stats.total
        self.layer_plot.set_layers(self._layer_log.layers)
        # Snapshots of the runs still alive (a dead run keeps its last finite one of its own).
        step = history.last_evaluation_step
        for i in range(len(self._snapshots)):
            if step > self._last_valid_step(i):
                continue
            picture = ev.boundary if ev.boundary is not None else ev.curve
            if picture is not None and i < len(picture) and np.isfinite(picture[i]).all():
                self._snapshots[i] = ev
        if ev.confusion is not None:
            for i in range(min(len(self._confusions), len(ev.confusion))):
                if step <= self._last_valid_step(i):
                    self._confusions[i] = ev.confusion[i]
                    self._confusion_steps[i] = step

    def _draw_layers(self) -> None:
        log = self._layer_log
        run = self._selected_run
        if log.size == 0 or run >= log.grad.shape[1]:
            self.layer_plot.clear_data()
            return
        column = ("step", "epoch", "wall").index(self.x_column)
        # The evaluations up to the run's last valid step: views of the log while the run is
        # alive (the usual case, no copy), its first `count` rows once it diverged.
        xs, last_valid = log.xs[: log.size], self._last_valid_step(run)
        count = log.size
        if xs[-1, 0] > last_valid:
            count = int(np.searchsorted(xs[:, 0], last_valid, side="right"))
        self.layer_plot.update_layers(
            xs[:count, column], log.grad[:count, run], log.ratio[:count, run]
        )

    # -- boundary panels -----------------------------------------------------------------------

    def _build_panels(self) -> None:
        grid = self.boundary_grid
        grid.clear()
        self._panels = []
        data = self.dataset
        if data is None or not self.labels:
            return
        curve_mode = self._curve_mode()
        if data.plane is None and not curve_mode:
            grid.addLabel(
                f"No decision boundaries: the inputs of {data.name!r} are not points of a plane.",
                row=0, col=0, color=FOREGROUND,
            )
            return
        count = len(self.labels)
        columns = math.ceil(math.sqrt(count))
        for i, (label, color) in enumerate(zip(self.labels, self.colors)):
            plot = grid.addPlot(row=i // columns, col=i % columns)
            plot.setTitle(label, color=color, size="9pt")
            plot.setMenuEnabled(False)
            plot.hideButtons()
            image = curve = None
            if curve_mode:
                plot.setLabel("bottom", "x")
                plot.setLabel("left", "y")
                plot.showGrid(x=True, y=True, alpha=0.2)
                self._add_regression_points(plot)
                curve = pg.PlotDataItem(pen=pg.mkPen(QColor(color), width=2))
                curve.setZValue(5)
                plot.addItem(curve)
            else:
                plot.hideAxis("left")
                plot.hideAxis("bottom")
                plot.setAspectLocked(True)
                image = pg.ImageItem(axisOrder="row-major")
                image.setZValue(-10)
                plot.addItem(image)
                self._add_plane_points(plot)
                (x0, x1), (y0, y1) = data.plane
                plot.setRange(xRange=(x0, x1), yRange=(y0, y1), padding=0)
            self._panels.append(_Panel(plot, image, curve, color, label))
        grid.nextRow()
        key = self._key_text()
        if key:
            grid.addLabel(key, row=(count - 1) // columns + 1, col=0, colspan=columns,
                          color=FOREGROUND, size="8pt")

    def _key_text(self) -> str:
        data = self.dataset
        if data is None:
            return ""
        points = "filled dots: training" + (" · rings: validation" if len(data.y_val) else "")
        if data.task == "regression":
            what = "line: fitted curve" if self._curve_mode() else "colour: predicted value"
            return f"{what} · {points}"
        names = data.class_names or tuple(str(k) for k in range(data.n_classes))
        if data.n_classes == 2:
            return (f"colour: P(class {names[1]}) from blue (class {names[0]}) to orange "
                    f"(class {names[1]}) · {points}")
        return f"colour: predicted class, fainter where the model is less sure · {points}"

    def _add_plane_points(self, plot: pg.PlotItem) -> None:
        data = self.dataset
        classification = data.task == "classification"
        for points, labels, hollow in (
            (data.points_train, data.y_train, False),
            (data.points_val, data.y_val, True),
        ):
            if points is None or len(points) == 0:
                continue
            classes = labels if classification else None
            pens, brushes = _point_styles(classes, data.n_classes, hollow)
            if not classification:  # regression on a plane: neutral dots over the surface
                pens = pg.mkPen(255, 255, 255, 160 if hollow else 60, width=1)
                brushes = pg.mkBrush(0, 0, 0, 0) if hollow else pg.mkBrush(235, 235, 235, 200)
            scatter = pg.ScatterPlotItem(
                points[:, 0], points[:, 1], size=6 if hollow else 5, pen=pens, brush=brushes,
            )
            scatter.setZValue(2 if hollow else 1)
            plot.addItem(scatter)

    def _add_regression_points(self, plot: pg.PlotItem) -> None:
        data = self.dataset
        for x, y, hollow in ((data.x_train, data.y_train, False), (data.x_val, data.y_val, True)):
            if len(x) == 0:
                continue
            pen = pg.mkPen(200, 200, 200, 200 if hollow else 60, width=1)
            brush = pg.mkBrush(0, 0, 0, 0) if hollow else pg.mkBrush(200, 200, 200, 150)
            scatter = pg.ScatterPlotItem(x[:, 0], y[:, 0], size=5, pen=pen, brush=brush)
            plot.addItem(scatter)

    def _draw_panels(self, history: NetworkHistory) -> None:
        """Every panel now."""
        for i in range(len(self._panels)):
            self._dirty.discard(("panel", i))
            self._draw_panel(i)

    def _draw_panel(self, i: int) -> None:
        """Run i's panel: title from the newest evaluation, picture from its last own snapshot."""
        history = self._history
        data = self.dataset
        if i >= len(self._panels) or data is None or history is None:
            return
        ev = history.last_evaluation
        if ev is None:
            return
        panel = self._panels[i]
        step = history.last_evaluation_step
        scores = ev.val if ev.val else ev.train
        split = "val" if ev.val else "train"
        metric = self._metric()
        score_name = "R²" if metric == "r2" else "acc"
        label = self.labels[i]
        event = history.divergences.get(i) or history.stops.get(i)
        if event is not None and step >= event.step:
            what = "diverged" if i in history.divergences else "stopped early"
            panel.set_title(f"{label} · {what} at {event.step}")
        else:
            score = scores.get(metric)
            text = label
            if score is not None and math.isfinite(float(score[i])):
                value = float(score[i])
                shown = f"{value:.1%}" if metric == "accuracy" else f"{value:.3f}"
                text = f"{label} · {split} {score_name} {shown}"
            panel.set_title(text)
        snap = self._snapshots[i] if i < len(self._snapshots) else None
        if snap is None:
            return
        if panel.curve is not None and snap.curve is not None:
            y = snap.curve[i].astype(np.float64)
            if np.isfinite(y).all():
                lo, hi = float(data.x_train.min()), float(data.x_train.max())
                panel.curve.setData(np.linspace(lo, hi, len(y)), y)
        elif panel.image is not None:
            rgba = None
            if snap.boundary is not None and data.n_classes > 2 and snap.boundary_class is not None:
                rgba = confidence_rgba(snap.boundary_class[i], snap.boundary[i], data.n_classes)
            self._draw_image(panel.image, snap, i, rgba)

    def _draw_image(self, image: pg.ImageItem, ev, run: int, rgba: np.ndarray | None) -> None:
        """Run's snapshot as an image over the plane; a non-finite one (NaN weights) is skipped."""
        data = self.dataset
        if rgba is not None:
            if not np.isfinite(ev.boundary[run]).all():
                return
            picture, levels, lut = rgba, (0, 255), None
        elif ev.boundary is not None:
            # Binary: P(class 1), fixed levels so the colour means the same at every step.
            picture = ev.boundary[run]
            levels, lut = (0.0, 1.0), _lookup_table("binary")
        elif ev.curve is not None and data_grid_size(ev.curve):
            # Regression on a plane: the predicted surface, levels = the targets' range.
            g = data_grid_size(ev.curve)
            picture = ev.curve[run].reshape(g, g)
            lo, hi = float(np.min(data.y_train)), float(np.max(data.y_train))
            levels, lut = (lo, hi if hi > lo else lo + 1.0), _lookup_table("viridis")
        else:
            return
        if rgba is None and not np.isfinite(picture).all():
            return
        image.setImage(picture, levels=levels, lut=lut, autoLevels=False)
        (x0, x1), (y0, y1) = data.plane
        rows, cols = picture.shape[:2]
        # The engine's grid points are pixel centres from edge to edge of the plane.
        dx, dy = (x1 - x0) / max(cols - 1, 1), (y1 - y0) / max(rows - 1, 1)
        image.setRect(QRectF(x0 - dx / 2, y0 - dy / 2, cols * dx, rows * dy))

    def boundary_images(self) -> list[np.ndarray | None]:
        """The image each panel shows (for tests and exports)."""
        return [p.image.image if p.image is not None else None for p in self._panels]

    def fitted_curves(self) -> list[tuple[np.ndarray, np.ndarray] | None]:
        return [p.curve.getOriginalDataset() if p.curve is not None else None for p in self._panels]

    # -- confusion -----------------------------------------------------------------------------

    def _build_confusion(self) -> None:
        plot = self.confusion_plot.plotItem
        for text in self.confusion_texts:
            plot.removeItem(text)
        self.confusion_texts = []
        self.confusion_image.clear()
        data = self.dataset
        if data is None or data.task != "classification":
            plot.setTitle("")
            return
        k = data.n_classes
        names = data.class_names or tuple(str(c) for c in range(k))
        ticks = [[(c, str(names[c])) for c in range(k)]]
        plot.getAxis("bottom").setTicks(ticks)
        plot.getAxis("left").setTicks(ticks)
        plot.setRange(xRange=(-0.5, k - 0.5), yRange=(-0.5, k - 0.5), padding=0.02)
        if k <= MAX_CONFUSION_TEXT:
            for row in range(k):
                for col in range(k):
                    text = pg.TextItem("", anchor=(0.5, 0.5), color=FOREGROUND)
                    text.setPos(col, row)
                    plot.addItem(text)
                    self.confusion_texts.append(text)
        plot.setTitle("")

    def _draw_confusion(self) -> None:
        run = self._selected_run
        matrix = self._confusions[run] if run < len(self._confusions) else None
        if matrix is None:
            self.confusion_image.clear()
            for text in self.confusion_texts:
                text.setText("")
            return
        counts = np.asarray(matrix, dtype=np.float64)
        share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
        k = counts.shape[0]
        self.confusion_image.setImage(share, levels=(0.0, 1.0), autoLevels=False)
        self.confusion_image.setRect(QRectF(-0.5, -0.5, k, k))
        if self.confusion_texts:
            flat_counts = counts.astype(np.int64).ravel()
            flat_share = share.ravel()
            for text, count, fraction in zip(self.confusion_texts, flat_counts, flat_share):
                text.setText(str(count))
                # Dark text on the bright cells, light text on the dark ones.
                text.setColor(QColor("#101010") if fraction > 0.6 else QColor(FOREGROUND))
        total = int(counts.sum())
        split = "validation" if self.dataset is not None and len(self.dataset.y_val) else "training"
        self.confusion_plot.plotItem.setTitle(
            f"{self.labels[run]} · {split} set, {total} samples, "
            f"step {self._confusion_steps[run]}",
            color=self.colors[run], size="10pt",
        )

    def confusion_matrix_shown(self) -> np.ndarray | None:
        run = self._selected_run
        return self._confusions[run] if run < len(self._confusions) else None

    # -- comparison table ----------------------------------------------------------------------

    def _build_table(self, regression: bool) -> None:
        table = self.table
        table.setSortingEnabled(False)
        table.clearContents()
        has_val = self.dataset is not None and len(self.dataset.y_val) > 0
        self._set_columns("r2" if regression else "accuracy", "val" if has_val else "train")
        table.setRowCount(len(self.labels))
        self._table_items = []
        for i, (label, color) in enumerate(zip(self.labels, self.colors)):
            run_item = QTableWidgetItem(label)
            run_item.setData(Qt.ItemDataRole.DecorationRole, QColor(color))
            row = [NumericItem(str(i + 1), i), run_item]
            row += [NumericItem("—") for _ in range(len(self._columns) - 3)]
            row.append(NumericItem("waiting", -1))
            row[-1].setTextAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
            for col, item in enumerate(row):
                table.setItem(i, col, item)
            self._table_items.append(row)
        table.setSortingEnabled(True)
        table.sortByColumn(0, Qt.SortOrder.AscendingOrder)

    def _run_stats(self, i: int) -> list[tuple[str, float]]:
        """The numeric cells of run i as (text, sort key), in column order after "Run".

        A race over several seeds shows "mean ± std" (the std at the same evaluation); the sort
        key is the mean."""
        history = self._history
        metric = self._metric()
        nan = math.nan
        values = {"final_loss": nan, "best_loss": nan, "final_m": nan, "best_m": nan,
                  "target_step": nan}
        stds = {"final_loss": nan, "best_loss": nan, "final_m": nan, "best_m": nan}
        evals = history.evals[i] if history.evals is not None else None
        fields = history.eval_fields
        split = "val" if "val_loss" in fields else "train"
        if evals is not None and len(evals):
            loss = evals.column(f"{split}_loss")
            best = int(np.argmin(loss))
            values["final_loss"], values["best_loss"] = float(loss[-1]), float(loss[best])
            if f"{split}_loss_std" in fields:
                loss_std = evals.column(f"{split}_loss_std")
                stds["final_loss"], stds["best_loss"] = float(loss_std[-1]), float(loss_std[best])
            if f"{split}_{metric}" in fields:
                score = evals.column(f"{split}_{metric}")
                top = int(np.argmax(score))
                values["final_m"], values["best_m"] = float(score[-1]), float(score[top])
                if f"{split}_{metric}_std" in fields:
                    score_std = evals.column(f"{split}_{metric}_std")
                    stds["final_m"], stds["best_m"] = float(score_std[-1]), float(score_std[top])
            reached = np.flatnonzero(loss <= self.target_spin.value())
            if len(reached):
                values["target_step"] = float(evals.column("step")[reached[0]])
        steps = history.steps[i]
        wall = steps.last("wall") if len(steps) else nan
        # Tracked sharpness, else an on-demand measurement; one that was measured but did not
        # converge says so rather than showing a blank (or an older number).
        tracked = history.sharpness is not None and len(history.sharpness[i]) > 0
        sharpness = history.last_sharpness(i)
        measured = tracked
        if not tracked:
            sharpness = self.surface_view.sharpness_value(i)
            measured = self.surface_view.has_sharpness(i)
        sharpness_text = ("not converged" if measured and math.isnan(sharpness)
                          else _fmt(sharpness, ".4g"))
        metric_spec = ".1%" if metric == "accuracy" else ".3f"

        def cell(name: str, spec: str, std_spec: str) -> tuple[str, float]:
            return _fmt_pm(values[name], stds[name], spec, std_spec), values[name]

        return [
            cell("final_loss", ".4g", ".2g"),
            cell("best_loss", ".4g", ".2g"),
            cell("final_m", metric_spec, metric_spec),
            cell("best_m", metric_spec, metric_spec),
            (_fmt(values["target_step"], ".0f"), values["target_step"]),
            (sharpness_text, sharpness),
            (_fmt(wall, ".1f"), wall),
        ]

    def run_status(self, i: int) -> tuple[str, float]:
        """(text, sort key) of run i: running / finished / stopped early at N / diverged at N."""
        history = self._history
        if history is None:
            return "waiting", -1.0
        if i in history.divergences:
            step = history.divergences[i].step
            return f"diverged at {step}", _STATUS_RANK["diverged"] * 1e9 + step
        if i in history.stops:
            step = history.stops[i].step
            return f"stopped early at {step}", _STATUS_RANK["stopped"] * 1e9 + step
        if self.total_steps is not None and history.last_step >= self.total_steps:
            return "finished", _STATUS_RANK["finished"] * 1e9
        return "running", 0.0

    def _refresh_table(self) -> None:
        if self._history is None or not self._table_items:
            return
        table = self.table
        table.setSortingEnabled(False)  # no re-sorting while cells change under it
        for i, row in enumerate(self._table_items):
            for item, (text, key) in zip(row[2:-1], self._run_stats(i)):
                item.set_value(text, key if math.isfinite(key) else math.inf)
            status, key = self.run_status(i)
            row[-1].set_value(status, key)
            row[-1].setForeground(_STATUS_COLORS.get(status.split()[0], QColor(FOREGROUND)))
            row[-1].setToolTip(self._status_tooltip(i))
        table.setSortingEnabled(True)  # re-sorts by the current sort column

    def _status_tooltip(self, i: int) -> str:
        history = self._history
        if i in history.divergences:
            return f"Diverged: {history.divergences[i].reason}"
        if i in history.stops:
            event = history.stops[i]
            text = (f"Stopped early: best validation loss {event.best_val_loss:.4g} "
                    f"at step {event.best_step}")
            reason = getattr(event, "reason", "")
            return f"{text} ({reason})" if reason else text
        return ""

    def table_rows(self) -> list[list[str]]:
        """The table's rows as shown (sorted), each cell as its text."""
        table = self.table
        return [[table.item(r, c).text() for c in range(table.columnCount())]
                for r in range(table.rowCount())]

    def export_csv(self, path: str | os.PathLike) -> Path:
        """Write the table (rows in display order, numbers unformatted) atomically to ``path``.

        A temporary file next to the target is written, flushed to disk, then renamed over it,
        so a crash never leaves a half-written CSV under the user's file name.
        """
        path = Path(path)
        table = self.table
        headers = [c.header for c in self._columns]
        measured = range(2, len(headers) - 1)  # the numeric columns between "Run" and "Status"
        rows = []
        for r in range(table.rowCount()):
            cells = []
            for c in range(table.columnCount()):
                item = table.item(r, c)
                if c in measured:
                    key = item.key()
                    if not math.isfinite(key):
                        cells.append("")
                    else:  # full precision; whole numbers (steps) without a trailing ".0"
                        cells.append(str(int(key)) if key.is_integer() else repr(key))
                else:
                    cells.append(item.text())
            rows.append(cells)
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(headers)
                writer.writerows(rows)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        return path

    # -- slots ---------------------------------------------------------------------------------

    def _on_smoothing(self, _value: int) -> None:
        self.smoothing_label.setText(f"{self.smoothing:.2f}")
        self._dirty.discard("loss")
        self._draw_loss()

    def _on_x_axis(self, _index: int) -> None:
        label = X_AXES[self.x_axis_combo.currentText()][1]
        for plot in (self.loss_plot, self.accuracy_plot, self.lr_plot):
            plot.plotItem.setLabel("bottom", label)
        self.layer_plot.set_x_label(label)
        for plot in (self.loss_plot, self.accuracy_plot, self.lr_plot):
            plot.invalidate()
        self.layer_plot.forget()
        for plot in (self.loss_plot, self.accuracy_plot, self.lr_plot, self.layer_plot):
            plot.follow = True
        self.loss_plot.plotItem.vb.setXRange(0, 1)  # a new column: a new x range
        self.layer_plot.grad_plot.vb.setXRange(0, 1)
        self._set_min_x_span()
        self._draw_curves()

    def _set_min_x_span(self) -> None:
        """On the step axis the plots start `MIN_STEP_SPAN` steps wide (or the race's length):
        the first steps of a race then re-range nothing (epochs and seconds have no such unit)."""
        least, end = 0.0, math.inf
        if self.x_column == "step":
            least = float(min(MIN_STEP_SPAN, self.total_steps or MIN_STEP_SPAN))
            end = float(self.total_steps) if self.total_steps else math.inf
        for vb in (self.loss_plot.plotItem.vb, self.lr_plot.plotItem.vb,
                   self.layer_plot.grad_plot.vb):
            vb.min_x_span, vb.x_end = least, end

    def _on_tab_changed(self, index: int) -> None:
        # Parts on a hidden tab were not drawn: draw the shown tab's pending parts at once.
        self._draw_tab(index)

    def _on_log_loss(self, checked: bool) -> None:
        self.loss_plot.set_log_y(checked)
        self.loss_plot.invalidate()
        self.loss_plot.follow = True
        self.loss_plot.plotItem.vb.setYRange(0, 1)  # the old range means nothing on the new axis
        self._dirty.discard("loss")
        self._draw_loss()

    def _on_run_selected(self, index: int) -> None:
        if index < 0:
            return
        self._selected_run = index
        self.layer_plot.forget()  # another run's statistics at the same steps
        for combo in (self.layer_run_combo, self.confusion_run_combo):
            if combo.currentIndex() != index:
                combo.blockSignals(True)
                combo.setCurrentIndex(index)
                combo.blockSignals(False)
        self._dirty.difference_update(("layers", "confusion"))
        self._draw_layers()
        self._draw_confusion()

    def _on_export(self) -> None:
        save_table_csv(self, "Export comparison", "comparison.csv", self.export_csv,
                       ask=self.save_dialog, report_error=self.report_error)

