"""Claims about the per-step series: the lr in force at each step, and the mini-batch noise.

lr_at, lr_at_best_loss, lr_at_divergence, noisier: each a check, a sentence and its
`ClaimKind` entry in `STEP_KINDS`.
"""

from __future__ import annotations

import math

import numpy as np

from core.teaching.lessons.claim_kind import FACTOR, RUN, THAN, ClaimKind, Traces, Verdict, factor
from core.teaching.lessons.trace import RunTrace
from core.teaching.lessons.wording import num, state, times


def _roughness(trace: RunTrace) -> float:
    """How jumpy the per-step loss is: mean |Δloss| / mean loss over the run's second half."""
    losses = np.asarray(trace.step_loss, dtype=float)
    half = losses[len(losses) // 2:]
    if len(half) < 3 or half.mean() <= 0:
        return math.nan
    return float(np.abs(np.diff(half)).mean() / half.mean())



def _check_lr_at(p, traces: Traces) -> Verdict:
    run, step = traces[p["run"]], p["step"]
    if step >= len(run.lr):
        return False, f"{p['run']} has no step {step} ({state(run)})", {"lr": None}
    lr = run.lr[step]
    tolerance = p.get("rel_tol", 1e-6) * abs(p["value"]) + 1e-15
    return abs(lr - p["value"]) <= tolerance, f"{p['run']}: lr at step {step} = {num(lr)}", {
        "lr": lr}


def _check_lr_at_best_loss(p, traces: Traces) -> Verdict:
    run = traces[p["run"]]
    best = int(np.argmin(run.loss))
    step = run.loss_steps[best]
    lr = run.lr[step]
    measured = f"{p['run']}: lowest loss {num(run.loss[best])} at step {step}, lr {num(lr)}"
    return p["low"] <= lr <= p["high"], measured, {"lr": lr, "step": step}


def _check_lr_at_divergence(p, traces: Traces) -> Verdict:
    run = traces[p["run"]]
    if run.diverged_at is None or not run.lr:
        return False, f"{p['run']}: {state(run)}", {"lr": None}
    lr = run.lr[-1]  # the lr of the last update: the one that led to the blow-up
    measured = f"{p['run']}: diverged at step {run.diverged_at}, last update used lr {num(lr)}"
    return p["low"] <= lr <= p["high"], measured, {"lr": lr, "diverged_at": run.diverged_at}


def _check_noisier(p, traces: Traces) -> Verdict:
    a, b = _roughness(traces[p["run"]]), _roughness(traces[p["than"]])
    measured = f"mean |step-to-step change| / loss: {p['run']} {num(a)}, {p['than']} {num(b)}"
    return a >= factor(p) * b, measured, {"roughness": a, "other_roughness": b}



STEP_KINDS: tuple[ClaimKind, ...] = (
    ClaimKind(
        "lr_at", {**RUN, "step": "step", "value": "number"}, {"rel_tol": "positive"},
        lambda p: f"{p['run']} uses lr {p['value']:g} at step {p['step']}",
        _check_lr_at,
        help="the lr in force at `step` equals `value` (relative tolerance `rel_tol`, 1e-6)",
    ),
    ClaimKind(
        "lr_at_best_loss", {**RUN, "low": "number", "high": "number"}, {},
        lambda p: f"{p['run']} has its lowest loss at an lr between {p['low']:g} and "
        f"{p['high']:g}",
        _check_lr_at_best_loss,
        help="the lr in force at the step of the lowest loss lies in [`low`, `high`]",
    ),
    ClaimKind(
        "lr_at_divergence", {**RUN, "low": "number", "high": "number"}, {},
        lambda p: f"{p['run']} blows up once its lr is between {p['low']:g} and {p['high']:g}",
        _check_lr_at_divergence,
        help="the run diverges, and the lr of its last update lies in [`low`, `high`]",
    ),
    ClaimKind(
        "noisier", THAN, FACTOR,
        lambda p: f"{p['run']}'s loss curve is noisier than {p['than']}'s{times(p)}",
        _check_noisier,
        help="mean |step-to-step loss change| / mean loss over the second half of the run "
        "(network labs: the mini-batch loss)",
    ),
)
