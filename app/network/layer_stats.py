"""Per-layer statistics of one run of a network race: gradient norm and update/weight ratio.

`LayerStatsPlot` draws them (two log-y plots side by side, one curve per layer coloured by
depth) from its `log`, a `core.engine.history.LayerStatsRing` it fills from the history's ring
at each evaluation (`take_in`). The history keeps only the newest `LAYER_STATS_KEPT` evaluations
(for views that redraw less often than the race evaluates); the plot keeps up to
`LAYER_LOG_CAPACITY` to draw the race from its start, and the newest that many beyond.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

from app.network.plot_ranges import (
    SharedUserX,
    copy_x,
    extent_of,
    fit_range,
    mostly_hidden,
    plain_axes,
    range_change,
    union_of,
    x_behind,
)
from app.network.series_curve import SeriesCurve
from app.widgets.curves import MAX_POINTS, KeyRow
from core.engine.history import LayerStatsRing

LAYER_LOG_CAPACITY = 20_000  # evaluations whose per-layer statistics the plot keeps
X_COLUMNS = ("step", "epoch", "wall")  # the columns of a LayerStatsRing's xs


def layer_colors(count: int) -> list[QColor]:
    """Layer depth as a sequential colour: shallow = dark purple … deep = yellow (plasma)."""
    cmap = pg.colormap.get("plasma")
    positions = np.linspace(0.25, 0.95, max(count, 1))
    return [cmap.mapToQColor(float(p)) for p in positions[:count]]


class LayerStatsPlot(pg.GraphicsLayoutWidget):
    """Gradient norm and update/weight ratio per layer (log y), one curve per layer of one run.

    Bare `SeriesCurve` items with the log transform and the view range done here (hysteresis),
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
            plain_axes(plot)
        self.grad_plot.setLabel("bottom", "step")
        self.ratio_plot.setLabel("bottom", "step")
        # The ratio plot shows the gradient plot's steps: zoomed together, fitted one at a time.
        self._shared_x = SharedUserX(self.grad_plot.vb, self.ratio_plot.vb, self._stop_following)
        # The layers' key is a row between the gradient plot's title and its data, as the loss
        # plot's (`RunCurvesPlot`); the ratio plot keeps a row as tall, so both data areas align.
        self.legend = KeyRow()
        for plot in (self.grad_plot, self.ratio_plot):
            plot.layout.removeItem(plot.getAxis("top"))  # hidden: its row is the legend's
        self.grad_plot.layout.addItem(self.legend, 1, 1)
        self.grad_plot.layout.setAlignment(self.legend, Qt.AlignmentFlag.AlignHCenter)
        self.grad_plot.vb.sigResized.connect(self._fit_legend)
        self.grad_curves: list[SeriesCurve] = []
        self.ratio_curves: list[SeriesCurve] = []
        self.follow = True
        self.defer_fit = False  # as `RunCurvesPlot.defer_fit`
        self.fit_pending = False
        # The view whose x range both plots show (the loss plot's, `follow_x_of`), or None:
        # the gradient plot fits its own data.
        self.x_source: pg.ViewBox | None = None
        self.log = LayerStatsRing(LAYER_LOG_CAPACITY)
        self._seen = 0  # evaluations of the history's ring already in `log`

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
        for k, color in enumerate(layer_colors(count)):
            grad = SeriesCurve(pen=pg.mkPen(color, width=1), skipFiniteCheck=True)
            ratio = SeriesCurve(pen=pg.mkPen(color, width=1), skipFiniteCheck=True)
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

    def reset_log(self) -> None:
        """A new race: no statistics, no curves, and not the last race's ranges either (they
        stayed until the first evaluation of the next race)."""
        self.log = LayerStatsRing(LAYER_LOG_CAPACITY)
        self._seen = 0
        self.set_layers(0)
        for plot in (self.grad_plot, self.ratio_plot):
            plot.vb.setRange(xRange=(0, 1), yRange=(0, 1), padding=0)
        self.follow = True

    def take_in(self, stats: LayerStatsRing) -> None:
        """Add the evaluations the history's ``stats`` got since the last call (several arrive
        between two redraws when the race evaluates often); one curve per layer."""
        if stats.total < self._seen:  # a new history (a reset): start over
            self.log = LayerStatsRing(LAYER_LOG_CAPACITY)
            self._seen = 0
        for xs, grad, ratio in zip(*stats.since(self._seen)):
            self.log.append(*xs, grad, ratio)
        self._seen = stats.total
        _, grad, _ = self.log.in_order()
        self.set_layers(grad.shape[2] if len(grad) else 0)

    def show_run(self, run: int, x_column: str, last_valid_step: float) -> None:
        """Run's statistics against ``x_column`` (one of `X_COLUMNS`), up to its last valid step
        (a diverged run's statistics stop there)."""
        xs, grad, ratio = self.log.in_order()
        if len(xs) == 0 or run >= grad.shape[1]:
            self.clear_data()
            return
        column = X_COLUMNS.index(x_column)
        # Views of the log while the run is alive (the usual case, no copy); its first `count`
        # rows once it diverged.
        count = len(xs)
        if xs[-1, 0] > last_valid_step:
            count = int(np.searchsorted(xs[:, 0], last_valid_step, side="right"))
        self.update_layers(xs[:count, column], grad[:count, run], ratio[:count, run])

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
                item.extent = extent_of(sx, log_y)
        extents = self._extents()
        if self.defer_fit and not (mostly_hidden(self.grad_plot.vb, extents[0])
                                   or mostly_hidden(self.ratio_plot.vb, extents[1])):
            self.fit_pending = self.follow and self._unfitted(*extents) is not None
        else:
            self._fit()

    def follow_x_of(self, source: pg.ViewBox) -> None:
        """Show ``source``'s x range (the loss plot's): the views of one race show the same
        steps at the same moment (fitted to their own evaluations they re-ranged in other
        frames and ended elsewhere)."""
        self.x_source = source

    def needs_fit(self) -> bool:
        return self.fit_pending or (self.follow and self.x_source is not None
                                    and x_behind(self.grad_plot.vb, self.x_source))

    def _fit_grad(self, extent) -> None:
        if self.x_source is None:
            fit_range(self.grad_plot.vb, extent, True)
        else:
            copy_x(self.grad_plot.vb, self.x_source, extent)

    def fit_view(self, one: bool = False) -> None:
        """Fit both plots, or (``one``, while streaming) the first that needs it: each new
        range re-lays out an axis and repaints its curves, so each gets a redraw of its own."""
        if not one:
            self._fit()
            return
        extents = self._extents()
        plot = self._unfitted(*extents) if self.follow else None
        if plot is self.grad_plot:
            self._fit_grad(extents[0])
        elif plot is self.ratio_plot:
            copy_x(self.ratio_plot.vb, self.grad_plot.vb, extents[1])
        self.fit_pending = self.follow and self._unfitted(*extents) is not None

    def _extents(self):
        """The extents of the gradient plot's and the ratio plot's data; the gradient plot
        sets the x range of both, so its x extent covers both."""
        grad = union_of(getattr(item, "extent", None) for item in self.grad_curves)
        ratio = union_of(getattr(item, "extent", None) for item in self.ratio_curves)
        both = union_of([grad, ratio])
        return (both[0], both[1], grad[2], grad[3]), ratio

    def _unfitted(self, grad_extent, ratio_extent):
        """The first of the two plots whose range should change for these `_extents`, or None."""
        grad_vb = self.grad_plot.vb
        if self.x_source is not None:
            if (range_change(grad_vb, grad_extent, False) is not None
                    or x_behind(grad_vb, self.x_source)):
                return self.grad_plot
        elif range_change(grad_vb, grad_extent, True) is not None:
            return self.grad_plot
        ratio_vb = self.ratio_plot.vb
        if (range_change(ratio_vb, ratio_extent, False) is not None
                or x_behind(ratio_vb, self.grad_plot.vb)):
            return self.ratio_plot
        return None

    def _fit(self) -> None:
        self.fit_pending = False
        if not self.follow:
            return
        grad_extent, ratio_extent = self._extents()
        self._fit_grad(grad_extent)
        copy_x(self.ratio_plot.vb, self.grad_plot.vb, ratio_extent)

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

