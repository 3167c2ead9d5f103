"""The network engine against a plain PyTorch script, and the controls doing what their formulas say."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from core.engine.devices import resolve_device
from core.engine.network_race import NetworkRace
from core.lab.format import Lab, NetworkProblem, RunSpec, validate_lab
from core.problems.datasets.build import make_dataset
from core.problems.model_spec import validate_model
from core.problems.models import build_model

MLP = {"layers": [{"linear": 16}, {"act": "relu"}, {"linear": 16}, {"act": "relu"},
                  {"linear": 2}]}
MOONS = {"name": "moons", "n": 256, "noise": 0.2, "val_fraction": 0.25}


def _lab(runs, steps=60, batch_size=32, dataset=MOONS, model=MLP, loss="cross_entropy",
         eval_every=10, seed=5):
    problem = NetworkProblem(dataset=dataset, model=model, loss=loss, batch_size=batch_size,
                             eval_every=eval_every, device="cpu")
    return validate_lab(Lab(name="t", seed=seed, steps=steps, problem=problem, runs=tuple(runs)))


def plain_script(lab: Lab, optimizer_cls, kwargs, steps):
    """What a practitioner writes by hand: same seed, same data, same batch order."""
    data = make_dataset(lab.problem.dataset, lab.seed)
    spec = validate_model(lab.problem.model, data.input_shape, data.n_outputs)
    model = build_model(spec, generator=torch.Generator().manual_seed(lab.seed))
    opt = optimizer_cls(model.parameters(), **kwargs)
    x, y = torch.as_tensor(data.x_train), torch.as_tensor(data.y_train)
    order = torch.Generator().manual_seed(lab.seed + 1)
    batch = lab.problem.batch_size
    losses, perm = [], None
    per_epoch = -(-len(x) // batch)
    for step in range(steps + 1):
        if step % per_epoch == 0:
            perm = torch.randperm(len(x), generator=order)
        idx = perm[(step % per_epoch) * batch:(step % per_epoch + 1) * batch]
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        losses.append(loss.item())
        if step < steps:
            opt.zero_grad()
            loss.backward()
            opt.step()
    return np.array(losses), model


@pytest.mark.parametrize(
    "name, cls, kwargs",
    [("sgd", torch.optim.SGD, {"lr": 0.1, "momentum": 0.9}),
     ("adam", torch.optim.Adam, {"lr": 0.01}),
     ("rmsprop", torch.optim.RMSprop, {"lr": 0.003})],
)
def test_training_reproduces_a_plain_pytorch_script(name, cls, kwargs):
    lab = _lab([RunSpec(name, name, kwargs)], steps=60)
    race = NetworkRace(lab)
    records = list(race.records())
    ours = np.array([r.loss[0] for r in records])
    ref, ref_model = plain_script(lab, cls, kwargs, 60)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-6)
    for a, b in zip(race.models[0].parameters(), ref_model.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_runs_start_from_identical_weights_and_see_identical_batches():
    lab = _lab([RunSpec("a", "sgd", {"lr": 0.1}), RunSpec("b", "adam", {"lr": 0.01}),
                RunSpec("c", "sgd", {"lr": 0.5})], steps=3)
    race = NetworkRace(lab)
    states = [m.state_dict() for m in race.models]
    for state in states[1:]:
        for key in states[0]:
            assert torch.equal(state[key], states[0][key])
    first = next(race.records())
    assert first.loss[0] == first.loss[1] == first.loss[2]
    # The same batch order whatever the runs: a one-run lab sees the same batches.
    solo = list(NetworkRace(_lab([RunSpec("c", "sgd", {"lr": 0.5})], steps=3)).records())
    trio = list(NetworkRace(lab).records())
    # (The trio trains batched, the solo run alone: equal up to float32 summation order.)
    np.testing.assert_allclose([r.loss[0] for r in solo], [r.loss[2] for r in trio], atol=1e-6)


def test_l2_penalty_adds_two_lambda_w_to_the_gradient_of_weights_only():
    lam, lr = 0.05, 0.1
    lab = _lab([RunSpec("plain", "sgd", {"lr": lr}), RunSpec("l2", "sgd", {"lr": lr}, l2=lam)],
               steps=1)
    race = NetworkRace(lab)
    before = copy.deepcopy(race.models[0].state_dict())
    list(race.records())
    plain, l2 = race.models[0].state_dict(), race.models[1].state_dict()
    for key, w0 in before.items():
        expected_gap = -lr * 2 * lam * w0 if key.endswith("weight") else torch.zeros_like(w0)
        torch.testing.assert_close(l2[key] - plain[key], expected_gap, rtol=1e-4, atol=1e-7)


def test_l1_penalty_adds_lambda_sign_w():
    lam, lr = 0.01, 0.1
    lab = _lab([RunSpec("plain", "sgd", {"lr": lr}), RunSpec("l1", "sgd", {"lr": lr}, l1=lam)],
               steps=1)
    race = NetworkRace(lab)
    before = copy.deepcopy(race.models[0].state_dict())
    list(race.records())
    for key, w0 in before.items():
        gap = race.models[1].state_dict()[key] - race.models[0].state_dict()[key]
        expected = -lr * lam * torch.sign(w0) if key.endswith("weight") else torch.zeros_like(w0)
        torch.testing.assert_close(gap, expected, rtol=1e-4, atol=1e-7)


def test_clipping_by_norm_bounds_the_step_and_by_value_bounds_each_entry():
    lr = 1.0
    lab = _lab([RunSpec("norm", "sgd", {"lr": lr}, clip_norm=1e-3),
                RunSpec("value", "sgd", {"lr": lr}, clip_value=1e-4)], steps=1)
    race = NetworkRace(lab)
    before = [copy.deepcopy(m.state_dict()) for m in race.models]
    records = list(race.records())
    assert records[0].grad_norm[0] > 1e-3  # really clipped (the reported norm is before clipping)
    step_norm = torch.sqrt(sum(((race.models[0].state_dict()[k] - w) ** 2).sum()
                               for k, w in before[0].items()))
    assert step_norm <= lr * 1e-3 * (1 + 1e-5)
    for k, w in before[1].items():
        # float32: w ~ 0.5 has an ulp of 6e-8, so allow that on top of the bound
        assert (race.models[1].state_dict()[k] - w).abs().max() <= lr * 1e-4 + 1e-7


def test_early_stopping_freezes_a_run_when_validation_stops_improving():
    lab = _lab([RunSpec("patient", "sgd", {"lr": 2.0, "momentum": 0.9},
                        early_stopping={"patience": 1, "min_delta": 0.0}),
                RunSpec("goes on", "adam", {"lr": 0.01})], steps=300, eval_every=5)
    race = NetworkRace(lab)
    records = list(race.records())
    stops = [e for r in records for e in r.stopped]
    assert len(stops) == 1 and stops[0].label == "patient"
    assert stops[0].step < 300 and stops[0].best_step < stops[0].step
    assert records[-1].step == 300 and records[-1].alive.tolist() == [False, True]


def test_linear_regression_recovers_slope_two_and_intercept_one():
    lab = _lab([RunSpec("GD", "sgd", {"lr": 0.3})], steps=400, batch_size=None,
               dataset={"name": "linear", "n": 256, "noise": 0.1, "val_fraction": 0.2},
               model={"layers": [{"linear": 1}]}, loss="mse", eval_every=100)
    race = NetworkRace(lab)
    list(race.records())
    layer = race.models[0][0]
    assert layer.weight.item() == pytest.approx(2.0, abs=0.05)
    assert layer.bias.item() == pytest.approx(1.0, abs=0.05)


def test_an_mlp_on_the_digits_reaches_95_percent_validation_accuracy():
    model = {"layers": [{"flatten": True}, {"linear": 64}, {"act": "relu"}, {"linear": 10}]}
    lab = _lab([RunSpec("Adam", "adam", {"lr": 0.003})], steps=500, batch_size=64,
               dataset={"name": "digits", "val_fraction": 0.2}, model=model, eval_every=250)
    records = list(NetworkRace(lab).records())
    final = records[-1].evaluation
    assert final.val["accuracy"][0] >= 0.95
    val_size = len(make_dataset(lab.problem.dataset, lab.seed).y_val)
    assert final.confusion.shape == (1, 10, 10) and final.confusion.sum() == val_size


def test_a_diverging_run_stops_and_the_other_trains_on():
    lab = _lab([RunSpec("boom", "sgd", {"lr": 1e4, "momentum": 0.99}),
                RunSpec("fine", "adam", {"lr": 0.01})], steps=100)
    records = list(NetworkRace(lab).records())
    events = [e for r in records for e in r.diverged]
    assert [e.label for e in events] == ["boom"]
    assert records[-1].step == 100 and records[-1].alive.tolist() == [False, True]
    assert all(np.all(np.isfinite(r.loss)) for r in records)


def test_decision_boundary_images_per_run_change_while_training():
    lab = _lab([RunSpec("a", "adam", {"lr": 0.02})], steps=100, eval_every=50)
    evals = [r.evaluation for r in NetworkRace(lab).records() if r.evaluation is not None]
    first, last = evals[0].boundary, evals[-1].boundary
    assert first.shape == last.shape == (1, 64, 64)
    assert np.abs(first - last).max() > 0.2


def test_dropout_masks_are_per_run_so_adding_a_run_changes_nothing():
    model = {"layers": [{"linear": 32}, {"act": "relu"}, {"dropout": 0.5}, {"linear": 2}]}
    solo = _lab([RunSpec("a", "sgd", {"lr": 0.1})], model=model, steps=20)
    duo = _lab([RunSpec("a", "sgd", {"lr": 0.1}), RunSpec("b", "adam", {"lr": 0.01})],
               model=model, steps=20)
    one = [r.loss[0] for r in NetworkRace(solo).records()]
    two = [r.loss[0] for r in NetworkRace(duo).records()]
    assert one == two


def test_cuda_asked_for_and_absent_falls_back_to_cpu_with_a_notice():
    device, notices = resolve_device("cuda", cuda_available=lambda: False)
    assert device.type == "cpu" and "not available" in notices[0]
    device, notices = resolve_device("cuda", cuda_available=lambda: True)
    assert device.type == "cuda" and notices == []

    def broken():
        raise RuntimeError("driver too old")

    device, notices = resolve_device("auto", cuda_available=broken)
    assert device.type == "cpu"


def test_same_lab_gives_bit_identical_metrics():
    lab = _lab([RunSpec("a", "adam", {"lr": 0.01}), RunSpec("b", "sgd", {"lr": 0.1})], steps=30)
    a = [r.loss.tolist() for r in NetworkRace(lab).records()]
    b = [r.loss.tolist() for r in NetworkRace(lab).records()]
    assert a == b


def test_the_batched_path_equals_separate_training():
    """Several MLP runs train in one batched pass; each equals its own solo race."""
    runs = [RunSpec("sgd", "sgd", {"lr": 0.1, "momentum": 0.9}),
            RunSpec("adam", "adam", {"lr": 0.01}, l2=0.001, clip_norm=0.5),
            RunSpec("rmsprop", "rmsprop", {"lr": 0.003}, l1=0.0005, clip_value=0.05)]
    together = NetworkRace(_lab(runs, steps=80))
    assert together.stack is not None
    all_records = list(together.records())
    for i, run in enumerate(runs):
        solo = NetworkRace(_lab([run], steps=80))
        assert solo.stack is None
        solo_losses = [r.loss[0] for r in solo.records()]
        np.testing.assert_allclose([r.loss[i] for r in all_records], solo_losses, atol=2e-5)
        for a, b in zip(together.models[i].parameters(), solo.models[0].parameters()):
            torch.testing.assert_close(a, b, rtol=0, atol=2e-5)


def _per_model_evaluation(seed_race):
    """The per-model evaluation path on the same weights (the reference for the batched one);
    its per-layer gradient norms come from the stack (the modules hold no .grad when stacked)."""
    stack = seed_race.stack
    seed_race.stack = None
    try:
        reference = seed_race._evaluate()
    finally:
        seed_race.stack = stack
    grads = np.array([stack.layer_grad_norms(i) for i in range(stack.count)])
    return reference, grads


REGRESSION_MLP = {"layers": [{"linear": 16}, {"act": "tanh"}, {"linear": 1}]}
BLOBS = {"name": "blobs", "n": 240, "classes": 3, "val_fraction": 0.25}
MULTI_MLP = {"layers": [{"linear": 16}, {"act": "relu"}, {"linear": 3}]}


@pytest.mark.parametrize("dataset, model, loss, picture", [
    (MOONS, MLP, "cross_entropy", "boundary"),
    (BLOBS, MULTI_MLP, "cross_entropy", "boundary"),
    ({"name": "linear", "n": 200, "val_fraction": 0.25}, REGRESSION_MLP, "mse", "curve"),
    ({"name": "plane", "n": 200, "val_fraction": 0.25}, REGRESSION_MLP, "huber", "curve"),
])
def test_batched_evaluation_equals_the_per_model_evaluation(dataset, model, loss, picture):
    """A stacked race evaluates every run in one pass; each run's metrics, confusion matrix,
    boundary / fitted curve, layer statistics and diagram weights equal its own model's."""
    runs = [RunSpec("sgd", "sgd", {"lr": 0.05, "momentum": 0.9}),
            RunSpec("adam", "adam", {"lr": 0.01}),
            RunSpec("adam fast", "adam", {"lr": 0.05})]
    race = NetworkRace(_lab(runs, steps=25, dataset=dataset, model=model, loss=loss))
    assert race.stack is not None
    records = list(race.records())
    seed_race = race.seed_races[0]
    batched = seed_race._evaluate()
    reference, grads = _per_model_evaluation(seed_race)
    assert batched.train.keys() == reference.train.keys() and len(batched.train) >= 4
    for split in ("train", "val"):
        for key, values in getattr(reference, split).items():
            assert getattr(batched, split)[key].shape == (3,)
            np.testing.assert_allclose(getattr(batched, split)[key], values, rtol=1e-6, atol=1e-6)
    for name in ("boundary", "boundary_class", "curve", "confusion"):
        mine, theirs = getattr(batched, name), getattr(reference, name)
        assert (mine is None) == (theirs is None), name
        if mine is not None:
            assert mine.dtype == theirs.dtype and mine.shape == theirs.shape
            np.testing.assert_allclose(mine, theirs, atol=1e-6)
    assert getattr(batched, picture) is not None
    np.testing.assert_allclose(batched.layer_grad_norm, grads, rtol=1e-6)
    np.testing.assert_array_equal(batched.update_ratio, 0.0)
    for mine, theirs in zip(batched.weights, reference.weights):
        for a, b in zip(mine, theirs):
            np.testing.assert_array_equal(a, b)
    # The runs differ (the comparison is not between three copies of one model).
    assert len({float(v) for v in batched.val["loss"]}) == 3
    # The records carry the batched evaluation.
    assert records[-1].evaluation is not None and records[-1].evaluation.weights is not None


@pytest.mark.parametrize("extra", [{"dropout": 0.2}, {"batchnorm": True}])
def test_dropout_and_batchnorm_races_evaluate_model_by_model(extra):
    layers = [{"linear": 16}, extra, {"act": "relu"}, {"linear": 2}]
    runs = [RunSpec("a", "adam", {"lr": 0.01}), RunSpec("b", "sgd", {"lr": 0.1})]
    race = NetworkRace(_lab(runs, steps=12, model={"layers": layers}))
    assert race.stack is None  # not stackable: the per-model path evaluates it
    evaluation = list(race.records())[-1].evaluation
    assert evaluation.boundary.shape == (2, 64, 64)
    assert evaluation.confusion.shape == (2, 2, 2)
    assert evaluation.confusion[0].sum() == len(race.data.y_val)
    assert not any(m.training for m in race.models)  # evaluated in eval mode
