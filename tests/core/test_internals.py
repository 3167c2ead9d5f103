"""Optimizer internals equal the optimizer's own state and the move the point really made.

Reference: plain torch.optim loops (and the race engine the GUI runs), float64, to 1e-12.
"""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest
import torch

from core.engine.function_race import FunctionRace
from core.engine.history import RaceHistory
from core.lab.format import RunSpec, load_lab, validate_lab
from core.optim.catalog import build_optimizer
from core.optim.internals import DeferredInternals, available_parts, capture, explain
from core.optim.optimizers import OPTIMIZERS

RAVINE = "resources/labs/ravine.lab.json"
TOL = 1e-12


def _ravine(steps: int):
    """The ravine lesson's lab, cut short (the tests look at its first steps)."""
    return validate_lab(replace(load_lab(RAVINE), steps=steps))


def _bumpy(p: torch.Tensor) -> torch.Tensor:
    # Not a quadratic: gradients change direction and size, so no rule is right by accident.
    return 0.5 * (p[0] ** 2 + 30.0 * p[1] ** 2) + 0.4 * torch.sin(3.0 * p[0]) * torch.cos(p[1])


def _plain_loop(name: str, params: dict, steps: int = 25, deferred: list | None = None):
    """A bare torch.optim loop; yields (optimizer, param, Internals) after each step, and also
    appends each step's `DeferredInternals` to ``deferred`` when given."""
    p = torch.tensor([-2.0, 0.8], dtype=torch.float64, requires_grad=True)
    opt = build_optimizer(name, params, [p])

    def closure():
        opt.zero_grad()
        loss = _bumpy(p)
        loss.backward()
        return loss

    for t in range(1, steps + 1):
        closure()
        before = capture(opt, p, p.grad.clone())
        if OPTIMIZERS[name].needs_closure:
            opt.step(closure)
        else:
            opt.step()
        if deferred is not None:
            deferred.append(DeferredInternals(opt, p, before, t))
        yield opt, p, explain(opt, p, before, t)


CASES = [
    ("sgd", {"lr": 0.01}),
    ("sgd", {"lr": 0.01, "momentum": 0.9, "dampening": 0.2, "weight_decay": 0.05}),
    ("sgd", {"lr": 0.01, "momentum": 0.9, "nesterov": True}),
    ("adam", {"lr": 0.05}),
    ("adam", {"lr": 0.05, "amsgrad": True, "weight_decay": 0.1}),
    ("adam", {"lr": 0.05, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("adamw", {"lr": 0.05, "weight_decay": 0.1}),
    ("nadam", {"lr": 0.05, "weight_decay": 0.05}),
    ("nadam", {"lr": 0.05, "weight_decay": 0.05, "decoupled_weight_decay": True}),
    ("radam", {"lr": 0.05, "weight_decay": 0.05}),  # 25 steps cross its ρₜ > 5 switch
    ("adamax", {"lr": 0.05, "weight_decay": 0.01}),
    ("adagrad", {"lr": 0.3, "lr_decay": 0.01, "initial_accumulator_value": 0.1}),
    ("rmsprop", {"lr": 0.01}),
    ("rmsprop", {"lr": 0.01, "centered": True, "momentum": 0.5, "maximize": False}),
    ("adadelta", {"lr": 1.0, "weight_decay": 0.01}),
    ("asgd", {"lr": 0.01, "lambd": 0.01, "t0": 5}),
    ("rprop", {"lr": 0.01}),
    ("adafactor", {"lr": 0.05, "weight_decay": 0.01}),
]


@pytest.mark.parametrize(
    ("name", "params"), CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)]
)
def test_the_update_rebuilt_from_the_state_is_the_step_torch_took(name, params):
    for _opt, _p, info in _plain_loop(name, params):
        assert info.optimizer == name
        assert info.update is not None
        np.testing.assert_allclose(info.update, info.step, rtol=0, atol=TOL)


def test_every_registry_optimizer_usable_on_a_point_is_covered():
    covered = {name for name, _ in CASES} | {"lbfgs"}
    # Muon only takes matrices; a 2-D point is a vector, so it never races on a landscape.
    assert covered == set(OPTIMIZERS) - {"muon"}


def test_sgd_velocity_is_torchs_momentum_buffer_in_the_race():
    lab = _ravine(12)
    momentum = [r.label for r in lab.runs].index("Momentum 0.9")
    race = FunctionRace(lab, internals=True)
    records = list(race.records())
    info = records[12].internals[momentum]
    opt = race.optimizers[momentum]
    buffer = opt.state[opt.param_groups[0]["params"][0]]["momentum_buffer"].numpy()
    assert info.step_index == 12
    np.testing.assert_array_equal(info.velocity, buffer)
    np.testing.assert_allclose(info.velocity_step, -0.012 * buffer, rtol=0, atol=TOL)
    # The arrows start where the previous record's point was and Δ lands on this one's.
    np.testing.assert_array_equal(info.origin, records[11].point[momentum])
    np.testing.assert_allclose(info.origin + info.step, records[12].point[momentum], atol=TOL)
    # The gradient is the one the engine measured at the previous point: |g| = grad_norm.
    assert np.hypot(*info.grad) == pytest.approx(records[11].grad_norm[momentum], rel=1e-12)


def test_adam_effective_step_is_lr_mhat_over_sqrt_vhat_and_the_actual_move():
    beta1, beta2, lr, eps = 0.9, 0.999, 0.05, 1e-8
    for t, (opt, p, info) in enumerate(_plain_loop("adam", {"lr": lr}, steps=15), start=1):
        state = opt.state[p]
        m_hat = state["exp_avg"].numpy() / (1 - beta1**t)
        v_hat = state["exp_avg_sq"].numpy() / (1 - beta2**t)
        expected = -lr * m_hat / (np.sqrt(v_hat) + eps)
        np.testing.assert_allclose(info.effective_step, expected, rtol=0, atol=TOL)
        np.testing.assert_allclose(info.step, expected, rtol=0, atol=TOL)
        np.testing.assert_array_equal(info.velocity, state["exp_avg"].numpy())
        np.testing.assert_array_equal(info.accumulator, state["exp_avg_sq"].numpy())
        np.testing.assert_allclose(info.effective_lr, lr / (np.sqrt(v_hat) + eps), rtol=1e-14)


def test_adagrad_accumulator_is_its_sum_and_rmsprop_its_square_avg():
    for _opt, p, info in _plain_loop("adagrad", {"lr": 0.3}, steps=5):
        np.testing.assert_array_equal(info.accumulator, _opt.state[p]["sum"].numpy())
        np.testing.assert_array_equal(info.accumulator_rms, np.sqrt(_opt.state[p]["sum"].numpy()))
    for opt, p, info in _plain_loop("rmsprop", {"lr": 0.01}, steps=5):
        np.testing.assert_array_equal(info.accumulator, opt.state[p]["square_avg"].numpy())


def test_lbfgs_and_unknown_optimizers_get_gradient_and_step_only():
    infos = [info for _opt, _p, info in _plain_loop("lbfgs", {"lr": 0.5}, steps=2)]
    assert all(info.update is None and info.velocity is None for info in infos)
    np.testing.assert_allclose(infos[0].origin + infos[0].step, infos[1].origin, atol=TOL)
    assert np.hypot(*infos[0].step) > 0.1  # its first step is a real quasi-Newton move

    class Homemade(torch.optim.SGD):  # not in the registry
        pass

    p = torch.tensor([1.0, 2.0], dtype=torch.float64)
    p.grad = torch.tensor([0.5, -1.0], dtype=torch.float64)
    opt = Homemade([p], lr=0.1)
    before = capture(opt, p)
    opt.step()
    info = explain(opt, p, before, 1)
    assert info.optimizer == "Homemade"
    assert info.update is None and info.velocity is None and info.accumulator is None
    np.testing.assert_allclose(info.step, [-0.05, 0.1], atol=TOL)
    assert info.text.startswith("step 1: g = (0.5, -1), Δ = (-0.05, 0.1)")


def _numbers(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?", text)]


def test_the_readout_states_the_state_numbers():
    lab = _ravine(12)
    record = list(FunctionRace(lab, internals=True).records())[-1]
    adam = [r.label for r in lab.runs].index("Adam")
    info = record.internals[adam]
    head, *rest = info.text.splitlines()
    match = re.fullmatch(r"step 12: g = \((.*)\), m = \((.*)\), Δ = \((.*)\)", head)
    assert match, head
    shown = [_numbers(group) for group in match.groups()]
    for values, truth in zip(shown, (info.grad, info.velocity, info.step)):
        np.testing.assert_allclose(values, truth, rtol=1e-5)
    lines = dict(line.strip().split(" = ", 1) for line in rest)
    np.testing.assert_allclose(_numbers(lines["v"]), info.accumulator, rtol=1e-5)
    np.testing.assert_allclose(_numbers(lines["γ/(√v̂ + ε)"]), info.effective_lr, rtol=1e-5)
    assert float(lines["γ"]) == 0.1


def test_internals_off_leaves_the_records_unchanged():
    lab = _ravine(60)
    plain = list(FunctionRace(lab).records())
    probed = list(FunctionRace(lab, internals=True).records())
    assert len(plain) == len(probed)
    for a, b in zip(plain, probed):
        assert a.internals is None
        for name in ("point", "loss", "lr", "grad_norm", "alive"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert probed[0].internals == (None,) * len(lab.runs)  # the start: no update yet
    assert all(info is not None for info in probed[1].internals)


def test_a_diverged_run_has_no_internals_and_nothing_non_finite_leaves():
    lab = _ravine(60)
    runs = (RunSpec("fine", "sgd", {"lr": 0.01}), RunSpec("blows up", "sgd", {"lr": 0.5}))
    lab = validate_lab(replace(lab, runs=runs, steps=60))
    records = list(FunctionRace(lab, internals=True).records())
    dead = next(r.step for r in records if not r.alive[1])
    for record in records[dead:]:
        assert record.internals[1] is None
        assert record.internals[0] is not None
    for record in records[1:dead]:
        assert np.all(np.isfinite(record.internals[1].step))


def test_history_keeps_internals_of_the_newest_steps_only():
    lab = _ravine(120)
    history = RaceHistory([r.label for r in lab.runs], internals_steps=50)
    records = list(FunctionRace(lab, internals=True).records())
    for start in range(0, len(records), 37):  # batches of uneven size, like the worker's
        history.extend(records[start : start + 37])
    last = records[-1].step
    assert history.internals_at(last) == list(records[-1].internals)
    assert history.internals_at(last - 49)[2] is records[last - 49].internals[2]
    assert history.internals_at(last - 50) is None  # not kept: bounded memory
    assert history.internals_at(10_000) is None
    plain = RaceHistory([r.label for r in lab.runs])
    plain.extend(FunctionRace(lab).records())
    assert plain.internals_at(5) is None


def test_available_parts_follow_the_hyperparameters():
    assert available_parts("sgd", {"lr": 0.1}) == ("gradient", "step")
    assert available_parts("sgd", {"momentum": 0.9}) == ("gradient", "velocity", "step")
    assert available_parts("adam", {}) == (
        "gradient", "velocity", "step", "effective", "accumulator"
    )
    assert available_parts("adagrad", {}) == ("gradient", "step", "effective", "accumulator")
    assert available_parts("rmsprop", {"momentum": 0.5})[1] == "velocity"


@pytest.mark.parametrize("name, params", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_deferred_internals_keep_the_state_of_their_own_step(name, params):
    """The race explains an update only when someone looks at it, long after the optimizer has
    moved on: the deferred record must still tell its own step, exactly as the eager one."""
    deferred = []
    eager = [info for _opt, _p, info in _plain_loop(name, params, steps=15, deferred=deferred)]
    for late, now in zip(deferred, eager):  # resolved only now, after all the steps
        assert late.text == now.text
        np.testing.assert_array_equal(late.step, now.step)
        for part, vector in now.vectors().items():
            if vector is not None:
                np.testing.assert_array_equal(late.vectors()[part], vector)
