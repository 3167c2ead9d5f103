"""Each scorecard trial's curve: the workload's target metric at each evaluation.

`thin_curve` turns a run's (step, value) pairs (core/tools/scorecard/workloads.py's
`Outcome.curve`) into the two JSON-safe lists core/tools/scorecard/run.py stores with the trial
(Optuna user_attrs ``curve_steps`` / ``curve_values``): at most `MAX_POINTS` points, the first,
the last, and the first point at or below the target with the one before it kept exactly, so
the first stored step at or below the target is the trial's time to target. A value that was
not finite is None. scorecard.json never reads these.

`read_cell_curves` reads them back for one entry × workload of a scorecard (every study), for
the window's trials plot (app/tools/scorecard_views.py); a trial of an older storage without a
curve comes back with empty lists. It opens the storage, so the window calls it off the GUI
thread. No Qt here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

CURVE_STEPS, CURVE_VALUES = "curve_steps", "curve_values"
MAX_POINTS = 200


def _json(value) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def first_crossing(values: list, target: float) -> int | None:
    """The index of the first value at or below ``target`` (None values skipped), or None."""
    return next((i for i, v in enumerate(values) if v is not None and v <= target), None)


def thin_curve(curve: list, target: float, limit: int = MAX_POINTS) -> tuple[list, list]:
    """``curve``'s (step, value) pairs as (steps, values), at most ``limit`` points spread
    evenly over the indices, keeping the first, the last and the first crossing of ``target``
    with its predecessor (module docstring)."""
    if limit < 4:
        raise ValueError(f"limit: must be at least 4, got {limit!r}")
    steps = [int(step) for step, _ in curve]
    values = [_json(value) for _, value in curve]
    n = len(steps)
    if n <= limit:
        return steps, values
    keep = {0, n - 1}
    cross = first_crossing(values, target)
    if cross is not None:
        keep |= {cross, max(0, cross - 1)}
    spread = limit - 4  # room for the four kept points even where none is on the spread
    keep |= {round(j * (n - 1) / (spread - 1)) for j in range(spread)}
    chosen = sorted(keep)
    return [steps[i] for i in chosen], [values[i] for i in chosen]


@dataclass(frozen=True)
class TrialCurve:
    """One finished trial of a cell: its study, number, lr, time to target (None: a miss),
    whether it is its study's fastest trial, and its stored curve (empty if none stored)."""

    study: int
    trial: int
    lr: float
    steps_to_target: int | None
    best: bool
    steps: tuple
    values: tuple


@dataclass(frozen=True)
class CellCurves:
    """The trials of ``entry`` on ``workload`` with the target and the budget to draw."""

    entry: str
    workload: str
    target: float
    budget: int
    metric: str  # what the values are, for the axis label
    trials: tuple[TrialCurve, ...]


def read_cell_curves(spec, entry_name: str, workload_name: str, storage=None) -> CellCurves:
    """The trials of every study of ``entry_name`` on ``workload_name`` (a base workload or a
    held-out variant "base~kind") of the scorecard ``spec``, read from its storage (``storage``:
    an opened one, else ``spec.storage`` is opened). A study not in the storage adds nothing."""
    import optuna

    from core.tools.scorecard.run import study_budget, study_name
    from core.tools.scorecard.workloads import heldout_variants
    from core.tools.sweep.storage import open_storage

    e = next((x for x in spec.entries if x.name == entry_name), None)
    if e is None:
        raise ValueError(f"entry: {entry_name!r} is not one of "
                         f"{', '.join(x.name for x in spec.entries)}")
    workloads = {w.name: w for w in spec.workloads}
    for w in spec.workloads:
        workloads.update({v.name: v for v in heldout_variants(w)})
    w = workloads.get(workload_name)
    if w is None:
        raise ValueError(f"workload: {workload_name!r} is not one of {', '.join(workloads)}")
    if storage is None:
        storage = open_storage(spec.storage)
    count = 1 if spec.ruleset == "self" else spec.trials
    trials = []
    for s in range(spec.studies):
        try:
            study = optuna.load_study(study_name=study_name(spec, e, w, s), storage=storage)
        except KeyError:
            continue  # not begun
        done = sorted((t for t in study.get_trials(deepcopy=False)
                       if t.state == optuna.trial.TrialState.COMPLETE),
                      key=lambda t: t.number)[:count]
        # The study's fastest trial, as run.py's `_Study.best` picks it (the first on a tie).
        best_number, best_time = None, math.inf
        for t in done:
            steps = t.user_attrs.get("steps")
            if steps is not None and steps < best_time:
                best_number, best_time = t.number, steps
        for t in done:
            trials.append(TrialCurve(
                s, t.number, float(t.params["lr"]), t.user_attrs.get("steps"),
                t.number == best_number, tuple(t.user_attrs.get(CURVE_STEPS) or ()),
                tuple(t.user_attrs.get(CURVE_VALUES) or ())))
    metric = "validation loss" if w.lab.is_network else "loss f(x, y)"
    return CellCurves(entry_name, workload_name, w.target, study_budget(spec, w), metric,
                      tuple(trials))
