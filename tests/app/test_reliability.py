"""Reliability in the window: a run with lr = 1e3 blows up alone; 100 start/stop cycles are clean."""

from __future__ import annotations

import numpy as np

from core.lab.format import FunctionProblem, Lab, RunSpec, validate_lab


def _lab(steps=300):
    return validate_lab(Lab(
        name="boom", steps=steps, problem=FunctionProblem("rosenbrock", (-1.5, 2.0)),
        runs=(RunSpec("Adam", "adam", {"lr": 0.02}),
              RunSpec("SGD lr 1e3", "sgd", {"lr": 1e3}),
              RunSpec("Momentum", "sgd", {"lr": 5e-4, "momentum": 0.9})),
    ))


def test_lr_1e3_diverges_at_the_right_step_with_the_reason_and_the_others_finish(qtbot, window):
    window.document.replace(_lab(), None)
    window.speed_combo.setCurrentIndex(window.speed_combo.count() - 1)
    said = []  # what the status bar says right after each batch (later it sums the race up)
    window.controller.batch.connect(lambda _records: said.append(window.status_label.text()))
    with qtbot.waitSignal(window.race_finished, timeout=60_000) as done:
        window.play()
    assert done.args == [True]
    event = window.history.divergences[1]
    # SGD with lr 1e3 from (-1.5, 2): the first update lands ~1e6 away, so step 1 is the bad one.
    assert event.step == 1
    assert "point left" in event.reason or "exploded" in event.reason
    assert "SGD lr 1e3 diverged at step 1" in window.status_label.text() or \
        "Finished" in window.status_label.text()
    for i in (0, 2):
        assert window.history.runs[i].last("step") == 300  # the others ran to the end
    curve_x, curve_y = window.landscape.trajectories[1].getData()
    assert np.all(np.isfinite(curve_x)) and np.all(np.isfinite(curve_y))
    # The forensics reach the user: the lr and the last finite point and loss, in the status
    # bar and in the run's tooltip in the runs table (with a warning sign); the others have none.
    message = next(text for text in said if "diverged" in text)
    assert message.startswith("SGD lr 1e3 diverged at step 1")
    assert "lr 1e+03" in message and "point (-1.5, 2), loss 12.5" in message
    table = window.runs_panel.table
    column = next(c for c in range(table.columnCount())
                  if table.item(1, c) is not None and table.item(1, c).text() == "SGD lr 1e3")
    tip = table.item(1, column).toolTip()
    assert "Diverged at step 1" in tip and "lr 1e+03" in tip and "last finite (step 0)" in tip
    assert not table.item(1, column).icon().isNull()
    assert "Diverged" not in table.item(0, column).toolTip()
    assert table.item(0, column).icon().isNull()
    window.reset()  # a new race: the marks go
    assert "Diverged" not in table.item(1, column).toolTip()


def test_one_hundred_start_stop_cycles_leave_no_thread(qtbot, window):
    window.document.replace(_lab(steps=100_000), None)
    window.speed_combo.setCurrentIndex(window.speed_combo.count() - 1)
    for cycle in range(100):
        window.play()
        if cycle % 3:
            qtbot.wait(cycle % 7)
        if cycle % 2:
            window.pause()
        window.reset()
        assert not window.controller.is_running()
