"""Lessons: a lab (or a few) plus a short text, and machine-checked claims about what it shows.

A lesson lives in ``resources/lessons/<name>/`` as data, not code (docs/lessons.md)::

    lesson.json       {"format": "descent-lesson/1", "name": "ravine", "title": ..., "lab": ...,
                       "summary": ..., "notice": [...], "why": ..., "question": ...,
                       "hide_panels": [...], "claims": [...]}
    lesson.lab.json   an ordinary lab file (or several, named in "lab" as a list)

Every sentence of a lesson's text that states a measurable fact ("momentum reaches f < 1e-3 in
fewer steps than SGD") has a matching *claim*: a small JSON object that `check_claims` verifies by
running the lesson's labs headless with the very engines the GUI uses (core/engine/factory.py
picks the race for each lab). ``python main.py lessons check`` and tests/core/test_lessons.py run
them all, so a lesson cannot drift away from what the app really shows.

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

Like lab files, lesson files are parsed strictly: an unknown key, a claim of an unknown kind, a
claim naming a run that is not in the lesson's labs: each raises `LabError` naming the file and
the field (``claims[2].run``). `CLAIM_KINDS` lists every kind with its fields.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from core.engine.factory import make_race
from core.errors import LabError
from core.lab.checks import check_keys
from core.lab.format import Lab, load_lab

FORMAT = "descent-lesson/1"
LESSONS_DIR = Path(__file__).resolve().parents[2] / "resources" / "lessons"
LESSON_FILE = "lesson.json"
MAX_LESSON_BYTES = 256 * 1024
MAX_LABS = 4
MAX_TEXT_CHARS = 4000
MAX_NOTICE_CHARS = 500
# Panels a lesson may hide to focus attention (the GUI's lesson panel interprets them).
PANELS = ("problem", "runs", "curves", "landscape", "network", "diagram")
SWEEP_SAMPLERS = ("grid", "random", "tpe", "cmaes")
SWEEP_OBJECTIVES = ("final_val_loss", "best_val_loss", "auc")
# The shortest move `direction_changes` counts: a thousandth of a unit, far below what a
# landscape plot a few units wide can show.
VISIBLE_MOVE = 1e-3

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_]{0,59}$")
_KEYS = ("format", "name", "title", "lab", "summary", "notice", "why", "question",
         "hide_panels", "claims")
_REQUIRED_KEYS = set(_KEYS) - {"hide_panels"}


# --------------------------------------------------------------------------------------------
# Data


@dataclass(frozen=True)
class Claim:
    """One checkable statement of a lesson, e.g. ``{"kind": "diverges", "run": "lr 1.1"}``."""

    kind: str
    params: Mapping[str, Any]  # the claim's checked fields, without "kind"
    index: int  # its place in the lesson's "claims" list

    def describe(self) -> str:
        """The claim as a sentence: ``Momentum reaches loss < 0.001 sooner than SGD``."""
        return CLAIM_KINDS[self.kind].sentence(self.params)


@dataclass(frozen=True)
class Lesson:
    """A lesson as loaded from ``resources/lessons/<name>/lesson.json``: text, labs and claims."""

    name: str
    title: str
    summary: str
    notice: tuple[str, ...]
    why: str
    question: str
    labs: tuple[Lab, ...]
    lab_paths: tuple[Path, ...]
    claims: tuple[Claim, ...]
    hide_panels: tuple[str, ...] = ()
    path: Path | None = None  # the lesson.json file

    @property
    def lab(self) -> Lab:
        """The lab the lesson opens with (its first)."""
        return self.labs[0]

    @property
    def lab_path(self) -> Path:
        return self.lab_paths[0]


@dataclass(frozen=True)
class ClaimResult:
    """The verdict on one claim, with the numbers that decided it."""

    claim: Claim
    holds: bool
    measured: str  # e.g. "Momentum: step 33; SGD: step 270"
    values: Mapping[str, Any] = field(default_factory=dict)

    def line(self, ok: str = "✓", failed: str = "✗") -> str:
        return f"{ok if self.holds else failed} {self.claim.describe()}  ({self.measured})"


# --------------------------------------------------------------------------------------------
# What a race shows, per run: the series the claims look at


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
    diverged_at: int | None = None
    stopped_at: int | None = None
    weight_norm: float | None = None  # network labs: ‖all linear/conv weights‖ at the end

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
    for i, label in enumerate(race.labels):
        trace = traces[label]
        if race.diverged[i] is not None:
            trace.diverged_at = race.diverged[i].step
        if race.stopped[i] is not None:
            trace.stopped_at = race.stopped[i].step
        weights = [m.weight.detach() for _, m in linear_layers(race.models[i])]
        trace.weight_norm = math.sqrt(sum(float((w * w).sum()) for w in weights))
    return traces


def trace_labs(labs: tuple[Lab, ...] | list[Lab]) -> dict[str, RunTrace]:
    """Run every lab to the end, headless, and gather each enabled run's `RunTrace` by label."""
    traces: dict[str, RunTrace] = {}
    for lab in labs:
        traces.update(_trace_network_lab(lab) if lab.is_network else _trace_function_lab(lab))
    return traces


# --------------------------------------------------------------------------------------------
# Measurements and wording shared by the claim kinds


def _num(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.4g}"


def _when(trace: RunTrace, step: int | None) -> str:
    if step is not None:
        return f"step {step}"
    text = f"never in {trace.steps_total} steps"
    if trace.diverged_at is not None:
        text += f" (diverged at step {trace.diverged_at})"
    return text


def _state(trace: RunTrace) -> str:
    if trace.diverged_at is not None:
        return f"diverged at step {trace.diverged_at}"
    if trace.stopped_at is not None:
        return f"stopped early at step {trace.stopped_at}"
    return f"ran {trace.steps_total} steps"


def _roughness(trace: RunTrace) -> float:
    """How jumpy the per-step loss is: mean |Δloss| / mean loss over the run's second half."""
    losses = np.asarray(trace.step_loss, dtype=float)
    half = losses[len(losses) // 2:]
    if len(half) < 3 or half.mean() <= 0:
        return math.nan
    return float(np.abs(np.diff(half)).mean() / half.mean())


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


def _expand_runs(patterns: list[str], labels) -> list[str]:
    """The labels a "runs" list names: exact labels, or ``"prefix*"``: every label so starting."""
    chosen: list[str] = []
    for pattern in patterns:
        if pattern.endswith("*"):
            chosen += [label for label in labels if label.startswith(pattern[:-1])]
        else:
            chosen.append(pattern)
    return list(dict.fromkeys(chosen))


def _in_bounds(value: float, p: Mapping[str, Any]) -> bool:
    return (p.get("at_least") is None or value >= p["at_least"]) and (
        p.get("at_most") is None or value <= p["at_most"])


def _factor(p: Mapping[str, Any]) -> float:
    return p.get("factor", 1.0)


def _times(p: Mapping[str, Any]) -> str:
    return f" by a factor of at least {_factor(p):g}" if _factor(p) != 1.0 else ""


def _within(p: Mapping[str, Any]) -> str:
    if p.get("within") is None:
        return ""
    return f" within {p['within']} step{'' if p['within'] == 1 else 's'}"


def _bounds(p: Mapping[str, Any], unit: str = "") -> str:
    parts = []
    if p.get("at_least") is not None:
        parts.append(f"at least {p['at_least']:g}{unit}")
    if p.get("at_most") is not None:
        parts.append(f"at most {p['at_most']:g}{unit}")
    return " and ".join(parts)


def _runs_text(patterns: list[str]) -> str:
    """``["grid*"]`` → ``the runs grid…``; ``["A", "B"]`` → ``A, B``."""
    return ", ".join(f"the runs {p[:-1]}…" if p.endswith("*") else p for p in patterns)


def _point_text(point) -> str:
    return f"({point[0]:g}, {point[1]:g})"


def _at(point) -> str:
    return f"({_num(point[0])}, {_num(point[1])})"


# --------------------------------------------------------------------------------------------
# The checks: each takes the claim's fields and the traces, returns (holds, measured, values)

Verdict = tuple[bool, str, dict]
Traces = dict[str, RunTrace]


def _check_reaches(p, traces: Traces) -> Verdict:
    run = traces[p["run"]]
    step = run.first_step_below(p["below"])
    holds = step is not None and (p.get("within") is None or step <= p["within"])
    measured = f"{p['run']}: {_when(run, step)}"
    values: dict[str, Any] = {"step": step}
    if "sooner_than" in p:
        other = traces[p["sooner_than"]]
        other_step = other.first_step_below(p["below"])
        # A run that never gets there is beaten by any that does.
        holds = holds and (other_step is None or step * _factor(p) <= other_step)
        measured += f"; {p['sooner_than']}: {_when(other, other_step)}"
        values["other_step"] = other_step
    return holds, measured, values


def _check_never_reaches(p, traces: Traces) -> Verdict:
    run = traces[p["run"]]
    step = run.first_step_below(p["below"])
    lowest = min(run.loss)
    return step is None, f"{p['run']}: {_when(run, step)}, lowest loss {_num(lowest)}", {
        "step": step, "lowest": lowest}


def _check_diverges(p, traces: Traces) -> Verdict:
    run = traces[p["run"]]
    at = run.diverged_at
    holds = at is not None and (p.get("within") is None or at <= p["within"])
    return holds, f"{p['run']}: {_state(run)}", {"diverged_at": at}


def _check_stays_finite(p, traces: Traces) -> Verdict:
    run = traces[p["run"]]
    measured = f"{p['run']}: {_state(run)}, final loss {_num(run.final_loss)}"
    return run.diverged_at is None, measured, {"diverged_at": run.diverged_at}


def _check_final_loss_less(p, traces: Traces) -> Verdict:
    run, other = traces[p["run"]], traces[p["than"]]
    a, b = run.final_loss, other.final_loss
    holds = run.diverged_at is None and other.diverged_at is None and a * _factor(p) < b
    measured = f"{p['run']}: {_num(a)}; {p['than']}: {_num(b)}"
    for trace in (run, other):
        if trace.diverged_at is not None:
            measured += f"; {trace.label} {_state(trace)}"
    return holds, measured, {"final": a, "other_final": b}


def _check_final_loss_below(p, traces: Traces) -> Verdict:
    run = traces[p["run"]]
    holds = run.diverged_at is None and run.final_loss < p["value"]
    return holds, f"{p['run']}: {_num(run.final_loss)}, {_state(run)}", {"final": run.final_loss}


def _check_final_loss_above(p, traces: Traces) -> Verdict:
    run = traces[p["run"]]
    holds = run.final_loss > p["value"]
    return holds, f"{p['run']}: {_num(run.final_loss)}, {_state(run)}", {"final": run.final_loss}


def _check_ends_near(p, traces: Traces) -> Verdict:
    run = traces[p["run"]]
    d = _distance(run.final_point, p["point"])
    holds = run.diverged_at is None and d <= p["tol"]
    return holds, f"{p['run']} ends at {_at(run.final_point)}, distance {_num(d)}", {"distance": d}


def _check_ends_far_from(p, traces: Traces) -> Verdict:
    run = traces[p["run"]]
    d = _distance(run.final_point, p["point"])
    return d > p["distance"], f"{p['run']} ends at {_at(run.final_point)}, distance {_num(d)}", {
        "distance": d}


def _check_point_at(p, traces: Traces) -> Verdict:
    run, step = traces[p["run"]], p["step"]
    if step >= len(run.points):
        return False, f"{p['run']} has no step {step} ({_state(run)})", {"distance": None}
    point = run.points[step]
    d = _distance(point, p["point"])
    return d <= p["tol"], f"{p['run']} at step {step}: {_at(point)}, distance {_num(d)}", {
        "distance": d}


def _check_direction_changes(p, traces: Traces) -> Verdict:
    count = _direction_changes(traces[p["run"]], p["axis"], p["within"])
    noun = "reversal" if count == 1 else "reversals"
    measured = f"{p['run']}: {count} {noun} along {p['axis']} in {p['within']} steps"
    return _in_bounds(count, p), measured, {"count": count}


def _check_swings_wider(p, traces: Traces) -> Verdict:
    after = p.get("after", 0)
    ours = _widest_swing(traces[p["run"]], p["axis"], after, p["within"])
    theirs = _widest_swing(traces[p["than"]], p["axis"], after, p["within"])
    measured = (f"widest move along {p['axis']} in steps {after}–{p['within']}: "
                f"{p['run']} {_num(ours)}, {p['than']} {_num(theirs)}")
    return ours >= _factor(p) * theirs and ours > 0, measured, {"swing": ours,
                                                                 "other_swing": theirs}


def _check_lr_at(p, traces: Traces) -> Verdict:
    run, step = traces[p["run"]], p["step"]
    if step >= len(run.lr):
        return False, f"{p['run']} has no step {step} ({_state(run)})", {"lr": None}
    lr = run.lr[step]
    tolerance = p.get("rel_tol", 1e-6) * abs(p["value"]) + 1e-15
    return abs(lr - p["value"]) <= tolerance, f"{p['run']}: lr at step {step} = {_num(lr)}", {
        "lr": lr}


def _check_lr_at_best_loss(p, traces: Traces) -> Verdict:
    run = traces[p["run"]]
    best = int(np.argmin(run.loss))
    step = run.loss_steps[best]
    lr = run.lr[step]
    measured = f"{p['run']}: lowest loss {_num(run.loss[best])} at step {step}, lr {_num(lr)}"
    return p["low"] <= lr <= p["high"], measured, {"lr": lr, "step": step}


def _check_lr_at_divergence(p, traces: Traces) -> Verdict:
    run = traces[p["run"]]
    if run.diverged_at is None or not run.lr:
        return False, f"{p['run']}: {_state(run)}", {"lr": None}
    lr = run.lr[-1]  # the lr of the last update: the one that led to the blow-up
    measured = f"{p['run']}: diverged at step {run.diverged_at}, last update used lr {_num(lr)}"
    return p["low"] <= lr <= p["high"], measured, {"lr": lr, "diverged_at": run.diverged_at}


def _check_noisier(p, traces: Traces) -> Verdict:
    a, b = _roughness(traces[p["run"]]), _roughness(traces[p["than"]])
    measured = f"mean |step-to-step change| / loss: {p['run']} {_num(a)}, {p['than']} {_num(b)}"
    return a >= _factor(p) * b, measured, {"roughness": a, "other_roughness": b}


def _best_final(labels: list[str], traces: Traces) -> tuple[str, float]:
    """The label and final loss of the lowest-ending run that did not diverge."""
    finals = {label: (traces[label].final_loss if traces[label].diverged_at is None else math.inf)
              for label in labels}
    best = min(finals, key=finals.get)
    return best, finals[best]


def _check_best_final_loss_less(p, traces: Traces) -> Verdict:
    best, ours = _best_final(_expand_runs(p["runs"], traces), traces)
    other, theirs = _best_final(_expand_runs(p["than"], traces), traces)
    return ours * _factor(p) < theirs, f"best {best}: {_num(ours)}; best {other}: {_num(theirs)}", {
        "best": ours, "other_best": theirs}


def _check_similar_final_loss(p, traces: Traces) -> Verdict:
    labels = _expand_runs(p["runs"], traces)
    if any(traces[label].diverged_at is not None for label in labels):
        return False, "some of these runs diverged", {"spread": math.inf}
    finals = [traces[label].final_loss for label in labels]
    low, high = min(finals), max(finals)
    spread = (high - low) / abs(low) if low != 0 else math.inf
    measured = f"final losses from {_num(low)} to {_num(high)}: spread {_num(spread * 100)}%"
    return spread <= p["within"], measured, {"spread": spread}


def _check_val_accuracy_at_least(p, traces: Traces) -> Verdict:
    accuracy = traces[p["run"]].final_val_accuracy
    return accuracy >= p["value"], f"{p['run']}: validation accuracy {_num(accuracy)}", {
        "accuracy": accuracy}


def _check_val_accuracy_at_most(p, traces: Traces) -> Verdict:
    accuracy = traces[p["run"]].final_val_accuracy
    return accuracy <= p["value"], f"{p['run']}: validation accuracy {_num(accuracy)}", {
        "accuracy": accuracy}


def _check_final_val_loss_less(p, traces: Traces) -> Verdict:
    a, b = traces[p["run"]].final_val_loss, traces[p["than"]].final_val_loss
    measured = f"validation loss {p['run']}: {_num(a)}; {p['than']}: {_num(b)}"
    return a * _factor(p) < b, measured, {"val_loss": a, "other_val_loss": b}


def _check_overfits(p, traces: Traces) -> Verdict:
    run = traces[p["run"]]
    best, final = min(run.val_loss), run.final_val_loss
    measured = (f"{p['run']}: best validation loss {_num(best)}, final {_num(final)} "
                f"(x{_num(final / best)})")
    return final >= p["factor"] * best, measured, {"best": best, "final": final}


def _check_stops_early(p, traces: Traces) -> Verdict:
    run = traces[p["run"]]
    at = run.stopped_at
    holds = at is not None and (p.get("before") is None or at < p["before"])
    return holds, f"{p['run']}: {_state(run)}", {"stopped_at": at}


def _check_generalization_gap_less(p, traces: Traces) -> Verdict:
    run, other = traces[p["run"]], traces[p["than"]]
    a = run.final_val_loss - run.final_loss
    b = other.final_val_loss - other.final_loss
    measured = f"validation - training loss: {p['run']} {_num(a)}; {p['than']} {_num(b)}"
    return a < b, measured, {"gap": a, "other_gap": b}


def _check_weight_norm_less(p, traces: Traces) -> Verdict:
    a, b = traces[p["run"]].weight_norm, traces[p["than"]].weight_norm
    measured = f"weight norm {p['run']}: {_num(a)}; {p['than']}: {_num(b)}"
    return a * _factor(p) < b, measured, {"norm": a, "other_norm": b}


def _check_gradient_ratio(p, traces: Traces) -> Verdict:
    run = traces[p["run"]]
    norms = run.layer_grad_norm[0] if run.layer_grad_norm else []
    if len(norms) < 2 or norms[-1] <= 0:
        return False, f"{p['run']}: fewer than two weight layers with a gradient", {"ratio": None}
    ratio = norms[0] / norms[-1]
    measured = (f"{p['run']} at step 0: first layer {_num(norms[0])}, last layer "
                f"{_num(norms[-1])}, ratio {_num(ratio)}")
    return _in_bounds(ratio, p), measured, {"ratio": ratio}


def _sweep_best(trace: RunTrace, p: Mapping[str, Any], sampler: str, trials: int) -> float:
    """The best value of a seeded, in-memory `core.tools.sweep` study tuning the run ``trace``."""
    from core.tools.sweep import SweepSpec, sweep

    spec = SweepSpec(lab=trace.lab, run=trace.label, params=tuple(p["params"]), trials=trials,
                     sampler=sampler, objective=p.get("objective", "final_val_loss"),
                     prune=False)
    best = sweep(spec).best_value
    return math.inf if best is None else float(best)


def _check_sweep_beats(p, traces: Traces) -> Verdict:
    run = traces[p["run"]]
    ours = _sweep_best(run, p, p["sampler"], p["trials"])
    theirs = _sweep_best(run, p, p["than_sampler"], p.get("than_trials", p["trials"]))
    measured = (f"best {p.get('objective', 'final_val_loss')}: {p['sampler']} {_num(ours)}, "
                f"{p['than_sampler']} {_num(theirs)}")
    return ours * _factor(p) < theirs, measured, {"best": ours, "other_best": theirs}


# --------------------------------------------------------------------------------------------
# The registry of claim kinds


@dataclass(frozen=True)
class ClaimKind:
    """A kind of claim: its fields (name → type, see `_field_value`), its sentence, its check."""

    name: str
    required: Mapping[str, str]
    optional: Mapping[str, str]
    sentence: Callable[[Mapping[str, Any]], str]
    check: Callable[[Mapping[str, Any], Traces], Verdict]
    needs: str = "any"  # "function" or "network": the runs it names must be of that kind
    help: str = ""

    @property
    def fields(self) -> dict[str, str]:
        return {**self.required, **self.optional}


def _sentence_reaches(p) -> str:
    text = f"{p['run']} reaches loss < {p['below']:g}{_within(p)}"
    if "sooner_than" in p:
        times = f" at least {_factor(p):g}x" if _factor(p) != 1.0 else ""
        text += f"{times} sooner than {p['sooner_than']}"
    return text


def _sentence_direction_changes(p) -> str:
    where = f"along {p['axis']} in its first {p['within']} steps"
    if p.get("at_most") == 0 and p.get("at_least") is None:
        return f"{p['run']} never reverses direction {where}"
    return f"{p['run']} reverses direction {_bounds(p)} times {where}"


def _sentence_swings_wider(p) -> str:
    times = f" at least {_factor(p):g}x" if _factor(p) != 1.0 else ""
    return (f"{p['run']} swings{times} wider than {p['than']} along {p['axis']} in steps "
            f"{p.get('after', 0)}–{p['within']}")


def _sentence_sweep(p) -> str:
    names = ", ".join(text.split("=")[0] for text in p["params"])
    objective = p.get("objective", "final_val_loss")
    return (f"{p['trials']} {p['sampler']} trials over {names} of {p['run']} find a lower "
            f"{objective} than {p.get('than_trials', p['trials'])} {p['than_sampler']} trials"
            f"{_times(p)}")


_RUN, _THAN = {"run": "run"}, {"run": "run", "than": "run"}
_FACTOR = {"factor": "factor"}

CLAIM_KINDS: dict[str, ClaimKind] = {
    kind.name: kind
    for kind in (
        ClaimKind(
            "reaches", {**_RUN, "below": "number"},
            {"within": "step", "sooner_than": "run", **_FACTOR},
            _sentence_reaches, _check_reaches,
            help="the loss drops below `below` (within `within` steps; at least `factor` times "
            "sooner than `sooner_than`, which may also never get there)",
        ),
        ClaimKind(
            "never_reaches", {**_RUN, "below": "number"}, {},
            lambda p: f"{p['run']} never reaches loss < {p['below']:g}",
            _check_never_reaches, help="the loss never drops below `below`",
        ),
        ClaimKind(
            "diverges", _RUN, {"within": "step"},
            lambda p: f"{p['run']} diverges{_within(p)}",
            _check_diverges, help="the engine stops the run because its numbers blew up",
        ),
        ClaimKind(
            "stays_finite", _RUN, {},
            lambda p: f"{p['run']} does not diverge",
            _check_stays_finite, help="the run never diverges",
        ),
        ClaimKind(
            "final_loss_less", _THAN, _FACTOR,
            lambda p: f"{p['run']} ends with a lower loss than {p['than']}{_times(p)}",
            _check_final_loss_less,
            help="final loss of `run` × `factor` < final loss of `than`; neither may diverge",
        ),
        ClaimKind(
            "final_loss_below", {**_RUN, "value": "number"}, {},
            lambda p: f"{p['run']} ends with loss < {p['value']:g}",
            _check_final_loss_below, help="the run ends below `value` without diverging",
        ),
        ClaimKind(
            "final_loss_above", {**_RUN, "value": "number"}, {},
            lambda p: f"{p['run']} ends with loss > {p['value']:g}",
            _check_final_loss_above, help="the run ends above `value`",
        ),
        ClaimKind(
            "best_final_loss_less", {"runs": "runs", "than": "runs"}, _FACTOR,
            lambda p: f"the best of {_runs_text(p['runs'])} ends lower than the best of "
            f"{_runs_text(p['than'])}{_times(p)}",
            _check_best_final_loss_less,
            help="the lowest final loss among `runs` × `factor` < the lowest among `than` "
            "(diverged runs do not count)",
        ),
        ClaimKind(
            "similar_final_loss", {"runs": "runs", "within": "positive"}, {},
            lambda p: f"{_runs_text(p['runs'])} end within {p['within'] * 100:g}% of each other",
            _check_similar_final_loss,
            help="(highest − lowest final loss) / lowest <= `within`; none may diverge",
        ),
        ClaimKind(
            "ends_near", {**_RUN, "point": "point", "tol": "positive"}, {},
            lambda p: f"{p['run']} ends within {p['tol']:g} of {_point_text(p['point'])}",
            _check_ends_near, needs="function",
            help="the final point is within `tol` of `point` (and the run did not diverge)",
        ),
        ClaimKind(
            "ends_far_from", {**_RUN, "point": "point", "distance": "positive"}, {},
            lambda p: f"{p['run']} ends more than {p['distance']:g} away from "
            f"{_point_text(p['point'])}",
            _check_ends_far_from, needs="function",
            help="the final point is further than `distance` from `point`",
        ),
        ClaimKind(
            "point_at", {**_RUN, "step": "step", "point": "point", "tol": "positive"}, {},
            lambda p: f"{p['run']} is within {p['tol']:g} of {_point_text(p['point'])} "
            f"at step {p['step']}",
            _check_point_at, needs="function",
            help="the point at `step` is within `tol` of `point`",
        ),
        ClaimKind(
            "direction_changes", {**_RUN, "axis": "axis", "within": "step"},
            {"at_least": "step", "at_most": "step"},
            _sentence_direction_changes, _check_direction_changes, needs="function",
            help="how often the step along `axis` flips sign (zig-zags) in the first `within` "
            f"steps, counting moves of at least {VISIBLE_MOVE:g}",
        ),
        ClaimKind(
            "swings_wider", {**_THAN, "axis": "axis", "within": "step"},
            {"after": "step", **_FACTOR},
            _sentence_swings_wider, _check_swings_wider, needs="function",
            help="the longest single move along `axis` (a zig-zag's swing from one side of a "
            "valley to the other) between steps `after` (0) and `within`: `run`'s >= `factor` × "
            "`than`'s",
        ),
        ClaimKind(
            "lr_at", {**_RUN, "step": "step", "value": "number"}, {"rel_tol": "positive"},
            lambda p: f"{p['run']} uses lr {p['value']:g} at step {p['step']}",
            _check_lr_at,
            help="the lr in force at `step` equals `value` (relative tolerance `rel_tol`, 1e-6)",
        ),
        ClaimKind(
            "lr_at_best_loss", {**_RUN, "low": "number", "high": "number"}, {},
            lambda p: f"{p['run']} has its lowest loss at an lr between {p['low']:g} and "
            f"{p['high']:g}",
            _check_lr_at_best_loss,
            help="the lr in force at the step of the lowest loss lies in [`low`, `high`]",
        ),
        ClaimKind(
            "lr_at_divergence", {**_RUN, "low": "number", "high": "number"}, {},
            lambda p: f"{p['run']} blows up once its lr is between {p['low']:g} and {p['high']:g}",
            _check_lr_at_divergence,
            help="the run diverges, and the lr of its last update lies in [`low`, `high`]",
        ),
        ClaimKind(
            "noisier", _THAN, _FACTOR,
            lambda p: f"{p['run']}'s loss curve is noisier than {p['than']}'s{_times(p)}",
            _check_noisier,
            help="mean |step-to-step loss change| / mean loss over the second half of the run "
            "(network labs: the mini-batch loss)",
        ),
        ClaimKind(
            "val_accuracy_at_least", {**_RUN, "value": "fraction"}, {},
            lambda p: f"{p['run']} ends with validation accuracy >= {p['value']:g}",
            _check_val_accuracy_at_least, needs="network",
            help="validation accuracy at the run's last evaluation",
        ),
        ClaimKind(
            "val_accuracy_at_most", {**_RUN, "value": "fraction"}, {},
            lambda p: f"{p['run']} ends with validation accuracy <= {p['value']:g}",
            _check_val_accuracy_at_most, needs="network",
            help="validation accuracy at the run's last evaluation",
        ),
        ClaimKind(
            "final_val_loss_less", _THAN, _FACTOR,
            lambda p: f"{p['run']} ends with a lower validation loss than {p['than']}{_times(p)}",
            _check_final_val_loss_less, needs="network",
            help="validation loss at the last evaluation: `run`'s × `factor` < `than`'s",
        ),
        ClaimKind(
            "overfits", {**_RUN, "factor": "factor"}, {},
            lambda p: f"{p['run']}'s validation loss ends at least {p['factor']:g}x above its best",
            _check_overfits, needs="network",
            help="final validation loss >= `factor` × the run's best validation loss",
        ),
        ClaimKind(
            "stops_early", _RUN, {"before": "step"},
            lambda p: f"{p['run']} stops early"
            + (f" before step {p['before']}" if p.get("before") is not None else ""),
            _check_stops_early, needs="network",
            help="early stopping ends the run (before step `before`)",
        ),
        ClaimKind(
            "generalization_gap_less", _THAN, {},
            lambda p: f"{p['run']} ends with a smaller gap between validation and training loss "
            f"than {p['than']}",
            _check_generalization_gap_less, needs="network",
            help="final (validation − training loss) of `run` < that of `than`",
        ),
        ClaimKind(
            "weight_norm_less", _THAN, _FACTOR,
            lambda p: f"{p['run']} ends with smaller weights than {p['than']}{_times(p)}",
            _check_weight_norm_less, needs="network",
            help="final ‖weights‖ (all linear/conv weight matrices): `run`'s × `factor` < `than`'s",
        ),
        ClaimKind(
            "gradient_ratio", _RUN, {"at_least": "positive", "at_most": "positive"},
            lambda p: f"at the start, {p['run']}'s first-layer gradient is {_bounds(p, 'x')} "
            "its last layer's",
            _check_gradient_ratio, needs="network",
            help="‖gradient of the first weight layer‖ / ‖of the last‖ at step 0 (vanishing "
            "gradients make it tiny)",
        ),
        ClaimKind(
            "sweep_beats",
            {**_RUN, "params": "params", "trials": "trials", "sampler": "sampler",
             "than_sampler": "sampler"},
            {"than_trials": "trials", "objective": "objective", **_FACTOR},
            _sentence_sweep, _check_sweep_beats,
            help="two seeded core.tools.sweep (Optuna) studies over `params` of the run's optimizer: "
            "the best value of the first × `factor` < the best of the second",
        ),
    )
}


# --------------------------------------------------------------------------------------------
# Reading and checking lesson files


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


def _text(value: Any, where: str, max_chars: int = MAX_TEXT_CHARS) -> str:
    if not isinstance(value, str) or not value.strip():
        raise LabError(where, f"must be a non-empty string, got {_show(value)}")
    if len(value) > max_chars:
        raise LabError(where, f"at most {max_chars} characters, got {len(value)}")
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise LabError(where, f"must be a finite number, got {_show(value)}")
    return float(value)


def _whole(value: Any, where: str, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (
            high is not None and value > high):
        allowed = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise LabError(where, f"must be a whole number {allowed}, got {_show(value)}")
    return value


def _field_value(kind: str, value: Any, where: str, runs: Mapping[str, bool]) -> Any:
    """Check one claim field of type ``kind``; ``runs`` maps every run label to is_network."""
    if kind == "run":
        if not isinstance(value, str):
            raise LabError(where, f"must be a run label, got {_show(value)}")
        if value not in runs:
            labels = ", ".join(repr(label) for label in runs)
            raise LabError(where, f"no run labelled {value!r} in the lesson's labs; runs: {labels}")
        return value
    if kind == "runs":
        if not isinstance(value, list) or not value:
            raise LabError(where, f"must be a non-empty list of run labels, got {_show(value)}")
        for i, item in enumerate(value):
            if isinstance(item, str) and item.endswith("*"):
                if not _expand_runs([item], runs):
                    raise LabError(f"{where}[{i}]", f"no run label starts with {item[:-1]!r}")
            else:
                _field_value("run", item, f"{where}[{i}]", runs)
        return list(value)
    if kind == "number":
        return _number(value, where)
    if kind in ("positive", "factor", "fraction"):
        number = _number(value, where)
        if kind == "positive" and number <= 0:
            raise LabError(where, f"must be > 0, got {number:g}")
        if kind == "factor" and number < 1:
            raise LabError(where, f"must be >= 1, got {number:g}")
        if kind == "fraction" and not 0 <= number <= 1:
            raise LabError(where, f"must be in [0, 1], got {number:g}")
        return number
    if kind == "step":
        return _whole(value, where, 0)
    if kind == "trials":
        return _whole(value, where, 1, 200)
    if kind == "point":
        if not isinstance(value, list) or len(value) != 2:
            raise LabError(where, f"must be a list [x, y], got {_show(value)}")
        return [_number(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if kind == "axis":
        if value not in ("x", "y"):
            raise LabError(where, f'must be "x" or "y", got {_show(value)}')
        return value
    if kind == "params":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise LabError(where, 'must be a list of sweep parameters like "lr=1e-3:1e-1:log", '
                           f"got {_show(value)}")
        return list(value)
    if kind in ("sampler", "objective"):
        allowed = SWEEP_SAMPLERS if kind == "sampler" else SWEEP_OBJECTIVES
        if value not in allowed:
            raise LabError(where, f"must be one of {', '.join(allowed)}, got {_show(value)}")
        return value
    raise AssertionError(f"unknown claim field type {kind!r}")


def _check_sweep_space(params: Mapping[str, Any], where: str, optimizer: str) -> None:
    """Refuse a sweep claim whose search space `core.tools.sweep` would refuse."""
    try:
        from core.tools.sweep import build_search_space
    except ImportError as exc:  # Optuna missing: say so now, not in the middle of a check
        raise LabError(f"{where}.kind", f"needs core.tools.sweep and Optuna ({exc})") from None
    try:
        build_search_space(optimizer, tuple(params["params"]))
    except LabError as exc:
        raise LabError(f"{where}.params", exc.message) from None


def _claim_from_dict(data: Any, index: int, runs: Mapping[str, bool],
                     optimizers: Mapping[str, str]) -> Claim:
    """Check one entry of "claims"; ``runs``: label → is_network, ``optimizers``: label → name."""
    where = f"claims[{index}]"
    if not isinstance(data, dict):
        raise LabError(where, f"must be a JSON object, got {_show(data)}")
    kind_name = data.get("kind")
    if kind_name not in CLAIM_KINDS:
        raise LabError(f"{where}.kind",
                       f"unknown claim kind {_show(kind_name)}; kinds: {', '.join(CLAIM_KINDS)}")
    kind = CLAIM_KINDS[kind_name]
    check_keys(data, {"kind", *kind.fields}, {"kind", *kind.required}, where)
    params = {key: _field_value(kind.fields[key], value, f"{where}.{key}", runs)
              for key, value in data.items() if key != "kind"}
    if kind.needs != "any":
        for key, value in params.items():
            if kind.fields[key] not in ("run", "runs"):
                continue
            for label in _expand_runs(value, runs) if isinstance(value, list) else [value]:
                if runs[label] != (kind.needs == "network"):
                    raise LabError(f"{where}.{key}", f"{kind_name} needs a run of a {kind.needs} "
                                   f"lab; {label!r} is not")
    if params.get("after", -1) >= params.get("within", math.inf):
        raise LabError(f"{where}.after", f"must be < within ({params['within']})")
    if "low" in params and params["low"] > params["high"]:
        raise LabError(f"{where}.low", f"must be <= high ({params['high']:g})")
    if {"at_least", "at_most"} <= set(kind.optional) and not {"at_least", "at_most"} & set(params):
        raise LabError(f"{where}.at_least", "give at_least, at_most or both")
    for key in ("than", "sooner_than"):
        if kind.fields.get(key) == "run" and params.get(key) == params.get("run"):
            raise LabError(f"{where}.{key}", "compares a run with itself")
    if kind_name == "sweep_beats":
        _check_sweep_space(params, where, optimizers[params["run"]])
    return Claim(kind_name, params, index)


def _lab_paths(value: Any, folder: Path) -> list[Path]:
    names = value if isinstance(value, list) else [value]
    if not names or len(names) > MAX_LABS:
        raise LabError("lab", f"must be a lab file name or a list of 1 to {MAX_LABS} of them")
    paths = []
    for i, name in enumerate(names):
        where = f"lab[{i}]" if isinstance(value, list) else "lab"
        if not isinstance(name, str) or not name.endswith(".lab.json"):
            raise LabError(where, f'must be a file name ending in ".lab.json", got {_show(name)}')
        relative = Path(name)
        if relative.is_absolute() or ".." in relative.parts:
            raise LabError(where, f"must be a file inside the lesson's folder, got {_show(name)}")
        path = folder / relative
        if not path.is_file():
            raise LabError(where, f"no such lab file {name!r} next to the lesson")
        paths.append(path)
    if len(set(paths)) != len(paths):
        raise LabError("lab", "names the same lab file twice")
    return paths


def lesson_from_dict(data: Any, folder: Path, expected_name: str | None = None) -> Lesson:
    """Check a parsed lesson.json whose labs lie in ``folder``; raise `LabError` naming the field.

    ``expected_name``: the name the lesson must have (its folder's), or None.
    """
    if not isinstance(data, dict):
        raise LabError("", f"must be a JSON object, got {_show(data)}")
    check_keys(data, set(_KEYS), _REQUIRED_KEYS, "")
    if data["format"] != FORMAT:
        raise LabError("format", f'must be "{FORMAT}", got {_show(data["format"])}')
    name = data["name"]
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise LabError("name", "must be 1-60 lower-case letters, digits or _, starting with a "
                       f"letter or digit, got {_show(name)}")
    if expected_name is not None and name != expected_name:
        raise LabError("name", f"must match the lesson's folder {expected_name!r}, got {name!r}")
    title, summary = _text(data["title"], "title", 80), _text(data["summary"], "summary", 200)
    for key, text in (("title", title), ("summary", summary)):
        if "\n" in text:
            raise LabError(key, "must be a single line")
    notice = data["notice"]
    if not isinstance(notice, list) or not notice:
        raise LabError("notice", f"must be a non-empty list of strings, got {_show(notice)}")
    notice = tuple(_text(v, f"notice[{i}]", MAX_NOTICE_CHARS) for i, v in enumerate(notice))
    hide = data.get("hide_panels", [])
    if not isinstance(hide, list):
        raise LabError("hide_panels", f"must be a list of panel names, got {_show(hide)}")
    for i, panel in enumerate(hide):
        if panel not in PANELS:
            raise LabError(f"hide_panels[{i}]",
                           f"must be one of {', '.join(PANELS)}, got {_show(panel)}")
    lab_paths = _lab_paths(data["lab"], folder)
    labs = [load_lab(path) for path in lab_paths]  # a LabError here names the lab file
    runs: dict[str, bool] = {}
    optimizers: dict[str, str] = {}
    for lab_index, lab in enumerate(labs):
        for run in lab.enabled_runs():
            if run.label in runs:
                raise LabError(f"lab[{lab_index}]", f"run label {run.label!r} is in two of the "
                               "lesson's labs; claims name runs by label, so labels must be unique")
            runs[run.label] = lab.is_network
            optimizers[run.label] = run.optimizer
    claims = data["claims"]
    if not isinstance(claims, list) or not claims:
        raise LabError("claims", "must be a non-empty list: every measurable sentence of the text "
                       "needs a claim that checks it")
    return Lesson(
        name=name,
        title=title,
        summary=summary,
        notice=notice,
        why=_text(data["why"], "why"),
        question=_text(data["question"], "question"),
        labs=tuple(labs),
        lab_paths=tuple(lab_paths),
        claims=tuple(_claim_from_dict(c, i, runs, optimizers) for i, c in enumerate(claims)),
        hide_panels=tuple(dict.fromkeys(hide)),
    )


def lesson_names() -> list[str]:
    """The names of the lessons in `LESSONS_DIR`, sorted, without loading them."""
    if not LESSONS_DIR.is_dir():
        return []
    return sorted(p.name for p in LESSONS_DIR.iterdir() if (p / LESSON_FILE).is_file())


def _lesson_file(name_or_path: str | Path) -> tuple[Path, str | None]:
    """The lesson.json a name or a path means, and the name its folder requires (or None).

    A plain name (``"ravine"``) is a built-in lesson in `LESSONS_DIR`; anything else is a path
    to a lesson's folder or to its lesson.json.
    """
    text = str(name_or_path)
    if isinstance(name_or_path, str) and _NAME_RE.match(text):
        builtin = LESSONS_DIR / text / LESSON_FILE
        if builtin.is_file():
            return builtin, text
        if not Path(text).exists():
            known = ", ".join(lesson_names()) or "none"
            raise LabError("lesson", f"unknown lesson {text!r}; the lessons are: {known}")
    path = Path(name_or_path)
    if path.is_dir():
        path = path / LESSON_FILE
    if not path.is_file():
        raise LabError("", "no such lesson file", str(path))
    return path, path.parent.name if _NAME_RE.match(path.parent.name) else None


def load_lesson(name_or_path: str | Path) -> Lesson:
    """A lesson by name (``"ravine"``, from `LESSONS_DIR`) or by path (its folder or lesson.json).

    Every problem raises `LabError` naming the file and the field.
    """
    path, expected_name = _lesson_file(name_or_path)
    source = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_LESSON_BYTES:
            raise LabError("", f"{size} bytes; a lesson file may be at most {MAX_LESSON_BYTES}",
                           source)
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise LabError("", "not UTF-8 text; a lesson file is JSON", source) from None
    except OSError as exc:
        raise LabError("", f"cannot read the file ({exc.strerror or exc})", source) from None
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise LabError("", f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                       source) from None
    except (ValueError, RecursionError) as exc:
        raise LabError("", str(exc) or "nested too deeply", source) from None
    try:
        lesson = lesson_from_dict(data, path.parent, expected_name)
    except LabError as exc:
        # An error inside a lab file already names that file; the others are about lesson.json.
        raise (exc if exc.source else exc.from_file(source)) from None
    return replace(lesson, path=path)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in a lesson file (numbers must be finite)")


def list_lessons() -> list[Lesson]:
    """Every lesson in `LESSONS_DIR`, sorted by name. A broken lesson raises its `LabError`."""
    return [load_lesson(LESSONS_DIR / name) for name in lesson_names()]


# --------------------------------------------------------------------------------------------
# Checking claims


def evaluate_claims(claims: tuple[Claim, ...] | list[Claim], traces: Traces) -> list[ClaimResult]:
    """Judge claims against traces already gathered by `trace_labs`."""
    results = []
    for claim in claims:
        holds, measured, values = CLAIM_KINDS[claim.kind].check(claim.params, traces)
        results.append(ClaimResult(claim, bool(holds), measured, values))
    return results


def check_claims(lesson: Lesson) -> list[ClaimResult]:
    """Run the lesson's labs headless with the real engines and judge each of its claims."""
    return evaluate_claims(lesson.claims, trace_labs(lesson.labs))
