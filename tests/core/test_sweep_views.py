"""The sweep views' numbers: best-so-far, the 2-parameter grid, parallel coordinates,
importance, and a trial turned into a run — computed from real sweeps on a tiny lab."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.errors import LabError
from core.lab.format import FunctionProblem, Lab, RunSpec, validate_lab
from core.optim.catalog import get_optimizer_info
from core.tools.sweep.run import Sweep
from core.tools.sweep.space import build_search_space
from core.tools.sweep.spec import SweepSpec
from core.tools.sweep_views import (
    base_run_for,
    best_so_far,
    grid_2d,
    lab_with_trial,
    load_existing_study,
    parallel_coordinates,
    param_flag,
    param_importance,
    searchable_params,
)


def _banana(steps=15) -> Lab:
    return validate_lab(Lab(name="banana", steps=steps,
                            problem=FunctionProblem("rosenbrock", (-1.5, 2.0)),
                            runs=(RunSpec("SGD", "sgd", {"lr": 1e-4, "momentum": 0.5}),)))


@pytest.fixture(scope="module")
def grid_study():
    spec = SweepSpec(_banana(), trials=100, sampler="grid", batch=8, prune=False,
                     params=("lr=1e-5:1e-3:log:4", "momentum=0:0.9:3"))
    sweep = Sweep(spec)
    list(sweep.run())
    return sweep.study


def test_searchable_rows_and_flags_parse_back_to_the_same_space():
    names = [hp.name for hp in searchable_params("sgd")]
    assert names[:2] == ["lr", "momentum"] and "nesterov" in names
    info = get_optimizer_info("sgd")
    flags = [param_flag(info.hyperparam("lr"), 1e-4, 1e-1, True, 3),
             param_flag(info.hyperparam("nesterov"))]
    space = {p.name: p for p in build_search_space("sgd", flags)}
    assert (space["lr"].low, space["lr"].high, space["lr"].log, space["lr"].grid_points) == (
        1e-4, 1e-1, True, 3)
    assert space["nesterov"].choices == (False, True)
    with pytest.raises(LabError, match="empty or inverted"):
        build_search_space("sgd", [param_flag(info.hyperparam("lr"), 0.1, 0.01, True)])


def test_best_so_far_is_the_running_minimum(grid_study):
    numbers, values, best = best_so_far(grid_study.trials)
    assert len(numbers) == 12
    assert np.all(np.diff(best) <= 0) and best[-1] == values.min() == grid_study.best_value
    assert np.all(best <= values)


def test_grid_cells_are_the_grid_points_with_their_values(grid_study):
    grid = grid_2d(grid_study.trials, "lr", "momentum")
    assert grid.best.shape == (3, 4) and np.all(grid.counts == 1)
    assert np.all(np.isfinite(grid.best))
    for t in grid_study.trials:
        i = grid.y.cell(t.params["momentum"])
        j = grid.x.cell(t.params["lr"])
        assert grid.best[i, j] == t.value
    with pytest.raises(LabError, match="two different"):
        grid_2d(grid_study.trials, "lr", "lr")


def test_binned_grid_keeps_the_lowest_value_per_cell():
    spec = SweepSpec(_banana(steps=8), trials=24, sampler="random", batch=8, prune=False,
                     params=("lr=1e-6:1e-3:log", "momentum=0:0.9"))
    sweep = Sweep(spec)
    list(sweep.run())
    grid = grid_2d(sweep.study.trials, "lr", "momentum", bins=4)
    assert grid.best.shape == (4, 4) and grid.counts.sum() == 24
    assert np.nanmin(grid.best) == pytest.approx(sweep.study.best_value)


def test_parallel_coordinates_normalise_each_axis_over_its_range(grid_study):
    par = parallel_coordinates(grid_study.trials)
    assert par.names == ("lr", "momentum", "objective")
    assert par.positions.shape == (12, 3)
    assert np.all((par.positions >= 0) & (par.positions <= 1))
    lr = np.array([grid_study.trials[n].params["lr"] for n in par.numbers])
    # log axis: 1e-5 -> 0, 1e-4 -> 1/2, 1e-3 -> 1
    np.testing.assert_allclose(par.positions[:, 0], (np.log10(lr) + 5) / 2, atol=1e-9)
    best_row = int(np.argmin(par.values))
    assert par.positions[best_row, 2] == 0.0


def test_importance_ranks_two_parameters_or_says_why_not(grid_study):
    importances, why = param_importance(grid_study)
    assert why == "" and set(importances) == {"lr", "momentum"}
    assert sum(importances.values()) == pytest.approx(1.0)
    assert all(math.isfinite(v) and v >= 0 for v in importances.values())
    one = Sweep(SweepSpec(_banana(steps=5), trials=3, sampler="random", prune=False))
    list(one.run())
    importances, why = param_importance(one.study)
    assert importances is None and "at least two" in why


def test_a_trial_becomes_a_run_added_then_changed(grid_study):
    lab = _banana()
    trial = grid_study.best_trial
    base = base_run_for(lab, "sgd", "SGD")
    new_lab, label = lab_with_trial(lab, base, trial.params, trial.number)
    assert len(new_lab.runs) == 2 and new_lab.runs[1].label == label
    assert new_lab.runs[1].params["lr"] == trial.params["lr"]
    again, _ = lab_with_trial(new_lab, base, {"lr": 0.5}, trial.number)
    assert len(again.runs) == 2 and again.runs[1].params["lr"] == 0.5


def test_watching_a_missing_study_lists_what_is_there(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    list(Sweep(SweepSpec(_banana(steps=5), trials=1, storage=url, study="mine")).run())
    assert load_existing_study(url, "mine").study_name == "mine"
    with pytest.raises(LabError, match="'mine'"):
        load_existing_study(url, "theirs")
