"""`RunCurvesPlot`: one line per run of a network race (loss, accuracy or R², learning rate).

Solid lines are training, dashed lines validation, one colour per run. The solid line can be
smoothed: TensorBoard's debiased exponential moving average (core/engine/smoothing.py), drawn
over the raw series, which stays as a faint line of the same colour so smoothing never hides a
spike; the legend names the weight. The legend is a row between the plot's title and its data
(`app.widgets.curves.KeyRow`), so it covers no curve and wraps in a narrow plot. A race over
several seeds draws each run's mean with a translucent band of ± one standard deviation under it
(`_Band`, smoothed like its line).

Built for streaming: items fed decimated data (`app.network.series_curve`), the log transform
done here, the view range set here with hysteresis (`app.network.plot_ranges`).
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
from app.network.series_curve import GrownSeries, SeriesCurve
from app.shell.theme import FOREGROUND
from app.widgets.curves import MAX_POINTS, SeriesPlot, add_key_row
from core.engine.smoothing import DebiasedEma

RAW_ALPHA_SMOOTHED = 60  # the raw line under a smoothed one: faint, but visible
BAND_ALPHA = 50  # the mean ± std band of a race over several seeds
BAND_POINTS = 1000  # a band is drawn through at most this many points (its envelope)


def _faded(color: QColor, alpha: int) -> QColor:
    faded = QColor(color)
    faded.setAlpha(alpha)
    return faded


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
            self.legend = add_key_row(self.plotItem, follow=False)
        plain_axes(self.plotItem)
        self.smoothed: list[SeriesCurve] = []
        self.dashed: list[SeriesCurve] = []
        self._colors: list[QColor] = []
        self._faint = False
        self._labels: list[str] = []
        self._legend_smoothing = 0.0  # the smoothing the legend's key names
        self._drawn: list[tuple | None] = []  # per run: (size, last x, smoothing) last drawn
        self._drawn_dashed: list[tuple | None] = []
        # Per run: (DebiasedEma, GrownSeries of x, smoothed values) of its solid series.
        self._ema: list[tuple | None] = []
        self._extents: dict[int, tuple | None] = {}  # id(item) → extent of its shown data
        self.bands: list[_Band | None] = []
        self.dashed_bands: list[_Band | None] = []
        # The plot whose x range this one copies (`follow_x_of`), or None: it sets its own.
        self.x_leader: RunCurvesPlot | None = None
        self.x_followers: list[RunCurvesPlot] = []
        self._shared_x: SharedUserX | None = None
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
            raw = SeriesCurve(pen=pg.mkPen(color, width=1), skipFiniteCheck=True)
            smooth = SeriesCurve(pen=pg.mkPen(color, width=1), skipFiniteCheck=True)
            dashed = SeriesCurve(pen=pg.mkPen(color, width=1, style=Qt.PenStyle.DashLine),
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

    # The legend (a `KeyRow` above the data) drops its line-style key ("smoothed", "raw",
    # "val") when all of it would take more than this share of the plot's height (a narrow
    # plot needs many rows); the runs stay named, however small the plot.
    LEGEND_MAX_FRACTION = 0.2

    def _fit_legend(self, *_args) -> None:
        if self.legend is None:
            return
        # The row spans the data's column; the left axis's width is known before the data's.
        width = max(40.0, self.width() - self.plotItem.getAxis("left").width() - 12)
        room = self.LEGEND_MAX_FRACTION * self.plotItem.height()
        self.legend.set_runs_only(self.legend.height_for(width, runs_only=False) > room)
        self.legend.fit(width)
        self.legend.set_shown(bool(self.curves))

    def _points(self, item: SeriesCurve, x: np.ndarray,
                y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Finite points of ``item``'s series; on a log axis also positive ones only.

        A zero (a learning rate annealed to 0, a loss that underflowed) has no place on a log
        axis; flooring it would stretch the axis down to the floor, so it is left out instead.
        The history's own views are passed through untouched in the usual all-valid case, and
        only the points added since the last frame are checked (`ValidPrefix`).
        """
        return item.valid.points(x, y, self.log_y)

    def _budget(self) -> int:
        """Two points (min and max) per horizontal pixel are all a screen can show."""
        return max(200, min(MAX_POINTS, 2 * int(self.plotItem.vb.width())))

    def show_series(self, item: SeriesCurve, x: np.ndarray, y: np.ndarray,
                    thin: bool = True) -> None:
        """Give ``item`` the series (x, y): decimated (`GrowingThinning`: per frame, work for
        the new points only), log-transformed on a log axis."""
        sx, sy = item.thinning.thin(x, y, self._budget()) if thin else (x, y)
        if self.log_y and len(sy):
            sy = np.log10(np.maximum(sy, 1e-300))
        item.set_series(x, y, sx, sy)
        self._extents[id(item)] = extent_of(sx, sy)

    def _smoothed(self, i: int, x: np.ndarray, y: np.ndarray, smoothing: float) -> np.ndarray:
        """`core.engine.smoothing`'s debiased EMA of run i's whole series (non-finite points stay raw,
        so the caller's filter drops them), extended by the new points only when the series only
        grew since the last frame."""
        cache = self._ema[i]
        grown = GrownSeries()
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
        vb, extent = self.plotItem.vb, union_of(self._extents.values())
        if self.defer_fit and not mostly_hidden(vb, extent):
            self.fit_pending = self.follow and (
                range_change(vb, extent, self.x_leader is None) is not None
                or self._x_behind())
        else:
            self.fit_view()

    def follow_x_of(self, leader: RunCurvesPlot) -> None:
        """Show ``leader``'s x axis (plots of equal width, one above the other): panned and
        zoomed together, a double click on either follows the data again with both."""
        self.x_leader = leader
        leader.x_followers.append(self)
        self._shared_x = SharedUserX(leader.plotItem.vb, self.plotItem.vb,
                                      self._stop_following_x)

    def _x_group(self) -> list[RunCurvesPlot]:
        """This plot and those that share its x axis, the leader first."""
        leader = self.x_leader or self
        return [leader, *leader.x_followers]

    def _stop_following_x(self) -> None:
        for plot in self._x_group():
            plot.follow = False

    def _x_behind(self) -> bool:
        return self.x_leader is not None and x_behind(self.plotItem.vb,
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
        extent = union_of(self._extents.values())
        if self.x_leader is None:
            fit_range(self.plotItem.vb, extent, True)
        else:
            copy_x(self.plotItem.vb, self.x_leader.plotItem.vb, extent)

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

    The edges are `SeriesCurve` items fed through their plot (log transform there). On a log
    axis a lower edge at or below zero cannot be drawn; it is floored one decade under the mean
    instead. A long series is drawn as its envelope through `BAND_POINTS` points (per bucket the
    lowest lower and highest upper edge): filling a 10⁵-vertex polygon would take seconds.
    """

    def __init__(self, plot: pg.PlotItem, color: QColor):
        # Invisible pens, not pen=None: FillBetweenItem fills between the curves' paths.
        self.lower = SeriesCurve(pen=pg.mkPen(0, 0, 0, 0), skipFiniteCheck=True)
        self.upper = SeriesCurve(pen=pg.mkPen(0, 0, 0, 0), skipFiniteCheck=True)
        self.fill = pg.FillBetweenItem(self.lower, self.upper, brush=_faded(color, BAND_ALPHA))
        for item in (self.lower, self.upper, self.fill):
            plot.addItem(item)
        self.fill.setZValue(-5)  # under every line
        self.forget()

    def forget(self) -> None:
        # (weight, GrownSeries of x, DebiasedEma of the mean and of the std, their smoothed values)
        self._ema: tuple | None = None

    def _smoothed(self, x: np.ndarray, mean: np.ndarray, std: np.ndarray,
                  smoothing: float) -> tuple[np.ndarray, np.ndarray]:
        """The smoothed mean and std (the band is linear in both), extended by the new points
        only while the series only grows, like `RunCurvesPlot._smoothed`."""
        cache = self._ema
        grown = GrownSeries()
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
