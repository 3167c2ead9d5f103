"""Branches (core.lab.branches): replay the parent to step t, then go on — checked against plain torch."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from core.engine.function_race import race
from core.errors import LabError
from core.lab.branches import branch_run, rename_run
from core.lab.format import lab_from_dict, lab_to_dict, load_lab, save_lab

START = [-1.5, 2.0]
STEPS = 120


def make_lab(runs, steps=STEPS, function="rosenbrock"):
    return lab_from_dict({
        "name": "branches", "steps": steps,
        "problem": {"kind": "function", "function": function, "start": START},
        "runs": runs,
    })


def columns(records):
    """points (T, R, 2), losses (T, R), lrs (T, R), grad norms (T, R)."""
    return (np.stack([r.point for r in records]), np.stack([r.loss for r in records]),
            np.stack([r.lr for r in records]), np.stack([r.grad_norm for r in records]))


def rosenbrock(p):
    return (1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2


def torch_path(opt, p, steps):
    """Plain torch: ``steps`` updates of ``opt`` on ``p``; the points after each."""
    points = []
    for _ in range(steps):
        opt.zero_grad()
        rosenbrock(p).backward()
        opt.step()
        points.append(p.detach().numpy().copy())
    return np.array(points)


ADAM = {"label": "Adam", "optimizer": "adam", "params": {"lr": 0.02}}
MOMENTUM = {"label": "Momentum", "optimizer": "sgd", "params": {"lr": 0.0005, "momentum": 0.9}}


def test_a_branch_with_another_lr_replays_the_parent_to_t_then_follows_plain_torch():
    t = 40
    lab = make_lab([ADAM, {"label": "slow", "optimizer": "adam", "params": {"lr": 0.005},
                           "branch": {"from": "Adam", "step": t}}])
    points, losses, lrs, grads = columns(list(race(lab)))
    # Steps 0..t are the parent's, to the bit (the lr at t is already the branch's own).
    assert np.array_equal(points[: t + 1, 1], points[: t + 1, 0])
    assert np.array_equal(losses[: t + 1, 1], losses[: t + 1, 0])
    assert np.array_equal(grads[: t + 1, 1], grads[: t + 1, 0])
    assert np.array_equal(lrs[:t, 1], lrs[:t, 0])
    assert lrs[t, 1] == 0.005 and lrs[t, 0] == 0.02
    # After t the paths part.
    assert np.all(np.abs(points[t + 1:, 1] - points[t + 1:, 0]).max(axis=1) > 0)

    # Reference: one Adam for t steps, then a new Adam with lr 0.005 and the old one's state.
    p = torch.tensor(START, dtype=torch.float64, requires_grad=True)
    first = torch.optim.Adam([p], lr=0.02)
    before = torch_path(first, p, t)
    second = torch.optim.Adam([p], lr=0.005)
    second.load_state_dict(copy.deepcopy(first.state_dict()))
    second.param_groups[0]["lr"] = 0.005
    after = torch_path(second, p, STEPS - t)
    np.testing.assert_allclose(points[1 : t + 1, 1], before, atol=1e-9)
    np.testing.assert_allclose(points[t + 1:, 1], after, atol=1e-7)


@pytest.mark.parametrize("parent", [
    {**ADAM, "schedule": {"name": "cosine"}},
    {**MOMENTUM, "schedule": {"name": "plateau", "params": {"patience": 3}}},
    {"label": "L-BFGS", "optimizer": "lbfgs", "params": {"lr": 0.5, "max_iter": 5}},
], ids=["adam+cosine", "momentum+plateau", "lbfgs"])
def test_a_branch_that_changes_nothing_equals_its_parent_at_every_step(parent):
    # Bit-exact after the fork too: the optimizer state (moments, momentum buffer, L-BFGS
    # history) and the schedule's position were carried over, not restarted.
    twin = {**copy.deepcopy(parent), "label": "twin", "branch": {"from": parent["label"], "step": 30}}
    lab = make_lab([parent, twin], steps=80)
    points, losses, lrs, grads = columns(list(race(lab)))
    for series in (points, losses, lrs, grads):
        assert np.array_equal(series[:, 1], series[:, 0])


def test_fresh_state_would_differ_so_the_twin_proves_the_state_was_carried():
    # The same spec started at the parent's point at t with fresh state goes elsewhere.
    t = 30
    lab = make_lab([MOMENTUM], steps=t)
    at_t = list(race(lab))[-1].point[0]
    restarted = make_lab([{**MOMENTUM, "label": "fresh"}], steps=50)
    restarted = lab_from_dict({**lab_to_dict(restarted), "problem": {
        "kind": "function", "function": "rosenbrock", "start": at_t.tolist()}})
    fresh = np.stack([r.point[0] for r in race(restarted)])
    twin = make_lab([MOMENTUM, {**MOMENTUM, "label": "twin",
                                "branch": {"from": "Momentum", "step": t}}], steps=t + 50)
    branched = np.stack([r.point[1] for r in race(twin)])[t:]
    assert np.abs(fresh[1:] - branched[1:]).max() > 1e-4


def test_a_branch_with_another_optimizer_starts_with_fresh_state():
    t = 50
    lab = make_lab([MOMENTUM, {"label": "RMSprop", "optimizer": "rmsprop", "params": {"lr": 0.01},
                               "branch": {"from": "Momentum", "step": t}}])
    points, *_ = columns(list(race(lab)))
    assert np.array_equal(points[: t + 1, 1], points[: t + 1, 0])
    # Reference: a brand-new RMSprop from the parent's point at t.
    p = torch.tensor(points[t, 0], dtype=torch.float64, requires_grad=True)
    expected = torch_path(torch.optim.RMSprop([p], lr=0.01), p, STEPS - t)
    np.testing.assert_allclose(points[t + 1:, 1], expected, atol=1e-7)


def test_branches_of_branches_replay_their_ancestors():
    lab = make_lab([
        ADAM,
        {"label": "b", "optimizer": "adam", "params": {"lr": 0.005}, "branch": {"from": "Adam", "step": 60}},
        # Forks before its parent does: it replays the grandparent up to 20.
        {"label": "early", "optimizer": "sgd", "params": {"lr": 0.0005},
         "branch": {"from": "b", "step": 20}},
        # Forks at the same step as its parent: it copies the parent's freshly forked state.
        {"label": "same", "optimizer": "adam", "params": {"lr": 0.005}, "branch": {"from": "b", "step": 60}},
    ])
    points, _, lrs, _ = columns(list(race(lab)))
    assert np.array_equal(points[:21, 2], points[:21, 0])
    assert not np.array_equal(points[21:, 2], points[21:, 0])
    assert np.array_equal(points[:, 3], points[:, 1])
    assert np.array_equal(lrs[:, 3], lrs[:, 1])


@pytest.mark.parametrize("branch, field, words", [
    ({"from": "Nobody", "step": 5}, "runs[1].branch.from", "no run labelled 'Nobody'"),
    ({"from": "b", "step": 5}, "runs[1].branch.from", "cannot branch from itself"),
    ({"from": "Adam", "step": STEPS + 1}, "runs[1].branch.step", f"[0, {STEPS}]"),
    ({"from": "Adam", "step": -1}, "runs[1].branch.step", f"[0, {STEPS}]"),
    ({"from": "Adam", "step": "ten"}, "runs[1].branch.step", "whole number"),
    ({"from": "Adam"}, "runs[1].branch.step", "missing"),
    ({"from": "Adam", "step": 3, "at": 4}, "runs[1].branch.at", "unknown key"),
    ("Adam", "runs[1].branch", "an object"),
])
def test_bad_branch_specs_are_refused_naming_the_field(branch, field, words):
    with pytest.raises(LabError) as info:
        make_lab([ADAM, {"label": "b", "optimizer": "adam", "branch": branch}])
    assert info.value.field == field
    assert words in str(info.value)


def test_cycles_disabled_parents_and_network_labs_are_refused():
    with pytest.raises(LabError, match=r"runs\[0\]\.branch\.from: branches form a cycle: a → b → a"):
        make_lab([{"label": "a", "optimizer": "sgd", "branch": {"from": "b", "step": 1}},
                  {"label": "b", "optimizer": "sgd", "branch": {"from": "a", "step": 1}}])
    with pytest.raises(LabError, match="'Adam' is disabled"):
        make_lab([{**ADAM, "enabled": False}, {"label": "b", "optimizer": "sgd",
                                               "branch": {"from": "Adam", "step": 1}}])
    with pytest.raises(LabError, match=r"runs\[1\]\.branch: only 2-D function races"):
        lab_from_dict({"steps": 10, "problem": {"kind": "network", "dataset": {"name": "moons"},
                                                "model": {"layers": [{"linear": 2}]}},
                       "runs": [ADAM, {"label": "b", "optimizer": "sgd",
                                       "branch": {"from": "Adam", "step": 1}}]})


def test_a_saved_lab_with_a_branch_reopens_identically(tmp_path):
    lab = branch_run(make_lab([ADAM, MOMENTUM]), "Adam", 40, {"params": {"lr": 0.01}})
    assert lab.runs[-1].label == "Adam @40 lr=0.01"
    path = tmp_path / "branch.lab.json"
    save_lab(lab, path)
    written = json.loads(path.read_text())
    assert written["runs"][2]["branch"] == {"from": "Adam", "step": 40}
    assert "branch" not in written["runs"][0]  # files without branches stay as they were
    again = load_lab(path)
    assert again == lab
    first, second = columns(list(race(lab))), columns(list(race(again)))
    for a, b in zip(first, second):
        assert np.array_equal(a, b)


def test_renaming_a_parent_renames_its_branches_and_helpers_validate():
    lab = branch_run(make_lab([ADAM]), "Adam", 10)
    assert lab.runs[1].label == "Adam @10"
    renamed = rename_run(lab, "Adam", "Adam (fast)")
    assert renamed.runs[1].branch.parent == "Adam (fast)"
    lab_from_dict(lab_to_dict(renamed))  # still a valid lab
    with pytest.raises(LabError, match=r"branch\.step"):
        branch_run(lab, "Adam", STEPS + 5)
    with pytest.raises(LabError, match="no run labelled 'Nope'"):
        branch_run(lab, "Nope", 3)
    with pytest.raises(LabError, match=r"params\.lr"):
        branch_run(lab, "Adam", 3, {"params": {"lr": -1.0}})


def test_a_parent_that_diverges_before_the_branch_step_takes_its_branch_with_it():
    from core.engine.function_race import FunctionRace

    lab = make_lab([{"label": "hot", "optimizer": "sgd", "params": {"lr": 0.01}},
                    {"label": "b", "optimizer": "sgd", "params": {"lr": 0.0001},
                     "branch": {"from": "hot", "step": 50}}])
    engine = FunctionRace(lab)
    records = list(engine.records())
    parent, branch = engine.diverged
    assert parent is not None and branch is not None
    assert (branch.step, branch.reason) == (parent.step, parent.reason)
    assert not records[-1].alive.any()
