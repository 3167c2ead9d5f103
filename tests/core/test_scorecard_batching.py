"""The scorecard's shared races (core/tools/scorecard/run.py `_train`): every entry's trials of a
workload and study (on a function workload, of every study) train as runs of one race, and
scorecard.json is byte for byte the one that one race per study gives; and the workloads noisy_quadratic and digits_cnn of the shipped suite
(resources/workloads/): they load, their held-out variants change the problem, and the reference
that set each target reaches it within the budget."""

from __future__ import annotations

import json
import statistics
from dataclasses import replace

import numpy as np
import pytest

from core.lab.format import FunctionProblem, Lab, RunSpec, validate_lab
from core.tools.scorecard import run as scorecard_run
from core.tools.scorecard.run import ScorecardSpec, entry, run_scorecard
from core.tools.scorecard.workloads import Workload, heldout_variants, load_suite, time_to_target


def _races(monkeypatch) -> list[tuple[int, int]]:
    """Each race the scorecard trains, as (lab seed, number of runs)."""
    seen = []

    def counted(lab, runs, target, steps, stop=None):
        seen.append((lab.seed, len(runs)))
        return time_to_target(lab, runs, target, steps, stop)

    monkeypatch.setattr(scorecard_run, "time_to_target", counted)
    return seen


def _small(storage: str, moons_layers=None) -> ScorecardSpec:
    """Three entries on a network workload whose target is reached at seed-dependent steps, and
    on a function workload."""
    moons = load_suite()["moons_mlp"]
    lab = moons.lab
    if moons_layers is not None:
        lab = validate_lab(replace(lab, problem=replace(
            lab.problem, model={**lab.problem.model, "layers": moons_layers})))
    quad = validate_lab(Lab(name="quad", steps=60,
                            problem=FunctionProblem({"expression": "0.5*(x**2 + 10*y**2)"},
                                                    (2.0, 1.0)),
                            runs=(RunSpec("Reference", "sgd", {"lr": 0.01}),)))
    workloads = [Workload("moons", lab, 0.3, 80), Workload("quad", quad, 1e-2, 60)]
    entries = [entry("adam", "adam"), entry("sgd", "sgd"), entry("rmsprop", "rmsprop")]
    return ScorecardSpec(entries, workloads, trials=3, studies=2, heldout=False, seed=1,
                         storage=storage)


def test_entries_share_one_race_per_study_and_the_json_is_identical(tmp_path, monkeypatch):
    races = _races(monkeypatch)
    shared = run_scorecard(_small(str(tmp_path / "shared.db")))
    shared_races = list(races)
    races.clear()
    monkeypatch.setattr(scorecard_run, "BATCH_ENTRIES", False)
    alone = run_scorecard(_small(str(tmp_path / "alone.db")))
    assert json.dumps(shared, sort_keys=True) == json.dumps(alone, sort_keys=True)
    # moons: one race per study, all 3 entries × 3 trials in it, on the lab's seed + s; quad (a
    # function: its seed is read only by runs that keep their own race) one race of both studies.
    seed = load_suite()["moons_mlp"].lab.seed
    assert shared_races == [(seed, 9), (seed + 1, 9), (0, 18)]
    assert len(races) == 2 * 2 * 3 and all(count == 3 for _, count in races)
    # The times differ between the studies (so a study trained on another study's seed shows).
    moons = [row["steps"] for row in shared["studies_detail"]["adam"]["moons"]]
    assert None not in moons and len(set(moons)) == 2, moons
    # Independent of both paths: each study's best trial raced alone on the lab's seed + s
    # reaches the target at the same step (a study trained on another seed would not).
    moons_w = _small("")
    for name in ("adam", "sgd", "rmsprop"):
        for s, row in enumerate(shared["studies_detail"][name]["moons"]):
            if row["trial"] is None:
                continue
            lab = replace(moons_w.workloads[0].lab, seed=seed + s)
            (outcome,) = time_to_target(lab, [RunSpec("alone", name, {"lr": row["lr"]})],
                                        0.3, 80)
            assert outcome.steps == row["steps"], (name, s)


def test_dropout_keeps_each_entry_in_its_own_race_and_the_same_numbers(tmp_path, monkeypatch):
    # A run's dropout stream is keyed by its index in the race: sharing would change it.
    layers = [{"linear": 16}, {"act": "relu"}, {"dropout": 0.2}, {"linear": 16},
              {"act": "relu"}, {"linear": 2}]
    races = _races(monkeypatch)
    shared = run_scorecard(_small(str(tmp_path / "shared.db"), layers))
    counts = [count for _, count in races]
    monkeypatch.setattr(scorecard_run, "BATCH_ENTRIES", False)
    alone = run_scorecard(_small(str(tmp_path / "alone.db"), layers))
    assert json.dumps(shared, sort_keys=True) == json.dumps(alone, sort_keys=True)
    # moons: 3 entries × 2 studies, each its own race; quad (no dropout): one race
    assert counts == [3] * 6 + [18]


def test_the_noisy_quadratic_and_digits_cnn_workloads_load_with_their_variants():
    suite = load_suite()
    noisy, cnn = suite["noisy_quadratic"], suite["digits_cnn"]
    problem = noisy.lab.problem
    assert problem.dataset["name"] == "matrix_regression" and problem.loss == "mse"
    assert problem.model["layers"] == [{"linear": 8, "bias": False}]  # a quadratic in W
    assert problem.batch_size < 64  # mini-batch gradients: the noise of the noisy quadratic
    assert {"conv2d": 8} in cnn.lab.problem.model["layers"]
    assert cnn.lab.problem.dataset["name"] == "digits"
    kinds = {name: {v.name.split("~")[1] for v in heldout_variants(w)}
             for name, w in (("noisy", noisy), ("cnn", cnn))}
    assert kinds == {"noisy": {"noise", "batch", "data_seed"},
                     "cnn": {"activation", "batch", "data_seed"}}
    for w in (noisy, cnn):
        assert all(v.lab.problem != w.lab.problem for v in heldout_variants(w))


@pytest.mark.parametrize("name", ["noisy_quadratic", "digits_cnn"])
def test_the_reference_that_set_the_target_reaches_it_within_the_budget(name):
    workload = load_suite()[name]
    prov = workload.provenance
    assert workload.target == statistics.median(prov["seed_values"])
    k = prov["seed_values"].index(workload.target)  # the median seed reaches it exactly
    (reference,) = workload.lab.runs
    lab = replace(workload.lab, seed=workload.lab.seed + k)
    (outcome,) = time_to_target(lab, [reference], workload.target, workload.budget)
    assert outcome.steps is not None and outcome.steps <= workload.budget, outcome.reason
    assert outcome.steps in prov["steps_needed"]


def test_the_noisy_quadratic_target_sits_at_the_least_squares_floor():
    # Independent of the engine: the float64 least-squares fit of the training split is the
    # best a linear model does; its validation MSE is the floor the target must sit just above.
    from core.problems.datasets.build import make_dataset

    workload = load_suite()["noisy_quadratic"]
    data = make_dataset(workload.lab.problem.dataset, workload.lab.seed)
    w, *_ = np.linalg.lstsq(data.x_train, data.y_train.astype(np.float64), rcond=None)
    floor = float(np.mean((data.x_val @ w - data.y_val) ** 2))
    assert 0.95 * floor <= workload.provenance["seed_values"][0] <= 1.2 * floor


def test_a_shared_race_that_raises_is_trained_again_one_study_at_a_time(tmp_path, monkeypatch):
    # A crash in a shared race must not become a miss for every entry in it: each study is
    # trained again in its own race, and the numbers are those of one race per study.
    calls = []

    def flaky(lab, runs, target, steps, stop=None):
        calls.append(len(runs))
        if len(runs) > 3:
            raise RuntimeError("boom")
        return time_to_target(lab, runs, target, steps, stop)

    monkeypatch.setattr(scorecard_run, "time_to_target", flaky)
    recovered = run_scorecard(_small(str(tmp_path / "recovered.db")))
    # 3 shared races (moons' 2 studies, quad's), then each study alone: 12 races
    assert calls.count(9) == 2 and calls.count(18) == 1 and calls.count(3) == 12
    monkeypatch.setattr(scorecard_run, "time_to_target", time_to_target)
    monkeypatch.setattr(scorecard_run, "BATCH_ENTRIES", False)
    alone = run_scorecard(_small(str(tmp_path / "alone.db")))
    assert json.dumps(recovered, sort_keys=True) == json.dumps(alone, sort_keys=True)


def test_a_hessian_probing_entry_keeps_its_own_race_per_study(tmp_path, monkeypatch):
    # AdaHessian's Hutchinson probes draw from a stream seeded by the lab's seed (seed + s for
    # study s) and the run's index in the race: in a shared race both would change.
    # A Hessian with off-diagonal terms: on a diagonal one the probes' estimate is exact.
    tilted = validate_lab(Lab(name="tilted", steps=60,
                              problem=FunctionProblem({"expression": "0.5*(x**2 + 10*y**2)"
                                                                     " + 2*x*y"}, (2.0, 1.0)),
                              runs=(RunSpec("Reference", "sgd", {"lr": 0.01}),)))

    def spec(storage):
        return replace(_small(storage), entries=[
            entry("adam", "adam"), entry("hessian", "pytorch_optimizer:AdaHessian")],
            workloads=[Workload("tilted", tilted, 1e-2, 60)], trials=2, studies=3)

    races = _races(monkeypatch)
    shared = run_scorecard(spec(str(tmp_path / "shared.db")))
    monkeypatch.setattr(scorecard_run, "BATCH_ENTRIES", False)
    alone = run_scorecard(spec(str(tmp_path / "alone.db")))
    assert json.dumps(shared, sort_keys=True) == json.dumps(alone, sort_keys=True)
    assert races[:4] == [(0, 6), (0, 2), (1, 2), (2, 2)]  # adam's 3 studies, then one each
