"""Faults stay in their run (core/engine/faults.py): an optimizer whose step raises, makes its
parameters NaN or takes longer than the per-step time limit is stopped with the reason (and the
traceback) and frozen at its last good state; the other runs' numbers are bit-identical to a race
without it, on the function race, the network race's per-run and batched paths, with several
seeds and with branches; summary.json records the failure.

The faulty optimizers are small `torch.optim.Optimizer` classes defined here, made available to
a race by registering an `OptimizerInfo` for them in `core.optim.optimizers.OPTIMIZERS`. No test
sleeps: the slow one advances the clock the races read (`core.engine.faults.clock`).
"""

from __future__ import annotations

import argparse
import csv
import json

import numpy as np
import pytest
import torch

from core.engine import faults
from core.engine.function_race import FunctionRace
from core.engine.network_race import NetworkRace
from core.engine.runner import run_to_dir
from core.errors import LabError
from core.lab.format import (
    BranchSpec,
    FunctionProblem,
    Lab,
    NetworkProblem,
    RunSpec,
    validate_lab,
)
from core.optim import optimizers
from core.optim.hyperparams import HyperParam
from core.optim.optimizers import OptimizerInfo

FAULT_AT = 5  # the optimizers below fault on their 5th step (the update from step 4 to 5)


class PlainSGD(torch.optim.Optimizer):
    """θ ← θ − lr·g, as a user would write it."""

    def __init__(self, params, lr=0.01):
        super().__init__(params, {"lr": lr})
        self.calls = 0

    @torch.no_grad()
    def step(self, closure=None):
        self.calls += 1
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad, alpha=-group["lr"])
        self.fault()

    def fault(self):
        pass


class Raises(PlainSGD):
    """Updates the parameters, THEN raises on its 5th step: the run must be put back."""

    def fault(self):
        if self.calls == FAULT_AT:
            raise ZeroDivisionError("the update rule divided by zero")


class MakesNaN(PlainSGD):
    def fault(self):
        if self.calls == FAULT_AT:
            for group in self.param_groups:
                for p in group["params"]:
                    p.fill_(float("nan"))


class Slow(PlainSGD):
    """Takes 41.2 s on its 5th step, by the clock the races read."""

    clock = [0.0]

    def fault(self):
        if self.calls == FAULT_AT:
            Slow.clock[0] += 41.2


class AbsurdMemory(PlainSGD):
    """Asks for 2⁴⁵ floats (128 TiB) on its 5th step: the allocator refuses at once."""

    def fault(self):
        if self.calls == FAULT_AT:
            self.scratch = torch.empty(2 ** 45)


class CannotBuild(torch.optim.Optimizer):
    def __init__(self, params, lr=0.01):
        raise TypeError("CannotBuild.__init__() needs a closure")

    def step(self, closure=None):
        raise AssertionError("never built, never stepped")


class RaisesOnOneSeed(PlainSGD):
    """Raises on the 5th step of the second instance built (seed 1's, of a 2-seed race)."""

    built = 0

    def __init__(self, params, lr=0.01):
        super().__init__(params, lr)
        self.index = RaisesOnOneSeed.built
        RaisesOnOneSeed.built += 1

    def fault(self):
        if self.index == 1 and self.calls == FAULT_AT:
            raise RuntimeError("seed 1's optimizer broke")


FAULTY = {"plain": PlainSGD, "raises": Raises, "nan": MakesNaN, "slow": Slow,
          "one_seed": RaisesOnOneSeed, "cannot_build": CannotBuild, "absurd": AbsurdMemory}


@pytest.fixture(autouse=True)
def faulty_optimizers(monkeypatch):
    lr = HyperParam("lr", 0.01, "float", low=0.0, log=True)
    for name, cls in FAULTY.items():
        monkeypatch.setitem(optimizers.OPTIMIZERS, name,
                            OptimizerInfo(name=name, cls=cls, title=name, hyperparams=(lr,),
                                          update_rule="θ ← θ − lr·g"))
    Slow.clock[0] = 0.0
    RaisesOnOneSeed.built = 0
    # The races read the time from here: a clock only the slow optimizer moves.
    monkeypatch.setattr(faults, "clock", lambda: Slow.clock[0])


ADAM = RunSpec("Adam", "adam", {"lr": 0.05})
SGD = RunSpec("SGD", "sgd", {"lr": 1e-3, "momentum": 0.9})


def _function_lab(runs, steps=30):
    return validate_lab(Lab(name="faults", seed=0, steps=steps,
                            problem=FunctionProblem("rosenbrock", (-1.5, 2.0)), runs=tuple(runs)))


def _plain_sgd_points(lr: float, updates: int) -> np.ndarray:
    """Rosenbrock from (-1.5, 2) by θ ← θ − lr·∇f in float64, written out: the points 0…updates."""
    x, y = -1.5, 2.0
    points = [(x, y)]
    for _ in range(updates):
        gx = -2 * (1 - x) - 400 * x * (y - x * x)
        gy = 200 * (y - x * x)
        x, y = x - lr * gx, y - lr * gy
        points.append((x, y))
    return np.array(points)


def _assert_same_runs(records, kept, reference):
    """``records``' runs ``kept`` are, bit for bit, the runs of ``reference``'s records."""
    assert len(records) == len(reference)
    for got, want in zip(records, reference):
        assert got.step == want.step
        np.testing.assert_array_equal(got.loss[kept], want.loss)
        np.testing.assert_array_equal(got.grad_norm[kept], want.grad_norm)
        np.testing.assert_array_equal(got.lr[kept], want.lr)
        np.testing.assert_array_equal(got.alive[kept], want.alive)
        if hasattr(got, "point"):
            np.testing.assert_array_equal(got.point[kept], want.point)


# -- the function race ---------------------------------------------------------------------------


def test_a_raising_optimizer_stops_its_run_at_its_last_good_point_and_the_others_go_on():
    runs = [ADAM, RunSpec("Broken", "raises", {"lr": 1e-3}), RunSpec("NaN", "nan", {"lr": 1e-3}),
            SGD]
    race = FunctionRace(_function_lab(runs))
    records = list(race.records())
    _assert_same_runs(records, [0, 3], list(FunctionRace(_function_lab([ADAM, SGD])).records()))
    assert records[-1].step == 30 and records[-1].alive.tolist() == [True, False, False, True]

    event = race.diverged[1]
    assert (event.kind, event.step, event.label) == ("failed", FAULT_AT, "Broken")
    assert event.reason == "ZeroDivisionError: the update rule divided by zero"
    assert event.verb == "failed"
    # The traceback reaches into the optimizer's own code.
    assert 'raise ZeroDivisionError("the update rule divided by zero")' in event.traceback
    assert "test_faults.py" in event.traceback
    # Frozen on the point after 4 updates (the 5th was made, then it raised: taken back), which a
    # plain float64 loop of the same rule gives.
    expected = _plain_sgd_points(1e-3, FAULT_AT - 1)
    for record in records[FAULT_AT:]:
        np.testing.assert_allclose(record.point[1], expected[-1], rtol=1e-12)
    np.testing.assert_allclose(race.points[1].numpy(), expected[-1], rtol=1e-12)
    assert event.last_point == pytest.approx(tuple(expected[-1]), rel=1e-12)
    assert event.lr == pytest.approx(1e-3)
    assert event.step in [r.step for r in records if any(e.run == 1 for e in r.diverged)]

    # NaN parameters are a divergence, as ever: frozen at its last finite point.
    nan = race.diverged[2]
    assert (nan.kind, nan.step) == ("diverged", FAULT_AT) and nan.traceback is None
    np.testing.assert_allclose(records[-1].point[2], expected[-1], rtol=1e-12)


def test_a_step_over_the_time_limit_stops_its_run_with_how_long_it_took():
    race = FunctionRace(_function_lab([ADAM, RunSpec("Slow", "slow", {"lr": 1e-3}), SGD]))
    records = list(race.records())
    _assert_same_runs(records, [0, 2], list(FunctionRace(_function_lab([ADAM, SGD])).records()))
    event = race.diverged[1]
    assert (event.kind, event.step) == ("too slow", FAULT_AT)
    assert event.reason == "step took 41.2 s, over the 30 s limit"
    assert event.verb == "was stopped"
    np.testing.assert_allclose(records[-1].point[1], _plain_sgd_points(1e-3, FAULT_AT - 1)[-1],
                               rtol=1e-12)
    # The limit is the caller's: with none, the slow step is only slow.
    unlimited = FunctionRace(_function_lab([RunSpec("Slow", "slow", {"lr": 1e-3})]),
                             step_time_limit=None)
    assert list(unlimited.records())[-1].alive.all()


@pytest.mark.parametrize("limit", [0, -1.0, float("nan"), "30"])
def test_a_bad_time_limit_is_refused_naming_it(limit):
    with pytest.raises(LabError, match="step_time_limit: must be a number of seconds > 0"):
        FunctionRace(_function_lab([ADAM]), step_time_limit=limit)


def test_a_branch_that_fails_stops_alone_and_a_branch_replaying_a_failed_run_stops_with_it():
    broken = RunSpec("Broken", "raises", {"lr": 1e-3})
    runs = [ADAM, broken,
            # Replays Adam to step 3, then steps the raising optimizer: its 5th step is step 8.
            RunSpec("Adam then broken", "raises", {"lr": 1e-3}, branch=BranchSpec("Adam", 3)),
            # Replays Broken to step 10: Broken fails at 5, so it has nothing left to replay.
            RunSpec("Broken later", "sgd", {"lr": 1e-3}, branch=BranchSpec("Broken", 10))]
    race = FunctionRace(_function_lab(runs))
    records = list(race.records())
    assert records[-1].alive.tolist() == [True, False, False, False]
    _assert_same_runs(records, [0], list(FunctionRace(_function_lab([ADAM])).records()))
    fork = race.diverged[2]
    assert (fork.kind, fork.step) == ("failed", 3 + FAULT_AT)
    assert fork.reason.startswith("ZeroDivisionError")
    follower = race.diverged[3]
    assert (follower.kind, follower.step) == ("failed", FAULT_AT)
    assert follower.reason.startswith("it replays Broken, which failed: ZeroDivisionError")
    np.testing.assert_array_equal(records[-1].point[3], records[-1].point[1])


def test_an_absurd_allocation_in_a_step_is_out_of_memory_for_that_run_only():
    race = FunctionRace(_function_lab([ADAM, RunSpec("Greedy", "absurd", {"lr": 1e-3}), SGD]))
    records = list(race.records())
    _assert_same_runs(records, [0, 2], list(FunctionRace(_function_lab([ADAM, SGD])).records()))
    event = race.diverged[1]
    assert (event.kind, event.step) == ("failed", FAULT_AT)
    assert event.reason.startswith("out of memory: ") and "can't allocate memory" in event.reason
    np.testing.assert_allclose(records[-1].point[1], _plain_sgd_points(1e-3, FAULT_AT - 1)[-1],
                               rtol=1e-12)


def test_an_optimizer_that_cannot_be_built_fails_its_run_at_its_first_update():
    race = FunctionRace(_function_lab([ADAM, RunSpec("Unbuilt", "cannot_build", {"lr": 1e-3}),
                                       SGD]))
    records = list(race.records())
    _assert_same_runs(records, [0, 2], list(FunctionRace(_function_lab([ADAM, SGD])).records()))
    event = race.diverged[1]
    assert (event.kind, event.step) == ("failed", 1)
    assert event.reason == ("its optimizer could not be built: TypeError: "
                            "CannotBuild.__init__() needs a closure")
    assert 'raise TypeError("CannotBuild.__init__() needs a closure")' in event.traceback
    assert records[0].alive[1] and records[0].lr[1] == 1e-3  # step 0 is the start, as for all
    np.testing.assert_array_equal(records[-1].point[1], [-1.5, 2.0])
    # A branch with it replays its parent, then fails at its first own update.
    branch = RunSpec("Adam then unbuilt", "cannot_build", {"lr": 1e-3},
                     branch=BranchSpec("Adam", 3))
    race = FunctionRace(_function_lab([ADAM, branch]))
    records = list(race.records())
    assert (race.diverged[1].kind, race.diverged[1].step) == ("failed", 4)
    np.testing.assert_array_equal(records[-1].point[1], records[3].point[0])
    _assert_same_runs(records, [0], list(FunctionRace(_function_lab([ADAM])).records()))
    # A value out of range is the lab's mistake, refused before the race as ever.
    with pytest.raises(LabError, match="lr"):
        FunctionRace(_function_lab([ADAM, RunSpec("Unbuilt", "cannot_build", {"lr": -1.0})]))


def test_saved_results_keep_the_failure_and_its_traceback(tmp_path):
    from core.engine.history import RaceHistory
    from core.engine.snapshot import load_results, save_results

    lab = _function_lab([ADAM, RunSpec("Broken", "raises", {"lr": 1e-3})])
    race = FunctionRace(lab)
    history = RaceHistory(race.labels)
    history.extend(race.records())
    save_results(tmp_path / "results.npz", lab, history)
    loaded = load_results(tmp_path / "results.npz", lab).divergences[1]
    assert loaded == race.diverged[1]
    assert (loaded.kind, loaded.step) == ("failed", FAULT_AT) and "raise ZeroDivisionError" in \
        loaded.traceback


# -- the network race ----------------------------------------------------------------------------

MLP = {"layers": [{"linear": 16}, {"act": "relu"}, {"linear": 16}, {"act": "relu"},
                  {"linear": 2}]}
# Batch norm makes the race take the per-run path (core.engine.stacked cannot batch it).
MLP_BN = {"layers": [{"linear": 16}, {"batchnorm": True}, {"act": "relu"}, {"linear": 2}]}
MOONS = {"name": "moons", "n": 256, "noise": 0.2, "val_fraction": 0.25}
NET_ADAM = RunSpec("Adam", "adam", {"lr": 0.01})
NET_SGD = RunSpec("SGD", "sgd", {"lr": 0.1, "momentum": 0.9})


def _network_lab(runs, model, seeds=1, steps=24):
    problem = NetworkProblem(dataset=MOONS, model=model, batch_size=32, eval_every=6,
                             device="cpu", seeds=seeds)
    return validate_lab(Lab(name="faults", seed=3, steps=steps, problem=problem,
                            runs=tuple(runs)))


def _assert_same_evaluations(records, kept, reference):
    """The evaluations both races made agree bit for bit (a run that stops is also evaluated
    at that step, as a diverging one always was)."""
    compared = 0
    for got, want in zip(records, reference):
        if want.evaluation is not None:
            compared += 1
            for key, value in want.evaluation.val.items():
                np.testing.assert_array_equal(got.evaluation.val[key][kept], value)
    assert compared >= 4


def _weights(model) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


@pytest.fixture(params=["per-run", "batched"])
def path(request):
    """Which path the network race takes: batch norm keeps it per run (core.engine.stacked
    batches linear layers and element-wise activations only); the tests check it took it."""
    return request.param


def test_a_network_run_whose_optimizer_raises_is_frozen_and_the_others_are_bit_identical(path):
    model = MLP if path == "batched" else MLP_BN
    runs = [NET_ADAM, RunSpec("Broken", "raises", {"lr": 0.1}),
            RunSpec("Slow", "slow", {"lr": 0.1}), NET_SGD]
    race = NetworkRace(_network_lab(runs, model))
    assert (race.stack is not None) == (path == "batched")
    records = list(race.records())
    reference = NetworkRace(_network_lab([NET_ADAM, NET_SGD], model))
    expected = list(reference.records())
    _assert_same_runs(records, [0, 3], expected)
    _assert_same_evaluations(records, [0, 3], expected)
    for own, other in ((0, 0), (3, 1)):
        for a, b in zip(race.models[own].parameters(), reference.models[other].parameters()):
            assert torch.equal(a, b)
    assert records[-1].step == 24 and records[-1].alive.tolist() == [True, False, False, True]

    broken, slow = race.diverged[1], race.diverged[2]
    assert (broken.kind, broken.step) == ("failed", FAULT_AT)
    assert broken.reason == "ZeroDivisionError: the update rule divided by zero"
    assert "raise ZeroDivisionError" in broken.traceback
    assert (slow.kind, slow.step, slow.reason) == (
        "too slow", FAULT_AT, "step took 41.2 s, over the 30 s limit")
    # Both frozen on their weights after 4 updates: what the same rule gives in a race of
    # 4 steps, and their last numbers are step 4's.
    four = NetworkRace(_network_lab([RunSpec("Plain", "plain", {"lr": 0.1})], model, steps=4))
    four_records = list(four.records())
    for i in (1, 2):
        for a, b in zip(race.models[i].parameters(), four.models[0].parameters()):
            assert torch.equal(a, b)
        assert records[-1].loss[i] == four_records[-1].loss[0]
        assert race.diverged[i].last_loss == pytest.approx(float(four_records[-1].loss[0]))


def test_a_network_run_whose_optimizer_makes_nan_is_frozen_as_diverged(path):
    model = MLP if path == "batched" else MLP_BN
    runs = [NET_ADAM, RunSpec("NaN", "nan", {"lr": 0.1}),
            RunSpec("Broken", "raises", {"lr": 0.1}), NET_SGD]
    race = NetworkRace(_network_lab(runs, model))
    records = list(race.records())
    _assert_same_runs(records, [0, 3],
                      list(NetworkRace(_network_lab([NET_ADAM, NET_SGD], model)).records()))
    nan = race.diverged[1]
    assert (nan.kind, nan.step) == ("diverged", FAULT_AT) and nan.traceback is None
    assert race.diverged[2].kind == "failed"
    assert all(torch.isfinite(p).all() for p in race.models[2].parameters())


def test_a_network_optimizer_that_cannot_be_built_fails_its_run_alone(path):
    model = MLP if path == "batched" else MLP_BN
    runs = [NET_ADAM, RunSpec("Unbuilt", "cannot_build", {"lr": 0.1}), NET_SGD]
    race = NetworkRace(_network_lab(runs, model))
    assert (race.stack is not None) == (path == "batched")
    records = list(race.records())
    _assert_same_runs(records, [0, 2],
                      list(NetworkRace(_network_lab([NET_ADAM, NET_SGD], model)).records()))
    event = race.diverged[1]
    assert (event.kind, event.step) == ("failed", 1)
    assert event.reason.startswith("its optimizer could not be built: TypeError")
    initial = NetworkRace(_network_lab([NET_ADAM], model, steps=1))  # not run
    for a, b in zip(race.models[1].parameters(), initial.models[0].parameters()):
        assert torch.equal(a, b)  # still the initial weights


def test_running_out_of_memory_in_the_forward_pass_is_a_failure_not_a_divergence():
    race = NetworkRace(_network_lab([NET_ADAM, NET_SGD], MLP_BN))

    def out_of_memory(module, inputs, output):
        if module.training and race.step == 3:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    race.models[1].register_forward_hook(out_of_memory)
    list(race.records())
    event = race.diverged[1]
    assert (event.kind, event.step) == ("failed", 3)
    assert event.reason.startswith("out of memory: CUDA out of memory")


def test_one_seed_failing_leaves_the_run_to_its_other_seed(path):
    model = MLP if path == "batched" else MLP_BN
    runs = [NET_ADAM, RunSpec("Half", "one_seed", {"lr": 0.1}), NET_SGD]
    race = NetworkRace(_network_lab(runs, model, seeds=2))
    records = list(race.records())
    _assert_same_runs(records, [0, 2], list(NetworkRace(_network_lab([NET_ADAM, NET_SGD], model,
                                                                     seeds=2)).records()))
    assert race.diverged[1] is None and records[-1].alive[1]
    event = next(e for e in race.seed_events if e.run == 1)
    assert (event.kind, event.step) == ("failed", FAULT_AT)
    assert event.reason.startswith("seed 1 (seed 1003): RuntimeError: seed 1's optimizer broke")
    assert "seed 1's optimizer broke" in event.traceback
    for record in records[FAULT_AT:]:
        assert record.seeds_alive[1] == 1
        assert record.loss[1] == record.seed_loss[0, 1]  # the mean of the one seed left


def test_every_seed_failing_fails_the_run_with_the_traceback():
    race = NetworkRace(_network_lab([NET_ADAM, RunSpec("Broken", "raises", {"lr": 0.1})],
                                    MLP_BN, seeds=2))
    list(race.records())
    event = race.diverged[1]
    assert (event.kind, event.step) == ("failed", FAULT_AT)
    assert event.reason.startswith(f"all 2 seeds ended: seed 0 failed at step {FAULT_AT} "
                                   "(ZeroDivisionError")
    assert "raise ZeroDivisionError" in event.traceback


# -- summary.json and main.py run ----------------------------------------------------------------


def _csv_rows(path, labels):
    with open(path, newline="", encoding="utf-8") as f:
        return [row for row in csv.reader(f) if row[0] in labels]


def test_summary_json_records_the_failure_and_the_other_runs_are_written_as_without_it(tmp_path):
    runs = [ADAM, RunSpec("Broken", "raises", {"lr": 1e-3}), SGD]
    summary = run_to_dir(_function_lab(runs), tmp_path / "with")
    alone = run_to_dir(_function_lab([ADAM, SGD]), tmp_path / "without")
    on_disk = json.loads((tmp_path / "with" / "summary.json").read_text())
    assert on_disk["runs"] == summary["runs"]
    broken = on_disk["runs"][1]
    assert broken["failed"] is True and broken["diverged"] is False
    assert broken["steps"] == FAULT_AT - 1
    assert broken["failure"]["kind"] == "failed" and broken["failure"]["step"] == FAULT_AT
    assert broken["failure"]["reason"] == "ZeroDivisionError: the update rule divided by zero"
    assert "raise ZeroDivisionError" in broken["failure"]["traceback"]
    assert broken["final_point"] == pytest.approx(
        list(_plain_sgd_points(1e-3, FAULT_AT - 1)[-1]), rel=1e-12)
    for got, want in zip([on_disk["runs"][0], on_disk["runs"][2]], alone["runs"]):
        assert got["failed"] is False and got["failure"] is None
        for key in ("final_loss", "best_loss", "steps", "final_point"):
            assert got[key] == want[key]
    for name in ("metrics.csv", "trajectory.csv"):
        assert _csv_rows(tmp_path / "with" / name, {"Adam", "SGD"}) == \
            _csv_rows(tmp_path / "without" / name, {"Adam", "SGD"})
        assert max(int(row[1]) for row in _csv_rows(tmp_path / "with" / name, {"Broken"})) \
            == FAULT_AT - 1


def test_a_network_summary_and_weights_keep_the_failed_run_at_its_last_good_state(tmp_path):
    lab = _network_lab([NET_ADAM, RunSpec("Broken", "raises", {"lr": 0.1})], MLP_BN)
    summary = run_to_dir(lab, tmp_path / "out")
    broken = summary["runs"][1]
    assert broken["failed"] and broken["failure"]["step"] == FAULT_AT
    saved = torch.load(tmp_path / "out" / "weights" / "Broken.pt")
    four = NetworkRace(_network_lab([RunSpec("Plain", "plain", {"lr": 0.1})], MLP_BN, steps=4))
    list(four.records())
    for key, value in four.models[0].state_dict().items():
        assert torch.equal(saved[key], value)


def test_main_py_run_says_which_run_failed_and_writes_the_others(tmp_path, capsys):
    from main import build_parser

    lab_path = tmp_path / "broken.lab.json"
    from core.lab.format import save_lab

    save_lab(_function_lab([ADAM, RunSpec("Broken", "raises", {"lr": 1e-3}), SGD]), lab_path)
    args = build_parser().parse_args(["run", str(lab_path), "--out", str(tmp_path / "out")])
    assert args.handler(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("Broken") and lines[1].endswith(
        f"failed at step {FAULT_AT}: ZeroDivisionError: the update rule divided by zero")
    assert lines[0].endswith("ok") and lines[2].endswith("ok")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [r["failed"] for r in summary["runs"]] == [False, True, False]

    # --step-time-limit is the caller's limit; a bad one is one clear error.
    args = build_parser().parse_args(["run", str(lab_path), "--out", str(tmp_path / "o2"),
                                      "--step-time-limit", "-3"])
    with pytest.raises(LabError, match="step_time_limit"):
        args.handler(args)
    assert isinstance(args, argparse.Namespace)
