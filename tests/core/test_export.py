"""The exported PyTorch script reproduces `main.py run`'s numbers; metrics export from a history."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from core.engine.function_race import FunctionRace
from core.engine.history import RaceHistory
from core.engine.runner import run_to_dir
from core.errors import LabError
from core.lab.format import lab_from_dict
from core.teaching.metrics_export import (
    read_metrics_csv,
    rows_differ,
    write_metrics_csv,
    write_metrics_json,
)
from core.teaching.script_export import export_script, write_script


def _lab(problem: dict, runs: list[dict], steps: int, seed: int = 0):
    return lab_from_dict({"format": "descent-lab/1", "name": "Export test", "seed": seed,
                          "steps": steps, "problem": problem, "runs": runs})


FUNCTION_LAB = dict(
    problem={"kind": "function", "function": "rosenbrock", "start": [-1.5, 2.0]},
    runs=[
        {"label": "SGD+momentum", "optimizer": "sgd", "params": {"lr": 0.0005, "momentum": 0.9}},
        {"label": "Adam", "optimizer": "adam", "params": {"lr": 0.02},
         "schedule": {"name": "cosine"}},
        {"label": "RMSprop", "optimizer": "rmsprop", "params": {"lr": 0.01},
         "schedule": {"name": "onecycle"}},
        {"label": "L-BFGS", "optimizer": "lbfgs", "params": {"lr": 0.5}},
    ],
    steps=80,
)
# A long formula: deeper than the nested form allows, so it is written with temporaries.
DEEP = "sin(x)*cos(y) + 0.1*(x^2 + y^2) + softplus(x - y)" + " + 0*x" * 40
NETWORK_LAB = dict(
    problem={"kind": "network",
             "dataset": {"name": "circles", "n": 256, "noise": 0.1, "val_fraction": 0.25},
             "model": {"layers": [{"linear": 16}, {"act": "tanh"}, {"linear": 2}]},
             "loss": "cross_entropy", "batch_size": 32, "eval_every": 10},
    runs=[
        {"label": "SGD", "optimizer": "sgd", "params": {"lr": 0.1, "momentum": 0.9},
         "l1": 1e-4, "clip_value": 0.5},
        {"label": "Adam", "optimizer": "adam", "params": {"lr": 0.01},
         "schedule": {"name": "plateau", "params": {"patience": 3}},
         "early_stopping": {"patience": 2}},
        {"label": "AdamW", "optimizer": "adamw", "params": {"lr": 0.01}, "l2": 1e-3,
         "clip_norm": 0.5},
    ],
    steps=100, seed=1,
)


EXPRESSION_LAB = dict(
    problem={"kind": "function", "function": {"expression": DEEP}, "start": [1.0, 1.0]},
    runs=[
        {"label": "Adam", "optimizer": "adam", "params": {"lr": 0.05},
         "schedule": {"name": "warmup_cosine"}},
        {"label": "Nesterov", "optimizer": "sgd",
         "params": {"lr": 0.05, "nesterov": True, "momentum": 0.5}},
    ],
    steps=60,
)
# Dropout: each run's masks come from its own generator, in the script as in the engine.
DROPOUT_LAB = dict(
    problem={"kind": "network",
             "dataset": {"name": "moons", "n": 200, "noise": 0.2, "val_fraction": 0.25},
             "model": {"layers": [{"linear": 16}, {"act": "relu"}, {"dropout": 0.3},
                                  {"linear": 16}, {"act": "relu"}, {"dropout": 0.5},
                                  {"linear": 2}]},
             "loss": "cross_entropy", "batch_size": 25, "eval_every": 10},
    runs=[
        {"label": "SGD", "optimizer": "sgd", "params": {"lr": 0.1, "momentum": 0.9}},
        {"label": "Adam", "optimizer": "adam", "params": {"lr": 0.01}},
    ],
    steps=60, seed=4,
)
# Class weights on a 1:9 set: the script's nn.CrossEntropyLoss(weight=...) is the race's loss.
WEIGHTED_LAB = dict(
    problem={"kind": "network",
             "dataset": {"name": "moons", "n": 300, "noise": 0.2, "val_fraction": 0.25,
                         "imbalance": 9},
             "model": {"layers": [{"linear": 16}, {"act": "relu"}, {"linear": 2}]},
             "loss": "cross_entropy", "class_weights": "balanced", "batch_size": 32,
             "eval_every": 10},
    runs=[{"label": "Adam", "optimizer": "adam", "params": {"lr": 0.01}}],
    steps=40, seed=2,
)
# A recurrent network on a sequence set, with clipping: the script's LSTMSteps is the race's.
SEQUENCE_LAB = dict(
    problem={"kind": "network", "dataset": {"name": "adding", "n": 128, "length": 8},
             "model": {"layers": [{"gru": 6}, {"lstm": 8}, {"last": True}, {"linear": 1}]},
             "loss": "mse", "batch_size": 32, "eval_every": 10},
    runs=[{"label": "Adam", "optimizer": "adam", "params": {"lr": 0.01}, "clip_norm": 0.5},
          {"label": "SGD", "optimizer": "sgd", "params": {"lr": 0.3}}],
    steps=30, seed=3,
)
# Norm clipping on a 2-D race: the cliff of a one-unit RNN, where the unclipped run is thrown away.
CLIFF_LAB = dict(
    problem={"kind": "function", "function": "rnn_cliff", "start": [4.8, -4.0]},
    runs=[{"label": "GD", "optimizer": "sgd", "params": {"lr": 0.5}},
          {"label": "clipped", "optimizer": "sgd", "params": {"lr": 0.5}, "clip_norm": 0.5},
          {"label": "L-BFGS clipped", "optimizer": "lbfgs", "params": {"lr": 0.1},
           "clip_norm": 0.5}],
    steps=120,
)
LABS = {"cliff": CLIFF_LAB, "function": FUNCTION_LAB, "expression": EXPRESSION_LAB, "network": NETWORK_LAB,
        "dropout": DROPOUT_LAB, "weighted": WEIGHTED_LAB, "sequence": SEQUENCE_LAB}
# Runs each exported script as `python script.py --out CSV` would, all in ONE interpreter: the
# import of torch costs seconds, the scripts themselves milliseconds.
DRIVER = """
import runpy, sys
for script, out in zip(sys.argv[1::2], sys.argv[2::2]):
    sys.argv = [script, "--out", out]
    runpy.run_path(script, run_name="__main__")
"""


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """name -> (metrics of `main.py run`'s engine, metrics of the exported script, its dir)."""
    root = tmp_path_factory.mktemp("export")
    args, refs = [], {}
    for name, spec in LABS.items():
        lab = _lab(**spec)
        folder = root / name
        run_to_dir(lab, folder / "app")
        script = write_script(lab, folder / "exported.py")[0]
        args += [str(script), str(folder / "script.csv")]
        refs[name] = folder
    done = subprocess.run([sys.executable, "-c", DRIVER, *args], capture_output=True, text=True,
                          timeout=120, cwd=root)
    assert done.returncode == 0, done.stderr
    return {name: (read_metrics_csv(folder / "app" / "metrics.csv"),
                   read_metrics_csv(folder / "script.csv"), folder)
            for name, folder in refs.items()}


def test_function_script_reproduces_the_run(exported):
    ours, theirs, folder = exported["function"]
    assert rows_differ(ours, theirs, 1e-6) == []
    assert len(ours) == 4 * 81
    text = (folder / "exported.py").read_text()
    assert "from core" not in text and "import core" not in text  # standalone
    assert "lr_scheduler.OneCycleLR(optimizer, total_steps=81" in text
    assert "def _rosenbrock" in text  # the registry's own code for the formula


def test_expression_script_reproduces_the_run(exported):
    ours, theirs, folder = exported["expression"]
    assert rows_differ(ours, theirs, 1e-6) == []
    assert "t40 = " in (folder / "exported.py").read_text()


def test_network_script_reproduces_the_run(exported):
    ours, theirs, folder = exported["network"]
    assert rows_differ(ours, theirs, 1e-6) == []
    assert (folder / "exported.npz").exists()
    # The early stop happened in both (no Adam rows after it) and validation was measured.
    assert max(step for run, step in ours if run == "Adam") < 100
    assert ours[("SGD", 100)]["val_accuracy"] != ""


def test_dropout_network_script_reproduces_the_run(exported):
    ours, theirs, folder = exported["dropout"]
    assert rows_differ(ours, theirs, 1e-6) == []
    assert len(ours) == 2 * 61
    text = (folder / "exported.py").read_text()
    assert "Dropout(0.3)" in text and "manual_seed(SEED * 1009 + i + 1)" in text


def test_class_weighted_network_script_reproduces_the_run(exported):
    ours, theirs, folder = exported["weighted"]
    assert rows_differ(ours, theirs, 1e-6) == []
    text = (folder / "exported.py").read_text()
    # scikit-learn's balanced weights of the training split, n / (2 · count), as literals
    assert "nn.CrossEntropyLoss(weight=torch.tensor([" in text
    assert ours[("Adam", 40)]["val_loss"] != ""


def test_clipped_function_script_reproduces_the_run(exported):
    ours, theirs, folder = exported["cliff"]
    assert rows_differ(ours, theirs, 1e-6) == []
    assert "CLIP_NORMS = [None, 0.5, 0.5]" in (folder / "exported.py").read_text()
    # The unclipped run was thrown off the wall, the clipped one was not.
    assert float(ours[("GD", 120)]["loss"]) > 0.08 > 0.01 > float(ours[("clipped", 120)]["loss"])


def test_recurrent_network_script_reproduces_the_run(exported):
    ours, theirs, folder = exported["sequence"]
    assert rows_differ(ours, theirs, 1e-6) == []
    assert len(ours) == 2 * 31
    text = (folder / "exported.py").read_text()
    assert "GRUSteps(2, 6, batch_first=True)" in text and "LastStep()" in text


def test_short_expression_stays_readable():
    lab = _lab({"kind": "function", "function": {"expression": "(1-x)^2 + 100*(y-x^2)^2"}},
               [{"label": "Adam", "optimizer": "adam"}], 5)
    text = export_script(lab)
    assert "((const(1.0) - x) ** const(2.0))" in text
    compile(text, "exported.py", "exec")  # syntax only; running it is the subprocess tests' job


@pytest.mark.parametrize("change, field", [
    ({"seeds": 3}, "problem.seeds"),
])
def test_unsupported_network_labs_are_refused(change, field):
    problem = dict(NETWORK_LAB["problem"])
    runs = NETWORK_LAB["runs"]
    if "runs" in change:
        runs = change["runs"]
    else:
        problem.update(change)
    with pytest.raises(LabError) as info:
        export_script(_lab(problem, runs, 10))
    assert info.value.field == field


def test_metrics_csv_and_json_from_a_history(tmp_path, exported):
    lab = _lab(**FUNCTION_LAB)
    race = FunctionRace(lab)
    history = RaceHistory(race.labels)
    history.extend(list(race.records()))
    write_metrics_csv(history, tmp_path / "m.csv")
    write_metrics_json(history, tmp_path / "m.json", lab)
    reference = exported["function"][2] / "app" / "metrics.csv"
    assert (tmp_path / "m.csv").read_text() == reference.read_text()
    payload = json.loads((tmp_path / "m.json").read_text())
    with open(tmp_path / "m.csv", newline="") as file:
        adam = [row for row in csv.DictReader(file) if row["run"] == "Adam"]
    assert payload["runs"]["Adam"]["loss"] == [float(row["loss"]) for row in adam]
    assert not list(tmp_path.glob(".*.tmp"))  # no temp file left behind


def test_a_branched_run_is_refused_rather_than_exported_wrong():
    from core.lab.branches import branch_run

    lab = branch_run(_lab(**FUNCTION_LAB), "Adam", 20, {"params": {"lr": 0.005}})
    with pytest.raises(LabError) as info:
        export_script(lab)
    assert info.value.field == f"runs[{len(lab.runs) - 1}].branch"
    assert "Adam" in str(info.value)
