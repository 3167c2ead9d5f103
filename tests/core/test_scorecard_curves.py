"""Each scorecard trial's stored curve (core/tools/scorecard/curves.py): its first step at or
below the target is the trial's time to target, its values are what the engine gives the best
trial raced alone as a plain lab, it is thinned to at most 200 points, and a storage written
before curves were kept still resumes (its trials come back with no curve)."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import optuna
import pytest

from core.engine.factory import make_race
from core.lab.format import RunSpec, validate_lab
from core.tools.scorecard.cell_curves import read_cell_curves
from core.tools.scorecard.curves import (
    CURVE_STEPS,
    CURVE_VALUES,
    MAX_POINTS,
    first_crossing,
    thin_curve,
)
from core.tools.scorecard.run import ScorecardSpec, entry, run_scorecard, study_name
from core.tools.scorecard.workloads import load_suite, pick

ENTRIES = ("rmsprop", "adam")
WORKLOADS = ("rosenbrock", "sine_mlp")  # a function (every step, thinned) and a network


def _spec(storage: str) -> ScorecardSpec:
    return ScorecardSpec([entry(n, n) for n in ENTRIES], pick(load_suite(), list(WORKLOADS)),
                         trials=2, studies=1, heldout=False, seed=0, storage=storage)


def _alone(workload, study: int, optimizer: str, lr: float, steps: int) -> dict[int, float]:
    """The metric the scorecard compares with the target, per step, of one run of
    ``optimizer`` at ``lr`` raced alone on the workload's lab (seed + study), straight from the
    engine's records (not through time_to_target)."""
    lab = validate_lab(replace(workload.lab, seed=workload.lab.seed + study, steps=steps,
                               runs=(RunSpec("alone", optimizer, {"lr": lr}),)))
    series = {}
    for record in make_race(lab).records():
        if lab.is_network:
            ev = record.evaluation
            if ev is not None:
                series[int(record.step)] = float((ev.val or ev.train)["loss"][0])
        else:
            series[int(record.step)] = float(record.loss[0])
    return series


@pytest.fixture(scope="module")
def scorecard(tmp_path_factory):
    spec = _spec(str(tmp_path_factory.mktemp("curves") / "curves.db"))
    return spec, run_scorecard(spec)


def test_each_stored_curve_crosses_the_target_at_its_time_and_matches_the_engine(scorecard):
    spec, result = scorecard
    suite = load_suite()
    hits = 0
    for name in ENTRIES:
        for workload in WORKLOADS:
            cell = read_cell_curves(spec, name, workload)
            w = suite[workload]
            assert cell.target == w.target and cell.budget == w.budget
            assert len(cell.trials) == spec.trials * spec.studies
            for trial in cell.trials:
                assert trial.steps, (name, workload, trial.trial)  # every trial has a curve
                assert len(trial.steps) == len(trial.values) <= MAX_POINTS
                assert list(trial.steps) == sorted(set(trial.steps))
                cross = first_crossing(list(trial.values), w.target)
                if trial.steps_to_target is None:
                    assert cross is None
                else:
                    assert trial.steps[cross] == trial.steps_to_target
                    hits += 1
            # The study's best trial, as scorecard.json names it, is the one marked best.
            (row,) = result["studies_detail"][name][workload]
            best = [t for t in cell.trials if t.best]
            if row["trial"] is None:
                assert best == []
                continue
            (best,) = best
            assert (best.trial, best.lr, best.steps_to_target) == \
                (row["trial"], row["lr"], row["steps"])
            alone = _alone(w, best.study, name, best.lr, w.budget)
            for step, value in zip(best.steps, best.values):
                assert value == pytest.approx(alone[step], rel=1e-5, abs=1e-9), (name, step)
    assert hits >= 2
    # rosenbrock's races run thousands of steps: its curves are thinned, the ends kept.
    longest = max(read_cell_curves(spec, "adam", "rosenbrock").trials,
                  key=lambda t: t.steps[-1])
    assert longest.steps[0] == 0 and longest.steps[-1] > 10 * MAX_POINTS


def test_thinning_keeps_the_first_crossing_and_refuses_a_tiny_limit():
    curve = [(step, 100.0 / (1 + step)) for step in range(5000)]
    curve[-1] = (4999, math.nan)
    steps, values = thin_curve(curve, 0.05)
    assert len(steps) <= MAX_POINTS and steps[0] == 0 and steps[-1] == 4999
    assert values[-1] is None  # not finite: None
    # 100 / (1 + step) <= 0.05 first at step 1999
    assert steps[first_crossing(values, 0.05)] == 1999
    json.dumps(values, allow_nan=False)  # JSON-safe: no NaN left
    with pytest.raises(ValueError, match="limit"):
        thin_curve(curve, 0.05, limit=3)


def test_a_storage_without_curves_resumes_and_reads_back_empty_curves(tmp_path):
    # A scorecard stored before curves were kept: the curve attributes are gone from its trials
    # (the SQLite tables of Optuna hold user attributes one row each).
    import sqlite3

    db = tmp_path / "old.db"
    spec = _spec(str(db))
    spec.workloads = spec.workloads[:1]
    first = run_scorecard(spec)
    with sqlite3.connect(db) as con:
        gone = con.execute("DELETE FROM trial_user_attributes WHERE key IN (?, ?)",
                           (CURVE_STEPS, CURVE_VALUES)).rowcount
    assert gone == 2 * len(ENTRIES) * spec.trials
    again = run_scorecard(spec)
    assert json.dumps(again, sort_keys=True) == json.dumps(first, sort_keys=True)
    cell = read_cell_curves(spec, "adam", "rosenbrock")
    assert len(cell.trials) == spec.trials
    assert all(t.steps == () and t.values == () for t in cell.trials)
    # Read, not trained again: still O trials in the study, none of them with a curve.
    storage = optuna.storages.RDBStorage(f"sqlite:///{db}")
    study = optuna.load_study(study_name=study_name(spec, spec.entries[1], spec.workloads[0], 0),
                              storage=storage)
    assert len(study.trials) == spec.trials
    assert not any(CURVE_STEPS in t.user_attrs for t in study.trials)
