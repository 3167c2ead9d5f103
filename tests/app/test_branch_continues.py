"""Branching in the window goes on from the branch step: scrub a finished race back to step k,
Ctrl+B, change the branch's lr, play — every run keeps its steps before k, nothing restarts at 0,
and the finished race equals the whole edited lab raced from scratch (core/engine/continuation.py)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from core.engine.function_race import race
from core.lab.format import load_lab

ROOT = Path(__file__).resolve().parents[2]
STEPS, K = 80, 30


def _points(records, i: int) -> np.ndarray:
    return np.array([r.point[i] for r in records if r.alive[i] or r.step == 0])


def test_a_branch_keeps_every_runs_steps_before_k_and_goes_on_from_k(qtbot, window):
    lab = replace(load_lab(ROOT / "resources" / "labs" / "ravine.lab.json"), steps=STEPS)
    window.document.replace(lab, None)
    window.speed_combo.setCurrentIndex(window.speed_combo.count() - 1)  # Max
    with qtbot.waitSignal(window.race_finished, timeout=60_000):
        window.play()
    before = [np.column_stack([s.column("x"), s.column("y")]) for s in window.history.runs]

    window.timeline.scrub_to(K)
    window.timeline.branch(3)  # Adam
    qtbot.waitUntil(lambda: window.history.last_step == K, timeout=10_000)
    assert len(window.history.runs) == 5
    for i in range(4):  # every run keeps steps 0 … k, and the branch has Adam's
        kept = np.column_stack([window.history.runs[i].column("x"),
                                window.history.runs[i].column("y")])
        np.testing.assert_array_equal(kept, before[i][:K + 1])
    branch = window.history.runs[4]
    np.testing.assert_array_equal(branch.column("x")[:K], before[3][:K, 0])
    assert window.step_label.text() == f"step {K} / {STEPS}"
    assert f"every run goes on from step {K}" in window.status_label.text()

    # The run editor's change of the branch's lr: still from k.
    edited = window.document.lab.with_run(4, replace(window.document.lab.runs[4],
                                                     params={"lr": 0.02}))
    window.document.edit(edited, "Change lr")
    qtbot.waitUntil(lambda: window.history.last_step == K, timeout=10_000)
    with qtbot.waitSignal(window.race_finished, timeout=60_000):
        window.play()
    assert window.history.last_step == STEPS
    reference = list(race(edited))
    for i, series in enumerate(window.history.runs):
        got = np.column_stack([series.column("x"), series.column("y")])
        np.testing.assert_array_equal(got, _points(reference, i))
    for i in range(4):  # the unchanged runs: the un-branched race, to the end
        np.testing.assert_array_equal(np.column_stack([window.history.runs[i].column("x"),
                                                       window.history.runs[i].column("y")]),
                                      before[i])
    assert not np.allclose(window.history.runs[4].column("x")[K + 5:],
                           before[3][K + 5:, 0])  # the branch went its own way


def test_use_this_lr_restarts_only_that_runs_trajectory(qtbot, window):
    from app.tools.lr_finder_window import LrFinderWindow

    lab = replace(load_lab(ROOT / "resources" / "labs" / "ravine.lab.json"), steps=STEPS)
    window.document.replace(lab, None)
    window.speed_combo.setCurrentIndex(window.speed_combo.count() - 1)  # Max
    with qtbot.waitSignal(window.race_finished, timeout=60_000):
        window.play()
    before = [np.column_stack([s.column("x"), s.column("y")]) for s in window.history.runs]

    finder = LrFinderWindow(window.document)
    qtbot.addWidget(finder)
    try:
        finder.run_combo.setCurrentIndex(finder.run_combo.findData("Adam"))
        finder.min_edit.setText("1e-4")
        finder.max_edit.setText("1")
        finder.steps_spin.setValue(30)
        with qtbot.waitSignal(finder.result_ready, timeout=60_000):
            assert finder.start()
        assert finder.use_lr("valley")
    finally:
        finder.shutdown()
    edited = window.document.lab
    assert edited.runs[3].params["lr"] != lab.runs[3].params["lr"]
    # The other runs keep their whole trajectories on screen; Adam's starts over.
    for i in range(3):
        np.testing.assert_array_equal(np.column_stack([window.history.runs[i].column("x"),
                                                       window.history.runs[i].column("y")]),
                                      before[i])
        x, _y = window.loss_plot.curves[i].getData()  # drawn, not only kept
        assert x is not None and len(x) == STEPS + 1
    assert len(window.history.runs[3]) == 0
    assert "Adam starts over" in window.status_label.text()

    with qtbot.waitSignal(window.race_finished, timeout=60_000):
        window.play()
    reference = list(race(edited))
    for i, series in enumerate(window.history.runs):  # nothing doubled, nothing lost
        np.testing.assert_array_equal(np.column_stack([series.column("x"), series.column("y")]),
                                      _points(reference, i))
