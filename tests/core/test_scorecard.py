"""The scorecard (core/tools/scorecard/, cli/scorecard.py): time to target in steps and gradient
evaluations against plain torch loops, misses, determinism of scorecard.json, resume after a
kill, and the one-line refusals of bad input."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from core.lab.format import FunctionProblem, Lab, RunSpec, save_lab, validate_lab
from core.tools.scorecard.run import ScorecardSpec, entry, run_scorecard
from core.tools.scorecard.workloads import Workload, time_to_target

ROOT = Path(__file__).resolve().parents[2]
QUAD = "0.5*(x**2 + 10*y**2)"


def _function_lab(expression=QUAD, start=(2.0, 1.0), steps=60) -> Lab:
    return validate_lab(Lab(name="quad", steps=steps,
                            problem=FunctionProblem({"expression": expression}, start),
                            runs=(RunSpec("Reference", "sgd", {"lr": 0.01}),)))


def _plain_steps_to_target(make_opt, target, steps) -> int | None:
    """The first step whose loss is <= target, by a plain torch loop (float64)."""
    x = torch.tensor([2.0, 1.0], dtype=torch.float64, requires_grad=True)
    opt = make_opt([x])
    for t in range(steps + 1):
        loss = 0.5 * (x[0] ** 2 + 10 * x[1] ** 2)
        if loss.item() <= target:
            return t
        opt.zero_grad()
        loss.backward()
        opt.step()
    return None


def test_time_to_target_matches_a_plain_loop_and_sam_pays_two_gradients_a_step():
    lab = _function_lab()
    adam, sam, slow = time_to_target(lab, [
        RunSpec("Adam", "adam", {"lr": 0.1}),
        RunSpec("SAM", "pytorch_optimizer:SAM", {"lr": 0.05}),
        RunSpec("SGD", "sgd", {"lr": 1e-4}),
    ], target=1e-2, steps=300)
    plain = _plain_steps_to_target(lambda p: torch.optim.Adam(p, lr=0.1), 1e-2, 300)
    assert adam.steps == plain == 48
    assert adam.grad_evals == adam.steps and adam.evals_per_step == 1
    # SAM computes the gradient, then its closure computes it again at the perturbed point.
    assert sam.steps is not None and sam.evals_per_step == 2
    assert sam.grad_evals == 2 * sam.steps
    # Independently: count the gradient evaluations of pytorch-optimizer's SAM over one step.
    from pytorch_optimizer import SAM

    x = torch.tensor([2.0, 1.0], requires_grad=True)
    opt = SAM([x], base_optimizer=torch.optim.SGD, lr=0.05)
    calls = []

    def closure():
        calls.append(1)
        opt.zero_grad()
        loss = 0.5 * (x[0] ** 2 + 10 * x[1] ** 2)
        loss.backward()
        return loss

    closure()
    opt.step(closure)
    assert len(calls) == sam.evals_per_step
    # A target never reached is a miss (None here, infinite in the profile) with its reason.
    assert slow.steps is None and slow.grad_evals is None
    assert "not reached in 300 steps" in slow.reason


def test_a_diverging_trial_is_a_miss_with_its_reason():
    (out,) = time_to_target(_function_lab(), [RunSpec("SGD", "sgd", {"lr": 10.0})],
                            target=1e-2, steps=100)
    assert out.steps is None and out.reason.startswith("diverged")


def _spec(storage=None, **kw) -> ScorecardSpec:
    workloads = [
        Workload("quad", _function_lab(steps=60), 1e-2, 60, heldout={"data_seed": 1e-2}),
        Workload("bowl", _function_lab("x**2 + y**2", (1.0, 1.0), 40), 1e-3, 40),
    ]
    return ScorecardSpec([entry("adam", "adam"), entry("sgd", "sgd")], workloads,
                         trials=2, studies=2, storage=storage, **kw)


def test_a_small_scorecard_is_deterministic_and_misses_are_null(tmp_path):
    first = run_scorecard(_spec(str(tmp_path / "a.db")))
    second = run_scorecard(_spec(str(tmp_path / "b.db")))
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)
    assert set(first["times"]) == {"adam", "sgd"}
    assert set(first["times"]["adam"]) == {"quad", "bowl"}
    for row in first["entries"]:
        assert 0.0 <= row["score"] <= 1.0
    # Every study's fastest trial is a real trial of that study, and the workload's time is the
    # median over the studies (None when half or more missed: a miss is infinite).
    for name, per_workload in first["studies_detail"].items():
        for workload in ("quad", "bowl"):
            studies = per_workload[workload]
            times = [s.get("steps", math.inf) if s.get("trial") is not None else math.inf
                     for s in studies]
            median = sorted(times)[0] / 2 + sorted(times)[1] / 2
            expected = first["times"][name][workload]
            if workload in first["voided"][name]:
                assert expected is None
            else:
                assert expected == (median if math.isfinite(median) else None)
    # Reopened on the same storage, nothing is trained again and the numbers are the same.
    again = run_scorecard(_spec(str(tmp_path / "a.db")))
    assert json.dumps(again, sort_keys=True) == json.dumps(first, sort_keys=True)


def test_self_tuning_uses_the_default_lr_and_one_and_a_half_budgets():
    result = run_scorecard(_spec(ruleset="self", heldout=False))
    assert result["trials"] == 1
    for row in result["entries"]:
        default = entry(row["name"], row["name"]).default
        assert row["search_space"] == {"lr": default}
        for studies in result["studies_detail"][row["name"]].values():
            for study in studies:
                if study.get("trial") is not None:
                    assert study["lr"] == default


def _write_suite(folder: Path, budget=60, target=1e-2) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    save_lab(_function_lab(steps=budget), folder / "quad.lab.json")
    save_lab(_function_lab("x**2 + y**2", (1.0, 1.0), 40), folder / "bowl.lab.json")
    (folder / "suite.json").write_text(json.dumps({"workloads": {
        "quad": {"target": target, "budget": budget, "provenance": {"set by": "this test"}},
        "bowl": {"target": 1e-3, "budget": 40, "provenance": {"set by": "this test"}},
    }}))


def _cli(*args, **kw):
    return subprocess.run([sys.executable, str(ROOT / "main.py"), "scorecard", *args],
                          capture_output=True, text=True, cwd=ROOT, **kw)


@pytest.mark.parametrize("args, field", [
    (["--entries", "adam", "--workloads", "nope"], "--workloads"),
    (["--entries", "no_such_optimizer"], "--entries"),
    (["--entries", "adam", "--storage", "postgresql://nobody@127.0.0.1:9/none"], "--storage"),
    (["--entries", "adam", "--trials", "0"], "--trials"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, field):
    _write_suite(tmp_path / "suite")
    done = _cli(*args, "--suite", str(tmp_path / "suite"), "--out", str(tmp_path / "out"),
                timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and field in lines[0], done.stderr


def test_an_entry_without_a_search_space_is_refused_in_one_line(tmp_path):
    _write_suite(tmp_path / "suite")
    (tmp_path / "nolr.py").write_text(
        "import torch\n\n\nclass NoLr(torch.optim.Optimizer):\n"
        "    def __init__(self, params, beta=0.9):\n"
        "        super().__init__(params, dict(beta=beta))\n\n"
        "    def step(self, closure=None):\n        pass\n")
    done = _cli("--entries", f"adam,{tmp_path / 'nolr.py'}:NoLr", "--trust-code",
                "--suite", str(tmp_path / "suite"), "--out", str(tmp_path / "out"), timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "search space is empty" in lines[0], done.stderr


def _running_trials(db: Path) -> int:
    """RUNNING trials that a worker claimed (asked, their lr drawn, training)."""
    import sqlite3

    try:
        with sqlite3.connect(db, timeout=5) as con:
            return con.execute(
                "select count(*) from trials t join trial_system_attributes a "
                "on a.trial_id = t.trial_id where t.state = 'RUNNING' "
                "and a.key = 'descent_lab:worker'").fetchone()[0]
    except sqlite3.Error:  # not created yet
        return 0


def test_resumed_after_sigkill_it_completes_with_no_trial_run_twice(tmp_path):
    import optuna

    # quad's target is never reached: each of its studies trains its whole budget, so the kill
    # lands while a study's trials are in flight.
    _write_suite(tmp_path / "suite", budget=1500, target=-1.0)
    common = ["--entries", "adam,sgd", "--workloads", "bowl,quad", "--trials", "2",
              "--studies", "3", "--suite", str(tmp_path / "suite")]
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "scorecard", *common,
                             "--out", str(killed)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    first = proc.stdout.readline()  # one study finished: the kill lands mid-scorecard
    assert "study 1/3" in first
    deadline = time.monotonic() + 120
    # On a function workload every study's trials of both entries train as one race
    # (core/tools/scorecard/run.py): 2 entries × 3 studies × O = 2.
    while _running_trials(killed / "scorecard.db") < 12 and time.monotonic() < deadline:
        time.sleep(0.01)  # kill while the trials train
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert not (killed / "scorecard.json").exists()
    storage = optuna.storages.RDBStorage(f"sqlite:///{killed / 'scorecard.db'}")
    in_flight = {(s.study_name, t.params["lr"]) for s in optuna.get_all_study_summaries(storage)
                 for t in optuna.load_study(study_name=s.study_name, storage=storage).trials
                 if t.state == optuna.trial.TrialState.RUNNING}
    assert len(in_flight) == 12  # killed while the trials trained, 2 per study
    done = _cli(*common, "--out", str(killed), timeout=600)
    assert done.returncode == 0, done.stderr
    fresh = _cli(*common, "--out", str(tmp_path / "fresh"), timeout=600)
    assert fresh.returncode == 0, fresh.stderr
    resumed = json.loads((killed / "scorecard.json").read_text())
    whole = json.loads((tmp_path / "fresh" / "scorecard.json").read_text())
    for key in ("times", "grad_evals", "score_steps", "entries"):
        assert resumed[key] == whole[key], key
    studies = optuna.get_all_study_summaries(storage)
    assert len(studies) == 2 * 2 * 3
    for summary in studies:
        trials = optuna.load_study(study_name=summary.study_name, storage=storage).trials
        complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
        # each of the study's O points trained to the end exactly once; none left hanging
        assert len(complete) == 2
        assert len({t.params["lr"] for t in complete}) == 2
        assert all(t.state != optuna.trial.TrialState.RUNNING for t in trials)
    # the points in flight at the kill were trained again, in their own study (as the fresh
    # run trained them)
    finished = {(s.study_name, t.params["lr"]) for s in studies
                for t in optuna.load_study(study_name=s.study_name, storage=storage).trials
                if t.state == optuna.trial.TrialState.COMPLETE}
    assert in_flight <= finished


def test_the_shipped_suite_loads_with_targets_provenance_and_heldout_variants():
    from core.tools.scorecard.workloads import heldout_variants, load_suite

    suite = load_suite()
    assert {"moons_mlp", "spirals_mlp", "digits_mlp", "sine_mlp", "rosenbrock",
            "ill_quadratic", "noisy_quadratic", "digits_cnn"} <= set(suite)
    for name, workload in suite.items():
        assert math.isfinite(workload.target) and workload.budget >= 1, name
        assert workload.provenance["reference"] and workload.provenance["command"], name
        (reference,) = workload.lab.runs  # the lab races the reference that set the target
        assert reference.optimizer == workload.provenance["optimizer"], name
        assert reference.params == workload.provenance["params"], name
        variants = heldout_variants(workload)
        assert variants and all(v.base == name for v in variants), name
        if workload.lab.is_network:  # each variant changes the problem it trains on
            assert all(v.lab.problem != workload.lab.problem for v in variants), name
    kinds = {v.name.split("~")[1] for v in heldout_variants(suite["moons_mlp"])}
    assert kinds == {"activation", "noise", "batch", "data_seed"}


def test_the_scorecard_charges_sam_two_gradient_evaluations_a_step():
    bowl = Workload("bowl", _function_lab("x**2 + y**2", (1.0, 1.0), 400), 1e-2, 400)
    result = run_scorecard(ScorecardSpec(
        [entry("sam", "pytorch_optimizer:SAM"), entry("sgd", "sgd")], [bowl],
        trials=4, studies=1, heldout=False))
    sam_steps, sgd_steps = result["times"]["sam"]["bowl"], result["times"]["sgd"]["bowl"]
    assert sam_steps is not None and sgd_steps is not None
    assert result["grad_evals"]["sam"]["bowl"] == 2 * sam_steps
    assert result["grad_evals"]["sgd"]["bowl"] == sgd_steps
