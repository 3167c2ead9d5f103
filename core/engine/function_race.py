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
non-finite ever leaves the engine, so plots never receive NaN. A run whose optimizer step raises
or takes longer than the per-step time limit (core/engine/faults.py) is put back on its point
before that step, frozen there and reported the same way (``Divergence.kind`` "failed" / "too
slow", with the traceback).
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from core.engine import faults
from core.engine.faults import (
    DEFAULT_STEP_TIME_LIMIT,
    Fault,
    StepLimit,
    fault_of,
    guarded_build,
    stand_in_optimizer,
)
from core.engine.training_step import RandomStream, RunUpdate
from core.lab.branches import Branching
from core.lab.format import Lab, RunSpec
from core.optim.catalog import build_optimizer
from core.optim.internals import DeferredInternals, capture
from core.optim.optimizers import unprofiled_step
from core.optim.schedules import Schedule
from core.problems.functions import Objective, get_function

# A loss whose magnitude passes EXPLODE_FACTOR × (|start loss| + 1), or a coordinate beyond
# MAX_COORDINATE, counts as divergence: far past any plot, and on the way to Inf anyway.
EXPLODE_FACTOR = 1e6
MAX_COORDINATE = 1e6
DTYPE = torch.float64


@dataclass(frozen=True)
class Divergence:
    """A run stopped because its numbers blew up, with what is known about the blow-up.

    The forensic fields are None where not known (e.g. at step 0 there is no previous update).
    Every number in them is finite: the last finite state is step - 1, the bad one ``step``.
    """

    run: int  # index among the race's runs (the lab's enabled runs, in order)
    label: str
    step: int  # the first step whose state was not finite / exploded
    reason: str
    # Networks: the parameter tensor whose update exploded ("2.weight"): the first non-finite
    # one, else the one with the largest relative update ‖ΔW‖ / ‖W‖.
    layer: str | None = None
    lr: float | None = None  # the learning rate of the update from step - 1 to step
    last_loss: float | None = None  # the loss at step - 1 (the last finite state)
    last_grad_norm: float | None = None  # the gradient norm at step - 1
    update_ratio: float | None = None  # ‖Δ‖ / ‖W‖ of that update (``layer``'s; 2-D: the point's)
    param_norm: float | None = None  # the parameter norm after that update, when finite
    last_point: tuple[float, float] | None = None  # 2-D: the point at step - 1
    # Why the run stopped: "diverged" (its numbers blew up), or a fault of its optimizer
    # (core/engine/faults.py): "failed" (its step raised; ``traceback`` holds the text) or
    # "too slow" (a step over the time limit). A faulty run is frozen like a diverged one, at the
    # state before the faulty update (step - 1).
    kind: str = "diverged"
    traceback: str | None = None

    def __post_init__(self):
        if self.last_point is not None:  # a JSON round trip gives a list
            object.__setattr__(self, "last_point", tuple(float(v) for v in self.last_point))

    def details(self) -> dict:
        """The JSON-ready record of summary.json's ``divergence`` (None fields left out)."""
        fields = ("step", "reason", "layer", "lr", "last_loss", "last_grad_norm",
                  "update_ratio", "param_norm", "last_point")
        out = {name: getattr(self, name) for name in fields}
        if self.last_point is not None:
            out["last_point"] = list(self.last_point)
        return {name: value for name, value in out.items() if value is not None}

    @property
    def verb(self) -> str:
        """What the run did, for sentences: "diverged", "failed" or "was stopped"."""
        return {"diverged": "diverged", "failed": "failed"}.get(self.kind, "was stopped")

    def describe(self) -> str:
        """One line of the forensic details for people (status bar, tooltips), most telling
        first: the lr, the last finite state, then the layer whose update blew up."""
        parts = []
        if self.lr is not None:
            parts.append(f"lr {self.lr:.3g}")
        before = []
        if self.last_point is not None:
            before.append(f"point ({self.last_point[0]:.4g}, {self.last_point[1]:.4g})")
        if self.last_loss is not None:
            before.append(f"loss {self.last_loss:.4g}")
        if self.last_grad_norm is not None:
            before.append(f"gradient norm {self.last_grad_norm:.3g}")
        if before:
            last = "last finite" if self.kind == "diverged" else "last good"
            parts.append(f"{last} (step {max(0, self.step - 1)}): " + ", ".join(before))
        if self.layer is not None:
            update = (f" (update {self.update_ratio:.3g} × its norm)"
                      if self.update_ratio is not None else "")
            parts.append(f"layer {self.layer}{update}")
        elif self.update_ratio is not None:
            parts.append(f"update {self.update_ratio:.3g} × the point's norm")
        if self.param_norm is not None and self.last_point is None:
            parts.append(f"weight norm after it {self.param_norm:.3g}")
        return "; ".join(parts)


def finite_or_none(value) -> float | None:
    """``value`` as a float when finite, else None (forensic fields never hold NaN/Inf)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


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
    # Per run, the update that led to this step (core.optim.internals), when the race was made with
    # internals=True (the GUI's teaching overlay); None otherwise, and for step 0 / frozen runs.
    internals: tuple | None = None


class FunctionRace:
    """The state of a race on a 2-D function; `records()` advances it.

    Kept as an object (not only a generator) so that a caller can inspect the optimizers and
    the points between steps — the GUI's step readouts and branching build on that.
    """

    def __init__(self, lab: Lab, internals: bool = False,
                 step_time_limit: float | None = DEFAULT_STEP_TIME_LIMIT):
        self.lab = lab
        self.internals = internals  # attach core.optim.internals.Internals to every record
        # A step over it stops its run (core/engine/faults.py); None: no limit.
        self.step_limit = StepLimit(step_time_limit)
        self.runs: tuple[RunSpec, ...] = lab.enabled_runs()
        self.labels = tuple(r.label for r in self.runs)
        self.objective: Objective = get_function(lab.problem.function)
        start = lab.problem.start if lab.problem.start is not None else self.objective.start
        self.start = (float(start[0]), float(start[1]))

        count = len(self.runs)
        # Norm clipping (a run's clip_norm, inf for none): each run's gradient is scaled by
        # min(1, clip_norm / (‖g‖ + 1e-6)) before its update, as torch.nn.utils.clip_grad_norm_
        # does; records keep the norm before clipping.
        self.clip_norm = torch.tensor([math.inf if r.clip_norm is None else r.clip_norm
                                       for r in self.runs], dtype=DTYPE)
        self._clips = bool(torch.isfinite(self.clip_norm).any())
        self.points = torch.tensor([self.start] * count, dtype=DTYPE).reshape(count, 2)
        self.grads = torch.zeros_like(self.points)
        self.optimizers: list[torch.optim.Optimizer] = []
        self.schedules: list[Schedule] = []
        # Runs whose optimizer needs more than step() on the shared gradient row (a closure,
        # a create_graph backward, Schedule-Free's train()/eval() points) step a private copy
        # of their point with its own gradient (`_own_step`).
        self._closures: dict[int, tuple[torch.Tensor, object]] = {}
        self._updates: dict[int, RunUpdate] = {}
        # Runs whose optimizer class raised while being built: each fails at its first update.
        self._unbuilt: dict[int, Fault] = {}
        for i, run in enumerate(self.runs):
            update = RunUpdate.of(run.optimizer)
            if not update.plain:
                tensor = self.points[i].detach().clone().requires_grad_(True)
                self._closures[i] = (tensor, self._make_closure(tensor, update.create_graph,
                                                                run.clip_norm))
                self._updates[i] = update
            else:
                tensor = self.points[i]
                tensor.grad = self.grads[i]
            opt, fault = guarded_build(
                lambda run=run, tensor=tensor: build_optimizer(run.optimizer, run.params, [tensor]),
                lambda run=run, tensor=tensor: stand_in_optimizer([tensor], run.params))
            if fault is not None:
                self._unbuilt[i] = fault
            self.optimizers.append(opt)
            sched = run.schedule
            self.schedules.append(
                Schedule(opt, sched.name, sched.params, lab.steps)
                if sched is not None
                else Schedule(opt, "constant", {}, lab.steps)
            )
        # Each run's update without torch's profiler wrapper (most of a 2-element step's cost).
        self._steps = [unprofiled_step(opt) for opt in self.optimizers]
        # A create_graph optimizer's Hessian estimate draws from its run's own random stream.
        self._streams = {i: RandomStream(lab.seed, i)
                         for i, update in self._updates.items() if update.create_graph}
        self.alive = np.ones(count, dtype=bool)
        self.step = 0
        self.wall_s = np.zeros(count)
        self.diverged: list[Divergence | None] = [None] * count
        self._last_loss = np.full(count, np.nan)
        self._last_point = self.points.numpy().copy()
        self._last_grad_norm = np.zeros(count)
        self._last_lr = np.full(count, np.nan)
        self._start_loss: np.ndarray | None = None
        self._pending_internals: list = [None] * count
        self._fault_events: list[Divergence] = []  # runs whose last update faulted, to report
        # Runs that replay another run up to a step, then fork from it (core.lab.branches).
        self.branching = Branching.for_race(self)

    def replace_optimizer(self, i: int, optimizer: torch.optim.Optimizer,
                          schedule: Schedule) -> None:
        """Run i steps with ``optimizer`` and ``schedule`` from now on (a branch forking)."""
        self.optimizers[i] = optimizer
        self.schedules[i] = schedule
        self._steps[i] = unprofiled_step(optimizer)

    def set_unbuilt(self, i: int, fault: Fault | None) -> None:
        """Run i's optimizer could not be built (``fault``): it fails at its next update; None:
        it could (a branch forking builds its own, core.lab.branches)."""
        if fault is None:
            self._unbuilt.pop(i, None)
        else:
            self._unbuilt[i] = fault

    def _make_closure(self, own: torch.Tensor, create_graph: bool = False,
                      clip_norm: float | None = None):
        f = self.objective

        @torch.enable_grad()  # an optimizer may call it under no_grad (torch's L-BFGS guards)
        def closure() -> torch.Tensor:
            own.grad = None
            loss = f(own[0], own[1])
            loss.backward(create_graph=create_graph)
            if clip_norm is not None:
                torch.nn.utils.clip_grad_norm_([own], clip_norm)
            return loss

        return closure

    def _own_step(self, i: int) -> None:
        """Run i's update on its private point: to y for Schedule-Free, the gradient there
        (with its graph for a create_graph optimizer), ``step(closure)`` or ``step()``, back
        to x; the shared row then shows the point it answers with."""
        own, closure = self._closures[i]
        update = self._updates[i]
        opt = self.optimizers[i]
        if update.train_eval:
            opt.train()
        closure()  # the gradient the step uses (SAM reads it; L-BFGS recomputes it first)
        with self._streams.get(i) or contextlib.nullcontext():
            if update.closure:
                self._steps[i](closure)
            else:
                self._steps[i]()
        if update.train_eval:
            opt.eval()
        own.grad = None  # a create_graph gradient holds its graph until then
        with torch.no_grad():
            self.points[i].copy_(own)

    # ----------------------------------------------------------------------------------------

    def _evaluate(self) -> tuple[np.ndarray, np.ndarray]:
        """Loss and gradient at every run's current point, in one batched call."""
        x = self.points.detach().requires_grad_(True)
        loss = self.objective(x[:, 0], x[:, 1])
        loss.sum().backward()
        self.grads.copy_(x.grad)
        norms = torch.linalg.vector_norm(x.grad, dim=1)
        if self._clips:
            self.grads.mul_((self.clip_norm / (norms + 1e-6)).clamp(max=1.0)[:, None])
        return loss.detach().numpy().copy(), norms.numpy().copy()

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
                event = self._forensics(int(i), reason, point[i])
                self.alive[i] = False
                # Park the frozen run on its last finite point so the shared evaluation stays
                # finite (its row is never stepped again).
                with torch.no_grad():
                    self.points[i] = torch.from_numpy(self._last_point[i])
                self.diverged[i] = event
                events.append(event)
        return events

    def _forensics(self, i: int, reason: str, bad_point: np.ndarray) -> Divergence:
        """Run i's divergence with its last finite state (step - 1) and the lr of the update
        that left it; nothing is known before step 0."""
        if self.step == 0:
            return Divergence(i, self.labels[i], self.step, reason)
        last = self._last_point[i]
        with np.errstate(invalid="ignore", over="ignore"):
            ratio = np.linalg.norm(bad_point - last) / max(float(np.linalg.norm(last)), 1e-12)
            norm = np.linalg.norm(bad_point)
        return Divergence(
            i, self.labels[i], self.step, reason,
            lr=finite_or_none(self._last_lr[i]),
            last_loss=finite_or_none(self._last_loss[i]),
            last_grad_norm=finite_or_none(self._last_grad_norm[i]),
            update_ratio=finite_or_none(ratio),
            param_norm=finite_or_none(norm),
            last_point=(float(last[0]), float(last[1])),
        )

    def _record(self, loss: np.ndarray, grad_norm: np.ndarray, events) -> StepRecord:
        alive = self.alive
        self._last_loss = np.where(alive, loss, self._last_loss)
        self._last_grad_norm = np.where(alive, grad_norm, self._last_grad_norm)
        self._last_point = np.where(alive[:, None], self.points.numpy(), self._last_point)
        # NaN for an optimizer without a learning rate (A2Grad, AliG).
        lr = np.array([float(opt.param_groups[0].get("lr", math.nan)) for opt in self.optimizers])
        self._last_lr = lr  # the lr of the next update, for a divergence it may cause
        return StepRecord(
            step=self.step,
            point=self._last_point.copy(),
            loss=self._last_loss.copy(),
            lr=lr,
            grad_norm=self._last_grad_norm.copy(),
            alive=alive.copy(),
            diverged=tuple(events),
            internals=self._take_internals() if self.internals else None,
        )

    def _take_internals(self) -> tuple:
        """The updates that led here, one per run; None for frozen runs (never NaN)."""
        taken = tuple(info if live else None
                      for info, live in zip(self._pending_internals, self.alive))
        self._pending_internals = [None] * len(taken)
        return taken

    def _capture_internals(self, i: int, origins: np.ndarray, grads: np.ndarray):
        opt = self.optimizers[i]
        param = opt.param_groups[0]["params"][0]
        return param, capture(opt, param, grads[i], origin=origins[i])

    def _advance(self, loss: np.ndarray) -> None:
        """One optimizer step and one schedule step for every live run."""
        if self.internals:  # every run's start point and gradient in one copy each
            origins, grads = self.points.numpy().copy(), self.grads.numpy().copy()
        limit = self.step_limit.seconds if self.step_limit.seconds is not None else math.inf
        for i in np.flatnonzero(self.alive):
            if self.branching is not None and self.branching.is_following(i):
                continue  # its row mirrors its parent's (synced after the next evaluation)
            if i in self._unbuilt:  # its optimizer could not be built: it fails here
                self._fail(int(i), self._unbuilt.pop(i))
                continue
            probe = self._capture_internals(i, origins, grads) if self.internals else None
            fault = None
            t0 = faults.clock()
            try:
                if i in self._closures:
                    self._own_step(int(i))
                else:
                    self._steps[i]()
                self.schedules[i].step(float(loss[i]))
            except Exception as error:  # the run's own fault: it stops, the others go on
                fault = fault_of(error)
            spent = faults.clock() - t0
            self.wall_s[i] += spent
            if spent > limit:  # (inf without a limit: one comparison per step)
                fault = fault or self.step_limit.check(spent)
            if fault is not None:
                self._fail(int(i), fault)
                continue
            if probe is not None:  # outside the timing: the overlay's cost is not the run's
                self._pending_internals[i] = DeferredInternals(
                    self.optimizers[i], probe[0], probe[1], self.step + 1
                )
        self.step += 1

    def _fail(self, i: int, fault: Fault) -> None:
        """Run i's update from this step faulted: back to its point before it, frozen there,
        reported with the next record (as a divergence at the next step is). Branches still
        replaying it stop with it: they have nothing left to replay."""
        with torch.no_grad():
            self.points[i] = torch.from_numpy(self._last_point[i])
        failed = [(i, fault.reason)]
        if self.branching is not None:
            failed += [(j, f"it replays {self.labels[i]}, which {fault.kind}: {fault.reason}")
                       for j in self.branching.order
                       if self.alive[j] and self.branching.is_following(j)
                       and self.branching.source(self.branching.parent[j], self.step + 1) == i]
        for j, reason in failed:
            last = self._last_point[j]
            event = Divergence(
                j, self.labels[j], self.step + 1, reason,
                lr=finite_or_none(self._last_lr[j]),
                last_loss=finite_or_none(self._last_loss[j]),
                last_grad_norm=finite_or_none(self._last_grad_norm[j]),
                last_point=(float(last[0]), float(last[1])),
                kind=fault.kind, traceback=fault.traceback,
            )
            self.alive[j] = False
            self.diverged[j] = event
            self._fault_events.append(event)

    def records(self, stop: threading.Event | None = None) -> Iterator[StepRecord]:
        """Yield the record of every step from the current one to ``lab.steps``.

        Checks ``stop`` before every step: a set event ends the generator cleanly.
        """
        while True:
            if stop is not None and stop.is_set():
                return
            t0 = time.perf_counter()
            loss, grad_norm = self._evaluate()
            if self.branching is not None:
                self.branching.sync(loss, grad_norm)
            alive_now = max(1, int(self.alive.sum()))
            self.wall_s[self.alive] += (time.perf_counter() - t0) / alive_now
            events = self._fault_events + self._check(loss, grad_norm)
            self._fault_events = []
            record = self._record(loss, grad_norm, events)
            if self.branching is not None:
                self.branching.mirror_lr(record.lr)
            yield record
            if self.step >= self.lab.steps or not self.alive.any():
                return
            self._advance(loss)


def race(lab: Lab, stop: threading.Event | None = None) -> Iterator[StepRecord]:
    """Run a whole lab: the generator both the GUI worker and ``main.py run`` iterate."""
    return FunctionRace(lab).records(stop)
