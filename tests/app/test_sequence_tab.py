"""The network view's Sequence tab (app/network/sequence_tab.py) against a real recurrent race: the
heat map is the records' log10 ‖∂L/∂h_t‖ of the selected run, the markers sit at the steps where
norm clipping fired, and the tab is only offered for sequence data."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QLabel

from app.network.views import NetworkView
from core.engine.history import NetworkHistory
from core.engine.network_race import NetworkRace
from core.lab.format import Lab, NetworkProblem, RunSpec, validate_lab


def _view(qtbot, dataset, model, runs, steps=40):
    problem = NetworkProblem(dataset=dataset, model=model,
                             loss="mse" if dataset["name"] == "adding" else "cross_entropy",
                             batch_size=32, eval_every=10, device="cpu")
    lab = validate_lab(Lab(name="t", seed=0, steps=steps, problem=problem, runs=tuple(runs)))
    race = NetworkRace(lab)
    history = NetworkHistory(race.labels)
    history.extend(list(race.records()))
    view = NetworkView()
    qtbot.addWidget(view)
    view.set_runs(list(race.labels), ["#e69f00", "#56b4e9"][:len(runs)], race.data, steps)
    view.update_from(history)
    view.tabs.setCurrentWidget(view.sequence)
    view.flush()
    return view, history


def test_the_heat_map_and_clip_markers_are_the_selected_runs_records(qtbot):
    runs = (RunSpec("plain", "sgd", {"lr": 0.05}),
            RunSpec("clipped", "sgd", {"lr": 1.0}, clip_norm=1.0))
    view, history = _view(qtbot, {"name": "adding", "n": 256, "length": 30},
                          {"layers": [{"rnn": 16}, {"last": True}, {"linear": 1}]}, runs)
    tab = view.sequence
    assert view.tabs.isTabEnabled(view.tabs.indexOf(tab))
    for run in (0, 1):
        view.select_run(run)
        expected = np.log10(np.stack([grad[run] for _, grad, _ in history.sequence_stats]))
        assert tab.shown.shape == (5, 30)  # evaluations at steps 0, 10, ..., 40; 30 time steps
        np.testing.assert_allclose(tab.shown, expected)
        np.testing.assert_array_equal(tab.marked_steps, history.clip_steps[run])
    assert len(history.clip_steps[0]) == 0 and len(history.clip_steps[1]) > 0
    assert "clipping fired at" in tab.caption.text()
    # The radius curve is the records' spectral radius over the evaluation steps.
    x, y = tab.radius_curves[0].getData()
    np.testing.assert_allclose(y, [r[1, 0] for _, _, r in history.sequence_stats])


def test_the_sequence_tab_is_off_for_data_that_is_not_a_sequence(qtbot):
    view, history = _view(qtbot, {"name": "moons", "n": 128},
                          {"layers": [{"linear": 8}, {"act": "relu"}, {"linear": 2}]},
                          (RunSpec("sgd", "sgd", {"lr": 0.1}),), steps=10)
    assert not view.tabs.isTabEnabled(view.tabs.indexOf(view.sequence))
    assert history.sequence_stats == [] and view.sequence.shown is None


def test_the_window_trains_a_recurrent_lab_and_draws_its_sequence_tab(qtbot, window, tmp_path):
    from core.lab.format import save_lab

    problem = NetworkProblem(dataset={"name": "parity", "n": 256, "length": 12},
                             model={"layers": [{"gru": 16}, {"last": True}, {"linear": 2}]},
                             loss="cross_entropy", batch_size=32, eval_every=10, device="cpu")
    lab = validate_lab(Lab(name="parity", seed=0, steps=60, problem=problem,
                           runs=(RunSpec("Adam", "adam", {"lr": 0.01}),
                                 RunSpec("SGD clip", "sgd", {"lr": 0.5}, clip_norm=0.5))))
    path = tmp_path / "parity.lab.json"
    save_lab(lab, path)
    assert window.open_lab(path)
    assert window.center_stack.currentWidget() is window.network_view
    finished = []
    window.race_finished.connect(lambda *args: finished.append(args))
    window.speed_combo.setCurrentIndex(window.speed_combo.count() - 1)
    window.play()
    qtbot.waitUntil(lambda: bool(finished), timeout=60_000)
    view = window.network_view
    view.tabs.setCurrentWidget(view.sequence)
    window.flush_redraw()
    assert view.sequence.shown is not None and view.sequence.shown.shape == (7, 12)
    # The data panel states what a network must beat.
    summary = window.findChild(QLabel, "datasetSummary")
    assert "256 sequences of 12 steps × 1 feature" in summary.text()
    assert "Baseline: chance: accuracy 0.5" in summary.text()
    assert "Finished" in window.status_label.text()


def test_the_radius_key_is_a_row_above_the_data(qtbot):
    """pyqtgraph's legend box put "recurrent layer 0" on the radius line: the key is a row
    between title and data, naming each layer."""
    runs = (RunSpec("plain", "sgd", {"lr": 0.05}),)
    view, _history = _view(qtbot, {"name": "adding", "n": 128, "length": 10},
                           {"layers": [{"rnn": 8}, {"rnn": 8}, {"last": True}, {"linear": 1}]},
                           runs, steps=20)
    view.resize(1000, 700)
    view.show()
    qtbot.waitExposed(view)
    view.sequence.draw()
    qtbot.wait(20)
    item = view.sequence.radius_plot.plotItem
    key, data = item.legend.sceneBoundingRect(), item.vb.sceneBoundingRect()
    names = [label.text for _, label in item.legend.items]
    assert {"recurrent layer 0", "recurrent layer 1"} <= set(names)
    # The line at 1 is named in the key, not by a label on the data.
    assert any(name.startswith("1:") for name in names)
    lines = [line for line in item.items if isinstance(line, pg.InfiniteLine)]
    assert lines and all(getattr(line, "label", None) is None for line in lines)
    assert item.legend.isVisible() and key.height() > 0
    assert not key.intersects(data), (key, data)
