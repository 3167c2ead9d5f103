"""The Surface tab of a network lab: the loss surface around the weights, live.

`SurfaceView` is a thin composer: the controls (`app.surface.panel.SurfaceControls`), the info line
(`app.surface.info_line`), and four pages in an inner tab bar —

* **Map** (`app.surface.map_page.SurfacePlot`): the surface as a heatmap with contours and every
  run's trajectory projected onto one plane, with a hover read-out;
* **3-D** (`app.surface.view_3d.Surface3DView`): the same surface and paths in OpenGL, or a
  message where there is no OpenGL;
* **1-D slices** (`app.surface.slice_page.SlicePage`): the loss along straight lines;
* **Sharpness** (`app.surface.sharpness_page.SharpnessPage`): the top Hessian eigenvalue along
  each run against its 2/lr edge of stability, tracked live or measured on demand —

and the computations' wiring (`app.surface.work.SurfaceWork`: the weights' source, the worker
thread, "Follow training"). This module routes the worker's records to the pages (every surface
update holds a whole grid, so the coarse picture appears at once and is refined in place),
handles Cancel and failures, and exports the finished surface (.npz) or the page shown (PNG).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Collection
from html import escape
from pathlib import Path

from PySide6.QtCore import QBuffer, QIODevice, Qt, Signal, Slot
from PySide6.QtWidgets import QFileDialog, QLabel, QMessageBox, QTabWidget, QVBoxLayout, QWidget

from app.arena.function_map import COLORMAP
from app.shell.errors import show_failure
from app.surface.info_line import describe, message
from app.surface.map_page import SurfacePlot, display_values, surface_paths
from app.surface.panel import SurfaceControls
from app.surface.sharpness_page import SharpnessPage
from app.surface.slice_page import SlicePage
from app.surface.view_3d import Surface3DView
from app.surface.work import SurfaceWork, TaskError
from core.errors import LabError
from core.lab.format import write_atomic
from core.landscape.live import (
    RaceWeights,
    SharpnessUpdate,
    SliceUpdate,
    SurfaceUpdate,
    WeightTap,
    race_surface,
)
from core.landscape.race_surface import write_surface_npz

PAGE_MAP, PAGE_3D, PAGE_SLICES, PAGE_SHARPNESS = range(4)


class SurfaceView(QWidget):
    """The Surface tab: controls, the info line, the four pages, and the worker feeding them."""

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
        self._surface_key = None  # what the pictures were computed for (`set_runs`)
        self.result: SurfaceUpdate | None = None  # the latest surface update shown
        self.final: SurfaceUpdate | None = None  # the latest finished surface (exportable)

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
        self.slice_page = SlicePage()
        self.slice_plot, self.slice_kind = self.slice_page.plot, self.slice_page.kind
        self.slice_page.button.clicked.connect(self.compute_slices)
        self.sharpness_page = SharpnessPage()
        self.sharpness_plot = self.sharpness_page.plot
        self.sharpness_button = self.sharpness_page.button
        self.sharpness_source = self.sharpness_page.source
        self.sharpness_button.clicked.connect(self.compute_sharpness)
        self.pages = QTabWidget(objectName="surfacePages")
        self.pages.setDocumentMode(True)
        self.pages.addTab(self.plot, "Map")
        self.pages.addTab(self.view3d, "3-D")
        self.pages.addTab(self.slice_page, "1-D slices")
        self.pages.addTab(self.sharpness_page, "Sharpness")
        self.pages.currentChanged.connect(self._on_page_changed)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.controls)
        layout.addWidget(self.info)
        layout.addWidget(self.pages, 1)

        self.work = SurfaceWork(self.controls, self._say, self)
        self.controller = self.work.controller
        self.controller.batch.connect(self._on_batch)
        self.controller.finished.connect(self._on_finished)
        self.controller.failed.connect(self._on_failed)
        self.controller.state_changed.connect(self._on_state)
        self._say("Train the race (or pause it), then press <b>Compute</b> (F5).")

    # -- what the main window and the network views call ---------------------------------------

    def set_runs(self, labels: list[str], colors: list[str], surface_key=None,
                 changed: Collection[int] = ()) -> None:
        """A new race (or a reset): stop any computation and forget the pictures — except a
        surface whose inputs did not change (`kept_surface`).

        ``surface_key`` stands for what the loss surface depends on besides the runs' weights
        (the problem: data, model, loss; the seed); ``changed`` are the runs whose settings
        changed (an lr from the range test, app/tools/lr_finder_window.py)."""
        kept = self.kept_surface(labels, surface_key, changed)
        self._surface_key = surface_key
        self.cancel()
        self.work.tap = None  # the old race's weights; the next race brings its own tap
        self.labels, self.colors = list(labels), list(colors)
        self.controls.set_runs(self.labels, self.colors)
        self.plot.set_runs(self.colors)
        self.slice_plot.clear_curves(self.slice_kind.currentData())
        self.sharpness_page.set_runs(self.labels, self.colors)
        self.result = self.final = None
        self.work.forget_follow()
        self.controls.set_exportable(False)
        self.controls.set_progress(0.0, " ")
        self._say("Train the race (or pause it), then press <b>Compute</b> (F5).")
        if kept is not None:
            self.result, self.final = kept
            request = self.result.request
            self.controls.run_a.setCurrentIndex(request.run_a)
            self.controls.run_b.setCurrentIndex(request.run_b)
            self.controls.set_exportable(self.final is not None)
            self.controls.set_progress(1.0 if self.final is not None else 0.0, "kept")
            self._redraw()

    def kept_surface(self, labels: list[str], surface_key, changed: Collection[int]):
        """``(result, final)`` to keep across a reset, or None.

        A surface is the loss (a property of the problem and its data) over a plane fixed when
        it was computed, through the weights of its centre run (and run B for a two-run plane).
        It stays valid when the problem is the same and none of those runs changed; the paths
        of the runs that did change are dropped from it (they belong to the old race)."""
        if (self.result is None or surface_key is None or surface_key != self._surface_key
                or list(labels) != self.labels):
            return None
        request = self.result.request
        plane = {self.result.center_run, request.run_a}
        if request.directions == "runs":
            plane.add(request.run_b)
        changed = set(changed)
        if plane & changed:
            return None

        def without_changed(update: SurfaceUpdate | None) -> SurfaceUpdate | None:
            if update is None or not changed:
                return update
            paths = [{key: value[:0] for key, value in path.items()} if run in changed else path
                     for run, path in enumerate(update.paths)]
            return dataclasses.replace(update, paths=paths)

        final = without_changed(self.final)
        result = final if self.result is self.final else without_changed(self.result)
        return result, final

    def set_tap(self, tap: WeightTap | None) -> None:
        """The weights of the race about to run (the main window wraps its records with it)."""
        self.work.set_tap(tap)

    def set_weights_provider(self, provider: Callable[[], RaceWeights | None]) -> None:
        """Any other source of weights (scripts, tests): called on the worker thread."""
        self.work.set_weights_provider(provider)

    def has_weights(self) -> bool:
        return self.work.has_weights()

    def race_step(self, step: int) -> None:
        """The race reached ``step``: "Follow training" may recompute (`SurfaceWork.race_step`)."""
        self.work.race_step(step)

    @property
    def follow_count(self) -> int:
        """Recomputations started by "Follow training"."""
        return self.work.follow_count

    def shutdown(self) -> None:
        """End the computation for good (the window closes)."""
        self.work.shutdown()

    def set_sharpness_every(self, every: int) -> None:
        """The lab's problem.sharpness_every (0: it does not track sharpness)."""
        self.sharpness_page.set_every(every)

    def show_history(self, history) -> None:
        """The race's `NetworkHistory`, each frame: tracked sharpness goes to the Sharpness page
        (drawn only when new points arrived)."""
        self.sharpness_page.show_history(history)

    def sharpness_value(self, run: int) -> float:
        """Run ``run``'s last on-demand sharpness measurement (NaN when none, or when it did
        not converge: `has_sharpness` tells the two apart)."""
        return self.sharpness_page.value(run)

    def has_sharpness(self, run: int) -> bool:
        """Whether run ``run`` has an on-demand sharpness measurement (converged or not)."""
        return self.sharpness_page.has_value(run)

    # -- commands ------------------------------------------------------------------------------

    def compute(self) -> bool:
        """Compute the surface with the controls' settings (a snapshot of the current weights)."""
        request = self.controls.request()
        try:
            request.validated(len(self.labels))
        except LabError as exc:
            self._say(f"{escape(exc.field)}: {escape(exc.message)}", error=True)
            return False
        return self.work.surface(request)

    def compute_slices(self) -> bool:
        kind = self.slice_kind.currentData()
        request = self.controls.request()
        self.slice_plot.clear_curves(kind)
        return self.work.slices(kind, request)

    def compute_sharpness(self) -> bool:
        self.sharpness_page.clear_measurements()
        return self.work.sharpness()

    def cancel(self) -> None:
        if self.controller.is_running():
            self.controller.stop()
            self.controls.set_progress(self.controls.progress.value() / 1000, "cancelled")
            self._say("Cancelled; the picture so far stays.")

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
                self.sharpness_page.add_measurement(record, self.labels[record.run],
                                                    self._color(record.run))
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
        self.view3d.set_surface(update.alphas, update.betas, values,
                                surface_paths(update, values, log), self.colors)

    def _describe(self, update: SurfaceUpdate) -> str:
        return describe(update, self.labels, self.sharpness_page.measured)

    def _say(self, text: str, error: bool = False) -> None:
        self.info.setText(message(text, error))

    @Slot(bool)
    def _on_finished(self, completed: bool) -> None:
        self.controls.set_busy(False)
        if self.work.task == "sharpness" and self.result is not None:
            self.info.setText(self._describe(self.result))

    @Slot(str)
    def _on_failed(self, details: str) -> None:
        last = details.strip().splitlines()[-1] if details.strip() else "unknown error"
        self._say(f"The computation stopped on an error: {escape(last)}", error=True)
        if self.work.task == "follow":
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
        measured = self.sharpness_page.measured
        sharp = [measured.get(i, math.nan) for i in range(len(self.final.labels))]
        # An on-demand value is NaN only where its solve did not converge (core.landscape.live).
        failed = [i in measured and math.isnan(v) for i, v in enumerate(sharp)]
        tap = self.work.tap
        every = tap.every if tap is not None and tap.every else 1
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
