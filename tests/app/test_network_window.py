"""The window trains a network race: curves fill, decision boundaries change, nothing dangles."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from core.lab.format import load_lab

ROOT = Path(__file__).resolve().parents[2]
MOONS = ROOT / "resources" / "labs" / "moons_race.lab.json"


def test_two_network_runs_train_and_their_decision_boundaries_change(qtbot, window, tmp_path):
    lab = load_lab(MOONS)
    lab = replace(lab, steps=120, runs=lab.runs[2:])  # RMSprop and Adam
    path = tmp_path / "two.lab.json"
    from core.lab.format import save_lab

    save_lab(lab, path)
    assert window.open_lab(path)
    assert window.center_stack.currentWidget() is window.network_view
    assert window.problem_stack.currentWidget() is window.network_panel
    window.speed_combo.setCurrentIndex(window.speed_combo.count() - 1)
    # Listen before Play: at full speed the race may end before the first evaluation is read
    # below, and a signal waited for only afterwards would never come.
    finished = []
    window.race_finished.connect(lambda *args: finished.append(args))
    # The first evaluation as it arrives (the race may be over before a poll of the history
    # would see anything but the last one).
    evaluations = []
    window.controller.batch.connect(lambda records: evaluations.extend(
        r.evaluation.boundary.copy() for r in records if r.evaluation is not None))
    window.play()
    qtbot.waitUntil(lambda: bool(finished), timeout=60_000)
    window.flush_redraw()
    first = evaluations[0]
    last = window.history.last_evaluation.boundary
    assert first.shape == last.shape == (2, 64, 64)
    assert np.abs(first - last).max() > 0.1, "the boundaries did not move while training"
    # The loss the view plots is the engine's loss, step by step.
    steps = window.history.steps[1].column("step")
    assert steps[-1] == 120 and len(steps) == 121
    assert "Finished" in window.status_label.text()
    assert not window.controller.is_running()


def test_switching_between_a_network_lab_and_a_function_lab(qtbot, window):
    window.new_network_lab()
    assert window.center_stack.currentWidget() is window.network_view
    window.undo_action.trigger() if window.undo_action.isEnabled() else None
    window.new_lab()
    assert window.center_stack.currentWidget() is window.arena_view
    assert window.problem_stack.currentWidget() is window.problem_panel
