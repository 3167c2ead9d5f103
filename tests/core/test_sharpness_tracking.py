"""Sharpness tracking during training: the tracker against closed forms, the lab field, the
records, NetworkHistory's accessors and summary.json — and that tracking changes nothing else."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from core.engine.history import NetworkHistory
from core.engine.network_race import NetworkRace
from core.engine.runner import run_to_dir
from core.errors import LabError
from core.lab.format import Lab, NetworkProblem, RunSpec, lab_from_dict, lab_to_dict, validate_lab
from core.landscape import curvature


def _regression(n: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    # Columns of very different scales: a clear gap between the top two eigenvalues.
    x = torch.randn(n, 4, generator=g) * torch.tensor([3.0, 1.0, 0.5, 0.2])
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [0.0]]) + 0.1 * torch.randn(n, 1, generator=g)
    return x, y


def test_tracked_sharpness_of_linear_regression_is_2_lambda_max_of_xtx_over_n():
    x, y = _regression()
    model = nn.Linear(4, 1, bias=False)
    loss = curvature.model_loss(x, y, F.mse_loss)
    analytic = float(torch.linalg.eigvalsh(2 * x.T.double() @ x.double() / len(x))[-1])
    tracker = curvature.SharpnessTracker(1)
    first = tracker.measure(0, model, loss)
    assert first == pytest.approx(analytic, rel=1e-3)
    # The Hessian of MSE does not depend on the weights: after a step the warm start is already
    # the eigenvector, so the cheap measurement gives the same number.
    with torch.no_grad():
        model.weight.add_(0.5)
    assert tracker.measure(0, model, loss) == pytest.approx(analytic, rel=1e-3)
    assert model.weight.grad is None  # measuring leaves no gradients behind


def test_tracked_sharpness_of_a_known_quadratic_and_its_warm_start():
    # L(w) = ½ wᵀ A w with eigenvalues 5, 2, 1, 0.5 in a rotated basis: λ_max = 5.
    q, _ = torch.linalg.qr(torch.randn(4, 4, generator=torch.Generator().manual_seed(1)))
    a = q @ torch.diag(torch.tensor([5.0, 2.0, 1.0, 0.5])) @ q.T
    model = nn.Linear(4, 1, bias=False)

    def quadratic(m: nn.Module) -> torch.Tensor:
        w = m.weight.reshape(-1)
        return 0.5 * w @ a @ w

    tracker = curvature.SharpnessTracker(1)
    assert tracker.measure(0, model, quadratic) == pytest.approx(5.0, rel=1e-3)
    assert tracker.measure(0, model, quadratic) == pytest.approx(5.0, rel=1e-3)
    # Two products cannot converge here: the tracker says so (NaN), it does not guess.
    starved = curvature.SharpnessTracker(1, max_products=2)
    assert np.isnan(starved.measure(0, model, quadratic))


def _lab(sharpness_every: int, steps: int = 10, seeds: int = 1) -> Lab:
    problem = NetworkProblem(dataset={"name": "moons", "n": 160, "noise": 0.2},
                             model={"layers": [{"linear": 8}, {"act": "relu"}, {"linear": 2}]},
                             batch_size=32, eval_every=5, sharpness_every=sharpness_every,
                             seeds=seeds)
    runs = (RunSpec("SGD", "sgd", {"lr": 0.5}), RunSpec("Adam", "adam", {"lr": 0.02}))
    return validate_lab(Lab(name="t", seed=0, steps=steps, problem=problem, runs=runs))


def test_records_and_history_carry_sharpness_every_n_steps_and_the_last():
    race = NetworkRace(_lab(sharpness_every=4, steps=10))
    history = NetworkHistory(race.labels)
    measured = []
    for record in race.records():
        history.extend([record])
        if record.sharpness is not None:
            measured.append(record.step)
            assert record.sharpness.shape == (2,) and np.all(record.sharpness > 0)
    assert measured == [0, 4, 8, 10]
    steps, sharpness, lr = history.sharpness_series(1)
    np.testing.assert_array_equal(steps, [0, 4, 8, 10])
    np.testing.assert_allclose(lr, 0.02)
    assert history.last_sharpness(1) == sharpness[-1]
    # Against the one-shot reference at the final weights (seed 0's model, training samples).
    loss = curvature.model_loss(race.x_train, race.y_train, race.criterion)
    # The last record's weights are the final ones (no update after the last step).
    reference = curvature.sharpness(race.models[0], loss)
    assert history.last_sharpness(0) == pytest.approx(reference, rel=1e-2)


def test_tracking_off_leaves_records_and_history_unchanged():
    plain, tracked = NetworkRace(_lab(0)), NetworkRace(_lab(3))
    history = NetworkHistory(plain.labels)
    for a, b in zip(plain.records(), tracked.records()):
        assert a.sharpness is None
        history.extend([a])
        # Measuring reads the weights only: training is step for step the same.
        np.testing.assert_array_equal(a.loss, b.loss)
        np.testing.assert_array_equal(a.grad_norm, b.grad_norm)
    assert history.sharpness is None
    steps, values, lr = history.sharpness_series(0)
    assert len(steps) == len(values) == len(lr) == 0
    assert np.isnan(history.last_sharpness(0))


def test_several_seeds_average_the_sharpness():
    race = NetworkRace(_lab(sharpness_every=5, steps=5, seeds=2))
    values = [r.sharpness for r in race.records() if r.sharpness is not None]
    assert len(values) == 2 and all(np.all(np.isfinite(v)) for v in values)


def test_the_lab_field_validates_round_trips_and_stays_out_of_old_files():
    data = lab_to_dict(_lab(0))
    assert "sharpness_every" not in data["problem"]  # older files round-trip unchanged
    data["problem"]["sharpness_every"] = 25
    lab = lab_from_dict(data)
    assert lab.problem.sharpness_every == 25
    assert lab_to_dict(lab)["problem"]["sharpness_every"] == 25
    data["problem"]["sharpness_every"] = -1
    with pytest.raises(LabError) as error:
        lab_from_dict(data)
    assert error.value.field == "problem.sharpness_every"


def test_summary_json_reports_each_runs_last_sharpness(tmp_path):
    run_to_dir(_lab(sharpness_every=5, steps=5), tmp_path / "on")
    run_to_dir(_lab(0, steps=5), tmp_path / "off")
    on = json.loads((tmp_path / "on" / "summary.json").read_text())
    off = json.loads((tmp_path / "off" / "summary.json").read_text())
    assert all(run["sharpness"] > 0 for run in on["runs"])
    assert all("sharpness" not in run for run in off["runs"])


def test_a_lab_built_in_code_with_a_bad_interval_is_refused():
    with pytest.raises(LabError) as error:
        _lab(sharpness_every=-5)
    assert error.value.field == "problem.sharpness_every"
