"""Go on with a 2-D race after an edit of its lab, instead of starting it over: which steps of the
recorded history the edited lab's race would reproduce, and that history carried over.

A `FunctionRace` (core/engine/function_race.py) is deterministic: the same lab gives the same
numbers, bit for bit. So after an edit, run ``i`` of the new lab has the same numbers as before
up to a step that depends on what changed (`resume_step`):

* a run whose spec is unchanged (its colour aside) and keeps its place in the race: all of them;
* a branch (core/lab/branches.py) at step k — a new one, or one whose optimizer, hyperparameters
  or schedule were edited: steps 0 … k−1 are its parent's (the fork at k gives it its own lr from
  step k on, so step k itself is recomputed);
* any other new or edited run: none (the race starts over at step 0);
* a branch also loses what its parent loses before the fork.

The race goes on from the smallest such step ``s``: the window keeps every run's rows before
``s`` (`carried_history`) and the new race is replayed silently up to ``s`` (`records_from`; the
engine's state at ``s`` — points, optimizer state such as momentum or Adam's moments, schedules —
is only held by a race that has run there), then yields from ``s`` on. The runs that did not change
continue identically; a branch continues from its parent's state at k with its own settings.
An edit of the problem, the seed or the number of steps starts the race over.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Iterator

import numpy as np

from core.engine.function_race import StepRecord
from core.engine.history import DEFAULT_CAPACITY, FIELDS, RaceHistory
from core.lab.format import Lab, RunSpec


def _numbers(run: RunSpec) -> RunSpec:
    """What a run's numbers depend on (its colour does not)."""
    return dataclasses.replace(run, color=None)


def changed_runs(old: Lab | None, new: Lab) -> set[int]:
    """The race indices of ``new``'s enabled runs that are new or whose numbers' settings
    differ from ``old``'s run of the same label (every run when there is no ``old``)."""
    before = {run.label: _numbers(run) for run in (old.enabled_runs() if old else ())}
    return {j for j, run in enumerate(new.enabled_runs()) if before.get(run.label) != _numbers(run)}


def kept_steps(old: Lab, new: Lab, last_step: int) -> tuple[list[float], list[int | None]]:
    """Per enabled run of ``new``: how many leading steps of the recorded race of ``old`` it
    reproduces (``math.inf``: all of them), and the index in ``old``'s race of the run whose rows
    those are (None where none)."""
    new_runs = new.enabled_runs()
    if (old.problem != new.problem or old.seed != new.seed or old.steps != new.steps
            or last_step < 0 or new.problem.kind != "function"):
        return [0.0] * len(new_runs), [None] * len(new_runs)
    old_index = {run.label: i for i, run in enumerate(old.enabled_runs())}
    old_runs = old.enabled_runs()
    new_index = {run.label: i for i, run in enumerate(new_runs)}
    prefix: dict[int, float] = {}
    sources: list[int | None] = [None] * len(new_runs)

    def kept(j: int) -> float:
        """How many leading steps run j of the new race shares with the recorded history."""
        if j in prefix:
            return prefix[j]
        run = new_runs[j]
        before = old_index.get(run.label)
        own: float = 0.0
        if before is not None and before == j and _numbers(old_runs[before]) == _numbers(run):
            own, sources[j] = math.inf, before
        elif run.branch is not None and run.branch.parent in new_index:
            # Replays its parent before the fork: the parent's rows (its own, if recorded).
            source = before if before is not None and old_runs[before].branch == run.branch \
                else old_index.get(run.branch.parent)
            if source is not None:
                own, sources[j] = float(run.branch.step), source
        if run.branch is not None and run.branch.parent in new_index and own > 0:
            parent_kept = kept(new_index[run.branch.parent])
            if parent_kept <= run.branch.step:  # the parent's numbers change before the fork
                own = min(own, parent_kept)
        prefix[j] = own
        return own

    steps = [kept(j) for j in range(len(new_runs))]
    return steps, [source if steps[j] > 0 else None for j, source in enumerate(sources)]


def resume_step(old: Lab, new: Lab, last_step: int) -> tuple[int, list[int | None]]:
    """``(s, sources)``: the first step the new lab's race must compute (0: all of it), and for
    each enabled run of ``new`` the index in ``old``'s race whose rows before ``s`` it keeps.

    ``last_step`` is the newest step recorded for ``old``; ``s`` is at most ``last_step + 1``."""
    steps, sources = kept_steps(old, new, last_step)
    s = int(min(steps + [last_step + 1]))
    return s, (sources if s > 0 else [None] * len(steps))


def carried_history(old: RaceHistory, labels: Iterable[str], sources: list[int | None],
                    s: int) -> RaceHistory:
    """A history of the new race's runs (``labels``) holding, for each, its source's rows of
    steps < ``s`` (with the divergences and optimizer internals recorded before ``s``)."""
    labels = tuple(labels)
    if None in sources:
        raise ValueError(f"run {labels[sources.index(None)]!r} has nothing to carry over")
    history = _carry(old, labels, sources, [s] * len(labels))
    for step, per_run in old._internals.items():
        if step < s:
            history._internals[step] = tuple(per_run[source] for source in sources)
    history.last_step = s - 1
    return history


def restarted_history(old: RaceHistory, labels: Iterable[str], steps: list[float],
                      sources: list[int | None]) -> RaceHistory | None:
    """One run's lr (or any setting) changed: the lockstep race starts over at step 0, but the
    runs it reproduces whole (``steps[j]`` infinite) keep their recorded series, and the history
    ignores their recomputed rows (`RaceHistory.keep_from`) — only the changed runs' trajectories
    restart. None when no run is kept whole."""
    labels = tuple(labels)
    whole = [math.isinf(n) for n in steps]
    if not any(whole):
        return None
    history = _carry(old, labels, [src if keep else None for src, keep in zip(sources, whole)],
                     [math.inf if keep else 0 for keep in whole])
    # After each kept run's last recorded row (beyond the race's own step when it was itself
    # kept whole by an earlier restart).
    history.keep_from = np.array([
        series.last("step") + 1 if keep and len(series) else 0
        for series, keep in zip(history.runs, whole)])
    history.last_step = -1  # the race itself is at its start
    return history


def _carry(old: RaceHistory, labels: tuple[str, ...], sources: list[int | None],
           limits: list[float]) -> RaceHistory:
    """Each run's source's rows of steps below its limit, and their divergences."""
    capacity = old.runs[0].capacity if old.runs else DEFAULT_CAPACITY
    history = RaceHistory(labels, capacity=capacity, internals_steps=old.internals_steps)
    for j, (source, s) in enumerate(zip(sources, limits)):
        if source is None:
            continue
        series = old.runs[source]
        steps = series.column("step")
        keep = steps < s
        if keep.any():
            history.runs[j].extend(np.stack([series.column(f)[keep] for f in FIELDS]))
        event = old.divergences.get(source)
        if event is not None and event.step < s:
            history.divergences[j] = dataclasses.replace(event, run=j, label=labels[j])
    return history


def last_record(history: RaceHistory) -> StepRecord:
    """The newest recorded step as a record (each run's last kept row), for the window's redraw."""
    rows = [(series.last("x"), series.last("y"), series.last("loss"), series.last("lr"),
             series.last("grad_norm")) if len(series) else (math.nan,) * 5
            for series in history.runs]
    table = np.array(rows, dtype=np.float64).reshape(len(rows), 5)
    return StepRecord(
        step=history.last_step, point=table[:, :2].copy(), loss=table[:, 2].copy(),
        lr=table[:, 3].copy(), grad_norm=table[:, 4].copy(),
        alive=np.array([i not in history.divergences for i in range(len(rows))], dtype=bool),
    )


def records_from(records: Iterable[StepRecord], s: int) -> Iterator[StepRecord]:
    """The race's records from step ``s`` on; the steps before it are computed (the engine's
    state at ``s`` needs them) but not yielded: the window already has them."""
    for record in records:
        if record.step >= s:
            yield record
