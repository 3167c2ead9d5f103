"""The Export dialog (File ▸ Export…, Ctrl+E): pictures, race animations, metrics, a PyTorch script.

* **Pictures**: any plot of the window as PNG (``QWidget.grab``) or SVG (``QSvgGenerator``:
  the view painted as vector paths and text, the heatmap embedded as an image).
* **Animations**: the race as GIF (Pillow) or MP4 (imageio-ffmpeg's own ffmpeg), with frame rate,
  size, views and number of frames. The lab is re-run headless by the same core engine in a worker
  thread (`RaceController` + `GeneratorWorker`), so the animation shows the lab as it is and not
  whatever the window happens to hold. Frames are then drawn on the main thread — Qt widgets may
  only be drawn there — by the app's own plot classes in an offscreen canvas, one frame per event
  loop turn (a QTimer), so the window stays responsive and Cancel is heard between frames. This
  was chosen over redrawing the views with numpy/Pillow: the pictures are exactly what the app
  shows, with no second drawing code to keep in step. Frames go to a temporary file beside the
  target, renamed into place only when the last frame is written; Cancel or an error deletes it.
* **Data**: the window's metrics as CSV or JSON (the columns of ``main.py run``), and the lab as a
  standalone PyTorch script (core/teaching/script_export.py).

`install_export(window)` adds the action to the File menu; the window needs no other change.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QSettings, QSize, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QImage, QKeySequence, QPainter
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.shell.controller import RaceController
from app.shell.layouts import hbox
from core.errors import LabError
from core.lab.format import Lab

FUNCTION_VIEWS = {"landscape": "Landscape", "loss": "Loss curves", "lr": "Learning rates"}
NETWORK_VIEWS = {"curves": "Training curves", "boundaries": "Decision boundaries / fits"}
MAX_FRAMES = 2000
MAX_SIDE = 3840
EXPORT_DIR_KEY = "export_dir"


# --------------------------------------------------------------------------------------------
# Pictures


def _temp_beside(path: Path) -> Path:
    """A temporary name in the target's folder, same suffix (writers pick formats by it)."""
    return path.with_name(f".{path.stem}.partial{path.suffix}")


def export_picture(widget: QWidget, path: str | os.PathLike) -> Path:
    """Save ``widget`` as PNG or SVG (by the suffix), atomically. Raises OSError / ValueError."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in (".png", ".svg"):
        raise ValueError(f"{target.name}: choose a .png or .svg file name")
    tmp = _temp_beside(target)
    try:
        if suffix == ".png":
            if not widget.grab().save(str(tmp), "PNG"):
                raise OSError(f"could not write {target}")
        else:
            # Qt's SVG painter, not pyqtgraph's SVGExporter: the latter fails on some of our
            # items (its coordinate fix-up breaks on decimated polylines, pyqtgraph 0.14).
            _render_svg(widget, tmp)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    return target


def _render_svg(widget: QWidget, path: Path) -> None:
    from PySide6.QtSvg import QSvgGenerator

    generator = QSvgGenerator()
    generator.setFileName(str(path))
    generator.setSize(widget.size())
    generator.setViewBox(widget.rect())
    generator.setTitle(widget.objectName() or "Descent Lab view")
    painter = QPainter(generator)
    try:
        widget.render(painter)
    finally:
        painter.end()


def window_plots(window) -> dict[str, QWidget]:
    """The pictures the window can export, by name: its plots as they are on screen."""
    lab = window.document.lab
    if not lab.is_network or window.network_view is None:
        return {"Landscape": window.landscape, "Loss curves": window.loss_plot,
                "Learning rates": window.lr_plot}
    view = window.network_view
    plots: dict[str, QWidget] = {"Network view (current tab)": view}
    for plot in view.findChildren(pg.PlotWidget):
        title = plot.getPlotItem().titleLabel.text or plot.objectName() or "plot"
        name = " ".join(title.replace("<", " <").split("<")[0].split()) or plot.objectName()
        if plot.isVisible() and name not in plots:
            plots[name] = plot
    return plots


# --------------------------------------------------------------------------------------------
# Animations


@dataclass(frozen=True)
class AnimationOptions:
    path: Path
    fps: int = 15
    width: int = 960
    height: int = 540
    frames: int = 60
    views: tuple[str, ...] = ("landscape", "loss")

    @property
    def format(self) -> str:
        return "mp4" if self.path.suffix.lower() == ".mp4" else "gif"

    def check(self, lab: Lab) -> None:
        """Refuse impossible options with the field and the allowed range (LabError)."""
        if self.path.suffix.lower() not in (".gif", ".mp4"):
            raise LabError("file", f"{self.path.name}: choose a .gif or .mp4 file name")
        if not 1 <= self.fps <= 60:
            raise LabError("frame rate", f"must be 1 … 60 frames per second, got {self.fps}")
        if not 2 <= self.frames <= MAX_FRAMES:
            raise LabError("frames", f"must be 2 … {MAX_FRAMES}, got {self.frames}")
        for name, value in (("width", self.width), ("height", self.height)):
            if not 64 <= value <= MAX_SIDE:
                raise LabError(name, f"must be 64 … {MAX_SIDE} pixels, got {value}")
            if self.format == "mp4" and value % 2:
                raise LabError(name, f"must be even for MP4 (H.264 needs it), got {value}")
        allowed = NETWORK_VIEWS if lab.is_network else FUNCTION_VIEWS
        if not self.views or any(v not in allowed for v in self.views):
            raise LabError("views", f"choose one or more of: {', '.join(allowed)}")
        if not lab.enabled_runs():
            raise LabError("runs", "no enabled runs: enable at least one run to animate")


def frame_steps(last_step: int, frames: int) -> list[int]:
    """``frames`` steps evenly spaced over 0 … last_step (repeats when there are fewer steps)."""
    return [int(s) for s in np.rint(np.linspace(0, max(0, last_step), frames))]


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
            for index, name in enumerate(NETWORK_VIEWS):
                if name in views:
                    view = NetworkView()
                    view.set_runs(labels, colors, dataset, total_steps=lab.steps)
                    view.tabs.setCurrentIndex(index)
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
                landscape.set_runs(colors)
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
        self._tmp = _temp_beside(options.path)
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


# --------------------------------------------------------------------------------------------
# The dialog


class ExportDialog(QDialog):
    """Tabs: Picture, Animation, Data. Paths come from `ask_path` (replaceable in tests)."""

    def __init__(self, window, settings: QSettings | None = None):
        super().__init__(window)
        self.setWindowTitle("Export")
        self.setObjectName("exportDialog")
        self.window_ = window
        self.settings = settings if settings is not None else window.settings
        self.animator: RaceAnimator | None = None
        # (caption, suggested file name, filter) -> path or "" ; tests replace it.
        self.ask_path = self._ask_path
        self.tabs = QTabWidget()
        self.tabs.addTab(self._picture_tab(), "Picture")
        self.tabs.addTab(self._animation_tab(), "Animation")
        self.tabs.addTab(self._data_tab(), "Data")
        self.status = QLabel(wordWrap=True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(self.status)
        layout.addWidget(buttons)

    # -- tabs -------------------------------------------------------------------------------

    def _picture_tab(self) -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
        self.plot_combo = QComboBox(objectName="exportPlotCombo")
        self.plot_combo.setToolTip("Which view of the window to save, as it is on screen now")
        for name in window_plots(self.window_):
            self.plot_combo.addItem(name)
        form.addRow("View", self.plot_combo)
        form.addRow(self._save_buttons(
            (("PNG", "A bitmap picture of the view, at its size on screen"),
             ("SVG", "A vector picture of the view, sharp at any size")), self.save_picture))
        return page

    def _animation_tab(self) -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
        lab = self.window_.document.lab
        self.fps_spin = self._spin(1, 60, 15, " fps", "Frames per second of the animation")
        self.frames_spin = self._spin(2, MAX_FRAMES, 60, "",
                                      "How many frames, at evenly spaced steps of the race")
        self.width_spin = self._spin(64, MAX_SIDE, 960, " px", "Width of the animation (even for MP4)")
        self.height_spin = self._spin(64, MAX_SIDE, 540, " px", "Height of the animation (even for MP4)")
        for spin in (self.width_spin, self.height_spin):
            spin.setSingleStep(2)
        form.addRow("Frame rate", self.fps_spin)
        form.addRow("Frames", self.frames_spin)
        form.addRow("Size", hbox(self.width_spin, "×", self.height_spin))
        self.view_boxes: dict[str, QCheckBox] = {}
        views = QHBoxLayout()
        for key, title in (NETWORK_VIEWS if lab.is_network else FUNCTION_VIEWS).items():
            box = QCheckBox(title)
            box.setChecked(key in ("landscape", "loss", "curves"))
            box.setToolTip(f"Show the {title.lower()} in the animation")
            self.view_boxes[key] = box
            views.addWidget(box)
        form.addRow("Views", views)
        form.addRow(self._save_buttons(
            (("GIF", "An animated GIF: plays anywhere, larger files"),
             ("MP4", "An H.264 video: small files, for slides and players")),
            self.save_animation))
        self.progress_bar = QProgressBar()
        self.progress_bar.setToolTip("Progress of the animation export")
        self.progress_bar.setVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the export; nothing is written")
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.cancel_animation)
        form.addRow(hbox((self.progress_bar, 1), self.cancel_button))
        return page

    def _data_tab(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        for text, tip, slot in (
            ("Metrics as CSV…", "Every step of the race shown in the window: run, step, loss, "
             "lr, grad_norm (and validation metrics)", lambda: self.save_metrics("csv")),
            ("Metrics as JSON…", "The same metrics as JSON: one list per run and column",
             lambda: self.save_metrics("json")),
            ("Lab as PyTorch script…", "A standalone Python script (torch + numpy) that trains "
             "this lab and reproduces its numbers", self.save_script),
        ):
            button = QPushButton(text)
            button.setToolTip(tip)
            button.clicked.connect(slot)
            layout.addWidget(button)
        layout.addStretch(1)
        return page

    @staticmethod
    def _save_buttons(formats: tuple[tuple[str, str], ...], save) -> QHBoxLayout:
        """One "Save FMT…" button per (format, tooltip); a click calls ``save("fmt")``."""
        row = QHBoxLayout()
        for fmt, tip in formats:
            button = QPushButton(f"Save {fmt}…")
            button.setToolTip(tip)
            button.clicked.connect(lambda _=False, f=fmt.lower(): save(f))
            row.addWidget(button)
        return row

    @staticmethod
    def _spin(low: int, high: int, value: int, suffix: str, tip: str) -> QSpinBox:
        spin = QSpinBox()
        spin.setRange(low, high)
        spin.setValue(value)
        spin.setSuffix(suffix)
        spin.setToolTip(tip)
        return spin

    # -- paths ------------------------------------------------------------------------------

    def _ask_path(self, caption: str, name: str, filter_: str) -> str:
        start = self.settings.value(EXPORT_DIR_KEY, self.settings.value("last_dir", str(Path.home())))
        path, _ = QFileDialog.getSaveFileName(self, caption, str(Path(str(start)) / name), filter_)
        return path

    def _path(self, caption: str, suffix: str, filter_: str) -> Path | None:
        stem = self.window_.document.lab.name.replace(" ", "_").lower() or "lab"
        path = self.ask_path(caption, f"{stem}{suffix}", filter_)
        if not path:
            return None
        path = Path(path)
        if path.suffix.lower() != suffix:
            path = path.with_name(path.name + suffix)
        self.settings.setValue(EXPORT_DIR_KEY, str(path.parent))
        return path

    def _format_path(self, what: str, fmt: str, kind: str) -> Path | None:
        """`_path` for saving ``what`` in format ``fmt`` ("png", "gif", "csv", …)."""
        upper = fmt.upper()
        return self._path(f"Save {what} as {upper}", f".{fmt}", f"{upper} {kind} (*.{fmt})")

    def _done(self, paths: list[Path]) -> None:
        self.status.setText("Wrote " + ", ".join(str(p) for p in paths))

    def _refuse(self, text: str) -> None:
        self.status.setText(text)
        box = QMessageBox(QMessageBox.Icon.Warning, "Export", text, parent=self)
        box.setModal(False)
        box.show()

    # -- actions ----------------------------------------------------------------------------

    def save_picture(self, fmt: str) -> None:
        plots = window_plots(self.window_)
        widget = plots.get(self.plot_combo.currentText())
        if widget is None:
            return
        path = self._format_path("the view", fmt, "pictures")
        if path is None:
            return
        try:
            self._done([export_picture(widget, path)])
        except (OSError, ValueError) as exc:
            self._refuse(f"Could not save {path.name}: {exc}")

    def animation_options(self, path: Path) -> AnimationOptions:
        return AnimationOptions(
            path=path, fps=self.fps_spin.value(), width=self.width_spin.value(),
            height=self.height_spin.value(), frames=self.frames_spin.value(),
            views=tuple(k for k, box in self.view_boxes.items() if box.isChecked()),
        )

    def save_animation(self, fmt: str) -> None:
        if self.animator is not None and self.animator.active:
            self._refuse("An animation is being exported; wait for it or press Cancel.")
            return
        path = self._format_path("the race", fmt, "files")
        if path is None:
            return
        self.start_animation(self.animation_options(path))

    def start_animation(self, options: AnimationOptions) -> RaceAnimator | None:
        try:
            animator = RaceAnimator(self.window_.document.lab, options, self)
        except LabError as exc:
            self._refuse(str(exc))
            return None
        self.animator = animator
        animator.progress.connect(self._on_progress)
        animator.finished.connect(self._on_animation_finished)
        animator.failed.connect(self._on_animation_failed)
        animator.canceled.connect(self._on_animation_canceled)
        self.progress_bar.setVisible(True)
        self.cancel_button.setVisible(True)
        animator.start()
        return animator

    def cancel_animation(self) -> None:
        if self.animator is not None:
            self.animator.cancel()

    @Slot(int, int, str)
    def _on_progress(self, done: int, total: int, phase: str) -> None:
        self.progress_bar.setRange(0, max(1, total))
        self.progress_bar.setValue(done)
        self.progress_bar.setFormat(f"{phase}: %v / %m")

    def _end_animation(self, text: str) -> None:
        self.progress_bar.setVisible(False)
        self.cancel_button.setVisible(False)
        self.status.setText(text)

    @Slot(object)
    def _on_animation_finished(self, path: Path) -> None:
        self._end_animation("")
        self._done([path])

    @Slot(str)
    def _on_animation_failed(self, message: str) -> None:
        self._end_animation(message)
        self._refuse(message)

    @Slot()
    def _on_animation_canceled(self) -> None:
        self._end_animation("Canceled: nothing was written.")

    def save_metrics(self, fmt: str) -> None:
        from core.teaching.metrics_export import write_metrics_csv, write_metrics_json

        history = self.window_.history
        if history is None or history.last_step < 0:
            self._refuse("No metrics yet: play the race first (Space).")
            return
        path = self._format_path("the metrics", fmt, "files")
        if path is None:
            return
        try:
            if fmt == "csv":
                written = write_metrics_csv(history, path)
            else:
                written = write_metrics_json(history, path, self.window_.document.lab)
        except OSError as exc:
            self._refuse(f"Could not save {path.name}: {exc.strerror or exc}")
            return
        self._done([written])

    def save_script(self) -> None:
        from core.teaching.script_export import export_script, write_script

        lab = self.window_.document.lab
        try:
            export_script(lab)  # refuse before asking where
        except LabError as exc:
            self._refuse(f"This lab cannot be exported as a script: {exc}")
            return
        path = self._path("Save the lab as a PyTorch script", ".py", "Python scripts (*.py)")
        if path is None:
            return
        try:
            self._done(write_script(lab, path))
        except (OSError, LabError) as exc:
            self._refuse(f"Could not save {path.name}: {exc}")

    def done(self, result: int) -> None:  # noqa: D401 - Qt's name
        """Closing the dialog cancels an animation in progress (its thread must not outlive it)."""
        self.cancel_animation()
        super().done(result)


def _file_menu(window) -> QMenu | None:
    for action in window.menuBar().actions():
        if action.menu() is not None and action.text().replace("&", "") == "File":
            return action.menu()
    return None


def install_export(window) -> QAction:
    """File ▸ Export… (Ctrl+E), placed above Quit; opens one `ExportDialog` per window."""
    action = QAction("&Export…", window)
    action.setShortcut(QKeySequence("Ctrl+E"))
    action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    tip = "Pictures of the plots, the race as GIF / MP4, metrics, the lab as a PyTorch script"
    action.setToolTip(tip)
    action.setStatusTip(tip)

    def open_dialog() -> None:
        dialog = getattr(window, "export_dialog", None)
        busy = dialog is not None and dialog.animator is not None and dialog.animator.active
        if not busy:
            # A fresh dialog: the views on offer depend on the lab now in the window.
            if dialog is not None:
                dialog.deleteLater()
            dialog = ExportDialog(window)
            window.export_dialog = dialog
        dialog.show()

    action.triggered.connect(open_dialog)
    window.addAction(action)
    menu = _file_menu(window)
    if menu is not None:
        quit_action = getattr(window, "quit_action", None)
        if quit_action is not None and quit_action in menu.actions():
            menu.insertAction(quit_action, action)
            menu.insertSeparator(quit_action)
        else:
            menu.addAction(action)
    window.export_action = action
    return action
