"""Branches: a run that replays another run ("its parent") up to step t, then goes its own way.

A lab file's run may carry ``"branch": {"from": "<parent label>", "step": t}`` (docs/lab-format.md,
"Branches"). The rule, which makes a branch reproducible from the file alone:

* steps 0 … t of the branch are the parent's, bit for bit (point, loss, gradient norm; the lr
  too, except at step t, whose lr is the one the branch's own update t → t+1 uses);
* at step t the branch gets its own optimizer over the parent's point. When it is the parent's
  optimizer type, the parent's optimizer state (momentum buffers, Adam's moments and step count,
  L-BFGS's history…) is copied, then the branch's own hyperparameters replace the parent's; a
  different optimizer type starts from fresh state;
* the branch's schedule is positioned at step t: built with the branch's own parameters and
  stepped t times (``plateau`` is fed the losses of steps 0 … t−1), so a cosine over the race
  continues from its t-th step instead of restarting. Parameters derived from the race length
  still derive from ``lab.steps``.

So a branch that changes nothing equals its parent at every step. A branch as the file writes
it is read, written and checked with the rest of the file (`branch_from_dict`, `branch_to_dict`,
`check_branches` in core/lab/format.py). This module holds the edits of branch specs
(`branch_run`, `rename_run`) and `Branching`, the part of a `core.engine.function_race.FunctionRace` that replays and forks branch runs. The
engine stays one batched race: a branch run's row simply mirrors its source's row until it forks.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from core.errors import LabError
from core.lab.format import (
    MAX_LABEL_CHARS,
    MAX_RUNS,
    BranchSpec,
    Lab,
    RunSpec,
    check_branches,
)


def branch_label(parent: str, step: int, taken: set[str], note: str = "") -> str:
    """``"Adam @40"`` (plus a note such as ``"lr=0.01"``), unique among ``taken``, ≤ 60 chars."""
    suffix = f" @{step}" + (f" {note}" if note else "")
    base = parent[: max(1, MAX_LABEL_CHARS - len(suffix) - 4)] + suffix
    label, n = base, 2
    while label in taken:
        label = f"{base} ({n})"
        n += 1
    return label


def _changed_lr(parent: RunSpec, changes: Mapping[str, Any]) -> str:
    lr = dict(changes.get("params", {})).get("lr")
    if lr is None or lr == parent.params.get("lr"):
        return ""
    return f"lr={lr:g}"


def branch_run(
    lab: Lab, parent_label: str, step: int, changes: Mapping[str, Any] | None = None
) -> Lab:
    """The lab with a new run branching from ``parent_label`` at ``step``, appended last.

    ``changes`` are RunSpec fields for the branch (``optimizer``, ``params``, ``schedule``,
    ``label``, ``color``…); everything else is the parent's. The result is validated exactly
    as a file would be (a LabError names the field otherwise).
    """
    from core.lab.format import validate_lab

    changes = dict(changes or {})
    parent = lab.run_labelled(parent_label, field="branch.from")
    if len(lab.runs) >= MAX_RUNS:
        raise LabError("runs", f"at most {MAX_RUNS} runs; remove one before branching")
    if not 0 <= step <= lab.steps:
        raise LabError("branch.step", f"must be in [0, {lab.steps}] (the lab's steps), got {step}")
    taken = {r.label for r in lab.runs}
    label = changes.pop("label", None) or branch_label(
        parent.label, step, taken, _changed_lr(parent, changes)
    )
    # Without an explicit colour the branch takes its own place in the colour cycle.
    fields = {"color": None, **changes}
    if "params" in fields:
        fields["params"] = dict(fields["params"])
    run = replace(parent, label=label, enabled=True, branch=BranchSpec(parent.label, step), **fields)
    return validate_lab(replace(lab, runs=lab.runs + (run,)))


def rename_run(lab: Lab, old: str, new: str) -> Lab:
    """Rename a run and every branch that names it as its parent."""
    runs = []
    for run in lab.runs:
        if run.label == old:
            run = replace(run, label=new)
        if run.branch is not None and run.branch.parent == old:
            run = replace(run, branch=BranchSpec(new, run.branch.step))
        runs.append(run)
    return replace(lab, runs=tuple(runs))


# ---------------------------------------------------------------------------------------------
# The engine side


class Branching:
    """Replays and forks the branch runs of one `FunctionRace` (see the module docstring).

    The race calls `sync` right after each step's batched evaluation, `mirror_lr` on each
    record, and skips `is_following` runs when it steps the optimizers.
    """

    @classmethod
    def for_race(cls, race) -> Branching | None:
        return cls(race) if any(run.branch is not None for run in race.runs) else None

    def __init__(self, race):
        check_branches(race.lab)
        self.race = race
        index = {label: i for i, label in enumerate(race.labels)}
        self.parent: dict[int, int] = {}
        self.fork_step: dict[int, int] = {}
        for i, run in enumerate(race.runs):
            if run.branch is not None:
                self.parent[i] = index[run.branch.parent]
                self.fork_step[i] = run.branch.step

        def depth(i: int) -> int:
            return 1 + depth(self.parent[i]) if i in self.parent else 0

        # Forks at the same step happen ancestors first: a grandchild copies a forked parent.
        self.order = sorted(self.parent, key=lambda i: (self.fork_step[i], depth(i)))
        self.last_fork = max(self.fork_step.values())
        self._needs_losses = any(
            race.runs[i].schedule is not None and race.runs[i].schedule.name == "plateau"
            for i in self.parent
        )
        self._losses: list[np.ndarray] = []

    def source(self, i: int, step: int) -> int:
        """The run whose numbers run ``i`` has at ``step``: itself, or the ancestor it replays."""
        while i in self.parent and self.fork_step[i] > step:
            i = self.parent[i]
        return i

    def is_following(self, i: int) -> bool:
        """True while run ``i`` still replays its parent (before its fork step)."""
        return i in self.parent and self.fork_step[i] > self.race.step

    def sync(self, loss: np.ndarray, grad_norm: np.ndarray) -> None:
        """At the current step: give every replaying or forking run its source's numbers (in
        place), then fork the runs whose branch step this is."""
        race, step = self.race, self.race.step
        if step > self.last_fork:
            return
        with torch.no_grad():
            for i in self.order:
                if self.fork_step[i] < step:
                    continue
                src = self.source(self.parent[i], step)
                race.points[i] = race.points[src]
                race.grads[i] = race.grads[src]
                loss[i], grad_norm[i] = loss[src], grad_norm[src]
        if self._needs_losses:
            self._losses.append(loss.copy())
        for i in self.order:
            if self.fork_step[i] == step:
                self._fork(i, self.source(self.parent[i], step))

    def mirror_lr(self, lr: np.ndarray) -> None:
        """A replaying run's record shows the lr its source uses."""
        step = self.race.step
        for i in self.order:
            if self.fork_step[i] > step:
                lr[i] = lr[self.source(self.parent[i], step)]

    def _fork(self, i: int, src: int) -> None:
        """Give run ``i`` its own optimizer (with ``src``'s state when it is the same type) and
        its own schedule, positioned at the current step."""
        from core.engine.faults import guarded_build, stand_in_optimizer
        from core.optim.catalog import build_optimizer, get_optimizer_info
        from core.optim.schedules import Schedule

        race, run, step = self.race, self.race.runs[i], self.race.step
        # The tensor the run's optimizer steps: the race's view of its row (whose .grad is the
        # shared gradient row), or L-BFGS's private copy of the point.
        tensor = race.optimizers[i].param_groups[0]["params"][0]
        if i in race._closures:
            with torch.no_grad():
                tensor.copy_(race.points[i])
        # A class that raises while being built fails the branch at its first own update
        # (core/engine/faults.py); the race goes on.
        opt, fault = guarded_build(lambda: build_optimizer(run.optimizer, run.params, [tensor]),
                                   lambda: stand_in_optimizer([tensor], run.params))
        race.set_unbuilt(i, fault)
        if fault is None and race.runs[src].optimizer == run.optimizer:
            mine = [dict(group) for group in opt.param_groups]
            # A deep copy: the parent goes on updating its own buffers in place.
            opt.load_state_dict(copy.deepcopy(race.optimizers[src].state_dict()))
            # load_state_dict also brings the parent's hyperparameters (and its scheduler's
            # initial_lr): put the branch's own back. What else an optimizer keeps in its group
            # is its running bookkeeping (Schedule-Free's step count and weight sum): that
            # goes on from the parent's, like the state.
            names = {hp.name for hp in get_optimizer_info(run.optimizer).hyperparams}
            for group, own in zip(opt.param_groups, mine):
                carried = {key: value for key, value in group.items()
                           if key in own and key not in names and key != "params"}
                group.clear()
                group.update(own)
                group.update(carried)
            streams = getattr(race, "_streams", {})
            if i in streams and src in streams:  # a Hessian estimate's random stream too
                streams[i].state = streams[src].state.clone()
        sched = run.schedule
        schedule = (
            Schedule(opt, sched.name, sched.params, race.lab.steps)
            if sched is not None
            else Schedule(opt, "constant", {}, race.lab.steps)
        )
        with warnings.catch_warnings():
            # torch warns when a scheduler steps before its optimizer ever has: intended here.
            warnings.simplefilter("ignore")
            for k in range(step):
                schedule.step(float(self._losses[k][i]) if self._needs_losses else 0.0)
        race.replace_optimizer(i, opt, schedule)


def describe_branch(run: RunSpec) -> str:
    """One line for tooltips: ``"branches from 'Adam' at step 40"``."""
    if run.branch is None:
        return ""
    return f"branches from {run.branch.parent!r} at step {run.branch.step}"


__all__ = [
    "Branching", "branch_label", "branch_run", "describe_branch", "rename_run",
]
