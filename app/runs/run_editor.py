"""The editor of the selected run: optimizer, its hyperparameters and update rule, the
learning-rate schedule, its hyperparameters and a live preview of the lr (`app.runs.lr_preview`),
and the training controls of network labs.

Every value a user types is checked by the same registry code that checks lab files
(`validate_optimizer_params`, `validate_schedule_params`, `validate_params` for the controls), so
the GUI cannot build a lab that the file format would refuse. A refused edit is explained in red
under its form and emits nothing; the refused value stays on screen so the user can fix the
*other* field of a cross-field rule (tick nesterov, then raise momentum) and have both applied at
once. An accepted edit is emitted as a whole new `Lab` with an undo description
(``lab_edited``); `RunEditor.show_run` only shows a run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from html import escape
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontDatabase, QPalette
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QGroupBox,
    QLabel,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.runs.check_dialog import OptimizerOrigin
from app.runs.lr_preview import LrPreview
from app.runs.optimizer_picker import OptimizerPicker
from app.runs.run_text import (
    NO_SCHEDULE,
    change_text,
    error_label,
    names_optimizer,
    run_lr,
    schedule_name,
    unique_label,
)
from app.widgets.hyperparam_form import HyperParamForm, same_value
from core.errors import LabError
from core.lab.controls import FUNCTION_CONTROLS, TRAINING_CONTROLS
from core.lab.format import Lab, RunSpec, ScheduleSpec
from core.optim.catalog import get_optimizer_info, validate_optimizer_params
from core.optim.hyperparams import validate_params
from core.optim.optimizers import OptimizerInfo
from core.optim.schedules import SCHEDULES, resolve_schedule_params, validate_schedule_params


def _field_name(error: LabError, prefix: str) -> str:
    """``params.betas[1]`` → ``betas[1]``: the form belongs to one run, the prefix is noise."""
    field = error.field
    return field[len(prefix) + 1:] if field.startswith(prefix + ".") else field


def _drop_auto(params: Mapping[str, Any]) -> dict:
    """An "auto" (None) value is stored as an absent key: the lab file keeps only what is set."""
    return {k: v for k, v in params.items() if v is not None}


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


def _pending(form: HyperParamForm, specs, current: Mapping) -> dict:
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


def _optimizer_derived_values(info: OptimizerInfo, params: Mapping) -> dict:
    """What an "auto" optimizer parameter means, shown while auto is ticked.

    Only L-BFGS has one: ``max_eval`` is ``max_iter * 5 // 4`` inside torch (its
    `HyperParam.derived` says so in words).
    """
    if info.name == "lbfgs":
        max_iter = params.get("max_iter", info.defaults()["max_iter"])
        return {"max_eval": max_iter * 5 // 4}
    return {}


def _schedule_derived_values(name: str, params: Mapping, steps: int, lr: float) -> dict:
    """What each "auto" schedule parameter turns into for this lab, shown while auto is ticked."""
    try:
        resolved = resolve_schedule_params(name, params, steps, lr)
    except LabError:
        return {}
    if resolved.get("step_size_down") is None and "step_size_up" in resolved:
        resolved["step_size_down"] = resolved["step_size_up"]  # torch: same as going up
    return resolved


def _show_error(label: QLabel, error: LabError, prefix: str, form: HyperParamForm) -> None:
    """Say in red what is wrong and mark the field until a valid value replaces it."""
    field = _field_name(error, prefix)
    label.setText(f"{field}: {error.message}" if field else error.message)
    label.show()
    form.mark_refused(field)


def _hide_error(label: QLabel, form: HyperParamForm) -> None:
    label.hide()
    form.clear_refused()


class RunEditor(QWidget):
    """The editor of one run of the lab. See the module docstring."""

    lab_edited = Signal(object, str)  # the new Lab, an undo description

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent, objectName="runEditor")
        self._lab: Lab | None = None
        self._index = -1
        # run label → the lr typed for it here: kept through a change of optimizer while the
        # run still has that lr (`_on_optimizer_chosen`).
        self._typed_lr: dict[str, float] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 4, 4)
        layout.setSpacing(6)

        self.title = QLabel(objectName="runEditorTitle")
        self.title.setTextFormat(Qt.TextFormat.RichText)
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)
        layout.addWidget(self.title)

        layout.addWidget(self._build_optimizer_group())
        self.schedule_group = self._build_schedule_group()
        layout.addWidget(self.schedule_group)
        # rl races refuse a schedule (core/engine/rl_race.py) and have no steps to preview the lr
        # over (their budget is episodes): for an rl lab this note stands in for the group.
        self.rl_note = QLabel(
            "An rl run keeps this lr for the whole run: rl races take no learning-rate "
            "schedule, and their length is counted in episodes, not steps.",
            objectName="rlScheduleNote")
        self.rl_note.setWordWrap(True)
        self.rl_note.hide()
        layout.addWidget(self.rl_note)
        layout.addWidget(self._build_controls_group())
        layout.addStretch(1)

    # ================================================================ building

    def _build_optimizer_group(self) -> QGroupBox:
        group = QGroupBox("Optimizer", objectName="optimizerGroup")
        layout = QVBoxLayout(group)
        layout.setSpacing(4)

        # Grouped torch.optim / zoo / your own, with type-to-search (app/runs/optimizer_picker.py).
        self.optimizer_combo = OptimizerPicker()
        self._combo_tip = (
            "\n\nChoosing another optimizer gives the run that optimizer's default lr (an lr "
            "typed here for this run goes along), and its name when the label only named the "
            "old optimizer. Type to search."
        )
        self.optimizer_combo.activated.connect(self._on_optimizer_chosen)
        layout.addWidget(self.optimizer_combo)
        # Where a zoo optimizer or the user's code comes from, and the Check button
        # (app/runs/check_dialog.py).
        self.optimizer_origin = OptimizerOrigin()
        self.optimizer_origin.checked.connect(lambda _name: self.optimizer_combo.refresh())
        layout.addWidget(self.optimizer_origin)

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

        self.optimizer_form, self.param_error = self._add_form(
            layout, "optParam_", "optimizerForm", self._on_optimizer_param_edited, "paramError"
        )
        return group

    def _add_form(self, layout: QVBoxLayout, prefix: str, name: str, slot,
                  error_name: str) -> tuple[HyperParamForm, QLabel]:
        """A hyperparameter form and, under it, the red line that says why a value is refused."""
        form = HyperParamForm(prefix, objectName=name)
        form.value_edited.connect(slot)
        layout.addWidget(form)
        error = error_label(error_name, self.palette())
        layout.addWidget(error)
        return form, error

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

        self.schedule_form, self.schedule_error = self._add_form(
            layout, "schedParam_", "scheduleForm", self._on_schedule_param_edited, "scheduleError"
        )

        self.lr_preview = LrPreview()
        layout.addWidget(self.lr_preview)
        return group

    def _build_controls_group(self) -> QGroupBox:
        """Regularization and training controls: all of them for network labs, clip_norm alone
        for 2-D function labs (titled "Gradient clipping" there), none for rl labs."""
        group = QGroupBox("Training controls", objectName="controlsGroup")
        layout = QVBoxLayout(group)
        layout.setSpacing(4)
        self.controls_form, self.controls_error = self._add_form(
            layout, "ctrlParam_", "controlsForm", self._on_control_edited, "controlsError"
        )
        self.controls_group = group
        group.hide()
        return group

    def focus_chain(self) -> list[QWidget]:
        """The editor's widgets top to bottom (its forms are rebuilt with each run shown)."""
        return [
            self.optimizer_combo, self.update_rule_toggle, *self.optimizer_form.focus_chain(),
            self.schedule_combo, *self.schedule_form.focus_chain(),
        ]

    # ================================================================ showing

    def show_run(self, lab: Lab | None, index: int) -> None:
        """Show run ``index`` of ``lab`` (-1 or no lab: nothing selected). Clears refused edits;
        never emits ``lab_edited``."""
        self._lab, self._index = lab, index
        self.param_error.hide()
        self.schedule_error.hide()
        if index < 0 or lab is None:
            self.setEnabled(False)
            self.title.setText("No run selected")
            self.optimizer_form.set_params((), {})
            self.schedule_form.set_params((), {})
            self.lr_preview.show_run(None)
            return
        self.setEnabled(True)
        run = lab.runs[index]
        # A dot in the run's colour ties the editor to the row and to the plots.
        self.title.setText(
            f'<span style="color:{lab.run_color(index)}">&#9679;</span>&nbsp;{escape(run.label)}'
        )
        self.title.setToolTip(f"Editing run {index + 1}: {run.label}")
        self._show_optimizer(run, lab.is_network)

        name = schedule_name(run)
        params = dict(run.schedule.params) if run.schedule else {}
        schedule = SCHEDULES[name]
        self.schedule_combo.blockSignals(True)
        self.schedule_combo.setCurrentIndex(self.schedule_combo.findData(name))
        self.schedule_combo.setToolTip(schedule.description)
        self.schedule_combo.blockSignals(False)
        self.schedule_form.set_params(
            schedule.hyperparams, params,
            _schedule_derived_values(name, params, lab.steps, run_lr(run)),
        )
        self.schedule_form.setVisible(bool(schedule.hyperparams))
        rl = lab.problem.kind == "rl"
        self.schedule_group.setVisible(not rl)
        self.rl_note.setVisible(rl)
        self.lr_preview.show_run(None if rl else run, lab.steps, lab.run_color(index))
        specs = self._control_specs()
        self.controls_group.setVisible(bool(specs))
        self.controls_group.setTitle("Training controls" if lab.is_network else "Gradient clipping")
        self.controls_error.hide()
        _hide_error(self.controls_error, self.controls_form)
        if specs:
            shown = {spec.name for spec in specs}
            # Unticking "auto" on a 2-D run starts clip_norm at 1 (a valid value) rather than 0.
            self.controls_form.set_params(
                specs, {k: v for k, v in _run_controls(run).items() if k in shown},
                None if lab.is_network else {"clip_norm": 1.0})

    def _show_optimizer(self, run: RunSpec, network: bool) -> None:
        self.optimizer_combo.set_network(network)
        try:
            info = get_optimizer_info(run.optimizer)
        except LabError as error:  # user code not loaded (no consent yet), a zoo class gone
            self.optimizer_combo.show_optimizer(run.optimizer, None)
            self.optimizer_origin.show_info(None, run.optimizer, run.params, network)
            self.update_rule.setText(escape(error.message))
            self.optimizer_form.set_params((), {})
            _show_error(self.param_error, error, "params", self.optimizer_form)
            return
        self.optimizer_combo.show_optimizer(info.name, info)
        self.optimizer_combo.setToolTip(info.description + self._combo_tip)
        self.optimizer_origin.show_info(info, run.optimizer, run.params, network)
        family = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont).family()
        self.update_rule.setText(
            f"<p>{escape(info.description)}</p>"
            f'<p style="white-space:pre-wrap; font-family:\'{family}\'">'
            f"{escape(info.update_rule)}</p>"
        )
        self.optimizer_form.set_params(
            info.hyperparams, run.params, _optimizer_derived_values(info, run.params)
        )

    def _on_update_rule_toggled(self, shown: bool) -> None:
        self.update_rule.setVisible(shown)
        self.update_rule_toggle.setArrowType(
            Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow
        )

    # ================================================================ edits

    def _run(self) -> RunSpec | None:
        """The run shown, or None (no lab, no run selected)."""
        if self._lab is None or self._index < 0:
            return None
        return self._lab.runs[self._index]

    def _replace_run(self, run: RunSpec, description: str) -> None:
        lab = self._lab.with_run(self._index, run)
        if lab != self._lab:
            self.lab_edited.emit(lab, description)

    def _on_optimizer_chosen(self, position: int) -> None:
        """Another optimizer for the shown run. What follows it (see also the combo's tooltip):

        * the label, when it only named the old optimizer ("Adam", "Adam 2", "Momentum" for SGD:
          `names_optimizer`) becomes the new one's title; a label a person chose stays;
        * the lr: an lr typed in this editor for this run goes along (a deliberate choice);
          any other lr (the lab file's, or the old default) was chosen for the old optimizer,
          so the new optimizer's default lr applies;
        * every other hyperparameter the two share (weight_decay, eps, …) is kept.
        """
        run = self._run()
        if run is None:
            return
        name = self.optimizer_combo.itemData(position)
        if name == run.optimizer:
            return
        try:
            info = get_optimizer_info(name)
        except LabError as error:  # a zoo class that cannot race: say why, keep the run
            self.optimizer_combo.mark_refused(name, error.message)
            self.optimizer_combo.show_optimizer(run.optimizer, None)
            _show_error(self.param_error, error, "params", self.optimizer_form)
            return
        if info.min_param_ndim and not self._lab.is_network:
            error = LabError("optimizer", f"{info.title} only works on weight matrices; race "
                                          "it on a network lab")
            self.optimizer_combo.add_entry(info)  # greyed out on this lab from now on
            self.optimizer_combo.show_optimizer(run.optimizer, None)
            _show_error(self.param_error, error, "params", self.optimizer_form)
            return
        kept = {k: v for k, v in run.params.items() if k in {hp.name for hp in info.hyperparams}}
        typed = self._typed_lr.pop(run.label, None)
        if "lr" in kept and not same_value(kept["lr"], typed):
            del kept["lr"]
        params = _drop_refused(kept, lambda p: validate_optimizer_params(name, p, "params"))
        label = run.label
        if names_optimizer(label, run.optimizer):
            taken = {other.label for other in self._lab.runs} - {run.label}
            label = unique_label(info.title, taken)
        if "lr" in params:
            self._typed_lr[label] = params["lr"]
        new_run = replace(run, optimizer=name, params=params, label=label)
        self._replace_run(new_run, f"Change {run.label} optimizer to {info.title}")

    def _on_optimizer_param_edited(self, name: str, _value: Any) -> None:
        run = self._run()
        if run is None:
            return
        info = get_optimizer_info(run.optimizer)
        candidate = _pending(self.optimizer_form, info.hyperparams, run.params)
        try:
            cleaned = _drop_auto(validate_optimizer_params(run.optimizer, candidate, "params"))
        except LabError as error:
            _show_error(self.param_error, error, "params", self.optimizer_form)
            return
        _hide_error(self.param_error, self.optimizer_form)
        description = change_text(run.label, info.hyperparams, run.params, cleaned)
        if name == "lr" and "lr" in cleaned:
            self._typed_lr[run.label] = cleaned["lr"]  # goes along to another optimizer
        if description:
            self._replace_run(replace(run, params=cleaned), description)

    def _on_schedule_chosen(self, position: int) -> None:
        run = self._run()
        if run is None:
            return
        name = self.schedule_combo.itemData(position)
        if name == schedule_name(run):
            return
        info = SCHEDULES[name]
        if name == NO_SCHEDULE:
            schedule = None
        else:
            # Keep what the two schedules share (eta_min between cosine variants, say).
            names = {hp.name for hp in info.hyperparams}
            old = run.schedule.params if run.schedule else {}
            params = _drop_refused(
                {k: v for k, v in old.items() if k in names},
                lambda p: self._check_schedule(name, p, run),
            )
            schedule = ScheduleSpec(name, params)
        self._replace_run(
            replace(run, schedule=schedule), f"Change {run.label} schedule to {info.title}"
        )

    def _check_schedule(self, name: str, params: Mapping, run: RunSpec) -> dict:
        """Validate as a lab file would, then resolve the derived values too (a T_max of "auto"
        may clash with an explicit value only once it is known)."""
        cleaned = validate_schedule_params(name, params, "schedule", total_steps=self._lab.steps)
        resolve_schedule_params(name, _drop_auto(cleaned), self._lab.steps, run_lr(run), "schedule")
        if cleaned.get("cycle_momentum"):
            # core.optim.schedules checks this only when the race starts (it needs the
            # optimizer); the preview's stand-in SGD cannot catch it, so say it here, while
            # editing.
            info = get_optimizer_info(run.optimizer)
            names = {hp.name for hp in info.hyperparams}
            if "momentum" not in names and "betas" not in names:
                raise LabError(
                    "schedule.cycle_momentum",
                    f"needs an optimizer with momentum or betas; {info.title} has neither",
                )
        return cleaned

    def _on_schedule_param_edited(self, name: str, _value: Any) -> None:
        run = self._run()
        if run is None or run.schedule is None:
            return
        info = SCHEDULES[run.schedule.name]
        candidate = _pending(self.schedule_form, info.hyperparams, run.schedule.params)
        try:
            cleaned = _drop_auto(self._check_schedule(info.name, candidate, run))
        except LabError as error:
            _show_error(self.schedule_error, error, "schedule", self.schedule_form)
            return
        _hide_error(self.schedule_error, self.schedule_form)
        description = change_text(
            f"{run.label} {info.name}", info.hyperparams, run.schedule.params, cleaned
        )
        if description:
            self._replace_run(replace(run, schedule=ScheduleSpec(info.name, cleaned)), description)

    def _control_specs(self) -> tuple:
        """The training controls the shown lab's runs take: all for a network lab, clip_norm
        for a 2-D function lab, none for an rl lab."""
        if self._lab is None or self._lab.problem.kind == "rl":
            return ()
        return TRAINING_CONTROLS if self._lab.is_network else FUNCTION_CONTROLS

    def _on_control_edited(self, name: str, _value: Any) -> None:
        run = self._run()
        specs = self._control_specs()
        if run is None or not specs:
            return
        shown = {spec.name for spec in specs}
        current = {k: v for k, v in _run_controls(run).items() if k in shown}
        candidate = _pending(self.controls_form, specs, current)
        try:
            cleaned = validate_params(specs, candidate, "controls")
        except LabError as error:
            _show_error(self.controls_error, error, "controls", self.controls_form)
            return
        _hide_error(self.controls_error, self.controls_form)
        if specs is FUNCTION_CONTROLS:  # a 2-D run has no penalties or early stopping
            description = change_text(run.label, specs, current, cleaned)
            if description:
                self._replace_run(replace(run, clip_norm=cleaned.get("clip_norm")), description)
            return
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
        description = change_text(run.label, TRAINING_CONTROLS, current, cleaned)
        if description:
            self._replace_run(updated, description)
