"""The background rendering of a race animation (GIF / MP4), for the export dialog.

`RaceAnimator` re-runs the lab headless by the same core engine in a worker thread
(`RaceController` + `GeneratorWorker`), so the animation shows the lab as it is and not whatever
the window happens to hold. Frames are then drawn on the main thread — Qt widgets may only be drawn
there — by the app's own plot classes in an offscreen `FrameCanvas`, one frame per event loop turn
(a QTimer), so the window stays responsive and Cancel is heard between frames. This was chosen over
redrawing the views with numpy/Pillow: the pictures are exactly what the app shows, with no second
drawing code to keep in step. GIF by Pillow, MP4 by imageio-ffmpeg's own ffmpeg. Frames go to a
temporary file beside the target, renamed into place only when the last frame is written; Cancel
or an error deletes it.
"""

from __future__ import annotations

import math
import os

import numpy as np
from PySide6.QtCore import QObject, QSize, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from app.export.animation_options import NETWORK_VIEWS, AnimationOptions, frame_steps
from app.export.pictures import temp_beside
from app.shell.controller import RaceController
from core.lab.format import Lab


class FrameCanvas(QWidget):
    """The views of one lab, offscreen, drawn from a history and grabbed as RGB frames."""

    def __init__(self, lab: Lab, views: tuple[str, ...], size: QSize):
        super().__init__()
        self.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen, True)
        self.lab = lab
        self.views = views
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(2)
        self.caption = QLabel()
        self.caption.setStyleSheet("font-weight: bold;")
        layout.addWidget(self.caption)
        row = QHBoxLayout()
        layout.addLayout(row, 1)
        labels = [r.label for r in lab.enabled_runs()]
        colors = [lab.run_color(i) for i, r in enumerate(lab.runs) if r.enabled]
        self.widgets: dict[str, QWidget] = {}
        if lab.is_network:
            from app.network.views import NetworkView
            from core.problems.datasets.build import make_dataset

            dataset = make_dataset(lab.problem.dataset, lab.seed, base_dir=lab.base_path)
            from app.network.views import TAB_BOUNDARIES, TAB_CURVES

            tab_of = {"curves": TAB_CURVES, "boundaries": TAB_BOUNDARIES}
            for name in NETWORK_VIEWS:
                if name in views:
                    view = NetworkView()
                    view.set_runs(labels, colors, dataset, total_steps=lab.steps)
                    view.tabs.setCurrentIndex(tab_of[name])
                    view.tabs.tabBar().hide()  # a picture, not a control
                    view.hide_controls()  # nor its buttons and combos: only the plots
                    self.widgets[name] = view
                    row.addWidget(view)
        else:
            from app.arena.function_map import LandscapePlot
            from app.widgets.curves import LossPlot, LrPlot
            from core.problems.functions import get_function

            objective = get_function(lab.problem.function)
            start = lab.problem.start if lab.problem.start is not None else objective.start
            if "landscape" in views:
                landscape = LandscapePlot()
                landscape.set_objective(objective)
                landscape.set_start(*start)
                landscape.set_runs(colors, labels)
                self.widgets["landscape"] = landscape
                row.addWidget(landscape, 3)
            curves = QVBoxLayout()
            if "loss" in views:
                loss = LossPlot()
                loss.set_minimum(objective.min_value)
                loss.set_runs(labels, colors, x_max=lab.steps)
                self.widgets["loss"] = loss
                curves.addWidget(loss, 2)
            if "lr" in views:
                lr = LrPlot()
                lr.set_runs(labels, colors, x_max=lab.steps)
                self.widgets["lr"] = lr
                curves.addWidget(lr, 1)
            if curves.count():
                row.addLayout(curves, 2)
        from app.widgets.curves import SeriesPlot

        # A narrow live plot hides its legend (the runs table is the key); a picture has no
        # runs table: every plot keeps its legend, however small the frame.
        for plot in self.findChildren(SeriesPlot):
            plot.LEGEND_MAX_FRACTION = math.inf
        self.resize(size)
        self.show()  # WA_DontShowOnScreen: laid out and polished, never on screen

    def extend(self, history, records: list) -> None:
        """Add ``records`` to ``history`` so that no evaluation is skipped by the views.

        A network view records the per-layer statistics (and boundary, confusion snapshots) of
        each evaluation it is shown, and the history keeps only the newest evaluation. Between
        two frames there may be several evaluations (20 frames of a 60-step race evaluated every
        2 steps): the history is extended up to each one in turn and the views take it in, so
        every frame shows the per-layer curves of every evaluation up to its step."""
        if not self.lab.is_network:
            history.extend(records)
            return
        start = 0
        for k, record in enumerate(records[:-1]):  # the last chunk is taken in by `draw`
            if record.evaluation is not None:
                history.extend(records[start:k + 1])
                start = k + 1
                for view in self.widgets.values():
                    view.update_from(history)
        history.extend(records[start:])

    def draw(self, history, last_record) -> None:
        """Bring every view to the history's state."""
        step = last_record.step
        self.caption.setText(f"{self.lab.name} — step {step} / {self.lab.steps}")
        if self.lab.is_network:
            for view in self.widgets.values():
                view.update_from(history)
                view.flush()
            return
        if "landscape" in self.widgets:
            paths = [(s.column("x"), s.column("y")) for s in history.runs]
            self.widgets["landscape"].update_paths(paths, [bool(a) for a in last_record.alive])
        for name, column in (("loss", "loss"), ("lr", "lr")):
            if name in self.widgets:
                self.widgets[name].update_series(
                    [(s.column("step"), s.column(column)) for s in history.runs])

    def frame(self, size: QSize) -> np.ndarray:
        """The canvas as an (h, w, 3) uint8 RGB array of exactly ``size``."""
        image = self.grab().toImage()
        if image.size() != size:
            image = image.scaled(size, Qt.AspectRatioMode.IgnoreAspectRatio,
                                 Qt.TransformationMode.SmoothTransformation)
        image = image.convertToFormat(QImage.Format.Format_RGB888)
        width, height = image.width(), image.height()
        buffer = np.frombuffer(image.constBits(), dtype=np.uint8)
        rows = buffer.reshape(height, image.bytesPerLine())
        return rows[:, : width * 3].reshape(height, width, 3).copy()


class RaceAnimator(QObject):
    """Re-run a lab headless (worker thread), then draw and encode its frames (main thread).

    ``progress(done, total, phase)``; exactly one of ``finished(path)``, ``failed(message)`` or
    ``canceled()`` ends an export.
    """

    progress = Signal(int, int, str)
    finished = Signal(object)
    failed = Signal(str)
    canceled = Signal()

    def __init__(self, lab: Lab, options: AnimationOptions, parent: QObject | None = None):
        super().__init__(parent)
        options.check(lab)
        self.lab = lab
        self.options = options
        self.size = QSize(options.width, options.height)
        self.records: list = []
        self.controller = RaceController(self)
        self.controller.batch.connect(self._on_batch)
        self.controller.finished.connect(self._on_race_finished)
        self.controller.failed.connect(self._on_race_failed)
        self._timer = QTimer(self)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._render_next)
        self._writer = None
        self._canvas: FrameCanvas | None = None
        self._tmp = temp_beside(options.path)
        self._steps: list[int] = []
        self._frame = 0
        self._record_index = 0
        self._history = None
        self.active = False

    # -- phase 1: the race, in the worker thread -------------------------------------------------

    def start(self) -> None:
        lab = self.lab
        self.active = True
        from core.engine.factory import make_race

        def make(stop):
            return make_race(lab).records(stop)

        self.progress.emit(0, lab.steps, "Running the race")
        self.controller.start(make, playing=True)

    @Slot(object)
    def _on_batch(self, records: list) -> None:
        self.records.extend(records)
        self.progress.emit(records[-1].step, self.lab.steps, "Running the race")

    @Slot(str)
    def _on_race_failed(self, details: str) -> None:
        last = details.strip().splitlines()[-1] if details.strip() else "unknown error"
        self._fail(f"The race stopped on an error: {last}")

    @Slot(bool)
    def _on_race_finished(self, completed: bool) -> None:
        if not self.active:
            return
        if not completed or not self.records:
            self._fail("The race did not run to its end.")
            return
        self._begin_rendering()

    # -- phase 2: frames, on the main thread -----------------------------------------------------

    def _begin_rendering(self) -> None:
        import imageio.v2 as imageio

        from core.engine.history import NetworkHistory, RaceHistory

        options = self.options
        labels = [r.label for r in self.lab.enabled_runs()]
        self._history = NetworkHistory(labels) if self.lab.is_network else RaceHistory(labels)
        self._steps = frame_steps(self.records[-1].step, options.frames)
        self._canvas = FrameCanvas(self.lab, options.views, self.size)
        try:
            if options.format == "mp4":
                self._writer = imageio.get_writer(
                    str(self._tmp), format="FFMPEG", mode="I", fps=options.fps,
                    codec="libx264", pixelformat="yuv420p", macro_block_size=2, quality=7,
                )
            else:
                self._writer = imageio.get_writer(
                    str(self._tmp), format="GIF", mode="I", duration=1000.0 / options.fps, loop=0,
                )
        except Exception as exc:  # noqa: BLE001 - shown to the user
            self._fail(f"Could not start writing {options.path.name}: {exc}")
            return
        self._timer.start()

    @Slot()
    def _render_next(self) -> None:
        """Draw and encode one frame per event-loop turn: the window answers in between."""
        if not self.active:
            return
        step = self._steps[self._frame]
        new = []
        while self._record_index < len(self.records) and self.records[self._record_index].step <= step:
            new.append(self.records[self._record_index])
            self._record_index += 1
        if new:
            self._canvas.extend(self._history, new)
        last = self.records[max(0, self._record_index - 1)]
        try:
            self._canvas.draw(self._history, last)
            self._writer.append_data(self._canvas.frame(self.size))
        except Exception as exc:  # noqa: BLE001 - a full disk, a codec error: said, not raised
            self._fail(f"Could not write frame {self._frame + 1}: {exc}")
            return
        self._frame += 1
        self.progress.emit(self._frame, len(self._steps), "Drawing frames")
        if self._frame >= len(self._steps):
            self._complete()

    def _complete(self) -> None:
        self._timer.stop()
        try:
            self._writer.close()
            self._writer = None
            os.replace(self._tmp, self.options.path)
        except Exception as exc:  # noqa: BLE001
            self._fail(f"Could not finish {self.options.path.name}: {exc}")
            return
        self._dispose()
        self.finished.emit(self.options.path)

    # -- ending -----------------------------------------------------------------------------

    def cancel(self) -> None:
        if not self.active:
            return
        self._dispose()
        self.canceled.emit()

    def _fail(self, message: str) -> None:
        if not self.active:
            return
        self._dispose()
        self.failed.emit(message)

    def _dispose(self) -> None:
        """Stop everything and delete the partial file (no-op parts are fine)."""
        self.active = False
        self._timer.stop()
        self.controller.stop()
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception:  # noqa: BLE001 - the file is deleted below anyway
                pass
            self._writer = None
        if self._tmp.exists():
            self._tmp.unlink()
        if self._canvas is not None:
            self._canvas.close()
            self._canvas.deleteLater()
            self._canvas = None
