"""Curve items fed a growing series: per frame, only the points added since the last one are read.

`SeriesCurve` keeps the series it was given (full resolution, for tests and exports) and draws a
decimated copy; `ValidPrefix` and `GrowingThinning` extend what they found on the last frame
(valid points, thinned buckets) while the series only grew (`GrownSeries`). Used by the network
view's curve plots (`app.network.run_curves`, `app.network.layer_stats`); a late frame of a long
race then costs what an early one does (bench/soak.py).
"""

from __future__ import annotations

import math

import numpy as np

from app.widgets.curves import FastCurve, bucket_extremes


def finite_points(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) without non-finite points; the views themselves when all are finite (usual case)."""
    ok = np.isfinite(y) & np.isfinite(x)
    if ok.all():
        return x, y
    return x[ok], y[ok]


class GrownSeries:
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


class ValidPrefix(GrownSeries):
    """`RunCurvesPlot._points` for a series that grows: only the new points are checked.

    Late in a long race a run's series holds ~30,000 points; checking all of them (finite, and
    positive on a log axis) for every run at every frame made a frame's data preparation grow
    with the race (bench/soak.py: the late event-loop gaps were longer than the early ones).
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
            new_x, new_y = finite_points(new_x, new_y)
            if positive and len(new_y):
                keep = new_y > 0
                new_x, new_y = new_x[keep], new_y[keep]
        # Copies: the history's buffer under the views is rewritten when it thins itself.
        old_x, old_y = self.kept if self.kept is not None else (x[:self.n], y[:self.n])
        self.kept = (np.concatenate([old_x, new_x]), np.concatenate([old_y, new_y]))
        self.remember(x)
        return self.kept


class GrowingThinning(GrownSeries):
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


class SeriesCurve(FastCurve):
    """A `FastCurve` that keeps the series it was given (untransformed, full resolution) and
    draws a decimated, transformed copy of it. ``getOriginalDataset`` answers as PlotDataItem's
    does, so tests and exports read the real numbers."""

    original: tuple = (None, None)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # What is known of the series last given, so the next frame only reads new points.
        self.valid = ValidPrefix()
        self.thinning = GrowingThinning()

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
