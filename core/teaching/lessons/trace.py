"""What a race shows, per run: the series the claims look at (`RunTrace`, `trace_labs`).

What "loss" means in a claim
----------------------------
* 2-D function labs: f at the run's point, at every step 0..N.
* Network labs: the *full training-set* loss measured at each evaluation (every ``eval_every``
  steps and at the last step), steadier than one mini-batch's loss. Only ``noisier`` looks at
  the per-step mini-batch loss, because the noise is its point.

A run that diverged or stopped early keeps the numbers of its last live step. Run labels are
unique across all labs of a lesson, so a claim names a run by its label alone and may compare
runs of different labs (a lab has one network, one batch size: "with and without batch norm"
needs two labs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from core.engine.factory import make_race
from core.lab.format import Lab


@dataclass
class RunTrace:
    """Everything claims measure about one run, gathered from the engine's records."""

    label: str
    lab: Lab
    network: bool
    loss_steps: list[int] = field(default_factory=list)  # the steps at which `loss` was measured
    loss: list[float] = field(default_factory=list)  # see the module docstring
    step_loss: list[float] = field(default_factory=list)  # per step (mini-batch loss for networks)
    lr: list[float] = field(default_factory=list)  # per step: the lr of the update from t to t+1
    points: list[tuple[float, float]] = field(default_factory=list)  # function labs, per step
    val_loss: list[float] = field(default_factory=list)  # network labs, per evaluation
    val_accuracy: list[float] = field(default_factory=list)
    layer_grad_norm: list[list[float]] = field(default_factory=list)  # per evaluation, per layer
    # Per evaluation with an update after it, per weight matrix: σ_1/σ_middle of ΔW
    # (core/engine/update_spectra.py `middle_spread`).
    update_spread: list[list[float]] = field(default_factory=list)
    diverged_at: int | None = None
    stopped_at: int | None = None
    weight_norm: float | None = None  # network labs: ‖all linear/conv weights‖ at the end
    # Classification: the last validation confusion matrix (k, k) taken while alive.
    val_confusion: np.ndarray | None = None
    # rl labs (core/teaching/lessons/rl_claims.py): every finished episode's return, and per
    # update the gradient norm and whether a target-network update followed it.
    returns: list[float] = field(default_factory=list)
    update_grad_norm: list[float] = field(default_factory=list)
    target_update: list[bool] = field(default_factory=list)

    @property
    def steps_total(self) -> int:
        return self.lab.steps

    @property
    def final_loss(self) -> float:
        return self.loss[-1] if self.loss else math.nan

    @property
    def final_point(self) -> tuple[float, float]:
        return self.points[-1]

    @property
    def final_val_loss(self) -> float:
        return self.val_loss[-1] if self.val_loss else math.nan

    @property
    def final_val_accuracy(self) -> float:
        return self.val_accuracy[-1] if self.val_accuracy else math.nan

    def first_step_below(self, value: float) -> int | None:
        for step, loss in zip(self.loss_steps, self.loss):
            if loss < value:
                return step
        return None


def _trace_function_lab(lab: Lab) -> dict[str, RunTrace]:
    race = make_race(lab)
    traces = {label: RunTrace(label, lab, network=False) for label in race.labels}
    for record in race.records():
        for i in np.flatnonzero(record.alive):
            trace = traces[race.labels[i]]
            loss = float(record.loss[i])
            trace.loss_steps.append(record.step)
            trace.loss.append(loss)
            trace.step_loss.append(loss)
            trace.lr.append(float(record.lr[i]))
            trace.points.append((float(record.point[i, 0]), float(record.point[i, 1])))
    for i, label in enumerate(race.labels):
        if race.diverged[i] is not None:
            traces[label].diverged_at = race.diverged[i].step
    return traces


def _trace_network_lab(lab: Lab) -> dict[str, RunTrace]:
    from core.engine.update_spectra import middle_spread
    from core.problems.models import linear_layers

    race = make_race(lab)
    traces = {label: RunTrace(label, lab, network=True) for label in race.labels}
    for record in race.records():
        evaluation = record.evaluation
        for i in np.flatnonzero(record.alive):
            trace = traces[race.labels[i]]
            trace.step_loss.append(float(record.loss[i]))
            trace.lr.append(float(record.lr[i]))
            if evaluation is None:
                continue
            trace.loss_steps.append(record.step)
            trace.loss.append(float(evaluation.train["loss"][i]))
            if "loss" in evaluation.val:
                trace.val_loss.append(float(evaluation.val["loss"][i]))
            if "accuracy" in evaluation.val:
                trace.val_accuracy.append(float(evaluation.val["accuracy"][i]))
            trace.layer_grad_norm.append([float(v) for v in evaluation.layer_grad_norm[i]])
            if evaluation.update_spectra is not None:
                trace.update_spread.append(
                    [middle_spread(values) for values in evaluation.update_spectra[i]])
            if evaluation.confusion is not None:
                trace.val_confusion = evaluation.confusion[i]
    for i, label in enumerate(race.labels):
        trace = traces[label]
        if race.diverged[i] is not None:
            trace.diverged_at = race.diverged[i].step
        if race.stopped[i] is not None:
            trace.stopped_at = race.stopped[i].step
        weights = [m.weight.detach() for _, m in linear_layers(race.models[i])]
        trace.weight_norm = math.sqrt(sum(float((w * w).sum()) for w in weights))
    return traces


def _trace_rl_lab(lab: Lab) -> dict[str, RunTrace]:
    race = make_race(lab)
    traces = {label: RunTrace(label, lab, network=False) for label in race.labels}
    for record in race.records():
        for i, label in enumerate(race.labels):
            trace = traces[label]
            trace.returns.extend(float(v) for v in record.returns[i])
            if np.isfinite(record.grad_norm[i]):
                trace.update_grad_norm.append(float(record.grad_norm[i]))
                trace.target_update.append(bool(record.target_update[i]))
    return traces


def trace_labs(labs: tuple[Lab, ...] | list[Lab]) -> dict[str, RunTrace]:
    """Run every lab to the end, headless, and gather each enabled run's `RunTrace` by label."""
    traces: dict[str, RunTrace] = {}
    for lab in labs:
        if lab.problem.kind == "rl":
            traces.update(_trace_rl_lab(lab))
            continue
        traces.update(_trace_network_lab(lab) if lab.is_network else _trace_function_lab(lab))
    return traces
