"""Step-series plots: loss vs step (log y) and learning rate vs step, one curve per run.

Built for streaming (measured on these 2-core machines, see the gui-latency bench): each run is a
bare ``PlotCurveItem`` fed once per redraw with at most `MAX_POINTS` points (min/max decimation
keeps spikes visible); the log transform and the view range are computed here in numpy instead of
by pyqtgraph's per-item log mode and auto-range, which cost several ms per curve per frame. No
grid lines: replaying the axis' grid picture was the largest paint cost.

On a log axis the loss is shown as the gap to the known minimum, f − f*, so a run that reaches
the minimum keeps falling on the plot instead of flattening at f* (and negative minima such as
Styblinski–Tang's −78.3 still work); values are floored at `LOG_FLOOR` so log10 stays finite.
The view follows the data until the user zooms or pans; a double click follows again.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, QSizeF, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QGraphicsItem, QGraphicsView, QGraphicsWidget, QSizePolicy

LOG_FLOOR = 1e-16
MAX_POINTS = 2000


def bucket_extremes(x: np.ndarray, y: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Per full bucket of ``size`` points, its lowest and highest y, in time order (the points
    after the last full bucket are left out)."""
    buckets = len(x) // size
    yb = y[: buckets * size].reshape(buckets, size)
    lo = np.argmin(yb, axis=1)
    hi = np.argmax(yb, axis=1)
    offsets = np.arange(buckets) * size
    idx = np.empty(2 * buckets, dtype=np.int64)
    idx[0::2], idx[1::2] = np.minimum(lo, hi) + offsets, np.maximum(lo, hi) + offsets
    return x[idx], y[idx]


def decimate(x: np.ndarray, y: np.ndarray, max_points: int = MAX_POINTS):
    """At most ~``max_points`` points: per bucket the min and the max of y, in time order."""
    n = len(x)
    if n <= max_points:
        return x, y
    buckets = max_points // 2
    size = n // buckets
    usable = size * buckets
    kept_x, kept_y = bucket_extremes(x[:usable], y[:usable], size)
    return np.concatenate([kept_x, x[usable:]]), np.concatenate([kept_y, y[usable:]])


def settle_view_transform(vb: pg.ViewBox) -> None:
    """Apply ``vb``'s new range to its transform now (pyqtgraph defers it to the first paint,
    and the curves' bounds then change and ask for a second paint of the plot)."""
    if getattr(vb, "_matrixNeedsUpdate", False):
        vb.updateMatrix()


class FastCurve(pg.PlotCurveItem):
    """A PlotCurveItem that works out its bounding rect once per setData.

    pyqtgraph recomputes it (min/max over the data plus pen padding) every time the scene asks,
    several times per frame per curve — measured as the largest Python cost of a streaming
    frame. The cache is dropped on new data and when the view's transform changes.
    """

    _rect = None
    _data_rect = None  # (x0, x1, y0, y1) of the data, or None: valid until the next setData

    def setData(self, *args, **kwargs):  # noqa: N802 - pyqtgraph's name
        self._rect = None
        self._data_rect = None
        super().setData(*args, **kwargs)

    def viewTransformChanged(self):  # noqa: N802 - pyqtgraph's name
        # The data did not change, only its pixel size: keep the data bounds, redo the padding.
        self._rect = None
        super().viewTransformChanged()

    def boundingRect(self):  # noqa: N802 - Qt's name
        if self._rect is None:
            self._rect = self._padded_rect()
        return self._rect

    def _padded_rect(self):
        """pyqtgraph's rect (data bounds plus the pen's half width in pixels), with the data
        bounds taken once per setData by plain min/max: its nanmin/nanmax under a warnings
        guard, redone after every view change, was most of a streaming frame's Python time."""
        x, y = self.xData, self.yData
        pen, shadow = self.opts["pen"], self.opts["shadowPen"]
        special = (self.opts.get("stepMode") or self.opts["fillLevel"] is not None
                   or shadow is not None or (pen is not None and not pen.isCosmetic()))
        if x is None or not len(x) or special:
            return super().boundingRect()
        if self._data_rect is None:
            bounds = (float(x.min()), float(x.max()), float(y.min()), float(y.max()))
            if not all(np.isfinite(bounds)):
                return super().boundingRect()  # NaN/inf data: pyqtgraph's filtering path
            self._data_rect = bounds
        x0, x1, y0, y1 = self._data_rect
        pad = self.pixelPadding()
        px = py = 0.0
        if pad > 0:
            vx, vy = self.pixelVectors()
            px = 0.0 if vx is None else vx.length() * pad
            py = 0.0 if vy is None else vy.length() * pad
        return QRectF(x0 - px, y0 - py, x1 - x0 + 2 * px, y1 - y0 + 2 * py)


class KeyRow(pg.LegendItem):
    """A legend that is a row of its plot's layout, between the title and the data, instead of
    pyqtgraph's box anchored over the data (that box hid the newest steps of the network view's
    loss curves). Its entries flow left to right like words and wrap at the width it is given
    (`fit`); when they need more than one line, the entries from `break_at` on (the line-style
    key after the runs) start a line of their own. `needed_height` says how tall that makes it,
    so the owner can hide it when the plot is too small. Used by the network view's plots
    (app/network/run_curves.py, layer_stats.py); it places its entries itself, not with
    pyqtgraph's grid.
    """

    GAP = 4  # px between a sample and its label
    ENTRY_GAP = 12  # px between two entries on a line
    SAMPLE = 20  # px: pyqtgraph's ItemSample is a 20×20 square with its line across the middle
    LINE = 16  # px from one line of entries to the next

    def __init__(self, text_size: str = "8pt"):
        super().__init__(offset=None, labelTextSize=text_size, frame=False)
        self.break_at: int | None = None
        # Short of room, only the entries before `break_at` (the runs) are shown: the runs are
        # never left unnamed (two runs of similar colour could not be told apart), the
        # line-style key goes first.
        self.runs_only = False
        self._width = 0.0  # the width given by `fit` (0: one line)
        self._size = QSizeF(0, 0)
        self._shown = True
        self.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)
        # Its texts only change with the runs or the smoothing: blit a cached pixmap.
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)

    def _addItemToLayout(self, sample, label) -> None:  # noqa: N802 - pyqtgraph's name
        sample.setParentItem(self)
        label.setParentItem(self)

    def _removeItemFromLayout(self, *items) -> None:  # noqa: N802 - pyqtgraph's name
        for item in items:
            item.close()
            if item.scene() is not None:
                item.scene().removeItem(item)

    def setColumnCount(self, columnCount) -> None:  # noqa: N802, N803 - pyqtgraph's names
        pass  # the entries wrap at the width given to `fit` instead

    def _lines(self, width: float) -> list[list[tuple[float, object, object]]]:
        """The entries as lines of (entry width, sample, label), wrapped at ``width``."""
        items = self.items
        if self.runs_only and self.break_at:
            items = items[:self.break_at]
        entries = [(self.SAMPLE + self.GAP + label.minimumWidth(), sample, label)
                   for sample, label in items]

        def flow(parts):
            lines, used = [], math.inf
            for entry in parts:
                if lines and used + self.ENTRY_GAP + entry[0] <= width:
                    lines[-1].append(entry)
                    used += self.ENTRY_GAP + entry[0]
                else:
                    lines.append([entry])
                    used = entry[0]
            return lines

        lines = flow(entries)
        if len(lines) > 1 and self.break_at:
            lines = flow(entries[:self.break_at]) + flow(entries[self.break_at:])
        return lines

    def updateSize(self) -> None:  # noqa: N802 - pyqtgraph's name
        # pyqtgraph's own version moves the legend to its parent's corner: here the plot's
        # layout places it, and only needs to hear the new size.
        lines = self._lines(self._width or math.inf)
        shown = {id(sample) for line in lines for _w, sample, _label in line}
        for sample, label in self.items:
            sample.setVisible(id(sample) in shown)
            label.setVisible(id(sample) in shown)
        widest = 0.0
        for row, line in enumerate(lines):
            x, y = 0.0, row * self.LINE
            for entry_width, sample, label in line:
                sample.setGeometry(QRectF(x, y + (self.LINE - self.SAMPLE) / 2,
                                          self.SAMPLE, self.SAMPLE))
                label.setGeometry(QRectF(x + self.SAMPLE + self.GAP,
                                         y + (self.LINE - label.minimumHeight()) / 2,
                                         label.minimumWidth(), label.minimumHeight()))
                x += entry_width + self.ENTRY_GAP
            widest = max(widest, x - self.ENTRY_GAP)
        self._size = QSizeF(max(0.0, widest), len(lines) * self.LINE)
        self._relayout()

    def _relayout(self) -> None:
        self.updateGeometry()
        self.update()
        # Now, not at the next event: an exported frame is grabbed before any (app/export/animation.py).
        # (QGraphicsWidget.layout: pyqtgraph's items hide the method behind a `layout` field.)
        parent = self.parentWidget()
        layout = None if parent is None else QGraphicsWidget.layout(parent)
        if layout is not None:
            layout.activate()

    def set_shown(self, shown: bool) -> None:
        """Show or hide the key; hidden, its row gives all its height back to the data."""
        if shown != self._shown:
            self._shown = shown
            self.setVisible(shown)
            self._relayout()

    def sizeHint(self, which, constraint=QSizeF()) -> QSizeF:  # noqa: N802 - Qt's name
        if not self._shown:
            return QSizeF(0, 0)
        if which == Qt.SizeHint.MinimumSize:  # never widens its plot: `fit` wraps it instead
            return QSizeF(0, self._size.height())
        return QSizeF(self._size)

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt's name
        return QRectF(0, 0, self._size.width(), self._size.height())

    def mouseDragEvent(self, ev) -> None:  # noqa: N802 - pyqtgraph's name
        ev.ignore()  # a row of the layout: not dragged over the data

    def fit(self, width: float) -> None:
        """Wrap the entries at ``width`` px."""
        if width != self._width:
            self._width = width
            self.updateSize()

    def set_runs_only(self, runs_only: bool) -> None:
        """Show only the entries before `break_at` (True) or all of them."""
        if runs_only != self.runs_only:
            self.runs_only = runs_only
            self.updateSize()

    def height_for(self, width: float, runs_only: bool) -> float:
        """How tall the key would be at ``width`` px, with or without the line-style key."""
        before, self.runs_only = self.runs_only, runs_only
        try:
            return len(self._lines(width or math.inf)) * self.LINE if self.items else 0.0
        finally:
            self.runs_only = before

    def line_count(self) -> int:
        return len(self._lines(self._width or math.inf))

    def needed_height(self) -> float:
        return self._size.height()

def add_key_row(plot: pg.PlotItem, text_size: str = "8pt", follow: bool = True) -> KeyRow:
    """Give ``plot`` a `KeyRow` as its legend: a row between its title and its data (in place of
    the hidden top axis), so no entry ever covers a curve; ``follow``: wrapped to the data's
    width as it changes (else the owner calls `KeyRow.fit`). Items added with ``name=`` join it
    as they would join pyqtgraph's legend box."""
    key = KeyRow(text_size)
    layout = plot.layout
    layout.removeItem(plot.getAxis("top"))  # hidden: its row is the key's
    layout.addItem(key, 1, 1)
    layout.setAlignment(key, Qt.AlignmentFlag.AlignHCenter)
    plot.legend = key  # pyqtgraph's PlotItem.addItem puts named items in ``plot.legend``
    if follow:
        plot.vb.sigResized.connect(lambda *_args: key.fit(max(40.0, plot.vb.width())))
    return key


class SeriesPlot(pg.PlotWidget):
    """One curve per run over the step axis."""

    def __init__(
        self, title: str, y_label: str, log_y: bool, object_name: str, legend: bool = True,
        parent=None,
    ):
        super().__init__(parent)
        self.setObjectName(object_name)
        # Redraw one rectangle (the bounding rect of what changed), not pyqtgraph's minimal
        # region: the changed curves' rects often union to an L of two rectangles, and Qt's
        # raster engine strokes every curve about twice as slowly under such a clip. Late in a
        # long network race that was every other frame of the loss plot (its paint 5.6 -> 11.2
        # ms: the soak-network bench's late p99 gap x1.29).
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.BoundingRectViewportUpdate)
        self.plotItem.setTitle(title, size="10pt")
        self.plotItem.setLabel("bottom", "step")
        self.plotItem.setLabel("left", y_label)
        self.plotItem.setMenuEnabled(False)
        self.legend = None
        if legend:
            # A row between the title and the data (`add_key_row`): a box anchored over the
            # data hid the curves' right end, and hidden in a narrow plot it left runs of
            # similar colour unnamed. It wraps instead, and is always there.
            self.legend = add_key_row(self.plotItem, follow=False)
        self.curves: list[FastCurve] = []
        self.nonnegative = False  # values never below 0: a linear y axis stops at 0
        self.raw: list[tuple[np.ndarray, np.ndarray]] = []  # what was last given, untransformed
        self.offset = 0.0
        self.x_max = 1.0
        self.follow = True
        vb = self.plotItem.vb
        vb.disableAutoRange()
        vb.sigRangeChangedManually.connect(self._stop_following)
        vb.sigResized.connect(self._fit_legend)
        self.set_log_y(log_y)
        # The timeline's position (app/shell/timeline_slider.py): hidden while the race is live.
        self.cursor = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen(255, 255, 255, 150))
        self.cursor.setZValue(40)
        self.cursor.setVisible(False)
        self.plotItem.addItem(self.cursor, ignoreBounds=True)

    def set_log_y(self, log_y: bool) -> None:
        self.log_y = log_y
        # Axis ticks only: the data is transformed here (PlotCurveItems ignore log mode).
        self.plotItem.setLogMode(x=False, y=log_y)

    def set_runs(self, labels: list[str], colors: list[str], x_max: float = 1.0) -> None:
        for curve in self.curves:
            self.plotItem.removeItem(curve)
        if self.legend is not None:
            self.legend.clear()
        self.curves = []
        self.raw = []
        self.x_max = max(1.0, float(x_max))
        for label, color in zip(labels, colors):
            curve = FastCurve(pen=pg.mkPen(QColor(color), width=1), skipFiniteCheck=True)
            self.plotItem.addItem(curve)
            if self.legend is not None:
                self.legend.addItem(curve, label)
            self.curves.append(curve)
        self.follow = True
        # The range the race will be drawn in (`update_series`), not the last race's.
        self.plotItem.vb.setRange(xRange=(-0.01 * self.x_max, 1.02 * self.x_max),
                                  yRange=(0, 1), padding=0)
        self._fit_legend()

    def _fit_legend(self, *_args) -> None:
        if self.legend is not None:
            self.legend.fit(max(40.0, self.plotItem.vb.width()))

    def transform(self, y: np.ndarray) -> np.ndarray:
        if self.offset:
            y = y - self.offset
        if self.log_y:
            y = np.log10(np.maximum(y, LOG_FLOOR))
        return y

    def update_series(self, series: list[tuple[np.ndarray, np.ndarray]]) -> None:
        self.raw = [(x, y) for x, y in series]
        lo, hi = np.inf, -np.inf
        # Two points (min and max) per horizontal pixel are all a screen can show.
        budget = max(200, min(MAX_POINTS, 2 * int(self.plotItem.vb.width())))
        for curve, (x, y) in zip(self.curves, series):
            x, y = decimate(x, y, budget)
            shown = self.transform(y)
            curve.setData(x, shown)
            if len(shown):
                lo, hi = min(lo, float(shown.min())), max(hi, float(shown.max()))
        if self.follow and np.isfinite(lo):
            if hi <= lo:
                hi = lo + (abs(lo) * 0.1 or 1.0)
            # Hysteresis: a new range re-lays out the axis ticks (several ms), so keep the
            # current one while the data fits and fills most of it.
            (_, _), (y0, y1) = self.plotItem.vb.viewRange()
            fits = y0 <= lo and hi <= y1 and (hi - lo) >= 0.5 * (y1 - y0)
            if not fits:
                # Falling losses keep leaving the bottom: leave room below for a while.
                span = hi - lo
                low = lo - 0.3 * span
                if self.nonnegative and not self.log_y and lo >= 0:
                    low = max(low, 0.0)  # a learning rate is never below 0
                self.plotItem.vb.setRange(
                    xRange=(-0.01 * self.x_max, 1.02 * self.x_max),
                    yRange=(low, hi + 0.03 * span), padding=0,
                )
                settle_view_transform(self.plotItem.vb)  # one paint for the new range, not two

    def set_cursor(self, step: float | None) -> None:
        """A vertical line at ``step``; None hides it."""
        self.cursor.setVisible(step is not None)
        if step is not None:
            self.cursor.setValue(float(step))
            self.cursor.setToolTip(f"step {step:g}")

    def _stop_following(self, *_args) -> None:
        self.follow = False

    def mouseDoubleClickEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self.follow = True
        self.update_series(self.raw)
        super().mouseDoubleClickEvent(event)


class LossPlot(SeriesPlot):
    def __init__(self, parent=None):
        super().__init__("Loss", "f − f*", True, "lossPlot", parent=parent)

    def set_minimum(self, min_value: float | None) -> None:
        """Show f − f* on a log axis when f* is known; otherwise f itself on a linear axis."""
        if min_value is None:
            self.offset = 0.0
            self.set_log_y(False)
            self.plotItem.setLabel("left", "f(x, y)")
        else:
            self.offset = float(min_value)
            self.set_log_y(True)
            self.plotItem.setLabel("left", "f − f*")


class LrPlot(SeriesPlot):
    """The runs' learning rates: never below 0 on a linear axis; on a log axis once the runs'
    peak learning rates span a decade (SGD 0.0005 beside Adam 0.05 lay flat on 0 on a linear
    one)."""

    LOG_RATIO = 10.0  # largest / smallest peak lr from which the axis is logarithmic

    def __init__(self, parent=None):
        super().__init__("Learning rate", "lr", False, "lrPlot", legend=False, parent=parent)
        self.nonnegative = True
        self._floor = LOG_FLOOR

    def set_runs(self, labels: list[str], colors: list[str], x_max: float = 1.0) -> None:
        self.set_log_y(False)  # a new race decides again
        super().set_runs(labels, colors, x_max)

    def update_series(self, series: list[tuple[np.ndarray, np.ndarray]]) -> None:
        if not self.log_y:
            # The runs' peak lrs decide (a schedule decaying to 0 alone keeps a linear axis).
            peaks = [float(y.max()) for _x, y in series if len(y) and y.max() > 0]
            if len(peaks) > 1 and max(peaks) >= self.LOG_RATIO * min(peaks):
                # An lr annealed to 0 sits a decade under the smallest peak, not at 1e-16.
                self._floor = min(peaks) / 10
                self.set_log_y(True)
                self.plotItem.vb.setYRange(0, 1)  # the linear range means nothing on log
        super().update_series(series)

    def transform(self, y: np.ndarray) -> np.ndarray:
        if self.log_y:
            return np.log10(np.maximum(y, self._floor))
        return y
