"""A 2-D race's run editor has the clip_norm field its lab file takes (the lesson cliff uses it):
typed, it clips the run's gradient (the race follows), refused values name the field, and Undo
takes it back like any other edit."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QDoubleSpinBox, QGroupBox, QLabel

from core.engine.factory import make_race


def _type(qtbot, box, text: str) -> None:
    box.setFocus()
    box.selectAll()
    qtbot.keyClicks(box, text)
    qtbot.keyClick(box, Qt.Key.Key_Return)


def test_a_function_run_edits_clip_norm_with_validation_and_undo(window, qtbot):
    window.show()
    qtbot.waitExposed(window)
    window.new_lab()  # the 2-D banana race
    panel = window.runs_panel
    panel.select_run(0)
    group = panel.findChild(QGroupBox, "controlsGroup")
    assert not group.isHidden() and group.title() == "Gradient clipping"
    box = panel.findChild(QDoubleSpinBox, "ctrlParam_clip_norm_value")
    auto = panel.findChild(QCheckBox, "ctrlParam_clip_norm_auto")
    assert panel.findChild(QDoubleSpinBox, "ctrlParam_l2") is None  # network controls stay away
    assert "clip the gradient's norm to this value before the step" in box.toolTip().lower()
    assert auto.isChecked()  # no clipping
    error = panel.findChild(QLabel, "controlsError")
    auto.click()  # starts at 1, a valid value: no error
    assert window.document.lab.runs[0].clip_norm == 1.0 and error.isHidden()
    _type(qtbot, box, "0.5")
    run = window.document.lab.runs[0]
    assert run.clip_norm == 0.5
    # The race clips: the first step of SGD moves the point by lr · 0.5 at most.
    race = make_race(window.document.lab)
    records = race.records()
    p0, p1 = next(records).point[0], next(records).point[0]
    lr = run.params["lr"]
    assert abs(((p1 - p0) ** 2).sum() ** 0.5 - lr * 0.5) < 1e-9
    # A refused value names the field and changes nothing.
    _type(qtbot, box, "-1")
    assert not error.isHidden() and error.text().startswith("clip_norm:")
    assert window.document.lab.runs[0].clip_norm == 0.5
    # Undo takes the edits back, one at a time.
    window.undo_action.trigger()
    assert window.document.lab.runs[0].clip_norm == 1.0
    window.undo_action.trigger()
    assert window.document.lab.runs[0].clip_norm is None
    panel.select_run(0)
    assert auto.isChecked()


def test_an_rl_run_has_no_training_controls(window, qtbot):
    window.new_rl_lab()
    window.runs_panel.select_run(0)
    assert window.runs_panel.findChild(QGroupBox, "controlsGroup").isHidden()
