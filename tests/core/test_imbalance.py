"""Imbalanced classes: the imbalance ratio of a data set, class-weighted cross entropy, per-class
precision / recall / F1 and the precision–recall curve (core/problems/datasets/imbalance.py,
core/problems/metrics.py), each checked against scikit-learn or a plain torch loop."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, precision_recall_fscore_support
from sklearn.metrics import precision_recall_curve as sk_precision_recall_curve
from sklearn.utils.class_weight import compute_class_weight
from torch import nn

from core.engine.network_race import NetworkRace
from core.engine.runner import run_to_dir
from core.errors import LabError
from core.lab.format import Lab, NetworkProblem, RunSpec, lab_from_dict, lab_to_dict, validate_lab
from core.problems.datasets.build import make_dataset
from core.problems.datasets.imbalance import class_counts
from core.problems.metrics import (
    average_precision,
    class_weight_values,
    confusion_matrices,
    per_class_metrics_of,
    precision_recall_curve,
)
from core.problems.model_spec import validate_model
from core.problems.models import build_model

MLP = {"layers": [{"linear": 16}, {"act": "relu"}, {"linear": 16}, {"act": "relu"},
                  {"linear": 2}]}
SETS = [("moons", {}), ("circles", {}), ("blobs", {"classes": 3}), ("xor", {}),
        ("spirals", {"classes": 4}), ("gaussian", {})]


def _counts(ds) -> np.ndarray:
    return np.bincount(np.concatenate([ds.y_train, ds.y_val]), minlength=ds.n_classes)


# -- the ratio -------------------------------------------------------------------------------


def test_one_to_ninety_nine_gives_exactly_990_and_10_with_the_minority_in_validation():
    ds = make_dataset({"name": "moons", "n": 1000, "imbalance": 99, "val_fraction": 0.2}, seed=5)
    assert _counts(ds).tolist() == [990, 10]
    # Stratified: a fifth of each class is held out, the minority too.
    assert np.bincount(ds.y_val).tolist() == [198, 2]
    assert np.bincount(ds.y_train).tolist() == [792, 8]


@pytest.mark.parametrize("name,extra", SETS)
def test_every_generated_set_honours_the_ratio(name, extra):
    spec = {"name": name, "n": 630, "imbalance": 20, "val_fraction": 0.3, **extra}
    ds = make_dataset(spec, seed=2)
    k = ds.n_classes
    expected = class_counts(630, k, 20.0)
    assert _counts(ds).tolist() == expected.tolist()
    assert expected[0] / expected[-1] == pytest.approx(20, rel=0.06)
    assert (np.bincount(ds.y_val, minlength=k) >= 1).all()  # every class validated
    if k == 2:
        assert expected.tolist() == [600, 30]  # 630 / 21 = 30 exactly


def test_digits_imbalance_takes_real_images_and_refuses_more_than_the_set_holds():
    ds = make_dataset({"name": "digits", "n": 400, "imbalance": 10}, seed=0)
    assert _counts(ds).tolist() == class_counts(400, 10, 10.0).tolist()
    with pytest.raises(LabError) as info:
        make_dataset({"name": "digits", "imbalance": 10}, seed=0)  # n = 1797: class 0 short
    assert info.value.field == "problem.dataset.n" and "class 0" in info.value.message
    most = int(info.value.message.rsplit("at most ", 1)[1])
    make_dataset({"name": "digits", "n": most, "imbalance": 10}, seed=0)  # the n it names fits
    with pytest.raises(LabError):
        make_dataset({"name": "digits", "n": most + 1, "imbalance": 10}, seed=0)


def test_the_same_seed_gives_the_same_data_and_the_global_generator_is_untouched():
    spec = {"name": "xor", "n": 500, "imbalance": 50, "noise": 0.1}
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    a = make_dataset(spec, seed=7)
    after = np.random.get_state()[1].copy()
    np.random.seed(999)  # another global state: the data must not follow it
    b = make_dataset(spec, seed=7)
    np.testing.assert_array_equal(before, after)
    for key in ("x_train", "y_train", "x_val", "y_val"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
    other = make_dataset(spec, seed=8)
    assert not np.array_equal(a.x_train, other.x_train)


def test_a_lab_without_the_key_builds_the_same_data_as_before():
    # The balanced path is untouched: these are the arrays of the moons set before imbalance.
    ds = make_dataset({"name": "moons", "n": 40, "val_fraction": 0.25}, seed=1)
    again = make_dataset({"name": "moons", "n": 40, "val_fraction": 0.25, "imbalance": None},
                         seed=1)
    np.testing.assert_array_equal(ds.x_train, again.x_train)
    assert len(ds.y_val) == 10 and _counts(ds).tolist() == [20, 20]


@pytest.mark.parametrize("value", [-1, 0, 0.5, 10**9, "20", True, float("nan")])
def test_a_bad_ratio_is_named_with_its_range(value):
    with pytest.raises(LabError) as info:
        make_dataset({"name": "moons", "imbalance": value}, seed=0)
    assert info.value.field == "problem.dataset.imbalance"
    if not isinstance(value, (str, bool)):
        assert "[1, 1000]" in info.value.message


def test_too_few_samples_for_the_ratio_and_sets_without_classes_are_refused():
    with pytest.raises(LabError) as info:
        make_dataset({"name": "moons", "n": 100, "imbalance": 99}, seed=0)
    assert info.value.field == "problem.dataset.n" and "at least 198" in info.value.message
    for spec in ({"name": "sine", "imbalance": 5},
                 {"name": "csv", "path": "x.csv", "label": "y", "imbalance": 5}):
        with pytest.raises(LabError) as info:
            make_dataset(spec, seed=0)
        assert info.value.field == "problem.dataset.imbalance"


# -- class weights ---------------------------------------------------------------------------


@pytest.mark.parametrize("name,extra", SETS)
def test_balanced_weights_equal_scikit_learns(name, extra):
    ds = make_dataset({"name": name, "n": 630, "imbalance": 20, **extra}, seed=4)
    ours = class_weight_values("balanced", ds.y_train, ds.n_classes)
    theirs = compute_class_weight("balanced", classes=np.arange(ds.n_classes), y=ds.y_train)
    np.testing.assert_allclose(ours, theirs, rtol=1e-15)


def _lab(runs, class_weights="balanced", steps=40, model=MLP, **dataset):
    spec = {"name": "moons", "n": 600, "noise": 0.2, "val_fraction": 0.25, "imbalance": 9,
            **dataset}
    problem = NetworkProblem(dataset=spec, model=model, batch_size=32, eval_every=10,
                             device="cpu", class_weights=class_weights)
    return validate_lab(Lab(name="t", seed=3, steps=steps, problem=problem, runs=tuple(runs)))


def _plain_weighted_loop(lab: Lab, run: RunSpec):
    """A practitioner's loop: nn.CrossEntropyLoss(weight=scikit-learn's balanced weights)."""
    data = make_dataset(lab.problem.dataset, lab.seed)
    weight = compute_class_weight("balanced", classes=np.arange(2), y=data.y_train)
    criterion = nn.CrossEntropyLoss(weight=torch.tensor(weight, dtype=torch.float32))
    spec = validate_model(lab.problem.model, data.input_shape, data.n_outputs)
    model = build_model(spec, generator=torch.Generator().manual_seed(lab.seed))
    opt = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}[run.optimizer](
        model.parameters(), **run.params)
    x, y = torch.as_tensor(data.x_train), torch.as_tensor(data.y_train)
    order, batch = torch.Generator().manual_seed(lab.seed + 1), lab.problem.batch_size
    per_epoch, losses, perm = -(-len(x) // batch), [], None
    for step in range(lab.steps + 1):
        if step % per_epoch == 0:
            perm = torch.randperm(len(x), generator=order)
        idx = perm[(step % per_epoch) * batch:(step % per_epoch + 1) * batch]
        loss = criterion(model(x[idx]), y[idx])
        losses.append(loss.item())
        if step < lab.steps:
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        val_loss = criterion(model(torch.as_tensor(data.x_val)), torch.as_tensor(data.y_val))
    return np.array(losses), float(val_loss), model


@pytest.mark.parametrize("batched", [True, False])
def test_a_weighted_race_equals_a_plain_loop_with_weighted_cross_entropy(batched):
    runs = [RunSpec("adam", "adam", {"lr": 0.01}), RunSpec("sgd", "sgd", {"lr": 0.1})]
    model = MLP if batched else {"layers": [*MLP["layers"][:2], {"dropout": 0.0},
                                            *MLP["layers"][2:]]}
    lab = _lab(runs, model=model)
    race = NetworkRace(lab)
    assert (race.stack is not None) == batched
    records = list(race.records())
    unweighted = list(NetworkRace(_lab(runs, class_weights=None, model=model)).records())
    for i, run in enumerate(runs):
        losses, val_loss, ref = _plain_weighted_loop(lab, run)
        ours = np.array([r.loss[i] for r in records])
        np.testing.assert_allclose(ours, losses, rtol=0, atol=1e-6, err_msg=run.label)
        # The validation loss is weighted with the training split's weights too.
        assert records[-1].evaluation.val["loss"][i] == pytest.approx(val_loss, abs=1e-6)
        for a, b in zip(race.models[i].parameters(), ref.parameters()):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
        # The weights matter: the unweighted race is a different race.
        assert abs(unweighted[-1].loss[i] - ours[-1]) > 1e-3


@pytest.mark.parametrize("value,field,words", [
    ("balancd", "problem.class_weights", "balanced"),
    ([1.0], "problem.class_weights", "2 weights"),
    ([1.0, -2.0], "problem.class_weights[1]", "(0, 1e+06]"),
    ([1.0, 1e9], "problem.class_weights[1]", "(0, 1e+06]"),
])
def test_bad_class_weights_are_named(value, field, words):
    data = lab_to_dict(_lab([RunSpec("adam", "adam", {"lr": 0.01})]))
    data["problem"]["class_weights"] = value
    with pytest.raises(LabError) as info:
        lab_from_dict(data)
    assert info.value.field == field and words in info.value.message


def test_class_weights_round_trip_and_are_refused_for_regression():
    lab = _lab([RunSpec("adam", "adam", {"lr": 0.01})], class_weights=[1.0, 4.0])
    data = lab_to_dict(lab)
    assert data["problem"]["class_weights"] == [1.0, 4.0]
    assert lab_from_dict(data).problem.class_weights == (1.0, 4.0)
    data["problem"].update(dataset={"name": "sine"}, loss="mse",
                           model={"layers": [{"linear": 8}, {"act": "tanh"}, {"linear": 1}]})
    with pytest.raises(LabError) as info:
        lab_from_dict(data)
    assert info.value.field == "problem.class_weights"


# -- per-class metrics and the precision–recall curve ----------------------------------------


def test_per_class_metrics_equal_scikit_learns():
    rng = np.random.default_rng(0)
    k = 5
    target = rng.integers(0, k, 300)
    target[target == 4] = 0  # class 4 absent from the truth
    runs = [rng.integers(0, k - 1, 300), target.copy(), np.zeros(300, dtype=np.int64)]
    matrices = confusion_matrices(torch.as_tensor(np.stack(runs)), torch.as_tensor(target), k)
    ours = per_class_metrics_of(matrices)
    for r, pred in enumerate(runs):
        theirs = precision_recall_fscore_support(target, pred, labels=range(k),
                                                 zero_division=0)
        for key, values in zip(("precision", "recall", "f1", "support"), theirs):
            np.testing.assert_allclose(ours[key][r], values, rtol=0, atol=1e-12, err_msg=key)


@pytest.mark.parametrize("rounding", [None, 2])  # 2: many tied scores
def test_precision_recall_curve_equals_scikit_learns(rounding):
    rng = np.random.default_rng(1)
    target = (rng.random(400) < 0.08).astype(np.int64)
    scores = np.clip(0.3 * target + rng.random(400) * 0.8, 0, 1).astype(np.float32)
    if rounding is not None:
        scores = np.round(scores, rounding)
    ours = precision_recall_curve(target, scores)
    theirs = sk_precision_recall_curve(target, scores.astype(np.float64))
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    assert average_precision(ours[0], ours[1]) == pytest.approx(
        average_precision_score(target, scores.astype(np.float64)), abs=1e-12)


def test_main_run_writes_per_class_scores_and_the_curve_matches_the_race(tmp_path):
    lab = _lab([RunSpec("adam", "adam", {"lr": 0.01})], class_weights=None)
    summary = run_to_dir(lab, tmp_path)
    written = json.loads((tmp_path / "summary.json").read_text())
    assert written["runs"][0]["final_val_per_class"] == summary["runs"][0]["final_val_per_class"]
    race = NetworkRace(lab)
    last = list(race.records())[-1].evaluation
    y_val = race.data.y_val
    pred = last.val_scores[0] > 0.5
    per_class = written["runs"][0]["final_val_per_class"]
    theirs = precision_recall_fscore_support(y_val, pred.astype(int), labels=[0, 1],
                                             zero_division=0)
    np.testing.assert_allclose(per_class["recall"], theirs[1], atol=1e-12)
    assert per_class["support"] == np.bincount(y_val).tolist()
    assert written["runs"][0]["final_val_average_precision"] == pytest.approx(
        average_precision_score(y_val, last.val_scores[0].astype(np.float64)), abs=1e-12)


def test_crash_recovery_keeps_the_scores_of_the_precision_recall_curve(tmp_path):
    from core.engine.history import NetworkHistory
    from core.engine.snapshot import load_results, save_results

    lab = _lab([RunSpec("adam", "adam", {"lr": 0.01})], steps=20)
    race = NetworkRace(lab)
    history = NetworkHistory(race.labels)
    history.extend(race.records())
    save_results(tmp_path / "r.npz", lab, history)
    back = load_results(tmp_path / "r.npz", lab)
    scores = history.last_evaluation.val_scores
    assert scores is not None and scores.shape == (1, len(race.data.y_val))
    np.testing.assert_array_equal(back.last_evaluation.val_scores, scores)
