""""Use this lr" (the LR range test window) keeps the computed loss surface: the surface is a
property of the problem and its data over a plane fixed when it was computed, so an lr change of
a run that does not span the plane leaves the picture as it was (app/surface/view.py
`kept_surface`); an lr change of the plane's centre run, or a new problem, drops it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from app.tools.lr_finder_window import LrFinderWindow
from core.lab.format import Lab, NetworkProblem, RunSpec, validate_lab
from core.tools.lr_finder import apply_lr

STEPS = 30


def _lab() -> Lab:
    problem = NetworkProblem(
        dataset={"name": "moons", "n": 128, "noise": 0.2, "val_fraction": 0.25},
        model={"layers": [{"linear": 16}, {"act": "relu"}, {"linear": 2}]},
        loss="cross_entropy", batch_size=32, eval_every=10, device="cpu")
    runs = (RunSpec("SGD", "sgd", {"lr": 0.1, "momentum": 0.9}),
            RunSpec("Adam", "adam", {"lr": 0.02}))
    return validate_lab(Lab(name="kept", seed=2, steps=STEPS, problem=problem, runs=runs))


def _surface_after_a_race(qtbot, window):
    window.document.replace(_lab(), None)
    window.speed_combo.setCurrentIndex(window.speed_combo.count() - 1)  # Max
    with qtbot.waitSignal(window.race_finished, timeout=60_000):
        window.play()
    surface = window.network_view.surface_view
    surface.controls.set_directions("random")
    surface.controls.grid_spin.setValue(9)
    surface.controls.run_a.setCurrentIndex(0)  # centred on SGD
    assert surface.compute()
    qtbot.waitUntil(lambda: surface.final is not None and not surface.controller.is_running(),
                    timeout=30_000)
    return surface


def test_use_this_lr_on_another_run_keeps_the_surface_picture(qtbot, window):
    surface = _surface_after_a_race(qtbot, window)
    picture = surface.final
    loss = picture.loss.copy()
    sgd_path = {k: v.copy() for k, v in picture.paths[0].items()}
    assert len(picture.paths[1]["alpha"]) > 1  # Adam's path is drawn before the edit

    finder = LrFinderWindow(window.document)
    qtbot.addWidget(finder)
    try:
        finder.run_combo.setCurrentIndex(finder.run_combo.findData("Adam"))
        finder.min_edit.setText("1e-4")
        finder.max_edit.setText("1")
        finder.steps_spin.setValue(20)
        with qtbot.waitSignal(finder.result_ready, timeout=60_000):
            assert finder.start()
        assert finder.use_lr("valley")
    finally:
        finder.shutdown()
    assert window.document.lab.runs[1].params["lr"] != 0.02  # the edit happened

    kept = surface.final
    assert kept is not None and surface.result is kept
    assert kept.loss is picture.loss  # the very array, not recomputed
    np.testing.assert_array_equal(kept.loss, loss)
    np.testing.assert_array_equal(kept.alphas, picture.alphas)
    for key, value in sgd_path.items():  # the centre run's path stays
        np.testing.assert_array_equal(kept.paths[0][key], value)
    assert len(kept.paths[1]["alpha"]) == 0  # Adam's old path belongs to the old race
    assert surface.plot.surface is not None  # the Map page still draws it
    assert surface.controls.export_npz.isEnabled()

    # Ctrl+Z (Adam's lr back): still the same picture.
    window.document.undo_stack.undo()
    assert surface.final is not None and surface.final.loss is picture.loss

    # The lr of the run the plane is centred on: its weights made the plane, the picture goes.
    lab = window.document.lab
    window.document.edit(apply_lr(lab, "SGD", 0.05), "Use lr from range test")
    assert surface.final is None and surface.result is None


def test_a_new_problem_drops_the_surface(qtbot, window):
    surface = _surface_after_a_race(qtbot, window)
    lab = window.document.lab
    window.document.edit(replace(lab, seed=lab.seed + 1), "Seed")
    assert surface.final is None
