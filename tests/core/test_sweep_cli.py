"""``main.py sweep`` from the outside: each mistake is one line naming the flag, exit code 2 and
nothing in the study changed; ``--fair`` tunes every optimizer alike and writes a runnable lab
whose race reproduces the tuning numbers; ``--help`` documents the flags."""

from __future__ import annotations

import json
import os
import socket

import optuna
import pytest

import main as cli
from core.lab.format import load_lab


def _write_lab(path, start=(-1.5, 2.0), steps=30):
    path.write_text(json.dumps({
        "format": "descent-lab/1", "name": "tiny", "seed": 0, "steps": steps,
        "problem": {"kind": "function", "function": "rosenbrock", "start": list(start)},
        "runs": [{"label": "SGD", "optimizer": "sgd", "params": {"lr": 0.001, "momentum": 0.9}},
                 {"label": "Adam", "optimizer": "adam", "params": {"lr": 0.01}}],
    }))
    return path


def _fails(capsys, argv) -> str:
    """Run the CLI; it must exit 2 with exactly one line on stderr and no traceback."""
    code = cli.main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once it is closed


@pytest.fixture
def lab(tmp_path):
    return str(_write_lab(tmp_path / "tiny.lab.json"))


@pytest.mark.parametrize("flags, words", [
    (["--param", "lr=0.1:0.01"], ["--param", "'lr=0.1:0.01'", "empty or inverted",
                                  "NAME=LOW:HIGH"]),
    (["--param", "foo=1:2"], ["--param", "unknown hyperparameter 'foo'", "lr, momentum"]),
    (["--param", "lr=1e-3:1e-1", "--sampler", "cmaes"], ["--sampler", "at least 2"]),
    (["--param", "lr=1e-3:1e-1", "--param", "nesterov=true,false", "--sampler", "cmaes"],
     ["--sampler", "nesterov is a list"]),
    (["--param", "lr=1e-5:1:log:1000", "--param", "momentum=0:0.99:1000", "--sampler", "grid"],
     ["--sampler", "1000000 points", "at most 100000"]),
    (["--trials", "0"], ["--trials", "[1, 100000]"]),
    (["--optimizers", "sgd,adam"], ["--optimizers", "only with --fair"]),
    (["--fair", "--optimizers", "sgd"], ["--optimizers", "at least two"]),
    (["--fair", "--optimizers", "sgd,nope"], ["optimizers", "nope"]),
])
def test_bad_flags_are_one_line_with_exit_2(lab, tmp_path, capsys, flags, words):
    out = tmp_path / "out"
    line = _fails(capsys, ["sweep", lab, "--storage", "memory", "--out", str(out), *flags])
    for word in words:
        assert word in line, line
    assert not out.exists()  # refused before anything was written


def test_unreachable_storage_fails_fast_naming_it(lab, tmp_path, capsys, monkeypatch):
    psycopg2 = pytest.importorskip("psycopg2", reason="psycopg2 is not installed")
    from core.tools.sweep.storage import CONNECT_TIMEOUT_S

    connects = []
    real_connect = psycopg2.connect

    def connect(*args, **kwargs):
        connects.append(kwargs)
        return real_connect(*args, **kwargs)

    monkeypatch.setattr(psycopg2, "connect", connect)
    url = f"postgresql+psycopg2://nobody@127.0.0.1:{_closed_port()}/db"
    line = _fails(capsys, ["sweep", lab, "--storage", url, "--trials", "1"])
    assert line.startswith("error: --storage: cannot open postgresql") and "127.0.0.1" in line
    # A refused port answers at once; a server that never answers is given up on after
    # CONNECT_TIMEOUT_S rather than the system's TCP timeout (minutes): the driver was told so.
    assert connects and all(kw.get("connect_timeout") == CONNECT_TIMEOUT_S for kw in connects)
    missing = tmp_path / "no" / "such" / "folder" / "s.db"
    line = _fails(capsys, ["sweep", lab, "--storage", f"sqlite:///{missing}"])
    assert "--storage" in line and "does not exist" in line and "allowed" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write to read-only folders")
def test_read_only_folder_is_refused(lab, tmp_path, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        line = _fails(capsys, ["sweep", lab, "--storage", f"sqlite:///{folder / 's.db'}"])
    finally:
        folder.chmod(0o700)
    assert "--storage" in line and "read-only" in line


def test_a_study_refuses_another_lab_or_search_space_and_keeps_its_trials(tmp_path, capsys):
    lab = _write_lab(tmp_path / "tiny.lab.json")
    url = f"sqlite:///{tmp_path / 's.db'}"
    base = ["--storage", url, "--study", "S", "--out", str(tmp_path / "out")]
    assert cli.main(["sweep", str(lab), "--trials", "2", "--batch", "2", *base]) == 0
    capsys.readouterr()
    before = [(t.number, t.state, t.params, t.value)
              for t in optuna.load_study(study_name="S", storage=url).trials]

    line = _fails(capsys, ["sweep", str(lab), "--param", "lr=1e-3:1e-2", *base])
    assert "--study" in line and "another setup" in line and "space" in line
    other = _write_lab(tmp_path / "other.lab.json", start=(1.0, 1.0))
    line = _fails(capsys, ["sweep", str(other), *base])
    assert "--study" in line and "lab" in line and "another problem" in line
    after = [(t.number, t.state, t.params, t.value)
             for t in optuna.load_study(study_name="S", storage=url).trials]
    assert after == before  # nothing lost, nothing added


def test_fair_race_tunes_alike_and_writes_a_runnable_lab(lab, tmp_path, capsys):
    out = tmp_path / "fair"
    code = cli.main(["sweep", lab, "--fair", "--optimizers", "sgd,adam,rmsprop",
                     "--trials-per-optimizer", "4", "--seeds", "2", "--sampler", "random",
                     "--storage", "memory", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    tuned = load_lab(out / "tuned.lab.json")  # a valid, runnable lab file
    assert [r.optimizer for r in tuned.runs] == ["sgd", "adam", "rmsprop"]
    assert [r.label for r in tuned.runs] == ["SGD (tuned)", "Adam (tuned)", "RMSprop (tuned)"]
    assert tuned.runs[0].params["momentum"] == 0.9  # the lab's own run kept its other settings
    summary = json.loads((out / "fair_race.json").read_text())
    assert summary["trials_per_optimizer"] == 4 and summary["seeds"] == 1  # function: 1 seed
    raced = json.loads((out / "race" / "summary.json").read_text())["runs"]
    for row, run in zip(summary["optimizers_detail"], raced):
        tuning = row["tuning"]
        assert tuning["complete"] + tuning["pruned"] == 4  # the same budget for everyone
        # The race of the tuned lab gives the very number the tuning found.
        assert run["final_loss"] == pytest.approx(tuning["best_value"], rel=1e-9)
    assert sorted(summary["ranking"]) == ["adam", "rmsprop", "sgd"]
    assert "fair race (final_loss" in printed and "1. " in printed


def test_help_documents_the_new_flags(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["sweep", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--total", "--fair", "--optimizers", "--trials-per-optimizer", "--storage",
                 "--param", "tuned.lab.json", "fair_race.json"):
        assert flag in text, flag


def test_a_plain_postgresql_url_reaches_the_server_not_a_missing_driver(lab, capsys):
    """`postgresql://` (no driver named) uses the installed psycopg2: the error is about the
    closed port, not "Failed to import DB access module"."""
    pytest.importorskip("psycopg2", reason="psycopg2 is not installed")
    url = f"postgresql://nobody@127.0.0.1:{_closed_port()}/db"
    line = _fails(capsys, ["sweep", lab, "--storage", url, "--trials", "1"])
    assert line.startswith("error: --storage: cannot open postgresql")
    assert "import" not in line.lower()


def test_fair_race_takes_zoo_and_user_optimizers_with_consent(lab, tmp_path, capsys, monkeypatch):
    from core.optim import user_code

    source = tmp_path / "mysgd.py"
    source.write_text(
        "import torch\n\n\nclass MySGD(torch.optim.Optimizer):\n"
        "    def __init__(self, params, lr=1e-3):\n        super().__init__(params, dict(lr=lr))\n\n"
        "    @torch.no_grad()\n    def step(self, closure=None):\n"
        "        for g in self.param_groups:\n            for p in g['params']:\n"
        "                if p.grad is not None:\n                    p.add_(p.grad, alpha=-g['lr'])\n")
    monkeypatch.chdir(tmp_path)
    args = ["sweep", lab, "--fair", "--optimizers", "SGD,pytorch_optimizer:Lion,mysgd.py:MySGD",
            "--trials-per-optimizer", "2", "--sampler", "random", "--storage", "memory",
            "--out", str(tmp_path / "fair")]
    assert cli.main(args) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "--optimizers: mysgd.py:MySGD is Python code" in line and "--trust-code" in line
    try:
        assert cli.main([*args, "--trust-code"]) == 0
    finally:
        user_code._LOADED.clear()
    summary = json.loads((tmp_path / "fair" / "fair_race.json").read_text())
    assert sorted(summary["ranking"]) == ["mysgd.py:MySGD", "pytorch_optimizer:Lion", "sgd"]
    tuned = json.loads((tmp_path / "fair" / "tuned.lab.json").read_text())
    assert [r["optimizer"] for r in tuned["runs"]][:2] == ["sgd", "pytorch_optimizer:Lion"]
    assert tuned["runs"][2]["optimizer"]["class"] == "../mysgd.py:MySGD"


def test_a_best_at_the_edge_of_the_range_ends_with_a_warning(lab, tmp_path, capsys):
    # Thirty steps of SGD from (-1.5, 2) on Rosenbrock: the largest lr of the grid gets furthest.
    out = tmp_path / "out"
    code = cli.main(["sweep", lab, "--storage", "memory", "--sampler", "grid", "--no-prune",
                     "--param", "lr=1e-6:1e-4:log:3", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    last = printed.strip().splitlines()[-1]
    assert last == ("warning: best lr 0.0001 lies at the upper edge of [1e-06, 0.0001] "
                    "(log scale): widen the search space"), printed
    best = json.loads((out / "best.json").read_text())
    assert best["best"]["params"] == {"lr": 1e-4}
    (warning,) = best["boundary_warnings"]
    assert (warning["param"], warning["side"], warning["low"], warning["high"]) == (
        "lr", "upper", 1e-6, 1e-4)
