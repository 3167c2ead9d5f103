"""Going on with a 2-D race after an edit (core/engine/continuation.py): a branch at step k keeps
every run's steps before k, the unchanged runs continue exactly as the un-branched race, and the
branch continues from its parent's state at k (optimizer state carried, not zeroed) with its new
lr — checked against a plain torch loop."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from core.engine.continuation import carried_history, records_from, resume_step
from core.engine.function_race import FunctionRace
from core.engine.history import RaceHistory
from core.lab.branches import branch_run
from core.lab.format import FunctionProblem, Lab, RunSpec, validate_lab

STEPS, K = 60, 20
START = (1.5, 1.0)


def _f(x, y):
    return 0.5 * x**2 + 5.0 * y**2 + 0.3 * x * y


LAB = validate_lab(Lab(
    name="bowl", steps=STEPS,
    problem=FunctionProblem({"expression": "0.5*x**2 + 5*y**2 + 0.3*x*y"}, START),
    runs=(RunSpec("Momentum", "sgd", {"lr": 0.02, "momentum": 0.9}),
          RunSpec("Adam", "adam", {"lr": 0.05}),
          RunSpec("SGD", "sgd", {"lr": 0.05}))))


def _history(lab: Lab) -> RaceHistory:
    history = RaceHistory(tuple(r.label for r in lab.enabled_runs()))
    history.extend(list(FunctionRace(lab).records()))
    return history


def _path(history: RaceHistory, i: int) -> np.ndarray:
    s = history.runs[i]
    return np.column_stack([s.column("step"), s.column("x"), s.column("y")])


def _plain_loop(make_opt, lr_after: float, fresh_state: bool = False) -> np.ndarray:
    """The reference: one torch optimizer on the formula, K steps, the lr changed in place, on
    (``fresh_state``: a new optimizer at K instead, its momentum / moments zeroed)."""
    point = torch.tensor(START, dtype=torch.float64, requires_grad=True)
    opt = make_opt([point])
    rows = [point.detach().numpy().copy()]
    for t in range(STEPS):
        if t == K and fresh_state:
            opt = make_opt([point])
        if t == K:
            for group in opt.param_groups:
                group["lr"] = lr_after
        opt.zero_grad()
        _f(point[0], point[1]).backward()
        opt.step()
        rows.append(point.detach().numpy().copy())
    return np.array(rows)


def _continue(old_lab: Lab, new_lab: Lab, old: RaceHistory) -> tuple[int, RaceHistory]:
    s, sources = resume_step(old_lab, new_lab, old.last_step)
    history = carried_history(old, [r.label for r in new_lab.enabled_runs()], sources, s)
    history.extend(list(records_from(FunctionRace(new_lab).records(), s)))
    return s, history


@pytest.mark.parametrize("parent, make_opt, new_lr", [
    ("Momentum", lambda p: torch.optim.SGD(p, lr=0.02, momentum=0.9), 0.005),
    ("Adam", lambda p: torch.optim.Adam(p, lr=0.05), 0.2),
])
def test_a_branch_with_a_new_lr_continues_from_step_k_like_a_plain_torch_loop(parent, make_opt,
                                                                              new_lr):
    old = _history(LAB)
    branched = branch_run(LAB, parent, K)
    s, history = _continue(LAB, branched, old)
    assert s == K  # the branch's own lr starts at k: steps 0 … k-1 are kept
    # Its settings edited afterwards (the run editor): still from k.
    label = branched.runs[-1].label
    edited = branched.with_run(3, replace(branched.runs[3], params={
        **branched.runs[3].params, "lr": new_lr}))
    s, history = _continue(branched, edited, history)
    assert s == K and history.last_step == STEPS

    reference = _plain_loop(make_opt, new_lr)
    branch = _path(history, 3)
    np.testing.assert_array_equal(branch[:, 0], np.arange(STEPS + 1))
    np.testing.assert_allclose(branch[:, 1:], reference, rtol=0, atol=1e-6)
    # The same loop with the momentum / moments zeroed at k goes elsewhere: the check can see it.
    fresh = _plain_loop(make_opt, new_lr, fresh_state=True)
    assert np.abs(branch[K + 2:, 1:] - fresh[K + 2:]).max() > 1e-4
    # The runs that did not change: exactly the un-branched race, every step.
    for i in range(3):
        np.testing.assert_array_equal(_path(history, i), _path(old, i))
    assert history.labels[3] == label


def test_what_restarts_at_zero_and_what_goes_on():
    old = _history(LAB)
    last = old.last_step
    # The lr of a plain run: its numbers change from step 0, so the lockstep race starts over.
    lr_edit = LAB.with_run(0, replace(LAB.runs[0], params={"lr": 0.01, "momentum": 0.9}))
    assert resume_step(LAB, lr_edit, last)[0] == 0
    # A colour: nothing to recompute.
    recolored = LAB.with_run(1, replace(LAB.runs[1], color="#123456"))
    assert resume_step(LAB, recolored, last) == (last + 1, [0, 1, 2])
    # The problem or the number of steps: over.
    assert resume_step(LAB, replace(LAB, steps=STEPS + 1), last)[0] == 0
    assert resume_step(LAB, replace(LAB, problem=FunctionProblem("rosenbrock")), last)[0] == 0
    # A branch beyond the recorded steps keeps what there is.
    assert resume_step(LAB, branch_run(LAB, "Adam", K), 10)[0] == 11
    # A branch of a branch whose parent's lr is then changed before the grandchild's fork.
    first = branch_run(LAB, "Adam", 10)
    second = branch_run(first, first.runs[-1].label, 30)
    h1 = _continue(LAB, first, old)[1]
    h2 = _continue(first, second, h1)[1]
    edited = second.with_run(3, replace(second.runs[3], params={"lr": 0.3}))
    s, h3 = _continue(second, edited, h2)
    assert s == 10
    reference = _history(edited)
    for i in range(5):
        np.testing.assert_array_equal(_path(h3, i), _path(reference, i))


def test_an_lr_change_restarts_only_that_runs_trajectory():
    from core.engine.continuation import kept_steps, restarted_history

    old = _history(LAB)
    edited = LAB.with_run(1, replace(LAB.runs[1], params={"lr": 0.01}))
    steps, sources = kept_steps(LAB, edited, old.last_step)
    assert [np.isinf(n) for n in steps] == [True, False, True]
    history = restarted_history(old, [r.label for r in edited.runs], steps, sources)
    assert len(history.runs[1]) == 0 and history.last_step == -1
    np.testing.assert_array_equal(_path(history, 0), _path(old, 0))  # before the race replays
    history.extend(list(FunctionRace(edited).records()))  # the lockstep race, from step 0
    fresh = _history(edited)
    for i in range(3):  # no run doubled, the changed one raced anew, the others as before
        np.testing.assert_array_equal(_path(history, i), _path(fresh, i))
    np.testing.assert_array_equal(_path(history, 2), _path(old, 2))
    assert not np.allclose(_path(history, 1), _path(old, 1))
