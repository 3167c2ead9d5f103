"""The playbook's reads of a sweep (core/tools/sweep/playbook.py) on hand-made trials: the
isolation plot's best per value / per bin against a plain numpy group-by, and the boundary
warning at an edge of a linear and of a log range (and not inside them)."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from core.errors import LabError
from core.tools.sweep.playbook import boundary_warnings, isolation

LR = FloatDistribution(1e-4, 1.0, log=True)
MOMENTUM = FloatDistribution(0.0, 0.99)
NESTEROV = CategoricalDistribution((False, True))


def _trial(number, value, state=optuna.trial.TrialState.COMPLETE, **params):
    dists = {"lr": LR, "momentum": MOMENTUM, "nesterov": NESTEROV, "batch": IntDistribution(8, 64)}
    trial = optuna.trial.create_trial(
        params=params, distributions={k: dists[k] for k in params},
        value=value if state == optuna.trial.TrialState.COMPLETE else None, state=state)
    trial.number = number
    return trial


def _random_trials(n=60, seed=3):
    rng = np.random.default_rng(seed)
    lrs = 10 ** rng.uniform(-4, 0, n)
    moms = rng.uniform(0, 0.99, n)
    values = (np.log10(lrs) + 2) ** 2 + (moms - 0.5) ** 2 + rng.uniform(0, 0.1, n)
    trials = [_trial(i, float(v), lr=float(a), momentum=float(m), nesterov=bool(i % 2))
              for i, (a, m, v) in enumerate(zip(lrs, moms, values))]
    # A pruned and a failed trial with a tempting value: never part of the plot.
    trials.append(_trial(n, None, optuna.trial.TrialState.PRUNED, lr=0.01, momentum=0.5,
                         nesterov=True))
    trials.append(_trial(n + 1, None, optuna.trial.TrialState.FAIL, lr=0.01, momentum=0.5,
                         nesterov=False))
    return trials, lrs, moms, values


def test_log_bins_hold_the_best_trial_of_each_bin_like_a_numpy_groupby():
    trials, lrs, _moms, values = _random_trials()
    iso = isolation(trials, "lr", bins=8)
    assert iso.log and not iso.categorical and iso.search_range == (1e-4, 1.0)
    # Independently: 8 bins of equal width in log10(lr) over [-4, 0], min per bin.
    bin_of = np.minimum((np.log10(lrs) + 4) / 0.5, 7.999).astype(int)
    expected = np.full(8, np.nan)
    for b in range(8):
        if np.any(bin_of == b):
            expected[b] = values[bin_of == b].min()
    np.testing.assert_allclose(iso.best, expected, rtol=0, atol=0)
    np.testing.assert_array_equal(iso.counts, np.bincount(bin_of, minlength=8))
    for b in range(8):
        winner = int(np.flatnonzero(bin_of == b)[np.argmin(values[bin_of == b])])
        assert iso.best_trial[b] == winner and iso.best_x[b] == lrs[winner]
    # Points sit at the bins' geometric centres: 10^-3.75, 10^-3.25, ...
    np.testing.assert_allclose(np.log10(iso.x), -3.75 + 0.5 * np.arange(8), atol=1e-12)
    assert len(iso.trial_x) == 60  # complete trials only


def test_linear_bins_and_a_list_optimize_the_other_parameters_away():
    trials, _lrs, moms, values = _random_trials()
    iso = isolation(trials, "momentum", bins=4)
    assert not iso.log
    bin_of = np.minimum(moms / (0.99 / 4), 3.999).astype(int)
    expected = [values[bin_of == b].min() for b in range(4)]
    np.testing.assert_allclose(iso.best, expected, rtol=0, atol=0)
    np.testing.assert_allclose(iso.x, (np.arange(4) + 0.5) * 0.99 / 4)

    per_choice = isolation(trials, "nesterov")
    assert per_choice.categorical and per_choice.labels == ("false", "true")
    assert per_choice.best.tolist() == [values[0::2].min(), values[1::2].min()]
    np.testing.assert_array_equal(per_choice.x, [0.0, 1.0])


def test_a_grid_gets_one_point_per_value_computed_by_hand():
    # lr ∈ {1e-3, 1e-2, 1e-1} × momentum ∈ {0, 0.9}; the best of each lr by hand.
    values = {(1e-3, 0.0): 5.0, (1e-3, 0.9): 4.0, (1e-2, 0.0): 2.5, (1e-2, 0.9): 3.0,
              (1e-1, 0.0): 7.0, (1e-1, 0.9): 1.5}
    trials = [_trial(i, v, lr=lr, momentum=m) for i, ((lr, m), v) in enumerate(values.items())]
    iso = isolation(trials, "lr")
    assert iso.x.tolist() == [1e-3, 1e-2, 1e-1] and iso.edges is None
    assert iso.best.tolist() == [4.0, 2.5, 1.5]
    assert iso.best_trial.tolist() == [1, 2, 5]
    assert iso.best_x.tolist() == iso.x.tolist()  # a grid's points are its values
    assert iso.labels == ("0.001", "0.01", "0.1")


def test_bad_requests_name_the_field():
    trials, *_ = _random_trials(10)
    with pytest.raises(LabError, match=r"bins.*\[2, 100\]"):
        isolation(trials, "lr", bins=1)
    with pytest.raises(LabError, match="no complete trial has weight_decay"):
        isolation(trials, "weight_decay")
    with pytest.raises(LabError, match=r"edge.*\(0, 0.5\)"):
        boundary_warnings(trials, edge=0.7)


def test_boundary_warning_fires_at_the_edge_and_not_in_the_middle():
    edge = [_trial(0, 3.0, lr=1e-3, momentum=0.5), _trial(1, 0.1, lr=0.98, momentum=0.5)]
    (warning,) = boundary_warnings(edge)
    assert (warning.name, warning.side, warning.log, warning.trial) == ("lr", "upper", True, 1)
    assert warning.message == ("best lr 0.98 lies at the upper edge of [0.0001, 1] (log scale): "
                               "widen the search space")
    middle = [_trial(0, 3.0, lr=0.5, momentum=0.02), _trial(1, 0.1, lr=1e-2, momentum=0.5)]
    assert boundary_warnings(middle) == []
    low_momentum = [_trial(0, 0.1, lr=1e-2, momentum=0.04)]  # 0.04 / 0.99 = 4 % of the range
    (warning,) = boundary_warnings(low_momentum)
    assert (warning.name, warning.side, warning.log) == ("momentum", "lower", False)
    assert "lower edge of [0, 0.99]" in warning.message and "log" not in warning.message
    assert boundary_warnings([_trial(0, 0.1, lr=1e-2, momentum=0.06)]) == []
    assert boundary_warnings([_trial(0, None, optuna.trial.TrialState.PRUNED, lr=0.99)]) == []


def test_a_log_range_is_judged_on_the_log_scale():
    # 2e-4 is 0.01 % of [1e-4, 1] on a linear scale but 7.5 % of it in decades: inside.
    assert boundary_warnings([_trial(0, 1.0, lr=2e-4)]) == []
    # 1.5e-4 is 4.4 % of the decades: at the lower edge.
    (warning,) = boundary_warnings([_trial(0, 1.0, lr=1.5e-4)])
    assert warning.side == "lower"
    assert math.isclose(warning.position, math.log10(1.5) / 4)
    # 0.5 is at 92 % of the decades: inside, although it is half of [1e-4, 1] linearly.
    assert boundary_warnings([_trial(0, 1.0, lr=0.5)]) == []
    # On a linear range the same 0.5 would be the middle, and 0.97 the edge.
    linear = FloatDistribution(1e-4, 1.0)
    trial = optuna.trial.create_trial(params={"lr": 0.97}, distributions={"lr": linear},
                                      value=1.0)
    (warning,) = boundary_warnings([trial])
    assert warning.side == "upper" and not warning.log


def test_lists_of_numbers_warn_at_their_ends_and_booleans_never():
    listed = CategoricalDistribution((0.001, 0.01, 0.1))
    trials = [optuna.trial.create_trial(params={"lr": lr, "nesterov": True},
                                        distributions={"lr": listed, "nesterov": NESTEROV},
                                        value=v) for lr, v in ((0.001, 3.0), (0.1, 1.0))]
    (warning,) = boundary_warnings(trials)
    assert warning.name == "lr" and warning.side == "upper"
    assert warning.message == ("best lr 0.1 is the largest of the listed values "
                               "(0.001, 0.01, 0.1): widen the search space")
