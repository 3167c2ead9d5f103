"""The Surface view's controls: directions, grid, span, options, Compute / Cancel, follow, export.

A plain form: it knows nothing about threads. It turns its widgets into a
`core.landscape.live.SurfaceRequest` (`request()`), says what the user asked for through signals,
and shows progress and state (`set_busy`, `set_progress`).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QWidget,
)

from app.widgets.flow_layout import flow_row
from core.landscape.live import SurfaceRequest
from core.landscape.race_surface import MAX_GRID, MIN_GRID

DIRECTION_CHOICES = (
    ("random", "Random (filter-normalized)",
     "Two Gaussian directions, each filter / neuron scaled to the norm of its weights "
     "(Li et al. 2018). α = 1 is a step as large as the weights."),
    ("pca", "PCA of the trajectories",
     "The top-2 principal components of every run's kept weights: one plane shared by the "
     "whole race, so the paths can be compared. The explained variance is shown above the map."),
    ("hessian", "Hessian top-2",
     "The two eigenvectors of the loss Hessian with the largest eigenvalues, at the centre run's "
     "weights (Hessian-vector products and Lanczos). If the eigensolver does not converge the "
     "eigenvalues read \"not converged\" and the plane lies along its best approximations."),
    ("init_final", "Two points: init → current",
     "The plane through the initial weights (α = −1) and run A's current weights (α = +1)."),
    ("runs", "Two points: run A → run B",
     "The plane through run A's weights (α = −1) and run B's weights (α = +1)."),
)
DEFAULT_GRID = 41
DEFAULT_FOLLOW_EVERY = 50


class SurfaceControls(QWidget):
    """Two rows of controls above the surface plots."""

    compute_requested = Signal()
    cancel_requested = Signal()
    export_npz_requested = Signal()
    export_png_requested = Signal()
    follow_changed = Signal(bool)
    display_changed = Signal()  # log colour scale toggled: redraw, no recompute

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("surfaceControls")
        grid = QGridLayout(self)
        grid.setContentsMargins(6, 4, 6, 2)
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(3)

        self.directions = QComboBox(objectName="surfaceDirections")
        for key, text, tip in DIRECTION_CHOICES:
            self.directions.addItem(text, key)
            self.directions.setItemData(self.directions.count() - 1, tip,
                                        Qt.ItemDataRole.ToolTipRole)
        self.directions.setToolTip("The plane the surface is drawn on "
                                   "(hover an entry for details).")
        self.directions.currentIndexChanged.connect(self._update_enabled)

        self.run_a = QComboBox(objectName="surfaceRunA")
        self.run_a.setToolTip("Run A: the centre of the plane (random, PCA, Hessian), the run "
                              "whose init → current plane it is, or the first of two runs.")
        self.run_b = QComboBox(objectName="surfaceRunB")
        self.run_b.setToolTip("Run B: the second point of a run A → run B plane.")

        self.grid_spin = QSpinBox(objectName="surfaceGrid")
        self.grid_spin.setRange(MIN_GRID, MAX_GRID)
        self.grid_spin.setValue(DEFAULT_GRID)
        self.grid_spin.setToolTip(f"Points per axis ({MIN_GRID}–{MAX_GRID}). The coarse grid "
                                  "appears first and is refined in place.")
        self.span_spin = QDoubleSpinBox(objectName="surfaceSpan")
        self.span_spin.setRange(0.0, 1000.0)
        self.span_spin.setDecimals(3)
        self.span_spin.setSingleStep(0.25)
        self.span_spin.setSpecialValueText("auto")
        self.span_spin.setValue(0.0)
        self.span_spin.setToolTip(
            "Half-width of the α and β axes. auto: 1 for random directions, 1.5 for two points, "
            "and for PCA / Hessian wide enough to hold every path.")
        self.bias_check = QCheckBox("Biases / BN", objectName="surfaceBiasCheck")
        self.bias_check.setToolTip("Random directions: include biases and batch-norm parameters "
                                   "(scaled to their norm) instead of keeping them fixed.")
        self.log_check = QCheckBox("Log colour", objectName="surfaceLogCheck")
        self.log_check.setChecked(True)
        self.log_check.setToolTip("Colour by log₁₀(loss): loss surfaces span several decades.")
        self.log_check.toggled.connect(self.display_changed)

        self.compute_button = QPushButton("Compute", objectName="surfaceCompute")
        self.compute_button.setToolTip("Compute the surface around the current weights (F5). "
                                       "During a race, a snapshot of the weights is used.")
        self.compute_button.clicked.connect(self.compute_requested)
        self.cancel_button = QPushButton("Cancel", objectName="surfaceCancel")
        self.cancel_button.setToolTip("Stop the computation (Esc); the picture so far stays.")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.progress = QProgressBar(objectName="surfaceProgress")
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(True)
        self.progress.setFormat("")
        self.progress.setMaximumWidth(220)
        self.progress.setToolTip("Share of the grid computed so far.")

        self.follow_check = QCheckBox("Follow training every", objectName="surfaceFollow")
        self.follow_check.setToolTip("While the race runs, recompute a coarse 21×21 surface "
                                     "around run A's current weights every N steps, along random "
                                     "filter-normalized directions (cheap: the race keeps its "
                                     "speed; skipped while the last one is still computing). "
                                     "Compute gives the full picture on the chosen plane.")
        self.follow_check.toggled.connect(self.follow_changed)
        self.follow_spin = QSpinBox(objectName="surfaceFollowEvery")
        self.follow_spin.setRange(1, 100_000)
        self.follow_spin.setValue(DEFAULT_FOLLOW_EVERY)
        self.follow_spin.setSuffix(" steps")
        self.follow_spin.setToolTip("N: steps between two recomputations while following.")
        self.export_npz = QPushButton("Export .npz…", objectName="surfaceExportNpz")
        self.export_npz.setToolTip("Save the surface and the projected paths (the keys of "
                                   "`main.py surface`).")
        self.export_npz.clicked.connect(self.export_npz_requested)
        self.export_png = QPushButton("Export PNG…", objectName="surfaceExportPng")
        self.export_png.setToolTip("Save the picture shown as a PNG image.")
        self.export_png.clicked.connect(self.export_png_requested)
        for button in (self.export_npz, self.export_png):
            button.setEnabled(False)

        def label(text: str, tip: str) -> QLabel:
            widget = QLabel(text)
            widget.setToolTip(tip)
            return widget

        # Rows that wrap (app/widgets/flow_layout.py): one long row was the network view's
        # minimum width, and the window widened itself past the screen for it.
        self.run_b_label = label("B", self.run_b.toolTip())
        row1 = flow_row(
            (label("Directions", self.directions.toolTip()), self.directions),
            (label("A", self.run_a.toolTip()), self.run_a), (self.run_b_label, self.run_b),
            (label("Grid", self.grid_spin.toolTip()), self.grid_spin),
            (label("Span", self.span_spin.toolTip()), self.span_spin),
            self.bias_check, self.log_check,
        )
        self.progress.setMinimumWidth(120)
        row2 = flow_row((self.compute_button, self.cancel_button, self.progress),
                        (self.follow_check, self.follow_spin), (self.export_npz, self.export_png))
        grid.addLayout(row1, 0, 0)
        grid.addLayout(row2, 1, 0)

        for keys, signal in ((QKeySequence(Qt.Key.Key_F5), self.compute_requested),
                             (QKeySequence(Qt.Key.Key_Escape), self.cancel_requested)):
            shortcut = QShortcut(keys, self)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(signal)
        self._update_enabled()

    # -- state -----------------------------------------------------------------------------------

    def set_runs(self, labels: list[str], colors: list[str]) -> None:
        for combo, default in ((self.run_a, 0), (self.run_b, 1)):
            combo.blockSignals(True)
            combo.clear()
            for text, color in zip(labels, colors):
                combo.addItem(text)
                combo.setItemData(combo.count() - 1, QColor(color),
                                  Qt.ItemDataRole.DecorationRole)
            combo.setCurrentIndex(min(default, max(0, len(labels) - 1)))
            combo.blockSignals(False)
        self._update_enabled()

    def _update_enabled(self, *_args) -> None:
        key = self.directions.currentData()
        two_runs = key == "runs"
        self.run_b.setEnabled(two_runs)
        self.run_b_label.setEnabled(two_runs)
        self.bias_check.setEnabled(key in ("random", "init_final", "runs"))

    def set_busy(self, busy: bool) -> None:
        self.cancel_button.setEnabled(busy)
        if not busy:
            self.progress.setValue(self.progress.maximum() if self.progress.value() else 0)

    def set_progress(self, fraction: float, text: str = "") -> None:
        self.progress.setValue(int(round(max(0.0, min(1.0, fraction)) * self.progress.maximum())))
        self.progress.setFormat(text or f"{fraction:.0%}")

    def set_exportable(self, ok: bool) -> None:
        self.export_npz.setEnabled(ok)
        self.export_png.setEnabled(ok)

    # -- the request -----------------------------------------------------------------------------

    @property
    def log_scale(self) -> bool:
        return self.log_check.isChecked()

    @property
    def following(self) -> bool:
        return self.follow_check.isChecked()

    @property
    def follow_every(self) -> int:
        return self.follow_spin.value()

    def request(self) -> SurfaceRequest:
        span = self.span_spin.value()
        return SurfaceRequest(
            directions=self.directions.currentData(),
            grid=self.grid_spin.value(),
            span=None if span <= 0 else span,
            include_bias_bn=self.bias_check.isChecked(),
            run_a=max(0, self.run_a.currentIndex()),
            run_b=max(0, self.run_b.currentIndex()),
        )

    def set_directions(self, key: str) -> None:
        index = self.directions.findData(key)
        if index >= 0:
            self.directions.setCurrentIndex(index)
