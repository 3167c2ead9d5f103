"""The runs editor: the table of racers and, below it, the editor of the selected run.

Like every panel it edits nothing in place. Each change becomes a whole new `Lab`, emitted with a
short undo description (``lab_edited(lab, "Change Adam lr to 0.01")``); the document pushes it on
the undo stack and calls `RunsPanel.set_lab` back. `set_lab` only refreshes widgets, and never
emits ``lab_edited``.

Every value a user types is checked by the same registry code that checks lab files
(`validate_optimizer_params`, `validate_schedule_params`), so the GUI cannot build a lab that the
file format would refuse. A refused edit is explained in red under its form and emits nothing; the
refused value stays on screen so the user can fix the *other* field of a cross-field rule
(tick nesterov, then raise momentum) and have both applied at once.

Layout, top to bottom (made for a ~360 px dock on a 1280×800 screen): the runs table with
Add / Duplicate / Remove, then a scrollable editor: optimizer, its hyperparameters, its update
rule, the schedule, its hyperparameters and a small live preview of the lr over the run.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from html import escape
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFontDatabase, QIcon, QKeySequence, QPalette, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QColorDialog,
    QComboBox,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QScrollArea,
    QSplitter,
    QStyle,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.widgets.hyperparam_form import HyperParamForm, error_color, format_float, same_value
from app.widgets.tables import header_table
from core.errors import LabError
from core.lab.branches import describe_branch
from core.lab.controls import TRAINING_CONTROLS
from core.lab.format import MAX_LABEL_CHARS, MAX_RUNS, RUN_COLORS, Lab, RunSpec, ScheduleSpec
from core.optim.hyperparams import HyperParam, validate_params
from core.optim.optimizers import OPTIMIZERS, OptimizerInfo, validate_optimizer_params
from core.optim.schedules import (
    SCHEDULES,
    preview,
    resolve_schedule_params,
    validate_schedule_params,
)

DEFAULT_OPTIMIZER = "adam"
NO_SCHEDULE = "constant"  # the registry's "constant" is stored as RunSpec.schedule = None

# Beyond this many steps the preview is skipped: core's preview steps the real torch scheduler
# (~0.1 ms a step), and it runs on the GUI thread.
PREVIEW_MAX_STEPS = 5000
PREVIEW_HEIGHT = 110

COL_ENABLED, COL_COLOR, COL_LABEL, COL_OPTIMIZER, COL_PARAMS, COL_SCHEDULE = range(6)
_HEADERS = (
    ("", "Enabled: the run takes part in the race"),
    ("", "Colour of the run in every plot (click to change)"),
    ("Label", "The run's name in legends and exports (double-click or F2 to rename)"),
    ("Optimizer", "The torch.optim optimizer"),
    ("Params", "The hyperparameters set on this run (others keep torch's defaults)"),
    ("Schedule", "The learning-rate schedule"),
)

# Short names for the table's summary column; the full names are in the cell's tooltip.
_SHORT_NAMES = {"betas": "β", "weight_decay": "wd", "momentum": "mom"}

_NUMBERED = re.compile(r"^(.*?)(?: (\d+))?$")


def usable_optimizers(network: bool = False) -> list[OptimizerInfo]:
    """Optimizers the problem can use: Muon (weight matrices only) only on networks."""
    return [info for info in OPTIMIZERS.values() if network or info.min_param_ndim <= 1]


def unique_label(base: str, taken: set[str]) -> str:
    """``base`` if free, else ``"base 2"``, ``"base 3"``, …; a trailing number is replaced."""
    base = base.strip() or "Run"
    if base not in taken:
        return base
    stem = _NUMBERED.match(base).group(1) or base
    n = 2
    while f"{stem} {n}" in taken:
        n += 1
    return f"{stem} {n}"


def next_color(lab: Lab) -> str:
    """The first palette colour no run shows yet (the cycle goes on when all are used)."""
    used = {lab.run_color(i).lower() for i in range(len(lab.runs))}
    for color in RUN_COLORS:
        if color.lower() not in used:
            return color
    return RUN_COLORS[len(lab.runs) % len(RUN_COLORS)]


def show_value(value: Any) -> str:
    """A value as the summary and undo text show it: ``0.001``, ``(0.9, 0.999)``, ``auto``."""
    if value is None:
        return "auto"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return format_float(value)
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(show_value(v) for v in value) + ")"
    return str(value)


def run_lr(run: RunSpec) -> float:
    """The run's learning rate: its own, or the optimizer's default."""
    lr = run.params.get("lr")
    if lr is None:
        lr = OPTIMIZERS[run.optimizer].defaults().get("lr", 0.0)
    return float(lr)


def params_summary(run: RunSpec) -> str:
    """``lr=0.001, β=(0.9, 0.99)``: the lr (always), then what the run sets explicitly."""
    parts = [f"lr={show_value(run_lr(run))}"]
    for name, value in run.params.items():
        if name == "lr":
            continue
        if isinstance(value, bool):
            if value:
                parts.append(name)  # "nesterov" reads better than "nesterov=on"
            continue
        parts.append(f"{_SHORT_NAMES.get(name, name)}={show_value(value)}")
    return ", ".join(parts)


def schedule_name(run: RunSpec) -> str:
    """The registry name ("cosine", "constant"): short enough for the table's last column."""
    return run.schedule.name if run.schedule else NO_SCHEDULE


def _field_name(error: LabError, prefix: str) -> str:
    """``params.betas[1]`` → ``betas[1]``: the form belongs to one run, the prefix is noise."""
    field = error.field
    return field[len(prefix) + 1:] if field.startswith(prefix + ".") else field


def _drop_auto(params: Mapping[str, Any]) -> dict:
    """An "auto" (None) value is stored as an absent key: the lab file keeps only what is set."""
    return {k: v for k, v in params.items() if v is not None}


def _pin_colors(lab: Lab) -> tuple[RunSpec, ...]:
    """The runs with their colours made explicit.

    A run without a colour takes the colour of its row; before rows shift (insert, remove),
    pin them so that no run changes colour under the user's eyes.
    """
    return tuple(
        run if run.color else replace(run, color=lab.run_color(i)) for i, run in enumerate(lab.runs)
    )


class _PreviewPlot(pg.PlotWidget):
    """The lr preview: small, not interactive, and wheel events scroll the panel instead."""

    def wheelEvent(self, event) -> None:  # noqa: N802 (Qt override)
        event.ignore()


class RunsPanel(QWidget):
    """The runs table and the editor of the selected run. See the module docstring."""

    lab_edited = Signal(object, str)  # the new Lab, an undo description
    selected_run_changed = Signal(int)  # index into lab.runs, -1 for none
    branch_requested = Signal(int)  # right-click ▸ Branch: the main window's timeline branches it

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("runsPanel")
        self._lab: Lab | None = None
        self._selected = -1
        # After Add/Duplicate/Remove: (run count the new lab will have, row to select then).
        self._select_after_edit: tuple[int, int] | None = None
        self._preview_key: tuple | None = None
        # Run label → what went wrong in the race shown (divergence forensics), for the tooltip.
        self._run_notes: dict[str, str] = {}
        # Replaceable (tests, or a main window that wants its own dialog).
        self.color_picker: Callable[[QColor, QWidget, str], QColor] = QColorDialog.getColor

        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        splitter = QSplitter(Qt.Orientation.Vertical, objectName="runsSplitter")
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(self._build_table_area())
        splitter.addWidget(self._build_editor_area())
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([170, 590])
        outer.addWidget(splitter)

        QShortcut(
            QKeySequence(Qt.Modifier.CTRL | Qt.Key.Key_D),
            self,
            self.duplicate_selected_run,
            context=Qt.ShortcutContext.WidgetWithChildrenShortcut,
        )
        self._update_buttons()
        self._update_tab_order()
        self._show_editor(None)

    # ================================================================ building

    def _build_table_area(self) -> QWidget:
        area = QWidget(objectName="runsTableArea")
        layout = QVBoxLayout(area)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)

        table = header_table(_HEADERS, "runsTable", "Runs")
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.EditKeyPressed
            | QAbstractItemView.EditTrigger.SelectedClicked
        )
        # Tab leaves the table (arrow keys move between cells): no keyboard trap.
        table.setTabKeyNavigation(False)
        table.setAlternatingRowColors(True)
        table.setWordWrap(False)
        table.setTextElideMode(Qt.TextElideMode.ElideRight)
        table.setIconSize(QSize(14, 14))
        table.verticalHeader().setVisible(False)
        table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 10)
        header = table.horizontalHeader()
        header.setHighlightSections(False)
        header.setMinimumSectionSize(22)
        narrow = table.fontMetrics().height() + 12
        for column, mode, width in (
            (COL_ENABLED, QHeaderView.ResizeMode.Fixed, narrow),
            (COL_COLOR, QHeaderView.ResizeMode.Fixed, narrow),
            (COL_LABEL, QHeaderView.ResizeMode.Interactive, 92),
            (COL_OPTIMIZER, QHeaderView.ResizeMode.Interactive, 66),
            (COL_PARAMS, QHeaderView.ResizeMode.Stretch, 0),
            (COL_SCHEDULE, QHeaderView.ResizeMode.Interactive, 62),
        ):
            header.setSectionResizeMode(column, mode)
            if width:
                header.resizeSection(column, width)
        table.setMinimumHeight(table.verticalHeader().defaultSectionSize() * 3 + 30)
        table.itemChanged.connect(self._on_item_changed)
        table.cellClicked.connect(self._on_cell_clicked)
        table.itemSelectionChanged.connect(self._on_table_selection)
        table.installEventFilter(self)
        table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        table.customContextMenuRequested.connect(self._on_context_menu)
        self.table = table
        layout.addWidget(table, 1)

        style = self.style()
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
                QIcon.ThemeIcon.ListRemove, style.standardIcon(QStyle.StandardPixmap.SP_TrashIcon)
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

        self.table_error = self._error_label("tableError")
        layout.addWidget(self.table_error)
        return area

    def _button(self, text, name, tip, icon, slot) -> QPushButton:
        button = QPushButton(icon, text, objectName=name)
        button.setToolTip(tip)
        button.setAutoDefault(False)
        button.clicked.connect(slot)
        return button

    def _error_label(self, name: str) -> QLabel:
        label = QLabel(objectName=name)
        label.setWordWrap(True)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        label.setStyleSheet(f"color: {error_color(self.palette())};")
        label.hide()
        return label

    def _build_editor_area(self) -> QWidget:
        scroll = QScrollArea(objectName="runEditorScroll")
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # its children take focus, not the frame
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        editor = QWidget(objectName="runEditor")
        layout = QVBoxLayout(editor)
        layout.setContentsMargins(0, 4, 4, 4)
        layout.setSpacing(6)

        self.editor_title = QLabel(objectName="runEditorTitle")
        self.editor_title.setTextFormat(Qt.TextFormat.RichText)
        font = self.editor_title.font()
        font.setBold(True)
        self.editor_title.setFont(font)
        layout.addWidget(self.editor_title)

        layout.addWidget(self._build_optimizer_group())
        layout.addWidget(self._build_schedule_group())
        layout.addWidget(self._build_controls_group())
        layout.addStretch(1)
        self.editor = editor
        scroll.setWidget(editor)
        return scroll

    def _build_optimizer_group(self) -> QGroupBox:
        group = QGroupBox("Optimizer", objectName="optimizerGroup")
        layout = QVBoxLayout(group)
        layout.setSpacing(4)

        self.optimizer_combo = QComboBox(objectName="optimizerCombo")
        self.optimizer_combo.setAccessibleName("Optimizer")
        self._fill_optimizer_combo(network=False)
        self.optimizer_combo.activated.connect(self._on_optimizer_chosen)
        layout.addWidget(self.optimizer_combo)

        self.update_rule_toggle = QToolButton(objectName="updateRuleToggle")
        self.update_rule_toggle.setText("Update rule")
        self.update_rule_toggle.setCheckable(True)
        self.update_rule_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.update_rule_toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.update_rule_toggle.setAutoRaise(True)
        self.update_rule_toggle.setToolTip("Show the optimizer's update rule")
        self.update_rule_toggle.toggled.connect(self._on_update_rule_toggled)
        layout.addWidget(self.update_rule_toggle)

        self.update_rule = QLabel(objectName="updateRule")
        self.update_rule.setTextFormat(Qt.TextFormat.RichText)
        self.update_rule.setWordWrap(True)
        self.update_rule.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.update_rule.setFrameShape(QFrame.Shape.StyledPanel)
        self.update_rule.setMargin(4)
        self.update_rule.setBackgroundRole(QPalette.ColorRole.Base)
        self.update_rule.setAutoFillBackground(True)
        self.update_rule.hide()
        layout.addWidget(self.update_rule)

        self.optimizer_form = HyperParamForm("optParam_", objectName="optimizerForm")
        self.optimizer_form.value_edited.connect(self._on_optimizer_param_edited)
        layout.addWidget(self.optimizer_form)

        self.param_error = self._error_label("paramError")
        layout.addWidget(self.param_error)
        return group

    def _fill_optimizer_combo(self, network: bool) -> None:
        self._combo_network = network
        self.optimizer_combo.blockSignals(True)
        self.optimizer_combo.clear()
        for info in usable_optimizers(network):
            self.optimizer_combo.addItem(info.title, info.name)
            index = self.optimizer_combo.count() - 1
            self.optimizer_combo.setItemData(index, info.description, Qt.ItemDataRole.ToolTipRole)
        self.optimizer_combo.blockSignals(False)

    def _build_schedule_group(self) -> QGroupBox:
        group = QGroupBox("Learning-rate schedule", objectName="scheduleGroup")
        layout = QVBoxLayout(group)
        layout.setSpacing(4)

        self.schedule_combo = QComboBox(objectName="scheduleCombo")
        self.schedule_combo.setAccessibleName("Learning-rate schedule")
        for info in SCHEDULES.values():
            self.schedule_combo.addItem(info.title, info.name)
            index = self.schedule_combo.count() - 1
            self.schedule_combo.setItemData(index, info.description, Qt.ItemDataRole.ToolTipRole)
        self.schedule_combo.activated.connect(self._on_schedule_chosen)
        layout.addWidget(self.schedule_combo)

        self.schedule_form = HyperParamForm("schedParam_", objectName="scheduleForm")
        self.schedule_form.value_edited.connect(self._on_schedule_param_edited)
        layout.addWidget(self.schedule_form)

        self.schedule_error = self._error_label("scheduleError")
        layout.addWidget(self.schedule_error)

        self.lr_preview = _PreviewPlot()
        self.lr_preview.setObjectName("lrPreview")
        self.lr_preview.setAccessibleName("Learning rate over the run")
        self.lr_preview.setToolTip(
            "The lr this run uses at each step (a preview: nothing is trained)"
        )
        self.lr_preview.setFixedHeight(PREVIEW_HEIGHT)
        self.lr_preview.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.lr_preview.setMouseEnabled(x=False, y=False)
        self.lr_preview.setMenuEnabled(False)
        self.lr_preview.hideButtons()
        plot_item = self.lr_preview.getPlotItem()
        plot_item.setContentsMargins(0, 4, 6, 0)
        for side in ("left", "bottom"):
            axis = plot_item.getAxis(side)
            small = axis.font() if hasattr(axis, "font") else self.font()
            small.setPointSizeF(max(6.0, self.font().pointSizeF() * 0.8))
            axis.setStyle(tickFont=small, tickLength=-4)
        plot_item.getAxis("left").setWidth(48)
        self.lr_preview_curve = self.lr_preview.plot([], [], name="lr")
        self.lr_preview_note = pg.TextItem(anchor=(0.5, 0.5))
        plot_item.addItem(self.lr_preview_note, ignoreBounds=True)
        self.lr_preview_note.hide()
        layout.addWidget(self.lr_preview)
        return group

    def _build_controls_group(self) -> QGroupBox:
        """Regularization and training controls: network labs only (hidden for 2-D functions)."""
        group = QGroupBox("Training controls", objectName="controlsGroup")
        layout = QVBoxLayout(group)
        layout.setSpacing(4)
        self.controls_form = HyperParamForm("ctrlParam_", objectName="controlsForm")
        self.controls_form.value_edited.connect(self._on_control_edited)
        layout.addWidget(self.controls_form)
        self.controls_error = self._error_label("controlsError")
        layout.addWidget(self.controls_error)
        self.controls_group = group
        group.hide()
        return group

    @staticmethod
    def _run_controls(run: RunSpec) -> dict:
        """A run's training controls as the form's flat values."""
        values = {"l1": run.l1, "l2": run.l2}
        if run.clip_norm is not None:
            values["clip_norm"] = run.clip_norm
        if run.clip_value is not None:
            values["clip_value"] = run.clip_value
        if run.early_stopping is not None:
            values["early_stopping_patience"] = run.early_stopping["patience"]
        return values

    def _on_control_edited(self, name: str, _value: Any) -> None:
        lab, i = self._lab, self._selected
        if lab is None or i < 0:
            return
        run = lab.runs[i]
        current = self._run_controls(run)
        candidate = self._pending(self.controls_form, TRAINING_CONTROLS, current)
        try:
            cleaned = validate_params(TRAINING_CONTROLS, candidate, "controls")
        except LabError as error:
            self._show_error(self.controls_error, error, "controls", self.controls_form)
            return
        self._hide_error(self.controls_error, self.controls_form)
        patience = cleaned.get("early_stopping_patience")
        min_delta = (run.early_stopping or {}).get("min_delta", 0.0)
        updated = replace(
            run,
            l1=cleaned.get("l1") or 0.0,
            l2=cleaned.get("l2") or 0.0,
            clip_norm=cleaned.get("clip_norm"),
            clip_value=cleaned.get("clip_value"),
            early_stopping=None if patience is None else {"patience": patience,
                                                          "min_delta": min_delta},
        )
        description = self._change_text(run.label, TRAINING_CONTROLS, current, cleaned)
        if description:
            self._replace_run(i, updated, description)

    def _update_tab_order(self) -> None:
        """Table, its buttons, then the editor top to bottom (forms are rebuilt, so redo this)."""
        chain: list[QWidget] = [
            self.table, self.add_button, self.duplicate_button, self.remove_button,
            self.optimizer_combo, self.update_rule_toggle,
            *self.optimizer_form.focus_chain(),
            self.schedule_combo,
            *self.schedule_form.focus_chain(),
        ]
        for first, second in zip(chain, chain[1:]):
            QWidget.setTabOrder(first, second)

    # ================================================================ public API

    def lab(self) -> Lab | None:
        """The lab last given to `set_lab` (what the panel shows)."""
        return self._lab

    def set_lab(self, lab: Lab) -> None:
        """Show ``lab``; keep the selected run where possible. Never emits ``lab_edited``.

        Emits ``selected_run_changed`` only when the selected index really changes (the lab lost
        the selected run, or a run was just added and becomes selected).
        """
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
        previous = self._selected
        self._set_table_row(target)
        self._selected = target
        self._show_editor(target if target >= 0 else None)
        self._update_buttons()
        if target != previous:
            self.selected_run_changed.emit(target)

    def selected_run(self) -> int:
        return self._selected

    def show_run_notes(self, notes: Mapping[str, str]) -> None:
        """Mark runs (by label) with what went wrong in the race, e.g. a divergence's
        forensics: a warning sign on the label and the text in its tooltip. {} clears."""
        if not notes and not self._run_notes:
            return  # nothing shown, nothing to show: leave the table (and its editing) alone
        self._run_notes = dict(notes)
        if self._lab is not None:
            self._fill_table(self._lab)
            self._set_table_row(self._selected)

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
        pinned = _pin_colors(lab)
        runs = pinned[: i + 1] + (copy,) + pinned[i + 1:]
        self._select_after_edit = (len(runs), i + 1)
        self._emit(replace(lab, runs=runs), "Duplicate run")

    def remove_selected_run(self) -> None:
        lab, i = self._lab, self._selected
        if lab is None or i < 0:
            return
        label = lab.runs[i].label
        pinned = _pin_colors(lab)
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
                self._fill_row(row, run, lab.run_color(row))
        finally:
            table.blockSignals(False)

    def _fill_row(self, row: int, run: RunSpec, color: str) -> None:
        info = OPTIMIZERS.get(run.optimizer)
        selectable = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

        enabled = QTableWidgetItem()
        enabled.setFlags(selectable | Qt.ItemFlag.ItemIsUserCheckable)
        enabled.setCheckState(Qt.CheckState.Checked if run.enabled else Qt.CheckState.Unchecked)
        enabled.setToolTip("In the race" if run.enabled else "Left out of the race")
        enabled.setData(
            Qt.ItemDataRole.AccessibleTextRole, "enabled" if run.enabled else "disabled"
        )

        swatch = QTableWidgetItem()
        swatch.setFlags(selectable)
        swatch.setData(Qt.ItemDataRole.DecorationRole, QColor(color))
        swatch.setToolTip(f"{color} (click to change)")
        swatch.setData(Qt.ItemDataRole.AccessibleTextRole, f"colour {color}")

        label = QTableWidgetItem(run.label)
        label.setFlags(selectable | Qt.ItemFlag.ItemIsEditable)
        # A branch says where it comes from (core.lab.branches): "branches from 'Adam' at step 40".
        label.setToolTip(f"{run.label}: {describe_branch(run)}" if run.branch else run.label)
        note = self._run_notes.get(run.label)
        if note is not None:  # it blew up in the race shown: a warning sign and the forensics
            label.setToolTip(f"{label.toolTip()}\n{note}")
            label.setData(Qt.ItemDataRole.DecorationRole, self.style().standardIcon(
                QStyle.StandardPixmap.SP_MessageBoxWarning))

        optimizer = QTableWidgetItem(info.title if info else run.optimizer)
        optimizer.setFlags(selectable)
        optimizer.setToolTip(info.description if info else "")

        summary_text = params_summary(run) if info else ""
        summary = QTableWidgetItem(summary_text)
        summary.setFlags(selectable)
        summary.setToolTip(
            "\n".join(f"{k} = {show_value(v)}" for k, v in run.params.items()) or summary_text
        )

        schedule = QTableWidgetItem(schedule_name(run))
        schedule.setFlags(selectable)
        title = SCHEDULES[schedule_name(run)].title
        if run.schedule and run.schedule.params:
            details = ", ".join(f"{k}={show_value(v)}" for k, v in run.schedule.params.items())
            schedule.setToolTip(f"{title}: {details}")
        else:
            schedule.setToolTip(title)

        for column, item in enumerate((enabled, swatch, label, optimizer, summary, schedule)):
            if not run.enabled and column >= COL_LABEL:
                # Dim a left-out run: the disabled text colour of the palette, not a fixed grey.
                item.setForeground(self.palette().color(
                    QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text
                ))
            self.table.setItem(row, column, item)

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

    def _show_editor(self, index: int | None) -> None:
        """Show run ``index`` in the editor (None: nothing selected). Clears refused edits."""
        self.param_error.hide()
        self.schedule_error.hide()
        if index is None or self._lab is None:
            self.editor.setEnabled(False)
            self.editor_title.setText("No run selected")
            self.optimizer_form.set_params((), {})
            self.schedule_form.set_params((), {})
            self._draw_preview(None)
            self._update_tab_order()
            return
        self.editor.setEnabled(True)
        lab = self._lab
        run = lab.runs[index]
        # A dot in the run's colour ties the editor to the row and to the plots.
        self.editor_title.setText(
            f'<span style="color:{lab.run_color(index)}">&#9679;</span>&nbsp;{escape(run.label)}'
        )
        self.editor_title.setToolTip(f"Editing run {index + 1}: {run.label}")

        info = OPTIMIZERS[run.optimizer]
        if self._combo_network != lab.is_network:
            self._fill_optimizer_combo(lab.is_network)
        self.optimizer_combo.blockSignals(True)
        position = self.optimizer_combo.findData(info.name)
        if position < 0:  # an optimizer the combo leaves out (Muon): still show what it is
            self.optimizer_combo.addItem(info.title, info.name)
            position = self.optimizer_combo.count() - 1
        self.optimizer_combo.setCurrentIndex(position)
        self.optimizer_combo.setToolTip(info.description)
        self.optimizer_combo.blockSignals(False)
        family = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont).family()
        self.update_rule.setText(
            f"<p>{escape(info.description)}</p>"
            f'<p style="white-space:pre-wrap; font-family:\'{family}\'">'
            f"{escape(info.update_rule)}</p>"
        )
        self.optimizer_form.set_params(
            info.hyperparams, run.params, self._optimizer_derived_values(info, run.params)
        )

        name = run.schedule.name if run.schedule else NO_SCHEDULE
        params = dict(run.schedule.params) if run.schedule else {}
        schedule = SCHEDULES[name]
        self.schedule_combo.blockSignals(True)
        self.schedule_combo.setCurrentIndex(self.schedule_combo.findData(name))
        self.schedule_combo.setToolTip(schedule.description)
        self.schedule_combo.blockSignals(False)
        self.schedule_form.set_params(
            schedule.hyperparams, params, self._derived_values(name, params, lab.steps, run_lr(run))
        )
        self.schedule_form.setVisible(bool(schedule.hyperparams))
        self._draw_preview(run, lab.run_color(index))
        self.controls_group.setVisible(lab.is_network)
        self.controls_error.hide()
        if lab.is_network:
            self.controls_form.set_params(TRAINING_CONTROLS, self._run_controls(run))
        self._update_tab_order()

    @staticmethod
    def _optimizer_derived_values(info: OptimizerInfo, params: Mapping) -> dict:
        """What an "auto" optimizer parameter means, shown while auto is ticked.

        Only L-BFGS has one: ``max_eval`` is ``max_iter * 5 // 4`` inside torch (its
        `HyperParam.derived` says so in words).
        """
        if info.name == "lbfgs":
            max_iter = params.get("max_iter", info.defaults()["max_iter"])
            return {"max_eval": max_iter * 5 // 4}
        return {}

    @staticmethod
    def _derived_values(name: str, params: Mapping, steps: int, lr: float) -> dict:
        """What each "auto" parameter turns into for this lab, shown while auto is ticked."""
        try:
            resolved = resolve_schedule_params(name, params, steps, lr)
        except LabError:
            return {}
        if resolved.get("step_size_down") is None and "step_size_up" in resolved:
            resolved["step_size_down"] = resolved["step_size_up"]  # torch: same as going up
        return resolved

    def _draw_preview(self, run: RunSpec | None, color: str = "#ffffff") -> None:
        if run is None or self._lab is None:
            self._preview_key = None
            self.lr_preview_curve.setData([], [])
            self.lr_preview_note.hide()
            return
        steps = self._lab.steps
        name = run.schedule.name if run.schedule else NO_SCHEDULE
        params = dict(run.schedule.params) if run.schedule else {}
        lr = run_lr(run)
        key = (name, tuple(sorted((k, repr(v)) for k, v in params.items())), steps, lr, color)
        if key == self._preview_key:
            return  # another run's edit: this curve has not changed, skip the torch stepping
        self._preview_key = key
        if steps > PREVIEW_MAX_STEPS:
            self._preview_message(f"No preview beyond {PREVIEW_MAX_STEPS} steps")
            return
        try:
            curve = preview(name, params, steps, base_lr=lr)
        except LabError as error:
            self._preview_message(error.message)
            return
        self.lr_preview_note.hide()
        self.lr_preview_curve.setData(np.arange(steps + 1), curve, pen=pg.mkPen(color, width=2))
        top = float(curve.max()) if curve.size else 0.0
        self.lr_preview.setXRange(0, steps, padding=0.02)
        # From 0, so that a decay looks like one; a constant lr sits just under the top.
        self.lr_preview.setYRange(0, top * 1.1 if top > 0 else 1.0, padding=0)

    def _preview_message(self, text: str) -> None:
        self.lr_preview_curve.setData([], [])
        self.lr_preview_note.setText(text)
        self.lr_preview_note.setColor(self.palette().color(QPalette.ColorRole.PlaceholderText))
        self.lr_preview.setXRange(0, 1, padding=0)
        self.lr_preview.setYRange(0, 1, padding=0)
        self.lr_preview_note.setPos(0.5, 0.5)
        self.lr_preview_note.show()

    # ================================================================ edits

    def _emit(self, lab: Lab, description: str) -> None:
        if self._lab is None or lab == self._lab:
            self._select_after_edit = None
            return
        self.table_error.hide()
        self.lab_edited.emit(lab, description)

    def _replace_run(self, index: int, run: RunSpec, description: str) -> None:
        self._emit(self._lab.with_run(index, run), description)

    # ---------------------------------------------------------------- table

    def _on_table_selection(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        self._change_selection(rows[0].row() if rows else -1)

    def _change_selection(self, index: int) -> None:
        if index == self._selected:
            return
        self._selected = index
        self._show_editor(index if index >= 0 else None)
        self._update_buttons()
        self.selected_run_changed.emit(index)

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
        from core.lab.branches import rename_run  # branches of this run follow the new name

        self._emit(rename_run(self._lab, run.label, label), f"Rename run '{run.label}' to '{label}'")

    def _restore_label(self, row: int) -> None:
        self.table.blockSignals(True)
        self.table.item(row, COL_LABEL).setText(self._lab.runs[row].label)
        self.table.blockSignals(False)

    def _on_context_menu(self, pos) -> None:
        """Right-click a run: branch from it at the step the timeline shows (app/shell/timeline_slider.py)."""
        from PySide6.QtWidgets import QMenu

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
        menu.popup(self.table.viewport().mapToGlobal(pos))

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
        also a panel-wide shortcut; when that fires, this key press never arrives, so the two
        cannot both act.
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

    # ---------------------------------------------------------------- optimizer

    def _on_update_rule_toggled(self, shown: bool) -> None:
        self.update_rule.setVisible(shown)
        self.update_rule_toggle.setArrowType(
            Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow
        )

    def _on_optimizer_chosen(self, position: int) -> None:
        lab, i = self._lab, self._selected
        if lab is None or i < 0:
            return
        run = lab.runs[i]
        name = self.optimizer_combo.itemData(position)
        if name == run.optimizer:
            return
        info, old = OPTIMIZERS[name], OPTIMIZERS[run.optimizer]
        kept = {k: v for k, v in run.params.items() if k in {hp.name for hp in info.hyperparams}}
        params = self._drop_refused(kept, lambda p: validate_optimizer_params(name, p, "params"))
        label = run.label
        # An automatic label ("Adam", "Adam 2") follows the optimizer; a name the user chose stays.
        if _NUMBERED.match(label).group(1) == old.title:
            label = unique_label(info.title, self._labels() - {run.label})
        new_run = replace(run, optimizer=name, params=params, label=label)
        self._replace_run(i, new_run, f"Change {run.label} optimizer to {info.title}")

    @staticmethod
    def _drop_refused(params: dict, validate: Callable[[dict], dict]) -> dict:
        """Validate, dropping each value the new optimizer/schedule refuses (default applies)."""
        params = dict(params)
        for _ in range(len(params) + 1):
            try:
                return _drop_auto(validate(params))
            except LabError as error:
                key = error.field.split(".", 1)[-1].split("[", 1)[0]
                if key not in params:
                    break
                del params[key]
        return {}

    def _pending(self, form: HyperParamForm, specs, current: Mapping) -> dict:
        """The lab's values with every value the form shows differently laid over them.

        A value refused earlier (nesterov ticked while momentum is 0) stays pending, so fixing
        the other field applies both.
        """
        candidate = dict(current)
        shown = form.values()
        for spec in specs:
            value = shown.get(spec.name, spec.default)
            if not same_value(value, current.get(spec.name, spec.default)):
                candidate[spec.name] = value
        return candidate

    def _on_optimizer_param_edited(self, name: str, _value: Any) -> None:
        lab, i = self._lab, self._selected
        if lab is None or i < 0:
            return
        run = lab.runs[i]
        info = OPTIMIZERS[run.optimizer]
        candidate = self._pending(self.optimizer_form, info.hyperparams, run.params)
        try:
            cleaned = _drop_auto(validate_optimizer_params(run.optimizer, candidate, "params"))
        except LabError as error:
            self._show_error(self.param_error, error, "params", self.optimizer_form)
            return
        self._hide_error(self.param_error, self.optimizer_form)
        description = self._change_text(run.label, info.hyperparams, run.params, cleaned)
        if description:
            self._replace_run(i, replace(run, params=cleaned), description)

    # ---------------------------------------------------------------- schedule

    def _on_schedule_chosen(self, position: int) -> None:
        lab, i = self._lab, self._selected
        if lab is None or i < 0:
            return
        run = lab.runs[i]
        name = self.schedule_combo.itemData(position)
        current = run.schedule.name if run.schedule else NO_SCHEDULE
        if name == current:
            return
        info = SCHEDULES[name]
        if name == NO_SCHEDULE:
            schedule = None
        else:
            # Keep what the two schedules share (eta_min between cosine variants, say).
            names = {hp.name for hp in info.hyperparams}
            old = run.schedule.params if run.schedule else {}
            params = self._drop_refused(
                {k: v for k, v in old.items() if k in names},
                lambda p: self._check_schedule(name, p, run),
            )
            schedule = ScheduleSpec(name, params)
        self._replace_run(
            i, replace(run, schedule=schedule), f"Change {run.label} schedule to {info.title}"
        )

    def _check_schedule(self, name: str, params: Mapping, run: RunSpec) -> dict:
        """Validate as a lab file would, then resolve the derived values too (a T_max of "auto"
        may clash with an explicit value only once it is known)."""
        cleaned = validate_schedule_params(name, params, "schedule", total_steps=self._lab.steps)
        resolve_schedule_params(name, _drop_auto(cleaned), self._lab.steps, run_lr(run), "schedule")
        if cleaned.get("cycle_momentum"):
            # core.optim.schedules checks this only when the race starts (it needs the optimizer);
            # the preview's stand-in SGD cannot catch it, so say it here, while editing.
            info = OPTIMIZERS[run.optimizer]
            names = {hp.name for hp in info.hyperparams}
            if "momentum" not in names and "betas" not in names:
                raise LabError(
                    "schedule.cycle_momentum",
                    f"needs an optimizer with momentum or betas; {info.title} has neither",
                )
        return cleaned

    def _on_schedule_param_edited(self, name: str, _value: Any) -> None:
        lab, i = self._lab, self._selected
        if lab is None or i < 0 or lab.runs[i].schedule is None:
            return
        run = lab.runs[i]
        info = SCHEDULES[run.schedule.name]
        candidate = self._pending(self.schedule_form, info.hyperparams, run.schedule.params)
        try:
            cleaned = _drop_auto(self._check_schedule(info.name, candidate, run))
        except LabError as error:
            self._show_error(self.schedule_error, error, "schedule", self.schedule_form)
            return
        self._hide_error(self.schedule_error, self.schedule_form)
        description = self._change_text(
            f"{run.label} {info.name}", info.hyperparams, run.schedule.params, cleaned
        )
        if description:
            schedule = ScheduleSpec(info.name, cleaned)
            self._replace_run(i, replace(run, schedule=schedule), description)

    # ---------------------------------------------------------------- messages

    @staticmethod
    def _show_error(label: QLabel, error: LabError, prefix: str, form: HyperParamForm) -> None:
        """Say in red what is wrong and mark the field until a valid value replaces it."""
        field = _field_name(error, prefix)
        label.setText(f"{field}: {error.message}" if field else error.message)
        label.show()
        form.mark_refused(field)

    @staticmethod
    def _hide_error(label: QLabel, form: HyperParamForm) -> None:
        label.hide()
        form.clear_refused()

    @staticmethod
    def _change_text(
        owner: str, specs: tuple[HyperParam, ...], before: Mapping, after: Mapping
    ) -> str:
        """``Change Adam lr to 0.01`` (one value), ``Change SGD momentum, nesterov``, or ""."""
        changed = [
            spec.name
            for spec in specs
            if not same_value(
                before.get(spec.name, spec.default), after.get(spec.name, spec.default)
            )
        ]
        if not changed:
            return ""
        if len(changed) == 1:
            name = changed[0]
            default = next(s.default for s in specs if s.name == name)
            return f"Change {owner} {name} to {show_value(after.get(name, default))}"
        return f"Change {owner} {', '.join(changed)}"
