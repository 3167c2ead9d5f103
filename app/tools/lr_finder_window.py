"""The LR range test window (Tools ▸ LR range test…, Ctrl+L).

Pick a run, a range and a number of steps; core.tools.lr_finder ramps the learning rate on a copy of
the run in a worker thread (the curve grows live, Cancel stops it and still analyses what was
measured). The plot shows the raw loss (faint) and the smoothed loss against the lr on a log
axis, with each rule's suggestion marked side by side; core's sentence says why they differ.
"Use this lr" sets the run's lr in the main window's lab through the document, so Ctrl+Z
undoes it (here or in the main window). The ramp runs in app.shell.controller's `CallbackTask`.
"""

from __future__ import annotations

import math
import threading

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGridLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.runs.run_text import round_lr
from app.shell.document import LabDocument
from app.shell.theme import FOREGROUND
from app.shell.tool_window import ToolWindow
from app.shell.worker import error_text
from app.widgets.curves import add_key_row
from app.widgets.layouts import hbox
from app.widgets.plot_style import named_plot
from core.errors import LabError
from core.tools.lr_finder import (
    DEFAULT_LR_MAX,
    DEFAULT_LR_MIN,
    DEFAULT_STEPS,
    MAX_STEPS,
    RULES,
    LrFindResult,
    apply_lr,
    check_range,
    explain,
    lr_range_test,
)

RULE_COLORS = {"steepest": "#56b4e9", "valley": "#009e73", "minimum/10": "#e69f00"}
RULE_TITLES = {"steepest": "Steepest descent", "valley": "Valley", "minimum/10": "Minimum / 10"}
RULE_TIPS = {
    "steepest": "Where the smoothed loss falls fastest per decade of lr: fast, often near the edge.",
    "valley": "Halfway into the longest stretch of falling loss (fastai's valley rule): safe.",
    "minimum/10": "A tenth of the lr at the lowest smoothed loss: the oldest rule of thumb.",
}


# -- the window ------------------------------------------------------------------------------------


class LrFinderWindow(ToolWindow):
    """Range, steps and run on top; the curve with the rules' marks; one button per rule."""

    result_ready = Signal(object)  # LrFindResult (tests, scripts)

    def __init__(self, document: LabDocument, parent: QWidget | None = None):
        super().__init__(document, parent, "lrFinderWindow", "LR range test")
        self.result: LrFindResult | None = None
        self.task = self._callback_task()
        self.markers: dict[str, list] = {}
        self._build()
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
        self._make_run_buttons("lr", "Run test", "Start the range test",
                               "Stop the ramp; what was measured is still analysed")
        self.progress = QProgressBar(objectName="lrProgress")
        self.progress.setToolTip("Steps of the ramp done")
        self.progress.setFormat("%v / %m steps")

        form = QFormLayout()
        form.addRow("Run", self.run_combo)
        form.addRow("lr from", hbox(self.min_edit, "to", self.max_edit))
        form.addRow("Steps", self.steps_spin)
        buttons = hbox(self.start_button, self.cancel_button, (self.progress, 1))
        self._make_error_label("lrErrorLabel", "What is wrong with the settings above")

        self.plot = named_plot("lrPlot")
        self.plot.setMenuEnabled(False)
        self.plot.setToolTip("Loss against learning rate (log axis): faint = raw loss of each "
                             "step, bright = smoothed; the dashed lines are the suggestions.")
        item = self.plot.plotItem
        item.setLogMode(x=True, y=False)
        item.setLabel("bottom", "learning rate")
        item.setLabel("left", "loss")
        item.getAxis("bottom").enableAutoSIPrefix(False)
        add_key_row(item)  # above the data, never over a curve (app/widgets/curves.py)
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
                f"<b>{RULE_TITLES[rule]}</b>: lr = {round_lr(result.suggestions[rule]):g}")
            self.use_buttons[rule].setToolTip(
                f"Set {result.run_label}'s lr to {round_lr(result.suggestions[rule]):g} "
                "(undo with Ctrl+Z)")
        self.explanation.setText(explain(result))
        self.status.setText(f"Ran {len(result.lrs)} of {result.steps_planned} steps: "
                            f"{result.stop_reason}.")
        self._update_buttons()
        self.result_ready.emit(result)

    @Slot(str)
    def _on_failed(self, text: str) -> None:
        self._report_failure("The range test stopped", text)
        self.status.setText("The range test stopped.")
        self._update_buttons()

    def _clear_markers(self) -> None:
        for items in self.markers.values():
            for marker in items:
                self.plot.plotItem.removeItem(marker)
        self.markers = {}
        legend = self.plot.plotItem.legend
        for sample in getattr(self, "_rule_keys", []):
            legend.removeItem(sample)
        self._rule_keys: list[pg.PlotDataItem] = []

    def _draw_markers(self, result: LrFindResult) -> None:
        """A dashed line per rule at its suggestion, a dot where it reads the curve, its name and
        lr in the key above the plot."""
        self._clear_markers()
        item = self.plot.plotItem
        smoothed = result.smoothed
        low, high = float(np.min(smoothed)), float(np.max(smoothed))
        pad = 0.08 * (high - low or abs(high) or 1.0)
        item.setYRange(low - pad, high + pad, padding=0)
        item.setXRange(math.log10(result.lrs[0]), math.log10(result.lrs[-1]), padding=0.02)
        # Each rule is named in the key above the plot, not by a label on its line: labels of
        # close suggestions lay over each other and over the curve.
        legend = item.legend
        for rule in RULES:
            lr = result.suggestions[rule]
            color = RULE_COLORS[rule]
            pen = pg.mkPen(color, width=2, style=Qt.PenStyle.DashLine)
            line = pg.InfiniteLine(pos=math.log10(lr), angle=90, pen=pen)
            line.setToolTip(f"{RULE_TITLES[rule]}: lr {lr:.2g}")
            key = pg.PlotDataItem(pen=pen)
            legend.addItem(key, f"{RULE_TITLES[rule]} {lr:.2g}")
            self._rule_keys.append(key)
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
        # Two significant digits: what the label shows and a person would type (the rules'
        # suggestions are not more precise than that).
        lr = round_lr(self.result.suggestions[rule])
        try:
            lab = apply_lr(self.document.lab, self.result.run_label, lr)
        except LabError as exc:
            self._show_error(error_text(exc))
            return False
        self.document.edit(lab, "Use lr from range test")
        self.status.setText(f"{self.result.run_label} now uses lr {lr:g} "
                            f"({RULE_TITLES[rule].lower()}); Ctrl+Z undoes it.")
        return True
