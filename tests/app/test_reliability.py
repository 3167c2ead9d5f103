"""Reliability in the window: a run with lr = 1e3 blows up alone; 100 start/stop cycles are clean."""

from __future__ import annotations

import numpy as np

from core.lab import FunctionProblem, Lab, RunSpec, validate_lab


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
