"""The network view's decision-boundaries tab: a small multiple per run of the race.

Classification on a plane: the model's P(class 1) (binary, a diverging map with fixed levels
0…1) or its predicted class with alpha by confidence (multiclass, an RGBA image computed in
numpy) over the data's plane, with the training points filled and the validation points hollow.
A 1-D regression shows each run's fitted curve over the data instead; a 2-D regression shows the
predicted surface. Each panel shows its run's last snapshot of its own: a run that diverged
keeps its last finite one (the engine still evaluates its frozen model, whose weights may have
become NaN).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor

from app.network.race_state import ShownRace
from app.shell.theme import BACKGROUND, FOREGROUND, class_color, class_point_style
from core.engine.history import NetworkHistory


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


class BoundariesTab(pg.GraphicsLayoutWidget):
    """One panel per run (`_Panel`), in a square-ish grid, with a key under them."""

    def __init__(self, race: ShownRace, parent=None):
        super().__init__(parent)
        self.race = race
        self.setObjectName("boundaryGrid")
        self.setToolTip(
            "Each run's prediction over the data plane: filled dots are training points, "
            "hollow rings validation points."
        )
        self.panels: list[_Panel] = []
        # Per run: the last evaluation whose snapshot (image / curve) was finite and its own.
        self.snapshots: list = []

    def record(self, history: NetworkHistory) -> None:
        """Keep the newest evaluation as the snapshot of each run still alive whose picture is
        finite (a dead run keeps its last finite one of its own)."""
        ev = history.last_evaluation
        step = history.last_evaluation_step
        for i in range(len(self.snapshots)):
            if step > self.race.last_valid_step(i):
                continue
            picture = ev.boundary if ev.boundary is not None else ev.curve
            if picture is not None and i < len(picture) and np.isfinite(picture[i]).all():
                self.snapshots[i] = ev

    def set_runs(self) -> None:
        """A panel per run of the race (after `ShownRace` changed); forgets the snapshots."""
        race = self.race
        self.snapshots = [None] * len(race.labels)
        self.clear()
        self.panels = []
        data = race.dataset
        if data is None or not race.labels:
            return
        curve_mode = race.fits_curves
        if data.plane is None and not curve_mode:
            self.addLabel(
                f"No decision boundaries: the inputs of {data.name!r} are not points of a plane.",
                row=0, col=0, color=FOREGROUND,
            )
            return
        count = len(race.labels)
        columns = math.ceil(math.sqrt(count))
        for i, (label, color) in enumerate(zip(race.labels, race.colors)):
            plot = self.addPlot(row=i // columns, col=i % columns)
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
            self.panels.append(_Panel(plot, image, curve, color, label))
        self.nextRow()
        key = self._key_text()
        if key:
            self.addLabel(key, row=(count - 1) // columns + 1, col=0, colspan=columns,
                          color=FOREGROUND, size="8pt")

    def _key_text(self) -> str:
        data = self.race.dataset
        if data is None:
            return ""
        points = "filled dots: training" + (" · rings: validation" if len(data.y_val) else "")
        if data.task == "regression":
            what = "line: fitted curve" if self.race.fits_curves else "colour: predicted value"
            return f"{what} · {points}"
        names = data.class_names or tuple(str(k) for k in range(data.n_classes))
        if data.n_classes == 2:
            return (f"colour: P(class {names[1]}) from blue (class {names[0]}) to orange "
                    f"(class {names[1]}) · {points}")
        return f"colour: predicted class, fainter where the model is less sure · {points}"

    def _add_plane_points(self, plot: pg.PlotItem) -> None:
        add_plane_points(plot, self.race.dataset)

    def _add_regression_points(self, plot: pg.PlotItem) -> None:
        data = self.race.dataset
        for x, y, hollow in ((data.x_train, data.y_train, False), (data.x_val, data.y_val, True)):
            if len(x) == 0:
                continue
            pen = pg.mkPen(200, 200, 200, 200 if hollow else 60, width=1)
            brush = pg.mkBrush(0, 0, 0, 0) if hollow else pg.mkBrush(200, 200, 200, 150)
            scatter = pg.ScatterPlotItem(x[:, 0], y[:, 0], size=5, pen=pen, brush=brush)
            plot.addItem(scatter)

    def draw_panel(self, i: int) -> None:
        """Run i's panel: title from the newest evaluation, picture from its last own snapshot."""
        history = self.race.history
        data = self.race.dataset
        if i >= len(self.panels) or data is None or history is None:
            return
        ev = history.last_evaluation
        if ev is None:
            return
        panel = self.panels[i]
        step = history.last_evaluation_step
        scores = ev.val if ev.val else ev.train
        split = "val" if ev.val else "train"
        metric = self.race.metric
        score_name = "R²" if metric == "r2" else "acc"
        label = self.race.labels[i]
        event = history.divergences.get(i) or history.stops.get(i)
        if event is not None and step >= event.step:
            what = event.verb if i in history.divergences else "stopped early"
            panel.set_title(f"{label} · {what} at {event.step}")
        else:
            score = scores.get(metric)
            text = label
            if score is not None and math.isfinite(float(score[i])):
                value = float(score[i])
                shown = f"{value:.1%}" if metric == "accuracy" else f"{value:.3f}"
                text = f"{label} · {split} {score_name} {shown}"
            panel.set_title(text)
        snap = self.snapshots[i] if i < len(self.snapshots) else None
        if snap is None:
            return
        if panel.curve is not None and snap.curve is not None:
            y = snap.curve[i].astype(np.float64)
            if np.isfinite(y).all():
                lo, hi = float(data.x_train.min()), float(data.x_train.max())
                panel.curve.setData(np.linspace(lo, hi, len(y)), y)
        elif panel.image is not None:
            draw_snapshot(panel.image, snap, i, data)

    def boundary_images(self) -> list[np.ndarray | None]:
        """The image each panel shows (for tests and exports)."""
        return [p.image.image if p.image is not None else None for p in self.panels]

    def fitted_curves(self) -> list[tuple[np.ndarray, np.ndarray] | None]:
        return [p.curve.getOriginalDataset() if p.curve is not None else None for p in self.panels]


# The pictures, as functions: the network screen (app/network/overview_tab.py) draws the
# selected run's the same way.

def add_plane_points(plot: pg.PlotItem, data) -> None:
    """The data's training points (filled) and validation points (hollow) on ``plot``."""
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


def draw_snapshot(image: pg.ImageItem, ev, run: int, data) -> None:
    """Run ``run``'s picture of evaluation ``ev`` over the plane: P(class 1), the predicted class
    by confidence, or a 2-D regression's surface; a non-finite one (NaN weights) is skipped."""
    rgba = None
    if ev.boundary is not None and data.n_classes > 2 and ev.boundary_class is not None:
        rgba = confidence_rgba(ev.boundary_class[run], ev.boundary[run], data.n_classes)
    _draw_image(image, ev, run, rgba, data)


def _draw_image(image: pg.ImageItem, ev, run: int, rgba: np.ndarray | None, data) -> None:
    """Run's snapshot as an image over the plane; a non-finite one (NaN weights) is skipped."""
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
