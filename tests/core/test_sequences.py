"""Sequences: the generated long-memory sets, recurrent layers, and a sequence race checked against
a plain PyTorch loop, exploding gradients with and without clipping, and ‖∂L/∂h_t‖ against an
independent autograd computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.engine.history import NetworkHistory
from core.engine.network_race import NetworkRace
from core.engine.sequence_probe import PROBE_SIZE, recurrent_radius
from core.errors import LabError
from core.lab.format import Lab, NetworkProblem, RunSpec, validate_lab
from core.problems.datasets.build import make_dataset
from core.problems.datasets.sequences import baseline_of
from core.problems.datasets.spec import DATASETS, validate_dataset_spec
from core.problems.model_spec import validate_model
from core.problems.models import build_model

LSTM = {"layers": [{"lstm": 16}, {"last": True}, {"linear": 1}]}


def _lab(runs, steps, length=20, model=LSTM, name="adding", loss="mse", batch_size=32, n=512,
         eval_every=50, seed=0):
    problem = NetworkProblem(dataset={"name": name, "n": n, "length": length}, model=model,
                             loss=loss, batch_size=batch_size, eval_every=eval_every, device="cpu")
    return validate_lab(Lab(name="t", seed=seed, steps=steps, problem=problem, runs=tuple(runs)))


# --- the data sets ------------------------------------------------------------------------------


def test_the_adding_baseline_of_answering_one_is_one_sixth():
    # Exactly: E[(U1 + U2 - 1)^2] for independent U(0, 1), by a float64 midpoint rule (exact to
    # O(h^2) for this polynomial: the error is h^2/6 with h the cell width).
    cells = 2000
    u = (np.arange(cells) + 0.5) / cells
    exact = float(np.mean((u[:, None] + u[None, :] - 1.0) ** 2))
    assert exact == pytest.approx(1 / 6, abs=1e-6)
    assert baseline_of(validate_dataset_spec({"name": "adding"})).value == pytest.approx(exact)
    assert "0.167" in DATASETS["adding"].description
    # And the generated targets: always answering 1 on 100 000 sequences.
    data = make_dataset({"name": "adding", "n": 100_000, "length": 10, "val_fraction": 0.0}, 3)
    assert float(np.mean((data.y_train - 1.0) ** 2)) == pytest.approx(1 / 6, abs=0.003)


def test_each_sequence_set_answers_what_its_description_says():
    adding = make_dataset({"name": "adding", "length": 30}, 1)
    x, y = adding.x_train, adding.y_train
    assert x.shape[1:] == (30, 2) and np.all(x[:, :, 1].sum(axis=1) == 2)
    np.testing.assert_allclose(y[:, 0], (x[:, :, 0] * x[:, :, 1]).sum(axis=1), rtol=1e-6)
    first, second = (np.argwhere(x[:, :, 1] == 1)[:, 1].reshape(-1, 2).T)
    assert np.all(first < 15) and np.all(second >= 15)  # one marker in each half

    memory = make_dataset({"name": "memory", "length": 12, "classes": 5}, 1)
    assert memory.input_shape == (12, 7) and memory.n_outputs == 5
    np.testing.assert_array_equal(memory.x_train[:, 0, :5].argmax(axis=1), memory.y_train)
    assert np.all(memory.x_train[:, -1, 6] == 1)  # the cue at the last step

    parity = make_dataset({"name": "parity", "length": 9}, 1)
    np.testing.assert_array_equal(parity.x_train[:, :, 0].sum(axis=1) % 2, parity.y_train)

    sine = make_dataset({"name": "sine_next", "length": 40}, 1)
    assert sine.input_shape == (40, 1) and sine.y_train.shape[1] == 1
    # A clean sine satisfies s[t+1] = 2 cos(ω) s[t] - s[t-1]: the target continues the wave.
    s = sine.x_train[:, :, 0].astype(np.float64)
    cos_w = (s[:, 2] + s[:, 0]) / (2 * s[:, 1])
    ok = np.abs(s[:, 1]) > 0.2
    predicted = 2 * cos_w * s[:, -1] - s[:, -2]
    np.testing.assert_allclose(predicted[ok], sine.y_train[ok, 0], atol=2e-3)

    again = make_dataset({"name": "parity", "length": 9}, 1)
    np.testing.assert_array_equal(again.x_train, parity.x_train)


@pytest.mark.parametrize("spec, field, words", [
    ({"name": "adding", "length": 10**7}, "problem.dataset.length", "[2, 1000]"),
    ({"name": "adding", "length": 1}, "problem.dataset.length", "[2, 1000]"),
    ({"name": "adding", "n": 100_000, "length": 1000}, "problem.dataset.n", "at most 2500"),
    ({"name": "moons", "length": 10}, "problem.dataset.length", "unknown key"),
    ({"name": "memory", "classes": 11}, "problem.dataset.classes", "[2, 10]"),
])
def test_bad_sequence_specs_are_refused_with_the_field_and_range(spec, field, words):
    with pytest.raises(LabError) as info:
        validate_dataset_spec(spec)
    assert info.value.field == field and words in str(info.value)


@pytest.mark.parametrize("layers, field, words", [
    ([{"lstm": 8}, {"linear": 1}], "problem.model.layers[1].linear", '{"last": true}'),
    ([{"linear": 4}, {"gru": 8}, {"last": True}, {"linear": 1}],
     "problem.model.layers[0].linear", '{"last": true}'),
    ([{"lstm": 8}, {"last": True}, {"lstm": 8}, {"linear": 1}],
     "problem.model.layers[2].lstm", "cannot follow"),
    ([{"conv2d": 4}, {"flatten": True}, {"linear": 1}], "problem.model.layers[0].conv2d",
     "sequences of 20 steps"),
    ([{"rnn": 8, "nonlinearity": "sigmoid"}, {"last": True}, {"linear": 1}],
     "problem.model.layers[0].nonlinearity", "tanh, relu"),
    ([{"rnn": 8, "gates": 2}, {"last": True}, {"linear": 1}],
     "problem.model.layers[0].gates", "nonlinearity"),
    ([{"lstm": 8}, {"batchnorm": True}, {"last": True}, {"linear": 1}],
     "problem.model.layers[1].batchnorm", "sequences"),
    ([{"lstm": 8}, {"last": True}], "problem.model.layers[1]", "must end with a linear"),
])
def test_impossible_stacks_are_refused_with_the_layer_and_reason(layers, field, words):
    with pytest.raises(LabError) as info:
        validate_model({"layers": layers}, (20, 2), 1)
    assert info.value.field == field and words in str(info.value)


@pytest.mark.parametrize("layer, torch_cls, extra", [
    ({"rnn": 6, "nonlinearity": "relu"}, torch.nn.RNN, {"nonlinearity": "relu"}),
    ({"lstm": 6}, torch.nn.LSTM, {}),
    ({"gru": 6}, torch.nn.GRU, {}),
])
def test_recurrent_layers_are_torch_modules_with_counted_parameters(layer, torch_cls, extra):
    spec = validate_model({"layers": [layer, {"last": True}, {"linear": 1}]}, (7, 3), 1)
    model = build_model(spec, torch.Generator().manual_seed(0))
    assert spec.n_params == sum(p.numel() for p in model.parameters())
    reference = torch_cls(3, 6, batch_first=True, **extra)
    reference.load_state_dict({k.split(".", 1)[1]: v for k, v in model.state_dict().items()
                               if k.startswith("0.")})
    x = torch.randn(4, 7, 3, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(model[:2](x), reference(x)[0][:, -1], rtol=0, atol=0)


# --- the race -----------------------------------------------------------------------------------


def plain_loop(lab: Lab, steps: int):
    """What a practitioner writes by hand: same seed, same data, same batches, nn.LSTM."""
    data = make_dataset(lab.problem.dataset, lab.seed)
    spec = validate_model(lab.problem.model, data.input_shape, data.n_outputs)
    built = build_model(spec, generator=torch.Generator().manual_seed(lab.seed))
    lstm = torch.nn.LSTM(data.input_shape[1], 16, batch_first=True)
    head = torch.nn.Linear(16, 1)
    lstm.load_state_dict({k[2:]: v for k, v in built.state_dict().items() if k.startswith("0.")})
    head.load_state_dict({k[2:]: v for k, v in built.state_dict().items() if k.startswith("2.")})
    params = [*lstm.parameters(), *head.parameters()]
    opt = torch.optim.Adam(params, lr=0.01)
    x, y = torch.as_tensor(data.x_train), torch.as_tensor(data.y_train)
    order = torch.Generator().manual_seed(lab.seed + 1)
    batch, per_epoch = lab.problem.batch_size, -(-len(x) // lab.problem.batch_size)
    losses, perm = [], None
    for step in range(steps + 1):
        if step % per_epoch == 0:
            perm = torch.randperm(len(x), generator=order)
        idx = perm[(step % per_epoch) * batch:(step % per_epoch + 1) * batch]
        out = head(lstm(x[idx])[0][:, -1])
        loss = F.mse_loss(out, y[idx])
        losses.append(loss.item())
        if step < steps:
            opt.zero_grad()
            loss.backward()
            opt.step()
    return np.array(losses), params


def test_a_sequence_race_reproduces_a_plain_pytorch_loop():
    lab = _lab([RunSpec("adam", "adam", {"lr": 0.01})], steps=40)
    race = NetworkRace(lab)
    ours = np.array([r.loss[0] for r in race.records()])
    ref, params = plain_loop(lab, 40)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-6)
    for a, b in zip(race.models[0].parameters(), params):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    assert race.stack is None  # recurrent layers train on the per-run path


def test_exploding_gradients_freeze_the_run_naming_the_layer_and_clipping_keeps_it_finite():
    # A tanh RNN on the adding problem at T = 100 with plain SGD at lr 1: the first updates
    # grow the recurrent matrix, and backpropagation through 100 steps then multiplies by it.
    model = {"layers": [{"rnn": 32}, {"last": True}, {"linear": 1}]}
    lab = _lab([RunSpec("plain", "sgd", {"lr": 1.0}),
                RunSpec("clipped", "sgd", {"lr": 1.0}, clip_norm=1.0)],
               steps=40, length=100, model=model)
    records = list(NetworkRace(lab).records())
    events = [event for record in records for event in record.diverged]
    assert [event.label for event in events] == ["plain"]
    assert events[0].layer == "0.weight_hh_l0"  # the recurrent matrix, named
    assert "0.weight_hh_l0" in events[0].reason
    assert max(r.grad_norm[0] for r in records) > 1e3  # it did explode before the freeze
    clipped = np.array([r.grad_norm[1] for r in records])
    assert records[-1].alive[1] and np.all(np.isfinite([r.loss[1] for r in records]))
    assert np.all(np.isfinite(clipped)) and (clipped > 1.0).any()  # clipping fired
    # ... and the records say where: exactly the steps whose norm before clipping exceeded 1.
    fired = np.array([r.clipped[1] for r in records])
    np.testing.assert_array_equal(fired, clipped > 1.0)
    assert not any(r.clipped[0] for r in records)  # the plain run has no clip_norm
    history = NetworkHistory(["plain", "clipped"])
    history.extend(records)
    assert history.clip_steps[1] == [float(r.step) for r in records if r.clipped[1]]
    assert len(history.sequence_stats) == len([r for r in records if r.evaluation is not None])


def test_an_lstm_beats_the_adding_baseline():
    # T = 10 keeps it to seconds; the baseline is 1/6 (answering 1 always).
    lab = _lab([RunSpec("adam", "adam", {"lr": 0.03})], steps=250, length=10)
    records = [r for r in NetworkRace(lab).records() if r.evaluation is not None]
    first, last = records[0].evaluation.val["mse"][0], records[-1].evaluation.val["mse"][0]
    assert first > 1 / 6  # an untrained network does worse than the baseline
    assert last < (1 / 6) / 4


def _independent_hidden_grads(model, x, y) -> np.ndarray:
    """‖∂L/∂h_t‖ by rerunning torch's fused LSTM from step t with h_t as a leaf (c_t fixed)."""
    lstm, rest = model[0], model[1:]
    out = lstm(x)  # (B, T, H): the h_t of every step
    steps = x.shape[1]
    norms = []
    h_all, c_all = [], []
    with torch.no_grad():
        for t in range(steps):  # the state after step t, by the fused LSTM over x[:, :t+1]
            _, (h, c) = torch.nn.LSTM.forward(lstm, x[:, :t + 1])
            h_all.append(h)
            c_all.append(c)
    for t in range(steps):
        h = h_all[t].detach().clone().requires_grad_(True)  # (1, B, H)
        if t + 1 < steps:
            tail = torch.nn.LSTM.forward(lstm, x[:, t + 1:], (h, c_all[t].detach()))[0]
        else:
            tail = h.transpose(0, 1)
        loss = F.mse_loss(rest(tail), y)
        (grad,) = torch.autograd.grad(loss, h)
        norms.append(float(grad.norm()))
    assert out.shape[1] == steps
    return np.array(norms)


def test_the_hidden_gradient_heat_map_equals_an_independent_autograd_computation():
    lab = _lab([RunSpec("adam", "adam", {"lr": 0.01}), RunSpec("sgd", "sgd", {"lr": 0.5})],
               steps=30, length=12, eval_every=10)
    race = NetworkRace(lab)
    # Recurrent layers train on the per-run path, and the race says why.
    assert race.stack is None and "recurrent" in race.seed_races[0].per_run_reason
    records = [r for r in race.records() if r.evaluation is not None]
    last = records[-1].evaluation
    assert last.hidden_grad.shape == (2, 12) and len(records) == 4
    x, y = race.x_train[:PROBE_SIZE], race.y_train[:PROBE_SIZE]
    for i, model in enumerate(race.models):
        model.eval()
        expected = _independent_hidden_grads(model, x, y)
        np.testing.assert_allclose(last.hidden_grad[i], expected, rtol=1e-4, atol=1e-9)
        # The spectral radius of the LSTM's candidate block (gates i, f, g, o), by numpy.
        w = race.models[i][0].weight_hh_l0.detach().double().numpy()[32:48]
        assert recurrent_radius(model)[0] == pytest.approx(
            float(np.abs(np.linalg.eigvals(w)).max()), rel=1e-9)
        np.testing.assert_allclose(last.recurrent_radius[i], recurrent_radius(model))
    # Backpropagation through time: the gradient reaching early steps is smaller (it vanishes).
    assert last.hidden_grad[0, 0] < last.hidden_grad[0, -1]
    assert math.isfinite(float(last.hidden_grad.sum()))


# --- the cliff: norm clipping on a 2-D function race ---------------------------------------------


def _cliff_lab(runs, steps=120):
    from core.lab.format import lab_from_dict

    return lab_from_dict({"format": "descent-lab/1", "name": "cliff", "seed": 0, "steps": steps,
                          "problem": {"kind": "function", "function": "rnn_cliff",
                                      "start": [4.8, -4.0]},
                          "runs": runs})


def test_the_cliff_is_the_unrolled_one_unit_rnn_loss():
    from core.problems.functions import FUNCTIONS

    f = FUNCTIONS["rnn_cliff"]
    w, b = np.array([4.8, 4.0, 9.5]), np.array([-4.0, -1.9526871175489784, 7.3])
    h = np.full(3, 0.5)
    for _ in range(50):  # independently, in numpy: h_t = w σ(h_(t-1)) + b
        h = w / (1.0 + np.exp(-h)) + b
    expected = (1.0 / (1.0 + np.exp(-h)) - 0.7) ** 2
    np.testing.assert_allclose(f(torch.from_numpy(w), torch.from_numpy(b)).numpy(), expected,
                               rtol=1e-12, atol=1e-15)
    # The wall: between two points 0.01 apart the loss jumps by more than 0.05.
    xs = torch.linspace(4.0, 5.0, 1001, dtype=torch.float64)
    values = f(xs, torch.full_like(xs, -2.6))
    assert float((values[1:] - values[:-1]).abs().max()) > 0.05


def test_norm_clipping_on_a_function_race_is_torchs_clip_grad_norm():
    lab = _cliff_lab([{"label": "GD", "optimizer": "sgd", "params": {"lr": 0.5}},
                      {"label": "clipped", "optimizer": "sgd", "params": {"lr": 0.5},
                       "clip_norm": 0.5}])
    from core.engine.function_race import FunctionRace

    records = list(FunctionRace(lab).records())
    for run, clip in ((0, None), (1, 0.5)):
        point = torch.tensor([4.8, -4.0], dtype=torch.float64, requires_grad=True)
        opt = torch.optim.SGD([point], lr=0.5)
        from core.problems.functions import FUNCTIONS

        for step in range(121):
            opt.zero_grad()
            loss = FUNCTIONS["rnn_cliff"](point[0], point[1])
            loss.backward()
            assert records[step].grad_norm[run] == pytest.approx(float(point.grad.norm()))
            np.testing.assert_allclose(records[step].point[run], point.detach().numpy(),
                                       rtol=0, atol=1e-12)
            if clip is not None:
                torch.nn.utils.clip_grad_norm_([point], clip)
            opt.step()
    # Thrown off the wall without clipping; kept by the minimum with it.
    assert records[-1].loss[0] > 0.08 and records[-1].loss[1] < 0.01
    assert max(r.grad_norm[0] for r in records) > 20


def test_clip_norm_is_a_function_run_control_but_l1_is_not():
    lab = _cliff_lab([{"label": "c", "optimizer": "sgd", "clip_norm": 2.0}])
    assert lab.runs[0].clip_norm == 2.0
    with pytest.raises(LabError) as info:
        _cliff_lab([{"label": "c", "optimizer": "sgd", "l1": 0.1}])
    assert info.value.field == "runs[0].l1"
    with pytest.raises(LabError) as info:
        _cliff_lab([{"label": "c", "optimizer": "sgd", "clip_norm": -1}])
    assert info.value.field == "runs[0].clip_norm"
