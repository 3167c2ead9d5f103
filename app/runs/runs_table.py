"""The runs table: one row per run (enabled, colour, label, optimizer, params, schedule) with
Add / Duplicate / Remove under it; it owns which run is selected.

Edits made here (tick, rename, recolour, add, duplicate, remove) become a whole new `Lab`,
emitted with an undo description as ``lab_edited``; `RunsTable.set_lab` only shows a lab. The
editor of the selected run is `app.runs.run_editor`; `app.runs.runs_panel` puts the two together.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

from PySide6.QtCore import QEvent, QObject, QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QColorDialog,
    QHBoxLayout,
    QHeaderView,
    QMenu,
    QMessageBox,
    QPushButton,
    QStyle,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.runs.run_text import (
    error_label,
    next_color,
    note_tooltip,
    optimizer_info,
    params_summary,
    schedule_cell,
    show_value,
    unique_label,
)
from app.widgets.tables import row_table, size_columns
from core.lab.branches import describe_branch, rename_run
from core.lab.format import MAX_LABEL_CHARS, MAX_RUNS, Lab, RunSpec
from core.optim.optimizers import OPTIMIZERS

DEFAULT_OPTIMIZER = "adam"

COL_ENABLED, COL_COLOR, COL_LABEL, COL_OPTIMIZER, COL_PARAMS, COL_SCHEDULE = range(6)
_HEADERS = (
    ("", "Enabled: the run takes part in the race"),
    ("", "Colour of the run in every plot (click to change)"),
    ("Label", "The run's name in legends and exports (double-click or F2 to rename)"),
    ("Optimizer", "The optimizer: torch.optim, the zoo (pytorch-optimizer, Schedule-Free) or "
                  "your own class (Add ▸ Optimizer from file…, or drop a .py here)"),
    ("Params", "The hyperparameters set on this run (others keep torch's defaults)"),
    ("Schedule", "The learning-rate schedule"),
)


def pin_colors(lab: Lab) -> tuple[RunSpec, ...]:
    """The runs with their colours made explicit.

    A run without a colour takes the colour of its row; before rows shift (insert, remove),
    pin them so that no run changes colour under the user's eyes.
    """
    return tuple(
        run if run.color else replace(run, color=lab.run_color(i)) for i, run in enumerate(lab.runs)
    )


def row_items(run: RunSpec, color: str, note: str | None, widget: QWidget,
              rl: bool = False) -> list[QTableWidgetItem]:
    """The six cells of ``run``'s row, in column order. ``note``: what went wrong with the run in
    the race shown (a warning sign and the text in the label's tooltip); ``widget`` gives the
    palette and the style; ``rl``: the run is in an rl lab (no schedule: "—")."""
    info = optimizer_info(run.optimizer)
    selectable = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    enabled = QTableWidgetItem()
    enabled.setFlags(selectable | Qt.ItemFlag.ItemIsUserCheckable)
    enabled.setCheckState(Qt.CheckState.Checked if run.enabled else Qt.CheckState.Unchecked)
    enabled.setToolTip("In the race" if run.enabled else "Left out of the race")
    enabled.setData(Qt.ItemDataRole.AccessibleTextRole, "enabled" if run.enabled else "disabled")

    swatch = QTableWidgetItem()
    swatch.setFlags(selectable)
    swatch.setData(Qt.ItemDataRole.DecorationRole, QColor(color))
    swatch.setToolTip(f"{color} (click to change)")
    swatch.setData(Qt.ItemDataRole.AccessibleTextRole, f"colour {color}")

    label = QTableWidgetItem(run.label)
    label.setFlags(selectable | Qt.ItemFlag.ItemIsEditable)
    # A branch says where it comes from (core.lab.branches): "branches from 'Adam' at step 40".
    label.setToolTip(f"{run.label}: {describe_branch(run)}" if run.branch else run.label)
    if note is not None:  # it stopped in the race shown: a warning sign and the forensics
        label.setToolTip(f"{label.toolTip()}\n{note_tooltip(note)}")
        label.setData(Qt.ItemDataRole.DecorationRole, widget.style().standardIcon(
            QStyle.StandardPixmap.SP_MessageBoxWarning))

    optimizer = QTableWidgetItem(info.title if info else run.optimizer)
    optimizer.setFlags(selectable)
    optimizer.setToolTip(
        f"{info.description}\n({info.origin or info.group})" if info and info.group != "torch.optim"
        else info.description if info else f"{run.optimizer}: not loaded yet")

    summary_text = params_summary(run) if info else ""
    summary = QTableWidgetItem(summary_text)
    summary.setFlags(selectable)
    summary.setToolTip(
        "\n".join(f"{k} = {show_value(v)}" for k, v in run.params.items()) or summary_text
    )

    schedule_text, schedule_tip = schedule_cell(run, rl)
    schedule = QTableWidgetItem(schedule_text)
    schedule.setFlags(selectable)
    schedule.setToolTip(schedule_tip)

    items = [enabled, swatch, label, optimizer, summary, schedule]
    if not run.enabled:
        # Dim a left-out run: the disabled text colour of the palette, not a fixed grey.
        dim = widget.palette().color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)
        for item in items[COL_LABEL:]:
            item.setForeground(dim)
    return items


class RunsTable(QWidget):
    """The table of runs and its buttons. See the module docstring."""

    lab_edited = Signal(object, str)  # the new Lab, an undo description
    selection_changed = Signal(int)  # a click or `select_run` picked run i (-1: none)
    branch_requested = Signal(int)  # right-click ▸ Branch on run i

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent, objectName="runsTableArea")
        self._lab: Lab | None = None
        self._selected = -1
        # After Add/Duplicate/Remove: (run count the new lab will have, row to select then).
        self._select_after_edit: tuple[int, int] | None = None
        # Run label → what went wrong in the race shown (divergence forensics), for the tooltip.
        self._run_notes: dict[str, str] = {}
        # Replaceable (tests, or a main window that wants its own dialog).
        self.color_picker: Callable[[QColor, QWidget, str], QColor] = QColorDialog.getColor

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        self.table = self._build_table()
        layout.addWidget(self.table, 1)

        self.add_button = self._button(
            "Add", "addRunButton", "Add a run (Adam with torch's default lr)",
            QIcon.fromTheme(QIcon.ThemeIcon.ListAdd), self.add_run,
        )
        self.duplicate_button = self._button(
            "Duplicate", "duplicateRunButton", "Duplicate the selected run (Ctrl+D)",
            QIcon.fromTheme(QIcon.ThemeIcon.EditCopy), self.duplicate_selected_run,
        )
        self.remove_button = self._button(
            "Remove", "removeRunButton", "Remove the selected run (Delete)",
            QIcon.fromTheme(
                QIcon.ThemeIcon.ListRemove,
                self.style().standardIcon(QStyle.StandardPixmap.SP_TrashIcon),
            ),
            self.remove_selected_run,
        )
        buttons = QHBoxLayout()
        buttons.setSpacing(4)
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.duplicate_button)
        buttons.addWidget(self.remove_button)
        buttons.addStretch(1)
        layout.addLayout(buttons)

        self.table_error = error_label("tableError", self.palette())
        layout.addWidget(self.table_error)
        self._update_buttons()

    def _build_table(self):
        table = row_table(_HEADERS, "runsTable", "Runs")
        table.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.EditKeyPressed
            | QAbstractItemView.EditTrigger.SelectedClicked
        )
        table.setAlternatingRowColors(True)
        table.setIconSize(QSize(14, 14))
        table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 10)
        table.horizontalHeader().setMinimumSectionSize(22)
        narrow = table.fontMetrics().height() + 12
        size_columns(table, (
            (COL_ENABLED, QHeaderView.ResizeMode.Fixed, narrow),
            (COL_COLOR, QHeaderView.ResizeMode.Fixed, narrow),
            (COL_LABEL, QHeaderView.ResizeMode.Interactive, 92),
            (COL_OPTIMIZER, QHeaderView.ResizeMode.Interactive, 66),
            (COL_PARAMS, QHeaderView.ResizeMode.Stretch, 0),
            (COL_SCHEDULE, QHeaderView.ResizeMode.Interactive, 62),
        ))
        table.setMinimumHeight(table.verticalHeader().defaultSectionSize() * 3 + 30)
        table.itemChanged.connect(self._on_item_changed)
        table.cellClicked.connect(self._on_cell_clicked)
        table.itemSelectionChanged.connect(self._on_table_selection)
        table.installEventFilter(self)
        table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        table.customContextMenuRequested.connect(self._on_context_menu)
        return table

    def _button(self, text, name, tip, icon, slot) -> QPushButton:
        button = QPushButton(icon, text, objectName=name)
        button.setToolTip(tip)
        button.setAutoDefault(False)
        button.clicked.connect(slot)
        return button

    # ================================================================ public API

    def lab(self) -> Lab | None:
        return self._lab

    def selected_run(self) -> int:
        return self._selected

    def focus_chain(self) -> list[QWidget]:
        """The table, then its buttons: the start of the panel's tab order."""
        return [self.table, self.add_button, self.duplicate_button, self.remove_button]

    def set_lab(self, lab: Lab) -> int:
        """Show ``lab`` and return the run now selected: the same where possible, a run just
        added or duplicated, -1 for none. Emits nothing."""
        self._lab = lab
        count = len(lab.runs)
        target = self._selected
        if self._select_after_edit is not None:
            expected_count, row = self._select_after_edit
            if expected_count == count:
                target = row
            self._select_after_edit = None
        if count == 0:
            target = -1
        else:
            target = min(max(target, 0), count - 1)

        self._fill_table(lab)
        self._set_table_row(target)
        self._selected = target
        self._update_buttons()
        return target

    def select_run(self, index: int) -> None:
        """Select run ``index`` (-1: none) as if the user clicked its row."""
        if self._lab is None:
            return
        if not -1 <= index < len(self._lab.runs):
            raise IndexError(f"no run {index}; the lab has {len(self._lab.runs)}")
        if index == self._selected:
            return
        self._set_table_row(index)
        self._change_selection(index)

    def show_run_notes(self, notes: Mapping[str, str]) -> None:
        """Mark runs (by label) with what went wrong in the race, e.g. a divergence's
        forensics: a warning sign on the label and the text in its tooltip. {} clears."""
        if not notes and not self._run_notes:
            return  # nothing shown, nothing to show: leave the table (and its editing) alone
        self._run_notes = dict(notes)
        if self._lab is not None:
            self._fill_table(self._lab)
            self._set_table_row(self._selected)

    def hide_error(self) -> None:
        """An edit went out (here or in the editor): a refused rename's message is old news."""
        self.table_error.hide()

    # ---------------------------------------------------------------- actions (also buttons)

    def add_run(self) -> None:
        lab = self._lab
        if lab is None or len(lab.runs) >= MAX_RUNS:
            return
        info = OPTIMIZERS[DEFAULT_OPTIMIZER]
        run = RunSpec(
            label=unique_label(info.title, self._labels()),
            optimizer=info.name,
            params={"lr": info.defaults()["lr"]},
            color=next_color(lab),
        )
        self._select_after_edit = (len(lab.runs) + 1, len(lab.runs))
        self._emit(replace(lab, runs=lab.runs + (run,)), "Add run")

    def duplicate_selected_run(self) -> None:
        lab, i = self._lab, self._selected
        if lab is None or i < 0 or len(lab.runs) >= MAX_RUNS:
            return
        original = lab.runs[i]
        copy = replace(
            original,
            label=unique_label(original.label, self._labels()),
            params=dict(original.params),
            color=next_color(lab),  # a twin in the same colour would be invisible in the plots
        )
        pinned = pin_colors(lab)
        runs = pinned[: i + 1] + (copy,) + pinned[i + 1:]
        self._select_after_edit = (len(runs), i + 1)
        self._emit(replace(lab, runs=runs), "Duplicate run")

    def remove_selected_run(self) -> None:
        lab, i = self._lab, self._selected
        if lab is None or i < 0:
            return
        label = lab.runs[i].label
        pinned = pin_colors(lab)
        runs = pinned[:i] + pinned[i + 1:]
        # Select the run that moves into this row, or the new last one.
        self._select_after_edit = (len(runs), min(i, len(runs) - 1))
        self._emit(replace(lab, runs=runs), f"Remove run '{label}'")

    # ================================================================ showing

    def _labels(self) -> set[str]:
        return {run.label for run in self._lab.runs} if self._lab else set()

    def _fill_table(self, lab: Lab) -> None:
        table = self.table
        table.blockSignals(True)
        try:
            table.setRowCount(len(lab.runs))
            for row, run in enumerate(lab.runs):
                note = self._run_notes.get(run.label)
                for column, item in enumerate(row_items(run, lab.run_color(row), note, self,
                                                           lab.problem.kind == "rl")):
                    table.setItem(row, column, item)
        finally:
            table.blockSignals(False)

    def _set_table_row(self, row: int) -> None:
        self.table.blockSignals(True)
        try:
            if row < 0:
                self.table.clearSelection()
                self.table.setCurrentCell(-1, -1)
            else:
                column = max(self.table.currentColumn(), COL_LABEL)
                self.table.setCurrentCell(row, column)
                self.table.selectRow(row)
        finally:
            self.table.blockSignals(False)

    def _update_buttons(self) -> None:
        count = len(self._lab.runs) if self._lab else 0
        has_lab = self._lab is not None
        full = count >= MAX_RUNS
        self.add_button.setEnabled(has_lab and not full)
        self.duplicate_button.setEnabled(has_lab and not full and self._selected >= 0)
        self.remove_button.setEnabled(has_lab and self._selected >= 0)
        limit = f" (a lab holds at most {MAX_RUNS} runs)" if full else ""
        self.add_button.setToolTip(f"Add a run (Adam with torch's default lr){limit}")
        self.duplicate_button.setToolTip(f"Duplicate the selected run (Ctrl+D){limit}")

    # ================================================================ edits

    def _emit(self, lab: Lab, description: str) -> None:
        if self._lab is None or lab == self._lab:
            self._select_after_edit = None
            return
        self.hide_error()
        self.lab_edited.emit(lab, description)

    def _replace_run(self, index: int, run: RunSpec, description: str) -> None:
        self._emit(self._lab.with_run(index, run), description)

    def _on_table_selection(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        self._change_selection(rows[0].row() if rows else -1)

    def _change_selection(self, index: int) -> None:
        if index == self._selected:
            return
        self._selected = index
        self._update_buttons()
        self.selection_changed.emit(index)

    def _on_item_changed(self, item: QTableWidgetItem) -> None:
        if self._lab is None:
            return
        row, column = item.row(), item.column()
        run = self._lab.runs[row]
        if column == COL_ENABLED:
            enabled = item.checkState() == Qt.CheckState.Checked
            if enabled != run.enabled:
                what = "Enable" if enabled else "Disable"
                self._replace_run(row, replace(run, enabled=enabled), f"{what} run '{run.label}'")
        elif column == COL_LABEL:
            self._rename(row, item.text())

    def _rename(self, row: int, text: str) -> None:
        run = self._lab.runs[row]
        label = text.strip()
        if label == run.label:
            self._restore_label(row)  # e.g. only spaces were added
            return
        problem = ""
        if not label:
            problem = "A run needs a label."
        elif len(label) > MAX_LABEL_CHARS:
            problem = f"A label has at most {MAX_LABEL_CHARS} characters."
        elif label in self._labels():
            problem = f"Another run is already called '{label}'; labels must be unique."
        if problem:
            self._restore_label(row)
            self.table_error.setText(problem)
            self.table_error.show()
            return
        # rename_run: the branches of this run follow the new name.
        self._emit(rename_run(self._lab, run.label, label), f"Rename run '{run.label}' to '{label}'")

    def _restore_label(self, row: int) -> None:
        self.table.blockSignals(True)
        self.table.item(row, COL_LABEL).setText(self._lab.runs[row].label)
        self.table.blockSignals(False)

    def _on_context_menu(self, pos) -> None:
        """Right-click a run: branch from it at the step the timeline shows
        (app/shell/timeline_slider.py)."""
        row = self.table.rowAt(pos.y())
        if row < 0 or self._lab is None:
            return
        self.select_run(row)
        menu = QMenu(self)
        menu.setToolTipsVisible(True)
        action = menu.addAction("Branch at the step shown…")
        action.setToolTip("A new run that replays this one up to the step shown, then goes on "
                          "with the settings you give it (Ctrl+B)")
        action.triggered.connect(lambda: self.branch_requested.emit(row))
        if self._run_notes.get(self._lab.runs[row].label):
            why = menu.addAction("Why it stopped…")
            why.setToolTip("How this run ended in the race shown, with the traceback when its "
                           "optimizer failed")
            why.triggered.connect(lambda: self.show_stop_details(row))
        menu.popup(self.table.viewport().mapToGlobal(pos))

    def show_stop_details(self, row: int) -> QMessageBox | None:
        """A window with how run ``row`` stopped in the race shown: the reason, the forensics
        and, for an optimizer that failed, its whole traceback (under Show Details). None when
        the run did not stop."""
        note = self._run_notes.get(self._lab.runs[row].label) if self._lab else None
        if not note:
            return None
        summary, _, traceback = note.partition("\n\nTraceback")
        box = QMessageBox(QMessageBox.Icon.Warning, "Why it stopped",
                          f"{self._lab.runs[row].label}: {summary}", parent=self)
        if traceback:
            box.setDetailedText("Traceback" + traceback)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()  # window-modal, not a nested event loop: the race goes on behind it
        return box

    def _on_cell_clicked(self, row: int, column: int) -> None:
        if column == COL_COLOR:
            self._pick_color(row)

    def _pick_color(self, row: int) -> None:
        lab = self._lab
        if lab is None or not 0 <= row < len(lab.runs):
            return
        run = lab.runs[row]
        chosen = self.color_picker(QColor(lab.run_color(row)), self, f"Colour of '{run.label}'")
        if not chosen.isValid():
            return  # cancelled
        color = chosen.name(QColor.NameFormat.HexRgb)  # "#rrggbb"
        if color.lower() != lab.run_color(row).lower() or run.color is None:
            self._replace_run(row, replace(run, color=color), f"Change colour of '{run.label}'")

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt override)
        """Keys of the table itself (the label editor, a child, gets its own keys first).

        Delete removes the run only here, never from a spin box or while renaming. Ctrl+D is
        also a panel-wide shortcut (app.runs.runs_panel); when that fires, this key press never
        arrives, so the two cannot both act.
        """
        if watched is self.table and event.type() == QEvent.Type.KeyPress:
            key, modifiers = event.key(), event.modifiers()
            if key == Qt.Key.Key_Delete and modifiers == Qt.KeyboardModifier.NoModifier:
                self.remove_selected_run()
                return True
            if key == Qt.Key.Key_D and modifiers == Qt.KeyboardModifier.ControlModifier:
                self.duplicate_selected_run()
                return True
            # Enter or Space on the colour cell opens the colour dialog: the keyboard's "click".
            keys = (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space)
            if key in keys and self.table.currentColumn() == COL_COLOR:
                self._pick_color(self.table.currentRow())
                return True
        return super().eventFilter(watched, event)
