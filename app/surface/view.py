"""The Surface tab of a network lab: the loss surface around the weights, live.

Pages (an inner tab bar under the controls of `app.surface.panel.SurfaceControls`):

* **Map** (`SurfacePlot`) — the surface as a heatmap with contour lines (contourpy, via
  `app.arena.function_map.contour_path`) and every run's kept trajectory projected onto ONE plane, in
  the run colours. Hovering a path point shows its step, its distance from the plane, its true
  loss and the loss of the surface at its projection: the plane is only a slice, so the two can
  differ, and the view says by how much instead of hiding it.
* **3-D** (`app.surface.view_3d.Surface3DView`) — the same surface and paths in OpenGL, or a
  message where there is no OpenGL.
* **1-D slices** — linear interpolation (Goodfellow et al. 2015) from the initial weights to each
  run's weights, from run A to run B, or a random filter-normalised direction around each run.
* **Sharpness** — the top Hessian eigenvalue along each run's trajectory with its 2/lr
  edge-of-stability line (dashed, the run's colour): live from the race's `NetworkHistory`
  when the lab tracks it (``problem.sharpness_every``; redrawn only when new points arrived and
  the page is visible), else measured on demand. A measurement whose eigensolver did not converge
  (NaN, `core.landscape.eigensolver`) is a gap in its curve, listed in the plot's title as "not converged";
  a Hessian plane whose eigenvalues did not converge says so in the info line.

Weights come from a `core.landscape.live.WeightTap` that the main window wraps around the race's
records: the trajectories it kept, plus every run's current weights, copied consistently even
while the race runs (the copy is taken on the surface worker's thread, never the window's). All
work runs in a second `RaceController` (a QThread + GeneratorWorker over the core generators), so
the window never freezes; Cancel stops it between chunks; every update holds a whole grid, so the
coarse picture appears at once and is refined in place. "Follow training" recomputes a coarse
random-direction surface around run A every N race steps (`core.landscape.live.TrainingFollower`,
one engine reused), in a worker thread of lowered priority, skipping a follow-up while the
previous computation still runs (``BENCH surface-follow-gui``).
"""

from __future__ import annotations

import math
import os
import sys
import threading
from collections.abc import Callable
from html import escape
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QBuffer, QIODevice, QPointF, QRectF, Qt, Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGraphicsItem,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.arena.function_map import COLORMAP, contour_path
from app.shell.controller import RaceController
from app.shell.errors import show_failure
from app.surface.panel import SurfaceControls
from app.surface.view_3d import Surface3DView
from app.widgets.curves import FastCurve
from core.errors import LabError
from core.lab.format import write_atomic
from core.landscape import fused as landscape_fused
from core.landscape.live import (
    FOLLOW_GRID,
    RaceWeights,
    SharpnessUpdate,
    SliceUpdate,
    SurfaceUpdate,
    TrainingFollower,
    WeightTap,
    race_surface,
    sharpness_updates,
    slice_updates,
    surface_updates,
)
from core.landscape.race_surface import write_surface_npz

CONTOUR_LEVELS = 12
HOVER_PIXELS = 10  # a path point within this many pixels of the mouse is "hovered"
PAGE_MAP, PAGE_3D, PAGE_SLICES, PAGE_SHARPNESS = range(4)
SLICE_CHOICES = (
    ("init_final", "Interpolation: init → current (each run)",
     "loss((1−t)·θ₀ + t·θ) for each run: t = 0 is the shared initial weights, t = 1 the "
     "run's current weights (Goodfellow et al. 2015)."),
    ("runs", "Interpolation: run A → run B",
     "loss((1−t)·θ_A + t·θ_B): is there a barrier between the two runs' minima?"),
    ("random", "Random direction (each run)",
     "loss(θ + α·d) along one filter-normalised random direction d around each run's weights."),
)


FOLLOW_NICE = 10  # how much lower a follow-up's thread runs than the race (Linux nice)


def background_priority(nice: int = FOLLOW_NICE) -> None:
    """Lower the *calling thread's* CPU priority (Linux: nice is per thread).

    A follow-up is background work: on a machine with fewer free cores than threads, the
    scheduler should run the race and the window first. The thread is a fresh worker thread that
    ends with its task, so the lowered priority goes with it. Elsewhere (no per-thread nice)
    this does nothing."""
    if not hasattr(os, "setpriority") or not sys.platform.startswith("linux"):
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except OSError:
        pass  # not allowed here: the follow-up simply runs at normal priority


class TaskError:
    """A user-level error raised inside a surface task, carried to the window as a record."""

    def __init__(self, message: str):
        self.message = message


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


class SlicePlot(pg.PlotWidget):
    """1-D slices: one curve per run (or one for A → B), loss on a log axis."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("slicePlot")
        self.setMenuEnabled(False)
        self.plotItem.setLabel("left", "loss")
        self.plotItem.setLogMode(y=True)
        self.plotItem.addLegend(offset=(-10, 10))
        self.curves: dict[int, pg.PlotDataItem] = {}
        for x in (0.0, 1.0):
            line = pg.InfiniteLine(pos=x, angle=90, pen=pg.mkPen(200, 200, 200, 80, width=1))
            self.addItem(line)
        self.setToolTip("The loss along a straight line through weight space.")

    def clear_curves(self, kind: str) -> None:
        for item in self.curves.values():
            self.removeItem(item)
        self.curves = {}
        self.plotItem.legend.clear()
        axis = "α (0: the run's weights)" if kind == "random" else "t (0: first point, 1: second)"
        self.plotItem.setLabel("bottom", axis)

    def add_curve(self, update: SliceUpdate, color: str) -> None:
        ok = np.isfinite(update.losses) & (update.losses > 0)
        item = pg.PlotDataItem(update.ts[ok], update.losses[ok], pen=pg.mkPen(color, width=2),
                               name=update.label)
        if update.run in self.curves:
            self.removeItem(self.curves[update.run])
        self.curves[update.run] = item
        self.addItem(item)


EDGE_LEGEND = "2/lr (dashed, run colour): edge of stability"
MAX_DOTS = 200
NOTE_STEPS = 4  # not-converged steps named per run in the plot's title (then a count)


def _not_converged_note(labels: list[str], missing: dict[int, np.ndarray]) -> str:
    """The plot title naming each run's not-converged measurements ("" when none)."""
    parts = []
    for run, steps in sorted(missing.items()):
        if not len(steps):
            continue
        label = escape(labels[run]) if run < len(labels) else f"run {run}"
        shown = ", ".join(str(int(s)) for s in steps[:NOTE_STEPS])
        more = f" … ({len(steps)} in all)" if len(steps) > NOTE_STEPS else ""
        word = "step" if len(steps) == 1 else "steps"
        parts.append(f"{label} at {word} {shown}{more}")
    if not parts:
        return ""
    return ("<span style='color:#e0b060'>not converged (gaps): " + "; ".join(parts)
            + "</span>")


def _gapped(steps: np.ndarray, values: np.ndarray, ok: np.ndarray):
    """The drawable points and pyqtgraph's ``connect`` array: no segment across a point that
    is not drawn (a not-converged measurement), so it shows as a gap."""
    index = np.flatnonzero(ok)
    connect = np.zeros(len(index), dtype=bool)
    if len(index) > 1:
        connect[:-1] = np.diff(index) == 1
    return steps[index], values[index], connect


class SharpnessPlot(pg.PlotWidget):
    """λ_max per run vs step (solid, dots) and its 2/lr edge-of-stability line (dashed).

    Fed either by the race's own tracked sharpness (`show_history`: redrawn only when new
    points arrived, and only while the plot is visible) or by on-demand measurements
    (`set_series`)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("sharpnessPlot")
        self.setMenuEnabled(False)
        self.plotItem.setLabel("bottom", "step")
        self.plotItem.setLabel("left", "top Hessian eigenvalue λ_max")
        self.plotItem.setLogMode(y=True)
        self.plotItem.addLegend(offset=(-10, 10))
        self.items: dict[int, tuple[pg.PlotDataItem, pg.PlotDataItem]] = {}
        self.series: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self.labels: list[str] = []
        self.colors: list[str] = []
        self._history = None  # the tracked history waiting to be drawn (None: nothing new)
        self._drawn_counts: tuple[int, ...] = ()
        # Per run: steps whose measurement did not converge (NaN), named in the title.
        self.not_converged: dict[int, np.ndarray] = {}
        # One neutral legend entry explains every dashed line (not one entry per run).
        self._edge_sample = pg.PlotDataItem(
            pen=pg.mkPen(200, 200, 200, width=1, style=Qt.PenStyle.DashLine))
        self.setToolTip("Sharpness (top Hessian eigenvalue λ_max) along each run. Dashed, in "
                        "the run's colour: 2/lr — gradient descent at learning rate lr is "
                        "stable only while λ_max < 2/lr (the edge of stability).")

    def set_runs(self, labels: list[str], colors: list[str]) -> None:
        self.labels, self.colors = list(labels), list(colors)
        self.clear_series()

    def clear_series(self) -> None:
        for pair in self.items.values():
            for item in pair:
                self.removeItem(item)
        self.items, self.series = {}, {}
        self.plotItem.legend.clear()
        self._history = None
        self._drawn_counts = ()
        self.not_converged = {}
        self.plotItem.setTitle(None)

    def show_history(self, history) -> bool:
        """Draw a `core.engine.history.NetworkHistory`'s tracked sharpness if it has new points.

        Cheap to call every frame: it compares point counts; a hidden plot only remembers the
        history and draws when shown. True when the history tracks sharpness at all."""
        tracked = getattr(history, "sharpness", None)
        if tracked is None:
            return False
        counts = tuple(len(series) for series in tracked)
        if counts != self._drawn_counts:
            self._history = history
            if self.isVisible():
                self._draw_history()
        return True

    def _draw_history(self) -> None:
        history, self._history = self._history, None
        if history is None:
            return
        counts = tuple(len(series) for series in history.sharpness)
        for run, count in enumerate(counts):
            seen = self._drawn_counts[run] if run < len(self._drawn_counts) else -1
            if count != seen and run < len(self.labels):
                self.set_series(run, self.labels[run], self.colors[run],
                                *history.sharpness_series(run))
        self._drawn_counts = counts

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        self._draw_history()

    def set_series(self, run: int, label: str, color: str, steps, sharpness, lr) -> None:
        steps = np.asarray(steps, dtype=np.float64)
        sharpness = np.asarray(sharpness, dtype=np.float64)
        lr = np.asarray(lr, dtype=np.float64)
        self.series[run] = (steps, sharpness, lr)
        if run not in self.items:
            line = pg.PlotDataItem(pen=pg.mkPen(color, width=2), symbol="o", symbolSize=4,
                                   symbolBrush=color, symbolPen=None, name=label)
            edge_pen = pg.mkPen(color, width=1.5, style=Qt.PenStyle.DashLine)
            edge = pg.PlotDataItem(pen=edge_pen)  # explained once, by the grey legend entry
            self.addItem(line)
            self.addItem(edge)
            self.items[run] = (line, edge)
            legend = self.plotItem.legend
            legend.removeItem(self._edge_sample)  # keep the explanation last
            legend.addItem(self._edge_sample, EDGE_LEGEND)
        line, edge = self.items[run]
        ok = np.isfinite(sharpness) & (sharpness > 0)  # ≤ 0 has no place on the log axis
        # Dots mark the measured steps while they are few enough to tell apart.
        line.setSymbol("o" if int(ok.sum()) <= MAX_DOTS else None)
        xs, ys, connect = _gapped(steps, sharpness, ok)
        line.setData(xs, ys, connect=connect)
        self.not_converged[run] = steps[np.isnan(sharpness)]
        note = _not_converged_note(self.labels, self.not_converged)
        self.plotItem.setTitle(note or None, size="9pt")
        good = np.isfinite(lr) & (lr > 0)
        edge.setData(steps[good], 2.0 / lr[good])


class SurfaceView(QWidget):
    """The Surface tab: controls, the four pages, and the worker that computes them."""

    # An on-demand sharpness measurement arrived (the comparison table shows it).
    sharpness_measured = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("surfaceView")
        # Replaceable in tests: (parent, caption, dir, filter) → (path, selected filter).
        self.save_dialog: Callable = QFileDialog.getSaveFileName
        self.report_error: Callable = QMessageBox.warning
        self.labels: list[str] = []
        self.colors: list[str] = []
        self._tap: WeightTap | None = None
        self._provider: Callable[[], RaceWeights | None] | None = None
        self.result: SurfaceUpdate | None = None  # the latest surface update shown
        self.final: SurfaceUpdate | None = None  # the latest finished surface (exportable)
        self._sharpness_last: dict[int, float] = {}
        self._task = ""
        self._last_follow_step: int | None = None
        self.follow_count = 0  # recomputations started by "Follow training"
        self._shut_down = False  # `shutdown` was called: the window is closing
        self._follower: TrainingFollower | None = None  # built for one race and one setting
        self.sharpness_every = 0  # the lab's problem.sharpness_every (0: not tracked)
        self._tracked = False  # the race's history carries sharpness

        self.controls = SurfaceControls()
        self.controls.compute_requested.connect(self.compute)
        self.controls.cancel_requested.connect(self.cancel)
        self.controls.export_npz_requested.connect(self._on_export_npz)
        self.controls.export_png_requested.connect(self._on_export_png)
        self.controls.display_changed.connect(self._redraw)
        self.info = QLabel(objectName="surfaceInfo")
        self.info.setWordWrap(True)
        self.info.setTextFormat(Qt.TextFormat.RichText)
        self.info.setToolTip("What the current picture is: its plane, centre and race step.")
        self.info.setContentsMargins(8, 0, 8, 0)

        self.plot = SurfacePlot()
        self.view3d = Surface3DView(COLORMAP)
        self.slice_plot = SlicePlot()
        self.sharpness_plot = SharpnessPlot()
        self.pages = QTabWidget(objectName="surfacePages")
        self.pages.setDocumentMode(True)
        self.pages.addTab(self.plot, "Map")
        self.pages.addTab(self.view3d, "3-D")
        self.pages.addTab(self._slice_page(), "1-D slices")
        self.pages.addTab(self._sharpness_page(), "Sharpness")
        self.pages.currentChanged.connect(self._on_page_changed)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.controls)
        layout.addWidget(self.info)
        layout.addWidget(self.pages, 1)

        self.controller = RaceController(self)
        self.controller.batch.connect(self._on_batch)
        self.controller.finished.connect(self._on_finished)
        self.controller.failed.connect(self._on_failed)
        self.controller.state_changed.connect(self._on_state)
        self._say("Train the race (or pause it), then press <b>Compute</b> (F5).")

    def _slice_page(self) -> QWidget:
        page = QWidget()
        row = QHBoxLayout()
        row.setContentsMargins(6, 4, 6, 0)
        self.slice_kind = QComboBox(objectName="sliceKind")
        for key, text, tip in SLICE_CHOICES:
            self.slice_kind.addItem(text, key)
            self.slice_kind.setItemData(self.slice_kind.count() - 1, tip,
                                        Qt.ItemDataRole.ToolTipRole)
        self.slice_kind.setToolTip("Which straight line through weight space to follow.")
        self.slice_button = QPushButton("Compute slices", objectName="sliceCompute")
        self.slice_button.setToolTip("Compute the 1-D slices with the current weights (runs A and "
                                     "B are chosen above).")
        self.slice_button.clicked.connect(self.compute_slices)
        row.addWidget(self.slice_kind)
        row.addWidget(self.slice_button)
        row.addStretch(1)
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.slice_plot, 1)
        return page

    def _sharpness_page(self) -> QWidget:
        page = QWidget()
        row = QHBoxLayout()
        row.setContentsMargins(6, 4, 6, 0)
        self.sharpness_button = QPushButton("Measure sharpness", objectName="sharpnessCompute")
        self.sharpness_button.clicked.connect(self.compute_sharpness)
        self.sharpness_source = QLabel(objectName="sharpnessSource")
        self.sharpness_source.setWordWrap(True)
        self.sharpness_source.setTextFormat(Qt.TextFormat.RichText)
        self.sharpness_source.setToolTip(
            "Where the curves come from: the race's own tracking (problem.sharpness_every, set "
            "in the network problem's Training box) or an on-demand measurement.")
        note = QLabel("Gradient descent at learning rate lr is stable only while "
                      "λ_max &lt; 2/lr (dashed, in the run's colour): the <i>edge of stability</i>. "
                      "Adaptive optimizers (Adam, RMSprop) follow their own, preconditioned "
                      "edge, so their 2/lr line is only a reference.")
        note.setWordWrap(True)
        note.setTextFormat(Qt.TextFormat.RichText)
        note.setToolTip("Cohen et al. 2021, 'Gradient descent on neural networks typically "
                        "occurs at the edge of stability': at a fixed lr, the sharpness of "
                        "full-batch gradient descent rises until it reaches 2/lr and then "
                        "hovers there.")
        text = QVBoxLayout()
        text.setSpacing(0)
        text.addWidget(self.sharpness_source)
        text.addWidget(note)
        row.addWidget(self.sharpness_button, 0, Qt.AlignmentFlag.AlignTop)
        row.addLayout(text, 1)
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.sharpness_plot, 1)
        self._show_sharpness_source()
        return page

    def _show_sharpness_source(self) -> None:
        """Say on the page where sharpness comes from; the button only where it is needed."""
        tracking = self._tracked or self.sharpness_every > 0
        self.sharpness_button.setEnabled(not tracking)
        if tracking:
            every = f" every {self.sharpness_every} steps" if self.sharpness_every > 0 else ""
            self.sharpness_source.setText(
                f"This lab tracks sharpness{every} while it trains: the curves grow live "
                f"with the race.")
            self.sharpness_button.setToolTip(
                "Not needed: this lab tracks sharpness while it trains (problem.sharpness_every)."
                " Set it to 0 in the network problem to measure on demand instead.")
        else:
            self.sharpness_source.setText(
                "This lab does not track sharpness while it trains (set <b>Track sharpness "
                "every</b> in the network problem's Training box to do so): <b>Measure "
                "sharpness</b> computes it now, at up to 12 kept steps of each run.")
            self.sharpness_button.setToolTip(
                "Top Hessian eigenvalue (Lanczos on Hessian-vector products) at up to 12 kept "
                "steps of each run, on the full training set. A measurement that does not "
                "converge is a gap, named in the plot's title.")

    def set_sharpness_every(self, every: int) -> None:
        """The lab's problem.sharpness_every (0: it does not track sharpness)."""
        self.sharpness_every = max(0, int(every))
        self._show_sharpness_source()

    def show_history(self, history) -> None:
        """The race's `NetworkHistory`, each frame: tracked sharpness goes to the Sharpness page
        (drawn only when new points arrived)."""
        tracked = self.sharpness_plot.show_history(history)
        if tracked and not self._tracked:
            self._tracked = True
            self._show_sharpness_source()

    def sharpness_value(self, run: int) -> float:
        """Run ``run``'s last on-demand sharpness measurement (NaN when none, or when it did
        not converge: `has_sharpness` tells the two apart)."""
        return self._sharpness_last.get(run, math.nan)

    def has_sharpness(self, run: int) -> bool:
        """Whether run ``run`` has an on-demand sharpness measurement (converged or not)."""
        return run in self._sharpness_last

    # -- wiring --------------------------------------------------------------------------------

    def set_runs(self, labels: list[str], colors: list[str]) -> None:
        """A new race (or a reset): forget every picture and stop any computation."""
        self.cancel()
        self._tap = None  # the old race's weights; the next race brings its own tap
        self.labels, self.colors = list(labels), list(colors)
        self.controls.set_runs(self.labels, self.colors)
        self.plot.set_runs(self.colors)
        self.slice_plot.clear_curves(self.slice_kind.currentData())
        self.sharpness_plot.set_runs(self.labels, self.colors)
        self._sharpness_last = {}
        self._tracked = False
        self._show_sharpness_source()
        self.result = self.final = None
        self._last_follow_step = None
        self._follower = None
        self.controls.set_exportable(False)
        self.controls.set_progress(0.0, " ")
        self._say("Train the race (or pause it), then press <b>Compute</b> (F5).")

    def set_tap(self, tap: WeightTap | None) -> None:
        """The weights of the race about to run (the main window wraps its records with it)."""
        self._tap = tap
        self._provider = None
        self._last_follow_step = None
        self._follower = None  # its model copy and engine belong to the previous race

    def set_weights_provider(self, provider: Callable[[], RaceWeights | None]) -> None:
        """Any other source of weights (scripts, tests): called on the worker thread."""
        self._provider = provider
        self._tap = None

    def _source(self) -> RaceWeights | None:
        if self._provider is not None:
            return self._provider()
        return self._tap.snapshot() if self._tap is not None else None

    def has_weights(self) -> bool:
        return self._provider is not None or (self._tap is not None and self._tap.started)

    def shutdown(self) -> None:
        """End the computation for good (the window closes): nothing starts after this, not
        even a "Follow training" recomputation asked by a redraw that was already queued."""
        self._shut_down = True
        self.controller.shutdown()

    # -- commands -----------------------------------------------------------------------------

    def _start(self, task: str, work: Callable[[RaceWeights, threading.Event], object]) -> bool:
        if self._shut_down:
            return False
        if not self.has_weights():
            self._say("No weights yet: play (or step) the race first; the surface is computed "
                      "around its current weights.", error=True)
            return False
        self.controller.stop()
        self._task = task
        source_of = self._source

        def make(stop: threading.Event):
            try:
                source = source_of()  # on the worker thread: never blocks the window
                if source is None:
                    yield TaskError("no weights yet: play the race first")
                    return
                yield from work(source, stop)
            except LabError as exc:
                yield TaskError(exc.message if not exc.field else f"{exc.field}: {exc.message}")

        self.controls.set_progress(0.0, "starting…")
        self.controller.start(make)
        return True

    def compute(self) -> bool:
        """Compute the surface with the controls' settings (a snapshot of the current weights)."""
        request = self.controls.request()
        try:
            request.validated(len(self.labels))
        except LabError as exc:
            self._say(f"{escape(exc.field)}: {escape(exc.message)}", error=True)
            return False
        return self._start("surface", lambda source, stop: surface_updates(source, request, stop))

    def compute_slices(self) -> bool:
        kind = self.slice_kind.currentData()
        request = self.controls.request()
        self.slice_plot.clear_curves(kind)
        span = request.span or 1.0
        return self._start("slices", lambda source, stop: slice_updates(
            source, kind, request.run_a, request.run_b, span=span,
            include_bias_bn=request.include_bias_bn, stop=stop))

    def compute_sharpness(self) -> bool:
        self.sharpness_plot.clear_series()
        self._sharpness_last = {}
        return self._start("sharpness",
                           lambda source, stop: sharpness_updates(source, stop=stop))

    def cancel(self) -> None:
        if self.controller.is_running():
            self.controller.stop()
            self.controls.set_progress(self.controls.progress.value() / 1000, "cancelled")
            self._say("Cancelled; the picture so far stays.")

    def race_step(self, step: int) -> None:
        """The race reached ``step``: with "Follow training" on, recompute every N steps.

        A follow-up is a coarse random-direction surface around run A (`TrainingFollower`,
        reused from one follow-up to the next), computed in this view's worker thread from a
        snapshot of the weights; it is skipped while the previous computation still runs, so
        the race never waits for surfaces it cannot show."""
        if not self.controls.following or self._tap is None or not self._tap.started:
            return
        if self._last_follow_step is not None and step - self._last_follow_step < \
                self.controls.follow_every:
            return
        if self.controller.is_running():
            return  # the previous one is still computing: skip this one
        request = self.controls.request()
        wanted = (FOLLOW_GRID, request.span, request.include_bias_bn, request.run_a)
        if self._follower is None or self._follower.settings != wanted:
            self._follower = TrainingFollower(request.run_a, request.span,
                                              request.include_bias_bn, FOLLOW_GRID)
        follower = self._follower

        def follow(source: RaceWeights, stop: threading.Event):
            background_priority()  # this worker thread only: the race and the window go first
            return follower.updates(source, stop)

        if self._start("follow", follow):
            self._last_follow_step = step
            self.follow_count += 1

    # -- results (main thread) -----------------------------------------------------------------

    @Slot(object)
    def _on_batch(self, records: list) -> None:
        surface = None
        measured = False
        for record in records:
            if isinstance(record, TaskError):
                self._say(escape(record.message), error=True)
            elif isinstance(record, SurfaceUpdate):
                surface = record  # each holds the whole grid: only the newest is drawn
            elif isinstance(record, SliceUpdate):
                self.slice_plot.add_curve(record, self._color(record.run))
                self.controls.set_progress(record.progress)
            elif isinstance(record, SharpnessUpdate):
                self.sharpness_plot.set_series(record.run, self.labels[record.run],
                                               self._color(record.run), record.steps,
                                               record.sharpness, record.lr)
                self._sharpness_last[record.run] = float(record.sharpness[-1])
                self.controls.set_progress(record.progress)
                measured = True
        if surface is not None:
            self.result = surface
            if surface.done:
                self.final = surface
                self.controls.set_exportable(True)
            if surface.followed:
                status = f"followed · step {surface.race_step}"
            else:
                status = "done" if surface.done else f"level {surface.level + 1}/{surface.levels}"
            self.controls.set_progress(surface.progress, status)
            self._redraw()
        if measured:
            self.sharpness_measured.emit()

    def _color(self, run: int) -> str:
        return self.colors[run] if run < len(self.colors) else "#ffffff"

    def _redraw(self) -> None:
        update = self.result
        if update is None:
            return
        log = self.controls.log_scale
        self.plot.show_update(update, log)
        self.info.setText(self._describe(update))
        values = display_values(update.loss, log)
        paths3d = []
        for path in update.paths:
            if "surface_loss" in path:
                shown = display_values(path["surface_loss"], log)
            else:  # until the exact values arrive: the grid value nearest each point
                shown = self._grid_lookup(update, values, path["alpha"], path["beta"])
            paths3d.append((path["alpha"], path["beta"], shown))
        self.view3d.set_surface(update.alphas, update.betas, values, paths3d, self.colors)

    @staticmethod
    def _grid_lookup(update, values, alpha, beta) -> np.ndarray:
        if not len(alpha):
            return np.zeros(0)
        i = np.clip(np.searchsorted(update.alphas, alpha), 0, len(update.alphas) - 1)
        j = np.clip(np.searchsorted(update.betas, beta), 0, len(update.betas) - 1)
        return values[j, i]

    def _describe(self, update: SurfaceUpdate) -> str:
        kind = update.request.directions
        label = escape(update.labels[update.center_run])
        parts = {
            "random": f"Random filter-normalized directions around <b>{label}</b>",
            "pca": "PCA of all trajectories",
            "hessian": f"Top-2 Hessian eigenvectors at <b>{label}</b>",
            "init_final": f"Plane through the initial weights and <b>{label}</b>",
            "runs": f"Plane through <b>{label}</b> and "
                    f"<b>{escape(update.labels[update.request.run_b])}</b>",
        }
        steps = update.paths[update.center_run]["step"]
        when = f" · step {int(steps[-1])}" if len(steps) else ""
        head = (f"Following <b>{label}</b>: random filter-normalized directions"
                if update.followed else parts[kind])
        text = head + f"{when} · span ±{update.span:.3g}"
        text += f" · {len(update.alphas)}×{len(update.betas)} grid"
        if update.followed:
            text += " (coarse while following; <b>Compute</b> for the chosen plane)"
        if "explained_variance" in update.extra:
            r = update.extra["explained_variance"]
            text += (f" · explained variance PC1 {r[0]:.1%}, PC2 {r[1]:.1%} "
                     f"(together {r[0] + r[1]:.1%})")
        if "eigenvalues" in update.extra:
            ev = update.extra["eigenvalues"]
            if np.all(np.isfinite(ev)):
                text += f" · λ₁ = {ev[0]:.4g}, λ₂ = {ev[1]:.4g}"
            else:  # core.landscape.eigensolver gave up: the plane is only approximately v₁, v₂
                text += (" · <span style='color:#e0b060'>λ₁, λ₂ not converged: the plane lies "
                         "along the eigensolver's best approximations</span>")
        if update.done and math.isfinite(update.center_loss):
            text += f" · loss at the centre {update.center_loss:.5g}"
        if self._sharpness_last:
            sharp = ", ".join(f"{escape(self.labels[r])} "
                              + (f"{v:.4g}" if math.isfinite(v) else "not converged")
                              for r, v in sorted(self._sharpness_last.items()))
            text += f" · sharpness: {sharp}"
        slow = landscape_fused.unavailable_reason()
        if slow:  # same numbers, but a user waiting on a slow surface should know why
            text += (f" · <span style='color:#e0b060'>torch engine, no native kernel "
                     f"({escape(slow)})</span>")
        return text

    def _say(self, text: str, error: bool = False) -> None:
        color = "#ff8080" if error else "#c8c8c8"
        self.info.setText(f"<span style='color:{color}'>{text}</span>")

    @Slot(bool)
    def _on_finished(self, completed: bool) -> None:
        self.controls.set_busy(False)
        if self._task == "sharpness" and self.result is not None:
            self.info.setText(self._describe(self.result))

    @Slot(str)
    def _on_failed(self, details: str) -> None:
        last = details.strip().splitlines()[-1] if details.strip() else "unknown error"
        self._say(f"The computation stopped on an error: {escape(last)}", error=True)
        if self._task == "follow":
            # A follow-up fails the same way every N steps: one dialog, not one per follow-up.
            self.controls.follow_check.setChecked(False)
        # The traceback goes to a dialog whose "Show Details…" text the user can copy.
        show_failure(self, "Surface", "The surface computation stopped on an error.", details)

    @Slot(str)
    def _on_state(self, state: str) -> None:
        self.controls.set_busy(state != "idle")

    def _on_page_changed(self, index: int) -> None:
        if index == PAGE_3D and self.result is not None:
            self._redraw()

    # -- export --------------------------------------------------------------------------------

    def export_npz(self, path: str | Path) -> Path:
        """The finished surface, with the keys of ``main.py surface`` (written atomically)."""
        if self.final is None:
            raise LabError("surface", "compute a surface first")
        sharp = [self._sharpness_last.get(i, math.nan) for i in range(len(self.final.labels))]
        # An on-demand value is NaN only where its solve did not converge (core.landscape.live).
        failed = [i in self._sharpness_last and math.isnan(v) for i, v in enumerate(sharp)]
        every = self._tap.every if self._tap is not None and self._tap.every else 1
        path = Path(path)
        write_surface_npz(path, race_surface(self.final, every=every, sharpness=sharp,
                                             not_converged=failed))
        return path

    def export_png(self, path: str | Path) -> Path:
        """The page shown (map, 3-D, slices or sharpness) as a PNG, written atomically."""
        page = self.pages.currentWidget()
        if page is self.view3d and self.view3d.available:
            image = self.view3d.grab_image()
        else:
            image = page.grab().toImage()
        buffer = QBuffer()
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        image.save(buffer, "PNG")
        path = Path(path)
        write_atomic(path, bytes(buffer.data()))
        return path

    def _ask_path(self, caption: str, name: str, pattern: str, suffix: str) -> str | None:
        path, _ = self.save_dialog(self, caption, name, pattern)
        if not path:
            return None
        return path if path.lower().endswith(suffix) else path + suffix

    def _on_export_npz(self) -> None:
        path = self._ask_path("Export surface", "surface.npz", "NumPy archive (*.npz)", ".npz")
        if path:
            self._export(self.export_npz, path)

    def _on_export_png(self) -> None:
        path = self._ask_path("Export picture", "surface.png", "PNG image (*.png)", ".png")
        if path:
            self._export(self.export_png, path)

    def _export(self, writer, path: str) -> None:
        try:
            writer(path)
        except (OSError, LabError) as exc:
            self.report_error(self, "Export failed", f"Could not write {path}:\n{exc}")
            return
        self._say(f"Saved {escape(str(path))}")

