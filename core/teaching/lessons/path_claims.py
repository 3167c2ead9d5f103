"""Claims about a function lab's path: where it ends, where it is, how it zig-zags and swings.

ends_near, ends_far_from, point_at, direction_changes, swings_wider: each a check, a sentence
and its `ClaimKind` entry in `PATH_KINDS` (they need runs of 2-D function labs), with the
measurements of a path they use.
"""

from __future__ import annotations

import math

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
from core.teaching.lessons.trace import RunTrace
from core.teaching.lessons.wording import at_text, bounds, num, point_text, state

# The shortest move `direction_changes` counts: a thousandth of a unit, far below what a
# landscape plot a few units wide can show.
VISIBLE_MOVE = 1e-3


def _direction_changes(trace: RunTrace, axis: str, within: int) -> int:
    """How often the run's step along ``axis`` flips sign in its first ``within`` steps.

    Moves shorter than `VISIBLE_MOVE` are skipped: a reversal nobody can see on the landscape
    (y = 1e-30 flipping to -1e-31) is not a zig-zag.
    """
    column = 0 if axis == "x" else 1
    coords = np.asarray([point[column] for point in trace.points[: within + 1]])
    moves = np.diff(coords)
    moves = moves[np.abs(moves) >= VISIBLE_MOVE]
    return int(np.count_nonzero(np.sign(moves[1:]) != np.sign(moves[:-1])))


def _widest_swing(trace: RunTrace, axis: str, after: int, within: int) -> float:
    """The longest single move along ``axis`` between steps ``after`` and ``within``.

    In a zig-zag each move crosses the valley from one side to the other, so this is the width
    the eye sees the path swing (a run that reverses often may still swing narrowly, and the
    reverse: reversals are `_direction_changes`). A run that stopped earlier has fewer moves;
    none at all measures 0.
    """
    column = 0 if axis == "x" else 1
    coords = np.asarray([point[column] for point in trace.points[after: within + 1]])
    moves = np.abs(np.diff(coords))
    return float(moves.max()) if len(moves) else 0.0


def _distance(point, target) -> float:
    return math.hypot(point[0] - target[0], point[1] - target[1])



def _check_ends_near(p, traces: Traces) -> Verdict:
    run = traces[p["run"]]
    d = _distance(run.final_point, p["point"])
    holds = run.diverged_at is None and d <= p["tol"]
    return holds, f"{p['run']} ends at {at_text(run.final_point)}, distance {num(d)}", {"distance": d}


def _check_ends_far_from(p, traces: Traces) -> Verdict:
    run = traces[p["run"]]
    d = _distance(run.final_point, p["point"])
    return d > p["distance"], f"{p['run']} ends at {at_text(run.final_point)}, distance {num(d)}", {
        "distance": d}


def _check_point_at(p, traces: Traces) -> Verdict:
    run, step = traces[p["run"]], p["step"]
    if step >= len(run.points):
        return False, f"{p['run']} has no step {step} ({state(run)})", {"distance": None}
    point = run.points[step]
    d = _distance(point, p["point"])
    return d <= p["tol"], f"{p['run']} at step {step}: {at_text(point)}, distance {num(d)}", {
        "distance": d}


def _check_direction_changes(p, traces: Traces) -> Verdict:
    count = _direction_changes(traces[p["run"]], p["axis"], p["within"])
    noun = "reversal" if count == 1 else "reversals"
    measured = f"{p['run']}: {count} {noun} along {p['axis']} in {p['within']} steps"
    return in_bounds(count, p), measured, {"count": count}


def _check_swings_wider(p, traces: Traces) -> Verdict:
    after = p.get("after", 0)
    ours = _widest_swing(traces[p["run"]], p["axis"], after, p["within"])
    theirs = _widest_swing(traces[p["than"]], p["axis"], after, p["within"])
    measured = (f"widest move along {p['axis']} in steps {after}–{p['within']}: "
                f"{p['run']} {num(ours)}, {p['than']} {num(theirs)}")
    return ours >= factor(p) * theirs and ours > 0, measured, {"swing": ours,
                                                                 "other_swing": theirs}



def _sentence_direction_changes(p) -> str:
    where = f"along {p['axis']} in its first {p['within']} steps"
    if p.get("at_most") == 0 and p.get("at_least") is None:
        return f"{p['run']} never reverses direction {where}"
    return f"{p['run']} reverses direction {bounds(p)} times {where}"


def _sentence_swings_wider(p) -> str:
    at_least = f" at least {factor(p):g}x" if factor(p) != 1.0 else ""
    return (f"{p['run']} swings{at_least} wider than {p['than']} along {p['axis']} in steps "
            f"{p.get('after', 0)}–{p['within']}")




PATH_KINDS: tuple[ClaimKind, ...] = (
    ClaimKind(
        "ends_near", {**RUN, "point": "point", "tol": "positive"}, {},
        lambda p: f"{p['run']} ends within {p['tol']:g} of {point_text(p['point'])}",
        _check_ends_near, needs="function",
        help="the final point is within `tol` of `point` (and the run did not diverge)",
    ),
    ClaimKind(
        "ends_far_from", {**RUN, "point": "point", "distance": "positive"}, {},
        lambda p: f"{p['run']} ends more than {p['distance']:g} away from "
        f"{point_text(p['point'])}",
        _check_ends_far_from, needs="function",
        help="the final point is further than `distance` from `point`",
    ),
    ClaimKind(
        "point_at", {**RUN, "step": "step", "point": "point", "tol": "positive"}, {},
        lambda p: f"{p['run']} is within {p['tol']:g} of {point_text(p['point'])} "
        f"at step {p['step']}",
        _check_point_at, needs="function",
        help="the point at `step` is within `tol` of `point`",
    ),
    ClaimKind(
        "direction_changes", {**RUN, "axis": "axis", "within": "step"},
        {"at_least": "step", "at_most": "step"},
        _sentence_direction_changes, _check_direction_changes, needs="function",
        help="how often the step along `axis` flips sign (zig-zags) in the first `within` "
        f"steps, counting moves of at least {VISIBLE_MOVE:g}",
    ),
    ClaimKind(
        "swings_wider", {**THAN, "axis": "axis", "within": "step"},
        {"after": "step", **FACTOR},
        _sentence_swings_wider, _check_swings_wider, needs="function",
        help="the longest single move along `axis` (a zig-zag's swing from one side of a "
        "valley to the other) between steps `after` (0) and `within`: `run`'s >= `factor` × "
        "`than`'s",
    ),
)
