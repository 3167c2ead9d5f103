"""Each neuron over the data's plane (core/engine/neurons.py): every unit's picture equals that
unit computed by hand with torch, and a race's evaluations carry them for every run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.engine.network_race import NetworkRace
from core.engine.neurons import NEURON_GRID, plane_grid, unit_maps
from core.lab.format import Lab, NetworkProblem, RunSpec, validate_lab
from core.problems.datasets.build import make_dataset
from core.problems.model_spec import validate_model
from core.problems.models import build_model

MOONS = {"name": "moons", "n": 200, "noise": 0.2, "val_fraction": 0.25, "features": ["x", "y",
                                                                                   "x2"]}
MLP = {"layers": [{"linear": 5}, {"act": "tanh"}, {"linear": 4}, {"act": "relu"},
                  {"linear": 2}]}


def _model_and_grid(dataset=MOONS, model=MLP, seed=3):
    data = make_dataset(dataset, seed)
    spec = validate_model(model, data.input_shape, data.n_outputs)
    net = build_model(spec, generator=torch.Generator().manual_seed(seed)).eval()
    return data, net, plane_grid(data, side=9)


def test_every_unit_is_its_own_forward_by_hand():
    data, net, grid = _model_and_grid()
    assert grid.shape == (81, 3)  # x, y and x² of a 9×9 grid over the plane
    maps = unit_maps(net, grid)
    assert [m.shape for m in maps] == [(3, 9, 9), (5, 9, 9), (4, 9, 9), (2, 9, 9)]
    w1, b1, w2, b2, w3, b3 = (p.detach().double() for p in net.parameters())
    x = grid.double()
    # The grid is row-major over (y, x): row j is the j-th y, column i the i-th x of the plane.
    assert grid[1, 0] > grid[0, 0] and grid[9, 1] > grid[0, 1]  # x along a row, y down columns
    for k in range(3):  # the inputs
        np.testing.assert_allclose(maps[0][k].ravel(), x[:, k].numpy(), rtol=1e-6)
    for k in range(5):  # unit k of the first hidden layer: tanh(w1[k]·x + b1[k])
        unit = torch.tanh(x @ w1[k] + b1[k])
        np.testing.assert_allclose(maps[1][k].ravel(), unit.numpy(), atol=1e-6)
    h1 = torch.tanh(x @ w1.T + b1)
    for k in range(4):  # the second: relu(w2[k]·h1 + b2[k])
        unit = torch.relu(h1 @ w2[k] + b2[k])
        np.testing.assert_allclose(maps[2][k].ravel(), unit.numpy(), atol=1e-6)
    h2 = torch.relu(h1 @ w2.T + b2)
    np.testing.assert_allclose(maps[3].reshape(2, -1).T, (h2 @ w3.T + b3).numpy(), atol=1e-6)
    # Not a copy of one unit: the hidden units differ.
    assert len({round(float(m.std()), 6) for m in maps[1]}) == 5


def test_models_without_neuron_columns_give_none():
    conv = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten(), torch.nn.Linear(8, 2))
    assert unit_maps(conv, torch.zeros(16, 2)) is None
    _, net, grid = _model_and_grid()
    assert unit_maps(net, grid[:80]) is None  # not a square grid


@pytest.mark.parametrize("batchnorm", [False, True])  # stacked, then model by model
def test_a_race_evaluation_carries_every_runs_neurons(batchnorm):
    layers = [{"linear": 6}, *([{"batchnorm": True}] if batchnorm else []), {"act": "tanh"},
              {"linear": 2}]
    problem = NetworkProblem(dataset=MOONS, model={"layers": layers}, loss="cross_entropy",
                             batch_size=32, eval_every=5, device="cpu")
    lab = validate_lab(Lab(name="t", seed=4, steps=10, problem=problem, runs=(
        RunSpec("sgd", "sgd", {"lr": 0.1}), RunSpec("adam", "adam", {"lr": 0.02}))))
    race = NetworkRace(lab)
    assert (race.stack is None) == batchnorm
    records = list(race.records())
    evaluation = records[-1].evaluation
    assert evaluation is not None and len(evaluation.neurons) == 2
    grid = plane_grid(race.data, NEURON_GRID)
    for model, columns in zip(race.models, evaluation.neurons):
        assert [c.shape[0] for c in columns] == [3, 6, 2]
        model.eval()
        expected = unit_maps(model, grid)
        for mine, theirs in zip(columns, expected):
            np.testing.assert_allclose(mine, theirs, atol=1e-6)
    # The two runs trained differently: their pictures differ.
    assert not np.allclose(evaluation.neurons[0][1], evaluation.neurons[1][1])
