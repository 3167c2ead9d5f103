"""The engine: steps every run of a lab side by side and yields plain records.

One generator serves the GUI's worker thread and the headless ``main.py run`` alike, so both give
identical numbers. Records carry numpy arrays and floats only — never tensors, never Qt objects.

Function races (2-D test functions)
-----------------------------------
All runs' points live in one ``(R, 2)`` float64 tensor, so the function and its gradient are
evaluated *once* per step for every run together. Each run's optimizer owns a view ``points[i]``
whose ``.grad`` is the view ``grads[i]``: torch.optim steps its own row in place, with exactly the
update rule of a plain ``opt.step()`` loop (checked to 1e-7 in the tests). L-BFGS re-evaluates the
function inside its step, so it gets a private leaf tensor and its own closure instead.

Step numbering follows the lab format: step 0 is the start before any update, step t the state
after t updates. The record of step t holds the point, its loss, the gradient norm there and the lr
that the update from t to t+1 uses.

A run whose loss, gradient or point turns NaN/Inf, or explodes (see `EXPLODE_FACTOR`), is frozen at
its last finite state and reported once in `StepRecord.diverged`; the others go on. Nothing
non-finite ever leaves the engine, so plots never receive NaN.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from core.functions import Objective, get_function
from core.lab import Lab, RunSpec
from core.optimizers import build_optimizer, get_optimizer_info
from core.schedules import Schedule

# A loss whose magnitude passes EXPLODE_FACTOR × (|start loss| + 1), or a coordinate beyond
# MAX_COORDINATE, counts as divergence: far past any plot, and on the way to Inf anyway.
EXPLODE_FACTOR = 1e6
MAX_COORDINATE = 1e6
DTYPE = torch.float64


@dataclass(frozen=True)
class Divergence:
    """A run stopped because its numbers blew up."""

    run: int  # index among the race's runs (the lab's enabled runs, in order)
    label: str
    step: int  # the first step whose state was not finite / exploded
    reason: str


@dataclass(frozen=True)
class StepRecord:
    """Every run's state at one step. Arrays have one row per run (the lab's enabled runs).

    A run that has diverged keeps its last finite values here, with ``alive`` False.
    """

    step: int
    point: np.ndarray  # (R, 2) float64
    loss: np.ndarray  # (R,) float64
    lr: np.ndarray  # (R,) float64: the lr used for the update from this step to the next
    grad_norm: np.ndarray  # (R,) float64
    alive: np.ndarray  # (R,) bool
    diverged: tuple[Divergence, ...] = ()


class FunctionRace:
    """The state of a race on a 2-D function; `records()` advances it.

    Kept as an object (not only a generator) so that a caller can inspect the optimizers and
    the points between steps — the GUI's step readouts and branching build on that.
    """

    def __init__(self, lab: Lab):
        self.lab = lab
        self.runs: tuple[RunSpec, ...] = lab.enabled_runs()
        self.labels = tuple(r.label for r in self.runs)
        self.objective: Objective = get_function(lab.problem.function)
        start = lab.problem.start if lab.problem.start is not None else self.objective.start
        self.start = (float(start[0]), float(start[1]))
        torch.manual_seed(lab.seed)

        count = len(self.runs)
        self.points = torch.tensor([self.start] * count, dtype=DTYPE).reshape(count, 2)
        self.grads = torch.zeros_like(self.points)
        self.optimizers: list[torch.optim.Optimizer] = []
        self.schedules: list[Schedule] = []
        self._closures: dict[int, tuple[torch.Tensor, object]] = {}
        for i, run in enumerate(self.runs):
            if get_optimizer_info(run.optimizer).needs_closure:
                own = self.points[i].detach().clone().requires_grad_(True)
                opt = build_optimizer(run.optimizer, run.params, [own])
                self._closures[i] = (own, self._make_closure(own))
            else:
                view = self.points[i]
                view.grad = self.grads[i]
                opt = build_optimizer(run.optimizer, run.params, [view])
            self.optimizers.append(opt)
            sched = run.schedule
            self.schedules.append(
                Schedule(opt, sched.name, sched.params, lab.steps)
                if sched is not None
                else Schedule(opt, "constant", {}, lab.steps)
            )
        self.alive = np.ones(count, dtype=bool)
        self.step = 0
        self.wall_s = np.zeros(count)
        self.diverged: list[Divergence | None] = [None] * count
        self._last_loss = np.full(count, np.nan)
        self._last_point = self.points.numpy().copy()
        self._last_grad_norm = np.zeros(count)
        self._start_loss: np.ndarray | None = None

    def _make_closure(self, own: torch.Tensor):
        f = self.objective

        def closure() -> torch.Tensor:
            own.grad = None
            loss = f(own[0], own[1])
            loss.backward()
            return loss

        return closure

    # ----------------------------------------------------------------------------------------

    def _evaluate(self) -> tuple[np.ndarray, np.ndarray]:
        """Loss and gradient at every run's current point, in one batched call."""
        x = self.points.detach().requires_grad_(True)
        loss = self.objective(x[:, 0], x[:, 1])
        loss.sum().backward()
        self.grads.copy_(x.grad)
        return loss.detach().numpy().copy(), torch.linalg.vector_norm(x.grad, dim=1).numpy().copy()

    def _check(self, loss: np.ndarray, grad_norm: np.ndarray) -> list[Divergence]:
        """Freeze runs whose state at this step is not finite or has exploded."""
        point = self.points.numpy()
        if self._start_loss is None:
            self._start_loss = np.where(np.isfinite(loss), np.abs(loss), 0.0)
        events = []
        # One vectorised screen per step; only the rows it flags are explained one by one.
        with np.errstate(invalid="ignore"):
            suspect = (
                ~np.all(np.isfinite(point), axis=1)
                | (np.max(np.abs(point), axis=1) > MAX_COORDINATE)
                | ~np.isfinite(loss)
                | (np.abs(loss) > EXPLODE_FACTOR * (self._start_loss + 1.0))
                | ~np.isfinite(grad_norm)
            )
        for i in np.flatnonzero(self.alive & suspect):
            reason = None
            if not np.all(np.isfinite(point[i])):
                reason = "the point became NaN/Inf"
            elif np.max(np.abs(point[i])) > MAX_COORDINATE:
                reason = f"the point left the box |x|, |y| <= {MAX_COORDINATE:g}"
            elif math.isnan(loss[i]):
                reason = "the loss became NaN"
            elif math.isinf(loss[i]):
                reason = "the loss became infinite"
            elif abs(loss[i]) > EXPLODE_FACTOR * (self._start_loss[i] + 1.0):
                reason = (
                    f"the loss exploded to {loss[i]:.3g} "
                    f"(more than {EXPLODE_FACTOR:g} x (|start loss| + 1))"
                )
            elif not math.isfinite(grad_norm[i]):
                reason = "the gradient became NaN/Inf"
            if reason is not None:
                self.alive[i] = False
                # Park the frozen run on its last finite point so the shared evaluation stays
                # finite (its row is never stepped again).
                with torch.no_grad():
                    self.points[i] = torch.from_numpy(self._last_point[i])
                event = Divergence(int(i), self.labels[i], self.step, reason)
                self.diverged[i] = event
                events.append(event)
        return events

    def _record(self, loss: np.ndarray, grad_norm: np.ndarray, events) -> StepRecord:
        alive = self.alive
        self._last_loss = np.where(alive, loss, self._last_loss)
        self._last_grad_norm = np.where(alive, grad_norm, self._last_grad_norm)
        self._last_point = np.where(alive[:, None], self.points.numpy(), self._last_point)
        lr = np.array([float(opt.param_groups[0]["lr"]) for opt in self.optimizers])
        return StepRecord(
            step=self.step,
            point=self._last_point.copy(),
            loss=self._last_loss.copy(),
            lr=lr,
            grad_norm=self._last_grad_norm.copy(),
            alive=alive.copy(),
            diverged=tuple(events),
        )

    def _advance(self, loss: np.ndarray) -> None:
        """One optimizer step and one schedule step for every live run."""
        for i in np.flatnonzero(self.alive):
            t0 = time.perf_counter()
            opt = self.optimizers[i]
            if i in self._closures:
                own, closure = self._closures[i]
                opt.step(closure)
                with torch.no_grad():
                    self.points[i].copy_(own)
            else:
                opt.step()
            self.schedules[i].step(float(loss[i]))
            self.wall_s[i] += time.perf_counter() - t0
        self.step += 1

    def records(self, stop: threading.Event | None = None) -> Iterator[StepRecord]:
        """Yield the record of every step from the current one to ``lab.steps``.

        Checks ``stop`` before every step: a set event ends the generator cleanly.
        """
        while True:
            if stop is not None and stop.is_set():
                return
            t0 = time.perf_counter()
            loss, grad_norm = self._evaluate()
            alive_now = max(1, int(self.alive.sum()))
            self.wall_s[self.alive] += (time.perf_counter() - t0) / alive_now
            events = self._check(loss, grad_norm)
            yield self._record(loss, grad_norm, events)
            if self.step >= self.lab.steps or not self.alive.any():
                return
            self._advance(loss)


def race(lab: Lab, stop: threading.Event | None = None) -> Iterator[StepRecord]:
    """Run a whole lab: the generator both the GUI worker and ``main.py run`` iterate."""
    return FunctionRace(lab).records(stop)
