"""Claims about network labs: validation accuracy and loss, early stopping, weights, gradients.

val_accuracy_at_least, val_accuracy_at_most, final_val_loss_less, overfits, stops_early,
generalization_gap_less, weight_norm_less, gradient_ratio, update_spread: each a check, a sentence and its
`ClaimKind` entry in `NETWORK_KINDS` (they need runs of network labs).
"""

from __future__ import annotations

import numpy as np

from core.teaching.lessons.claim_kind import (
    FACTOR,
    RUN,
    THAN,
    ClaimKind,
    Traces,
    Verdict,
    factor,
    in_bounds,
)
from core.teaching.lessons.wording import bounds, num, state, times


def _check_val_accuracy_at_least(p, traces: Traces) -> Verdict:
    accuracy = traces[p["run"]].final_val_accuracy
    return accuracy >= p["value"], f"{p['run']}: validation accuracy {num(accuracy)}", {
        "accuracy": accuracy}


def _check_val_accuracy_at_most(p, traces: Traces) -> Verdict:
    accuracy = traces[p["run"]].final_val_accuracy
    return accuracy <= p["value"], f"{p['run']}: validation accuracy {num(accuracy)}", {
        "accuracy": accuracy}


def _check_final_val_loss_less(p, traces: Traces) -> Verdict:
    a, b = traces[p["run"]].final_val_loss, traces[p["than"]].final_val_loss
    measured = f"validation loss {p['run']}: {num(a)}; {p['than']}: {num(b)}"
    return a * factor(p) < b, measured, {"val_loss": a, "other_val_loss": b}


def _check_overfits(p, traces: Traces) -> Verdict:
    run = traces[p["run"]]
    best, final = min(run.val_loss), run.final_val_loss
    measured = (f"{p['run']}: best validation loss {num(best)}, final {num(final)} "
                f"(x{num(final / best)})")
    return final >= p["factor"] * best, measured, {"best": best, "final": final}


def _check_stops_early(p, traces: Traces) -> Verdict:
    run = traces[p["run"]]
    at = run.stopped_at
    holds = at is not None and (p.get("before") is None or at < p["before"])
    return holds, f"{p['run']}: {state(run)}", {"stopped_at": at}


def _check_generalization_gap_less(p, traces: Traces) -> Verdict:
    run, other = traces[p["run"]], traces[p["than"]]
    a = run.final_val_loss - run.final_loss
    b = other.final_val_loss - other.final_loss
    measured = f"validation - training loss: {p['run']} {num(a)}; {p['than']} {num(b)}"
    return a < b, measured, {"gap": a, "other_gap": b}


def _check_weight_norm_less(p, traces: Traces) -> Verdict:
    a, b = traces[p["run"]].weight_norm, traces[p["than"]].weight_norm
    measured = f"weight norm {p['run']}: {num(a)}; {p['than']}: {num(b)}"
    return a * factor(p) < b, measured, {"norm": a, "other_norm": b}


def _check_gradient_ratio(p, traces: Traces) -> Verdict:
    run = traces[p["run"]]
    norms = run.layer_grad_norm[0] if run.layer_grad_norm else []
    if len(norms) < 2 or norms[-1] <= 0:
        return False, f"{p['run']}: fewer than two weight layers with a gradient", {"ratio": None}
    ratio = norms[0] / norms[-1]
    measured = (f"{p['run']} at step 0: first layer {num(norms[0])}, last layer "
                f"{num(norms[-1])}, ratio {num(ratio)}")
    return in_bounds(ratio, p), measured, {"ratio": ratio}


def _check_update_spread(p, traces: Traces) -> Verdict:
    run = traces[p["run"]]
    spreads = [v for row in run.update_spread for v in row]
    if not spreads:
        return False, (f"{p['run']}: no update spectra (the weight matrices are too large, or "
                       "no evaluation had an update after it)"), {"spread": None}
    # The median over evaluations and matrices: one step's update may be off (a plateau, the
    # first step of momentum), the claim is about the optimizer's habit.
    median = float(np.median(spreads))
    measured = (f"{p['run']}: σ_1/σ_middle of the update, median over {len(spreads)} "
                f"evaluation(s) × matrices: {num(median)} (range {num(min(spreads))} – "
                f"{num(max(spreads))})")
    return in_bounds(median, p), measured, {"spread": median}


NETWORK_KINDS: tuple[ClaimKind, ...] = (
    ClaimKind(
        "val_accuracy_at_least", {**RUN, "value": "fraction"}, {},
        lambda p: f"{p['run']} ends with validation accuracy >= {p['value']:g}",
        _check_val_accuracy_at_least, needs="network",
        help="validation accuracy at the run's last evaluation",
    ),
    ClaimKind(
        "val_accuracy_at_most", {**RUN, "value": "fraction"}, {},
        lambda p: f"{p['run']} ends with validation accuracy <= {p['value']:g}",
        _check_val_accuracy_at_most, needs="network",
        help="validation accuracy at the run's last evaluation",
    ),
    ClaimKind(
        "final_val_loss_less", THAN, FACTOR,
        lambda p: f"{p['run']} ends with a lower validation loss than {p['than']}{times(p)}",
        _check_final_val_loss_less, needs="network",
        help="validation loss at the last evaluation: `run`'s × `factor` < `than`'s",
    ),
    ClaimKind(
        "overfits", {**RUN, "factor": "factor"}, {},
        lambda p: f"{p['run']}'s validation loss ends at least {p['factor']:g}x above its best",
        _check_overfits, needs="network",
        help="final validation loss >= `factor` × the run's best validation loss",
    ),
    ClaimKind(
        "stops_early", RUN, {"before": "step"},
        lambda p: f"{p['run']} stops early"
        + (f" before step {p['before']}" if p.get("before") is not None else ""),
        _check_stops_early, needs="network",
        help="early stopping ends the run (before step `before`)",
    ),
    ClaimKind(
        "generalization_gap_less", THAN, {},
        lambda p: f"{p['run']} ends with a smaller gap between validation and training loss "
        f"than {p['than']}",
        _check_generalization_gap_less, needs="network",
        help="final (validation − training loss) of `run` < that of `than`",
    ),
    ClaimKind(
        "weight_norm_less", THAN, FACTOR,
        lambda p: f"{p['run']} ends with smaller weights than {p['than']}{times(p)}",
        _check_weight_norm_less, needs="network",
        help="final ‖weights‖ (all linear/conv weight matrices): `run`'s × `factor` < `than`'s",
    ),
    ClaimKind(
        "gradient_ratio", RUN, {"at_least": "positive", "at_most": "positive"},
        lambda p: f"at the start, {p['run']}'s first-layer gradient is {bounds(p, 'x')} "
        "its last layer's",
        _check_gradient_ratio, needs="network",
        help="‖gradient of the first weight layer‖ / ‖of the last‖ at step 0 (vanishing "
        "gradients make it tiny)",
    ),
    ClaimKind(
        "update_spread", RUN, {"at_least": "positive", "at_most": "positive"},
        lambda p: f"{p['run']}'s update ΔW has a singular-value spread σ_1/σ_middle "
        f"{bounds(p)}",
        _check_update_spread, needs="network",
        help="the median, over the evaluations and the weight matrices, of the largest singular "
        "value of the update ΔW over its middle one (1 = flat, as Muon's; the Spectra tab)",
    ),
)
