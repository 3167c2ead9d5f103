"""The runs panel, driven as a user would: clicks, typing, keys; checked on what comes out.

The panel never keeps its own truth: like the main window's document, the fixture records each
``lab_edited`` and hands the new lab straight back with ``set_lab``.
"""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QLabel,
    QPushButton,
    QSpinBox,
    QTableWidget,
)

from app.runs.runs_panel import RunsPanel
from app.runs.runs_table import COL_COLOR, COL_ENABLED, COL_LABEL
from app.widgets.number_boxes import ScientificSpinBox, format_float
from core.lab.format import MAX_RUNS, Lab, RunSpec, ScheduleSpec
from core.optim.optimizers import OPTIMIZERS
from core.optim.schedules import preview
from tests.app.recorder import Recorder

LAB = Lab(
    name="Race",
    steps=200,
    runs=(
        RunSpec("SGD", "sgd", {"lr": 0.001}),
        RunSpec("Adam", "adam", {"lr": 0.02, "betas": (0.9, 0.99)}),
        RunSpec("Slow", "rmsprop", {"lr": 0.01}, ScheduleSpec("cosine", {})),
    ),
)


@pytest.fixture
def panel(qtbot):
    widget = RunsPanel()
    qtbot.addWidget(widget)
    widget.resize(380, 760)
    widget.set_lab(LAB)
    return widget


@pytest.fixture
def recorder(panel):
    return Recorder(panel)


def table(panel) -> QTableWidget:
    return panel.findChild(QTableWidget, "runsTable")


def labels_shown(panel) -> list[str]:
    t = table(panel)
    return [t.item(row, COL_LABEL).text() for row in range(t.rowCount())]


def type_into(qtbot, box, text: str) -> None:
    box.setFocus()
    box.selectAll()
    qtbot.keyClicks(box, text)
    qtbot.keyClick(box, Qt.Key.Key_Return)


# --------------------------------------------------------------------------- the table


def test_set_lab_shows_one_row_per_run_and_does_not_emit(qtbot):
    panel = RunsPanel()
    qtbot.addWidget(panel)
    with qtbot.assertNotEmitted(panel.lab_edited):
        panel.set_lab(LAB)
        panel.set_lab(LAB)
    assert labels_shown(panel) == ["SGD", "Adam", "Slow"]
    t = table(panel)
    assert t.item(0, 3).text() == "SGD"
    assert t.item(1, 4).text() == "lr=0.02, β=(0.9, 0.99)"
    assert t.item(2, 5).text() == "cosine"
    assert t.item(0, COL_ENABLED).checkState() == Qt.CheckState.Checked
    assert panel.selected_run() == 0


def test_set_lab_keeps_the_selection(panel):
    panel.select_run(2)
    panel.set_lab(LAB)
    assert panel.selected_run() == 2
    assert panel.findChild(QComboBox, "optimizerCombo").currentData() == "rmsprop"


def test_add_emits_a_lab_with_one_more_uniquely_named_run(panel, recorder, qtbot):
    panel.set_lab(Lab(runs=(RunSpec("Adam", "adam", {"lr": 0.5}),)))
    qtbot.mouseClick(panel.findChild(QPushButton, "addRunButton"), Qt.MouseButton.LeftButton)
    lab, description = recorder.edits[-1]
    assert description == "Add run"
    assert [r.label for r in lab.runs] == ["Adam", "Adam 2"]
    added = lab.runs[1]
    assert added.optimizer == "adam"
    assert added.params["lr"] == OPTIMIZERS["adam"].defaults()["lr"]
    assert added.color and added.color.lower() != lab.run_color(0).lower()
    assert panel.selected_run() == 1  # the new run is ready to edit


def test_add_is_disabled_at_the_run_limit(panel):
    runs = tuple(RunSpec(f"r{i}", "sgd") for i in range(MAX_RUNS))
    panel.set_lab(Lab(runs=runs))
    assert not panel.findChild(QPushButton, "addRunButton").isEnabled()
    assert not panel.findChild(QPushButton, "duplicateRunButton").isEnabled()


def test_remove_button_removes_the_selected_run(panel, recorder, qtbot):
    panel.select_run(1)
    qtbot.mouseClick(panel.findChild(QPushButton, "removeRunButton"), Qt.MouseButton.LeftButton)
    lab, description = recorder.edits[-1]
    assert description == "Remove run 'Adam'"
    assert [r.label for r in lab.runs] == ["SGD", "Slow"]
    # "Slow" moved up a row but keeps the colour it had.
    assert lab.run_color(1) == LAB.run_color(2)
    assert labels_shown(panel) == ["SGD", "Slow"]


def test_remove_is_disabled_without_a_selection(panel):
    panel.set_lab(Lab(runs=()))
    assert panel.selected_run() == -1
    assert not panel.findChild(QPushButton, "removeRunButton").isEnabled()


def test_delete_key_in_the_table_removes_the_run(panel, recorder, qtbot):
    panel.select_run(0)
    qtbot.keyClick(table(panel), Qt.Key.Key_Delete)
    assert [r.label for r in recorder.last.runs] == ["Adam", "Slow"]


def test_ctrl_d_duplicates_after_the_original(panel, recorder, qtbot):
    panel.select_run(1)
    qtbot.keyClick(table(panel), Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)
    lab, description = recorder.edits[-1]
    assert description == "Duplicate run"
    assert [r.label for r in lab.runs] == ["SGD", "Adam", "Adam 2", "Slow"]
    assert lab.runs[2].params == lab.runs[1].params
    assert panel.selected_run() == 2


def test_renaming_to_a_taken_label_is_refused_with_a_message(panel, recorder):
    item = table(panel).item(1, COL_LABEL)
    item.setText("SGD")  # what the editor commits
    assert recorder.edits == []
    assert item.text() == "Adam"
    error = panel.findChild(QLabel, "tableError")
    assert "SGD" in error.text() and not error.isHidden()

    item.setText("   ")
    assert recorder.edits == []
    assert item.text() == "Adam"

    item.setText("Adam (fast)")
    assert recorder.last.runs[1].label == "Adam (fast)"
    assert error.isHidden()


def test_unticking_enabled_disables_the_run(panel, recorder):
    table(panel).item(0, COL_ENABLED).setCheckState(Qt.CheckState.Unchecked)
    lab, description = recorder.edits[-1]
    assert lab.runs[0].enabled is False
    assert description == "Disable run 'SGD'"


def test_clicking_the_swatch_picks_a_colour(panel, recorder, qtbot):
    panel.color_picker = lambda initial, parent, title: QColor("#123456")
    t = table(panel)
    rect = t.visualItemRect(t.item(2, COL_COLOR))
    qtbot.mouseClick(t.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert recorder.last.runs[2].color == "#123456"

    panel.color_picker = lambda initial, parent, title: QColor()  # cancelled
    qtbot.mouseClick(t.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert len(recorder.edits) == 1


# --------------------------------------------------------------------------- the optimizer form


def test_typing_an_lr_emits_it(panel, recorder, qtbot):
    panel.select_run(1)
    lr_box = panel.findChild(QDoubleSpinBox, "optParam_lr")
    type_into(qtbot, lr_box, "3e-4")
    lab, description = recorder.edits[-1]
    assert lab.runs[1].params["lr"] == 3e-4
    assert lab.runs[1].params["betas"] == (0.9, 0.99)  # the rest untouched
    assert description == "Change Adam lr to 0.0003"
    assert lr_box.text() == "0.0003"


def test_an_unchanged_value_emits_nothing(panel, recorder, qtbot):
    panel.select_run(1)
    type_into(qtbot, panel.findChild(QDoubleSpinBox, "optParam_lr"), "0.02")
    assert recorder.edits == []


def test_log_scale_arrows_multiply(panel, recorder, qtbot):
    panel.select_run(1)
    lr_box = panel.findChild(QDoubleSpinBox, "optParam_lr")
    lr_box.stepBy(1)
    assert recorder.last.runs[1].params["lr"] == pytest.approx(0.02 * 1.25)
    lr_box.stepBy(-2)
    assert recorder.last.runs[1].params["lr"] == pytest.approx(0.02 / 1.25)


def test_nesterov_without_momentum_is_refused_then_fixed(panel, recorder, qtbot):
    panel.select_run(0)  # SGD, momentum 0
    nesterov = panel.findChild(QCheckBox, "optParam_nesterov")
    error = panel.findChild(QLabel, "paramError")
    with qtbot.assertNotEmitted(panel.lab_edited):
        nesterov.click()
    assert not error.isHidden()
    assert "nesterov" in error.text() and "momentum > 0" in error.text()

    # Fixing the other field applies both: nesterov was not forgotten.
    type_into(qtbot, panel.findChild(QDoubleSpinBox, "optParam_momentum"), "0.9")
    params = recorder.last.runs[0].params
    assert params["momentum"] == 0.9 and params["nesterov"] is True
    assert error.isHidden()


def choose_optimizer(panel, name: str) -> None:
    combo = panel.findChild(QComboBox, "optimizerCombo")
    combo.setCurrentIndex(combo.findData(name))
    combo.activated.emit(combo.currentIndex())  # what a user's pick sends


def test_switching_adam_to_sgd_takes_sgds_default_lr_and_drops_betas(panel, recorder):
    panel.select_run(1)  # Adam, lr 0.02 from the lab: chosen for Adam, not for SGD
    choose_optimizer(panel, "sgd")
    run = recorder.last.runs[1]
    assert run.optimizer == "sgd"
    assert run.params == {}  # SGD's default lr, no betas
    assert run.label == "SGD 2"  # an automatic label follows; "SGD" is taken
    assert panel.findChild(QDoubleSpinBox, "optParam_lr").value() == OPTIMIZERS["sgd"].defaults()["lr"]
    assert panel.findChild(QDoubleSpinBox, "optParam_momentum") is not None


def test_a_momentum_run_switched_to_adagrad_is_relabelled_with_adagrads_lr(qtbot):
    """The banana race's "Momentum" (SGD, lr 0.0005) made Adagrad: not "Momentum" at 0.0005."""
    lab = Lab(name="Race", steps=100, runs=(
        RunSpec("Momentum", "sgd", {"lr": 0.0005, "momentum": 0.9}),
        RunSpec("Adam + cosine", "adam", {"lr": 0.1}, ScheduleSpec("cosine", {})),
    ))
    panel = RunsPanel()
    qtbot.addWidget(panel)
    panel.set_lab(lab)
    recorder = Recorder(panel)
    panel.select_run(0)
    choose_optimizer(panel, "adagrad")
    run = recorder.last.runs[0]
    assert (run.label, run.optimizer) == ("Adagrad", "adagrad")
    assert run.params.get("lr", OPTIMIZERS["adagrad"].defaults()["lr"]) == 0.01
    assert panel.findChild(QDoubleSpinBox, "optParam_lr").value() == 0.01
    assert "default lr" in panel.findChild(QComboBox, "optimizerCombo").toolTip()

    # A label a person chose stays, whatever the optimizer.
    panel.select_run(1)
    choose_optimizer(panel, "adamw")
    assert recorder.last.runs[1].label == "Adam + cosine"


def test_an_lr_typed_for_the_run_goes_along_to_the_new_optimizer(panel, recorder, qtbot):
    panel.select_run(0)  # SGD
    type_into(qtbot, panel.findChild(QDoubleSpinBox, "optParam_lr"), "0.03")
    choose_optimizer(panel, "rmsprop")
    run = recorder.last.runs[0]
    assert (run.label, run.optimizer, run.params["lr"]) == ("RMSprop", "rmsprop", 0.03)
    choose_optimizer(panel, "adam")  # still the lr the user typed: it still goes along
    assert recorder.last.runs[0].params["lr"] == 0.03


def test_the_optimizer_combo_shows_matrix_only_optimizers_disabled_with_the_reason(panel):
    combo = panel.findChild(QComboBox, "optimizerCombo")
    names = {combo.itemData(i) for i in range(combo.count())}
    assert {"sgd", "adam", "lbfgs", "muon"} <= names
    muon = combo.model().item(combo.findData("muon"))
    assert not muon.isEnabled()  # a 2-D function has no weight matrices
    assert "weight matrices" in muon.text() and "network" in muon.toolTip()
    assert combo.model().item(combo.findData("adam")).isEnabled()
    assert combo.itemData(combo.findData("adam"), Qt.ItemDataRole.ToolTipRole)


def test_widgets_explain_themselves(panel):
    panel.select_run(1)
    tip = panel.findChild(QDoubleSpinBox, "optParam_lr").toolTip()
    assert "Learning rate" in tip and "Allowed: >= 0" in tip and "0.001" in tip
    assert "m̂" in panel.findChild(QLabel, "updateRule").text()


# --------------------------------------------------------------------------- schedules


def curve_of(panel) -> tuple[np.ndarray, np.ndarray]:
    return panel.lr_preview_curve.getData()


def test_choosing_cosine_draws_its_lr_curve(panel, recorder):
    panel.select_run(1)
    combo = panel.findChild(QComboBox, "scheduleCombo")
    combo.setCurrentIndex(combo.findData("cosine"))
    combo.activated.emit(combo.currentIndex())
    lab, description = recorder.edits[-1]
    assert lab.runs[1].schedule.name == "cosine"
    assert "schedule" in description
    x, y = curve_of(panel)
    expected = preview("cosine", {}, LAB.steps, base_lr=0.02)
    np.testing.assert_array_equal(x, np.arange(LAB.steps + 1))
    np.testing.assert_allclose(y, expected)

    combo.setCurrentIndex(combo.findData("constant"))
    combo.activated.emit(combo.currentIndex())
    assert recorder.last.runs[1].schedule is None
    np.testing.assert_allclose(curve_of(panel)[1], 0.02)


def test_preview_follows_the_lr_and_the_lab_steps(panel, recorder, qtbot):
    panel.select_run(2)  # rmsprop lr 0.01, cosine
    type_into(qtbot, panel.findChild(QDoubleSpinBox, "optParam_lr"), "0.05")
    np.testing.assert_allclose(curve_of(panel)[1], preview("cosine", {}, LAB.steps, 0.05))
    from dataclasses import replace

    panel.set_lab(replace(recorder.last, steps=80))
    assert len(curve_of(panel)[1]) == 81


def test_auto_t_max_can_be_set_explicitly(panel, recorder, qtbot):
    panel.select_run(2)
    auto = panel.findChild(QCheckBox, "schedParam_T_max_auto")
    box = panel.findChild(QSpinBox, "schedParam_T_max_value")
    assert auto.isChecked() and not box.isEnabled() and box.value() == LAB.steps
    auto.click()
    type_into(qtbot, box, "50")
    assert recorder.last.runs[2].schedule.params == {"T_max": 50}
    np.testing.assert_allclose(
        curve_of(panel)[1], preview("cosine", {"T_max": 50}, LAB.steps, 0.01)
    )
    panel.findChild(QCheckBox, "schedParam_T_max_auto").click()
    assert recorder.last.runs[2].schedule.params == {}


def test_a_refused_schedule_value_shows_a_message(panel, recorder, qtbot):
    panel.select_run(2)
    combo = panel.findChild(QComboBox, "scheduleCombo")
    combo.setCurrentIndex(combo.findData("warmup_cosine"))
    combo.activated.emit(combo.currentIndex())
    count = len(recorder.edits)
    panel.findChild(QCheckBox, "schedParam_warmup_steps_auto").click()  # shows 20
    type_into(qtbot, panel.findChild(QSpinBox, "schedParam_warmup_steps_value"), "500")
    assert len(recorder.edits) == count + 1  # 20 was fine, 500 is not
    error = panel.findChild(QLabel, "scheduleError")
    assert "warmup_steps" in error.text() and not error.isHidden()


# --------------------------------------------------------------------------- the float box


@pytest.mark.parametrize(
    ("text", "value"), [("1e-3", 1e-3), ("2.5E-7", 2.5e-7), ("0.9", 0.9), ("12", 12.0)]
)
def test_scientific_spin_box_reads_scientific_notation(qtbot, text, value):
    box = ScientificSpinBox(log=True)
    qtbot.addWidget(box)
    box.setRange(0, 100)
    type_into(qtbot, box, text)
    assert box.value() == value


def test_scientific_spin_box_keeps_tiny_values():
    assert format_float(1e-8) == "1e-08"
    assert format_float(0.001) == "0.001"
    box = ScientificSpinBox()
    box.setValue(1e-30)
    assert box.value() == 1e-30
    assert box.text() == "1e-30"


# --------------------------------------------------------------------------- network labs


def _network_lab() -> Lab:
    from core.lab.format import NetworkProblem

    return Lab(name="net", steps=100, problem=NetworkProblem(device="cpu"),
               runs=(RunSpec("Adam", "adam", {"lr": 0.01}),))


def test_training_controls_show_in_full_only_for_network_labs_and_edit_the_run(panel, recorder,
                                                                               qtbot):
    from PySide6.QtWidgets import QGroupBox

    group = panel.findChild(QGroupBox, "controlsGroup")
    # A 2-D race's run has clip_norm alone (tests/app/test_function_clip_norm.py).
    assert group.title() == "Gradient clipping"
    assert panel.findChild(QDoubleSpinBox, "ctrlParam_l2") is None
    panel.set_lab(_network_lab())
    panel.select_run(0)
    assert group.isVisibleTo(panel)
    type_into(qtbot, panel.findChild(QDoubleSpinBox, "ctrlParam_l2"), "0.001")
    lab, description = recorder.edits[-1]
    assert lab.runs[0].l2 == 0.001 and "l2" in description
    # Muon works on weight matrices, so network labs offer it.
    combo = panel.findChild(QComboBox, "optimizerCombo")
    assert combo.findData("muon") >= 0
