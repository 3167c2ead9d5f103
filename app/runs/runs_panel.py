"""The runs panel: the table of racers and, below it, the editor of the selected run.

What lives where: the table with Add / Duplicate / Remove and the selection in
`app.runs.runs_table`, the editor (optimizer, update rule, schedule, lr preview, training
controls) in `app.runs.run_editor`, the lr preview in `app.runs.lr_preview`, and the words they
say about runs in `app.runs.run_text`. This module puts the two halves together and is what the
main window talks to.

Like every panel it edits nothing in place. Each change becomes a whole new `Lab`, emitted with a
short undo description (``lab_edited(lab, "Change Adam lr to 0.01")``); the document pushes it on
the undo stack and calls `RunsPanel.set_lab` back. `set_lab` only refreshes widgets, and never
emits ``lab_edited``.

Layout, top to bottom (made for a ~360 px dock on a 1280×800 screen): the runs table with
Add / Duplicate / Remove, then a scrollable editor: optimizer, its hyperparameters, its update
rule, the schedule, its hyperparameters and a small live preview of the lr over the run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QKeySequence, QShortcut
from PySide6.QtWidgets import QSplitter, QVBoxLayout, QWidget

from app.runs.run_editor import RunEditor
from app.runs.runs_table import RunsTable
from app.widgets.layouts import ColumnScrollArea
from core.lab.format import Lab

EDITOR_KEEPS = 360  # px the run editor keeps when the table grows to show every run


class RunsPanel(QWidget):
    """The runs table and the editor of the selected run. See the module docstring."""

    lab_edited = Signal(object, str)  # the new Lab, an undo description
    selected_run_changed = Signal(int)  # index into lab.runs, -1 for none
    branch_requested = Signal(int)  # right-click ▸ Branch: the main window's timeline branches it

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("runsPanel")
        self.runs_table = RunsTable()
        self.runs_table.lab_edited.connect(self.lab_edited)
        self.runs_table.selection_changed.connect(self._on_selection_changed)
        self.runs_table.branch_requested.connect(self.branch_requested)
        self.editor = RunEditor()
        self.editor.lab_edited.connect(self._on_editor_edit)
        # The widgets the main window, its timeline and the tests reach through the panel.
        self.table = self.runs_table.table
        self.editor_title = self.editor.title
        self.optimizer_combo = self.editor.optimizer_combo
        self.schedule_combo = self.editor.schedule_combo
        self.lr_preview_curve = self.editor.lr_preview.curve

        # Asks the dock for the editor's width: a narrower dock cut the editor's right edge.
        scroll = ColumnScrollArea(object_name="runEditorScroll")
        scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # its children take focus, not the frame
        scroll.setWidget(self.editor)

        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        splitter = QSplitter(Qt.Orientation.Vertical, objectName="runsSplitter")
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(self.runs_table)
        splitter.addWidget(scroll)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([170, 590])
        outer.addWidget(splitter)
        self.splitter = splitter
        self._fitted_rows = 0  # the row count the table was last grown for

        # Panel-wide, so that Ctrl+D duplicates from the editor too (the table's own key
        # handling in app.runs.runs_table covers the table).
        QShortcut(
            QKeySequence(Qt.Modifier.CTRL | Qt.Key.Key_D),
            self,
            self.duplicate_selected_run,
            context=Qt.ShortcutContext.WidgetWithChildrenShortcut,
        )
        self._show_editor(-1)

    @property
    def color_picker(self) -> Callable[[QColor, QWidget, str], QColor]:
        """The colour dialog of the table's colour cells (replaceable: tests, a main window)."""
        return self.runs_table.color_picker

    @color_picker.setter
    def color_picker(self, picker: Callable[[QColor, QWidget, str], QColor]) -> None:
        self.runs_table.color_picker = picker

    # ================================================================ public API

    def lab(self) -> Lab | None:
        """The lab last given to `set_lab` (what the panel shows)."""
        return self.runs_table.lab()

    def set_lab(self, lab: Lab) -> None:
        """Show ``lab``; keep the selected run where possible. Never emits ``lab_edited``.

        Emits ``selected_run_changed`` only when the selected index really changes (the lab lost
        the selected run, or a run was just added and becomes selected).
        """
        previous = self.runs_table.selected_run()
        target = self.runs_table.set_lab(lab)
        self._show_editor(target)
        self._fit_table_rows()
        if target != previous:
            self.selected_run_changed.emit(target)

    def selected_run(self) -> int:
        return self.runs_table.selected_run()

    def show_run_notes(self, notes: Mapping[str, str]) -> None:
        """Mark runs (by label) with what went wrong in the race, e.g. a divergence's
        forensics: a warning sign on the label and the text in its tooltip. {} clears."""
        self.runs_table.show_run_notes(notes)

    def select_run(self, index: int) -> None:
        """Select run ``index`` (-1: none) as if the user clicked its row."""
        self.runs_table.select_run(index)

    def add_run(self) -> None:
        self.runs_table.add_run()

    def duplicate_selected_run(self) -> None:
        self.runs_table.duplicate_selected_run()

    def remove_selected_run(self) -> None:
        self.runs_table.remove_selected_run()

    # ================================================================ the two halves

    def _fit_table_rows(self) -> None:
        """Grow the table to show every run where the column has room (a 1920×1080 window
        showed 5 of 6 runs with a scroll bar over a blank band), the editor keeping at least
        `EDITOR_KEEPS` px; never shrinks what the user dragged open."""
        table = self.table
        sizes = self.splitter.sizes()
        total = sum(sizes)
        rows = table.rowCount()
        if total <= 0 or rows == self._fitted_rows and sizes[0] > 0:
            return
        chrome = self.runs_table.height() - table.height()  # buttons, error line
        needed = (table.horizontalHeader().sizeHint().height() + 2 * table.frameWidth()
                  + rows * table.verticalHeader().defaultSectionSize() + max(0, chrome))
        top = min(needed, total - EDITOR_KEEPS)
        if top > sizes[0]:
            self.splitter.setSizes([top, total - top])
        self._fitted_rows = rows

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._fitted_rows = 0  # a new height: room for more rows, perhaps
        self._fit_table_rows()

    def _on_selection_changed(self, index: int) -> None:
        self._show_editor(index)
        self.selected_run_changed.emit(index)

    def _on_editor_edit(self, lab: Lab, description: str) -> None:
        self.runs_table.hide_error()
        self.lab_edited.emit(lab, description)

    def _show_editor(self, index: int) -> None:
        self.editor.show_run(self.runs_table.lab(), index)
        # Table, its buttons, then the editor top to bottom (the editor's forms were rebuilt).
        chain = self.runs_table.focus_chain() + self.editor.focus_chain()
        for first, second in zip(chain, chain[1:]):
            QWidget.setTabOrder(first, second)
