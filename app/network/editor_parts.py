"""What the three sections of the network problem panel share (app/network/problem_panel.py).

`ProblemSection` is the base of the data set, training and layer editors: a group box that shows
a draft `NetworkProblem` and, on a user's edit, proposes an edited copy through ``edited``
(never changing a lab itself), with a red error label for the refusals of its own fields. Also
here: the compact form and row layouts the sections use, the wording of counts and shapes, and
the numbers a lab value means for an editor to show.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFormLayout, QGroupBox, QHBoxLayout, QLabel, QWidget

from app.widgets.hyperparam_form import error_color
from core.errors import LabError
from core.lab.format import NetworkProblem


class ProblemSection(QGroupBox):
    """A section of the network problem panel; subclasses build its widgets and show a draft.

    ``edited(problem, description, fit_to_data)`` proposes ``problem`` (an edited copy of the
    draft last shown) as the new draft, with its undo description; ``fit_to_data`` asks the panel
    to refit the loss and network to the (new) data first. Nothing is proposed while the section
    is showing a draft, or before it has shown one.
    """

    edited = Signal(object, str, bool)

    def __init__(self, title: str, object_name: str, error_name: str,
                 parent: QWidget | None = None):
        super().__init__(title, parent, objectName=object_name)
        self._problem: NetworkProblem | None = None
        self._showing = False
        self.error_label = QLabel(objectName=error_name)
        self.error_label.setWordWrap(True)
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label.setStyleSheet(f"color: {error_color(self.palette())};")
        self.error_label.hide()

    def propose(self, problem: NetworkProblem, description: str, fit_to_data: bool = False) -> None:
        if self._problem is not None and not self._showing:
            self.edited.emit(problem, description, fit_to_data)

    def show_error(self, error: LabError) -> None:
        """Say ``error`` in red under the section and mark the field that holds the value."""
        label = self.error_label
        label.setText(f"{error.field}: {error.message}" if error.field else error.message)
        label.setToolTip(str(error))
        label.show()
        self.mark_refused(error.field)

    def hide_errors(self) -> None:
        self.error_label.hide()
        self.error_label.clear()
        self.clear_refused()

    def mark_refused(self, field: str) -> None:
        """Mark the editor of ``field`` until a valid value replaces it (subclasses)."""

    def clear_refused(self) -> None:
        """Unmark every editor of the section (subclasses)."""


def section_form(group: QGroupBox) -> QFormLayout:
    """A compact label-and-field layout for a section made for a ~370 px dock."""
    form = QFormLayout(group)
    form.setContentsMargins(6, 6, 6, 6)
    form.setHorizontalSpacing(8)
    form.setVerticalSpacing(4)
    form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
    form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.DontWrapRows)
    return form


def widget_row(*widgets: QWidget, stretch_first: bool = True) -> QWidget:
    """Widgets side by side in one form field; the first takes the spare width."""
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(6)
    for i, widget in enumerate(widgets):
        layout.addWidget(widget, 1 if (i == 0 and stretch_first) else 0)
    return row


def shape_text(shape: Sequence[int]) -> str:
    return "×".join(str(d) for d in shape)


def plural(count: int, word: str, plural_word: str = "") -> str:
    return f"{count:,} {word}" if count == 1 else f"{count:,} {plural_word or word + 's'}"


def as_int(value: Any, fallback: int) -> int:
    """``value`` as an int for an editor to show, or ``fallback`` (validation names the field)."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return fallback


def as_float(value: Any, fallback: float) -> float:
    """``value`` as a float for an editor to show, or ``fallback`` (validation names the field)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return fallback
