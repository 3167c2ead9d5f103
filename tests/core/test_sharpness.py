"""Sharpness and Hessian directions against a float64 exact Hessian (``torch.func.hessian`` +
``torch.linalg.eigh``) on small MLPs: at initial weights where the Hessian is strongly indefinite
(|λ_min| ≥ 0.7 λ_max, where 20 steps of power iteration converged to neither end), at trained
weights, along a tracked training run; and a solve that cannot converge is reported as such."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, hessian

from core.engine.history import NetworkHistory
from core.engine.network_race import NetworkRace
from core.engine.runner import run_to_dir
from core.errors import LabError
from core.lab.format import Lab, NetworkProblem, RunSpec, save_lab, validate_lab
from core.landscape import curvature, eigensolver

RTOL = 1e-3


def _data(n: int = 128, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g)
    return x, ((x[:, 0] * x[:, 1]) > 0).long()  # XOR quadrants


def _mlp(activation: type[nn.Module], sigma: float, seed: int, width: int = 16) -> nn.Sequential:
    """2-width-width-2, every parameter drawn from N(0, σ²) (the lab's {"normal": σ} init)."""
    model = nn.Sequential(nn.Linear(2, width), activation(), nn.Linear(width, width), activation(),
                          nn.Linear(width, 2))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * sigma)
    return model


def _exact_hessian(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """The full Hessian of the mean cross entropy in float64, parameters flattened in order."""
    double = copy.deepcopy(model).double()
    names = [name for name, _ in double.named_parameters()]
    shapes = [p.shape for p in double.parameters()]
    sizes = [p.numel() for p in double.parameters()]

    def loss(flat: torch.Tensor) -> torch.Tensor:
        params = {n: t.reshape(s) for n, t, s in zip(names, flat.split(sizes), shapes)}
        return F.cross_entropy(functional_call(double, params, (x.double(),)), y)

    flat = torch.cat([p.detach().reshape(-1) for p in double.parameters()])
    return hessian(loss)(flat).numpy()


def _train(model: nn.Module, x, y, steps: int = 300, lr: float = 0.01) -> nn.Module:
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return model


# (activation, σ, seed): initial points whose Hessian is strongly indefinite; at each the old
# 20-product power iteration was off (by 2 % to 30 %) or gave λ2 > λ1.
INDEFINITE = [(nn.ReLU, 1.0, 4), (nn.ReLU, 3.0, 7), (nn.Tanh, 1.0, 6), (nn.Tanh, 3.0, 5)]


def _check_against_exact(model: nn.Module, x, y, require_indefinite: bool) -> None:
    h = _exact_hessian(model, x, y)
    values, vectors = np.linalg.eigh(h)
    top, second, bottom = values[-1], values[-2], values[0]
    if require_indefinite:  # the case this file is about, not a friendly PSD one
        assert abs(bottom) >= 0.7 * top > 0
    loss_fn = curvature.model_loss(x, y, F.cross_entropy)

    value = curvature.sharpness(model, loss_fn, generator=torch.Generator().manual_seed(0))
    assert value == pytest.approx(top, rel=RTOL)

    d1, d2, found = curvature.hessian_directions(model, loss_fn,
                                                 generator=torch.Generator().manual_seed(0))
    assert found[0] >= found[1]
    np.testing.assert_allclose(found, [top, second], rtol=RTOL)
    d = torch.stack([d1, d2]).double().numpy()
    np.testing.assert_allclose(d @ d.T, np.eye(2), atol=1e-5)  # orthonormal
    # ... and eigenvectors of the exact Hessian for those eigenvalues (small residual).
    for vector, lam in zip(d, (top, second)):
        assert np.linalg.norm(h @ vector - lam * vector) <= RTOL * abs(top)


@pytest.mark.parametrize(("activation", "sigma", "seed"), INDEFINITE)
def test_sharpness_and_directions_at_indefinite_initial_points(activation, sigma, seed):
    x, y = _data()
    _check_against_exact(_mlp(activation, sigma, seed), x, y, require_indefinite=True)


@pytest.mark.parametrize(("activation", "sigma", "seed"), INDEFINITE[:2] + INDEFINITE[3:])
def test_sharpness_and_directions_at_trained_weights(activation, sigma, seed):
    x, y = _data()
    model = _train(_mlp(activation, sigma, seed), x, y)
    _check_against_exact(model, x, y, require_indefinite=False)


def test_tracked_sharpness_follows_the_exact_value_and_warm_starts_cost_less():
    x, y = _data()
    model = _mlp(nn.ReLU, 3.0, 7)  # starts at an indefinite point (see INDEFINITE)
    loss_fn = curvature.model_loss(x, y, F.cross_entropy)
    tracker = curvature.SharpnessTracker(1)
    opt = torch.optim.SGD(model.parameters(), lr=0.02)
    costs = []
    for step in range(61):
        opt.zero_grad()
        if step % 10 == 0:
            exact = np.linalg.eigvalsh(_exact_hessian(model, x, y))[-1]
            assert tracker.measure(0, model, loss_fn) == pytest.approx(exact, rel=RTOL), step
            costs.append(tracker.products[0])
            assert all(p.grad is None for p in model.parameters())  # no gradients left behind
        F.cross_entropy(model(x), y).backward()
        opt.step()
    # Warm starts from the previous eigenvector need a fraction of the cold start's products.
    assert max(costs[1:]) < costs[0]


def test_the_eigensolver_matches_eigh_on_an_indefinite_matrix():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((60, 60)))
    spectrum = np.concatenate([[3.0, 2.9], np.linspace(-3.1, 1.0, 58)])  # |λ_min| > λ_max
    matrix = (q * spectrum) @ q.T
    for size in (60, 5):  # Lanczos, and the dense route of a tiny space
        a = matrix[:size, :size]
        expected = np.linalg.eigvalsh(a)[::-1][:2]
        result = eigensolver.top_eigenpairs(lambda v, a=a: a @ v, size, k=2,
                                            start=rng.standard_normal(size), max_products=300)
        assert result.converged and result.products <= 300
        np.testing.assert_allclose(result.values, expected, rtol=RTOL)
        np.testing.assert_allclose(result.vectors.T @ result.vectors, np.eye(2), atol=1e-10)


def test_a_solve_that_cannot_converge_is_reported_as_not_converged_not_as_a_number():
    x, y = _data()
    model = _mlp(nn.ReLU, 3.0, 7)
    loss_fn = curvature.model_loss(x, y, F.cross_entropy)
    result = curvature.hessian_top_eigen(model, loss_fn, k=1, max_products=2)
    assert not result.converged and result.products <= 2 and np.isnan(result.values).all()
    assert np.isnan(curvature.sharpness(model, loss_fn, max_products=2))
    assert np.isnan(curvature.SharpnessTracker(1, max_products=2).measure(0, model, loss_fn))
    d1, d2, values = curvature.hessian_directions(model, loss_fn, max_products=2)
    assert np.isnan(values).all()
    d = torch.stack([d1, d2]).double()
    torch.testing.assert_close(d @ d.T, torch.eye(2, dtype=torch.float64), atol=1e-5, rtol=0)
    with pytest.raises(LabError) as error:
        curvature.sharpness(model, loss_fn, max_products=0)
    assert error.value.field == "max_products"


def _tracked_lab(steps: int = 6) -> Lab:
    problem = NetworkProblem(
        dataset={"name": "moons", "n": 128, "noise": 0.2, "val_fraction": 0.25},
        model={"layers": [{"linear": 16}, {"act": "relu"}, {"linear": 2}], "init": {"normal": 3.0}},
        batch_size=None, eval_every=3, sharpness_every=3)
    runs = (RunSpec("SGD", "sgd", {"lr": 0.01}), RunSpec("Adam", "adam", {"lr": 0.01}))
    return validate_lab(Lab(name="t", seed=0, steps=steps, problem=problem, runs=runs))


@pytest.fixture
def starved_tracker(monkeypatch):
    """Races track sharpness with a budget of 2 products: no measurement can converge."""
    import core.engine.seed_race

    real = core.engine.seed_race.SharpnessTracker
    monkeypatch.setattr(core.engine.seed_race, "SharpnessTracker",
                        lambda count: real(count, max_products=2))


def test_records_history_and_summary_carry_not_converged_as_nan_and_null(starved_tracker,
                                                                           tmp_path):
    race = NetworkRace(_tracked_lab())
    history = NetworkHistory(race.labels)
    records = list(race.records())
    history.extend(records)
    measured = [r for r in records if r.sharpness is not None]
    assert [r.step for r in measured] == [0, 3, 6]
    assert all(np.isnan(r.sharpness).all() and r.alive.all() for r in measured)
    steps, values, _ = history.sharpness_series(0)
    np.testing.assert_array_equal(steps, [0, 3, 6])  # kept as not-converged points, not dropped
    assert np.isnan(values).all() and np.isnan(history.last_sharpness(0))

    run_to_dir(_tracked_lab(), tmp_path)
    runs = json.loads((tmp_path / "summary.json").read_text())["runs"]
    assert [(r["sharpness"], r["sharpness_converged"]) for r in runs] == [(None, False)] * 2


def test_summary_reports_a_converged_sharpness_as_a_number(tmp_path):
    run_to_dir(_tracked_lab(), tmp_path)
    runs = json.loads((tmp_path / "summary.json").read_text())["runs"]
    assert all(r["sharpness_converged"] and r["sharpness"] > 0 for r in runs)


def _init_lab(path, sharpness_every: int = 0) -> Lab:
    """A ReLU MLP at its {"normal": 1} initial weights (lr 1e-9: one step leaves them as they
    are), where λ_min ≈ −0.95 λ_max: the old CLI printed 2.94 for a λ_max of 5.38."""
    problem = NetworkProblem(
        dataset={"name": "moons", "n": 128, "noise": 0.2, "val_fraction": 0.25},
        model={"layers": [{"linear": 16}, {"act": "relu"}, {"linear": 16}, {"act": "relu"},
                          {"linear": 2}], "init": {"normal": 1.0}},
        batch_size=None, eval_every=1, device="cpu", sharpness_every=sharpness_every)
    lab = validate_lab(Lab(name="init", seed=0, steps=1, problem=problem,
                           runs=(RunSpec("SGD", "sgd", {"lr": 1e-9}),)))
    save_lab(lab, path)
    return lab


def _exact_at_init(lab: Lab) -> np.ndarray:
    race = NetworkRace(lab)
    model, x, y, criterion = race.models[0], race.x_train, race.y_train, race.criterion
    double = copy.deepcopy(model).double()
    names = [name for name, _ in double.named_parameters()]
    shapes = [p.shape for p in double.parameters()]
    sizes = [p.numel() for p in double.parameters()]

    def loss(flat):
        params = {n: t.reshape(s) for n, t, s in zip(names, flat.split(sizes), shapes)}
        return criterion(functional_call(double, params, (x.double(),)), y)

    flat = torch.cat([p.detach().reshape(-1) for p in double.parameters()])
    return np.linalg.eigvalsh(hessian(loss)(flat).numpy())


def test_surface_command_and_summary_report_the_exact_sharpness_at_initial_weights(
        tmp_path, capsys):
    import argparse

    from cli.surface import register

    lab = _init_lab(tmp_path / "init.lab.json")
    exact = _exact_at_init(lab)
    assert abs(exact[0]) >= 0.7 * exact[-1]  # the indefinite case

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["surface", str(tmp_path / "init.lab.json"), "--out",
                              str(tmp_path / "out"), "--grid", "3", "--directions", "hessian",
                              "--steps", "1"])
    assert args.handler(args) == 0
    printed = capsys.readouterr().out
    with np.load(tmp_path / "out" / "surface.npz") as data:
        sharp, failed, values = data["sharpness"], data["sharpness_not_converged"], \
            data["eigenvalues"]
    assert sharp[0] == pytest.approx(exact[-1], rel=RTOL) and not failed.any()
    assert f"sharpness {sharp[0]:.6g}" in printed
    assert values[0] >= values[1]
    np.testing.assert_allclose(values, exact[::-1][:2], rtol=RTOL)

    tracked = _init_lab(tmp_path / "tracked.lab.json", sharpness_every=1)
    run_to_dir(tracked, tmp_path / "run")
    runs = json.loads((tmp_path / "run" / "summary.json").read_text())["runs"]
    assert runs[0]["sharpness_converged"]
    assert runs[0]["sharpness"] == pytest.approx(exact[-1], rel=RTOL)


def test_a_seed_that_did_not_converge_makes_the_mean_over_seeds_not_converged(monkeypatch):
    """With two seeds, seed 0 measured and seed 1 starved: the run's sharpness is NaN (not
    converged), not seed 0's value passed off as the mean over the seeds."""
    import dataclasses

    import core.engine.seed_race

    real = core.engine.seed_race.SharpnessTracker
    made = []

    def tracker(count):
        made.append(count)
        return real(count) if len(made) == 1 else real(count, max_products=2)

    lab = _tracked_lab()
    two = dataclasses.replace(lab, problem=dataclasses.replace(lab.problem, seeds=2))
    monkeypatch.setattr(core.engine.seed_race, "SharpnessTracker", tracker)
    measured = [r for r in NetworkRace(validate_lab(two)).records() if r.sharpness is not None]
    assert len(made) == 2 and [r.step for r in measured] == [0, 3, 6]
    assert all(np.isnan(r.sharpness).all() for r in measured)

    made.clear()
    monkeypatch.setattr(core.engine.seed_race, "SharpnessTracker", real)
    converged = [r for r in NetworkRace(validate_lab(two)).records() if r.sharpness is not None]
    assert all(np.isfinite(r.sharpness).all() for r in converged)
