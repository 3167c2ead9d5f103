"""Claims about reinforcement-learning runs (rl labs): solving CartPole, gradients at target updates.

rl_solved: at least ``at_least_runs`` of the named runs reach a mean return ≥ ``goal`` (195,
CartPole's classic "solved") over 100 consecutive episodes within ``within`` episodes, the number
summary.json's ``solved_at`` gives (core/engine/rl_runner.py). grad_jump_at_targets: the mean
gradient norm of the ``window`` updates after each target-network update is at least ``factor``
times that of the ``window`` updates up to it (the median over the target updates): the loss a
DQN minimises changes at each copy, and its gradient jumps with it. Both read `RunTrace.returns`,
``update_grad_norm`` and ``target_update`` (core/teaching/lessons/trace.py).
"""

from __future__ import annotations

import numpy as np

from core.engine.rl_runner import solved_at
from core.problems.rl.cartpole import SOLVED_RETURN
from core.teaching.lessons.claim_kind import RUN, ClaimKind, Traces, Verdict, expand_runs
from core.teaching.lessons.wording import num


def _check_solved(p, traces: Traces) -> Verdict:
    goal = p.get("goal", SOLVED_RETURN)
    labels = expand_runs(p["runs"], traces)
    found = {label: solved_at(traces[label].returns, goal) for label in labels}
    hits = sum(1 for label, at in found.items() if at is not None and at <= p["within"])
    parts = [f"{label}: {'never' if at is None else f'episode {at}'}" for label, at in found.items()]
    return hits >= p["at_least_runs"], f"{hits} of {len(labels)} ({'; '.join(parts)})", {
        "solved_at": found, "hits": hits}


def _check_grad_jump(p, traces: Traces) -> Verdict:
    trace = traces[p["run"]]
    window = int(p.get("window", 10))
    grad = np.asarray(trace.update_grad_norm)
    ratios = [grad[k + 1:k + 1 + window].mean() / grad[k + 1 - window:k + 1].mean()
              for k in np.flatnonzero(trace.target_update)
              if k + 1 >= window and k + 1 + window <= len(grad)]
    if not ratios:
        return False, f"{p['run']}: no target update with {window} updates on either side", {
            "ratio": None}
    ratio = float(np.median(ratios))
    return ratio >= p["factor"], (f"{p['run']}: ×{num(ratio)} (median over {len(ratios)} "
                                  "target updates)"), {"ratio": ratio}


RL_KINDS: tuple[ClaimKind, ...] = (
    ClaimKind(
        "rl_solved", {"runs": "runs", "within": "step", "at_least_runs": "trials"},
        {"goal": "positive"},
        lambda p: (f"at least {p['at_least_runs']} of {', '.join(p['runs'])} reach a mean "
                   f"return of {num(p.get('goal', SOLVED_RETURN))} over 100 episodes within "
                   f"{p['within']} episodes"),
        _check_solved,
        help="rl labs: how many of the runs reach the goal's mean return over 100 consecutive "
        "episodes by episode `within`",
    ),
    ClaimKind(
        "grad_jump_at_targets", {**RUN, "factor": "factor"}, {"window": "trials"},
        lambda p: (f"{p['run']}'s gradient norm is at least {num(p['factor'])}× larger in the "
                   f"{int(p.get('window', 10))} updates after a target update than before"),
        _check_grad_jump,
        help="rl labs with the dqn agent: the median, over target-network updates, of the "
        "mean gradient norm after it over the mean before it",
    ),
)
