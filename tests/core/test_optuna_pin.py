"""Optuna is pinned to the major core/tools/sweep/ was checked against (pyproject.toml).

core/tools/sweep/ uses Optuna's public API but for one private attribute (`Study._thread_local`,
cleared in core/tools/sweep/run.py before a trial is added so TPE's constant liar sees the trials
of the same batch). These tests fail when the installed Optuna is outside the pin, and when that
attribute stops doing its job: then the pin must not move until core/tools/sweep/run.py is changed.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import optuna
from packaging.requirements import Requirement
from packaging.version import Version

from core.lab.format import FunctionProblem, Lab, RunSpec, validate_lab
from core.tools.sweep.run import Sweep
from core.tools.sweep.spec import SweepSpec

ROOT = Path(__file__).resolve().parents[2]


def _optuna_requirement() -> Requirement:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    found = [Requirement(r) for r in project["dependencies"] if Requirement(r).name == "optuna"]
    assert len(found) == 1, "pyproject.toml must list optuna once"
    return found[0]


def test_optuna_is_pinned_to_one_major_and_the_installed_one_is_inside():
    spec = _optuna_requirement().specifier
    uppers = [Version(s.version) for s in spec if s.operator == "<"]
    lowers = [Version(s.version) for s in spec if s.operator == ">="]
    assert uppers and lowers, f"optuna{spec}: pin the major (>=N,<N+1)"
    assert min(uppers).major == max(lowers).major + 1 and min(uppers).minor == 0, (
        f"optuna{spec} spans more than one major")
    installed = Version(optuna.__version__)
    assert spec.contains(installed), (
        f"installed optuna {installed} is outside the pin optuna{spec} (pyproject.toml)")


def test_a_new_trial_is_seen_by_the_sampler_of_the_same_batch():
    """The private cache Sweep._new_trial clears still exists and is what TPE reads."""
    lab = validate_lab(Lab(name="banana", steps=5,
                           problem=FunctionProblem("rosenbrock", (-1.5, 2.0)),
                           runs=(RunSpec("Adam", "adam", {"lr": 0.001}),)))
    run = Sweep(SweepSpec(lab, trials=2, sampler="tpe", batch=2))
    distributions = {p.name: p.distribution() for p in run.space}
    first, second = run._ask(2, distributions)
    assert hasattr(run.study, "_thread_local"), "Optuna renamed Study._thread_local"
    seen = [t.number for t in run.study._thread_local.cached_all_trials]
    assert first.number in seen and second.number in seen
    assert "lr" in second.params
