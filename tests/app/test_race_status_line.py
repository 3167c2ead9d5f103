"""The status line after a race, in the window: ties and all-diverged races are told as such
(the words come from core/engine/race_summary.py, whose cases tests/core/test_race_summary.py covers)."""

from __future__ import annotations

from core.lab.format import FunctionProblem, Lab, RunSpec, save_lab, validate_lab


def _play(qtbot, window, tmp_path, runs, steps=120) -> str:
    lab = validate_lab(Lab(name="status", steps=steps,
                           problem=FunctionProblem("rosenbrock", (-1.5, 2.0)), runs=tuple(runs)))
    path = tmp_path / "status.lab.json"
    save_lab(lab, path)
    assert window.open_lab(path)
    window.speed_combo.setCurrentIndex(window.speed_combo.count() - 1)  # Max
    with qtbot.waitSignal(window.race_finished, timeout=60_000) as done:
        window.play()
    assert done.args == [True]
    return window.status_label.text()


def test_two_identical_runs_tie_in_the_status_line(qtbot, window, tmp_path):
    text = _play(qtbot, window, tmp_path, [RunSpec("SGD", "sgd", {"lr": 1e-3}),
                                           RunSpec("SGD copy", "sgd", {"lr": 1e-3})])
    assert "2 runs tie at best loss" in text and "(SGD and SGD copy)" in text
    assert " by " not in text


def test_a_race_in_which_every_run_diverged_crowns_no_one(qtbot, window, tmp_path):
    text = _play(qtbot, window, tmp_path, [RunSpec("SGD", "sgd", {"lr": 5.0}),
                                           RunSpec("Adam", "adam", {"lr": 100.0})], steps=60)
    assert len(window.history.divergences) == 2
    assert text == "Finished: all 2 runs diverged."
