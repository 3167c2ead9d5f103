"""The Training section of the network problem panel: how the network is trained on its data.

`TrainingEditor` edits the loss (only those that fit the task) and its class weights (none or
balanced, for classification), the device, the batch size or full batch, how often to evaluate, the seeds per run and how often to track sharpness; it proposes
each change as an edited copy of the draft (`ProblemSection`), and the panel
(app/network/problem_panel.py) validates and commits it. `fitting_losses` and `loss_title` are
also what the panel uses when it refits the loss to a new data set.
"""

from __future__ import annotations

import re
from dataclasses import replace

from PySide6.QtCore import Qt
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import QCheckBox, QComboBox, QLabel, QWidget

from app.network.editor_parts import ProblemSection, section_form, widget_row
from app.widgets.hyperparam_form import show_refused
from app.widgets.number_boxes import WholeNumberBox
from core.engine.devices import DEVICES
from core.lab.format import MAX_SEEDS, MAX_STEPS, NetworkProblem
from core.problems.metrics import CLASSIFICATION_LOSSES, LOSSES, REGRESSION_LOSSES

DEVICE_TIPS = {
    "auto": "The GPU when CUDA is available, else the CPU",
    "cpu": "Always the CPU",
    "cuda": "The GPU (falls back to the CPU, with a notice, when CUDA is not available)",
}
DEFAULT_BATCH = 64  # what the batch box shows under "Full batch" when it held nothing usable


def fitting_losses(task: str) -> tuple[str, ...]:
    """The losses offered for a task ("classification" or "regression"), the default first."""
    return CLASSIFICATION_LOSSES if task == "classification" else REGRESSION_LOSSES


def loss_title(name: str) -> str:
    return LOSSES[name].split(":")[0] if name in LOSSES else name


class StepsOrOffBox(WholeNumberBox):
    """``every N steps``, or ``off`` for 0, where any whole number can be typed (a negative one
    is refused by validation in red). Qt's own special value text would show only at the box's
    minimum, which is far below 0 here, so the text is made here."""

    # The words around the number may be half deleted while typing ("every 5 step").
    _TEXT = re.compile(r"\s*[a-z]*\s*([+-]?\d*)\s*[a-z]*\s*")

    def textFromValue(self, value: int) -> str:  # noqa: N802 (Qt override)
        return "off" if value == 0 else f"every {value} steps"

    def valueFromText(self, text: str) -> int:  # noqa: N802 (Qt override)
        if text.strip().lower() == "off":
            return 0
        match = self._TEXT.fullmatch(text.lower())
        try:
            return int(match.group(1)) if match else self.value()
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int):  # Qt override
        lower = text.strip().lower()
        if lower == "off":
            return QValidator.State.Acceptable, text, pos
        if lower and "off".startswith(lower):
            return QValidator.State.Intermediate, text, pos
        match = self._TEXT.fullmatch(lower)
        if match is None:
            return QValidator.State.Invalid, text, pos
        return super().validate(match.group(1), 0)[0], text, pos


class TrainingEditor(ProblemSection):
    """The Training section. See the module docstring."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Training", "trainingGroup", "trainingError", parent)
        form = section_form(self)

        self.loss_combo = QComboBox(objectName="lossCombo")
        self.loss_combo.setToolTip("What training minimises (only losses that fit the task)")
        self.loss_combo.setAccessibleName("Loss")
        self.loss_combo.currentIndexChanged.connect(self._on_loss)
        self.device_combo = QComboBox(objectName="deviceCombo")
        for name in DEVICES:
            self.device_combo.addItem(name, name)
            self.device_combo.setItemData(
                self.device_combo.count() - 1, DEVICE_TIPS.get(name, ""),
                Qt.ItemDataRole.ToolTipRole,
            )
        self.device_combo.setToolTip("Where the networks are trained: auto, the CPU or the GPU")
        self.device_combo.setAccessibleName("Device")
        self.device_combo.currentIndexChanged.connect(self._on_device)
        form.addRow("Loss", widget_row(self.loss_combo, QLabel("Device"), self.device_combo))
        self.class_weights_combo = QComboBox(objectName="classWeightsCombo")
        self.class_weights_combo.setToolTip(
            "Class weights of cross entropy. Balanced: each class's samples weigh "
            "n / (classes · its count), so a rare class counts as much in total as a common "
            "one (scikit-learn's 'balanced'); the validation loss is weighted the same way.")
        self.class_weights_combo.setAccessibleName("Class weights")
        self.class_weights_combo.currentIndexChanged.connect(self._on_class_weights)
        form.addRow("Class weights", widget_row(self.class_weights_combo))

        # Whole-number boxes that take any typed number: one out of range is refused in red
        # (with the field marked) by validation, not silently reverted
        # (app/widgets/hyperparam_form.py).
        self.batch_box = WholeNumberBox(objectName="batchSizeBox")
        self.batch_box.set_allowed(1, 1_000_000)
        self.batch_box.setKeyboardTracking(False)
        self.batch_box.setToolTip("Samples per optimizer step (a mini-batch)")
        self.batch_box.setAccessibleName("Batch size")
        self.batch_box.valueChanged.connect(self._on_batch_size)
        self.full_batch_check = QCheckBox("Full batch", objectName="fullBatchCheck")
        self.full_batch_check.setToolTip(
            "Use every training sample at every step (exact gradients, no mini-batch noise)"
        )
        self.full_batch_check.toggled.connect(self._on_full_batch)
        self.eval_box = WholeNumberBox(objectName="evalEveryBox")
        self.eval_box.set_allowed(1, MAX_STEPS)
        self.eval_box.setKeyboardTracking(False)
        self.eval_box.setToolTip(
            "Measure validation metrics and redraw boundaries every this many steps"
        )
        self.eval_box.setAccessibleName("Evaluate every")
        self.eval_box.valueChanged.connect(self._on_eval_every)
        self.seeds_box = WholeNumberBox(objectName="seedsBox")
        self.seeds_box.set_allowed(1, MAX_SEEDS)
        self.seeds_box.setKeyboardTracking(False)
        self.seeds_box.setToolTip(
            "Train every run this many times from different initial weights and batch orders; "
            "curves show the mean with a ± std band"
        )
        self.seeds_box.setAccessibleName("Seeds per run")
        self.seeds_box.valueChanged.connect(self._on_seeds)
        form.addRow("Batch", widget_row(self.batch_box, self.full_batch_check))
        form.addRow("Eval every", widget_row(self.eval_box, QLabel("steps"), QLabel("Seeds"),
                                             self.seeds_box))
        self.sharpness_box = StepsOrOffBox(objectName="sharpnessEveryBox")
        self.sharpness_box.set_allowed(0, MAX_STEPS)  # a typed -5 is refused in red
        self.sharpness_box.setKeyboardTracking(False)
        self.sharpness_box.setToolTip(
            "Track sharpness every N steps: each run's top Hessian eigenvalue λ_max, measured "
            "during training (a few Hessian-vector products each time) and drawn live on the "
            "Surface tab's Sharpness page against 2/lr, the edge of stability of gradient "
            "descent; also in the comparison table. 0 (off) measures nothing."
        )
        self.sharpness_box.setAccessibleName("Track sharpness every")
        self.sharpness_box.valueChanged.connect(self._on_sharpness_every)
        form.addRow("Track sharpness", widget_row(self.sharpness_box))
        form.addRow(self.error_label)
        # The box that holds each refusable field, to mark it red.
        self._boxes = {"problem.batch_size": self.batch_box, "problem.eval_every": self.eval_box,
                       "problem.seeds": self.seeds_box,
                       "problem.sharpness_every": self.sharpness_box,
                       "problem.class_weights": self.class_weights_combo}

    # ---------------------------------------------------------------- showing

    def set_problem(self, problem: NetworkProblem, task: str) -> None:
        """Show ``problem``'s training settings (the losses offered fit ``task``); never emits."""
        self._problem = problem
        widgets = (self.loss_combo, self.batch_box, self.full_batch_check, self.eval_box,
                   self.seeds_box, self.device_combo, self.sharpness_box,
                   self.class_weights_combo)
        self._showing = True
        for widget in widgets:
            widget.blockSignals(True)
        try:
            self._show_losses(problem.loss, task)
            self._show_class_weights(problem.class_weights, task)
            full = problem.batch_size is None
            self.full_batch_check.setChecked(full)
            self.batch_box.setEnabled(not full)
            if not full:
                self.batch_box.setValue(int(problem.batch_size))
            elif self.batch_box.value() <= 1:
                self.batch_box.setValue(DEFAULT_BATCH)
            self.eval_box.setValue(int(problem.eval_every))
            self.seeds_box.setValue(int(problem.seeds))
            self.sharpness_box.setValue(int(problem.sharpness_every))
            self.device_combo.setCurrentIndex(max(0, self.device_combo.findData(problem.device)))
        finally:
            for widget in widgets:
                widget.blockSignals(False)
            self._showing = False

    def _show_losses(self, loss: str, task: str) -> None:
        names = list(fitting_losses(task))
        if loss not in names:
            names.append(loss)  # show the truth; validation explains the mismatch
        combo = self.loss_combo
        if [combo.itemData(i) for i in range(combo.count())] != names:
            combo.clear()
            for name in names:
                combo.addItem(loss_title(name), name)
                combo.setItemData(combo.count() - 1, LOSSES.get(name, ""),
                                  Qt.ItemDataRole.ToolTipRole)
        combo.setCurrentIndex(combo.findData(loss))
        combo.setToolTip(f"What training minimises: {LOSSES.get(loss, loss)}")

    def _show_class_weights(self, value, task: str) -> None:
        combo = self.class_weights_combo
        combo.clear()
        combo.addItem("none", None)
        combo.addItem("balanced", "balanced")
        if value is not None and value != "balanced":  # a file's own list: shown as it is
            combo.addItem("as in the file: " + ", ".join(f"{w:g}" for w in value), tuple(value))
        combo.setCurrentIndex(0 if value is None else 1 if value == "balanced" else 2)
        # Off for regression, unless set (then it can be switched off: validation says why).
        combo.setEnabled(task == "classification" or value is not None)

    def mark_refused(self, field: str) -> None:
        if field in self._boxes:
            show_refused(self._boxes[field], True)

    def clear_refused(self) -> None:
        for box in self._boxes.values():
            show_refused(box, False)

    # ---------------------------------------------------------------- edits

    def _on_loss(self, index: int) -> None:
        name = self.loss_combo.itemData(index)
        if self._problem is None or name is None or name == self._problem.loss:
            return
        self.propose(replace(self._problem, loss=name), f"Loss: {loss_title(name)}")

    def _on_class_weights(self, index: int) -> None:
        value = self.class_weights_combo.itemData(index)
        if self._problem is None or index < 0 or value == self._problem.class_weights:
            return
        text = "Class weights: " + (self.class_weights_combo.itemText(index))
        self.propose(replace(self._problem, class_weights=value), text)

    def _on_batch_size(self, value: int) -> None:
        if self._problem is None or self.full_batch_check.isChecked():
            return
        self.propose(replace(self._problem, batch_size=int(value)), f"Batch size: {value}")

    def _on_full_batch(self, checked: bool) -> None:
        if self._problem is None:
            return
        batch = None if checked else int(self.batch_box.value())
        self.propose(replace(self._problem, batch_size=batch),
                     "Full batch" if checked else f"Batch size: {batch}")

    def _on_eval_every(self, value: int) -> None:
        if self._problem is not None:
            self.propose(replace(self._problem, eval_every=int(value)),
                         f"Evaluate every {value} steps")

    def _on_seeds(self, value: int) -> None:
        if self._problem is not None:
            self.propose(replace(self._problem, seeds=int(value)), f"Seeds per run: {value}")

    def _on_sharpness_every(self, value: int) -> None:
        if self._problem is not None:
            text = f"Track sharpness every {value} steps" if value else "Stop tracking sharpness"
            self.propose(replace(self._problem, sharpness_every=int(value)), text)

    def _on_device(self, index: int) -> None:
        name = self.device_combo.itemData(index)
        if self._problem is not None and name:
            self.propose(replace(self._problem, device=name), f"Device: {name}")
