"""The problem editor: which 2-D function, where to start, how many steps, which seed.

Like every panel it edits nothing in place: each change is emitted as a new `Lab` with a short
description, and the document makes it an undoable step. A typed expression is parsed by the
whitelist parser in core.problems.expression; a mistake is shown in red with its column, and
nothing is emitted until the text parses. A start point, steps or a seed out of range is refused the same
way, in red with the allowed range and the box marked until a valid value replaces it (never
silently reverted or cut to fit).
"""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QWidget,
)

from app.widgets.hyperparam_form import error_color, show_refused
from app.widgets.number_boxes import ScientificSpinBox, WholeNumberBox, typed_whole
from core.errors import LabError
from core.lab.format import MAX_COORD, MAX_STEPS, FunctionProblem, Lab, validate_lab
from core.problems.datasets.spec import MAX_SEED
from core.problems.functions import FUNCTIONS, get_function

CUSTOM = "__expression__"


class ProblemPanel(QWidget):
    lab_edited = Signal(object, str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("problemPanel")
        self._lab: Lab | None = None
        form = QFormLayout(self)
        form.setContentsMargins(4, 4, 4, 4)

        self.function_combo = QComboBox(objectName="functionCombo")
        for name, objective in FUNCTIONS.items():
            self.function_combo.addItem(objective.title, name)
            self.function_combo.setItemData(
                self.function_combo.count() - 1,
                f"{objective.formula}\n{objective.description}",
                Qt.ItemDataRole.ToolTipRole,
            )
        self.function_combo.addItem("Custom expression…", CUSTOM)
        self.function_combo.setToolTip("The 2-D function every run minimises")
        self.function_combo.activated.connect(self._on_function_chosen)
        form.addRow("Function", self.function_combo)

        self.expression_edit = QLineEdit(objectName="expressionEdit")
        self.expression_edit.setPlaceholderText("e.g. (1-x)**2 + 100*(y-x**2)**2")
        self.expression_edit.setToolTip(
            "A formula in x and y: numbers, + - * / ** ( ), and functions such as sin, cos, "
            "exp, log, sqrt, abs, tanh; constants pi and e. Press Enter to apply."
        )
        self.expression_edit.returnPressed.connect(self._apply_expression)
        apply = QPushButton("Apply", objectName="applyExpressionButton")
        apply.clicked.connect(self._apply_expression)
        row = QHBoxLayout()
        row.addWidget(self.expression_edit, 1)
        row.addWidget(apply)
        self.expression_row = QWidget()
        self.expression_row.setLayout(row)
        row.setContentsMargins(0, 0, 0, 0)
        form.addRow("f(x, y) =", self.expression_row)
        self._form = form
        self.error_label = QLabel(objectName="expressionError")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #ff6b6b;")
        self.error_label.hide()
        form.addRow(self.error_label)
        # Not an error: why a typed formula starts where it does (core: Objective.start_note).
        self.start_note = QLabel(objectName="startNote")
        self.start_note.setWordWrap(True)
        self.start_note.hide()
        form.addRow(self.start_note)

        self.start_x = self._coordinate_box("startX", "x of the start point (all runs start here)")
        self.start_y = self._coordinate_box("startY", "y of the start point (all runs start here)")
        start_row = QHBoxLayout()
        start_row.setContentsMargins(0, 0, 0, 0)
        start_row.addWidget(self.start_x)
        start_row.addWidget(self.start_y)
        form.addRow("Start", start_row)

        self.steps_box = WholeNumberBox(objectName="stepsBox")
        self.steps_box.set_allowed(1, MAX_STEPS)
        self.steps_box.setSingleStep(100)
        self.steps_box.setToolTip("How many optimizer steps each run takes")
        self.steps_box.editingFinished.connect(self._on_steps)
        # A double spin box: QSpinBox stops at 2³¹−1 (3000000000 lost its last digit), seeds go
        # to 2³²−1. Beyond that, or 1.5, is refused in red.
        self.seed_box = ScientificSpinBox()
        self.seed_box.setObjectName("seedBox")
        self.seed_box.set_allowed(0, MAX_SEED)
        self.seed_box.setSingleStep(1)
        self.seed_box.setToolTip("Seed of the random generator: same seed, same numbers")
        self.seed_box.editingFinished.connect(self._on_seed)
        steps_row = QHBoxLayout()
        steps_row.setContentsMargins(0, 0, 0, 0)
        steps_row.addWidget(self.steps_box)
        steps_row.addWidget(QLabel("Seed"))
        steps_row.addWidget(self.seed_box)
        form.addRow("Steps", steps_row)
        self.settings_error = QLabel(objectName="settingsError")
        self.settings_error.setWordWrap(True)
        self.settings_error.setStyleSheet(f"color: {error_color(self.palette())};")
        self.settings_error.hide()
        form.addRow(self.settings_error)

    def _coordinate_box(self, name: str, tip: str) -> ScientificSpinBox:
        # Any number can be typed and is kept as typed (no rounding to a few decimals); one
        # beyond ±MAX_COORD is refused in red, where a plain box dropped the extra digit.
        box = ScientificSpinBox()
        box.setObjectName(name)
        box.set_allowed(-MAX_COORD, MAX_COORD)
        box.setSingleStep(0.1)
        box.setToolTip(tip)
        box.editingFinished.connect(self._on_start)
        return box

    # -- showing the lab ---------------------------------------------------------------------

    def set_lab(self, lab: Lab) -> None:
        self._lab = lab
        widgets = (self.function_combo, self.start_x, self.start_y, self.steps_box, self.seed_box)
        for w in widgets:
            w.blockSignals(True)
        function = lab.problem.function
        if isinstance(function, str):
            self.function_combo.setCurrentIndex(self.function_combo.findData(function))
            self._show_expression(False)
        else:
            self.function_combo.setCurrentIndex(self.function_combo.findData(CUSTOM))
            self._show_expression(True)
            self.expression_edit.setText(str(function.get("expression", "")))
        self.error_label.hide()
        start = self.start_point(lab)
        self.start_x.setValue(start[0])
        self.start_y.setValue(start[1])
        self.steps_box.setValue(lab.steps)
        self.seed_box.setValue(lab.seed)
        self._settings_refused(None)
        for w in widgets:
            w.blockSignals(False)

    def _show_expression(self, visible: bool) -> None:
        self._form.setRowVisible(self.expression_row, visible)
        if not visible:
            self.start_note.hide()

    @staticmethod
    def start_point(lab: Lab) -> tuple[float, float]:
        if lab.problem.start is not None:
            return lab.problem.start
        return get_function(lab.problem.function).start

    # -- edits -------------------------------------------------------------------------------

    def _emit(self, lab: Lab, description: str) -> None:
        if self._lab is not None and lab != self._lab:
            self.lab_edited.emit(lab, description)

    def _on_function_chosen(self, index: int) -> None:
        if self._lab is None:
            return
        name = self.function_combo.itemData(index)
        if name == CUSTOM:
            self._show_expression(True)
            self.expression_edit.setFocus()
            return
        self._show_expression(False)
        self.error_label.hide()
        # A new function starts from its own recommended point.
        problem = FunctionProblem(function=name, start=None)
        self._emit(replace(self._lab, problem=problem), f"Function: {FUNCTIONS[name].title}")

    def _apply_expression(self) -> None:
        if self._lab is None:
            return
        text = self.expression_edit.text()
        spec = {"expression": text}
        try:
            objective = get_function(spec, field="expression")
        except LabError as exc:
            self.error_label.setText(exc.message if exc.field else str(exc))
            self.error_label.setToolTip(str(exc))
            self.error_label.show()
            return
        self.error_label.hide()
        self.start_note.setText(objective.start_note)
        self.start_note.setVisible(bool(objective.start_note))
        problem = FunctionProblem(function=spec, start=objective.start)
        self._emit(replace(self._lab, problem=problem), f"Expression: {text}")

    def _on_start(self) -> None:
        if self._lab is None:
            return
        start = (self.start_x.value(), self.start_y.value())
        if start == tuple(self.start_point(self._lab)):
            if self.settings_error.text().startswith("problem.start"):
                self._settings_refused(None)  # typed back to the lab's own start
            return
        problem = replace(self._lab.problem, start=start)
        self._emit_checked(replace(self._lab, problem=problem), "Move start point")

    def _on_steps(self) -> None:
        if self._lab is not None:
            self._emit_checked(replace(self._lab, steps=self.steps_box.value()), "Change steps")

    def _on_seed(self) -> None:
        if self._lab is not None:
            seed = typed_whole(self.seed_box.value())
            self._emit_checked(replace(self._lab, seed=seed), "Change seed")

    def _emit_checked(self, lab: Lab, description: str) -> None:
        """Emit ``lab`` when it validates; otherwise say why (as a lab file would be told)."""
        try:
            validate_lab(lab)
        except LabError as exc:
            self._settings_refused(exc)
            return
        self._settings_refused(None)
        self._emit(lab, description)

    def _settings_refused(self, error: LabError | None) -> None:
        """Show (or, with None, clear) a refused start, steps or seed: the message and the
        marked box."""
        boxes = {"steps": self.steps_box, "seed": self.seed_box,
                 "problem.start[0]": self.start_x, "problem.start[1]": self.start_y}
        for field, box in boxes.items():
            show_refused(box, error is not None and error.field == field)
        if error is None:
            self.settings_error.hide()
        else:
            self.settings_error.setText(f"{error.field}: {error.message}")
            self.settings_error.show()
