"""The rl views in the main window: an rl lab opened, played to its end, drawn (app/rl/).

Each checks what a user sees: the returns curves hold every episode and their smoothing is
core/engine/smoothing.py's, the gradient plot marks exactly the target updates, the cart is drawn
where the newest round's first state puts it.
"""

from __future__ import annotations

import json

import numpy as np

from core.engine.smoothing import debiased_ema


def _open_and_play(window, qtbot, tmp_path, problem, runs):
    path = tmp_path / "rl.lab.json"
    path.write_text(json.dumps({"format": "descent-lab/1", "name": "rl", "seed": 0, "steps": 1,
                                "problem": {"kind": "rl", **problem}, "runs": runs}))
    window.show()
    qtbot.waitExposed(window)
    assert window.open_lab(path)
    window.speed_combo.setCurrentIndex(window.speed_combo.count() - 1)  # Max
    with qtbot.waitSignal(window.race_finished, timeout=120_000):
        window.play()
    window.flush_redraw()
    return window.rl_view


def test_reinforce_lab_draws_returns_and_the_cart(window, qtbot, tmp_path):
    view = _open_and_play(window, qtbot, tmp_path, {"agent": "reinforce", "episodes": 24, "envs": 8},
                          [{"label": "Adam", "optimizer": "adam", "params": {"lr": 0.01}},
                           {"label": "SGD", "optimizer": "sgd", "params": {"lr": 0.05}}])
    assert window.center_stack.currentWidget() is view
    history = window.race_wiring.history
    for i in range(2):
        x, y = view.returns.raw[i].getData()
        assert len(x) == 24 and np.array_equal(y, np.asarray(history.returns[i]))
        _, smooth = view.returns.smooth[i].getData()
        np.testing.assert_array_equal(smooth, debiased_ema(np.asarray(history.returns[i]), 0.9))
    x_cart, _ = view.cartpole.cart.getData()
    first = history.cart[0][view.cartpole.frame]
    assert abs(x_cart.min() + 0.25 - first[0]) < 1e-9  # the box is centred on the cart's x
    assert "Mean return of the last 100 episodes" in window.status_label.text()


def test_dqn_lab_marks_target_updates(window, qtbot, tmp_path):
    view = _open_and_play(
        window, qtbot, tmp_path,
        {"agent": "dqn", "episodes": 12, "envs": 2, "target_every": 10, "buffer": 400,
         "batch_size": 16, "learning_starts": 32, "epsilon": [1.0, 0.1, 200]},
        [{"label": "Adam", "optimizer": "adam", "params": {"lr": 0.001}, "adam_rel": True}])
    history = window.race_wiring.history
    n_updates = len(history.grad_norm[0])
    assert n_updates >= 30
    marks_x, _ = view.updates.marks[0].getData()
    np.testing.assert_array_equal(marks_x, np.arange(10, n_updates + 1, 10))
    _, m = view.updates.m_curve.getData()
    assert np.isfinite(m).all() and len(m) == n_updates  # Adam's ‖m‖ at every update
