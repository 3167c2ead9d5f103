"""A scorecard cell's trials read back with their curves, for the window's trials plot.

`read_cell_curves` reads every study of one entry × workload of a scorecard from its storage:
each finished trial's lr, time to target, whether it is its study's fastest, and the curve
core/tools/scorecard/run.py stored with it (core/tools/scorecard/curves.py thins it); a trial of
an older storage without a curve comes back with empty lists. It opens the storage, so the
window (app/tools/scorecard_views.py) calls it off the GUI thread. No Qt here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from core.tools.scorecard.curves import CURVE_STEPS, CURVE_VALUES
from core.tools.scorecard.run import study_budget, study_name


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
