"""The Map page of the Surface tab: the loss surface as a heatmap with contours and paths.

`SurfacePlot` draws the surface as a heatmap with contour lines (contourpy, via
`app.arena.function_map.contour_path`) and every run's kept trajectory projected onto ONE plane, in
the run colours. Hovering a path point shows its step, its distance from the plane, its true
loss and the loss of the surface at its projection (`point_text`): the plane is only a slice, so
the two can differ, and the page says by how much instead of hiding it. `display_values` (log or
linear) is what both this page and the 3-D page colour; `surface_paths` lifts each path onto
the values this page shows, for the 3-D page.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF
from PySide6.QtWidgets import QGraphicsItem

from app.arena.function_map import COLORMAP, contour_path
from app.widgets.curves import FastCurve
from core.landscape.live import SurfaceUpdate

CONTOUR_LEVELS = 12
HOVER_PIXELS = 10  # a path point within this many pixels of the mouse is "hovered"


def display_values(loss: np.ndarray, log: bool) -> np.ndarray:
    """What the map colours: log10(loss) (floored so it stays finite) or the loss itself."""
    if not log:
        return np.asarray(loss, dtype=np.float64)
    return np.log10(np.maximum(np.asarray(loss, dtype=np.float64), 1e-12))


def point_text(update: SurfaceUpdate, run: int, k: int) -> str:
    """The hover text of point k of run ``run``: step, off-plane distance, true vs surface loss."""
    path = update.paths[run]
    lines = [f"{update.labels[run]} · step {int(path['step'][k])}",
             f"off-plane distance {float(path['off_plane'][k]):.4g}"]
    if "true_loss" in path:
        lines.append(f"true loss {float(path['true_loss'][k]):.5g}")
        lines.append(f"surface loss here {float(path['surface_loss'][k]):.5g}")
    elif update.followed:
        lines.append("true / surface loss: not computed while following (press Compute)")
    else:
        lines.append("true / surface loss: computing…")
    return "\n".join(lines)


def _finite_levels(values: np.ndarray) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if not len(finite):
        return 0.0, 1.0
    lo, hi = float(finite.min()), float(finite.max())
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def surface_paths(update: SurfaceUpdate, values: np.ndarray,
                  log: bool) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Each run's path as (α, β, display value at its projection): the exact surface loss
    where it has arrived, until then the grid value nearest each point."""
    paths = []
    for path in update.paths:
        if "surface_loss" in path:
            shown = display_values(path["surface_loss"], log)
        else:  # until the exact values arrive: the grid value nearest each point
            shown = _grid_lookup(update, values, path["alpha"], path["beta"])
        paths.append((path["alpha"], path["beta"], shown))
    return paths


def _grid_lookup(update, values, alpha, beta) -> np.ndarray:
    if not len(alpha):
        return np.zeros(0)
    i = np.clip(np.searchsorted(update.alphas, alpha), 0, len(update.alphas) - 1)
    j = np.clip(np.searchsorted(update.betas, beta), 0, len(update.betas) - 1)
    return values[j, i]


class SurfacePlot(pg.PlotWidget):
    """Heatmap + colour bar + contours + every run's projected path + hover read-out."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("surfacePlot")
        self.setMenuEnabled(False)
        item = self.plotItem
        item.setLabel("bottom", "α")
        item.setLabel("left", "β")
        for name in ("left", "bottom"):
            item.getAxis(name).enableAutoSIPrefix(False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.addItem(self.image)
        self.colorbar = pg.ColorBarItem(colorMap=COLORMAP, interactive=False, width=14)
        self.colorbar.setImageItem(self.image, insert_in=item)
        self.colorbar.axis.enableAutoSIPrefix(False)  # log losses are small: no "(x0.001)"
        self.contours = pg.PlotDataItem(pen=pg.mkPen(255, 255, 255, 60, width=1))
        self.addItem(self.contours)
        for cached in (self.image, self.contours):
            cached.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.center = pg.ScatterPlotItem(symbol="star", size=14, pen=pg.mkPen("k", width=1),
                                         brush=pg.mkBrush("#ffffff"))
        self.center.setZValue(15)
        self.addItem(self.center)
        self.curves: list[FastCurve] = []
        self.points: list[pg.ScatterPlotItem] = []
        self.hover_label = pg.TextItem(anchor=(0, 1), color="#f0f0f0", fill=(30, 32, 38, 220),
                                       border=pg.mkPen("#888"))
        self.hover_label.setZValue(40)
        self.hover_label.hide()
        self.addItem(self.hover_label, ignoreBounds=True)
        self.hover_text = ""
        self.surface: SurfaceUpdate | None = None
        self.colors: list[str] = []
        self._applied: dict[str, object] = {}  # axis labels and range as last set
        self.scene().sigMouseMoved.connect(self.on_mouse_moved)
        self.setToolTip("The loss around the weights on one plane; hover a path point for its "
                        "step, off-plane distance and true vs surface loss.")

    def set_runs(self, colors: list[str]) -> None:
        for item in (*self.curves, *self.points):
            self.removeItem(item)
        self.colors = list(colors)
        self.curves, self.points = [], []
        for color in self.colors:
            curve = FastCurve(pen=pg.mkPen(color, width=2), skipFiniteCheck=True)
            curve.setZValue(10)
            points = pg.ScatterPlotItem(size=6, pen=pg.mkPen("k", width=0.5),
                                        brush=pg.mkBrush(color))
            points.setZValue(12)
            self.addItem(curve)
            self.addItem(points)
            self.curves.append(curve)
            self.points.append(points)
        self.surface = None
        self.image.clear()
        self.contours.setData([], [])
        self.center.setData([], [])
        self.hover_label.hide()
        self.hover_text = ""
        self._applied = {}

    def show_update(self, update: SurfaceUpdate, log: bool) -> None:
        self.surface = update
        alphas, betas = update.alphas, update.betas
        if update.level == 0 and not update.followed:
            self._applied.pop("range", None)  # a new computation: show all of it
        values = display_values(update.loss, log)
        lo, hi = _finite_levels(values)
        shown = np.where(np.isfinite(values), values, hi)  # a diverged corner: the top colour
        self.image.setImage(shown, levels=(lo, hi))
        da = (alphas[-1] - alphas[0]) / max(1, len(alphas) - 1)
        db = (betas[-1] - betas[0]) / max(1, len(betas) - 1)
        # Pixel centres on the grid points.
        self.image.setRect(QRectF(alphas[0] - da / 2, betas[0] - db / 2,
                                  alphas[-1] - alphas[0] + da, betas[-1] - betas[0] + db))
        self.colorbar.setLevels((lo, hi))
        # Labels and ranges only when they change: each change re-lays out and repaints the
        # axes, which costs more than the picture itself when following at several Hz.
        self._set_once("colorbar", "log₁₀ loss" if log else "loss", self.colorbar.axis.setLabel)
        if log:
            levels = np.linspace(lo, hi, CONTOUR_LEVELS + 2)[1:-1]
        else:  # quantile levels: a few high corners would leave the basin without lines
            levels = np.unique(np.quantile(shown, np.linspace(0.03, 0.97, CONTOUR_LEVELS)))
        cx, cy, connect = contour_path(alphas, betas, shown, levels)
        self.contours.setData(cx, cy, connect=connect)
        self._set_once("center", update.center_run, self._show_center)
        for curve, points, path in zip(self.curves, self.points, update.paths):
            curve.setData(path["alpha"], path["beta"])
            sizes = np.full(len(path["alpha"]), 5.0)
            sizes[-1:] = 12.0  # the run's current weights stand out from its path
            points.setData(path["alpha"], path["beta"], size=sizes)
        name_a, name_b = update.axis_names
        self._set_once("bottom", name_a, lambda text: self.plotItem.setLabel("bottom", text))
        self._set_once("left", name_b, lambda text: self.plotItem.setLabel("left", text))
        extent = (float(alphas[0]), float(alphas[-1]), float(betas[0]), float(betas[-1]))
        self._set_once("range", extent, lambda e: self.setRange(
            xRange=e[:2], yRange=e[2:], padding=0.02))
        if self.hover_label.isVisible():
            self.hover_label.hide()

    def _show_center(self, run: int) -> None:
        self.center.setData([0.0], [0.0])
        self.center.setToolTip(f"centre: {self.surface.labels[run]}'s weights")

    def _set_once(self, key: str, value, apply) -> None:
        if self._applied.get(key) != value:
            self._applied[key] = value
            apply(value)

    def projected_paths(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each run's drawn path (α, β), as the curve items hold it."""
        out = []
        for curve in self.curves:
            x, y = curve.getData()
            out.append((np.asarray(x if x is not None else []),
                        np.asarray(y if y is not None else [])))
        return out

    def nearest_point(self, scene_pos: QPointF) -> tuple[int, int] | None:
        """(run, index) of the path point nearest to ``scene_pos`` within HOVER_PIXELS."""
        if self.surface is None:
            return None
        vb = self.plotItem.vb
        if not vb.sceneBoundingRect().contains(scene_pos):
            return None
        here = vb.mapSceneToView(scene_pos)
        px, py = vb.viewPixelSize()  # data units per screen pixel
        if not (px > 0 and py > 0):
            return None
        best, best_d = None, float(HOVER_PIXELS)
        for run, path in enumerate(self.surface.paths):
            if not len(path["alpha"]):
                continue
            d = np.hypot((path["alpha"] - here.x()) / px, (path["beta"] - here.y()) / py)
            k = int(np.argmin(d))
            if d[k] <= best_d:
                best, best_d = (run, k), float(d[k])
        return best

    def on_mouse_moved(self, scene_pos) -> None:
        found = self.nearest_point(QPointF(scene_pos))
        if found is None:
            self.hover_label.hide()
            self.hover_text = ""
            return
        run, k = found
        self.hover_text = point_text(self.surface, run, k)
        path = self.surface.paths[run]
        self.hover_label.setText(self.hover_text)
        self.hover_label.setPos(float(path["alpha"][k]), float(path["beta"][k]))
        self.hover_label.show()
