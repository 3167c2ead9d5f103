"""core/engine/factory.py: the problem kind picks the race; a race reads its lab's folder itself."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from core.engine.factory import RACES, make_race, race_class
from core.engine.function_race import FunctionRace
from core.engine.network_race import NetworkRace
from core.errors import LabError
from core.lab.format import FunctionProblem, Lab, NetworkProblem, RunSpec, load_lab, validate_lab

RUNS = (RunSpec("SGD", "sgd", {"lr": 0.05}), RunSpec("Adam", "adam", {"lr": 0.01}))
MLP = {"layers": [{"linear": 6}, {"act": "tanh"}, {"linear": 2}]}


def _csv_lab_file(folder, path_in_lab: str) -> None:
    """A network lab file in ``folder`` whose data set is data.csv beside it (24 rows)."""
    rows = [(round(0.1 * i, 1), round(1.0 - 0.05 * i, 2), "a" if i % 3 else "b") for i in range(24)]
    with open(folder / "data.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["u", "v", "kind"])
        writer.writerows(rows)
    lab = {
        "format": "descent-lab/1", "name": "csv beside the lab", "seed": 4, "steps": 6,
        "problem": {
            "kind": "network",
            "dataset": {"name": "csv", "path": path_in_lab, "label": "kind",
                        "standardize": False, "val_fraction": 0.25},
            "model": MLP, "batch_size": 8, "eval_every": 2, "device": "cpu",
        },
        "runs": [{"label": r.label, "optimizer": r.optimizer, "params": r.params} for r in RUNS],
    }
    (folder / "csv.lab.json").write_text(json.dumps(lab), encoding="utf-8")


def test_every_problem_kind_has_a_race_and_make_race_builds_it():
    from core.engine.rl_race import RLRace
    from core.lab.format import load_lab
    from core.problems.rl.spec import RLProblem

    assert set(RACES) == {FunctionProblem.kind, NetworkProblem.kind, RLProblem.kind}
    rl_lab = load_lab(Path(__file__).resolve().parents[2] / "resources" / "lessons"
                      / "moving_targets" / "dqn.lab.json")
    assert type(make_race(rl_lab)) is RLRace
    function_lab = validate_lab(Lab(steps=5, problem=FunctionProblem("rosenbrock"), runs=RUNS))
    network_lab = validate_lab(Lab(
        steps=5, runs=RUNS,
        problem=NetworkProblem(dataset={"name": "moons", "n": 64}, model=MLP, device="cpu")))
    assert type(make_race(function_lab)) is FunctionRace
    assert type(make_race(network_lab)) is NetworkRace
    # Options go to the class: the function race's teaching overlay.
    assert make_race(function_lab, internals=True).internals is True
    assert race_class("network") is NetworkRace


def test_an_unknown_problem_kind_is_refused_naming_the_known_ones():
    with pytest.raises(LabError) as info:
        race_class("quadratic")
    assert info.value.field == "problem.kind"
    assert '"function", "network"' in info.value.message and "'quadratic'" in info.value.message


def test_a_network_race_reads_a_relative_csv_from_the_lab_files_folder(tmp_path, monkeypatch):
    """Before, NetworkRace(lab) read a relative CSV path from the working directory unless the
    caller remembered to pass base_dir: opening a lab from elsewhere failed with "not found"."""
    folder = tmp_path / "labs"
    folder.mkdir()
    _csv_lab_file(folder, "data.csv")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    lab = load_lab(folder / "csv.lab.json")
    assert lab.base_path == folder
    race = NetworkRace(lab)

    # The very rows of the file beside the lab (standardize off: the inputs are the numbers, as
    # float32 like every data set's points, core/problems/datasets/build.py).
    with open(folder / "data.csv", newline="", encoding="utf-8") as handle:
        written = sorted((float(np.float32(r["u"])), float(np.float32(r["v"])))
                         for r in csv.DictReader(handle))
    seen = np.concatenate([race.data.x_train, race.data.x_val])
    assert sorted(map(tuple, seen.tolist())) == written

    # Same numbers as the same lab naming the file by its absolute path.
    absolute = replace(lab, base_dir=None, problem=replace(
        lab.problem, dataset={**lab.problem.dataset, "path": str(folder / "data.csv")}))
    relative_losses = [r.loss.tolist() for r in make_race(lab).records()]
    absolute_losses = [r.loss.tolist() for r in make_race(absolute).records()]
    assert len(relative_losses) == lab.steps + 1
    assert relative_losses == absolute_losses


def test_base_path_is_none_for_a_lab_not_read_from_a_file():
    assert Lab().base_path is None
