"""Sweeps on Optuna: search spaces from the registry, grids, pruning, resume, cancel, the CLI,
and trials side by side giving the numbers of trials one at a time."""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import threading

import optuna
import pytest

from core.engine.function_race import FunctionRace
from core.errors import LabError
from core.lab.format import FunctionProblem, Lab, NetworkProblem, RunSpec, save_lab, validate_lab
from core.optim.optimizers import OPTIMIZERS
from core.tools.sweep.fair_race import fair_race
from core.tools.sweep.run import Sweep, run_sweep, sweep
from core.tools.sweep.space import build_search_space
from core.tools.sweep.spec import SweepSpec


def _banana(steps=60, lr=0.001) -> Lab:
    return validate_lab(Lab(name="banana", steps=steps,
                            problem=FunctionProblem("rosenbrock", (-1.5, 2.0)),
                            runs=(RunSpec("Adam", "adam", {"lr": lr}),)))


def _moons(runs, steps=30, layers=None) -> Lab:
    model = {"layers": layers or [{"linear": 8}, {"act": "relu"}, {"linear": 8}, {"act": "tanh"},
                                  {"linear": 2}]}
    problem = NetworkProblem(dataset={"name": "moons", "n": 160, "noise": 0.2,
                                      "val_fraction": 0.25},
                             model=model, batch_size=32, eval_every=10, device="cpu")
    return validate_lab(Lab(name="moons", seed=2, steps=steps, problem=problem, runs=tuple(runs)))


def _final_loss(lab: Lab) -> float:
    last = None
    for last in FunctionRace(lab).records():
        pass
    return float(last.loss[0])


def test_default_space_is_the_registry_lr_range_for_every_optimizer():
    for name, info in OPTIMIZERS.items():
        hp = info.hyperparam("lr")
        (space,) = build_search_space(name)
        assert (space.name, space.low, space.high, space.log) == ("lr", *hp.search, hp.log)


def test_flags_narrow_and_add_parameters():
    space = {p.name: p for p in build_search_space(
        "sgd", ["lr=1e-4:1e-1:log", "momentum=0.5:0.99", "nesterov=true,false", "weight_decay"])}
    assert (space["lr"].low, space["lr"].high, space["lr"].log) == (1e-4, 1e-1, True)
    assert (space["momentum"].low, space["momentum"].high, space["momentum"].log) == (0.5, 0.99,
                                                                                   False)
    assert space["nesterov"].choices == (True, False)
    assert (space["weight_decay"].low, space["weight_decay"].high) == (1e-6, 1e-1)


@pytest.mark.parametrize("text, why", [
    ("lr=abc", "not a number"),
    ("lr=0.1:0.01", "empty or inverted"),
    ("lr=-1:1", ">= 0"),
    ("momentum=0:0.9:log", "LOW > 0"),
    ("nesterov=maybe", "true or false"),
    ("betas=0.9:0.99", "unknown hyperparameter"),
    ("lr=", "nothing after"),
    ("lr=1e-3:1e-1:cubic", "neither log"),
])
def test_bad_param_text_names_the_flag_and_the_allowed_form(text, why):
    with pytest.raises(LabError) as info:
        build_search_space("sgd", [text])
    assert info.value.field == "--param"
    assert why in str(info.value) and "NAME=LOW:HIGH" in str(info.value)


def test_sweep_finds_an_lr_in_range_that_beats_the_default():
    lab = _banana()
    result = sweep(SweepSpec(lab, trials=12, sampler="tpe", batch=4, prune=False))
    low, high = OPTIMIZERS["adam"].hyperparam("lr").search
    assert result.complete == 12 and low <= result.best_params["lr"] <= high
    assert result.best_value < _final_loss(lab)
    # The value is the engine's own number for that lr.
    tuned = validate_lab(Lab(name="t", steps=lab.steps, problem=lab.problem,
                             runs=(RunSpec("A", "adam", result.best_params),)))
    assert _final_loss(tuned) == pytest.approx(result.best_value, rel=1e-12)


def test_seeded_tpe_is_reproducible():
    spec = SweepSpec(_banana(steps=20), trials=6, sampler="tpe", batch=2)
    first, second = Sweep(spec), Sweep(spec)
    list(first.run()), list(second.run())
    assert [t.params for t in first.study.trials] == [t.params for t in second.study.trials]


def test_grid_visits_exactly_the_grid():
    spec = SweepSpec(_banana(steps=10), trials=100, sampler="grid", batch=3,
                     params=("lr=1e-3:1e-1:log:4", "amsgrad=true,false"), prune=False)
    run = Sweep(spec)
    progress = list(run.run())[-1]
    assert progress.complete == 8 and progress.trials_planned == 8
    visited = sorted((t.params["lr"], t.params["amsgrad"]) for t in run.study.trials)
    grid = sorted(itertools.product([0.001, 0.004641588834, 0.02154434690, 0.1], [False, True]))
    assert len(visited) == len(grid)
    for (lr, ams), (glr, gams) in zip(visited, grid):
        assert lr == pytest.approx(glr) and ams == gams


def test_median_pruning_stops_hopeless_trials():
    spec = SweepSpec(_banana(steps=60), trials=16, sampler="random", batch=2,
                     params=("lr=1e-6:1:log",))
    progress = sweep(spec)
    assert progress.pruned >= 1 and progress.steps_saved > 0
    assert progress.complete + progress.pruned == 16
    off = sweep(SweepSpec(_banana(steps=60), trials=16, sampler="random", batch=2,
                          params=("lr=1e-6:1:log",), prune=False))
    assert off.pruned == 0 and off.steps_saved == 0
    assert progress.steps_run < off.steps_run


def test_running_twice_on_sqlite_adds_trials(tmp_path):
    storage = str(tmp_path / "sweeps.db")
    spec = SweepSpec(_banana(steps=5), trials=2, batch=2, storage=storage, study="s",
                     prune=False)
    sweep(spec)
    assert sweep(spec).study_trials == 4
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{storage}")
    assert [t.number for t in study.trials] == list(range(4))
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    with pytest.raises(LabError, match="another setup"):
        Sweep(SweepSpec(_banana(steps=10), trials=1, storage=storage, study="s",
                        params=("lr=1e-3:1e-2",)))


def test_cancel_keeps_finished_trials():
    stop = threading.Event()
    run = Sweep(SweepSpec(_banana(steps=40), trials=20, batch=2, prune=False))
    last = None
    for last in run.run(stop):
        if last.complete >= 2:
            stop.set()
    assert last.final and last.cancelled
    states = [t.state for t in run.study.trials]
    assert optuna.trial.TrialState.RUNNING not in states
    complete = [t for t in run.study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == last.complete >= 2 and len(run.study.trials) < 20


def test_network_trials_side_by_side_equal_one_at_a_time():
    lab = _moons([RunSpec("SGD", "sgd", {"lr": 0.1})], steps=20)
    side_by_side = Sweep(SweepSpec(lab, trials=4, batch=4, seeds=2, sampler="random"))
    one_by_one = Sweep(SweepSpec(lab, trials=4, batch=1, seeds=2, sampler="random"))
    first, second = list(side_by_side.run())[-1], list(one_by_one.run())[-1]
    assert first.complete == second.complete == 4
    for a, b in zip(side_by_side.study.trials, one_by_one.study.trials):
        assert a.params == b.params
        assert a.value == pytest.approx(b.value, rel=1e-4)
        assert len(a.user_attrs["seed_values"]) == 2


def test_fair_race_returns_the_tuned_runs():
    tuned = fair_race(_banana(steps=20), ["adam", "sgd"], budget=3, sampler="random")
    assert [r.label for r in tuned.runs] == ["Adam (tuned)", "SGD (tuned)"]
    assert [r.optimizer for r in tuned.runs] == ["adam", "sgd"]


def test_progress_is_throttled():
    items = list(run_sweep(SweepSpec(_banana(steps=200), trials=4, batch=2, prune=False)))
    assert items[-1].final and sum(len(p.finished) for p in items) == 4
    # Intermediate progress (not the batch/final ones) comes >= 0.05 s apart.
    times = [p.elapsed_s for p in items if not p.finished and not p.final]
    assert all(b - a >= 0.049 for a, b in zip(times, times[1:]))


def test_cli_handler_writes_trials_and_best(tmp_path, capsys):
    from cli.sweep import register

    path = tmp_path / "banana.lab.json"
    save_lab(_banana(steps=20), path)
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    out = tmp_path / "out"
    args = parser.parse_args(["sweep", str(path), "--trials", "3", "--storage", "memory",
                              "--param", "lr=1e-3:1e-1", "--out", str(out)])
    assert args.handler(args) == 0
    rows = list(csv.DictReader((out / "trials.csv").open()))
    assert len(rows) == 3 and {"number", "state", "value", "lr"} <= set(rows[0])
    best = json.loads((out / "best.json").read_text())
    assert best["best"]["params"]["lr"] == best["best_run"]["params"]["lr"]
    printed = capsys.readouterr().out
    assert printed.count("trial ") >= 3 and "best:" in printed
    # Default storage: a SQLite file next to the lab.
    args = parser.parse_args(["sweep", str(path), "--trials", "2", "--out", str(out)])
    assert args.handler(args) == 0
    assert (tmp_path / "banana.sweeps.db").exists()
    bad = parser.parse_args(["sweep", str(path), "--param", "lr=1:0.1"])
    with pytest.raises(LabError, match="--param"):
        bad.handler(bad)
