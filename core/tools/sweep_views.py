"""Data for the sweep window's views, computed from an Optuna study (no Qt here).

The sweep window draws five pictures of a study; this module turns the study's trials into
plain numpy arrays for them, so the numbers are tested without a window:

* `best_so_far` — the running minimum of the objective over the complete trials, by trial
  number: how fast the search found its best.
* `grid_2d` — the best (lowest) objective per cell of a 2-parameter grid (e.g. lr × momentum).
  A grid sweep's own points are the cells; continuous values are binned (log-spaced bins for a
  log-scale parameter), lists of values get one cell per value.
* `parallel_coordinates` — every complete trial as a polyline over one axis per parameter plus
  the objective, each axis normalised to [0, 1] over its search range (log ranges on a log
  scale, lists by position), so ranges as different as lr and momentum share one picture.
* `param_importance` — Optuna's fANOVA importances, when there is something to compare
  (>= 2 parameters and enough complete trials); otherwise a sentence saying why not.

The normalisation reads each trial's own Optuna distributions, so the views work the same for
a sweep started here and for a study another worker is filling (the window only watches it).
Objective values are coloured on a log scale when all are positive: a diverged trial scores
its worst loss (maybe 1e30) and would otherwise wash every other colour out.

Also here: the search-space rows the window offers (`searchable_params`, `param_flag`: the
window builds the same ``--param`` text the CLI parses, so a bad range gets core's message), and
`lab_with_trial`, which turns a trial into a run of a lab (double-click in the table).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from core.errors import LabError
from core.lab.format import Lab, RunSpec, validate_lab
from core.optim.hyperparams import HyperParam, format_number

MIN_IMPORTANCE_TRIALS = 6  # fANOVA on fewer complete trials says more about noise than params
DEFAULT_BINS = 8
IMPORTANCE_SEED = 0  # fANOVA's forest is random: a seed makes the bars stable between redraws


# --------------------------------------------------------------------------------------------
# The search space the window offers


def searchable_params(optimizer: str) -> list[HyperParam]:
    """The optimizer's hyperparameters a sweep can search, in registry order.

    Numbers need a registry ``search`` range (the window's default); booleans and choices are
    searched over all their values. Pairs and lists cannot be searched (see core.tools.sweep).
    """
    from core.optim.catalog import get_optimizer_info

    info = get_optimizer_info(optimizer)
    return [hp for hp in info.hyperparams
            if (hp.kind in ("float", "int") and hp.search is not None)
            or hp.kind in ("bool", "choice")]


def param_flag(hp: HyperParam, low: float | str | None = None, high: float | str | None = None,
               log: bool | None = None, points: int | None = None) -> str:
    """The ``--param`` text for one ticked row (parsed and checked by core.tools.sweep.space.parse_param).

    Booleans and choices search all their values; numbers search ``low:high`` on the given
    scale with ``points`` grid points.
    """
    if hp.kind in ("bool", "choice"):
        return hp.name
    # The window passes the user's text as typed (core.tools.sweep parses it and names a bad one).
    parts = [b.strip() if isinstance(b, str) else format_number(b) for b in (low, high)]
    if log is not None:
        parts.append("log" if log else "linear")
    if points is not None:
        parts.append(str(int(points)))
    return f"{hp.name}=" + ":".join(parts)


# --------------------------------------------------------------------------------------------
# Reading trials


def complete_trials(trials: Sequence) -> list:
    """The complete trials with a finite value, by number."""
    import optuna

    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE
            and t.value is not None and math.isfinite(t.value)]
    return sorted(done, key=lambda t: t.number)


def state_counts(trials: Sequence) -> dict[str, int]:
    """Trials by state as the progress line shows them (cancelled ones count as failed)."""
    counts = {"complete": 0, "running": 0, "pruned": 0, "failed": 0, "waiting": 0}
    for t in trials:
        name = t.state.name.lower()
        name = "failed" if name == "fail" else name
        counts[name] = counts.get(name, 0) + 1
    return counts


def space_names(trials: Sequence) -> list[str]:
    """Every parameter any trial searched, in first-seen order."""
    names: dict[str, None] = {}
    for t in sorted(trials, key=lambda t: t.number):
        names.update(dict.fromkeys(t.distributions))
    return list(names)


def _distribution(trials: Sequence, name: str):
    for t in trials:
        if name in t.distributions:
            return t.distributions[name]
    return None


# --------------------------------------------------------------------------------------------
# Best so far


def best_so_far(trials: Sequence) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(trial numbers, each trial's value, running minimum) over the complete trials."""
    done = complete_trials(trials)
    numbers = np.array([t.number for t in done], dtype=np.float64)
    values = np.array([t.value for t in done], dtype=np.float64)
    best = np.minimum.accumulate(values) if len(values) else values
    return numbers, values, best


# --------------------------------------------------------------------------------------------
# Colours for objective values


def color_scale(values: np.ndarray) -> tuple[np.ndarray, bool]:
    """Values as coloured (log10 when all finite ones are positive) and whether log was used."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if len(finite) and finite.min() > 0:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log10(values), True
    return values.copy(), False


def color_levels(shown: np.ndarray) -> tuple[float, float]:
    """Colour levels: best value to the 90th percentile, so one blown-up trial does not wash
    the others out; never an empty interval."""
    finite = shown[np.isfinite(shown)]
    if not len(finite):
        return 0.0, 1.0
    low = float(finite.min())
    high = float(np.percentile(finite, 90)) if len(finite) >= 5 else float(finite.max())
    if not high > low:
        high = low + (abs(low) * 1e-6 or 1e-6)
    return low, high


# --------------------------------------------------------------------------------------------
# 2-parameter heatmap


@dataclass(frozen=True)
class Axis:
    """One heatmap axis: the cells' labels and how a parameter value finds its cell."""

    name: str
    labels: tuple[str, ...]
    edges: np.ndarray | None  # bin edges (continuous, binned); None: one cell per value
    values: tuple = ()  # the cells' values when each value is its own cell
    log: bool = False

    def cell(self, value: Any) -> int | None:
        if self.edges is None:
            for i, v in enumerate(self.values):
                if v == value or (isinstance(v, float) and isinstance(value, (int, float))
                                  and not isinstance(value, bool)
                                  and math.isclose(v, value, rel_tol=1e-9)):
                    return i
            return None
        x = float(value)
        edges = self.edges
        if self.log:
            if x <= 0:
                return None
            x, edges = math.log10(x), np.log10(edges)
        if x < edges[0] or x > edges[-1]:
            return None
        return int(min(len(edges) - 2, max(0, np.searchsorted(edges, x, side="right") - 1)))


def param_axis(trials: Sequence, name: str, bins: int = DEFAULT_BINS) -> Axis:
    """The cells of ``name``: one per value of a list (or of a few values seen, as a grid's
    points), else ``bins`` bins over its search range, log-spaced on a log scale (the heatmap's
    axes, and the isolation plot's in core/tools/sweep/playbook.py)."""
    from optuna.distributions import CategoricalDistribution

    dist = _distribution(trials, name)
    seen = sorted({t.params[name] for t in trials if name in t.params}, key=_sort_key)
    if isinstance(dist, CategoricalDistribution):
        values = tuple(dist.choices)
        return Axis(name, tuple(_label(v) for v in values), None, values)
    if len(seen) <= bins:  # a grid sweep (or few trials): each value its own cell
        return Axis(name, tuple(_label(v) for v in seen), None, tuple(seen))
    low = float(dist.low) if dist is not None else float(min(seen))
    high = float(dist.high) if dist is not None else float(max(seen))
    log = bool(getattr(dist, "log", False)) and low > 0
    edges = np.geomspace(low, high, bins + 1) if log else np.linspace(low, high, bins + 1)
    centers = np.sqrt(edges[:-1] * edges[1:]) if log else (edges[:-1] + edges[1:]) / 2
    return Axis(name, tuple(_label(float(c)) for c in centers), edges, (), log)


def _sort_key(value: Any):
    return (0, float(value), "") if isinstance(value, (int, float)) else (1, 0.0, str(value))


def _label(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


@dataclass(frozen=True)
class Grid2D:
    x: Axis
    y: Axis
    best: np.ndarray  # (len(y.labels), len(x.labels)) lowest objective per cell, NaN if empty
    counts: np.ndarray  # trials per cell


def grid_2d(trials: Sequence, x_name: str, y_name: str, bins: int = DEFAULT_BINS) -> Grid2D:
    """The lowest objective in each cell of ``x_name`` × ``y_name`` (complete trials)."""
    if x_name == y_name:
        raise LabError("heatmap", "pick two different parameters")
    done = [t for t in complete_trials(trials) if x_name in t.params and y_name in t.params]
    if not done:
        raise LabError("heatmap", f"no complete trial has both {x_name} and {y_name} yet")
    x, y = param_axis(done, x_name, bins), param_axis(done, y_name, bins)
    best = np.full((len(y.labels), len(x.labels)), np.nan)
    counts = np.zeros(best.shape, dtype=np.int64)
    for t in done:
        i, j = y.cell(t.params[y_name]), x.cell(t.params[x_name])
        if i is None or j is None:
            continue
        counts[i, j] += 1
        if not best[i, j] <= t.value:  # NaN (empty) or a better value
            best[i, j] = t.value
    return Grid2D(x, y, best, counts)


# --------------------------------------------------------------------------------------------
# Parallel coordinates


@dataclass(frozen=True)
class Parallel:
    names: tuple[str, ...]  # parameter axes, then "objective"
    positions: np.ndarray  # (n_trials, n_axes) in [0, 1]
    values: np.ndarray  # (n_trials,) objective
    numbers: np.ndarray  # (n_trials,) trial numbers
    ticks: tuple[tuple[str, str], ...]  # (bottom, top) label of each axis


def _normalise(values: list, dist) -> tuple[np.ndarray, tuple[str, str]]:
    from optuna.distributions import CategoricalDistribution

    if isinstance(dist, CategoricalDistribution):
        choices = list(dist.choices)
        span = max(1, len(choices) - 1)
        return (np.array([choices.index(v) / span for v in values], dtype=np.float64),
                (_label(choices[0]), _label(choices[-1])))
    low, high = float(dist.low), float(dist.high)
    x = np.asarray(values, dtype=np.float64)
    if getattr(dist, "log", False) and low > 0:
        x, low_t, high_t = np.log10(x), math.log10(low), math.log10(high)
    else:
        low_t, high_t = low, high
    span = high_t - low_t or 1.0
    return np.clip((x - low_t) / span, 0, 1), (_label(low), _label(high))


def parallel_coordinates(trials: Sequence) -> Parallel:
    """Each complete trial as a line over its parameters (normalised) and its objective."""
    done = complete_trials(trials)
    names = [n for n in space_names(done) if all(n in t.params for t in done)]
    columns, ticks = [], []
    for name in names:
        column, tick = _normalise([t.params[name] for t in done], _distribution(done, name))
        columns.append(column)
        ticks.append(tick)
    values = np.array([t.value for t in done], dtype=np.float64)
    shown, _log = color_scale(values)
    if len(values):
        low, high = float(np.nanmin(shown)), float(np.nanmax(shown))
        span = high - low or 1.0
        columns.append((shown - low) / span)
        ticks.append((f"{values.min():.3g}", f"{values.max():.3g}"))
    else:
        columns.append(np.zeros(0))
        ticks.append(("", ""))
    positions = np.column_stack(columns) if len(done) else np.zeros((0, len(names) + 1))
    return Parallel(tuple(names) + ("objective",), positions, values,
                    np.array([t.number for t in done], dtype=np.int64), tuple(ticks))


# --------------------------------------------------------------------------------------------
# Importance


def param_importance(study, min_trials: int = MIN_IMPORTANCE_TRIALS
                     ) -> tuple[dict[str, float] | None, str]:
    """Optuna's fANOVA importances (sum 1, largest first), or None and the reason why not."""
    import optuna

    done = complete_trials(study.get_trials(deepcopy=False))
    names = [n for n in space_names(done) if all(n in t.params for t in done)]
    if len(names) < 2:
        return None, ("Importance compares parameters: search at least two to see which one "
                      "matters most.")
    if len(done) < min_trials:
        return None, (f"Importance needs at least {min_trials} complete trials "
                      f"({len(done)} so far).")
    varied = [n for n in names if len({repr(t.params[n]) for t in done}) > 1]
    if len(varied) < 2:
        return None, "Only one parameter has taken more than one value so far."
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=IMPORTANCE_SEED)
    try:
        importances = optuna.importance.get_param_importances(study, evaluator=evaluator,
                                                              params=varied)
    except (RuntimeError, ValueError) as exc:  # optuna's own "cannot evaluate" cases
        return None, f"Optuna cannot rank the parameters yet: {exc}"
    return {k: float(v) for k, v in importances.items()}, ""


# --------------------------------------------------------------------------------------------
# A trial as a run


def lab_with_trial(lab: Lab, base: RunSpec, params: dict, number: int) -> tuple[Lab, str]:
    """``lab`` with trial ``number`` as a run: the base run with the trial's parameters,
    labelled "<base> · trial N" (replacing a run of that label, else appended). Returns the
    new lab and the label; a lab that would break the file's rules raises `LabError`."""
    label = f"{base.label} · trial {number}"
    run = replace(base, label=label, params={**base.params, **params}, enabled=True,
                  color=None)
    runs = list(lab.runs)
    for i, existing in enumerate(runs):
        if existing.label == label:
            runs[i] = replace(run, color=existing.color)
            break
    else:
        runs.append(run)
    return validate_lab(replace(lab, runs=tuple(runs))), label


def base_run_for(lab: Lab, optimizer: str, label: str | None = None) -> RunSpec:
    """The run a trial builds on: ``label`` if the lab has it with that optimizer, else the
    lab's first run of ``optimizer``, else the registry defaults (a study watched from
    another lab)."""
    from core.optim.catalog import get_optimizer_info

    for run in lab.runs:
        if run.label == label and run.optimizer == optimizer:
            return run
    for run in lab.runs:
        if run.optimizer == optimizer:
            return run
    return RunSpec(get_optimizer_info(optimizer).title, optimizer, {})


# --------------------------------------------------------------------------------------------
# Watching a study


def load_existing_study(storage: str | None, name: str):
    """An existing study, to watch; a `LabError` listing the studies there if ``name`` is not."""
    import optuna

    from core.tools.sweep.storage import open_storage, shown_url, storage_url

    backend = open_storage(storage)
    names = sorted(optuna.get_all_study_names(storage=backend))
    if name not in names:
        there = ", ".join(repr(n) for n in names) if names else "none"
        raise LabError("--study", f"no study {name!r} in {shown_url(storage_url(storage))}; "
                                  f"the studies there: {there}")
    return optuna.load_study(study_name=name, storage=backend)


@dataclass(frozen=True)
class StudySnapshot:
    """One read of a watched study: all the sweep window shows, so it reads no storage itself."""

    study: Any  # the opened optuna Study, reused by the next read (and to open a trial)
    trials: list
    counts: dict[str, int]
    best: tuple[float, int, dict] | None  # value, trial number, params; None before any
    header: list[str]
    rows: list[list]


class _TrialsAsRead:
    """The trials of one read, in the shape `core.tools.sweep.run.trial_rows` asks a study for: the
    table is built from the same list as the pictures, not from a second, newer read."""

    def __init__(self, trials: list):
        self._trials = trials

    def get_trials(self, deepcopy: bool = False) -> list:
        return self._trials


def read_study(storage: str | None, name: str, study=None) -> StudySnapshot:
    """Open study ``name`` (unless ``study`` is it, already opened) and read its trials.

    Blocking database round trips (a slow PostgreSQL server, a locked SQLite file): the window
    calls this in a worker thread. A `LabError` when the study cannot be opened.
    """
    import optuna

    from core.tools.sweep.run import trial_rows

    if study is None:
        study = load_existing_study(storage, name)
    trials = study.get_trials(deepcopy=False)
    done = complete_trials(trials)
    best = None
    if done:
        pick = max if study.direction == optuna.study.StudyDirection.MAXIMIZE else min
        trial = pick(done, key=lambda t: t.value)
        best = (float(trial.value), trial.number, dict(trial.params))
    header, rows = trial_rows(_TrialsAsRead(trials))
    return StudySnapshot(study, trials, state_counts(trials), best, header, rows)


def study_optimizer(study) -> str | None:
    """The optimizer a study of ours tunes (None for a study made elsewhere)."""
    from core.tools.sweep.study import ATTR_KEY

    identity = study.user_attrs.get(ATTR_KEY) or {}
    return identity.get("optimizer")
