"""Claims about the loss a run reaches or ends at, and whether it diverges.

reaches, never_reaches, diverges, stays_finite, final_loss_less, final_loss_below,
final_loss_above, best_final_loss_less, similar_final_loss: each a check (the claim's fields and
the traces → a `Verdict`), a sentence, and its `ClaimKind` entry in `LOSS_KINDS`.
"""

from __future__ import annotations

import math
from typing import Any

from core.teaching.lessons.claim_kind import (
    FACTOR,
    RUN,
    THAN,
    ClaimKind,
    Traces,
    Verdict,
    expand_runs,
    factor,
)
from core.teaching.lessons.wording import num, runs_text, state, times, when, within_text


def _check_reaches(p, traces: Traces) -> Verdict:
    run = traces[p["run"]]
    step = run.first_step_below(p["below"])
    holds = step is not None and (p.get("within") is None or step <= p["within"])
    measured = f"{p['run']}: {when(run, step)}"
    values: dict[str, Any] = {"step": step}
    if "sooner_than" in p:
        other = traces[p["sooner_than"]]
        other_step = other.first_step_below(p["below"])
        # A run that never gets there is beaten by any that does.
        holds = holds and (other_step is None or step * factor(p) <= other_step)
        measured += f"; {p['sooner_than']}: {when(other, other_step)}"
        values["other_step"] = other_step
    return holds, measured, values


def _check_never_reaches(p, traces: Traces) -> Verdict:
    run = traces[p["run"]]
    step = run.first_step_below(p["below"])
    lowest = min(run.loss)
    return step is None, f"{p['run']}: {when(run, step)}, lowest loss {num(lowest)}", {
        "step": step, "lowest": lowest}


def _check_diverges(p, traces: Traces) -> Verdict:
    run = traces[p["run"]]
    at = run.diverged_at
    holds = at is not None and (p.get("within") is None or at <= p["within"])
    return holds, f"{p['run']}: {state(run)}", {"diverged_at": at}


def _check_stays_finite(p, traces: Traces) -> Verdict:
    run = traces[p["run"]]
    measured = f"{p['run']}: {state(run)}, final loss {num(run.final_loss)}"
    return run.diverged_at is None, measured, {"diverged_at": run.diverged_at}


def _check_final_loss_less(p, traces: Traces) -> Verdict:
    run, other = traces[p["run"]], traces[p["than"]]
    a, b = run.final_loss, other.final_loss
    holds = run.diverged_at is None and other.diverged_at is None and a * factor(p) < b
    measured = f"{p['run']}: {num(a)}; {p['than']}: {num(b)}"
    for trace in (run, other):
        if trace.diverged_at is not None:
            measured += f"; {trace.label} {state(trace)}"
    return holds, measured, {"final": a, "other_final": b}


def _check_final_loss_below(p, traces: Traces) -> Verdict:
    run = traces[p["run"]]
    holds = run.diverged_at is None and run.final_loss < p["value"]
    return holds, f"{p['run']}: {num(run.final_loss)}, {state(run)}", {"final": run.final_loss}


def _check_final_loss_above(p, traces: Traces) -> Verdict:
    run = traces[p["run"]]
    holds = run.final_loss > p["value"]
    return holds, f"{p['run']}: {num(run.final_loss)}, {state(run)}", {"final": run.final_loss}


def _best_final(labels: list[str], traces: Traces) -> tuple[str, float]:
    """The label and final loss of the lowest-ending run that did not diverge."""
    finals = {label: (traces[label].final_loss if traces[label].diverged_at is None else math.inf)
              for label in labels}
    best = min(finals, key=finals.get)
    return best, finals[best]


def _check_best_final_loss_less(p, traces: Traces) -> Verdict:
    best, ours = _best_final(expand_runs(p["runs"], traces), traces)
    other, theirs = _best_final(expand_runs(p["than"], traces), traces)
    return ours * factor(p) < theirs, f"best {best}: {num(ours)}; best {other}: {num(theirs)}", {
        "best": ours, "other_best": theirs}


def _check_similar_final_loss(p, traces: Traces) -> Verdict:
    labels = expand_runs(p["runs"], traces)
    if any(traces[label].diverged_at is not None for label in labels):
        return False, "some of these runs diverged", {"spread": math.inf}
    finals = [traces[label].final_loss for label in labels]
    low, high = min(finals), max(finals)
    spread = (high - low) / abs(low) if low != 0 else math.inf
    measured = f"final losses from {num(low)} to {num(high)}: spread {num(spread * 100)}%"
    return spread <= p["within"], measured, {"spread": spread}



def _sentence_reaches(p) -> str:
    text = f"{p['run']} reaches loss < {p['below']:g}{within_text(p)}"
    if "sooner_than" in p:
        at_least = f" at least {factor(p):g}x" if factor(p) != 1.0 else ""
        text += f"{at_least} sooner than {p['sooner_than']}"
    return text




LOSS_KINDS: tuple[ClaimKind, ...] = (
    ClaimKind(
        "reaches", {**RUN, "below": "number"},
        {"within": "step", "sooner_than": "run", **FACTOR},
        _sentence_reaches, _check_reaches,
        help="the loss drops below `below` (within `within` steps; at least `factor` times "
        "sooner than `sooner_than`, which may also never get there)",
    ),
    ClaimKind(
        "never_reaches", {**RUN, "below": "number"}, {},
        lambda p: f"{p['run']} never reaches loss < {p['below']:g}",
        _check_never_reaches, help="the loss never drops below `below`",
    ),
    ClaimKind(
        "diverges", RUN, {"within": "step"},
        lambda p: f"{p['run']} diverges{within_text(p)}",
        _check_diverges, help="the engine stops the run because its numbers blew up",
    ),
    ClaimKind(
        "stays_finite", RUN, {},
        lambda p: f"{p['run']} does not diverge",
        _check_stays_finite, help="the run never diverges",
    ),
    ClaimKind(
        "final_loss_less", THAN, FACTOR,
        lambda p: f"{p['run']} ends with a lower loss than {p['than']}{times(p)}",
        _check_final_loss_less,
        help="final loss of `run` × `factor` < final loss of `than`; neither may diverge",
    ),
    ClaimKind(
        "final_loss_below", {**RUN, "value": "number"}, {},
        lambda p: f"{p['run']} ends with loss < {p['value']:g}",
        _check_final_loss_below, help="the run ends below `value` without diverging",
    ),
    ClaimKind(
        "final_loss_above", {**RUN, "value": "number"}, {},
        lambda p: f"{p['run']} ends with loss > {p['value']:g}",
        _check_final_loss_above, help="the run ends above `value`",
    ),
    ClaimKind(
        "best_final_loss_less", {"runs": "runs", "than": "runs"}, FACTOR,
        lambda p: f"the best of {runs_text(p['runs'])} ends lower than the best of "
        f"{runs_text(p['than'])}{times(p)}",
        _check_best_final_loss_less,
        help="the lowest final loss among `runs` × `factor` < the lowest among `than` "
        "(diverged runs do not count)",
    ),
    ClaimKind(
        "similar_final_loss", {"runs": "runs", "within": "positive"}, {},
        lambda p: f"{runs_text(p['runs'])} end within {p['within'] * 100:g}% of each other",
        _check_similar_final_loss,
        help="(highest − lowest final loss) / lowest <= `within`; none may diverge",
    ),
)
