"""One seed of a network race: every run of the lab trained side by side on one seed.

`SeedRace` owns the seed's models, optimizers, schedules, batch order and stacked fast path
(core/engine/stacked.py), and steps them through `train_phase` (forward + backward of every live
run, `core.engine.training_step.train_step`, or the stack's batched twin) and `finish_phase`
(record the lr, evaluate when due, stop early, update). How a step trains every live run — the
batched pass or one run at a time, Schedule-Free's modes — is its base
`core.engine.seed_training.RunTraining`; how a run ends — divergence, a faulted
update, out of memory, early stopping — is its base `core.engine.run_fates.RunFates`; its
evaluations are `core.engine.network_evaluation`.
A run whose optimizer or schedule step raises or runs over the per-step time limit
(core/engine/faults.py) gets its weights back from before that update and is frozen there, a
`Divergence` of kind "failed" / "too slow" at the next step; the other runs go on.
Each run updates as its optimizer needs (`core.engine.training_step.RunUpdate`): a closure on the
step's batch, a ``create_graph`` backward, and Schedule-Free's modes — ``train()`` for the
forward, backward and update only, ``eval()`` for everything else (evaluations, sharpness, and
whatever reads the models between steps: live surfaces, state_dicts, exported weights).
core/engine/network_race.py steps several of them in lockstep; with one seed it is the race.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from collections.abc import Iterator

import numpy as np
import torch

from core.engine import faults
from core.engine.faults import (
    DEFAULT_STEP_TIME_LIMIT,
    Fault,
    StepLimit,
    fault_of,
    guarded_build,
    out_of_memory,
    stand_in_optimizer,
)
from core.engine.function_race import Divergence
from core.engine.network_evaluation import Evaluator, linear_weights, update_ratios, with_ratios
from core.engine.network_records import EarlyStop, Evaluation, NetworkRecord
from core.engine.param_watch import ParamWatch
from core.engine.race_setup import RaceSetup, initial_model
from core.engine.run_fates import RunFates
from core.engine.seed_training import RunTraining
from core.engine.stacked import StackedMLP, can_stack, per_run_reason, steps_flat
from core.engine.training_step import (
    BatchOrder,
    RandomStream,
    RunUpdate,
    clip_fired,
    optimizers_for,
    run_closure,
)
from core.engine.update_spectra import with_spectra
from core.lab.format import SEED_STRIDE, Lab
from core.landscape.adaptive_edge import EdgeTracker
from core.landscape.curvature import SHARPNESS_SAMPLES, SharpnessTracker, model_loss
from core.optim.catalog import build_optimizer
from core.optim.schedules import Schedule
from core.problems.datasets.dataset import Dataset
from core.problems.model_spec import ModelSpec
from core.problems.models import dropout_stream, has_dropout, set_dropout_generator


class SeedRace(RunTraining, RunFates):
    """Every run of the lab on ONE seed; `records()` advances it (the whole race when S = 1)."""

    def __init__(self, lab: Lab, setup: RaceSetup, seed_index: int = 0,
                 step_time_limit: float | None = DEFAULT_STEP_TIME_LIMIT):
        problem = lab.problem
        self.step_limit = StepLimit(step_time_limit)  # core/engine/faults.py
        # Runs whose optimizer class raised while being built: each fails at its first update.
        self._unbuilt: dict[int, Fault] = {}
        self.lab = lab
        self.seed_index = seed_index
        self.seed = lab.seed + SEED_STRIDE * seed_index
        self.runs = lab.enabled_runs()
        self.labels = tuple(r.label for r in self.runs)
        self.device, self.notices = setup.device, setup.notices
        self.data: Dataset = setup.data
        self.model_spec: ModelSpec = setup.model_spec
        self.task = self.data.task
        self.criterion = setup.criterion

        # How each run's optimizers update (closure, create_graph, train()/eval() modes).
        self.updates = [RunUpdate.of(run.optimizer) for run in self.runs]
        self._moded = [i for i, update in enumerate(self.updates) if update.train_eval]
        self._streams = {i: RandomStream(self.seed, i)
                         for i, update in enumerate(self.updates) if update.create_graph}
        initial = initial_model(lab, self.data, seed_index)
        self.models = [copy.deepcopy(initial).to(self.device) for _ in self.runs]
        self.has_dropout = has_dropout(initial)
        # The fast path: every run in one batched pass (see core/engine/stacked.py).
        self.stack: StackedMLP | None = None
        if len(self.runs) >= 2 and can_stack(initial, [r.optimizer for r in self.runs]):
            self.stack = StackedMLP(self.models)
            # Per-run L1/L2 coefficients, fixed for the race: built once, not every step.
            self._penalties = (
                torch.tensor([r.l1 for r in self.runs], device=self.device),
                torch.tensor([r.l2 for r in self.runs], device=self.device),
            )
            # An element-wise optimizer steps the run's flat row; any other optimizer the run's
            # own layers (views of that row), as on the per-run path (core/engine/stacked.py).
            self.optimizers = [
                self._build(i, (lambda run=run, param=param:
                                [build_optimizer(run.optimizer, run.params, [param])])
                            if steps_flat(run.optimizer, run.params)
                            else (lambda run=run, model=model: optimizers_for(run, model)),
                            [param])
                for i, (run, param, model) in enumerate(
                    zip(self.runs, self.stack.run_params, self.models))
            ]
            # Each run keeps its optimizers; the stack steps torch's one call per type.
            self.stack.use_optimizers(self.optimizers)
            self.stack.step_limit = self.step_limit
        else:
            self.optimizers = [
                self._build(i, lambda run=run, model=model: optimizers_for(run, model),
                            list(model.parameters()))
                for i, (run, model) in enumerate(zip(self.runs, self.models))
            ]
        self.per_run_reason = None if self.stack else per_run_reason(initial, self.runs)
        self.schedules = [
            Schedule(opts[0], run.schedule.name, run.schedule.params, lab.steps)
            if run.schedule is not None
            else Schedule(opts[0], "constant", {}, lab.steps)
            for run, opts in zip(self.runs, self.optimizers)
        ]
        # One dropout stream per run, owned by its model: runs never share random numbers.
        if self.has_dropout:
            for i, model in enumerate(self.models):
                set_dropout_generator(model, dropout_stream(self.seed, i, self.device))

        self.x_train, self.y_train = setup.x_train, setup.y_train
        self.x_val, self.y_val = setup.x_val, setup.y_val
        self.order = BatchOrder(len(self.x_train), problem.batch_size, self.seed + 1)
        self._evaluator = Evaluator(setup)

        count = len(self.runs)
        self.step = 0
        self.alive = np.ones(count, dtype=bool)
        self.diverged: list[Divergence | None] = [None] * count
        self.stopped: list[EarlyStop | None] = [None] * count
        self.best_val = np.full(count, np.inf)
        self.best_val_step = np.zeros(count, dtype=int)
        self._evals_since_best = np.zeros(count, dtype=int)
        self._start_loss: np.ndarray | None = None
        self.wall_s = np.zeros(count)
        self._last_loss = np.zeros(count)
        self._last_grad = np.zeros(count)
        self._last_lr = np.full(count, np.nan)  # the lr of the latest update (forensics)
        self._watch = ParamWatch(self.models, self.stack)  # parameter norms, pre-update copy
        self._out_of_memory: dict[int, str] = {}  # runs that ran out of memory, to be marked
        self._faults: dict[int, Fault] = {}  # runs whose update faulted, to be marked
        self._unbatched = False  # stacked runs train one by one after a batched OOM
        self._pending: tuple[np.ndarray, np.ndarray, list[Divergence]] | None = None
        self._batch: tuple[torch.Tensor, torch.Tensor] | None = None  # this step's (x, y)
        self._started = time.perf_counter()
        self.last_evaluation: Evaluation | None = None
        every = getattr(problem, "sharpness_every", 0)
        self._sharpness = (EdgeTracker(SharpnessTracker(count), self.optimizers) if every > 0
                           else None)  # also each run's edge and preconditioned sharpness

    # -- pieces ------------------------------------------------------------------------------

    def _build(self, i: int, build, tensors: list) -> list[torch.optim.Optimizer]:
        """Run i's optimizers, or a stand-in when its class raises (core/engine/faults.py)."""
        optimizers, fault = guarded_build(
            build, lambda: [stand_in_optimizer(tensors, self.runs[i].params)])
        if fault is not None:
            self._unbuilt[i] = fault
            # The stand-in needs no adapter (no modes to switch, no closure).
            self.updates[i] = RunUpdate()
            if i in self._moded:
                self._moded.remove(i)
        return optimizers

    def _evaluate(self) -> Evaluation:
        """Metrics of every run at the current weights (update ratios are filled in later): a
        stacked race in one batched pass, the others one model at a time (`Evaluator`)."""
        if self.stack is not None:
            return self._evaluator.stacked(self.stack)
        return self._evaluator.per_model(self.models)

    # -- the loop ----------------------------------------------------------------------------

    def records(self, stop: threading.Event | None = None) -> Iterator[NetworkRecord]:
        while True:
            if stop is not None and stop.is_set():
                return
            diverged = self.train_phase()
            yield self.finish_phase(self.scheduled_evaluation() or bool(diverged))
            if self.step >= self.lab.steps or not self.alive.any():
                return
            self.step += 1

    def scheduled_evaluation(self) -> bool:
        return self.step % self.lab.problem.eval_every == 0 or self.step == self.lab.steps

    def train_phase(self) -> list[Divergence]:
        """Forward + backward of this step's batch for every live run; returns divergences."""
        idx = self.order.batch(self.step)
        xb = self.x_train if idx is None else self.x_train[idx]
        yb = self.y_train if idx is None else self.y_train[idx]
        losses = self._last_loss.copy()
        grads = self._last_grad.copy()
        diverged = self._check_parameters()
        self._batch = (xb, yb)  # a closure optimizer re-evaluates this batch
        self._to_train()
        for i, loss, grad_norm in self._train_all(xb, yb):
            if self._start_loss is None:
                self._start_loss = np.zeros(len(self.runs))
            if self.step == 0:
                self._start_loss[i] = abs(loss) if math.isfinite(loss) else 0.0
            event = self._check_divergence(int(i), loss, grad_norm)
            if event is not None:
                diverged.append(event)
                continue
            losses[i], grads[i] = loss, grad_norm
        diverged += self._take_out_of_memory()  # runs that ran out of memory in this pass
        self._last_loss, self._last_grad = losses, grads
        self._pending = (losses, grads, diverged)
        return diverged

    def finish_phase(self, evaluate: bool) -> NetworkRecord:
        """Record lr, evaluate (when asked), early-stop, update: the record of this step."""
        losses, grads, diverged = self._pending
        self._pending = None
        steps = self.lab.steps
        before = None
        if evaluate and self.step < steps:
            before = linear_weights(self.models)
        # NaN for an optimizer without a learning rate (A2Grad, AliG).
        lr = np.array([float(opts[0].param_groups[0].get("lr", math.nan))
                       for opts in self.optimizers])
        self._last_lr = lr  # the lr of the update below, for a divergence it may cause
        # Update after recording lr; the evaluation below sees the weights *before* the
        # update (the state of step t), plus the update ratio of this step.
        evaluation = None
        stopped: list[EarlyStop] = []
        sharpness_due = self._sharpness_due()
        if evaluate or sharpness_due:
            self._to_eval(first=self.step == 0)  # evaluations, sharpness at Schedule-Free's x
        if evaluate:
            evaluation = self._evaluate()
            self.last_evaluation = evaluation
            stopped = self._early_stopping(evaluation)
        # A run that stops early at this step still owns this step's numbers.
        alive = self.alive.copy()
        for event in stopped:
            alive[event.run] = True
        sharpness = preconditioned = edge = None
        if sharpness_due:
            sharpness, preconditioned, edge = self._measure_sharpness(alive, lr)
        if self.step < steps:
            self._to_train()
            stepping = self.alive
            if self._unbuilt:  # their first update: they fail instead, before any step
                self._faults.update({i: fault for i, fault in self._unbuilt.items()
                                     if self.alive[i]})
                self._unbuilt.clear()
                stepping = self.alive.copy()
                stepping[list(self._faults)] = False
            live = np.flatnonzero(stepping)
            self._watch.snapshot()  # to name the tensor, should this update blow a run up
            if self.stack is not None:  # every live run in one call per optimizer type
                t0 = time.perf_counter()
                try:
                    # Runs whose step faulted are put back and frozen at the next step.
                    self._faults.update(self.stack.step(stepping) or {})
                except RuntimeError as error:
                    message = out_of_memory(error)
                    if message is None:
                        raise
                    # One call steps (and at first allocates the state of) every live run, and
                    # one that fails midway leaves some runs updated and others not: there is
                    # no per-run fallback for that, so every live run is marked (next step).
                    self._out_of_memory.update({int(i): message for i in live})
                for i in live:
                    if i not in self._faults:
                        self._step_schedule(int(i), float(losses[i]))
                self.wall_s[live] += (time.perf_counter() - t0) / max(1, len(live))
            else:
                for i in live:
                    fault = None
                    t0 = faults.clock()
                    try:
                        self._update(int(i))
                        self.schedules[i].step(float(losses[i]))
                    except Exception as error:  # the run's own fault: the others go on
                        fault = fault_of(error)
                    spent = faults.clock() - t0
                    self.wall_s[i] += spent
                    fault = fault or self.step_limit.check(spent)
                    if fault is not None:
                        self._faults[int(i)] = fault  # put back and marked at the next step
            if before is not None and evaluation is not None:
                evaluation = with_ratios(evaluation, update_ratios(self.models, before))
            self._to_eval()  # between steps the models hold x
        if evaluation is not None:
            evaluation = with_spectra(evaluation, self.models, before)
        return NetworkRecord(
            step=self.step,
            epoch=self.step * self.order.batch_size / self.order.n,
            loss=losses,
            lr=lr,
            grad_norm=grads,
            alive=alive,
            wall_time=time.perf_counter() - self._started,
            evaluation=evaluation,
            diverged=tuple(diverged),
            stopped=tuple(stopped),
            sharpness=sharpness,
            preconditioned_sharpness=preconditioned,
            edge=edge,
            clipped=clip_fired(self.runs, grads, alive),
        )

    def _update(self, i: int) -> None:
        """Run i's optimizers step (per-run path), with a closure on this step's batch if its
        optimizer needs one."""
        update = self.updates[i]
        closure = None
        if update.closure:
            xb, yb = self._batch
            closure = run_closure(self.runs[i], self.models[i], self.optimizers[i],
                                  self.criterion, xb, yb, update)
        stream = self._streams.get(i)
        if stream is None:
            update.step(self.optimizers[i], closure)
            return
        with stream:  # its Hessian estimate's own random vectors
            update.step(self.optimizers[i], closure)

    def _step_schedule(self, i: int, loss: float) -> None:
        """Run i's schedule step after a batched update; one that raises is run i's fault."""
        t0 = faults.clock()
        try:
            self.schedules[i].step(loss)
        except Exception as error:
            self._faults[i] = fault_of(error)
            return
        fault = self.step_limit.check(faults.clock() - t0)
        if fault is not None:
            self._faults[i] = fault

    def _sharpness_due(self) -> bool:
        if self._sharpness is None:
            return False
        every = self.lab.problem.sharpness_every
        return self.step % every == 0 or self.step == self.lab.steps

    def _measure_sharpness(self, alive: np.ndarray, lr: np.ndarray):
        """Top Hessian eigenvalue of each live run's training data loss (no penalty) at the
        weights of this step, before its update (core.landscape.curvature.SharpnessTracker). NaN for a run
        not alive, and for a live run whose eigensolver did not converge: a live run's NaN means
        "not converged" (core.engine.history keeps it as such), never a stale or partial estimate.
        Also λ₁(P⁻¹H) and the edge at ``lr`` (core/landscape/adaptive_edge.py `EdgeTracker`)."""
        loss = model_loss(self.x_train[:SHARPNESS_SAMPLES], self.y_train[:SHARPNESS_SAMPLES],
                          self.criterion)
        values = np.full((3, len(self.runs)), np.nan)  # raw, preconditioned, edge
        for i in np.flatnonzero(alive):
            values[:, i] = self._sharpness.measure(int(i), self.models[i], self.optimizers[i],
                                                   loss, float(lr[i]))
        return values[0], values[1], values[2]

    def state_dicts(self) -> dict[str, dict]:
        # Clones: with the stacked path the parameters are views of one shared tensor, and
        # torch.save would write that whole tensor into every run's file.
        return {
            label: {k: v.detach().clone() for k, v in model.state_dict().items()}
            for label, model in zip(self.labels, self.models)
        }
