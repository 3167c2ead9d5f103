"""The LR range test window: runs in its thread on a tiny lab, marks every rule's suggestion,
"Use this lr" edits the run through the undo stack, and bad settings start nothing."""

from __future__ import annotations

import pytest

from app.shell.document import LabDocument
from app.tools.lr_finder_window import LrFinderWindow
from core.lab.format import FunctionProblem, Lab, RunSpec, validate_lab
from core.tools.lr_finder import RULES

QUADRATIC = {"expression": "x**2 + 10*y**2"}


@pytest.fixture
def lr_window(qtbot):
    lab = validate_lab(Lab(name="bowl", steps=50, problem=FunctionProblem(QUADRATIC, (1.0, 1.0)),
                           runs=(RunSpec("GD", "sgd", {"lr": 0.001}),
                                 RunSpec("Adam", "adam", {"lr": 0.01}))))
    document = LabDocument(lab)
    window = LrFinderWindow(document)
    qtbot.addWidget(window)
    yield window
    window.shutdown()


def test_range_test_marks_each_rule_and_use_this_lr_is_undoable(lr_window, qtbot):
    window = lr_window
    window.min_edit.setText("1e-5")
    window.max_edit.setText("1")
    window.steps_spin.setValue(60)
    with qtbot.waitSignal(window.result_ready, timeout=30_000) as blocker:
        assert window.start()
    result = blocker.args[0]
    assert set(window.markers) == set(RULES)
    for rule in RULES:
        line, dot = window.markers[rule]
        assert line.value() == pytest.approx(__import__("math").log10(result.suggestions[rule]))
        assert window.use_buttons[rule].isEnabled()
        # Two significant digits, as "Use this lr" sets it.
        assert f"lr = {float(f'{result.suggestions[rule]:.2g}'):g}" in window.rule_labels[rule].text()
    assert "valley" in window.explanation.text()
    x, y = window.smooth_curve.getData()
    assert len(x) == len(result.lrs) > 5
    assert not window.task.is_running()

    document = window.document
    assert window.use_lr("valley")
    # Rounded to 2 significant digits (0.0265604… → 0.027), not the raw suggestion.
    lr = document.lab.runs[0].params["lr"]
    assert lr == float(f"{result.suggestions['valley']:.2g}")
    assert lr != result.suggestions["valley"]  # the raw suggestion has more digits
    assert document.undo_stack.undoText() == "Use lr from range test"
    window.activateWindow()
    document.undo_stack.undo()  # what Ctrl+Z triggers (the window's Edit ▸ Undo action)
    assert document.lab.runs[0].params["lr"] == 0.001


def test_inverted_range_shows_the_error_and_starts_nothing(lr_window):
    window = lr_window
    window.min_edit.setText("0.1")
    window.max_edit.setText("0.001")
    assert not window.start()
    assert not window.task.is_running()
    assert window.error_label.isVisibleTo(window)
    assert "lr from" in window.error_label.text() and "below" in window.error_label.text()
    window.min_edit.setText("abc")
    assert not window.start()
    assert "positive number" in window.error_label.text()


def test_cancel_stops_the_thread_and_keeps_the_window_usable(lr_window, qtbot):
    window = lr_window
    window.min_edit.setText("1e-6")
    window.max_edit.setText("1e-4")  # never diverges: the ramp runs all its steps
    window.steps_spin.setValue(10_000)
    assert window.start()
    qtbot.waitUntil(lambda: window.progress.value() > 10, timeout=5000)
    window.cancel()
    qtbot.waitUntil(lambda: not window.task.is_running(), timeout=5000)
    assert window.start_button.isEnabled()
    # Cancelled mid-way: the part measured is still analysed.
    assert window.result is not None and window.result.stop_reason == "cancelled"
