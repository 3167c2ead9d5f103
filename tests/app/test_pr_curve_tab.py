"""The network view's Per class tab (app/network/pr_curve_tab.py) against a real imbalanced race:
the table is scikit-learn's per-class precision / recall / F1 of the run's own validation
predictions, the curve scikit-learn's precision–recall curve of its scores, and both follow the
selected run."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import precision_recall_curve, precision_recall_fscore_support

from app.network.views import NetworkView
from core.engine.history import NetworkHistory
from core.engine.network_race import NetworkRace
from core.lab.format import Lab, NetworkProblem, RunSpec, validate_lab

MLP = {"layers": [{"linear": 16}, {"act": "relu"}, {"linear": 2}]}


def _race(dataset, model=MLP, runs=None, class_weights=None):
    runs = runs or (RunSpec("SGD", "sgd", {"lr": 0.05}), RunSpec("Adam", "adam", {"lr": 0.02}))
    problem = NetworkProblem(dataset=dataset, model=model, batch_size=64, eval_every=20,
                             device="cpu", class_weights=class_weights)
    lab = validate_lab(Lab(name="t", seed=2, steps=60, problem=problem, runs=tuple(runs)))
    race = NetworkRace(lab)
    return race, list(race.records())


@pytest.fixture(scope="module")
def imbalanced_race():
    return _race({"name": "moons", "n": 800, "noise": 0.3, "imbalance": 15,
                  "val_fraction": 0.3})


def _view(qtbot, race, records):
    view = NetworkView()
    qtbot.addWidget(view)
    view.set_runs(list(race.labels), ["#e69f00", "#56b4e9"], race.data,
                  total_steps=race.lab.steps)
    history = NetworkHistory(list(race.labels))
    history.extend(records)
    view.update_from(history)
    view.flush()
    view.tabs.setCurrentWidget(view.per_class)
    return view


def _table(view) -> np.ndarray:
    table = view.per_class.table
    return np.array([[float(table.item(r, c).text()) for c in range(1, 5)]
                     for r in range(table.rowCount())])


def test_the_table_and_curve_are_scikit_learns_and_follow_the_selected_run(
        qtbot, imbalanced_race):
    race, records = imbalanced_race
    view = _view(qtbot, race, records)
    assert view.tabs.isTabEnabled(view.tabs.indexOf(view.per_class))
    y_val = race.data.y_val
    shown = []
    for run in (0, 1):
        view.select_run(run)
        with torch.no_grad():
            logits = race.models[run](torch.as_tensor(race.data.x_val))
        pred = logits.argmax(1).numpy()
        scores = torch.softmax(logits, 1)[:, 1].numpy().astype(np.float64)
        expected = np.array(precision_recall_fscore_support(
            y_val, pred, labels=[0, 1], zero_division=0)).T
        np.testing.assert_allclose(_table(view), expected, atol=5e-4)  # 3 decimals shown
        precision, recall, thresholds = view.per_class.curve_shown
        ref = precision_recall_curve(y_val, scores)
        # The scores come from the race's own evaluation (float32 softmax): same curve.
        np.testing.assert_allclose(recall, ref[1], atol=1e-12)
        np.testing.assert_allclose(precision, ref[0], atol=1e-12)
        np.testing.assert_allclose(thresholds, ref[2], atol=1e-6)
        assert race.labels[run] in view.per_class.pr_plot.plotItem.titleLabel.text
        shown.append(_table(view))
    assert not np.array_equal(shown[0], shown[1])  # the two runs differ: the tab followed


def test_a_multiclass_race_gets_the_table_without_a_curve(qtbot):
    model = {"layers": [{"linear": 16}, {"act": "relu"}, {"linear": 3}]}
    race, records = _race({"name": "blobs", "classes": 3, "n": 300, "imbalance": 10},
                          model=model)
    view = _view(qtbot, race, records)
    assert view.per_class.table.rowCount() == 3
    assert view.per_class.pr_plot.isHidden() and view.per_class.curve_shown is None
    assert _table(view)[:, 3].tolist() == np.bincount(race.data.y_val).tolist()
