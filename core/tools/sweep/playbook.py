"""What Google's Deep Learning Tuning Playbook reads off a sweep: isolation plots and boundary
warnings, computed from a study's trials (no Qt here).

* `isolation` — the playbook's "isolation plot" for one hyperparameter: the best (lowest)
  objective of the complete trials per value of it, every other hyperparameter "optimized away"
  by that minimum. Values are grouped as the heatmap groups them
  (`core.tools.sweep_views.param_axis`): one point per value of a list or of a grid's few points,
  else `DEFAULT_BINS` bins over the search range, log-spaced for a log-scale parameter. A curve
  that still falls at the end of the range says the best lies beyond it.
* `boundary_warnings` — the playbook's check that a search space is wide enough: when the best
  trial's value of a ranged hyperparameter lies in the outer `EDGE_FRACTION` of its range
  (measured on the log scale for a log range), its `message` says so and asks to widen the
  space: "best lr 0.98 lies at the upper edge of [0.0001, 1] (log scale): widen the search
  space". A list of three or more numbers warns when the best is its smallest or largest value.
  Booleans and names have no edge.

Both read each trial's own Optuna distributions, so they work alike for a sweep the window runs,
for ``main.py sweep`` (cli/sweep.py prints the warnings and writes them into best.json) and for a
study another worker is filling (the window only watches it). The window draws them in
app/tools/isolation_view.py and app/tools/sweep_window.py.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.errors import LabError
from core.optim.hyperparams import format_number
from core.tools.sweep_views import DEFAULT_BINS, complete_trials, param_axis

EDGE_FRACTION = 0.05  # the outer 5 % of a range at either end counts as "at the edge"
MAX_BINS = 100


def _distribution(trials: Sequence, name: str):
    for t in trials:
        if name in t.distributions:
            return t.distributions[name]
    return None


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# --------------------------------------------------------------------------------------------
# Isolation plot


@dataclass(frozen=True)
class Isolation:
    """The best objective per value (or bin) of one hyperparameter."""

    name: str
    labels: tuple[str, ...]  # one per point: the value, or the bin's centre
    x: np.ndarray  # where each point sits: the value / bin centre, or its index (categorical)
    best: np.ndarray  # lowest objective of the complete trials there; NaN where there is none
    best_trial: np.ndarray  # the number of the trial that scored it; -1 where there is none
    best_x: np.ndarray  # that trial's own x (NaN where there is none): the curve runs through
    # real trials, each the best of its bin
    counts: np.ndarray  # complete trials there
    categorical: bool  # x holds indices (labelled by ``labels``), not the values
    log: bool  # the parameter is searched on a log scale (draw x on a log axis)
    edges: np.ndarray | None  # the bins' edges when the values were binned
    search_range: tuple[float, float] | None  # (low, high) of a ranged parameter
    trial_x: np.ndarray  # every complete trial's own x (its value, or its value's index)
    trial_values: np.ndarray  # ... and its objective


def isolation(trials: Sequence, name: str, bins: int = DEFAULT_BINS) -> Isolation:
    """The isolation plot of ``name`` over the complete trials of ``trials``."""
    if not (isinstance(bins, int) and not isinstance(bins, bool) and 2 <= bins <= MAX_BINS):
        raise LabError("bins", f"must be a whole number in [2, {MAX_BINS}], got {bins!r}")
    done = [t for t in complete_trials(trials) if name in t.params]
    if not done:
        raise LabError("isolation", f"no complete trial has {name} yet")
    from optuna.distributions import CategoricalDistribution

    dist = _distribution(done, name)
    axis = param_axis(done, name, bins)
    categorical = isinstance(dist, CategoricalDistribution) or not all(
        _is_number(t.params[name]) for t in done)
    ranged = dist is not None and not isinstance(dist, CategoricalDistribution)
    log = ranged and bool(getattr(dist, "log", False)) and float(dist.low) > 0
    n = len(axis.labels)
    if categorical:
        x = np.arange(n, dtype=np.float64)
    elif axis.edges is None:
        x = np.array([float(v) for v in axis.values], dtype=np.float64)
    elif axis.log:
        x = np.sqrt(axis.edges[:-1] * axis.edges[1:])
    else:
        x = (axis.edges[:-1] + axis.edges[1:]) / 2
    best = np.full(n, np.nan)
    best_trial = np.full(n, -1, dtype=np.int64)
    best_x = np.full(n, np.nan)
    counts = np.zeros(n, dtype=np.int64)
    trial_x, trial_values = [], []
    for t in done:  # by number: of equal values, the earliest trial is the one named
        cell = axis.cell(t.params[name])
        if cell is None:
            continue
        counts[cell] += 1
        own_x = float(cell) if categorical else float(t.params[name])
        if not best[cell] <= t.value:  # NaN (empty) or a better value
            best[cell], best_trial[cell], best_x[cell] = t.value, t.number, own_x
        trial_x.append(own_x)
        trial_values.append(float(t.value))
    search_range = (float(dist.low), float(dist.high)) if ranged else None
    return Isolation(name, axis.labels, x, best, best_trial, best_x, counts, categorical, log,
                     axis.edges, search_range, np.array(trial_x, dtype=np.float64),
                     np.array(trial_values, dtype=np.float64))


# --------------------------------------------------------------------------------------------
# Boundary warnings


@dataclass(frozen=True)
class BoundaryWarning:
    """The best trial's ``name`` lies at an edge of what was searched."""

    name: str
    value: float
    low: float
    high: float
    side: str  # "lower" or "upper"
    log: bool  # the range is on a log scale (``position`` measured there)
    position: float  # where the value lies in the range: 0 = low, 1 = high
    listed: tuple = ()  # the values of a list (empty for a range)
    trial: int = -1  # the best trial's number

    @property
    def message(self) -> str:
        shown = f"{self.value:.3g}"
        if self.listed:
            which = "smallest" if self.side == "lower" else "largest"
            values = ", ".join(format_number(v) for v in self.listed)
            return (f"best {self.name} {shown} is the {which} of the listed values "
                    f"({values}): widen the search space")
        scale = " (log scale)" if self.log else ""
        return (f"best {self.name} {shown} lies at the {self.side} edge of "
                f"[{format_number(self.low)}, {format_number(self.high)}]{scale}: "
                "widen the search space")

    def as_dict(self) -> dict:
        """The warning as best.json writes it."""
        return {"param": self.name, "value": self.value, "low": self.low, "high": self.high,
                "side": self.side, "log": self.log, "position": round(self.position, 6),
                "trial": self.trial, "message": self.message}


def boundary_warnings(trials: Sequence, edge: float = EDGE_FRACTION) -> list[BoundaryWarning]:
    """A warning for each hyperparameter whose best-trial value lies in the outer ``edge``
    fraction of its range (log ranges measured on the log scale); none before a complete
    trial. Lists of three or more numbers warn at their smallest and largest value."""
    from optuna.distributions import CategoricalDistribution

    if not (_is_number(edge) and 0 < edge < 0.5):
        raise LabError("edge", f"must be a fraction of the range in (0, 0.5), got {edge!r}")
    done = complete_trials(trials)
    if not done:
        return []
    best = min(done, key=lambda t: t.value)  # by number: the earliest of equal values
    warnings: list[BoundaryWarning] = []
    for name, value in best.params.items():
        dist = best.distributions.get(name)
        if dist is None or not _is_number(value):
            continue
        if isinstance(dist, CategoricalDistribution):
            choices = dist.choices
            if len(choices) < 3 or not all(_is_number(c) for c in choices):
                continue
            ordered = tuple(sorted(choices))
            low, high = float(ordered[0]), float(ordered[-1])
            side = "lower" if value == ordered[0] else "upper" if value == ordered[-1] else None
            if side is not None:
                warnings.append(BoundaryWarning(name, float(value), low, high, side, False,
                                                0.0 if side == "lower" else 1.0, ordered,
                                                best.number))
            continue
        low, high = float(dist.low), float(dist.high)
        if not high > low:
            continue  # a one-point range has no inside to move into
        log = bool(getattr(dist, "log", False)) and low > 0
        if log:
            position = ((math.log10(value) - math.log10(low))
                        / (math.log10(high) - math.log10(low)))
        else:
            position = (value - low) / (high - low)
        side = "lower" if position <= edge else "upper" if position >= 1 - edge else None
        if side is not None:
            warnings.append(BoundaryWarning(name, float(value), low, high, side, log,
                                            float(position), (), best.number))
    return warnings
