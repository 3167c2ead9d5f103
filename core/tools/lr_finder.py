"""The learning-rate range test (Smith 2017, "Cyclical learning rates"; fastai's ``lr_find``).

Train for a few steps while the learning rate grows exponentially from ``lr_min`` to ``lr_max``
and watch the loss: at first nothing happens (lr too small), then the loss falls, then it blows
up (lr too large). A good learning rate lies on the falling part. Three common rules read a
suggestion off the curve; they are computed side by side because they disagree, and *why* they
disagree tells the user how sharp the stable range is (`explain`).

The ramp is a real ``torch.optim.lr_scheduler.LambdaLR`` over the run's own optimizer (its other
hyperparameters kept, its schedule ignored): ``lr_t = lr_min · (lr_max / lr_min) ** (t / (N-1))``
in closed form, so step N-1 lands exactly on ``lr_max`` without the rounding drift of a chained
``ExponentialLR``.

Network labs train the run's model through the race's own training step
(`core.engine.training_step.train_step`: the same forward, L1/L2 penalties, clipping and gradient
norm) on the engine's mini-batch order, with the run's own dropout stream
(`core.problems.models.dropout_stream`), so at a constant lr the range test's losses are the
race's first losses exactly (the tests check). The weights, buffers, train/eval mode and dropout
generators are put back afterwards, bit for bit (the test checks ``state_dict``). Function labs
move a *copy* of the start point. Nothing draws from torch's global generator, so a range test in
one thread changes no other work's numbers.

Smoothing: the raw mini-batch loss is noisy, so the rules read an exponential moving average
with bias correction (as Adam's moments; the app's one EMA, `core.engine.smoothing.DebiasedEma`):
``a_t = β·a_{t-1} + (1-β)·loss_t``, ``smoothed_t = a_t / (1 - β^(t+1))``. β = 0.98 is fastai's choice; the bias correction makes the
first points honest instead of starting from 0. The test stops once the smoothed loss exceeds
``divergence_factor`` × its best (fastai: 4×) or the loss turns NaN/Inf.

The rules (all on the smoothed curve with a log-lr axis, ignoring the first tenth and the last
five points like fastai, where the EMA is still warming up and the blow-up has begun):

* **steepest** — the lr where the smoothed loss falls fastest per decade of lr (minimum of the
  finite difference d loss / d log10 lr). Fast learning, but often near the edge.
* **valley** — fastai's "valley" rule (ESRI's contribution, fastai ≥ 2.5): find the longest
  *valley*, i.e. the longest strictly decreasing subsequence of the smoothed curve (O(n²)
  dynamic programming, n ≤ a few hundred), then take the point halfway into its middle third
  (index ``start + ⌊len/3⌋ + ⌊len/6⌋``). It ignores short dips caused by noise and sits safely
  inside the long descent.
* **minimum/10** — the lr at the lowest smoothed loss, divided by 10 (the oldest rule of
  thumb): at the minimum the lr is already too large to keep improving, a tenth is safe.
"""

from __future__ import annotations

import copy
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from core.errors import LabError
from core.lab.format import Lab, RunSpec

RULES = ("steepest", "valley", "minimum/10")
DEFAULT_LR_MIN = 1e-6
DEFAULT_LR_MAX = 1.0
DEFAULT_STEPS = 100
DEFAULT_SMOOTHING = 0.98  # fastai's β
DEFAULT_DIVERGENCE_FACTOR = 4.0  # fastai stops at 4× the best smoothed loss
MAX_STEPS = 10_000


@dataclass(frozen=True)
class LrFindResult:
    """The curve of one range test and what each rule suggests.

    ``lrs[i]`` is the lr of the update made after measuring ``losses[i]`` (the loss at the
    weights produced by the updates before it), as fastai records it.
    """

    run_label: str
    optimizer: str
    lrs: np.ndarray  # (n,) float64, increasing
    losses: np.ndarray  # (n,) raw losses (mini-batch for networks), all finite
    smoothed: np.ndarray  # (n,) bias-corrected EMA of the raw losses
    suggestions: dict[str, float]  # rule (see RULES) -> lr
    suggestion_index: dict[str, int]  # rule -> index into lrs / smoothed (for markers)
    lr_min: float
    lr_max: float
    steps_planned: int
    stop_reason: str  # "finished the ramp" or why it stopped early
    diverged: bool = False
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        """suggestions.json of ``main.py lr-find``."""
        return {
            "run": self.run_label,
            "optimizer": self.optimizer,
            "suggestions": {rule: float(lr) for rule, lr in self.suggestions.items()},
            "explanation": explain(self),
            "lr_min": self.lr_min,
            "lr_max": self.lr_max,
            "steps_planned": self.steps_planned,
            "steps_run": int(len(self.lrs)),
            "stop_reason": self.stop_reason,
            "diverged": self.diverged,
            "best_smoothed_loss": float(np.min(self.smoothed)) if len(self.smoothed) else None,
        }


# --------------------------------------------------------------------------------------------
# The test


def _pick_run(lab: Lab, run_label: str | None) -> RunSpec:
    runs = lab.enabled_runs() or lab.runs
    if not runs:
        raise LabError("runs", "the lab has no run to test; add one")
    if run_label is None:
        return runs[0]
    return lab.run_labelled(run_label)


def check_range(lr_min: float, lr_max: float, steps: int) -> None:
    """Refuse a ramp that cannot work, naming the flag (the CLI's and the GUI's wording)."""
    for name, value in (("--min", lr_min), ("--max", lr_max)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise LabError(name, f"must be a positive learning rate, got {value!r}")
    if not lr_min < lr_max:
        raise LabError("--min", f"must be below --max ({lr_max:g}), got {lr_min:g}")
    if not (isinstance(steps, int) and 5 <= steps <= MAX_STEPS):
        raise LabError("--steps", f"must be a whole number in [5, {MAX_STEPS}], got {steps!r}")


def lr_range_test(
    lab: Lab,
    run: str | None = None,
    lr_min: float = DEFAULT_LR_MIN,
    lr_max: float = DEFAULT_LR_MAX,
    steps: int = DEFAULT_STEPS,
    *,
    divergence_factor: float = DEFAULT_DIVERGENCE_FACTOR,
    smoothing: float = DEFAULT_SMOOTHING,
    model: nn.Module | None = None,
    stop: threading.Event | None = None,
    on_step: Callable[[int, float, float], None] | None = None,
) -> LrFindResult:
    """Run the range test for ``run`` (a label; default the first enabled run) of ``lab``.

    ``model`` (network labs): test this module, e.g. the GUI's live model, and restore it
    afterwards; by default the race's initial model is built from the lab's seed. ``stop`` ends
    the ramp early (the curve so far is still analysed); ``on_step(i, lr, loss)`` reports
    progress.
    """
    check_range(lr_min, lr_max, steps)
    if not divergence_factor > 1:
        raise LabError("divergence_factor", f"must be > 1, got {divergence_factor!r}")
    if not 0 <= smoothing < 1:
        raise LabError("smoothing", f"must be in [0, 1), got {smoothing!r}")
    if lab.problem.kind == "rl":
        raise LabError("problem.kind", "the LR range test ramps the lr over one loss on fixed "
                       "data; an rl agent's data changes with its own policy, so rl labs have none")
    spec = _pick_run(lab, run)
    ratio = lr_max / lr_min
    lrs, losses, smoothed, stop_reason, diverged = _ramp(
        lab, spec, model, lr_min, lambda t: ratio ** (min(t, steps - 1) / (steps - 1)), steps,
        divergence_factor=divergence_factor, smoothing=smoothing, stop=stop, on_step=on_step)
    if len(lrs) < 2 and stop_reason == "cancelled":
        raise LabError("lr-find", "cancelled before the range test measured two points")
    if len(lrs) < 2:
        raise LabError(
            "--min",
            f"the loss diverged at once (lr {lr_min:g}); start the ramp at a smaller --min",
        )
    lrs_a, losses_a, smoothed_a = (np.asarray(v, dtype=np.float64) for v in (lrs, losses, smoothed))
    index = suggest(lrs_a, smoothed_a)
    return LrFindResult(
        run_label=spec.label,
        optimizer=spec.optimizer,
        lrs=lrs_a,
        losses=losses_a,
        smoothed=smoothed_a,
        suggestions={rule: float(lrs_a[i]) / (10.0 if rule == "minimum/10" else 1.0)
                     for rule, i in index.items()},
        suggestion_index=index,
        lr_min=float(lr_min),
        lr_max=float(lr_max),
        steps_planned=steps,
        stop_reason=stop_reason,
        diverged=diverged,
    )


def _ramp(lab: Lab, spec: RunSpec, model: nn.Module | None, lr_min: float,
          factor: Callable[[int], float], steps: int, *, divergence_factor: float,
          smoothing: float, stop: threading.Event | None = None,
          on_step: Callable[[int, float, float], None] | None = None):
    """Train ``spec`` for up to ``steps`` steps at ``lr_min · factor(t)`` (a real LambdaLR over
    every optimizer of the run: Muon has two), measuring each step's loss before its update.
    Returns (lrs, losses, smoothed, stop reason, diverged)."""
    from core.engine.smoothing import DebiasedEma

    if lab.is_network:
        measure, update, optimizers, restore = _network_setup(lab, spec, model)
    else:
        measure, update, optimizers, restore = _function_setup(lab, spec)
    lrs, losses, smoothed = [], [], []
    stop_reason, diverged = "finished the ramp", False
    if "lr" not in optimizers[0].param_groups[0]:
        restore()
        raise LabError("run", f"{type(optimizers[0]).__name__} has no learning rate to ramp "
                              "(it sets its own step size)")
    try:
        schedulers = []
        for opt in optimizers:
            for group in opt.param_groups:
                group["lr"] = lr_min
                group["initial_lr"] = lr_min
            schedulers.append(torch.optim.lr_scheduler.LambdaLR(opt, factor))
        ema, best = DebiasedEma(smoothing), math.inf
        for i in range(steps):
            if stop is not None and stop.is_set():
                stop_reason = "cancelled"
                break
            lr = float(optimizers[0].param_groups[0]["lr"])
            loss = measure(i)
            if not math.isfinite(loss):
                stop_reason, diverged = f"the loss became {loss} at lr {lr:.3g}", True
                break
            value = ema.push(loss)
            lrs.append(lr)
            losses.append(loss)
            smoothed.append(value)
            if on_step is not None:
                on_step(i, lr, loss)
            best = min(best, value)
            # factor × best for positive losses; for a function whose minimum is negative,
            # the same margin measured from the best value.
            limit = best + (divergence_factor - 1) * max(abs(best), 1e-300)
            if i > 0 and value > limit:
                stop_reason = (
                    f"the smoothed loss passed {divergence_factor:g}x its best at lr {lr:.3g}"
                )
                diverged = True
                break
            update()
            for scheduler in schedulers:
                scheduler.step()
    finally:
        restore()
    return lrs, losses, smoothed, stop_reason, diverged


def _function_setup(lab: Lab, spec: RunSpec):
    """Measure and update a copy of the function lab's start point (nothing to restore)."""
    from core.engine.function_race import DTYPE
    from core.engine.training_step import RunUpdate
    from core.optim.catalog import build_optimizer
    from core.problems.functions import get_function

    objective = get_function(lab.problem.function)
    start = lab.problem.start if lab.problem.start is not None else objective.start
    point = torch.tensor(start, dtype=DTYPE, requires_grad=True)
    optimizer = build_optimizer(spec.optimizer, spec.params, [point])
    adapters = RunUpdate.of(spec.optimizer)
    # A training curve: Schedule-Free stays at y, where its gradients are taken.
    adapters.to_train([optimizer])

    @torch.enable_grad()
    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = objective(point[0], point[1])
        loss.backward(create_graph=adapters.create_graph)
        return loss

    def measure(_: int) -> float:
        return float(closure().detach())

    def update() -> None:
        # L-BFGS and SAM re-evaluate the function inside their step, as in the engine.
        adapters.step([optimizer], closure)

    return measure, update, [optimizer], lambda: None


def _network_setup(lab: Lab, spec: RunSpec, model: nn.Module | None):
    """The race's training step (`core.engine.training_step.train_step`) of the run's model on
    the engine's batch order and the run's dropout stream; restore the model afterwards."""
    # The engine's own pieces, so the range test trains exactly as the race does: the same
    # step, batch order, and Muon's split of matrices (Muon) and the rest (AdamW).
    from core.engine.race_setup import criterion_for, initial_model
    from core.engine.training_step import (
        BatchOrder,
        RunUpdate,
        optimizers_for,
        run_closure,
        train_step,
    )
    from core.problems.datasets.build import make_dataset
    from core.problems.models import dropout_stream, restore_dropout, set_dropout_generator

    problem = lab.problem
    data = make_dataset(problem.dataset, lab.seed, base_dir=lab.base_path)
    if model is None:
        model = initial_model(lab, data)  # the race's seed-0 initial weights
    device = next(model.parameters()).device
    saved_state = copy.deepcopy(model.state_dict())
    was_training = model.training
    criterion = criterion_for(problem, data, device)  # the race's, class weights included
    x_train = torch.as_tensor(data.x_train, device=device)
    y_train = torch.as_tensor(data.y_train, device=device)
    order = BatchOrder(len(x_train), problem.batch_size, lab.seed + 1)
    optimizers = optimizers_for(spec, model)
    adapters = RunUpdate.of(spec.optimizer)  # closure, create_graph, Schedule-Free's modes
    adapters.to_train(optimizers)  # a training curve: Schedule-Free stays at y
    batch: list[tuple[torch.Tensor, torch.Tensor]] = []
    # The run's own dropout stream, as the race's seed 0 gives it (by its place among the
    # enabled runs); the model's own generators come back in `restore`.
    enabled = [r.label for r in lab.enabled_runs()]
    index = enabled.index(spec.label) if spec.label in enabled else 0
    saved_generators = set_dropout_generator(model, dropout_stream(lab.seed, index, device))

    def measure(i: int) -> float:
        idx = order.batch(i)
        xb = x_train if idx is None else x_train[idx]
        yb = y_train if idx is None else y_train[idx]
        batch[:] = [(xb, yb)]
        loss, _grad_norm, _total = train_step(spec, model, optimizers, criterion, xb, yb,
                                              adapters.create_graph)
        return loss

    def restore() -> None:
        with torch.no_grad():
            model.load_state_dict(saved_state)
        for p in model.parameters():
            p.grad = None
        model.train(was_training)
        restore_dropout(model, saved_generators)

    def update() -> None:
        closure = None
        if adapters.closure:  # re-evaluates this step's batch, as the race does
            closure = run_closure(spec, model, optimizers, criterion, *batch[0], adapters)
        adapters.step(optimizers, closure)

    return measure, update, optimizers, restore


# --------------------------------------------------------------------------------------------
# The rules


def _window(n: int) -> tuple[int, int]:
    """fastai's window: skip the first tenth (EMA warm-up) and the last 5 points (blow-up)."""
    start, end = n // 10, n - 5
    if end - start < 3:  # a very short curve: use all of it
        return 0, n
    return start, end


def longest_valley(values: np.ndarray) -> tuple[int, int]:
    """(start, end) of the longest strictly decreasing subsequence, fastai's valley algorithm."""
    n = len(values)
    length = [1] * n
    max_start, max_end = 0, 0
    for i in range(1, n):
        for j in range(i):
            if values[i] < values[j] and length[i] < length[j] + 1:
                length[i] = length[j] + 1
            if length[max_end] < length[i]:
                max_end = i
                max_start = max_end - length[max_end]
    return max_start, max_end


def suggest(lrs: np.ndarray, smoothed: np.ndarray) -> dict[str, int]:
    """Index (into ``lrs``) each rule picks; ``minimum/10`` gives the minimum's index."""
    start, end = _window(len(lrs))
    lr, loss = lrs[start:end], smoothed[start:end]
    slope = np.diff(loss) / np.diff(np.log10(lr)) if len(lr) > 1 else np.zeros(1)
    steepest = start + int(np.argmin(slope))
    v_start, v_end = longest_valley(loss)
    section = (v_end - v_start) / 3
    valley = start + min(len(lr) - 1, max(0, v_start + int(section) + int(section / 2)))
    minimum = start + int(np.argmin(loss))
    return {"steepest": steepest, "valley": valley, "minimum/10": minimum}


def explain(result: LrFindResult) -> str:
    """A few sentences: what each rule picked, and why they differ on this curve."""
    s = result.suggestions
    low, high = min(s.values()), max(s.values())
    spread = high / low if low > 0 else math.inf
    lr_at_min = float(result.lrs[result.suggestion_index["minimum/10"]])
    picked = (
        f"Steepest descent picks {s['steepest']:.2g} (where the loss falls fastest per decade "
        f"of lr), valley {s['valley']:.2g} (halfway into the longest stretch of falling loss) "
        f"and minimum/10 {s['minimum/10']:.2g} (a tenth of {lr_at_min:.2g}, the lr at the "
        "lowest loss)."
    )
    never_diverged = not result.diverged and result.stop_reason.startswith("finished")
    caveat = (
        " The ramp never blew up, so the true minimum may lie beyond the end of the range and "
        "minimum/10 is then too small; try a larger maximum."
        if never_diverged else ""
    )
    if spread <= 3:
        return picked + (
            f" They agree within a factor of {spread:.1f}: the loss falls steadily over a wide "
            "range of learning rates, so any of them is a safe start." + caveat
        )
    steep_to_min = s["steepest"] / lr_at_min
    if s["steepest"] < s["valley"]:
        why = (
            "the loss drops most sharply where it first starts to move, early in the ramp, "
            "while the valley rule waits for the long, steady part of the descent"
        )
    elif steep_to_min > 0.3:
        why = (
            f"the loss falls fastest late, at {steep_to_min:.0%} of the lr where it bottoms "
            "out, close to the edge of stability; the valley rule stays in the middle of the "
            "long descent and minimum/10 keeps a fixed tenfold margin"
        )
    else:
        why = (
            "the fastest drop and the middle of the long descent are different points of a "
            "curve that falls over several decades of lr; minimum/10 only looks at where the "
            "loss bottoms out"
        )
    return picked + f" They differ by a factor of {spread:.0f} because {why}." + caveat


def apply_lr(lab: Lab, run_label: str, lr: float) -> Lab:
    """"Use this lr": the lab with ``run_label``'s ``lr`` set (validated like a file)."""
    from core.lab.format import validate_lab

    for i, run in enumerate(lab.runs):
        if run.label == run_label:
            new_run = RunSpec(**{**run.__dict__, "params": {**run.params, "lr": float(lr)}})
            return validate_lab(lab.with_run(i, new_run))
    raise LabError("run", f"no run labelled {run_label!r}")
