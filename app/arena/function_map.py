"""The 2-D landscape: heatmap with a colour bar, contour lines, minima, trajectories, start point.

Drawing choices, measured on these machines (the slower way each one avoids is named):
* contours come from contourpy (1–6 ms) rather than pyqtgraph's IsocurveItem (~130 ms), and all
  levels go into ONE PlotDataItem with a ``connect`` array, so a redraw is one path;
* pens are 1–2 px without antialiasing (wider antialiased pens cost 5–30× in redraw time);
* image levels are explicit, so the colour bar does not rescale as trajectories are drawn;
* functions with a large dynamic range (Rosenbrock, Beale…) are coloured by log10(f − f_min).

The start point is a draggable target: dragging it, or clicking anywhere on the map, emits
``start_moved(x, y)``; the main window turns that into an undoable lab edit.
"""

from __future__ import annotations

import math
from html import escape

import contourpy
import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QAction, QBrush, QColor, QFont, QFontMetrics, QTransform
from PySide6.QtWidgets import QGraphicsItem

from app.arena.internals_overlay import InternalsOverlay
from app.widgets.curves import FastCurve, add_key_row
from core.problems.functions import Objective, finite_values

GRID_RESOLUTION = 240
CONTOUR_LEVELS = 14
# A dark blue-grey ramp (low = dark): the runs' saturated colours stand out on it, which they
# do not on viridis, whose greens and yellows are the runs' own colours.
COLORMAP = pg.ColorMap(
    pos=[0.0, 0.5, 1.0], color=[(14, 17, 26), (62, 76, 104), (196, 204, 220)]
)


# Where f is undefined (NaN: log x for x < 0): neutral grey hatching over the heatmap, named in
# the key, instead of the colour of the highest values (which said "a peak" there).
UNDEFINED_COLOR = (128, 128, 128)
UNDEFINED_TEXT = "undefined"


def undefined_overlay(undefined: np.ndarray, stripe: int = 6) -> np.ndarray:
    """An RGBA image (rows are y, as the heatmap) that is hatched grey where ``undefined`` and
    transparent elsewhere: diagonal stripes every ``stripe`` cells."""
    rows, cols = np.indices(undefined.shape)
    dark = (rows + cols) % stripe < stripe // 2
    rgba = np.zeros((*undefined.shape, 4), dtype=np.ubyte)
    rgba[..., :3] = UNDEFINED_COLOR
    rgba[..., :3][dark] = (80, 80, 80)
    rgba[..., 3] = np.where(undefined, 255, 0)
    return rgba


def undefined_brush() -> QBrush:
    return QBrush(QColor(*UNDEFINED_COLOR), Qt.BrushStyle.BDiagPattern)


def display_transform(objective: Objective, z: np.ndarray):
    """The map from f to what the heatmap shows, fitted to the grid's finite values ``z``: f
    itself, or log10 of the gap to the grid's minimum where the function asks for it; and its
    label. The 3-D view (app/arena/function_3d.py) lifts paths with the same map."""
    if not objective.log_scale:
        return (lambda f: np.asarray(f, dtype=float)), "f(x, y)"
    floor = float(np.min(z))
    span = float(np.max(z)) - floor
    # A floor just below the grid's minimum keeps log finite without hiding the valley (a point
    # below the grid's minimum, between its nodes, sits at the floor).
    eps = max(span * 1e-7, 1e-12)
    return (lambda f: np.log10(np.maximum(np.asarray(f, dtype=float) - floor, 0.0) + eps)), \
        "log₁₀(f − min)"


def color_values(objective: Objective, z: np.ndarray) -> tuple[np.ndarray, str]:
    """What the heatmap shows (log10 of the gap to the minimum where the function asks for it)."""
    transform, label = display_transform(objective, z)
    return transform(z), label


def contour_path(xs: np.ndarray, ys: np.ndarray, values: np.ndarray, levels: np.ndarray):
    """All contour lines of ``values`` as one (x, y, connect) triple for a single PlotDataItem."""
    gen = contourpy.contour_generator(xs, ys, values, line_type=contourpy.LineType.Separate)
    parts_x, parts_y, parts_c = [], [], []
    for level in levels:
        for line in gen.lines(level):
            if len(line) < 2:
                continue
            parts_x.append(line[:, 0])
            parts_y.append(line[:, 1])
            connect = np.ones(len(line), dtype=bool)
            connect[-1] = False  # no segment from this line's end to the next line's start
            parts_c.append(connect)
    if not parts_x:
        return np.empty(0), np.empty(0), np.empty(0, dtype=bool)
    return np.concatenate(parts_x), np.concatenate(parts_y), np.concatenate(parts_c)


def thin_to_pixels(x: np.ndarray, y: np.ndarray, pixel: tuple[float, float]):
    """The path as it is drawn: only what a screen of this pixel size can show.

    A point is kept when it lands on another pixel than the point before it, and a segment
    between two kept points is drawn once: a run that bounces between the same pixels (Rprop
    or a too-large lr in a valley, thousands of times) adds nothing after its first bounce.
    Returns (x, y, connect): ``connect[i]`` is False where the line must not join point i to
    point i + 1 (a left-out segment), for pyqtgraph's ``connect`` argument; no NaN is ever
    handed to a plot. Painting is the cost of a frame — wide lines ~1 µs a segment — so this
    bounds it by the pixels a path visits instead of its length. Unlike taking every k-th point
    it never hides a zig-zag. The first point is always kept; the newest may not be (the run's
    marker is drawn at it).
    """
    return ThinnedPath().update(x, y, pixel)


class ThinnedPath:
    """`thin_to_pixels` kept up to date as a path grows: each frame thins only the new points.

    Re-thinning the whole path every frame made a long race's frames grow with its length (the
    soak bench's late frames were ~3x the early ones). The cache starts over when the pixel size
    changes (zoom, resize) or the path's start is no longer what it was (a reset, or the history
    thinning its older half) — checked on the first and the last point already seen.
    """

    def __init__(self):
        self._reset(None)

    def _reset(self, key) -> None:
        self._key = key  # (pixel, x[0], y[0]) the cache belongs to
        self._seen = 0  # points of the input already thinned
        self._last_seen = (np.nan, np.nan)  # the input's point at index _seen - 1
        self._anchor: tuple[float, float, int, int] | None = None  # last kept point and cell
        self._open = False  # the drawn polyline ends at the anchor (else a NaN break follows)
        self._segments: set[tuple[int, int, int, int]] = set()  # pixel segments drawn
        self._x = np.empty(0)
        self._y = np.empty(0)
        self._connect = np.empty(0, dtype=bool)
        self._size = 0

    def _append(self, x: np.ndarray, y: np.ndarray, connect: np.ndarray) -> None:
        end = self._size + len(x)
        if end > len(self._x):
            grown = max(end, 2 * len(self._x), 256)
            self._x = np.resize(self._x, grown)
            self._y = np.resize(self._y, grown)
            self._connect = np.resize(self._connect, grown)
        self._x[self._size:end] = x
        self._y[self._size:end] = y
        self._connect[self._size:end] = connect
        self._size = end

    def update(self, x: np.ndarray, y: np.ndarray, pixel: tuple[float, float]):
        """The thinned path of (x, y) and its connect array (False before a left-out gap)."""
        px, py = pixel
        n = len(x)
        if not (px > 0 and py > 0) or n < 3:
            self._key = None
            return x, y, np.ones(n, dtype=bool)
        key = (pixel, float(x[0]), float(y[0]))
        same = (key == self._key and self._seen <= n
                and (x[self._seen - 1], y[self._seen - 1]) == self._last_seen)
        if not same:
            self._reset(key)
        new_x, new_y = x[self._seen:], y[self._seen:]
        if len(new_x):
            self._thin(new_x, new_y, px, py)
            self._seen = n
            self._last_seen = (x[n - 1], y[n - 1])
        return self._x[:self._size], self._y[:self._size], self._connect[:self._size]

    def _thin(self, x: np.ndarray, y: np.ndarray, px: float, py: float) -> None:
        with np.errstate(invalid="ignore"):
            cells = np.column_stack([np.floor(x / px), np.floor(y / py)]).astype(np.int64)
        moved = np.ones(len(x), dtype=bool)
        moved[1:] = np.any(cells[1:] != cells[:-1], axis=1)
        if self._anchor is not None:
            moved[0] = (cells[0, 0], cells[0, 1]) != self._anchor[2:]
        x, y, cells = x[moved], y[moved], cells[moved]
        if not len(x):
            return
        if self._anchor is None:  # the very first point: where the path starts
            self._append(x[:1], y[:1], np.ones(1, dtype=bool))
            self._open = True
            self._anchor = (x[0], y[0], int(cells[0, 0]), int(cells[0, 1]))
            x, y, cells = x[1:], y[1:], cells[1:]
            if not len(x):
                return
        ax, ay, acx, acy = self._anchor
        starts = np.vstack([[acx, acy], cells[:-1]])
        # A segment and its reverse are the same pixels: order the ends.
        flip = (starts[:, 0] > cells[:, 0]) | ((starts[:, 0] == cells[:, 0])
                                               & (starts[:, 1] > cells[:, 1]))
        ends = np.where(flip[:, None], starts, cells)
        begins = np.where(flip[:, None], cells, starts)
        keys = np.column_stack([begins, ends])
        # A set lookup per segment; a big batch (a reset re-thins up to 30k points) first
        # drops its repeats in one vectorised pass, so the loop sees distinct segments only.
        fresh = np.zeros(len(keys), dtype=bool)
        if len(keys) > 256:
            candidates = np.sort(np.unique(keys, axis=0, return_index=True)[1])
        else:
            candidates = range(len(keys))
        rows = keys.tolist()
        for index in candidates:
            segment = tuple(rows[index])
            if segment not in self._segments:
                self._segments.add(segment)
                fresh[index] = True
        # Kept segment i draws from point i-1 (the anchor for i = 0) to point i. After a gap the
        # polyline restarts: the point before the gap does not connect on, then the segment's
        # start and its end.
        previous = np.concatenate([[self._open], fresh[:-1]])
        restart = fresh & ~previous
        count = np.where(restart, 2, 1) * fresh
        out_x = np.empty(int(count.sum()))
        out_y = np.empty_like(out_x)
        connect = np.ones(len(out_x), dtype=bool)
        at = np.cumsum(count) - count
        from_x = np.concatenate([[ax], x[:-1]])
        from_y = np.concatenate([[ay], y[:-1]])
        r = at[restart]
        out_x[r], out_y[r] = from_x[restart], from_y[restart]
        out_x[r + 1], out_y[r + 1] = x[restart], y[restart]
        plain = fresh & ~restart
        out_x[at[plain]], out_y[at[plain]] = x[plain], y[plain]
        gaps = r - 1
        connect[gaps[gaps >= 0]] = False
        if len(r) and r[0] == 0 and self._size:
            self._connect[self._size - 1] = False  # the gap opens at the previous frame's end
        self._append(out_x, out_y, connect)
        self._open = bool(fresh[-1])
        self._anchor = (x[-1], y[-1], int(cells[-1, 0]), int(cells[-1, 1]))


class TrajectoryCurve(FastCurve):
    """A run's path, 2 px wide, drawn as three 1-px lines offset by one device pixel.

    A wide pen makes Qt stroke every segment into a polygon (~1 µs a segment, the largest cost
    of a long race's frame); 1-px lines take Qt's fast path. The original plus copies one pixel
    right and one pixel down cover at least 2 px across in every direction, and look the same
    (no antialiasing either way): measured 8.7 -> 3.5 ms for 8,500 drawn points.
    """

    def __init__(self, color: QColor):
        super().__init__(pen=pg.mkPen(color, width=1), skipFiniteCheck=True)

    def pixelPadding(self):  # noqa: N802 - pyqtgraph's name
        return super().pixelPadding() + 1.0  # the offset copies reach one pixel further

    def paint(self, painter, option, widget=None):
        base = painter.worldTransform()
        super().paint(painter, option, widget)
        for dx, dy in ((1.0, 0.0), (0.0, 1.0)):
            painter.setWorldTransform(base * QTransform.fromTranslate(dx, dy))
            super().paint(painter, option, widget)
        painter.setWorldTransform(base)


class LandscapePlot(pg.PlotWidget):
    """Heatmap + contours + minima + one trajectory and one marker per run."""

    start_moved = Signal(float, float)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("landscapePlot")
        self.setMenuEnabled(False)
        self.plotItem.setLabel("bottom", "x")
        self.plotItem.setLabel("left", "y")
        self.plotItem.showGrid(False, False)
        # Drawn to scale by default (x² + y² is round, a ravine as narrow as it is): one unit of
        # x as long as one of y. View ▸ Equal axis scales (or the map's right-click menu)
        # lets a long thin domain fill the view instead.
        self.aspect_action = QAction("Equal axis scales (1:1)", self, checkable=True)
        self.aspect_action.setChecked(True)
        self.aspect_action.setToolTip("Draw the map to scale: one unit of x as long as one of y")
        self.aspect_action.setStatusTip(self.aspect_action.toolTip())
        self.aspect_action.toggled.connect(self.set_equal_aspect)
        self.addAction(self.aspect_action)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        self.plotItem.setAspectLocked(True, ratio=1.0)
        # The key names every run's path (and the hatching of undefined regions): a row above
        # the map, so it covers no path and is in every picture of the map (app/export).
        self.legend = add_key_row(self.plotItem)
        self.undefined = pg.ImageItem(axisOrder="row-major")
        self.undefined.setZValue(1)
        self.undefined.setToolTip("f is undefined here (not a number)")
        self._undefined_key = pg.PlotDataItem(pen=None, symbol="s", symbolSize=12,
                                              symbolPen=pg.mkPen(128, 128, 128),
                                              symbolBrush=undefined_brush())
        self._has_undefined = False
        self._labels: list[str] = []

        self.image = pg.ImageItem(axisOrder="row-major")
        self.addItem(self.image)
        self.addItem(self.undefined)
        self.colorbar = pg.ColorBarItem(
            colorMap=COLORMAP, interactive=False, width=14
        )
        self.colorbar.setImageItem(self.image, insert_in=self.plotItem)

        self.contours = pg.PlotDataItem(pen=pg.mkPen(255, 255, 255, 45, width=1))
        self.addItem(self.contours)
        # The heatmap and contours only change with the function or the zoom: cache them as
        # pixmaps, so a frame repaints the moving trajectories, not a 240×240 image and
        # thousands of contour vertices.
        for item in (self.image, self.undefined, self.contours):
            item.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.minima = pg.ScatterPlotItem(
            symbol="star", size=14, pen=pg.mkPen("k", width=1), brush=pg.mkBrush("#ffffff")
        )
        self.minima.setToolTip("global minimum")
        self.addItem(self.minima)

        self.trajectories: list[TrajectoryCurve] = []
        self._thinned: list[ThinnedPath] = []
        self._brushes: list = []
        self.markers = pg.ScatterPlotItem(size=11, pen=pg.mkPen("k", width=1))
        self.markers.setZValue(20)
        self.addItem(self.markers)
        # Optimizer internals (arrows, boxes, their legend): drawn on request by the main window.
        self.internals = InternalsOverlay(self.plotItem)

        self.start_target = pg.TargetItem(
            pos=(0, 0), size=16, symbol="crosshair", pen=pg.mkPen("w", width=2), movable=True
        )
        self.start_target.setZValue(30)
        self.start_target.setToolTip("Start point: drag it, or click anywhere on the map")
        self.start_target.sigPositionChangeFinished.connect(self._on_target_moved)
        self.addItem(self.start_target)
        self.scene().sigMouseClicked.connect(self._on_scene_clicked)

        self.objective: Objective | None = None
        self._colors: list[QColor] = []
        self._domain = ((-1.0, 1.0), (-1.0, 1.0))

    # -- the function ------------------------------------------------------------------------

    def set_objective(self, objective: Objective) -> None:
        """Draw a new function: heatmap, colour bar, contours and minima."""
        self.objective = objective
        xs, ys, raw = objective.raw_grid(GRID_RESOLUTION)
        undefined = np.isnan(raw)
        z = finite_values(raw)
        values, label = color_values(objective, z)
        lo, hi = float(np.min(values)), float(np.max(values))
        if hi <= lo:
            hi = lo + 1.0
        (x0, x1), (y0, y1) = objective.domain
        self._domain = objective.domain
        self.image.setImage(values, levels=(lo, hi))
        self.image.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))
        self._has_undefined = bool(undefined.any())
        self.undefined.setImage(undefined_overlay(undefined))
        self.undefined.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))
        self.undefined.setVisible(self._has_undefined)
        self._fill_legend()
        self.colorbar.setLevels((lo, hi))
        self.colorbar.axis.setLabel(label)

        levels = np.linspace(lo, hi, CONTOUR_LEVELS + 2)[1:-1]
        if not objective.log_scale:
            # Quantile levels: evenly spaced levels leave flat regions with no lines at all.
            levels = np.unique(np.quantile(values, np.linspace(0.02, 0.98, CONTOUR_LEVELS)))
        cx, cy, connect = contour_path(xs, ys, values, levels)
        self.contours.setData(cx, cy, connect=connect)

        if objective.minima:
            pts = np.array(objective.minima, dtype=float)
            self.minima.setData(pts[:, 0], pts[:, 1])
            tip = ", ".join(f"({x:.4g}, {y:.4g})" for x, y in objective.minima)
            value = "" if objective.min_value is None else f" = {objective.min_value:.6g}"
            self.minima.setToolTip(f"global minimum f{value} at {tip}")
        else:
            self.minima.setData([], [])
        # Title and formula on two lines: one long line sets the plot's minimum width and
        # pushes the colour bar out of a narrow view.
        self._titles = (objective.title, objective.formula)
        self._fit_title()
        self.setRange(xRange=(x0, x1), yRange=(y0, y1), padding=0)
        # Room to zoom out to about three domains: of the larger side on both axes, since at
        # equal scales a tall view shows more y than the domain has (limits of the y side
        # alone clamped y, and the locked aspect then cut x: the ravine lost its ends).
        room = 2 * max(x1 - x0, y1 - y0)
        self.plotItem.vb.setLimits(xMin=x0 - room, xMax=x1 + room, yMin=y0 - room, yMax=y1 + room)

    def _fit_title(self) -> None:
        """Title and formula, each elided to the plot's width (a narrow view, e.g. with the
        internals dock open, would cut them mid-word); the whole text is the tooltip."""
        titles = getattr(self, "_titles", None)
        if not titles:
            return
        width = max(60, self.width() - 24)
        # 10 and 9 pt at the usual 9 pt font, larger with the widget's font (presenter mode).
        base = max(9.0, self.font().pointSizeF())
        title_pt, formula_pt = round(base * 10 / 9, 1), round(base, 1)
        font = QFont(self.font())
        font.setPointSizeF(title_pt)
        title = QFontMetrics(font).elidedText(titles[0], Qt.TextElideMode.ElideRight, width)
        font.setPointSizeF(formula_pt)
        formula = QFontMetrics(font).elidedText(titles[1], Qt.TextElideMode.ElideRight, width)
        self.plotItem.setTitle(
            f"<span style='font-size:{title_pt}pt'>{escape(title)}</span><br>"
            f"<span style='font-size:{formula_pt}pt'>{escape(formula)}</span>",
            size=f"{title_pt}pt",
        )
        self.plotItem.titleLabel.setToolTip(f"{titles[0]}\n{titles[1]}")
        # pyqtgraph gives the title row a fixed 30 px: two lines in presenter mode's larger
        # font need more, or the formula runs under the key row below it.
        needed = math.ceil(self.plotItem.titleLabel.item.boundingRect().height())
        if needed > 30:
            self.plotItem.titleLabel.setMaximumHeight(needed)
            self.plotItem.layout.setRowFixedHeight(0, needed)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._fit_title()

    def changeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().changeEvent(event)
        if event.type() == QEvent.Type.FontChange:  # presenter mode: title and formula grow
            self._fit_title()

    def set_equal_aspect(self, on: bool) -> None:
        """One unit of x as long as one of y (True), or the domain stretched to fill the view."""
        if self.aspect_action.isChecked() != on:
            self.aspect_action.setChecked(on)  # comes back here through `toggled`
            return
        self.plotItem.setAspectLocked(on, ratio=1.0)
        (x0, x1), (y0, y1) = self._domain
        self.setRange(xRange=(x0, x1), yRange=(y0, y1), padding=0)

    def _fill_legend(self) -> None:
        """The key: each run's label in its path's colour, then the hatching if f has holes."""
        self.legend.clear()
        for item, label in zip(self.trajectories, self._labels):
            self.legend.addItem(item, label)
        if self._has_undefined:
            self.legend.addItem(self._undefined_key, UNDEFINED_TEXT)

    def set_start(self, x: float, y: float) -> None:
        self.start_target.blockSignals(True)
        self.start_target.setPos(QPointF(x, y))
        self.start_target.blockSignals(False)

    # -- the runs ----------------------------------------------------------------------------

    def set_runs(self, colors: list[str], labels: list[str] | None = None) -> None:
        """One trajectory item per run, in the runs' colours, named ``labels`` in the key;
        clears old paths."""
        for item in self.trajectories:
            self.removeItem(item)
        self._labels = list(labels) if labels is not None else []
        self._colors = [QColor(c) for c in colors]
        self.trajectories = []
        self._thinned = [ThinnedPath() for _ in self._colors]
        for color in self._colors:
            # Bare curve items: a PlotDataItem's clipping/downsampling/log logic costs ~1 ms per
            # setData, paid for every run on every frame.
            item = TrajectoryCurve(color)
            item.setZValue(10)
            self.addItem(item)
            self.trajectories.append(item)
        self._brushes = [pg.mkBrush(color) for color in self._colors]
        self._fill_legend()
        self.markers.setData([], [])
        self.internals.clear()

    def update_paths(self, paths: list[tuple[np.ndarray, np.ndarray]], alive: list[bool]) -> None:
        """Redraw each run's path (x, y arrays) and its current position marker."""
        xs, ys, brushes, symbols = [], [], [], []
        pixel = self.plotItem.vb.viewPixelSize()  # data units per screen pixel (x, y)
        for item, thinned, brush, (x, y), live in zip(self.trajectories, self._thinned,
                                                      self._brushes, paths, alive):
            if len(x):  # the marker sits on the newest point (the thinned path may end before)
                xs.append(x[-1])
                ys.append(y[-1])
                brushes.append(brush)
                symbols.append("o" if live else "x")
            # The thinned path breaks where repeated segments are left out.
            x, y, connect = thinned.update(x, y, pixel)
            item.setData(x, y, connect=connect)
        self.markers.setData(xs, ys, brush=brushes, symbol=symbols)

    # -- start point -------------------------------------------------------------------------

    def _on_target_moved(self) -> None:
        pos = self.start_target.pos()
        self.start_moved.emit(float(pos.x()), float(pos.y()))

    def _on_scene_clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton or event.double():
            return
        vb = self.plotItem.vb
        if not vb.sceneBoundingRect().contains(event.scenePos()):
            return
        pos = vb.mapSceneToView(event.scenePos())
        (x0, x1), (y0, y1) = self._domain
        if x0 <= pos.x() <= x1 and y0 <= pos.y() <= y1:
            self.set_start(pos.x(), pos.y())
            self.start_moved.emit(float(pos.x()), float(pos.y()))
