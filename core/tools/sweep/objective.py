"""The objectives a sweep minimises, computed from one trial's curve on one seed.

``final_val_loss``, ``best_val_loss``, ``auc`` (area under the training-loss curve divided by the
steps: the mean loss, so fast *and* low wins) and ``steps_to_target`` (first step whose
validation loss is <= target; ``steps + 1`` when never reached). Function labs have no
validation split: their loss stands in. A run that diverges scores its worst measured value; its
AUC counts the worst loss for the steps it did not get to run. `intermediate_value` is what a
trial reports to the pruner on the way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

OBJECTIVES: dict[str, str] = {
    "final_val_loss": "validation loss at the last step (function labs: the final loss)",
    "best_val_loss": "lowest validation loss over the evaluations (function labs: best loss)",
    "auc": "area under the training-loss curve / steps (the mean loss over the run)",
    "steps_to_target": "first step whose validation loss <= --target (never: steps + 1)",
}


@dataclass
class Curve:
    """One trial on one seed: what the objective is computed from."""

    losses: list[float] = field(default_factory=list)  # training loss per step while alive
    monitored: list[tuple[int, float]] = field(default_factory=list)
    diverged: bool = False


def objective_value(name: str, curve: Curve, steps: int, target: float | None) -> float:
    """The objective of one finished (not pruned) run; always finite."""
    values = [v for _, v in curve.monitored if math.isfinite(v)]
    losses = [v for v in curve.losses if math.isfinite(v)]
    if name == "steps_to_target":
        for step, value in curve.monitored:
            if value <= target:
                return float(step)
        return float(steps + 1)
    if name == "auc":
        if not losses:
            return math.inf
        series = np.asarray(losses, dtype=np.float64)
        if len(series) < steps + 1:  # diverged: the missing steps count at its worst
            series = np.concatenate([series, np.full(steps + 1 - len(series), series.max())])
        if steps == 0:
            return float(series[0])
        # numpy < 2 calls it trapz
        trapezoid = getattr(np, "trapezoid", None) or np.trapz
        return float(trapezoid(series) / steps)
    if not values:
        return math.inf
    if name == "best_val_loss":
        return float(min(values))
    # final_val_loss: a diverged run is no better than its worst measured point.
    return float(max(values)) if curve.diverged else float(values[-1])


def intermediate_value(name: str, curve: Curve) -> float:
    """What a trial reports to the pruner at an evaluation (lower is better)."""
    if name == "auc":
        return float(np.mean(curve.losses)) if curve.losses else math.inf
    return curve.monitored[-1][1]
