"""The engine against PyTorch as the reference: every optimizer, side by side, equals a plain loop."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from core.engine.function_race import FunctionRace, race
from core.lab.format import FunctionProblem, Lab, RunSpec, ScheduleSpec, validate_lab
from core.optim.catalog import build_optimizer
from core.optim.optimizers import OPTIMIZERS
from core.optim.schedules import Schedule
from core.problems.functions import get_function

# A gentle learning rate per optimizer so that 60 steps on Beale stay finite and move.
RACE_PARAMS = {
    "sgd": {"lr": 0.002, "momentum": 0.9, "nesterov": True},
    "adagrad": {"lr": 0.1},
    "adadelta": {"lr": 1.0},
    "rmsprop": {"lr": 0.005, "centered": True, "momentum": 0.5},
    "adam": {"lr": 0.05, "amsgrad": True},
    "adamw": {"lr": 0.05, "weight_decay": 0.1},
    "adamax": {"lr": 0.05},
    "nadam": {"lr": 0.05},
    "radam": {"lr": 0.002},  # unrectified first steps are plain momentum: big gradients
    "asgd": {"lr": 0.002},
    "rprop": {"lr": 0.01},
    "adafactor": {"lr": 0.05},
    "lbfgs": {"lr": 0.5, "max_iter": 5},
}


def plain_torch_loop(function, start, optimizer, params, steps, schedule=None):
    """What a user would write by hand: one tensor, one optimizer, one loop."""
    objective = get_function(function)
    p = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    opt = build_optimizer(optimizer, params, [p])
    sched = Schedule(opt, schedule.name, schedule.params, steps) if schedule else None
    points, losses = [p.detach().numpy().copy()], []

    def closure():
        opt.zero_grad()
        loss = objective(p[0], p[1])
        loss.backward()
        return loss

    for _ in range(steps):
        loss = closure()
        losses.append(loss.item())
        if OPTIMIZERS[optimizer].needs_closure:
            opt.step(closure)
        else:
            opt.step()
        if sched is not None:
            sched.step(loss.item())
        points.append(p.detach().numpy().copy())
    losses.append(objective(p[0], p[1]).item())
    return np.array(points), np.array(losses)


def _lab(runs, function="beale", start=(1.0, 1.5), steps=60):
    return validate_lab(
        Lab(name="t", steps=steps, problem=FunctionProblem(function, start), runs=tuple(runs))
    )


def test_every_optimizer_in_one_race_equals_its_own_plain_loop():
    usable = [n for n, info in OPTIMIZERS.items() if info.min_param_ndim <= 1]
    assert set(usable) == set(RACE_PARAMS), "give every new optimizer race params above"
    runs = [RunSpec(name, name, RACE_PARAMS[name]) for name in usable]
    lab = _lab(runs)
    records = list(race(lab))
    assert [r.step for r in records] == list(range(61))
    points = np.stack([r.point for r in records])  # (steps+1, R, 2)
    losses = np.stack([r.loss for r in records])
    for i, name in enumerate(usable):
        ref_points, ref_losses = plain_torch_loop("beale", (1.0, 1.5), name, RACE_PARAMS[name], 60)
        assert records[-1].alive[i], f"{name} diverged in the test race"
        np.testing.assert_allclose(points[:, i], ref_points, rtol=0, atol=1e-7, err_msg=name)
        np.testing.assert_allclose(losses[:, i], ref_losses, rtol=1e-9, atol=1e-9, err_msg=name)
        assert np.abs(points[-1, i] - points[0, i]).max() > 1e-3, f"{name} did not move"


@pytest.mark.parametrize(
    "schedule",
    [
        ScheduleSpec("step", {"step_size": 10, "gamma": 0.5}),
        ScheduleSpec("cosine", {}),
        ScheduleSpec("onecycle", {}),
        ScheduleSpec("plateau", {"patience": 3}),
        ScheduleSpec("warmup_cosine", {"warmup_steps": 10}),
    ],
    ids=lambda s: s.name,
)
def test_scheduled_runs_equal_plain_loop_and_record_the_lr_in_force(schedule):
    lab = _lab([RunSpec("a", "adam", {"lr": 0.05}, schedule)], function="rosenbrock",
               start=(-1.5, 2.0), steps=40)
    records = list(race(lab))
    ref_points, _ = plain_torch_loop("rosenbrock", (-1.5, 2.0), "adam", {"lr": 0.05}, 40,
                                     lab.runs[0].schedule)
    np.testing.assert_allclose(np.stack([r.point[0] for r in records]), ref_points, atol=1e-7)
    # The lr recorded at step t is the lr of the update t -> t+1: replay the schedule alone.
    p = torch.zeros(2, requires_grad=True)
    opt = build_optimizer("adam", {"lr": 0.05}, [p])
    sched = Schedule(opt, schedule.name, lab.runs[0].schedule.params, 40)
    expected = []
    for r in records:
        expected.append(opt.param_groups[0]["lr"])
        opt.step()  # no gradient: a no-op that keeps the scheduler's call-order check happy
        sched.step(float(r.loss[0]))
    np.testing.assert_allclose([r.lr[0] for r in records], expected, rtol=1e-12)


def test_same_lab_same_numbers_bit_for_bit():
    lab = _lab([RunSpec("sgd", "sgd", {"lr": 0.002}), RunSpec("adam", "adam", {"lr": 0.05})])
    first = list(race(lab))
    second = list(race(lab))
    for a, b in zip(first, second, strict=True):
        assert np.array_equal(a.point, b.point) and np.array_equal(a.loss, b.loss)


def test_a_diverging_run_is_frozen_and_the_others_go_on():
    lab = _lab(
        [RunSpec("too big", "sgd", {"lr": 1.5}), RunSpec("fine", "sgd", {"lr": 0.1})],
        function="quadratic", start=(2.0, 1.0), steps=200,
    )
    records = list(race(lab))
    assert records[-1].step == 200
    events = [e for r in records for e in r.diverged]
    assert len(events) == 1 and events[0].label == "too big"
    bad = events[0].step
    assert 5 < bad < 200 and "exploded" in events[0].reason
    for r in records:
        assert np.all(np.isfinite(r.point)) and np.all(np.isfinite(r.loss))
        assert r.alive[0] == (r.step < bad)
    # The frozen run keeps its last finite state; the good run converged.
    assert np.array_equal(records[-1].point[0], records[bad - 1].point[0])
    assert records[-1].loss[1] < 1e-12


def test_nan_is_caught_before_it_leaves_the_engine():
    lab = _lab([RunSpec("a", "sgd", {"lr": 0.1})],
               function={"expression": "sqrt(x) + y**2"}, start=(0.5, 1.0), steps=50)
    records = list(race(lab))
    events = [e for r in records for e in r.diverged]
    assert events and ("NaN" in events[0].reason or "infinite" in events[0].reason)
    assert all(np.all(np.isfinite(r.loss)) and np.all(np.isfinite(r.point)) for r in records)


def test_stop_event_ends_the_generator_between_steps():
    lab = _lab([RunSpec("a", "adam", {"lr": 0.01})], steps=10_000)
    stop = threading.Event()
    seen = 0
    for record in race(lab, stop):
        seen += 1
        if record.step == 25:
            stop.set()
    assert seen == 26


def test_disabled_runs_do_not_race():
    lab = _lab([RunSpec("on", "adam", {"lr": 0.01}),
                RunSpec("off", "sgd", {"lr": 0.01}, enabled=False)], steps=3)
    r = FunctionRace(lab)
    assert r.labels == ("on",)
    assert next(r.records()).point.shape == (1, 2)


def test_step_zero_is_the_start_point():
    lab = _lab([RunSpec("a", "adam", {"lr": 0.01})], start=(0.25, -1.0), steps=2)
    first = next(race(lab))
    assert first.step == 0 and first.point[0].tolist() == [0.25, -1.0]
