"""Each scorecard trial's curve: the workload's target metric at each evaluation.

`thin_curve` turns a run's (step, value) pairs (core/tools/scorecard/workloads.py's
`Outcome.curve`) into the two JSON-safe lists core/tools/scorecard/run.py stores with the trial
(Optuna user_attrs ``curve_steps`` / ``curve_values``): at most `MAX_POINTS` points, the first,
the last, and the first point at or below the target with the one before it kept exactly, so
the first stored step at or below the target is the trial's time to target. A value that was
not finite is None. scorecard.json never reads these.

core/tools/scorecard/cell_curves.py reads them back for the window. No Qt here.
"""

from __future__ import annotations

import math

CURVE_STEPS, CURVE_VALUES = "curve_steps", "curve_values"
MAX_POINTS = 200


def _json(value) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def first_crossing(values: list, target: float) -> int | None:
    """The index of the first value at or below ``target`` (None values skipped), or None."""
    return next((i for i, v in enumerate(values) if v is not None and v <= target), None)


def thin_curve(curve: list, target: float, limit: int = MAX_POINTS) -> tuple[list, list]:
    """``curve``'s (step, value) pairs as (steps, values), at most ``limit`` points spread
    evenly over the indices, keeping the first, the last and the first crossing of ``target``
    with its predecessor (module docstring)."""
    if limit < 4:
        raise ValueError(f"limit: must be at least 4, got {limit!r}")
    steps = [int(step) for step, _ in curve]
    values = [_json(value) for _, value in curve]
    n = len(steps)
    if n <= limit:
        return steps, values
    keep = {0, n - 1}
    cross = first_crossing(values, target)
    if cross is not None:
        keep |= {cross, max(0, cross - 1)}
    spread = limit - 4  # room for the four kept points even where none is on the spread
    keep |= {round(j * (n - 1) / (spread - 1)) for j in range(spread)}
    chosen = sorted(keep)
    return [steps[i] for i in chosen], [values[i] for i in chosen]
