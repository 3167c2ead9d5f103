"""A network lab over S seeds: each seed is its own fair race, the record holds mean ± std.

Seed s uses ``lab.seed + s·1000`` for the shared initial weights, the batch order and the dropout
streams; the data set keeps its own seed. With S = 1 nothing changes, to the bit.
"""

from __future__ import annotations

import csv
import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from core.engine.history import NetworkHistory
from core.engine.network_race import NetworkRace
from core.engine.runner import run_to_dir
from core.errors import LabError
from core.lab.format import (
    Lab,
    NetworkProblem,
    RunSpec,
    lab_from_dict,
    lab_from_json,
    lab_to_dict,
    lab_to_json,
    validate_lab,
)

MLP = {"layers": [{"linear": 8}, {"act": "relu"}, {"linear": 2}]}
# The data seed is fixed, so a plain race at seed lab.seed + s·1000 sees the very same data.
MOONS = {"name": "moons", "n": 128, "noise": 0.2, "val_fraction": 0.25, "seed": 3}
RUNS = (RunSpec("SGD", "sgd", {"lr": 0.1, "momentum": 0.9}), RunSpec("Adam", "adam", {"lr": 0.01}))


def _lab(seeds=1, seed=5, steps=30, runs=RUNS, model=MLP, eval_every=10, **problem):
    problem = NetworkProblem(dataset=MOONS, model=model, batch_size=16, eval_every=eval_every,
                             device="cpu", seeds=seeds, **problem)
    return validate_lab(Lab(name="seeds", seed=seed, steps=steps, problem=problem,
                            runs=tuple(runs)))


@pytest.fixture(scope="module")
def three_seeds():
    lab = _lab(seeds=3)
    race = NetworkRace(lab)
    records = list(race.records())
    singles = [list(NetworkRace(_lab(seed=5 + 1000 * s)).records()) for s in range(3)]
    return lab, race, records, singles


# -- the lab file -----------------------------------------------------------------------------


def test_seeds_default_to_one_and_are_written_only_when_more():
    lab = _lab()
    assert lab.problem.seeds == 1
    assert "seeds" not in lab_to_dict(lab)["problem"]
    many = _lab(seeds=4)
    assert lab_to_dict(many)["problem"]["seeds"] == 4
    assert lab_from_json(lab_to_json(many)) == many
    assert lab_from_json(lab_to_json(lab)) == lab


def test_a_file_without_the_key_round_trips_unchanged():
    data = lab_to_dict(_lab())
    assert lab_to_dict(lab_from_dict(data)) == data
    with_one = json.loads(json.dumps(data))
    with_one["problem"]["seeds"] = 1
    assert lab_from_dict(with_one) == lab_from_dict(data)


@pytest.mark.parametrize("bad", [0, 11, -1, 2.5, "3", True, None, [2]])
def test_bad_seeds_are_refused_naming_the_field_and_the_range(bad):
    data = lab_to_dict(_lab())
    data["problem"]["seeds"] = bad
    with pytest.raises(LabError) as info:
        lab_from_dict(data)
    assert info.value.field == "problem.seeds"
    assert "[1, 10]" in info.value.message


@pytest.mark.parametrize("bad", [0, -1])
def test_a_lab_built_in_code_with_bad_seeds_is_refused_not_turned_into_one(bad):
    """The GUI's edits go through validate_lab: seeds = 0 must be refused there too, not
    dropped on the way through the file form and read back as the default."""
    lab = _lab()
    with pytest.raises(LabError) as info:
        validate_lab(replace(lab, problem=replace(lab.problem, seeds=bad)))
    assert info.value.field == "problem.seeds"


def test_whole_float_seeds_are_accepted():
    data = lab_to_dict(_lab())
    data["problem"]["seeds"] = 3.0
    assert lab_from_dict(data).problem.seeds == 3


# -- S = 1: exactly today's race --------------------------------------------------------------


def test_one_seed_gives_exactly_the_numbers_of_a_lab_without_the_key():
    data = lab_to_dict(_lab(steps=25))
    plain = NetworkRace(lab_from_dict(data))
    data["problem"]["seeds"] = 1
    one = NetworkRace(lab_from_dict(data))
    assert one.seed_count == 1 and len(one.seed_races) == 1
    for a, b in zip(plain.records(), one.records(), strict=True):
        assert a.step == b.step and a.epoch == b.epoch
        for name in ("loss", "lr", "grad_norm", "alive"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        assert b.loss_std is None and b.seed_loss is None and b.seeds_alive is None
        assert (a.evaluation is None) == (b.evaluation is None)
        if a.evaluation is not None:
            for key, value in a.evaluation.val.items():
                np.testing.assert_array_equal(value, b.evaluation.val[key])
            np.testing.assert_array_equal(a.evaluation.boundary, b.evaluation.boundary)
            np.testing.assert_array_equal(a.evaluation.update_ratio, b.evaluation.update_ratio)
            assert b.evaluation.train_std == {} and b.evaluation.val_std == {}
    for (_, sa), (_, sb) in zip(plain.state_dicts().items(), one.state_dicts().items()):
        for key in sa:
            assert torch.equal(sa[key], sb[key])


def test_one_seed_shares_the_race_state_arrays():
    race = NetworkRace(_lab(steps=5))
    inner = race.seed_races[0]
    assert race.alive is inner.alive and race.diverged is inner.diverged
    assert race.models is inner.models and race.stack is inner.stack
    list(race.records())
    assert race.step == 5 and race.last_evaluation is inner.last_evaluation


# -- S = 3 ------------------------------------------------------------------------------------


def test_each_seed_equals_a_separate_race_at_seed_plus_s_times_1000(three_seeds):
    _lab3, _race, records, singles = three_seeds
    assert len(records) == len(singles[0]) == 31
    per_seed = np.stack([[r.loss for r in recs] for recs in singles])  # (S, T, R)
    ours = np.stack([r.seed_loss for r in records]).transpose(1, 0, 2)
    np.testing.assert_allclose(ours, per_seed, rtol=0, atol=1e-6)


def test_the_record_holds_the_mean_and_std_over_the_seeds(three_seeds):
    _lab3, _race, records, singles = three_seeds
    per_seed = np.stack([[r.loss for r in recs] for recs in singles])
    np.testing.assert_allclose([r.loss for r in records], per_seed.mean(axis=0), atol=1e-6)
    np.testing.assert_allclose([r.loss_std for r in records], per_seed.std(axis=0), atol=1e-6)
    assert all(r.seeds_alive.tolist() == [3, 3] for r in records)
    evaluated = [k for k, r in enumerate(records) if r.evaluation is not None]
    assert evaluated == [k for k, r in enumerate(singles[0]) if r.evaluation is not None]
    for k in evaluated:
        ev = records[k].evaluation
        for split in ("train", "val"):
            for key in ("loss", "accuracy", "f1"):
                values = np.stack([getattr(recs[k].evaluation, split)[key] for recs in singles])
                np.testing.assert_allclose(getattr(ev, split)[key], values.mean(0), atol=1e-6)
                np.testing.assert_allclose(getattr(ev, f"{split}_std")[key], values.std(0),
                                           atol=1e-6)
        # Pictures are seed 0's.
        np.testing.assert_array_equal(ev.boundary, singles[0][k].evaluation.boundary)
        np.testing.assert_array_equal(ev.confusion, singles[0][k].evaluation.confusion)


def test_seeds_differ_and_fairness_holds_per_seed(three_seeds):
    _lab3, race, records, _singles = three_seeds
    first = records[0].seed_loss  # (S, R) at step 0: the same weights and batch per seed
    for s in range(3):
        assert first[s, 0] == first[s, 1]
    assert len({float(first[s, 0]) for s in range(3)}) == 3
    assert records[-1].loss_std.min() > 0
    fresh = NetworkRace(race.lab)
    weights = [[p.detach().clone() for p in r.models[0].parameters()] for r in fresh.seed_races]
    for s, seed_race in enumerate(fresh.seed_races):
        for model in seed_race.models[1:]:
            for a, b in zip(model.parameters(), weights[s]):
                assert torch.equal(a, b)
    assert not torch.equal(weights[0][0], weights[1][0])
    assert [r.seed for r in fresh.seed_races] == [5, 1005, 2005]


def test_seed_zero_is_what_the_race_exposes(three_seeds):
    _lab3, race, _records, singles = three_seeds
    solo = NetworkRace(_lab(seed=5))
    list(solo.records())
    assert race.models is race.seed_races[0].models
    for (la, sa), (lb, sb) in zip(race.state_dicts().items(), solo.state_dicts().items()):
        assert la == lb
        for key in sa:
            torch.testing.assert_close(sa[key], sb[key], rtol=0, atol=1e-6)
    assert race.step == 30 and race.alive.tolist() == [True, True]
    assert np.isfinite(race.best_val).all()


def test_a_run_diverging_on_every_seed_names_the_seeds_and_the_other_trains_on():
    runs = (RunSpec("boom", "sgd", {"lr": 1e4, "momentum": 0.99}),
            RunSpec("fine", "adam", {"lr": 0.01}))
    race = NetworkRace(_lab(seeds=2, runs=runs, steps=40))
    records = list(race.records())
    events = [e for r in records for e in r.diverged]
    assert [e.label for e in events] == ["boom"]
    assert "seed 0 diverged" in events[0].reason and "seed 1 diverged" in events[0].reason
    assert race.diverged[0] is events[0] and race.diverged[1] is None
    assert {e.reason.split(":")[0] for e in race.seed_events} == {"seed 0 (seed 5)",
                                                                   "seed 1 (seed 1005)"}
    assert records[-1].step == 40 and records[-1].alive.tolist() == [False, True]
    assert all(np.isfinite(r.loss).all() and np.isfinite(r.loss_std).all() for r in records)


def test_early_stopping_is_per_seed_and_the_run_stops_with_its_last_seed():
    runs = (RunSpec("patient", "sgd", {"lr": 2.0, "momentum": 0.9},
                    early_stopping={"patience": 1, "min_delta": 0.0}),
            RunSpec("goes on", "adam", {"lr": 0.01}))
    race = NetworkRace(_lab(seeds=2, runs=runs, steps=60, eval_every=5))
    records = list(race.records())
    seed_stops = [e for e in race.seed_events if e.label == "patient"]
    assert len(seed_stops) == 2
    stops = [e for r in records for e in r.stopped]
    assert [e.label for e in stops] == ["patient"]
    assert stops[0].step == max(e.step for e in seed_stops)
    assert "seed 0 stopped early" in stops[0].reason and "seed 1 stopped early" in stops[0].reason
    # Between the first and the last seed's stop the run is alive on one seed only.
    first_stop = min(e.step for e in seed_stops)
    assert first_stop < stops[0].step
    between = [r for r in records if first_stop < r.step < stops[0].step]
    assert between and all(r.alive[0] and r.seeds_alive[0] == 1 and r.loss_std[0] == 0
                           for r in between)


def test_pruning_a_run_from_outside_stops_it_on_every_seed():
    race = NetworkRace(_lab(seeds=2, steps=10))
    for record in race.records():
        if record.step == 2:
            race.alive[1] = False  # what core.tools.sweep does to a pruned trial
    assert [r.alive[1] for r in race.seed_races] == [False, False]
    assert race.seed_races[0].step == 10 and race.diverged == [None, None]


# -- history and headless output --------------------------------------------------------------


def test_the_history_keeps_the_std_columns(three_seeds):
    lab3, _race, records, _singles = three_seeds
    history = NetworkHistory([r.label for r in lab3.runs])
    history.extend(records[:7])
    history.extend(records[7:])
    assert history.has_seeds
    np.testing.assert_array_equal(history.steps[1].column("loss_std"),
                                  [r.loss_std[1] for r in records])
    for name in ("val_loss_std", "val_accuracy_std", "train_loss_std"):
        assert name in history.eval_fields
    last = records[-1].evaluation
    assert history.evals[0].last("val_loss_std") == last.val_std["loss"][0]
    plain = NetworkHistory(["a", "b"])
    plain.extend(NetworkRace(_lab(steps=3)).records())
    assert not plain.has_seeds and not any(f.endswith("_std") for f in plain.eval_fields)


def test_run_writes_seeds_and_stds_and_keeps_metrics_columns(tmp_path, three_seeds):
    lab3, _race, records, _singles = three_seeds
    summary = run_to_dir(lab3, tmp_path / "many")
    last = records[-1].evaluation
    for i, entry in enumerate(summary["runs"]):
        assert entry["seeds"] == 3
        assert entry["final_val_loss"] == pytest.approx(float(last.val["loss"][i]), abs=1e-9)
        assert entry["final_val_loss_std"] == pytest.approx(float(last.val_std["loss"][i]),
                                                           abs=1e-9)
        assert entry["final_val_accuracy_std"] == pytest.approx(
            float(last.val_std["accuracy"][i]), abs=1e-9)
    with open(tmp_path / "many" / "metrics.csv", newline="") as handle:
        header = next(csv.reader(handle))
    assert header == ["run", "step", "epoch", "loss", "lr", "grad_norm", "val_loss",
                      "val_accuracy"]
    assert (tmp_path / "many" / "weights" / "SGD.pt").exists()
    one = run_to_dir(replace(lab3, problem=replace(lab3.problem, seeds=1)), tmp_path / "one")
    assert all(e["seeds"] == 1 and "final_val_loss_std" not in e for e in one["runs"])


# -- the initial weights ----------------------------------------------------------------------


def test_initial_model_is_what_every_run_of_each_seed_starts_from():
    """`initial_model` is the one place the initial weights come from: the race's runs of seed s
    start from it (the problem panel's diagram draws seed 0's), and seed s is seed 0 of a lab
    whose seed is lab.seed + s·1000."""
    from core.engine.race_setup import initial_model

    lab = _lab(seeds=2)
    race = NetworkRace(lab)  # no step taken yet: every model holds its initial weights
    for s, seed_race in enumerate(race.seed_races):
        expected = initial_model(lab, race.data, s).state_dict()
        for model in seed_race.models:
            got = model.state_dict()
            assert list(got) == list(expected)
            for key, value in expected.items():
                assert torch.equal(got[key].cpu(), value), (s, key)
    seed_1 = initial_model(lab, race.data, 1).state_dict()
    shifted = initial_model(_lab(seed=5 + 1000), race.data).state_dict()
    assert all(torch.equal(seed_1[key], shifted[key]) for key in seed_1)
    seed_0 = initial_model(lab, race.data).state_dict()
    assert not torch.equal(seed_0["0.weight"], seed_1["0.weight"])
