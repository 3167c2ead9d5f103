"""The central area of a network lab: `NetworkView`, the tabs over a race's history.

`NetworkView` replaces the 2-D arena's landscape + curves when the lab's problem is a network. It
is a view over `core.engine.history.NetworkHistory`: the main window calls ``update_from(history)``
once per batch on the main thread, and every plot calls ``setData`` once with views of the
history's buffers (pyqtgraph's streaming practice: clip to view, peak downsampling, 1-px pens
without antialiasing, nothing non-finite ever passed in).

This module composes the tabs and schedules their drawing; each tab lives in its own module:

* **Overview** (app/network/overview_tab.py): data → network (each neuron over the plane) →
  output of the selected run, with its epoch and losses in large type: the first tab.
* **Curves** (app/network/curves_tab.py): loss, accuracy or R², learning rate
  (app/network/run_curves.py) and per-layer statistics of the selected run
  (app/network/layer_stats.py), with the smoothing, x-axis and log-loss controls.
* **Decision boundaries** or **Fitted curves** (app/network/boundaries_tab.py): a small multiple
  per run.
* **Confusion matrix** (app/network/confusion_tab.py): the selected run's.
* **Comparison** (app/network/comparison_tab.py): one row per run, exportable to CSV.
* **Surface** (app/surface/view.py): the loss surface around the weights, and sharpness.
* **Per class** (app/network/pr_curve_tab.py): the selected run's per-class precision, recall
  and F1, and for a binary task its precision–recall curve.
* **Sequence** (app/network/sequence_tab.py): recurrent networks only: the heat map of
  ‖∂L/∂h_t‖ over time steps and training steps, the recurrent matrix's spectral radius and where
  norm clipping fired, for the selected run.
* **Spectra** (app/network/spectra_tab.py): the singular values of each run's update ΔW of a
  weight matrix over training and at the newest evaluation (Muon's are flat, Adam's are not).

What every tab reads (runs, data set, history, selected run) is one `ShownRace`
(app/network/race_state.py). Snapshots (boundaries, confusion, per-layer statistics) only
change when the history's ``last_evaluation_step`` does.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QTabWidget, QVBoxLayout, QWidget

from app.network.boundaries_tab import BoundariesTab
from app.network.comparison_tab import ComparisonTab, NumericItem
from app.network.confusion_tab import ConfusionTab
from app.network.curves_tab import PARTS as CURVE_PARTS
from app.network.curves_tab import CurvesTab
from app.network.overview_tab import OverviewTab
from app.network.pr_curve_tab import PrCurveTab
from app.network.race_state import ShownRace
from app.network.run_curves import RunCurvesPlot
from app.network.sequence_tab import SequenceTab
from app.network.spectra_tab import SpectraTab
from core.engine.history import NetworkHistory
from core.problems.datasets.dataset import Dataset

# NumericItem and RunCurvesPlot: tests import them from here, where they lived before the tabs
# had modules of their own.
__all__ = ["NetworkView", "NumericItem", "RunCurvesPlot", "TAB_BOUNDARIES", "TAB_CONFUSION",
           "TAB_CURVES", "TAB_OVERVIEW", "TAB_TABLE"]

TAB_OVERVIEW, TAB_CURVES, TAB_BOUNDARIES, TAB_CONFUSION, TAB_TABLE = range(5)


class NetworkView(QWidget):
    """Tabs of views over a `NetworkHistory`: curves, boundaries, confusion matrix, comparison,
    surface; draws one changed part per `update_from` (round-robin), every part on `flush`."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("networkView")
        self.race = ShownRace()
        self._drawn_evaluation_step = -1
        # Round-robin drawing: the parts still to draw, in turn, one per update_from.
        self._parts: list = []
        self._dirty: set = set()
        self._turn = 0
        self._seen_step = None

        from app.surface.view import SurfaceView  # the loss surface around the weights

        self.surface_view = SurfaceView()
        self.curves = CurvesTab(self.race)
        self.boundaries = BoundariesTab(self.race)
        self.confusion = ConfusionTab(self.race)
        self.comparison = ComparisonTab(self.race, self.surface_view)
        self.per_class = PrCurveTab(self.race)  # per-class scores and the PR curve
        self.sequence = SequenceTab(self.race)  # recurrent networks: gradients through time
        self.overview = OverviewTab(self.race, self._snapshot)
        self.tabs = QTabWidget(objectName="networkTabs")
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.overview, "Overview")
        self.tabs.setTabToolTip(TAB_OVERVIEW, "Data → network → output of the selected run, "
                                              "with its epoch and losses")
        self.tabs.addTab(self.curves, "Curves")
        self.tabs.addTab(self.boundaries, "Decision boundaries")
        self.tabs.addTab(self.confusion, "Confusion matrix")
        self.tabs.addTab(self.comparison, "Comparison")
        self.tabs.addTab(self.surface_view, "Surface")
        self.tabs.addTab(self.per_class, "Per class")
        self.tabs.addTab(self.sequence, "Sequence")
        self.spectra = SpectraTab(self.race)  # update singular values; draws itself when shown
        self.tabs.addTab(self.spectra, "Spectra")
        self.surface_view.sharpness_measured.connect(self.comparison.refresh)
        self.curves.redrawn.connect(self._dirty_drawn)
        self.tabs.currentChanged.connect(self._on_tab_changed)
        for combo in self._run_combos():
            combo.currentIndexChanged.connect(self._on_run_selected)
        # A bare view opens on the curves (the window opens a new lab on the overview).
        self.tabs.setCurrentIndex(TAB_CURVES)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tabs)

        # The tabs' widgets, by the names the window, the exports and the tests use.
        curves = self.curves
        self.curve_controls = curves.curve_controls
        self.smoothing_slider, self.smoothing_label = curves.smoothing_slider, curves.smoothing_label
        self.x_axis_combo, self.log_loss_check = curves.x_axis_combo, curves.log_loss_check
        self.layer_run_combo = curves.layer_run_combo
        self.loss_plot, self.accuracy_plot = curves.loss_plot, curves.accuracy_plot
        self.lr_plot, self.layer_plot = curves.lr_plot, curves.layer_plot
        self.confusion_run_combo = self.confusion.confusion_run_combo
        self.confusion_plot = self.confusion.confusion_plot
        self.confusion_image = self.confusion.confusion_image
        self.table, self.target_spin = self.comparison.table, self.comparison.target_spin
        self.export_button = self.comparison.export_button

    # -- what the tabs show --------------------------------------------------------------------

    @property
    def labels(self) -> list[str]:
        return self.race.labels

    @property
    def colors(self) -> list[str]:
        return self.race.colors

    @property
    def dataset(self) -> Dataset | None:
        return self.race.dataset

    @property
    def total_steps(self) -> int | None:
        return self.race.total_steps

    @property
    def _history(self) -> NetworkHistory | None:
        return self.race.history

    @property
    def smoothing(self) -> float:
        return self.curves.smoothing

    @property
    def x_column(self) -> str:
        return self.curves.x_column

    # Replaceable in tests: the comparison's save dialog and error report.
    @property
    def save_dialog(self) -> Callable:
        return self.comparison.save_dialog

    @save_dialog.setter
    def save_dialog(self, ask: Callable) -> None:
        self.comparison.save_dialog = ask

    @property
    def report_error(self) -> Callable:
        return self.comparison.report_error

    @report_error.setter
    def report_error(self, report: Callable) -> None:
        self.comparison.report_error = report

    # Rebuilt by `set_runs`: read through the tab that holds them.
    @property
    def confusion_texts(self) -> list:
        return self.confusion.confusion_texts

    @property
    def _panels(self) -> list:
        return self.boundaries.panels

    @property
    def _columns(self) -> list:
        return self.comparison.columns

    @property
    def _table_items(self) -> list:
        return self.comparison.table_items

    def hide_controls(self) -> None:
        """Only the plots (for exported frames, app/export/animation.py): the control row goes."""
        self.curves.hide_controls()

    def boundary_images(self) -> list[np.ndarray | None]:
        """The image each boundary panel shows (for tests and exports)."""
        return self.boundaries.boundary_images()

    def fitted_curves(self) -> list[tuple[np.ndarray, np.ndarray] | None]:
        return self.boundaries.fitted_curves()

    def confusion_matrix_shown(self) -> np.ndarray | None:
        return self.confusion.matrix_shown()

    def run_status(self, i: int) -> tuple[str, float]:
        """(text, sort key) of run i: running / finished / stopped early at N / diverged at N."""
        return self.comparison.run_status(i)

    def table_rows(self) -> list[list[str]]:
        """The comparison table's rows as shown (sorted), each cell as its text."""
        return self.comparison.table_rows()

    def export_csv(self, path: str | os.PathLike) -> Path:
        """Write the comparison table to ``path`` as CSV, atomically."""
        return self.comparison.export_csv(path)

    # -- public API ----------------------------------------------------------------------------

    def set_runs(
        self, labels: list[str], colors: list[str], dataset: Dataset | None,
        total_steps: int | None = None, model_spec=None, surface_key=None, changed_runs=(),
    ) -> None:
        """Rebuild every item for these runs and this data set; clears all drawn data but a
        loss surface whose inputs did not change (``surface_key``, ``changed_runs``:
        `app.surface.view.SurfaceView.set_runs`).

        ``total_steps`` (the lab's ``steps``) lets the comparison say "finished" rather than
        "running" once the history reaches it; ``model_spec`` is the network the overview draws.
        """
        race = self.race
        race.labels, race.colors = list(labels), list(colors)
        race.dataset, race.total_steps = dataset, total_steps
        race.history, race.selected_run = None, 0
        self._drawn_evaluation_step = -1
        self._parts = [*CURVE_PARTS, "overview", "table", "confusion",
                       *(("panel", i) for i in range(len(race.labels)))]
        self._parts.append("sequence")
        self._dirty = set()
        self._turn = 0
        self._seen_step = None

        self.curves.set_runs()
        for combo in self._run_combos():
            combo.blockSignals(True)
            combo.clear()
            for label, color in zip(race.labels, race.colors):
                combo.addItem(label)
                combo.setItemData(combo.count() - 1, QColor(color), Qt.ItemDataRole.DecorationRole)
            combo.blockSignals(False)
        self.boundaries.set_runs()
        self.confusion.set_runs()
        self.per_class.set_runs()
        self.comparison.set_runs()
        self.surface_view.set_runs(race.labels, race.colors, surface_key, changed_runs)
        self.overview.set_runs(model_spec)
        regression_title = "Fitted curves" if race.fits_curves else "Predictions"
        self.tabs.setTabText(TAB_BOUNDARIES,
                             regression_title if race.regression else "Decision boundaries")
        self.tabs.setTabEnabled(TAB_CONFUSION, race.classification)
        self.tabs.setTabEnabled(self.tabs.indexOf(self.per_class), race.classification)
        self.sequence.set_runs()
        self.tabs.setTabEnabled(self.tabs.indexOf(self.sequence),
                                dataset is not None and len(dataset.input_shape) == 2)

    def update_from(self, history: NetworkHistory) -> None:
        """Take in the history and draw ONE part of the view that changed (round-robin).

        Parts: loss, accuracy, learning rate and layer curves, the comparison table, the
        confusion matrix and each decision-boundary panel. Qt then repaints only what that part
        touched, so no single call or paint blocks the window for long. Parts on a hidden tab
        are not drawn at all; they are drawn at once when their tab is shown. Snapshots
        (boundaries, confusion, per-layer statistics) are recorded at every new evaluation,
        whichever part is drawn. `flush` draws every pending part now.
        """
        self.race.history = history
        if history.last_evaluation is not None and (
            history.last_evaluation_step != self._drawn_evaluation_step
        ):
            # Every evaluation since the last call (several arrive between two redraws when
            # the race evaluates often) and the newest snapshots.
            self.layer_plot.take_in(history.layer_stats)
            self.boundaries.record(history)
            self.confusion.record(history)
            self.per_class.record(history)
            self._drawn_evaluation_step = history.last_evaluation_step
            self._dirty.update(self._parts)
        step = (history.last_step, sum(len(s) for s in history.steps))
        if step != self._seen_step:
            self._seen_step = step
            self._dirty.update(("loss", "lr", "overview"))
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
        if self.spectra.isVisible():  # it draws itself on a timer: the newest evaluation now
            self.spectra.draw()

    def clear(self) -> None:
        """Forget the history: empty curves, blank panels and matrix, empty table cells."""
        race = self.race
        self.set_runs(race.labels, race.colors, race.dataset, race.total_steps,
                      model_spec=self.overview.diagram.model_spec)

    def _snapshot(self, run: int):
        """Run ``run``'s last evaluation of its own (the boundaries tab keeps them), else the
        newest (data without a picture)."""
        snapshots = self.boundaries.snapshots
        if run < len(snapshots) and snapshots[run] is not None:
            return snapshots[run]
        history = self.race.history
        return None if history is None else history.last_evaluation

    # -- drawing in turn -----------------------------------------------------------------------

    def _run_combos(self) -> tuple:
        return (self.curves.layer_run_combo, self.confusion.confusion_run_combo,
                self.overview.run_combo)

    def _dirty_drawn(self, parts) -> None:
        """A tab redrew ``parts`` on its own (a control changed): no longer pending."""
        self._dirty.difference_update(parts)

    def _fit_pending(self, tab: int, every: bool = False) -> bool:
        """Set the range a curve plot is waiting for (one, or ``every``); True if one was set."""
        return tab == TAB_CURVES and self.curves.fit_pending(every)

    def _part_tab(self, part) -> int:
        if part in CURVE_PARTS:
            return TAB_CURVES
        if part == "table":
            return TAB_TABLE
        if part == "confusion":
            return TAB_CONFUSION
        if part == "sequence":
            return self.tabs.indexOf(self.sequence)
        if part == "overview":
            return TAB_OVERVIEW
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
                    # A curve plot's new range waits for a turn of its own.
                    with self.curves.streaming():
                        self._draw_part(part)
                    return
        finally:
            self.curves.settle_view_transforms()

    def _draw_tab(self, tab: int) -> None:
        for part in self._parts:
            if part in self._dirty and self._part_tab(part) == tab:
                self._dirty.discard(part)
                self._draw_part(part)
        self._fit_pending(tab, every=True)

    def _draw_part(self, part) -> None:
        if self.race.history is None:
            return
        if part in CURVE_PARTS:
            self.curves.draw(part)
        elif part == "table":
            self.comparison.refresh()
        elif part == "confusion":
            self.confusion.draw()
        elif part == "sequence":
            self.sequence.draw()
        elif part == "overview":
            self.overview.draw()
        else:
            self._draw_panel(part[1])

    def _draw_panel(self, i: int) -> None:
        self.boundaries.draw_panel(i)

    # -- slots ---------------------------------------------------------------------------------

    def _on_tab_changed(self, index: int) -> None:
        # Parts on a hidden tab were not drawn: draw the shown tab's pending parts at once.
        self._draw_tab(index)

    def select_run(self, index: int) -> None:
        """Show run ``index`` (of the race) in the confusion matrix and the per-layer plot, as
        if picked in their combos (the main window: the run selected in the runs table)."""
        if 0 <= index < len(self.race.labels) and index != self.race.selected_run:
            self._on_run_selected(index)

    def _on_run_selected(self, index: int) -> None:
        """One selected run for the per-layer plot and the confusion matrix."""
        if index < 0:
            return
        self.race.selected_run = index
        self.layer_plot.forget()  # another run's statistics at the same steps
        for combo in self._run_combos():
            if combo.currentIndex() != index:
                combo.blockSignals(True)
                combo.setCurrentIndex(index)
                combo.blockSignals(False)
        self._dirty.difference_update(("layers", "confusion"))
        self.curves.draw_layers()
        self.confusion.draw()
        self.per_class.draw()
        self.sequence.draw()
        self.overview.draw()
