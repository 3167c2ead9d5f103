"""The LR range test window (Tools ▸ LR range test…, Ctrl+L).

Pick a run, a range and a number of steps; core.lr_finder ramps the learning rate on a copy of
the run in a worker thread (the curve grows live, Cancel stops it and still analyses what was
measured). The plot shows the raw loss (faint) and the smoothed loss against the lr on a log
axis, with each rule's suggestion marked side by side; core's sentence says why they differ.
"Use this lr" sets the run's lr in the main window's lab through the document, so Ctrl+Z
undoes it (here or in the main window).

`CallbackTask` runs a blocking core function that reports through a callback (the range test,
the fair race) in a QThread: only signals cross threads, a `threading.Event` stops it, and
stopping is event + ``quit`` + ``wait``, as for the race controller.
"""

from __future__ import annotations

import math
import threading
import time
import traceback
from typing import Any, Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QComboBox, QFormLayout, QGridLayout, QHBoxLayout, QLabel, QLineEdit, QMainWindow,
    QProgressBar, QPushButton, QSpinBox, QVBoxLayout, QWidget,
)

from app.controller import LIVE_THREADS
from app.document import LabDocument
from app.theme import FOREGROUND
from core.devices import configure_threads
from core.errors import LabError
from core.lr_finder import (
    DEFAULT_LR_MAX, DEFAULT_LR_MIN, DEFAULT_STEPS, MAX_STEPS, RULES, LrFindResult, apply_lr,
    check_range, explain, lr_range_test,
)

REPORT_INTERVAL_S = 0.05  # progress at most 20 times a second (Orange3's rule)
RULE_COLORS = {"steepest": "#56b4e9", "valley": "#009e73", "minimum/10": "#e69f00"}
RULE_TITLES = {"steepest": "Steepest descent", "valley": "Valley", "minimum/10": "Minimum / 10"}
RULE_TIPS = {
    "steepest": "Where the smoothed loss falls fastest per decade of lr: fast, often near the edge.",
    "valley": "Halfway into the longest stretch of falling loss (fastai's valley rule): safe.",
    "minimum/10": "A tenth of the lr at the lowest smoothed loss: the oldest rule of thumb.",
}


def error_text(exc: LabError) -> str:
    """A `LabError` as one line for a window: "field: message"."""
    return f"{exc.field}: {exc.message}" if exc.field else exc.message


# -- running a blocking core call in a thread ------------------------------------------------------


class _CallWorker(QObject):
    # Each signal carries the worker's generation, so the task can drop what a replaced worker
    # had already queued (QObject.sender() is not reliable across queued connections).
    progress = Signal(int, object)
    done = Signal(int, object)
    failed = Signal(int, str)

    def __init__(self, call: Callable[[threading.Event, Callable[[Any], None]], Any],
                 generation: int):
        super().__init__()
        self._call = call
        self.generation = generation
        self.stop_event = threading.Event()
        self._last = -math.inf

    def report(self, payload: Any, force: bool = False) -> None:
        """Called by the core function on the worker thread; throttled at the source."""
        now = time.perf_counter()
        if force or now - self._last >= REPORT_INTERVAL_S:
            self._last = now
            self.progress.emit(self.generation, payload)

    @Slot()
    def run(self) -> None:
        configure_threads()
        try:
            result = self._call(self.stop_event, self.report)
        except LabError as exc:
            self.failed.emit(self.generation, error_text(exc))
        except Exception:  # noqa: BLE001 - shown to the user, not swallowed
            self.failed.emit(self.generation, traceback.format_exc())
        else:
            self.done.emit(self.generation, result)


class CallbackTask(QObject):
    """Run ``call(stop_event, report)`` on a new QThread; re-emit its signals on this thread."""

    progress = Signal(object)
    done = Signal(object)  # the call's result
    failed = Signal(str)  # "field: message" for a LabError, else a traceback
    stopped = Signal()  # the thread has ended (after done / failed, or after stop)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._thread: QThread | None = None
        self._worker: _CallWorker | None = None
        self._generation = 0

    def is_running(self) -> bool:
        return self._thread is not None

    def start(self, call) -> None:
        self.stop()
        self._generation += 1
        worker = _CallWorker(call, self._generation)
        thread = QThread()
        thread.setObjectName("descent-lab-task")
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.progress.connect(self._on_progress)
        worker.done.connect(self._on_done)
        worker.failed.connect(self._on_failed)
        self._worker, self._thread = worker, thread
        LIVE_THREADS.add(thread)
        thread.start()

    def cancel(self) -> None:
        """Ask the call to stop at its next check; its result (or error) still arrives."""
        if self._worker is not None:
            self._worker.stop_event.set()

    def stop(self) -> None:
        """Stop the call and wait for the thread (shutdown, close); its result is dropped."""
        if self._worker is not None:
            self._worker.stop_event.set()
        self._end_thread()

    def _end_thread(self) -> None:
        worker, thread = self._worker, self._thread
        if worker is None or thread is None:
            return
        self._worker = self._thread = None
        thread.quit()
        thread.wait()
        worker.deleteLater()
        thread.deleteLater()
        self.stopped.emit()

    def _is_current(self, generation: int) -> bool:
        return self._worker is not None and generation == self._worker.generation

    @Slot(int, object)
    def _on_progress(self, generation: int, payload) -> None:
        if self._is_current(generation):
            self.progress.emit(payload)

    @Slot(int, object)
    def _on_done(self, generation: int, result) -> None:
        if self._is_current(generation):
            self._end_thread()  # run() has returned or is about to: a short wait
            self.done.emit(result)

    @Slot(int, str)
    def _on_failed(self, generation: int, text: str) -> None:
        if self._is_current(generation):
            self._end_thread()
            self.failed.emit(text)


def add_undo_actions(window: QMainWindow, document: LabDocument) -> None:
    """Ctrl+Z / Ctrl+Shift+Z in a tool window undo and redo the main lab's edits."""
    undo = document.undo_stack.createUndoAction(window, "&Undo")
    undo.setShortcut(QKeySequence.StandardKey.Undo)
    redo = document.undo_stack.createRedoAction(window, "&Redo")
    redo.setShortcut(QKeySequence("Ctrl+Shift+Z"))
    for action in (undo, redo):
        window.addAction(action)
    menu = window.menuBar().addMenu("&Edit")
    menu.addAction(undo)
    menu.addAction(redo)


# -- the window ------------------------------------------------------------------------------------


class LrFinderWindow(QMainWindow):
    """Range, steps and run on top; the curve with the rules' marks; one button per rule."""

    result_ready = Signal(object)  # LrFindResult (tests, scripts)

    def __init__(self, document: LabDocument, parent: QWidget | None = None):
        super().__init__(parent, Qt.WindowType.Window)
        self.setObjectName("lrFinderWindow")
        self.setWindowTitle("LR range test — Descent Lab")
        self.document = document
        self.result: LrFindResult | None = None
        self.task = CallbackTask(self)
        self.task.progress.connect(self._on_progress)
        self.task.done.connect(self._on_done)
        self.task.failed.connect(self._on_failed)
        self.task.stopped.connect(self._update_buttons)
        self.markers: dict[str, list] = {}
        self._build()
        add_undo_actions(self, document)
        document.lab_changed.connect(self._refresh_runs)
        self._refresh_runs()
        self.resize(980, 680)

    # -- construction ----------------------------------------------------------------------------

    def _build(self) -> None:
        self.run_combo = QComboBox(objectName="lrRunCombo")
        self.run_combo.setToolTip("The run whose optimizer (and other hyperparameters) ramps "
                                  "the learning rate; its weights are put back afterwards.")
        self.min_edit = QLineEdit(f"{DEFAULT_LR_MIN:g}", objectName="lrMinEdit")
        self.min_edit.setToolTip("The smallest lr of the ramp (> 0)")
        self.max_edit = QLineEdit(f"{DEFAULT_LR_MAX:g}", objectName="lrMaxEdit")
        self.max_edit.setToolTip("The largest lr of the ramp (above the minimum)")
        self.steps_spin = QSpinBox(objectName="lrStepsSpin")
        self.steps_spin.setRange(5, MAX_STEPS)
        self.steps_spin.setValue(DEFAULT_STEPS)
        self.steps_spin.setToolTip(f"Training steps of the ramp, 5 … {MAX_STEPS}; the lr grows "
                                   "by the same factor every step")
        self.start_button = QPushButton("Run test", objectName="lrStartButton")
        self.start_button.setToolTip("Start the range test (Ctrl+Enter)")
        self.start_button.setShortcut(QKeySequence("Ctrl+Return"))
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel", objectName="lrCancelButton")
        self.cancel_button.setToolTip("Stop the ramp; what was measured is still analysed (Esc)")
        self.cancel_button.setShortcut(QKeySequence(Qt.Key.Key_Escape))
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar(objectName="lrProgress")
        self.progress.setToolTip("Steps of the ramp done")
        self.progress.setFormat("%v / %m steps")

        form = QFormLayout()
        form.addRow("Run", self.run_combo)
        range_row = QHBoxLayout()
        range_row.addWidget(self.min_edit)
        range_row.addWidget(QLabel("to"))
        range_row.addWidget(self.max_edit)
        form.addRow("lr from", range_row)
        form.addRow("Steps", self.steps_spin)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.progress, 1)
        self.error_label = QLabel(objectName="lrErrorLabel")
        self.error_label.setStyleSheet("color: #ff6b6b;")
        self.error_label.setWordWrap(True)
        self.error_label.setToolTip("What is wrong with the settings above")

        self.plot = pg.PlotWidget(objectName="lrPlot")
        self.plot.setMenuEnabled(False)
        self.plot.setToolTip("Loss against learning rate (log axis): faint = raw loss of each "
                             "step, bright = smoothed; the dashed lines are the suggestions.")
        item = self.plot.plotItem
        item.setLogMode(x=True, y=False)
        item.setLabel("bottom", "learning rate")
        item.setLabel("left", "loss")
        item.getAxis("bottom").enableAutoSIPrefix(False)
        item.addLegend(offset=(-10, 10))
        self.raw_curve = pg.PlotDataItem(pen=pg.mkPen(160, 170, 190, 90, width=1), name="raw")
        self.smooth_curve = pg.PlotDataItem(pen=pg.mkPen(FOREGROUND, width=2), name="smoothed")
        item.addItem(self.raw_curve)
        item.addItem(self.smooth_curve)

        self.suggestion_grid = QGridLayout()
        self.rule_labels: dict[str, QLabel] = {}
        self.use_buttons: dict[str, QPushButton] = {}
        for row, rule in enumerate(RULES):
            swatch = QLabel("■")
            swatch.setStyleSheet(f"color: {RULE_COLORS[rule]}; font-size: 16px;")
            swatch.setToolTip(RULE_TIPS[rule])
            label = QLabel("—", objectName=f"lrSuggestion_{rule}")
            label.setToolTip(RULE_TIPS[rule])
            button = QPushButton("Use this lr", objectName=f"lrUseButton_{rule}")
            button.setEnabled(False)
            button.clicked.connect(self._use_clicked)
            button.setProperty("rule", rule)
            self.rule_labels[rule], self.use_buttons[rule] = label, button
            self.suggestion_grid.addWidget(swatch, row, 0)
            self.suggestion_grid.addWidget(label, row, 1)
            self.suggestion_grid.addWidget(button, row, 2)
        self.suggestion_grid.setColumnStretch(1, 1)
        self.explanation = QLabel(objectName="lrExplanation")
        self.explanation.setWordWrap(True)
        self.explanation.setToolTip("Why the rules pick different learning rates on this curve")
        self.status = QLabel(objectName="lrStatus")
        self.status.setWordWrap(True)
        self.status.setToolTip("Why the ramp stopped, and what was applied")

        central = QWidget()
        layout = QVBoxLayout(central)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.error_label)
        layout.addWidget(self.plot, 1)
        layout.addLayout(self.suggestion_grid)
        layout.addWidget(self.explanation)
        layout.addWidget(self.status)
        self.setCentralWidget(central)
        self.error_label.hide()
        self._update_buttons()

    def _refresh_runs(self, *_args) -> None:
        current = self.run_combo.currentData()
        self.run_combo.clear()
        for run in self.document.lab.runs:
            lr = run.params.get("lr")
            shown = f"lr {lr:.3g}" if isinstance(lr, (int, float)) else "default lr"
            self.run_combo.addItem(f"{run.label}  ({run.optimizer}, {shown})", run.label)
        index = self.run_combo.findData(current)
        self.run_combo.setCurrentIndex(max(0, index))

    def _update_buttons(self, *_args) -> None:
        running = self.task.is_running()
        self.start_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        for rule, button in self.use_buttons.items():
            button.setEnabled(not running and self.result is not None)

    # -- running ---------------------------------------------------------------------------------

    def _settings(self) -> tuple[float, float, int]:
        values = []
        for name, edit in (("lr from", self.min_edit), ("lr to", self.max_edit)):
            try:
                values.append(float(edit.text().strip()))
            except ValueError:
                raise LabError(name, f"must be a positive number such as 1e-5, got "
                                     f"{edit.text()!r}") from None
        lr_min, lr_max = values
        steps = self.steps_spin.value()
        try:
            check_range(lr_min, lr_max, steps)
        except LabError as exc:  # core names the CLI flags; say it with the window's words
            field = {"--min": "lr from", "--max": "lr to", "--steps": "Steps"}.get(exc.field,
                                                                                 exc.field)
            raise LabError(field, exc.message.replace("--max", "the upper end")) from None
        return lr_min, lr_max, steps

    def start(self) -> bool:
        """Check the settings and start the ramp; False (with a message) if they are wrong."""
        if self.task.is_running():
            return False
        try:
            lr_min, lr_max, steps = self._settings()
            if not self.document.lab.runs:
                raise LabError("Run", "the lab has no run to test; add one first")
        except LabError as exc:
            self._show_error(error_text(exc))
            return False
        self._show_error("")
        lab = self.document.lab
        label = self.run_combo.currentData()
        self.result = None
        self._clear_markers()
        self.raw_curve.setData([], [])
        self.smooth_curve.setData([], [])
        self.explanation.setText("")
        for rule in RULES:
            self.rule_labels[rule].setText("—")
        self.progress.setRange(0, steps)
        self.progress.setValue(0)
        self.status.setText(f"Ramping the lr of {label} from {lr_min:g} to {lr_max:g}…")

        def call(stop: threading.Event, report) -> LrFindResult:
            lrs: list[float] = []
            losses: list[float] = []

            def on_step(i: int, lr: float, loss: float) -> None:
                lrs.append(lr)
                losses.append(loss)
                report((i + 1, np.array(lrs), np.array(losses)))

            return lr_range_test(lab, label, lr_min, lr_max, steps, stop=stop, on_step=on_step)

        self.task.start(call)
        self._update_buttons()
        return True

    def cancel(self) -> None:
        self.task.cancel()
        self.status.setText("Cancelling…")

    def shutdown(self) -> None:
        self.task.stop()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self.shutdown()
        super().closeEvent(event)

    # -- results ---------------------------------------------------------------------------------

    @Slot(object)
    def _on_progress(self, payload) -> None:
        done, lrs, losses = payload
        self.progress.setValue(done)
        self.raw_curve.setData(lrs, losses)

    @Slot(object)
    def _on_done(self, result: LrFindResult) -> None:
        self.result = result
        self.progress.setValue(len(result.lrs))
        self.raw_curve.setData(result.lrs, result.losses)
        self.smooth_curve.setData(result.lrs, result.smoothed)
        self._draw_markers(result)
        for rule in RULES:
            self.rule_labels[rule].setText(
                f"<b>{RULE_TITLES[rule]}</b>: lr = {result.suggestions[rule]:.3g}")
            self.use_buttons[rule].setToolTip(
                f"Set {result.run_label}'s lr to {result.suggestions[rule]:.3g} "
                "(undo with Ctrl+Z)")
        self.explanation.setText(explain(result))
        self.status.setText(f"Ran {len(result.lrs)} of {result.steps_planned} steps: "
                            f"{result.stop_reason}.")
        self._update_buttons()
        self.result_ready.emit(result)

    @Slot(str)
    def _on_failed(self, text: str) -> None:
        self._show_error(text)
        self.status.setText("The range test stopped.")
        self._update_buttons()

    def _show_error(self, text: str) -> None:
        self.error_label.setText(text)
        self.error_label.setVisible(bool(text))

    def _clear_markers(self) -> None:
        for items in self.markers.values():
            for marker in items:
                self.plot.plotItem.removeItem(marker)
        self.markers = {}

    def _draw_markers(self, result: LrFindResult) -> None:
        """A dashed line per rule at its suggestion, a dot where it reads the curve, a label."""
        self._clear_markers()
        item = self.plot.plotItem
        smoothed = result.smoothed
        low, high = float(np.min(smoothed)), float(np.max(smoothed))
        pad = 0.08 * (high - low or abs(high) or 1.0)
        item.setYRange(low - pad, high + pad, padding=0)
        item.setXRange(math.log10(result.lrs[0]), math.log10(result.lrs[-1]), padding=0.02)
        # Labels stacked at different heights, so close suggestions do not overlap.
        for k, rule in enumerate(RULES):
            lr = result.suggestions[rule]
            color = RULE_COLORS[rule]
            line = pg.InfiniteLine(pos=math.log10(lr), angle=90,
                                   pen=pg.mkPen(color, width=2, style=Qt.PenStyle.DashLine),
                                   label=f"{RULE_TITLES[rule]}\n{lr:.2g}",
                                   labelOpts={"position": 0.95 - 0.16 * k, "color": color,
                                              "fill": (27, 29, 33, 200), "movable": False})
            index = result.suggestion_index[rule]
            # A PlotDataItem (not a bare scatter) so the plot's log-x mode applies to it.
            dot = pg.PlotDataItem([result.lrs[index]], [smoothed[index]], pen=None,
                                  symbol="o", symbolSize=10, symbolBrush=pg.mkBrush(color),
                                  symbolPen=pg.mkPen("k"))
            item.addItem(line)
            item.addItem(dot)
            self.markers[rule] = [line, dot]

    def _use_clicked(self) -> None:
        self.use_lr(self.sender().property("rule"))

    def use_lr(self, rule: str) -> bool:
        """Apply ``rule``'s suggestion to the tested run (one undoable edit)."""
        if self.result is None:
            return False
        lr = self.result.suggestions[rule]
        try:
            lab = apply_lr(self.document.lab, self.result.run_label, lr)
        except LabError as exc:
            self._show_error(error_text(exc))
            return False
        self.document.edit(lab, "Use lr from range test")
        self.status.setText(f"{self.result.run_label} now uses lr {lr:.3g} "
                            f"({RULE_TITLES[rule].lower()}); Ctrl+Z undoes it.")
        return True
